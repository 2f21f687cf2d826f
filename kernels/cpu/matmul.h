/* kernels/cpu/matmul.h - dense products on the CPU: Linear forward/backward and batched gemm.
 *
 * lily_cpu_linear_forward matches torch.nn.functional.linear: y[M,N] = x[M,K] w[N,K]^T + b[N].
 * Weights f32, bf16 (the product in bf16, f32 accumulation, the input rounded to bf16) or f16
 * (converted to f32, computed in f32). lily_cpu_matmul is a row-major batched sgemm. */
#ifndef LILY_KERNELS_CPU_MATMUL_H
#define LILY_KERNELS_CPU_MATMUL_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/onednn.h"

int lily_cpu_linear_forward(LilyCpuDnn *h, int64_t M, int64_t K, int64_t N, const float *x,
                            const void *w, int wdt, uint64_t w_stamp, const float *b, float *y);

/* f32: dx[M,K] = dy w (overwritten), dw[N,K] += dy^T x, db[N] += column sums of dy; any of the
 * three may be NULL. */
int lily_cpu_linear_backward(LilyCpuDnn *h, int64_t M, int64_t K, int64_t N, const float *x,
                             const float *w, const float *dy, float *dx, float *dw, float *db);

/* c[b] = alpha op(a[b]) op(bm[b]) + beta c[b] for b < batch; a is [M,K] ([K,M] when trans_a),
 * bm is [K,N] ([N,K] when trans_b), c is [M,N], all contiguous per batch. beta == 0 ignores
 * c's previous content (NaN included). */
int lily_cpu_matmul(LilyCpuDnn *h, int64_t batch, int64_t M, int64_t N, int64_t K, const float *a,
                    bool trans_a, const float *bm, bool trans_b, float alpha, float beta, float *c);

/* One row-major sgemm on the calling thread's OpenMP setting (used by attention):
 * C[M,N] = alpha op(A) op(B) + beta C with leading dimensions lda, ldb, ldc. */
int lily_cpu_sgemm(LilyCpuDnn *h, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                   float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                   float *C, int64_t ldc);

#endif /* LILY_KERNELS_CPU_MATMUL_H */
