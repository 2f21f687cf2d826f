/* kernels/cuda/activation.h - elementwise activations and GEGLU on the GPU.
 *
 * Per-element math is kernels/common/activation.h, the same functions the CPU loops call
 * (PyTorch's silu, exact gelu, leaky_relu, tanh, ... and diffusers' GEGLU). `op` is a
 * LilyActOp (the engine's LilyUnaryOp values). */
#ifndef LILY_KERNELS_CUDA_ACTIVATION_H
#define LILY_KERNELS_CUDA_ACTIVATION_H

#include <stdint.h>

#include "cuda/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = op(x) (y may equal x). */
int lily_cuda_unary_forward(LilyCudaHandle *h, int op, float alpha, const float *x, float *y,
                            int64_t n);
/* dx = dy * op'(x) (dx may equal dy). */
int lily_cuda_unary_backward(LilyCudaHandle *h, int op, float alpha, const float *x,
                             const float *dy, float *dx, int64_t n);
/* y[M,D] = x[:, :D] * gelu(x[:, D:]) for x [M, 2D]. */
int lily_cuda_geglu_forward(LilyCudaHandle *h, int64_t M, int64_t D, const float *x, float *y);
/* dx [M, 2D] from dy [M, D]. */
int lily_cuda_geglu_backward(LilyCudaHandle *h, int64_t M, int64_t D, const float *x,
                             const float *dy, float *dx);

#ifdef __cplusplus
}
#endif

#endif /* LILY_KERNELS_CUDA_ACTIVATION_H */
