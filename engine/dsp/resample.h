/* dsp/resample.h - scipy.signal.resample_poly(x, up, down) with its default window
 * ('kaiser', 5.0) and padtype 'constant', as a polyphase FIR (engine-internal). */
#ifndef LILY_DSP_RESAMPLE_H
#define LILY_DSP_RESAMPLE_H

#include <stddef.h>

#include <lily/lily.h>

typedef struct LilyResampler {
    int up, down;   /* after dividing out their gcd */
    int half_len;   /* 10 * max(up, down) */
    int taps;       /* taps per phase: ceil((2 half_len + 1) / up) */
    double *phase;  /* [up][taps]: phase r holds h[r + up j] for j < taps (0 past the end) */
} LilyResampler;

/* Designs the FIR: firwin(2 half_len + 1, 1 / max(up, down), window=('kaiser', 5.0)) * up. */
LilyStatus lily_resampler_init(LilyContext *ctx, LilyResampler *r, int up, int down);
void lily_resampler_release(LilyResampler *r);
/* ceil(n * up / down), resample_poly's output length. */
size_t lily_resampler_out_len(const LilyResampler *r, size_t n);
/* y[0 .. out_len(n)) = resample_poly(x[0..n), up, down). y must not overlap x. */
void lily_resampler_run(const LilyResampler *r, const double *x, size_t n, double *y);

#endif /* LILY_DSP_RESAMPLE_H */
