/* kernels/common/norm.h - GroupNorm and LayerNorm arithmetic per element.
 *
 * Matches torch.nn.functional.group_norm / layer_norm (biased variance, eps inside the square
 * root) followed, for AudioSR's "GN -> SiLU" pairs, by an optional fused SiLU. Statistics are
 * accumulated in double by the kernels (the reductions differ between CPU and CUDA; what they
 * produce, mean and rstd = 1 / sqrt(var + eps), is applied here in float).
 *
 * Backward, with xhat = (x - mean) * rstd, z = gamma xhat + beta, y = silu ? silu(z) : z and
 * g = dL/dz: dgamma += sum g xhat, dbeta += sum g, and over the normalised set of size n
 * dx = rstd (g gamma - mean(g gamma) - xhat mean(g gamma xhat)). */
#ifndef LILY_KERNELS_COMMON_NORM_H
#define LILY_KERNELS_COMMON_NORM_H

#include "activation.h"
#include "hd.h"

/* y for one element from its group/row statistics: a = gamma * rstd (per channel), b = beta.
 * (x - mean) first, so a large mean does not cancel away the precision of the result. */
LILY_HD float lily_norm_apply(float x, float mean, float a, float b, int silu)
{
    float z = (x - mean) * a + b;
    return silu ? lily_siluf(z) : z;
}

/* dL/dz for one element from dL/dy (recomputing z from x when SiLU is fused). */
LILY_HD float lily_norm_dz(float x, float mean, float a, float b, int silu, float dy)
{
    return silu ? dy * lily_silu_gradf((x - mean) * a + b) : dy;
}

/* dx for one element: g_gamma = g * gamma, xhat = (x - mean) * rstd, and the two means over
 * the normalised set m1 = mean(g_gamma), m2 = mean(g_gamma * xhat). */
LILY_HD float lily_norm_dx(float g_gamma, float xhat, float rstd, float m1, float m2)
{
    return rstd * (g_gamma - m1 - xhat * m2);
}

#endif /* LILY_KERNELS_COMMON_NORM_H */
