/* kernels/cpu/activation.h - elementwise activations and GEGLU on the CPU.
 *
 * Per-element math is kernels/common/activation.h (PyTorch's silu, exact gelu, leaky_relu,
 * tanh, ... and diffusers' GEGLU). Loops are OpenMP-parallel above a size threshold. */
#ifndef LILY_KERNELS_CPU_ACTIVATION_H
#define LILY_KERNELS_CPU_ACTIVATION_H

#include <stdint.h>

#include "common/activation.h"

/* y = op(x) elementwise (y may equal x). */
void lily_cpu_unary_forward(int n_threads, LilyActOp op, float alpha, const float *x, float *y,
                            int64_t n);
/* dx = dy * op'(x) (dx may equal dy). */
void lily_cpu_unary_backward(int n_threads, LilyActOp op, float alpha, const float *x,
                             const float *dy, float *dx, int64_t n);

/* y[M,D] = x[:, :D] * gelu(x[:, D:]) for x [M, 2D]. */
void lily_cpu_geglu_forward(int n_threads, int64_t M, int64_t D, const float *x, float *y);
/* dx [M, 2D] from dy [M, D]. */
void lily_cpu_geglu_backward(int n_threads, int64_t M, int64_t D, const float *x, const float *dy,
                             float *dx);

#endif /* LILY_KERNELS_CPU_ACTIVATION_H */
