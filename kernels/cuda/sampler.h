/* kernels/cuda/sampler.h - the DDIM update over a latent tensor on the GPU.
 *
 * Per-element math: kernels/common/sampler.h (AudioSR's DDIMSampler.p_sample_ddim, v
 * prediction, classifier-free guidance), the function kernels/cpu/sampler.c calls. */
#ifndef LILY_KERNELS_CUDA_SAMPLER_H
#define LILY_KERNELS_CUDA_SAMPLER_H

#include <stdint.h>

#include "cuda/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x <- x_prev in place; vu NULL = no guidance (v = vc); noise NULL = zero noise; x0 (the
 * predicted clean latent) may be NULL. */
int lily_cuda_ddim_step(LilyCudaHandle *h, float *x, const float *vc, const float *vu,
                        const float *noise, float guidance, double alpha, double alpha_prev,
                        double sigma, float *x0, int64_t n);

#ifdef __cplusplus
}
#endif

#endif /* LILY_KERNELS_CUDA_SAMPLER_H */
