/* kernels/cpu/attention.h - scaled dot-product attention and row softmax on the CPU.
 *
 * Attention matches torch.nn.functional.scaled_dot_product_attention without mask or dropout,
 * with an explicit scale (AudioSR computes softmax(q k^T * scale) v in its CrossAttention and
 * AttnBlock): out[b] = softmax(q[b] k[b]^T * scale) v[b], q [B,T,D], k [B,S,D], v [B,S,Dv],
 * softmax over S. Rows are processed in blocks so the score buffer stays a few MB whatever T
 * and S are; the backward pass recomputes each block's probabilities from q and k instead of
 * storing them. Softmax matches torch.softmax(x * scale, dim=-1). */
#ifndef LILY_KERNELS_CPU_ATTENTION_H
#define LILY_KERNELS_CPU_ATTENTION_H

#include <stdint.h>

#include "cpu/onednn.h"

int lily_cpu_attention_forward(LilyCpuDnn *h, int64_t B, int64_t T, int64_t S, int64_t D, int64_t Dv,
                               const float *q, const float *k, const float *v, float scale, float *out);

/* dq, dk, dv overwritten; any may be NULL. */
int lily_cpu_attention_backward(LilyCpuDnn *h, int64_t B, int64_t T, int64_t S, int64_t D,
                                int64_t Dv, const float *q, const float *k, const float *v,
                                float scale, const float *dout, float *dq, float *dk, float *dv);

/* y[M,D] = softmax(x * scale) over the last dimension (y may equal x). */
void lily_cpu_softmax_forward(int n_threads, int64_t M, int64_t D, const float *x, float scale,
                              float *y);
/* dx = scale * y * (dy - sum(dy * y)) per row, from the forward output y (dx may equal dy). */
void lily_cpu_softmax_backward(int n_threads, int64_t M, int64_t D, const float *y, float scale,
                               const float *dy, float *dx);

#endif /* LILY_KERNELS_CPU_ATTENTION_H */
