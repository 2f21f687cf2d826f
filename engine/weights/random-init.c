/* weights/random-init.c - deterministic random weights for a config (lily-convert --random):
 * the model the benchmark and the bundled default model run when no trained weights are at hand.
 *
 * Values follow PyTorch's default initialisation of the module that owns each tensor
 * (nn.Conv*d / nn.Linear reset_parameters: kaiming_uniform(a=sqrt(5)) for weights and
 * U(+-1/sqrt(fan_in)) for biases, which are the same bound 1/sqrt(fan_in); norms start at
 * gamma = 1, beta = 0). The numbers come from Philox4x32-10 (kernels/common/philox.h) keyed by
 * the seed, with one stream per tensor name, so a tensor's values do not depend on which other
 * tensors are written or in what order. AudioSR's zero-initialised output convolutions are
 * given fan-in values too: an all-zero UNet output would make every benchmark trivially
 * cheap to check and hide wiring mistakes. Schedule buffers are computed as AudioSR's
 * register_schedule does (float64, stored as float32). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/philox.h" /* kernels/common: lily_philox_uniform */
#include "weights/arch.h"

static uint64_t name_stream(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* audiosr/latent_diffusion/modules/diffusionmodules/util.py make_beta_schedule and
 * ddpm.py DDPM.register_schedule (v_posterior = 0, logvar_init = 0). */
static double schedule_at(const char *name, const LilyDiffusionConfig *d, int64_t i)
{
    int64_t T = d->timesteps;
    if (strcmp(name, "logvar") == 0) return 0.0;
    double beta_i = 0, ac_i = 1, ac_prev = 1;
    /* Products are cheap for T = 1000; recomputing keeps this free of state. */
    for (int64_t k = 0; k <= i; k++) {
        double beta;
        if (strcmp(d->beta_schedule, "linear") == 0) {
            double a = sqrt(d->linear_start), b = sqrt(d->linear_end);
            double v = T > 1 ? a + (b - a) * (double)k / (double)(T - 1) : a;
            beta = v * v;
        } else {
            const double s = 0.008, half_pi = 1.5707963267948966;
            double t0 = ((double)k / (double)T + s) / (1 + s) * half_pi;
            double t1 = ((double)(k + 1) / (double)T + s) / (1 + s) * half_pi;
            double a0 = cos(t0) * cos(t0), a1 = cos(t1) * cos(t1);
            beta = 1 - a1 / a0;
        }
        ac_prev = ac_i;
        ac_i *= 1 - beta;
        beta_i = beta;
    }
    if (strcmp(name, "betas") == 0) return beta_i;
    if (strcmp(name, "alphas_cumprod") == 0) return ac_i;
    if (strcmp(name, "alphas_cumprod_prev") == 0) return ac_prev;
    if (strcmp(name, "sqrt_alphas_cumprod") == 0) return sqrt(ac_i);
    if (strcmp(name, "sqrt_one_minus_alphas_cumprod") == 0) return sqrt(1 - ac_i);
    if (strcmp(name, "log_one_minus_alphas_cumprod") == 0) return log(1 - ac_i);
    /* AudioSR adds 1e-10 here (alphas_cumprod[999] is exactly 0 in float64): tiny-a.bin's
     * buffers match this bit for bit and differ without it. */
    if (strcmp(name, "sqrt_recip_alphas_cumprod") == 0) return sqrt(1 / (ac_i + 1e-10));
    if (strcmp(name, "sqrt_recipm1_alphas_cumprod") == 0) return sqrt(1 / (ac_i + 1e-10) - 1);
    double post_var = beta_i * (1 - ac_prev) / (1 - ac_i);
    if (strcmp(name, "posterior_variance") == 0) return post_var;
    if (strcmp(name, "posterior_log_variance_clipped") == 0) return log(fmax(post_var, 1e-20));
    if (strcmp(name, "posterior_mean_coef1") == 0) return beta_i * sqrt(ac_prev) / (1 - ac_i);
    if (strcmp(name, "posterior_mean_coef2") == 0) return (1 - ac_prev) * sqrt(1 - beta_i) / (1 - ac_i);
    return 0.0;
}

void lily_arch_random_values(const LilyArchTensor *t, const LilyModelConfig *cfg, uint64_t seed,
                             uint64_t first, size_t count, float *out)
{
    switch (t->init) {
    case LILY_INIT_FAN_IN: {
        uint64_t stream = name_stream(t->name);
        float bound = t->fan_in > 0 ? (float)(1.0 / sqrt((double)t->fan_in)) : 1.0f;
        for (size_t i = 0; i < count; i++)
            out[i] = (2.0f * lily_philox_uniform(seed, stream, first + i) - 1.0f) * bound;
        break;
    }
    case LILY_INIT_ONES:
        for (size_t i = 0; i < count; i++) out[i] = 1.0f;
        break;
    case LILY_INIT_ZEROS: memset(out, 0, count * sizeof *out); break;
    case LILY_INIT_CONST:
        for (size_t i = 0; i < count; i++) out[i] = (float)t->init_value;
        break;
    case LILY_INIT_SCHEDULE: {
        const char *name = strrchr(t->name, '.');
        name = name ? name + 1 : t->name;
        for (size_t i = 0; i < count; i++)
            out[i] = (float)schedule_at(name, &cfg->diffusion, (int64_t)(first + i));
        break;
    }
    }
}
