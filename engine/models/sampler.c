/* models/sampler.c - DDIM with v-prediction and classifier-free guidance (see sampler.h). */
#include <math.h>
#include <string.h>

#include "models/blocks.h"
#include "models/sampler.h"

LilyStatus lily_ddim_schedule(LilyContext *ctx, const LilyModel *m, int steps, double eta,
                              LilyDdimSchedule *s)
{
    int T = m->cfg.diffusion.timesteps;
    if (steps < 1 || steps > T || steps > LILY_MAX_STEPS)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "steps must be between 1 and %d, got %d",
                          T < LILY_MAX_STEPS ? T : LILY_MAX_STEPS, steps);
    if (eta < 0.0 || !isfinite(eta))
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "eta must be >= 0, got %g", eta);
    memset(s, 0, sizeof *s);
    s->steps = steps;
    int c = T / steps;
    for (int i = 0; i < steps; i++) {
        s->t[i] = i * c + 1;
        if (s->t[i] >= T) s->t[i] = T - 1;
    }
    for (int i = 0; i < steps; i++) {
        /* AudioSR indexes the float32 alphas_cumprod buffer */
        double a = (float)m->alphas_cumprod[s->t[i]];
        double ap = (float)(i == 0 ? m->alphas_cumprod[0] : m->alphas_cumprod[s->t[i - 1]]);
        s->alpha[i] = a;
        s->alpha_prev[i] = ap;
        double v = (1.0 - ap) / (1.0 - a) * (1.0 - a / ap);
        s->sigma[i] = eta * sqrt(v > 0 ? v : 0);
    }
    return LILY_OK;
}

LilyStatus lily_ddim_sample(LilyContext *ctx, const LilyModel *m, const LilySampleArgs *a,
                            LilyTensor *x)
{
    const LilyDdimSchedule *s = a->schedule;
    int64_t n = x->shape[0], C = x->shape[1], h = x->shape[2], w = x->shape[3];
    int64_t cin = m->cfg.unet.in_channels;
    if (a->cond->shape[1] + C != cin)
        return lily_error(ctx, LILY_ERR_SHAPE, "sampler: x (%lld ch) + condition (%lld ch) must make "
                          "the UNet's %lld input channels",
                          (long long)C, (long long)a->cond->shape[1], (long long)cin);
    LilyArenaMark m0 = lily_arena_mark(&ctx->arena);
    LilyTensor xin, noise, x0;
    LILY_TRY(lily_tensor_alloc(ctx, &xin, LILY_DTYPE_F32, LILY_SHAPE(n, cin, h, w)));
    LILY_TRY(lily_nn_like(ctx, x, &noise));
    LILY_TRY(lily_nn_like(ctx, x, &x0));
    int tvec[64];
    if (n > 64) return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "sampler: batch above 64");
    for (int k = 0; k < s->steps; k++) {
        int i = s->steps - 1 - k;
        LILY_TRY(lily_check_abort(ctx, "sampling"));
        for (int b = 0; b < n; b++) tvec[b] = s->t[i];
        LilyArenaMark mk = lily_arena_mark(&ctx->arena);
        LilyTensor vc, vu;
        LILY_TRY(lily_op_concat(ctx, x, a->cond, &xin));
        LILY_TRY(lily_unet_forward(ctx, m, &xin, tvec, &vc));
        bool cfg = a->uncond && a->guidance != 1.0f;
        if (cfg) {
            LILY_TRY(lily_op_concat(ctx, x, a->uncond, &xin));
            LILY_TRY(lily_unet_forward(ctx, m, &xin, tvec, &vu));
        }
        bool need_noise = s->sigma[i] != 0.0;
        if (need_noise) LILY_TRY(a->noise(ctx, a->noise_user, k, &noise));
        LILY_TRY(lily_op_ddim_step(ctx, x, &vc, cfg ? &vu : NULL, need_noise ? &noise : NULL,
                                   a->guidance, s->alpha[i], s->alpha_prev[i], s->sigma[i], &x0));
        if (a->hook) LILY_TRY(a->hook(ctx, a->hook_user, k, s->t[i], &vc, cfg ? &vu : NULL, &x0, x));
        lily_arena_reset(&ctx->arena, mk);
        lily_log(ctx, LILY_LOG_DEBUG, "ddim step %d/%d (t=%d)", k + 1, s->steps, s->t[i]);
        lily_progress(ctx, "diffusion", k + 1, s->steps);
    }
    lily_arena_reset(&ctx->arena, m0);
    return LILY_OK;
}
