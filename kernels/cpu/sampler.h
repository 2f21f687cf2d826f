/* kernels/cpu/sampler.h - the DDIM update over a latent tensor on the CPU.
 *
 * Per-element math: kernels/common/sampler.h (AudioSR's DDIMSampler.p_sample_ddim, v
 * prediction, classifier-free guidance). */
#ifndef LILY_KERNELS_CPU_SAMPLER_H
#define LILY_KERNELS_CPU_SAMPLER_H

#include <stdint.h>

/* x <- x_prev in place; vu NULL = no guidance (v = vc); noise NULL = zero noise; x0 (the
 * predicted clean latent) may be NULL. */
void lily_cpu_ddim_step(int n_threads, float *x, const float *vc, const float *vu,
                        const float *noise, float guidance, double alpha, double alpha_prev,
                        double sigma, float *x0, int64_t n);

#endif /* LILY_KERNELS_CPU_SAMPLER_H */
