/* dsp/resample.c - scipy.signal.resample_poly (scipy 1.10, signal/_signaltools.py) over
 * upfirdn, for the defaults AudioSR uses (window ('kaiser', 5.0), padtype 'constant').
 *
 * resample_poly pads h so that, after upfirdn and the removal of n_pre_remove leading
 * samples, output i is centred on input position i * down / up: with xu the zero-stuffed
 * input (xu[m] = x[m / up] when up divides m),
 *     y[i] = sum_t h[t] xu[i down + half_len - t],
 * zero outside the signal. Only taps t = (i down + half_len) mod up + up j meet a non-zero
 * xu, so each output costs (2 half_len + 1) / up multiply-adds: the polyphase form, instead of
 * filtering up times more samples. The filter is firwin's windowed sinc, scaled to unit DC
 * gain, then by up. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "dsp/resample.h"

#define KAISER_BETA 5.0

static long long gcd_ll(long long a, long long b)
{
    while (b) {
        long long t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* modified Bessel function I0 by its power series; x <= 5 here, where 30 terms are far more
 * than double precision needs */
static double bessel_i0(double x)
{
    const double q = 0.25 * x * x;
    double term = 1.0, sum = 1.0;
    for (int k = 1; k < 60; k++) {
        term *= q / ((double)k * (double)k);
        sum += term;
        if (term < 1e-17 * sum) break;
    }
    return sum;
}

LilyStatus lily_resampler_init(LilyContext *ctx, LilyResampler *r, int up, int down)
{
    memset(r, 0, sizeof *r);
    if (up < 1 || down < 1)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                          "resample_poly: up %d and down %d must both be >= 1", up, down);
    const int g = (int)gcd_ll(up, down);
    r->up = up / g;
    r->down = down / g;
    if (r->up == 1 && r->down == 1) return LILY_OK; /* a copy */
    const int max_rate = r->up > r->down ? r->up : r->down;
    if (max_rate > 100000000 / 20)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                          "resample_poly: ratio %d/%d needs a filter of %d taps: too long",
                          r->up, r->down, 20 * max_rate + 1);
    r->half_len = 10 * max_rate;
    const int len = 2 * r->half_len + 1;
    r->taps = (len + r->up - 1) / r->up;
    double *h = malloc((size_t)len * sizeof *h);
    r->phase = calloc((size_t)r->up * (size_t)r->taps, sizeof *r->phase);
    if (!h || !r->phase) {
        free(h);
        lily_resampler_release(r);
        return lily_error(ctx, LILY_ERR_NO_MEMORY,
                          "resample_poly: out of memory for a %d-tap filter", len);
    }
    /* firwin(len, f_c = 1/max_rate): f_c sinc(f_c m) times a symmetric Kaiser window, with
     * m = k - (len - 1) / 2; then scaled by 1/sum(h) (the DC gain) and by up */
    const double fc = 1.0 / max_rate, alpha = 0.5 * (len - 1);
    const double i0_beta = bessel_i0(KAISER_BETA);
    double sum = 0;
    for (int k = 0; k < len; k++) {
        const double m = k - alpha;
        const double xr = fc * m;
        const double y = M_PI * (xr == 0 ? 1.0e-20 : xr);
        const double sinc = sin(y) / y;
        const double t = (k - alpha) / alpha;
        const double w = bessel_i0(KAISER_BETA * sqrt(1.0 - t * t)) / i0_beta;
        h[k] = fc * sinc * w;
        sum += h[k];
    }
    for (int k = 0; k < len; k++) {
        const double v = h[k] / sum * r->up;
        r->phase[(size_t)(k % r->up) * r->taps + (size_t)(k / r->up)] = v;
    }
    free(h);
    return LILY_OK;
}

void lily_resampler_release(LilyResampler *r)
{
    free(r->phase);
    memset(r, 0, sizeof *r);
}

size_t lily_resampler_out_len(const LilyResampler *r, size_t n)
{
    const unsigned long long t = (unsigned long long)n * (unsigned long long)r->up;
    return (size_t)(t / (unsigned long long)r->down + (t % (unsigned long long)r->down != 0));
}

void lily_resampler_run(const LilyResampler *r, const double *x, size_t n, double *y)
{
    if (r->up == 1 && r->down == 1) {
        memcpy(y, x, n * sizeof *x);
        return;
    }
    const size_t n_out = lily_resampler_out_len(r, n);
    const long long up = r->up;
    for (size_t i = 0; i < n_out; i++) {
        /* position c = i down + half_len in the zero-stuffed signal; tap t = ph + up j meets
         * input sample (c - t) / up = base - j */
        const long long c = (long long)i * r->down + r->half_len;
        const long long ph = c % up, base = c / up;
        const double *hp = r->phase + (size_t)ph * r->taps;
        /* j in [max(0, base - n + 1), min(taps - 1, base)] */
        long long j0 = base - (long long)n + 1, j1 = base;
        if (j0 < 0) j0 = 0;
        if (j1 > r->taps - 1) j1 = r->taps - 1;
        double acc = 0;
        /* increasing input index, as upfirdn accumulates */
        for (long long j = j1; j >= j0; j--) acc += hp[j] * x[base - j];
        y[i] = acc;
    }
}
