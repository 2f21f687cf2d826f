/* kernels/cuda/sampler.cu - DDIM step kernel over kernels/common/sampler.h (see sampler.h).
 * The square roots of the schedule are taken once on the host in double
 * (lily_ddim_coefs), exactly as the CPU does, and passed by value. */
#include "common/sampler.h"
#include "cuda/handle-impl.cuh"
#include "cuda/sampler.h"

__global__ static void ddim_kernel(float *x, const float *vc, const float *vu, const float *noise,
                                   float guidance, LilyDdimCoefs c, float *x0, int64_t n)
{
    LILY_CUDA_LOOP(i, n)
    {
        float p0;
        float v_c = vc[i];
        x[i] = lily_ddim_step_elem(x[i], v_c, vu ? vu[i] : v_c, noise ? noise[i] : 0.0f, guidance,
                                   c, &p0);
        if (x0) x0[i] = p0;
    }
}

int lily_cuda_ddim_step(LilyCudaHandle *h, float *x, const float *vc, const float *vu,
                        const float *noise, float guidance, double alpha, double alpha_prev,
                        double sigma, float *x0, int64_t n)
{
    if (n == 0) return LILY_CUDA_OK;
    LilyDdimCoefs c = lily_ddim_coefs(alpha, alpha_prev, sigma);
    ddim_kernel<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(x, vc, vu, noise, guidance,
                                                                        c, x0, n);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}
