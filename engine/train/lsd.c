/* train/lsd.c - log-spectral distance (see lsd.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "dsp/stft.h"
#include "train/lsd.h"

/* Power spectra of every frame: pow[frame][bin], frames = 1 + n / hop (centred). */
static void power_frames(LilyRfft *r, const double *win, const float *x, size_t n, int frames,
                         double *pow)
{
    const int N = LILY_LSD_N_FFT, half = N / 2, bins = N / 2 + 1;
    for (int f = 0; f < frames; f++) {
        int64_t start = (int64_t)f * LILY_LSD_HOP - half;
        for (int k = 0; k < N; k++) {
            int64_t i = start + k;
            r->in[k] = i >= 0 && (size_t)i < n ? win[k] * (double)x[i] : 0.0;
        }
        fftw_execute(r->fwd);
        for (int b = 0; b < bins; b++)
            pow[(size_t)f * bins + b] = r->spec[b][0] * r->spec[b][0] + r->spec[b][1] * r->spec[b][1];
    }
}

LilyStatus lily_lsd(LilyContext *ctx, const float *est, const float *ref, size_t n, double *lsd)
{
    return lily_lsd_band(ctx, est, ref, n, 0, LILY_LSD_N_FFT / 2 + 1, lsd);
}

LilyStatus lily_lsd_band(LilyContext *ctx, const float *est, const float *ref, size_t n, int bin_lo,
                         int bin_hi, double *lsd)
{
    const int N = LILY_LSD_N_FFT, bins = N / 2 + 1;
    if (n == 0) return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "lsd: empty signals");
    if (bin_lo < 0 || bin_hi > bins || bin_lo >= bin_hi)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "lsd: bins [%d, %d) outside [0, %d)", bin_lo, bin_hi, bins);
    int frames = (int)(1 + n / LILY_LSD_HOP);
    LilyRfft r;
    LILY_TRY(lily_rfft_init(ctx, &r, N, 0));
    double *win = malloc(sizeof(double) * (size_t)N);
    double *pe = malloc(sizeof(double) * (size_t)frames * bins);
    double *pr = malloc(sizeof(double) * (size_t)frames * bins);
    if (!win || !pe || !pr) {
        free(win);
        free(pe);
        free(pr);
        lily_rfft_release(&r);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "lsd: out of memory for %d frames", frames);
    }
    lily_hann_periodic(win, N);
    power_frames(&r, win, est, n, frames, pe);
    power_frames(&r, win, ref, n, frames, pr);
    double acc = 0.0;
    for (int f = 0; f < frames; f++) {
        double s = 0.0;
        for (int b = bin_lo; b < bin_hi; b++) {
            size_t i = (size_t)f * bins + b;
            double d = log10((pr[i] + LILY_LSD_EPS) / (pe[i] + LILY_LSD_EPS));
            s += d * d;
        }
        acc += sqrt(s / (bin_hi - bin_lo));
    }
    *lsd = acc / frames;
    free(win);
    free(pe);
    free(pr);
    lily_rfft_release(&r);
    return LILY_OK;
}
