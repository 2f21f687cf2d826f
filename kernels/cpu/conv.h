/* kernels/cpu/conv.h - 1-D/2-D convolution and 1-D transposed convolution on the CPU (oneDNN).
 *
 * Matches torch.nn.functional.conv1d / conv2d (weights [O, C, K...], cross-correlation,
 * zero padding, possibly asymmetric) and conv_transpose1d (weights [C, O, K], output
 * (L - 1) stride - 2 pad + K), groups = 1. Activations are f32 and row-major (NCL / NCHW);
 * weights f32, bf16 (the product in bf16 with f32 accumulation: the input is rounded to bf16)
 * or f16 (converted to f32 on the CPU, computed in f32). */
#ifndef LILY_KERNELS_CPU_CONV_H
#define LILY_KERNELS_CPU_CONV_H

#include <stdint.h>

#include "common/conv-shape.h"
#include "cpu/onednn.h"

/* y = conv(x, w) + b; b may be NULL. wdt is a LilyKDType; w_stamp != 0 lets the handle cache
 * the converted/reordered weights. */
int lily_cpu_conv_forward(LilyCpuDnn *h, const LilyConvShape *s, const float *x, const void *w,
                          int wdt, uint64_t w_stamp, const float *b, float *y);

/* f32 backward: dx = dL/dx (overwritten), dw += dL/dw, db += dL/db; any may be NULL. */
int lily_cpu_conv_backward(LilyCpuDnn *h, const LilyConvShape *s, const float *x, const float *w,
                           const float *dy, float *dx, float *dw, float *db);

#endif /* LILY_KERNELS_CPU_CONV_H */
