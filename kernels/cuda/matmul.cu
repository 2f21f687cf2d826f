/* kernels/cuda/matmul.cu - Linear and batched products on cuBLAS (see matmul.h).
 *
 * Row-major to column-major: cuBLAS sees a row-major R x C matrix as its C x R transpose, so
 * the row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: the
 * operands swap places, each keeps its own transpose flag and leading dimension, and m, n
 * swap. Every product goes through cublasGemmStridedBatchedEx with CUBLAS_COMPUTE_32F: f32
 * operands give a true f32 product; bf16/f16 operands run on the tensor cores with f32
 * accumulation. */
#include <limits.h>

#include "cuda/elementwise.h"
#include "cuda/handle-impl.cuh"
#include "cuda/matmul.h"

static cudaDataType_t cuda_type(int kdt)
{
    return kdt == LILY_KDT_BF16 ? CUDA_R_16BF : (kdt == LILY_KDT_F16 ? CUDA_R_16F : CUDA_R_32F);
}

static bool fits_int(int64_t v)
{
    return v >= 0 && v <= INT_MAX;
}

/* Row-major batched gemm with operands of type `abt` (both A and B) and f32 C. */
static int gemm_rm(LilyCudaHandle *h, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                   float alpha, const void *A, int64_t lda, int64_t sa, const void *B, int64_t ldb,
                   int64_t sb, int abt, float beta, float *C, int64_t ldc, int64_t sc,
                   int64_t batch)
{
    if (M == 0 || N == 0 || batch == 0) return LILY_CUDA_OK;
    if (!fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(lda) || !fits_int(ldb) ||
        !fits_int(ldc) || !fits_int(batch))
        return lily_cuda_fail(h, LILY_CUDA_ERR_UNSUPPORTED,
                              "gemm %lld x %lld x %lld (batch %lld) exceeds cuBLAS's int sizes",
                              (long long)M, (long long)N, (long long)K, (long long)batch);
    if (K == 0) {
        /* cuBLAS would leave C = beta C; make beta == 0 mean "ignore C" here too */
        for (int64_t i = 0; i < batch; i++) {
            float *ci = C + i * sc;
            for (int64_t r = 0; r < M; r++) {
                if (beta == 0.0f)
                    LILY_CUDA_TRY(lily_cuda_fill(h, ci + r * ldc, 0.0f, N));
                else if (beta != 1.0f)
                    LILY_CUDA_TRY(lily_cuda_axpby(h, beta, ci + r * ldc, 0.0f, ci + r * ldc, N));
            }
        }
        return LILY_CUDA_OK;
    }
    cudaDataType_t t = cuda_type(abt);
    LILY_CUBLAS_CHECK(h, cublasGemmStridedBatchedEx(
                             h->cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                             trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M, (int)K, &alpha,
                             B, t, (int)ldb, (long long)sb, A, t, (int)lda, (long long)sa, &beta,
                             C, CUDA_R_32F, (int)ldc, (long long)sc, (int)batch,
                             CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return LILY_CUDA_OK;
}

int lily_cuda_sgemm_batched(LilyCudaHandle *h, bool trans_a, bool trans_b, int64_t M, int64_t N,
                            int64_t K, float alpha, const float *A, int64_t lda, int64_t stride_a,
                            const float *B, int64_t ldb, int64_t stride_b, float beta, float *C,
                            int64_t ldc, int64_t stride_c, int64_t batch)
{
    return gemm_rm(h, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b,
                   LILY_KDT_F32, beta, C, ldc, stride_c, batch);
}

int lily_cuda_linear_forward(LilyCudaHandle *h, int64_t M, int64_t K, int64_t N, const float *x,
                             const void *w, int wdt, const float *b, float *y)
{
    if (M == 0 || N == 0) return LILY_CUDA_OK;
    const void *src = x;
    if (wdt != LILY_KDT_F32 && K > 0) {
        void *xs = NULL;
        LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_SRC, (size_t)(M * K) * 2, &xs));
        LILY_CUDA_TRY(lily_cuda_cast(h, x, LILY_KDT_F32, xs, wdt, M * K));
        src = xs;
    }
    /* y = x w^T: A = x [M,K], B = w stored [N,K] and transposed */
    LILY_CUDA_TRY(gemm_rm(h, false, true, M, N, K, 1.0f, src, K, 0, w, K, 0, wdt, 0.0f, y, N, 0, 1));
    if (b) LILY_CUDA_TRY(lily_cuda_bias_cast(h, y, LILY_KDT_F32, b, y, M, N, 1));
    return LILY_CUDA_OK;
}

int lily_cuda_linear_backward(LilyCudaHandle *h, int64_t M, int64_t K, int64_t N, const float *x,
                              const float *w, const float *dy, float *dx, float *dw, float *db)
{
    if (dx) LILY_CUDA_TRY(lily_cuda_sgemm_batched(h, false, false, M, K, N, 1.0f, dy, N, 0, w, K, 0,
                                                  0.0f, dx, K, 0, 1));
    if (dw) LILY_CUDA_TRY(lily_cuda_sgemm_batched(h, true, false, N, K, M, 1.0f, dy, N, 0, x, K, 0,
                                                  1.0f, dw, K, 0, 1));
    if (db) LILY_CUDA_TRY(lily_cuda_channel_sum_add(h, dy, M, N, 1, db));
    return LILY_CUDA_OK;
}

int lily_cuda_matmul(LilyCudaHandle *h, int64_t batch, int64_t M, int64_t N, int64_t K,
                     const float *a, bool trans_a, const float *bm, bool trans_b, float alpha,
                     float beta, float *c)
{
    int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
    return lily_cuda_sgemm_batched(h, trans_a, trans_b, M, N, K, alpha, a, lda, M * K, bm, ldb,
                                   K * N, beta, c, N, M * N, batch);
}
