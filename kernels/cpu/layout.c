/* kernels/cpu/layout.c - upsampling, concat/split, transposes and row copies (see layout.h). */
#include <string.h>

#include "cpu/layout.h"

#define PAR_MIN 65536

void lily_cpu_upsample2x_forward(int n_threads, int64_t NC, int64_t H, int64_t W, const float *x,
                                 float *y)
{
#pragma omp parallel for num_threads(n_threads) schedule(static) if (NC * H * W > PAR_MIN)
    for (int64_t r = 0; r < NC * H; r++) {
        const float *xr = x + r * W;
        float *y0 = y + r * 4 * W, *y1 = y0 + 2 * W;
#pragma omp simd
        for (int64_t w = 0; w < 2 * W; w++) y0[w] = xr[w >> 1];
        memcpy(y1, y0, (size_t)(2 * W) * sizeof(float));
    }
}

void lily_cpu_upsample2x_backward(int n_threads, int64_t NC, int64_t H, int64_t W, const float *dy,
                                  float *dx)
{
#pragma omp parallel for num_threads(n_threads) schedule(static) if (NC * H * W > PAR_MIN)
    for (int64_t r = 0; r < NC * H; r++) {
        const float *d0 = dy + r * 4 * W, *d1 = d0 + 2 * W;
        float *xr = dx + r * W;
#pragma omp simd
        for (int64_t w = 0; w < W; w++) xr[w] = (d0[2 * w] + d0[2 * w + 1]) + (d1[2 * w] + d1[2 * w + 1]);
    }
}

void lily_cpu_concat(int n_threads, int64_t N, int64_t Ca, int64_t Cb, int64_t inner,
                     const float *a, const float *b, float *y)
{
    int64_t C = Ca + Cb;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (N * C * inner > PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        memcpy(y + n * C * inner, a + n * Ca * inner, (size_t)(Ca * inner) * sizeof(float));
        memcpy(y + (n * C + Ca) * inner, b + n * Cb * inner, (size_t)(Cb * inner) * sizeof(float));
    }
}

void lily_cpu_split(int n_threads, int64_t N, int64_t Ca, int64_t Cb, int64_t inner,
                    const float *y, float *a, float *b)
{
    int64_t C = Ca + Cb;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (N * C * inner > PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        if (a) memcpy(a + n * Ca * inner, y + n * C * inner, (size_t)(Ca * inner) * sizeof(float));
        if (b) memcpy(b + n * Cb * inner, y + (n * C + Ca) * inner, (size_t)(Cb * inner) * sizeof(float));
    }
}

#define TILE 32

void lily_cpu_transpose(int n_threads, int64_t P, int64_t A, int64_t B, int64_t Q, const float *x,
                        float *y)
{
    if (Q > 1) {
#pragma omp parallel for num_threads(n_threads) schedule(static) if (P * A * B * Q > PAR_MIN)
        for (int64_t pb = 0; pb < P * B; pb++) {
            int64_t p = pb / B, bi = pb % B;
            for (int64_t a = 0; a < A; a++)
                memcpy(y + ((p * B + bi) * A + a) * Q, x + ((p * A + a) * B + bi) * Q, (size_t)Q * sizeof(float));
        }
        return;
    }
    /* Q == 1: tiles so both sides are read and written a cache line at a time */
    int64_t ta = (A + TILE - 1) / TILE, tb = (B + TILE - 1) / TILE;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (P * A * B > PAR_MIN)
    for (int64_t t = 0; t < P * ta * tb; t++) {
        int64_t p = t / (ta * tb), r = t % (ta * tb);
        int64_t a0 = (r / tb) * TILE, b0 = (r % tb) * TILE;
        int64_t a1 = a0 + TILE < A ? a0 + TILE : A, b1 = b0 + TILE < B ? b0 + TILE : B;
        const float *xp = x + p * A * B;
        float *yp = y + p * A * B;
        for (int64_t bi = b0; bi < b1; bi++)
            for (int64_t a = a0; a < a1; a++) yp[bi * A + a] = xp[a * B + bi];
    }
}

void lily_cpu_copy_rows(int n_threads, const float *src, int64_t src_rows, int64_t src_row0,
                        float *dst, int64_t dst_rows, int64_t dst_row0, int64_t A, int64_t rows,
                        int64_t B)
{
    /* overlapping blocks (src and dst in the same tensor) must run in order */
    const char *s0 = (const char *)src, *s1 = (const char *)(src + A * src_rows * B);
    const char *d0 = (const char *)dst, *d1 = (const char *)(dst + A * dst_rows * B);
    int overlap = s0 < d1 && d0 < s1;
    int par = !overlap && A * rows * B > PAR_MIN;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (par)
    for (int64_t a = 0; a < A; a++)
        memmove(dst + (a * dst_rows + dst_row0) * B, src + (a * src_rows + src_row0) * B,
                (size_t)(rows * B) * sizeof(float));
}
