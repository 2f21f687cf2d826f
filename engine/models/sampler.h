/* models/sampler.h - AudioSR's DDIM sampler with v-prediction and classifier-free guidance.
 *
 * audiosr/latent_diffusion/models/ddim.py (make_schedule, p_sample_ddim) and
 * .../diffusionmodules/util.py (make_ddim_timesteps "uniform", make_ddim_sampling_parameters):
 * spec.md section 3. Timesteps t_i = i * (T // S) + 1, run from i = S-1 down to 0;
 * a_i = ac[t_i], a_prev_i = ac[t_{i-1}] (ac[0] for i = 0), sigma_i = eta * sqrt((1 - a_prev) /
 * (1 - a) * (1 - a / a_prev)). The alphas are taken from the float32 buffer AudioSR stores. */
#ifndef LILY_MODELS_SAMPLER_H
#define LILY_MODELS_SAMPLER_H

#include "models/model.h"

#define LILY_MAX_STEPS 1000

typedef struct LilyDdimSchedule {
    int steps;
    int t[LILY_MAX_STEPS];             /* ascending, like AudioSR's ddim_timesteps */
    double alpha[LILY_MAX_STEPS];      /* alphas_cumprod[t_i] (float32-rounded) */
    double alpha_prev[LILY_MAX_STEPS];
    double sigma[LILY_MAX_STEPS];
} LilyDdimSchedule;

LilyStatus lily_ddim_schedule(LilyContext *ctx, const LilyModel *m, int steps, double eta,
                              LilyDdimSchedule *s);

/* Fills `noise` (shape of x) with the standard-normal draw of sampler step k (k counts from 0
 * at the first, noisiest step). */
typedef LilyStatus (*LilyNoiseFn)(LilyContext *ctx, void *user, int k, LilyTensor *noise);
/* Called after each step with the guided v-predictions and x0 (for dumps and tests). */
typedef LilyStatus (*LilyStepHook)(LilyContext *ctx, void *user, int k, int t, const LilyTensor *vc,
                                   const LilyTensor *vu, const LilyTensor *x0, const LilyTensor *x);

typedef struct LilySampleArgs {
    const LilyTensor *cond;   /* scale * condition latent [N, 16, h, w] */
    const LilyTensor *uncond; /* scale * -11.4981 everywhere, same shape; NULL = no guidance */
    float guidance;           /* v = vu + g (vc - vu) */
    const LilyDdimSchedule *schedule;
    LilyNoiseFn noise;
    void *noise_user;
    LilyStepHook hook;
    void *hook_user;
} LilySampleArgs;

/* x: in x_T, out x_0 (both [N, 16, h, w]). Checks the abort callback every step. */
LilyStatus lily_ddim_sample(LilyContext *ctx, const LilyModel *m, const LilySampleArgs *a,
                            LilyTensor *x);

#endif /* LILY_MODELS_SAMPLER_H */
