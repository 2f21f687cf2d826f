/* dsp/prepare.h - AudioSR's input and output level handling and segment padding
 * (spec.md 1 stages 2 and 11, 9.1 item 2). Engine-internal. */
#ifndef LILY_DSP_PREPARE_H
#define LILY_DSP_PREPARE_H

#include <stddef.h>
#include <stdint.h>

#include <lily/lily.h>

/* audiosr/utils.py normalize_wav in place: x = (x - mean) / (max|x - mean| + 1e-8) * 0.5.
 * *mean and *gain (either may be NULL) receive what was applied, so the caller can undo it:
 * original = x / gain + mean. LILY_ERR_NUMERIC names the first non-finite sample. */
LilyStatus lily_audiosr_normalize(LilyContext *ctx, float *x, size_t n, double *mean,
                                  double *gain);

/* How many 5.12 s segments AudioSR pads n samples at `rate` Hz up to:
 * ceil(100 n / (512 rate)) in integers (AudioSR's float version sometimes lands one sample
 * short and crashes, spec.md 9.1 item 2). 0 for n == 0. */
uint64_t lily_audiosr_segments(uint64_t n, int rate);
/* n 48 kHz samples padded up to whole 5.12 s segments (245760 samples each). */
size_t lily_audiosr_padded_length(size_t n);

/* The end of LatentDiffusion.generate_batch (spec.md 11), in place:
 * x = 0.5 x / max|x|, then the mean is subtracted (so the peak is no longer exactly 0.5).
 * Silence stays silence (AudioSR divides by zero). Returns the gain applied (0 for silence). */
double lily_audiosr_output_normalize(float *x, size_t n);

#endif /* LILY_DSP_PREPARE_H */
