/* dsp/lowpass.c - AudioSR's re-low-pass of the condition (spec.md 3c).
 *
 * Reference: audiosr/lowpass.py lowpass(data, highcut, fs, order, _type) as called by
 * audiosr/utils.py lowpass_filtering_prepare_inference (worked in
 * shared/audiosr/spec_check.py cutoff_lowpass):
 *     hi  = int(cutoff) / (fs / 2)
 *     sos = <type>(order, hi, btype='low', output='sos')  (cheby1 rp 0.1; ellip rp 0.1 rs 60)
 *     y   = sosfiltfilt(sos, x)
 *     fd  = int(hi * fs)
 *     z   = resample_poly(resample_poly(y, fd, fs), fs, fd), zero-padded or cut to len(y)
 *     out = sosfiltfilt(sos, z)
 * in float64 (scipy promotes the float32 waveform), returned as float32.
 * Departure: AudioSR crashes when the cutoff reaches Nyquist (scipy refuses wn >= 1, which is
 * what happens on silence, spec.md 9.1 item 1); here the signal passes through unfiltered. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "dsp/iir.h"
#include "dsp/mel.h"
#include "dsp/resample.h"

#define AUDIOSR_RP 0.1 /* dB passband ripple of cheby1 and ellip */
#define AUDIOSR_RS 60.0 /* dB stopband attenuation of ellip */

static void to_float(const double *x, size_t n, float *y)
{
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
}

LilyStatus lily_lowpass(LilyContext *ctx, const float *x, size_t n, int rate, double cutoff_hz,
                        LilyFilterType type, int order, float *y)
{
    if (rate <= 0)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "lowpass: sample rate %d must be > 0",
                          rate);
    if (!(cutoff_hz >= 1.0) || cutoff_hz > 1e9)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                          "lowpass: cutoff %g Hz must be at least 1 Hz", cutoff_hz);
    if (order < 1 || order > LILY_IIR_MAX_ORDER)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                          "lowpass: filter order %d is outside 1..%d", order, LILY_IIR_MAX_ORDER);
    if ((int)type < 0 || type >= LILY_FILTER_COUNT)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "lowpass: unknown filter type %d",
                          (int)type);
    const size_t bad = lily_first_nonfinite(x, n);
    if (bad < n)
        return lily_error(ctx, LILY_ERR_NUMERIC, "lowpass: input sample %zu is not finite", bad);
    const double wn = (double)(long long)cutoff_hz / (rate / 2.0);
    if (wn >= 1.0) { /* nothing to remove (AudioSR would raise) */
        if (y != x) memmove(y, x, n * sizeof *y);
        return LILY_OK;
    }
    if (n == 0) return LILY_OK;

    LilySos sos;
    LILY_TRY(lily_iir_lowpass(ctx, type, order, wn, AUDIOSR_RP, AUDIOSR_RS, &sos));
    const int fd = (int)(wn * rate);
    LilyResampler down, up;
    LilyStatus st = lily_resampler_init(ctx, &down, fd, rate);
    if (st != LILY_OK) return st;
    st = lily_resampler_init(ctx, &up, rate, fd);
    if (st != LILY_OK) {
        lily_resampler_release(&down);
        return st;
    }
    const size_t nd = lily_resampler_out_len(&down, n);
    const size_t nu = lily_resampler_out_len(&up, nd);
    double *a = malloc(n * sizeof *a);
    double *b = malloc((nd ? nd : 1) * sizeof *b);
    double *c = malloc((nu > n ? nu : n) * sizeof *c);
    if (!a || !b || !c) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "lowpass: out of memory for %zu samples", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) a[i] = x[i];
    LILY_CHECK(st, lily_sosfiltfilt(ctx, &sos, a, n, a), done);
    lily_resampler_run(&down, a, n, b);
    lily_resampler_run(&up, b, nd, c);
    if (nu < n) memset(c + nu, 0, (n - nu) * sizeof *c);
    LILY_CHECK(st, lily_sosfiltfilt(ctx, &sos, c, n, a), done);
    to_float(a, n, y);
done:
    free(a);
    free(b);
    free(c);
    lily_resampler_release(&down);
    lily_resampler_release(&up);
    return st;
}
