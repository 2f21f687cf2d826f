/* kernels/cuda/norm.h - GroupNorm (optionally followed by SiLU) and LayerNorm on the GPU.
 *
 * Same contract as kernels/cpu/norm.h: torch.nn.functional.group_norm(x, G, gamma, beta,
 * eps) [+ silu] over x [N, C, S] and layer_norm over the last dim of x [M, D]; statistics in
 * double, two-pass; per-element arithmetic from kernels/common/norm.h; gamma/beta may be NULL
 * (1 and 0); backward overwrites dx and accumulates dgamma/dbeta. */
#ifndef LILY_KERNELS_CUDA_NORM_H
#define LILY_KERNELS_CUDA_NORM_H

#include <stdint.h>

#include "cuda/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

int lily_cuda_group_norm_forward(LilyCudaHandle *h, int64_t N, int64_t C, int64_t S, int64_t G,
                                 const float *x, const float *gamma, const float *beta, float eps,
                                 int silu, float *y);
int lily_cuda_group_norm_backward(LilyCudaHandle *h, int64_t N, int64_t C, int64_t S, int64_t G,
                                  const float *x, const float *gamma, const float *beta,
                                  float eps, int silu, const float *dy, float *dx, float *dgamma,
                                  float *dbeta);

int lily_cuda_layer_norm_forward(LilyCudaHandle *h, int64_t M, int64_t D, const float *x,
                                 const float *gamma, const float *beta, float eps, float *y);
int lily_cuda_layer_norm_backward(LilyCudaHandle *h, int64_t M, int64_t D, const float *x,
                                  const float *gamma, float eps, const float *dy, float *dx,
                                  float *dgamma, float *dbeta);

#ifdef __cplusplus
}
#endif

#endif /* LILY_KERNELS_CUDA_NORM_H */
