/* kernels/cuda/matmul.h - dense products on the GPU through cuBLAS: Linear forward/backward,
 * batched matrix products and the row-major strided gemm attention uses.
 *
 * lily_cuda_linear_forward matches torch.nn.functional.linear: y[M,N] = x[M,K] w[N,K]^T + b[N].
 * f32 weights: an f32 product (no TF32, so the result agrees with the CPU's sgemm). bf16 or
 * f16 weights: the input is rounded to the weight's type and cublasGemmEx multiplies the two
 * on the tensor cores with f32 accumulation and f32 output (backend.h's rule). Everything is
 * row-major; the mapping onto column-major cuBLAS is done once, in matmul.cu. */
#ifndef LILY_KERNELS_CUDA_MATMUL_H
#define LILY_KERNELS_CUDA_MATMUL_H

#include <stdbool.h>
#include <stdint.h>

#include "cuda/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* wdt is a LilyKDType. */
int lily_cuda_linear_forward(LilyCudaHandle *h, int64_t M, int64_t K, int64_t N, const float *x,
                             const void *w, int wdt, const float *b, float *y);
/* f32: dx[M,K] = dy w (overwritten), dw[N,K] += dy^T x, db[N] += column sums of dy; any of
 * the three may be NULL. */
int lily_cuda_linear_backward(LilyCudaHandle *h, int64_t M, int64_t K, int64_t N, const float *x,
                              const float *w, const float *dy, float *dx, float *dw, float *db);
/* c[i] = alpha op(a[i]) op(bm[i]) + beta c[i] for i < batch; a is [M,K] ([K,M] when trans_a),
 * bm is [K,N] ([N,K] when trans_b), c is [M,N], all contiguous per batch. beta == 0 ignores
 * c's previous content (NaN included). */
int lily_cuda_matmul(LilyCudaHandle *h, int64_t batch, int64_t M, int64_t N, int64_t K,
                     const float *a, bool trans_a, const float *bm, bool trans_b, float alpha,
                     float beta, float *c);
/* Row-major f32 strided batched gemm with explicit leading dimensions and batch strides:
 * C[i] = alpha op(A[i]) op(B[i]) + beta C[i], op(A) M x K, op(B) K x N, C M x N. */
int lily_cuda_sgemm_batched(LilyCudaHandle *h, bool trans_a, bool trans_b, int64_t M, int64_t N,
                            int64_t K, float alpha, const float *A, int64_t lda, int64_t stride_a,
                            const float *B, int64_t ldb, int64_t stride_b, float beta, float *C,
                            int64_t ldc, int64_t stride_c, int64_t batch);

#ifdef __cplusplus
}
#endif

#endif /* LILY_KERNELS_CUDA_MATMUL_H */
