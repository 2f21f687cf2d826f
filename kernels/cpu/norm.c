/* kernels/cpu/norm.c - GroupNorm (+ SiLU) and LayerNorm, forward and backward (see norm.h).
 *
 * Per-element arithmetic is kernels/common/norm.h. A GroupNorm task is one (sample, group)
 * pair, contiguous in memory (C/G channels times S positions); tasks run in parallel. The
 * backward pass recomputes the statistics, keeps per-(sample, channel) partial sums of the
 * gamma/beta gradients and reduces them over the batch at the end, so tasks never share an
 * accumulator. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "common/norm.h"
#include "cpu/norm.h"
#include "cpu/onednn.h"
#include "cpu/simd.h"

/* Two-pass statistics in double: mean and 1 / sqrt(var + eps). */
LILY_CPU_CLONES
static void stats(const float *p, int64_t n, double eps, double *mean, double *rstd)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += p[i];
    double m = s / (double)n;
    double v = 0.0;
#pragma omp simd reduction(+ : v)
    for (int64_t i = 0; i < n; i++) {
        double d = (double)p[i] - m;
        v += d * d;
    }
    *mean = m;
    *rstd = 1.0 / sqrt(v / (double)n + eps);
}

LILY_CPU_CLONES
static void apply_row(const float *x, float *y, int64_t n, float mean, float a, float b, int silu)
{
    if (silu) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = lily_norm_apply(x[i], mean, a, b, 1);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = lily_norm_apply(x[i], mean, a, b, 0);
    }
}

LILY_CPU_CLONES
static void layer_norm_row(const float *x, float *y, int64_t D, float mean, float rstd,
                           const float *gamma, const float *beta)
{
    if (gamma && beta) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) y[j] = lily_norm_apply(x[j], mean, rstd * gamma[j], beta[j], 0);
    } else {
#pragma omp simd
        for (int64_t j = 0; j < D; j++)
            y[j] = lily_norm_apply(x[j], mean, rstd * (gamma ? gamma[j] : 1.0f), beta ? beta[j] : 0.0f, 0);
    }
}

int lily_cpu_group_norm_forward(int n_threads, int64_t N, int64_t C, int64_t S, int64_t G,
                                const float *x, const float *gamma, const float *beta, float eps,
                                int silu, float *y)
{
    int64_t cg = C / G;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1) if (N * C * S > 32768)
    for (int64_t t = 0; t < N * G; t++) {
        int64_t n = t / G, g = t % G;
        const float *xp = x + (n * C + g * cg) * S;
        float *yp = y + (n * C + g * cg) * S;
        double mean, rstd;
        stats(xp, cg * S, eps, &mean, &rstd);
        float mf = (float)mean;
        for (int64_t c = 0; c < cg; c++) {
            int64_t ch = g * cg + c;
            float a = (float)((gamma ? gamma[ch] : 1.0) * rstd);
            float b = beta ? beta[ch] : 0.0f;
            apply_row(xp + c * S, yp + c * S, S, mf, a, b, silu);
        }
    }
    return LILY_CPU_OK;
}

