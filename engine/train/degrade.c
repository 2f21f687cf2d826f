/* train/degrade.c - AudioSR's randomized low-pass for training pairs, drawn per segment, the
 * source hash and split, and the delay estimate that aligns a codec round trip.
 *
 * Reference: AudioSR trains on a high-resolution waveform and a copy low-passed by
 * audiosr/lowpass.py lowpass(data, highcut, fs, order, _type): a butter / cheby1 (0.1 dB) /
 * ellip (0.1 dB, 60 dB) / bessel IIR of a random order, applied forward-backward, then
 * resample_poly to 2 x cutoff and back, then forward-backward again (spec.md 3c). The filter
 * itself is lily_lowpass (engine/dsp/lowpass.c, bit-identical to scipy at float32). Where
 * spec.md is silent the ranges come from issue 7: cutoff 2-16 kHz, order 2-10. The draw is
 * Lily's own (Philox, not numpy), because a dataset must not depend on how segments were
 * ordered or cut into jobs: it is a pure function of (seed, source, segment index). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/philox.h"
#include "core/status.h"
#include "dsp/stft.h"
#include "train/dataset.h"

/* Philox stream tags (the second counter word) so the draws of different purposes never
 * share counters. */
#define DRAW_DEGRADATION 0x44454752u /* "DEGR" */
#define DRAW_SPLIT 0x53504c54u       /* "SPLT" */

uint64_t lily_dataset_source_hash(const char *uri)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *s = (const unsigned char *)uri; s && *s; s++)
        h = (h ^ *s) * 1099511628211ull;
    return h;
}

static LilyPhilox4 draw4(uint64_t seed, uint64_t hash, uint32_t lo, uint32_t tag)
{
    /* Counter (lo, tag, hash low, hash high) under key seed. */
    return lily_philox4x32(lo, tag, (uint32_t)hash, (uint32_t)(hash >> 32), (uint32_t)seed,
                           (uint32_t)(seed >> 32));
}

void lily_degradation_draw(const LilyDegradeParams *p, uint64_t seed, uint64_t source_hash,
                           uint64_t segment, LilyDegradation *out)
{
    /* Segments beyond 2^32 in one source (2.4 years of audio at 5.12 s) fold the high bits
     * into the tag. */
    LilyPhilox4 r = draw4(seed, source_hash, (uint32_t)segment,
                          DRAW_DEGRADATION ^ (uint32_t)(segment >> 32));
    int allowed[LILY_FILTER_COUNT], n = 0;
    for (int f = 0; f < LILY_FILTER_COUNT; f++)
        if (p->filters & (1u << f)) allowed[n++] = f;
    if (n == 0) allowed[n++] = LILY_FILTER_BUTTER;
    double u0 = (double)r.v[0] * (1.0 / 4294967296.0); /* [0, 1) */
    int pick = (int)(u0 * n);
    out->filter = (LilyFilterType)allowed[pick < n ? pick : n - 1];
    int span = p->order_max - p->order_min + 1;
    double u1 = (double)r.v[1] * (1.0 / 4294967296.0);
    int o = p->order_min + (int)(u1 * (span > 0 ? span : 1));
    out->order = o > p->order_max ? p->order_max : o;
    double u = lily_u32x2_to_uniform_f64(r.v[2], r.v[3]);
    double lmin = log(p->cutoff_min_hz), lmax = log(p->cutoff_max_hz);
    out->cutoff_hz = floor(exp(lmin + u * (lmax - lmin)));
    if (out->cutoff_hz < floor(p->cutoff_min_hz)) out->cutoff_hz = floor(p->cutoff_min_hz);
}

LilyStatus lily_degradation_apply(LilyContext *ctx, const LilyDegradation *d, const float *x,
                                  size_t n, float *y)
{
    return lily_lowpass(ctx, x, n, LILY_SAMPLE_RATE, d->cutoff_hz, d->filter, d->order, y);
}

int lily_dataset_source_is_validation(uint64_t seed, uint64_t source_hash, double fraction)
{
    if (!(fraction > 0)) return 0;
    LilyPhilox4 r = draw4(seed, source_hash, 0, DRAW_SPLIT);
    return lily_u32x2_to_uniform_f64(r.v[0], r.v[1]) < fraction;
}

LilyStatus lily_dataset_estimate_delay(LilyContext *ctx, const float *ref, const float *x,
                                       size_t n, int max_lag, int *lag, double *peak)
{
    *lag = 0;
    if (peak) *peak = 0;
    if (max_lag < 0 || n == 0 || (size_t)max_lag >= n)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "delay estimate: max lag %d needs more "
                          "than %zu samples", max_lag, n);
    size_t N = 2;
    while (N < 2 * n) N *= 2;
    if (N > (size_t)1 << 28)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "delay estimate: %zu samples is too "
                          "long (at most 2^27)", n);
    LilyRfft f;
    LILY_TRY(lily_rfft_init(ctx, &f, (int)N, 1));
    const size_t nb = N / 2 + 1;
    fftw_complex *a = fftw_alloc_complex(nb);
    if (!a) {
        lily_rfft_release(&f);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "delay estimate: out of memory");
    }
    double er = 0, ex = 0;
    for (size_t i = 0; i < N; i++) {
        double v = i < n && isfinite(ref[i]) ? ref[i] : 0.0;
        f.in[i] = v;
        er += v * v;
    }
    fftw_execute(f.fwd);
    memcpy(a, f.spec, nb * sizeof *a);
    for (size_t i = 0; i < N; i++) {
        double v = i < n && isfinite(x[i]) ? x[i] : 0.0;
        f.in[i] = v;
        ex += v * v;
    }
    fftw_execute(f.fwd);
    /* c[k] = sum_i ref[i] x[i + k]: spectrum conj(A) X. */
    for (size_t k = 0; k < nb; k++) {
        double ar = a[k][0], ai = -a[k][1], xr = f.spec[k][0], xi = f.spec[k][1];
        f.spec[k][0] = ar * xr - ai * xi;
        f.spec[k][1] = ar * xi + ai * xr;
    }
    fftw_execute(f.inv);
    double best = -INFINITY;
    int best_k = 0;
    for (int k = -max_lag; k <= max_lag; k++) {
        double c = f.in[k >= 0 ? (size_t)k : N - (size_t)(-k)] / (double)N;
        if (c > best) {
            best = c;
            best_k = k;
        }
    }
    fftw_free(a);
    lily_rfft_release(&f);
    *lag = best_k;
    if (peak) *peak = (er > 0 && ex > 0) ? best / sqrt(er * ex) : 0.0;
    return LILY_OK;
}
