/* kernels/cuda/attention.cu - blocked attention on cuBLAS plus softmax kernels (see
 * attention.h).
 *
 * Per block of bb batches x tb query rows:
 *   P  = softmax(scale q k^T)            (one strided batched gemm, one row kernel)
 *   out = P v                            (one strided batched gemm)
 * and for the backward pass, with P recomputed:
 *   dv += P^T dout,  dP = dout v^T,  dS = P * (dP - rowsum(dP * P)),
 *   dq = scale dS k,  dk += scale dS^T q.
 * The score block is at most LILY_ATTN_BUDGET floats (two such buffers in the backward pass),
 * which bounds the memory of long chunks; the softmax rows follow kernels/cpu/attention.c
 * (scale first, exp of the difference to the row max with lily_expf, the sum in double). */
#include <math.h>

#include "common/activation.h"
#include "cuda/attention.h"
#include "cuda/elementwise.h"
#include "cuda/handle-impl.cuh"
#include "cuda/matmul.h"

/* 2^25 floats = 128 MiB per score buffer. */
#define LILY_ATTN_BUDGET ((int64_t)1 << 25)
#define ROW_THREADS 256

static unsigned row_grid(int64_t rows)
{
    return (unsigned)(rows < 65536 ? (rows > 0 ? rows : 1) : 65536);
}

__global__ static void softmax_rows(int64_t R, int64_t S, const float *x, float scale, float *y)
{
    __shared__ float shf[32];
    __shared__ double shd[32];
    for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
        const float *xr = x + r * S;
        float *yr = y + r * S;
        float m = -INFINITY;
        for (int64_t j = threadIdx.x; j < S; j += blockDim.x) {
            float v = xr[j] * scale;
            m = v > m ? v : m;
        }
        m = lily_block_max(m, shf, -INFINITY);
        double s = 0.0;
        for (int64_t j = threadIdx.x; j < S; j += blockDim.x) {
            float e = lily_expf(xr[j] * scale - m);
            yr[j] = e;
            s += e;
        }
        s = lily_block_sum(s, shd);
        float inv = (float)(1.0 / s);
        for (int64_t j = threadIdx.x; j < S; j += blockDim.x) yr[j] *= inv;
    }
}

/* dx = scale y (dy - sum(y dy)); with scale = 1 and dy = dP this is attention's dS. */
__global__ static void softmax_grad_rows(int64_t R, int64_t S, const float *y, float scale,
                                         const float *dy, float *dx)
{
    __shared__ double shd[32];
    for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
        const float *yr = y + r * S, *dyr = dy + r * S;
        float *dxr = dx + r * S;
        double dot = 0.0;
        for (int64_t j = threadIdx.x; j < S; j += blockDim.x) dot += (double)yr[j] * dyr[j];
        dot = lily_block_sum(dot, shd);
        float fd = (float)dot;
        for (int64_t j = threadIdx.x; j < S; j += blockDim.x) dxr[j] = scale * yr[j] * (dyr[j] - fd);
    }
}

int lily_cuda_softmax_forward(LilyCudaHandle *h, int64_t M, int64_t D, const float *x, float scale,
                              float *y)
{
    if (M * D == 0) return LILY_CUDA_OK;
    softmax_rows<<<row_grid(M), ROW_THREADS, 0, h->stream>>>(M, D, x, scale, y);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

int lily_cuda_softmax_backward(LilyCudaHandle *h, int64_t M, int64_t D, const float *y,
                               float scale, const float *dy, float *dx)
{
    if (M * D == 0) return LILY_CUDA_OK;
    softmax_grad_rows<<<row_grid(M), ROW_THREADS, 0, h->stream>>>(M, D, y, scale, dy, dx);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

/* Block sizes: all of it when it fits, else all batches and fewer rows, else fewer batches. */
static void plan_blocks(int64_t B, int64_t T, int64_t S, int64_t *bb, int64_t *tb)
{
    int64_t s = S > 0 ? S : 1;
    if (B * T * s <= LILY_ATTN_BUDGET) {
        *bb = B;
        *tb = T;
    } else if (B * s <= LILY_ATTN_BUDGET) {
        *bb = B;
        *tb = LILY_ATTN_BUDGET / (B * s);
    } else {
        int64_t t = LILY_ATTN_BUDGET / s;
        *tb = t < 1 ? 1 : (t < T ? t : T);
        int64_t b = LILY_ATTN_BUDGET / (*tb * s);
        *bb = b < 1 ? 1 : b;
    }
}

/* P[bn, rows, S] = softmax(scale q_blk k^T) for batches b0.. and query rows r0.. */
static int probs(LilyCudaHandle *h, int64_t T, int64_t S, int64_t D, int64_t b0, int64_t bn,
                 int64_t r0, int64_t rows, const float *q, const float *k, float scale, float *P)
{
    LILY_CUDA_TRY(lily_cuda_sgemm_batched(h, false, true, rows, S, D, scale, q + (b0 * T + r0) * D,
                                          D, T * D, k + b0 * S * D, D, S * D, 0.0f, P, S,
                                          rows * S, bn));
    return lily_cuda_softmax_forward(h, bn * rows, S, P, 1.0f, P);
}

int lily_cuda_attention_forward(LilyCudaHandle *h, int64_t B, int64_t T, int64_t S, int64_t D,
                                int64_t Dv, const float *q, const float *k, const float *v,
                                float scale, float *out)
{
    if (B == 0 || T == 0 || Dv == 0) return LILY_CUDA_OK;
    int64_t bb, tb;
    plan_blocks(B, T, S, &bb, &tb);
    void *buf = NULL;
    LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_AUX, (size_t)(bb * tb * (S > 0 ? S : 1)) * sizeof(float), &buf));
    float *P = (float *)buf;
    for (int64_t b0 = 0; b0 < B; b0 += bb) {
        int64_t bn = B - b0 < bb ? B - b0 : bb;
        for (int64_t r0 = 0; r0 < T; r0 += tb) {
            int64_t rows = T - r0 < tb ? T - r0 : tb;
            LILY_CUDA_TRY(probs(h, T, S, D, b0, bn, r0, rows, q, k, scale, P));
            LILY_CUDA_TRY(lily_cuda_sgemm_batched(h, false, false, rows, Dv, S, 1.0f, P, S, rows * S,
                                                  v + b0 * S * Dv, Dv, S * Dv, 0.0f,
                                                  out + (b0 * T + r0) * Dv, Dv, T * Dv, bn));
        }
    }
    return LILY_CUDA_OK;
}

