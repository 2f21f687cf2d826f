/* models/pipeline.h - one chunk through AudioSR's chain (engine-internal).
 *
 * lily_diffuse_run: audiosr/pipeline.py super_resolution for one segment up to the mel:
 * normalise (mean removed, peak 0.5), cutoff detection, re-low-pass of the condition, its
 * log-mel, condition VAE encode + .sample(), DDIM with CFG, VAE decode, the mel copy below
 * the cutoff (spec.md stages 2-8). lily_vocode_run: HiFi-GAN, the STFT low-band restore and
 * the level (stages 9-11). The streams in stream.c cut a signal into such chunks. */
#ifndef LILY_MODELS_PIPELINE_H
#define LILY_MODELS_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "models/model.h"

#define LILY_UNCOND_VALUE (-11.4981f)

/* Stream ids of Philox draws (purpose in the high 32 bits). */
#define LILY_RNG_COND_SAMPLE ((uint64_t)1 << 32)
#define LILY_RNG_X_T ((uint64_t)2 << 32)
#define LILY_RNG_DDIM_STEP(k) (((uint64_t)3 << 32) | (uint64_t)(k))
#define LILY_RNG_FILTER ((uint64_t)4 << 32)

typedef struct LilyMel LilyMel;

typedef struct LilyChunkWork {
    LilyMel *mel;    /* front end (FFTW plans), owned by the caller */
    const LilyEnhanceParams *params;
} LilyChunkWork;

/* src: frames*480 samples at the input's level, the first n_valid real (the rest padding).
 * Writes mel_out [frames][256] (log-mel at the input's level) and cond_out [frames*480]
 * (the condition waveform at the input's level). first_frame is the chunk's absolute frame
 * in its stream (keys the random draws; 0 selects AudioSR's seed rule for the filter). */
LilyStatus lily_diffuse_run(LilyContext *ctx, LilyModel *m, const LilyChunkWork *w,
                            const float *src, size_t frames, size_t n_valid, int64_t first_frame,
                            float *mel_out, float *cond_out, LilyChunkInfo *info);

/* mel [frames][256], cond and src [frames*480] (first n_valid real) -> out [frames*480]. */
LilyStatus lily_vocode_run(LilyContext *ctx, LilyModel *m, const LilyChunkWork *w,
                           const float *mel, const float *cond, const float *src, size_t frames,
                           size_t n_valid, int64_t first_frame, float *out);

/* x (n samples at `rate`) resampled to 48 kHz (scipy resample_poly style), malloc'ed. */
LilyStatus lily_resample_to_48k(LilyContext *ctx, const float *x, size_t n, int rate, float **out,
                                size_t *n_out);

/* AudioSR's segment padding: frames of k * 5.12 s covering n samples (0 for n == 0). */
size_t lily_audiosr_padded_frames(size_t n_samples);

#endif /* LILY_MODELS_PIPELINE_H */
