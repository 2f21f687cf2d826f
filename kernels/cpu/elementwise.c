/* kernels/cpu/elementwise.c - binary, axpby, fill, cast and reduce loops (see elementwise.h). */
#include <math.h>
#include <string.h>

#include "common/half.h"
#include "cpu/elementwise.h"
#include "cpu/simd.h"

#define PAR_MIN 65536

static void bin_rows(LilyBinOp op, const float *a, float bv, float *y, int64_t inner)
{
    switch (op) {
    case LILY_BIN_ADD:
#pragma omp simd
        for (int64_t j = 0; j < inner; j++) y[j] = a[j] + bv;
        break;
    case LILY_BIN_SUB:
#pragma omp simd
        for (int64_t j = 0; j < inner; j++) y[j] = a[j] - bv;
        break;
    default:
#pragma omp simd
        for (int64_t j = 0; j < inner; j++) y[j] = a[j] * bv;
        break;
    }
}

void lily_cpu_binary(int n_threads, LilyBinOp op, const float *a, const float *b, float *y,
                     int64_t nb, int64_t inner)
{
    if (inner == 1) {
        /* same shape: one flat loop */
        int64_t n = nb;
        switch (op) {
        case LILY_BIN_ADD:
#pragma omp parallel for simd num_threads(n_threads) schedule(static) if (n > PAR_MIN)
            for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
            break;
        case LILY_BIN_SUB:
#pragma omp parallel for simd num_threads(n_threads) schedule(static) if (n > PAR_MIN)
            for (int64_t i = 0; i < n; i++) y[i] = a[i] - b[i];
            break;
        default:
#pragma omp parallel for simd num_threads(n_threads) schedule(static) if (n > PAR_MIN)
            for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
            break;
        }
        return;
    }
    if (nb == 1) {
        /* a scalar: split the single long row across threads */
        int64_t chunk = 16384, nch = (inner + chunk - 1) / chunk;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (inner > PAR_MIN)
        for (int64_t c = 0; c < nch; c++) {
            int64_t j0 = c * chunk, len = inner - j0 < chunk ? inner - j0 : chunk;
            bin_rows(op, a + j0, b[0], y + j0, len);
        }
        return;
    }
#pragma omp parallel for num_threads(n_threads) schedule(static) if (nb * inner > PAR_MIN)
    for (int64_t i = 0; i < nb; i++) bin_rows(op, a + i * inner, b[i], y + i * inner, inner);
}

void lily_cpu_axpby(int n_threads, float alpha, const float *x, float beta, float *y, int64_t n)
{
    if (beta == 0.0f) {
#pragma omp parallel for simd num_threads(n_threads) schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i];
    } else {
#pragma omp parallel for simd num_threads(n_threads) schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = alpha * x[i] + beta * y[i];
    }
}

void lily_cpu_fill(int n_threads, float *y, float value, int64_t n)
{
#pragma omp parallel for simd num_threads(n_threads) schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = value;
}

void lily_cpu_cast(int n_threads, const void *x, int xdt, void *y, int ydt, int64_t n)
{
    if (xdt == ydt) {
        size_t es = xdt == LILY_KDT_F32 ? 4 : 2;
        if (x != y) memmove(y, x, (size_t)n * es);
        return;
    }
    const float *xf = x;
    const uint16_t *xh = x;
    float *yf = y;
    uint16_t *yh = y;
    if (xdt == LILY_KDT_F32 && ydt == LILY_KDT_BF16) {
#pragma omp parallel for simd num_threads(n_threads) schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) yh[i] = lily_f32_to_bf16_rne(xf[i]);
    } else if (xdt == LILY_KDT_F32 && ydt == LILY_KDT_F16) {
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) yh[i] = lily_f32_to_f16_rne(xf[i]);
    } else if (xdt == LILY_KDT_BF16 && ydt == LILY_KDT_F32) {
#pragma omp parallel for simd num_threads(n_threads) schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) yf[i] = lily_bf16_bits_to_f32(xh[i]);
    } else if (xdt == LILY_KDT_F16 && ydt == LILY_KDT_F32) {
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) yf[i] = lily_f16_bits_to_f32(xh[i]);
    } else if (xdt == LILY_KDT_BF16 && ydt == LILY_KDT_F16) {
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) yh[i] = lily_f32_to_f16_rne(lily_bf16_bits_to_f32(xh[i]));
    } else { /* f16 -> bf16 */
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) yh[i] = lily_f32_to_bf16_rne(lily_f16_bits_to_f32(xh[i]));
    }
}

void lily_cpu_reduce(int n_threads, const float *x, int64_t n, double *sum, double *sum_sq,
                     double *max_abs)
{
    double s = 0.0, s2 = 0.0;
    float m = 0.0f;
    int nan = 0;
#pragma omp parallel for simd num_threads(n_threads) schedule(static) if (n > PAR_MIN) \
    reduction(+ : s, s2, nan) reduction(max : m)
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        s += v;
        s2 += v * v;
        float a = fabsf(x[i]);
        m = a > m ? a : m;
        nan += x[i] != x[i];
    }
    if (sum) *sum = s;
    if (sum_sq) *sum_sq = s2;
    if (max_abs) *max_abs = nan ? (double)NAN : (double)m;
}
