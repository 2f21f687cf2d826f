/* kernels/common/sampler.h - one DDIM step per element (v-prediction, classifier-free guidance).
 *
 * AudioSR's DDIMSampler.p_sample_ddim with parameterization "v" and eta = 1 (the CLI default):
 *   v    = v_uncond + g (v_cond - v_uncond)          (unconditional_guidance_scale g)
 *   x0   = sqrt(a) x - sqrt(1 - a) v                 (predict_start_from_z_and_v)
 *   eps  = sqrt(a) v + sqrt(1 - a) x                 (predict_eps_from_z_and_v)
 *   x'   = sqrt(a_prev) x0 + sqrt(1 - a_prev - sigma^2) eps + sigma noise
 * with a = alphas_cumprod[t], a_prev = alphas_cumprod[t_prev]. The square roots are taken once
 * per step in double (lily_ddim_coefs); the per-element arithmetic is float. Without guidance
 * the caller passes vu = vc, for which v = vc exactly. */
#ifndef LILY_KERNELS_COMMON_SAMPLER_H
#define LILY_KERNELS_COMMON_SAMPLER_H

#include <math.h>

#include "hd.h"

typedef struct LilyDdimCoefs {
    float sa;    /* sqrt(a) */
    float s1a;   /* sqrt(1 - a) */
    float sap;   /* sqrt(a_prev) */
    float sdir;  /* sqrt(1 - a_prev - sigma^2), 0 if that is negative by rounding */
    float sigma;
} LilyDdimCoefs;

LILY_HD LilyDdimCoefs lily_ddim_coefs(double alpha, double alpha_prev, double sigma)
{
    LilyDdimCoefs c;
    double dir = 1.0 - alpha_prev - sigma * sigma;
    c.sa = (float)sqrt(alpha);
    c.s1a = (float)sqrt(1.0 - alpha);
    c.sap = (float)sqrt(alpha_prev);
    c.sdir = (float)(dir > 0.0 ? sqrt(dir) : 0.0);
    c.sigma = (float)sigma;
    return c;
}

/* Returns x_prev; *x0 receives the predicted clean sample. */
LILY_HD float lily_ddim_step_elem(float x, float vc, float vu, float noise, float guidance,
                                  LilyDdimCoefs c, float *x0)
{
    float v = vu + guidance * (vc - vu);
    float p0 = c.sa * x - c.s1a * v;
    float eps = c.sa * v + c.s1a * x;
    *x0 = p0;
    return c.sap * p0 + c.sdir * eps + c.sigma * noise;
}

#endif /* LILY_KERNELS_COMMON_SAMPLER_H */