int lily_cuda_attention_backward(LilyCudaHandle *h, int64_t B, int64_t T, int64_t S, int64_t D,
                                 int64_t Dv, const float *q, const float *k, const float *v,
                                 float scale, const float *dout, float *dq, float *dk, float *dv)
{
    if (dk) LILY_CUDA_TRY(lily_cuda_fill(h, dk, 0.0f, B * S * D));
    if (dv) LILY_CUDA_TRY(lily_cuda_fill(h, dv, 0.0f, B * S * Dv));
    if (B == 0 || T == 0) return LILY_CUDA_OK;
    if (S == 0) return dq ? lily_cuda_fill(h, dq, 0.0f, B * T * D) : LILY_CUDA_OK;
    int64_t bb, tb;
    plan_blocks(B, T, S, &bb, &tb);
    void *b1 = NULL, *b2 = NULL;
    size_t bytes = (size_t)(bb * tb * S) * sizeof(float);
    LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_AUX, bytes, &b1));
    LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_AUX2, bytes, &b2));
    float *P = (float *)b1, *dP = (float *)b2;
    for (int64_t b0 = 0; b0 < B; b0 += bb) {
        int64_t bn = B - b0 < bb ? B - b0 : bb;
        for (int64_t r0 = 0; r0 < T; r0 += tb) {
            int64_t rows = T - r0 < tb ? T - r0 : tb;
            const float *qb = q + (b0 * T + r0) * D, *dob = dout + (b0 * T + r0) * Dv;
            LILY_CUDA_TRY(probs(h, T, S, D, b0, bn, r0, rows, q, k, scale, P));
            if (dv)
                LILY_CUDA_TRY(lily_cuda_sgemm_batched(h, true, false, S, Dv, rows, 1.0f, P, S,
                                                      rows * S, dob, Dv, T * Dv, 1.0f,
                                                      dv + b0 * S * Dv, Dv, S * Dv, bn));
            if (!dq && !dk) continue;
            LILY_CUDA_TRY(lily_cuda_sgemm_batched(h, false, true, rows, S, Dv, 1.0f, dob, Dv, T * Dv,
                                                  v + b0 * S * Dv, Dv, S * Dv, 0.0f, dP, S,
                                                  rows * S, bn));
            LILY_CUDA_TRY(lily_cuda_softmax_backward(h, bn * rows, S, P, 1.0f, dP, dP));
            if (dq)
                LILY_CUDA_TRY(lily_cuda_sgemm_batched(h, false, false, rows, D, S, scale, dP, S,
                                                      rows * S, k + b0 * S * D, D, S * D, 0.0f,
                                                      dq + (b0 * T + r0) * D, D, T * D, bn));
            if (dk)
                LILY_CUDA_TRY(lily_cuda_sgemm_batched(h, true, false, S, D, rows, scale, dP, S,
                                                      rows * S, qb, D, T * D, 1.0f,
                                                      dk + b0 * S * D, D, S * D, bn));
        }
    }
    return LILY_CUDA_OK;
}
