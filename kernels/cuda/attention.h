/* kernels/cuda/attention.h - scaled dot-product attention and row softmax on the GPU.
 *
 * Same contract as kernels/cpu/attention.h: out[b] = softmax(q[b] k[b]^T * scale) v[b] with
 * q [B,T,D], k [B,S,D], v [B,S,Dv], softmax over S, no mask, no dropout (AudioSR's
 * CrossAttention and AttnBlock). Computed with cuBLAS batched products around a softmax
 * kernel, in blocks of query rows (and of batches) so the score buffer stays within a fixed
 * budget whatever T and S are; the backward pass recomputes each block's probabilities. */
#ifndef LILY_KERNELS_CUDA_ATTENTION_H
#define LILY_KERNELS_CUDA_ATTENTION_H

#include <stdint.h>

#include "cuda/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

int lily_cuda_attention_forward(LilyCudaHandle *h, int64_t B, int64_t T, int64_t S, int64_t D,
                                int64_t Dv, const float *q, const float *k, const float *v,
                                float scale, float *out);
/* dq, dk, dv overwritten; any may be NULL. */
int lily_cuda_attention_backward(LilyCudaHandle *h, int64_t B, int64_t T, int64_t S, int64_t D,
                                 int64_t Dv, const float *q, const float *k, const float *v,
                                 float scale, const float *dout, float *dq, float *dk, float *dv);

/* y[M,D] = softmax(x * scale) over the last dimension (y may equal x). */
int lily_cuda_softmax_forward(LilyCudaHandle *h, int64_t M, int64_t D, const float *x, float scale,
                              float *y);
/* dx = scale * y * (dy - sum(dy * y)) per row (dx may equal dy). */
int lily_cuda_softmax_backward(LilyCudaHandle *h, int64_t M, int64_t D, const float *y,
                               float scale, const float *dy, float *dx);

#ifdef __cplusplus
}
#endif

#endif /* LILY_KERNELS_CUDA_ATTENTION_H */