int lily_cpu_group_norm_backward(int n_threads, int64_t N, int64_t C, int64_t S, int64_t G,
                                 const float *x, const float *gamma, const float *beta, float eps,
                                 int silu, const float *dy, float *dx, float *dgamma, float *dbeta)
{
    int64_t cg = C / G;
    double *part = NULL;
    if (dgamma || dbeta) {
        part = calloc((size_t)(N * C * 2), sizeof(double));
        if (!part) return LILY_CPU_ERR_NO_MEMORY;
    }
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1) if (N * C * S > 32768)
    for (int64_t t = 0; t < N * G; t++) {
        int64_t n = t / G, g = t % G;
        int64_t off = (n * C + g * cg) * S;
        double mean, rstd;
        stats(x + off, cg * S, eps, &mean, &rstd);
        float mf = (float)mean, rf = (float)rstd;
        double sg = 0.0, sgx = 0.0;
        for (int64_t c = 0; c < cg; c++) {
            int64_t ch = g * cg + c;
            float gm = gamma ? gamma[ch] : 1.0f;
            float a = (float)(gm * rstd);
            float b = beta ? beta[ch] : 0.0f;
            const float *xr = x + off + c * S, *dyr = dy + off + c * S;
            float *dxr = dx ? dx + off + c * S : NULL;
            double s_gx = 0.0, s_g = 0.0;
#pragma omp simd reduction(+ : s_gx, s_g)
            for (int64_t i = 0; i < S; i++) {
                float gz = lily_norm_dz(xr[i], mf, a, b, silu, dyr[i]);
                float xh = (xr[i] - mf) * rf;
                s_gx += (double)gz * xh;
                s_g += gz;
                if (dxr) dxr[i] = gz;
            }
            if (part) {
                part[(n * C + ch) * 2] = s_gx;
                part[(n * C + ch) * 2 + 1] = s_g;
            }
            sg += s_g * gm;
            sgx += s_gx * gm;
        }
        if (!dx) continue;
        double len = (double)(cg * S);
        float m1 = (float)(sg / len), m2 = (float)(sgx / len);
        for (int64_t c = 0; c < cg; c++) {
            float gm = gamma ? gamma[g * cg + c] : 1.0f;
            const float *xr = x + off + c * S;
            float *dxr = dx + off + c * S;
#pragma omp simd
            for (int64_t i = 0; i < S; i++)
                dxr[i] = lily_norm_dx(dxr[i] * gm, (xr[i] - mf) * rf, rf, m1, m2);
        }
    }
    if (part) {
        for (int64_t ch = 0; ch < C; ch++) {
            double a = 0.0, b = 0.0;
            for (int64_t n = 0; n < N; n++) {
                a += part[(n * C + ch) * 2];
                b += part[(n * C + ch) * 2 + 1];
            }
            if (dgamma) dgamma[ch] += (float)a;
            if (dbeta) dbeta[ch] += (float)b;
        }
        free(part);
    }
    return LILY_CPU_OK;
}

int lily_cpu_layer_norm_forward(int n_threads, int64_t M, int64_t D, const float *x,
                                const float *gamma, const float *beta, float eps, float *y)
{
#pragma omp parallel for num_threads(n_threads) schedule(static) if (M * D > 32768)
    for (int64_t r = 0; r < M; r++) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        double mean, rstd;
        stats(xr, D, eps, &mean, &rstd);
        layer_norm_row(xr, yr, D, (float)mean, (float)rstd, gamma, beta);
    }
    return LILY_CPU_OK;
}

int lily_cpu_layer_norm_backward(int n_threads, int64_t M, int64_t D, const float *x,
                                 const float *gamma, float eps, const float *dy, float *dx,
                                 float *dgamma, float *dbeta)
{
    int nt = n_threads > 0 ? n_threads : 1;
    double *part = NULL;
    if (dgamma || dbeta) {
        part = calloc((size_t)(nt * D * 2), sizeof(double));
        if (!part) return LILY_CPU_ERR_NO_MEMORY;
    }
#pragma omp parallel num_threads(nt) if (M * D > 32768)
    {
        double *mine = part ? part + (size_t)omp_get_thread_num() * (size_t)(2 * D) : NULL;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < M; r++) {
            const float *xr = x + r * D, *dyr = dy + r * D;
            double mean, rstd;
            stats(xr, D, eps, &mean, &rstd);
            float mf = (float)mean, rf = (float)rstd;
            double s1 = 0.0, s2 = 0.0;
#pragma omp simd reduction(+ : s1, s2)
            for (int64_t j = 0; j < D; j++) {
                float xh = (xr[j] - mf) * rf;
                float gg = dyr[j] * (gamma ? gamma[j] : 1.0f);
                s1 += gg;
                s2 += (double)gg * xh;
            }
            if (mine) {
                for (int64_t j = 0; j < D; j++) {
                    float xh = (xr[j] - mf) * rf;
                    mine[j] += (double)dyr[j] * xh;
                    mine[D + j] += dyr[j];
                }
            }
            if (dx) {
                float *dxr = dx + r * D;
                float m1 = (float)(s1 / (double)D), m2 = (float)(s2 / (double)D);
#pragma omp simd
                for (int64_t j = 0; j < D; j++)
                    dxr[j] = lily_norm_dx(dyr[j] * (gamma ? gamma[j] : 1.0f), (xr[j] - mf) * rf, rf, m1, m2);
            }
        }
    }
    if (part) {
        for (int64_t j = 0; j < D; j++) {
            double a = 0.0, b = 0.0;
            for (int t = 0; t < nt; t++) {
                a += part[(size_t)t * (size_t)(2 * D) + (size_t)j];
                b += part[(size_t)t * (size_t)(2 * D) + (size_t)(D + j)];
            }
            if (dgamma) dgamma[j] += (float)a;
            if (dbeta) dbeta[j] += (float)b;
        }
        free(part);
    }
    return LILY_CPU_OK;
}
