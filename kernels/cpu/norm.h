/* kernels/cpu/norm.h - GroupNorm (optionally followed by SiLU) and LayerNorm on the CPU.
 *
 * Match torch.nn.functional.group_norm(x, G, gamma, beta, eps) [+ silu] over x [N, C, S]
 * (S = all trailing dims) and layer_norm over the last dim of x [M, D]. Statistics are
 * computed in double, two-pass (mean, then the mean of squared deviations), so the result is
 * as exact as float output allows; AudioSR uses eps 1e-5 (UNet) and 1e-6 (VAE).
 * gamma/beta may be NULL (1 and 0). Backward: dx overwritten, dgamma/dbeta accumulated. */
#ifndef LILY_KERNELS_CPU_NORM_H
#define LILY_KERNELS_CPU_NORM_H

#include <stdint.h>

int lily_cpu_group_norm_forward(int n_threads, int64_t N, int64_t C, int64_t S, int64_t G,
                                const float *x, const float *gamma, const float *beta, float eps,
                                int silu, float *y);
int lily_cpu_group_norm_backward(int n_threads, int64_t N, int64_t C, int64_t S, int64_t G,
                                 const float *x, const float *gamma, const float *beta, float eps,
                                 int silu, const float *dy, float *dx, float *dgamma, float *dbeta);

int lily_cpu_layer_norm_forward(int n_threads, int64_t M, int64_t D, const float *x,
                                const float *gamma, const float *beta, float eps, float *y);
int lily_cpu_layer_norm_backward(int n_threads, int64_t M, int64_t D, const float *x,
                                 const float *gamma, float eps, const float *dy, float *dx,
                                 float *dgamma, float *dbeta);

#endif /* LILY_KERNELS_CPU_NORM_H */
