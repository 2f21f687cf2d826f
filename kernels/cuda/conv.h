/* kernels/cuda/conv.h - 1-D/2-D convolution and 1-D transposed convolution on the GPU (cuDNN).
 *
 * Same contract as kernels/cpu/conv.h: torch.nn.functional.conv1d / conv2d (weights
 * [O, C, K...], cross-correlation, zero padding, possibly asymmetric, dilation) and
 * conv_transpose1d (weights [C, O, K], output (L - 1) stride - 2 pad + K), groups = 1, NCL /
 * NCHW row-major activations in f32.
 *
 * Weights f32: an f32 convolution (cuDNN's FMA math: no TF32). Weights bf16 / f16: the input
 * is rounded to the weight's type and cuDNN convolves in that type with f32 accumulation
 * (its PSEUDO_BFLOAT16 / PSEUDO_HALF configurations). The legacy cuDNN API writes the output
 * in the data type too, so the 16-bit paths round the output once more before it is widened
 * back to f32 and the bias is added in f32: one extra rounding (2^-9 relative for bf16, 2^-11
 * for f16) compared with the CPU, which the CUDA tests' tolerances account for. */
#ifndef LILY_KERNELS_CUDA_CONV_H
#define LILY_KERNELS_CUDA_CONV_H

#include <stdint.h>

#include "common/conv-shape.h"
#include "cuda/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = conv(x, w) + b; b may be NULL; wdt is a LilyKDType. */
int lily_cuda_conv_forward(LilyCudaHandle *h, const LilyConvShape *s, const float *x,
                           const void *w, int wdt, const float *b, float *y);
/* f32 backward: dx = dL/dx (overwritten), dw += dL/dw, db += dL/db; any may be NULL. */
int lily_cuda_conv_backward(LilyCudaHandle *h, const LilyConvShape *s, const float *x,
                            const float *w, const float *dy, float *dx, float *dw, float *db);

#ifdef __cplusplus
}
#endif

#endif /* LILY_KERNELS_CUDA_CONV_H */
