/* kernels/cpu/sampler.c - DDIM step loop over kernels/common/sampler.h (see sampler.h). */
#include "common/sampler.h"
#include "cpu/sampler.h"

void lily_cpu_ddim_step(int n_threads, float *x, const float *vc, const float *vu,
                        const float *noise, float guidance, double alpha, double alpha_prev,
                        double sigma, float *x0, int64_t n)
{
    LilyDdimCoefs c = lily_ddim_coefs(alpha, alpha_prev, sigma);
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float p0;
        float v_c = vc[i];
        x[i] = lily_ddim_step_elem(x[i], v_c, vu ? vu[i] : v_c, noise ? noise[i] : 0.0f, guidance, c, &p0);
        if (x0) x0[i] = p0;
    }
}
