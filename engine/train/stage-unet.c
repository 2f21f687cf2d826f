/* train/stage-unet.c - the diffusion stage: LDM's p_losses as AudioSR trains it.
 *
 * Reference: audiosr/latent_diffusion/models/ddpm.py (LatentDiffusion.get_input /
 * shared_step / p_losses / q_sample / get_v, DDPM.register_schedule) with AudioSR's config
 * (spec.md 3): the target latent is the first-stage posterior sample times scale_factor; the
 * condition is the condition encoder's posterior sample of the low side's log-mel, replaced by
 * the constant -11.4981 with probability unconditional_prob_cfg (classifier-free guidance),
 * and multiplied by scale_factor in the UNet wrapper; t ~ U{0..999}; x_t = sqrt(ac) x0 +
 * sqrt(1-ac) eps; the target is v = sqrt(ac) eps - sqrt(1-ac) x0 (parameterization v); the
 * loss is the mean squared error over every element (loss_type l2, l_simple_weight 1,
 * logvar 0, original_elbo_weight 0). Only the UNet trains; both VAE encoders are frozen.
 *
 * The encoders are deterministic functions of each segment, so their posterior mean and
 * log-variance are computed once per segment (one segment at a time, so the values never
 * depend on what else shared a batch) and kept while they fit in 2 GiB; the posterior sample
 * itself is drawn afresh at every step as AudioSR draws it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/philox.h"
#include "models/sampler.h"
#include "models/unet-train.h"
#include "train/diffusion.h"
#include "train/losses.h"
#include "train/trainer-impl.h"

#define CACHE_LIMIT ((size_t)2 << 30)

typedef struct UnetState {
    int64_t E, lh, lw, per; /* latent channels and size; per = E * lh * lw */
    float **cache[2][2];    /* [split][0 first-stage, 1 condition] -> [2 * per] (mean, logvar) */
    size_t n_cache[2];
    size_t cache_bytes;
    float *mh, *lvh, *ml, *lvl; /* host batch statistics [B * per] */
} UnetState;

static bool unet_trainable(const char *name)
{
    return strncmp(name, "model.diffusion_model.", 22) == 0;
}

/* Posterior statistics of one segment's log-mel through encoder `which` (0 first stage,
 * 1 condition), cached. */
static LilyStatus item_stats(LilyTrainer *t, UnetState *s, LilyDatasetSplit split, size_t idx,
                             int which, const float *mel, float *mean, float *logvar)
{
    int sp = split == LILY_SPLIT_VALIDATION ? 1 : 0;
    float **slot = idx < s->n_cache[sp] ? &s->cache[sp][which][idx] : NULL;
    size_t per = (size_t)s->per;
    if (slot && *slot) {
        memcpy(mean, *slot, per * sizeof(float));
        memcpy(logvar, *slot + per, per * sizeof(float));
        return LILY_OK;
    }
    LilyContext *ctx = t->ctx;
    LilyModel *m = t->model;
    LilyArenaMark mk = lily_arena_mark(&ctx->arena);
    LilyTensor img, mu, lv;
    LILY_TRY(lily_trainer_mel_image(t, mel, 1, &img));
    LILY_TRY(lily_vae_encode(ctx, m, which ? &m->cond_encoder : &m->encoder, &img, &mu, &lv));
    LILY_TRY(lily_tensor_download(ctx, &mu, mean));
    LILY_TRY(lily_tensor_download(ctx, &lv, logvar));
    lily_arena_reset(&ctx->arena, mk);
    if (slot && s->cache_bytes + 2 * per * sizeof(float) <= CACHE_LIMIT) {
        float *c = malloc(2 * per * sizeof(float));
        if (c) {
            memcpy(c, mean, per * sizeof(float));
            memcpy(c + per, logvar, per * sizeof(float));
            *slot = c;
            s->cache_bytes += 2 * per * sizeof(float);
        }
    }
    return LILY_OK;
}

/* z = mean + exp(0.5 logvar) * N(0, 1) (DiagonalGaussianDistribution.sample). */
static LilyStatus posterior_sample(LilyContext *ctx, const LilyTensor *mean, const LilyTensor *logvar,
                                   uint64_t seed, uint64_t stream, LilyTensor *z)
{
    LilyTensor e, sd;
    int64_t n = lily_tensor_numel(mean);
    LILY_TRY(lily_nn_like(ctx, mean, z));
    LILY_TRY(lily_nn_like(ctx, mean, &e));
    LILY_TRY(lily_nn_like(ctx, mean, &sd));
    LILY_TRY(lily_op_randn(ctx, &e, 1, n, 0, seed, stream));
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_SCALE, 0.5f, logvar, &sd));
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_EXP, 0.0f, &sd, &sd));
    LILY_TRY(lily_op_binary(ctx, LILY_BINARY_MUL, &sd, &e, &sd));
    return lily_op_binary(ctx, LILY_BINARY_ADD, mean, &sd, z);
}

/* Statistics of the n segments in the host batch, on the device. */
static LilyStatus batch_stats(LilyTrainer *t, UnetState *s, LilyDatasetSplit split, int n,
                              LilyTensor *mh, LilyTensor *lvh, LilyTensor *ml, LilyTensor *lvl)
{
    size_t per = (size_t)s->per, M = (size_t)t->frames * LILY_N_MELS;
    for (int b = 0; b < n; b++) {
        LILY_TRY(item_stats(t, s, split, t->indices[b], 0, t->mel_high + b * M, s->mh + b * per, s->lvh + b * per));
        LILY_TRY(item_stats(t, s, split, t->indices[b], 1, t->mel_low + b * M, s->ml + b * per, s->lvl + b * per));
    }
    LilyTensor *out[4] = {mh, lvh, ml, lvl};
    float *src[4] = {s->mh, s->lvh, s->ml, s->lvl};
    for (int i = 0; i < 4; i++) {
        LILY_TRY(lily_tensor_alloc(t->ctx, out[i], LILY_DTYPE_F32, LILY_SHAPE(n, s->E, s->lh, s->lw)));
        LILY_TRY(lily_tensor_upload(t->ctx, out[i], src[i]));
    }
    return LILY_OK;
}

/* The condition as the UNet sees it: scale * (sample, or -11.4981 for dropped items). */
static LilyStatus condition(LilyTrainer *t, UnetState *s, const LilyTensor *z_low, const bool *drop,
                            LilyTensor *c)
{
    LilyContext *ctx = t->ctx;
    const LilyDiffusionConfig *d = &t->model->cfg.diffusion;
    LILY_TRY(lily_nn_like(ctx, z_low, c));
    LILY_TRY(lily_tensor_copy(ctx, z_low, c));
    for (int b = 0; b < (int)z_low->shape[0]; b++) {
        if (!drop || !drop[b]) continue;
        LilyTensor item = lily_tensor_make((float *)c->data + (size_t)b * (size_t)s->per, LILY_DTYPE_F32,
                                           c->device, LILY_SHAPE(s->per));
        LILY_TRY(lily_op_fill(ctx, &item, d->unconditional_value));
    }
    return lily_op_unary(ctx, LILY_UNARY_SCALE, d->scale_factor, c, c);
}

/* One micro-batch of the n segments in the host buffers: the v-loss times `scale`, with the
 * UNet's gradients accumulated when `backward`. Draws are keyed by (key, micro). */
static LilyStatus diffusion_loss(LilyTrainer *t, UnetState *s, LilyDatasetSplit split, int n,
                                 int64_t key, int micro, bool training, double scale, double *loss)
{
    LilyContext *ctx = t->ctx;
    LilyModel *m = t->model;
    LilyDiffusionConfig *d = &m->cfg.diffusion;
    LilyArenaMark mk = lily_arena_mark(&ctx->arena);
    LilyTensor mh, lvh, ml, lvl, zh, zl, x0, c, eps;
    LILY_TRY(batch_stats(t, s, split, n, &mh, &lvh, &ml, &lvl));
    LILY_TRY(posterior_sample(ctx, &mh, &lvh, t->seed, lily_trainer_stream(key, micro, LILY_DRAW_POST_HIGH), &zh));
    LILY_TRY(posterior_sample(ctx, &ml, &lvl, t->seed, lily_trainer_stream(key, micro, LILY_DRAW_POST_LOW), &zl));
    if (training && t->cfg.train.scale_by_std && t->step == 0 && micro == 0) {
        /* LDM on_train_batch_start: scale_factor = 1 / z.flatten().std() (unbiased) */
        double sum = 0, sq = 0, nn = (double)lily_tensor_numel(&zh);
        LILY_TRY(lily_op_reduce(ctx, &zh, &sum, &sq, NULL));
        double var = (sq - sum * sum / nn) / (nn - 1.0);
        if (!(var > 0)) return lily_error(ctx, LILY_ERR_NUMERIC, "scale_by_std: the latents have no variance");
        d->scale_factor = (float)(1.0 / sqrt(var));
        lily_log(ctx, LILY_LOG_INFO, "train: scale_factor set to %g (1/std of the first batch's latents)",
                 (double)d->scale_factor);
    }
    LILY_TRY(lily_nn_like(ctx, &zh, &x0));
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_SCALE, d->scale_factor, &zh, &x0));
    bool drop[256] = {0};
    int tstep[256];
    if (n > 256) return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "train.batch_size above 256");
    uint64_t st_t = lily_trainer_stream(key, micro, LILY_DRAW_T);
    uint64_t st_d = lily_trainer_stream(key, micro, LILY_DRAW_DROP);
    int T = d->timesteps;
    for (int b = 0; b < n; b++) {
        int tb = (int)floor((double)lily_philox_uniform(t->seed, st_t, (uint64_t)b) * T);
        tstep[b] = tb < 0 ? 0 : tb >= T ? T - 1 : tb;
        if (training) drop[b] = lily_philox_uniform(t->seed, st_d, (uint64_t)b) < t->cfg.train.unconditional_prob;
    }
    LILY_TRY(condition(t, s, &zl, drop, &c));
    LILY_TRY(lily_nn_like(ctx, &x0, &eps));
    LILY_TRY(lily_op_randn(ctx, &eps, 1, lily_tensor_numel(&eps), 0, t->seed,
                           lily_trainer_stream(key, micro, LILY_DRAW_NOISE)));
    LILY_TRY(lily_diffusion_v_loss(ctx, m, training ? &t->tp->set : NULL, &x0, &c, &eps, tstep, scale, loss));
    lily_arena_reset(&ctx->arena, mk);
    return LILY_OK;
}

LilyStatus lily_diffusion_v_loss(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps,
                                 const LilyTensor *x0, const LilyTensor *cond,
                                 const LilyTensor *noise, const int *t, double scale,
                                 double *loss)
{
    int64_t n = x0->shape[0];
    if (n > 256) return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "diffusion loss: batch above 256");
    float sa[256], s1a[256];
    for (int b = 0; b < n; b++) {
        if (t[b] < 0 || t[b] >= m->cfg.diffusion.timesteps)
            return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "diffusion loss: timestep %d out of range", t[b]);
        /* register_schedule stores float32 sqrt(ac) and sqrt(1 - ac) of the float64 schedule */
        sa[b] = (float)sqrt(m->alphas_cumprod[t[b]]);
        s1a[b] = (float)sqrt(1.0 - m->alphas_cumprod[t[b]]);
    }
    LilyArenaMark mk = lily_arena_mark(&ctx->arena);
    LilyTensor tsa, ts1a, a, b2, xt, v, xin;
    LILY_TRY(lily_tensor_alloc(ctx, &tsa, LILY_DTYPE_F32, LILY_SHAPE(n)));
    LILY_TRY(lily_tensor_alloc(ctx, &ts1a, LILY_DTYPE_F32, LILY_SHAPE(n)));
    LILY_TRY(lily_tensor_upload(ctx, &tsa, sa));
    LILY_TRY(lily_tensor_upload(ctx, &ts1a, s1a));
    LILY_TRY(lily_nn_like(ctx, x0, &a));
    LILY_TRY(lily_nn_like(ctx, x0, &b2));
    LILY_TRY(lily_nn_like(ctx, x0, &xt));
    LILY_TRY(lily_nn_like(ctx, x0, &v));
    /* q_sample: x_t = sqrt(ac) x0 + sqrt(1 - ac) eps */
    LILY_TRY(lily_op_binary(ctx, LILY_BINARY_MUL, x0, &tsa, &a));
    LILY_TRY(lily_op_binary(ctx, LILY_BINARY_MUL, noise, &ts1a, &b2));
    LILY_TRY(lily_op_binary(ctx, LILY_BINARY_ADD, &a, &b2, &xt));
    /* get_v: v = sqrt(ac) eps - sqrt(1 - ac) x0 */
    LILY_TRY(lily_op_binary(ctx, LILY_BINARY_MUL, noise, &tsa, &a));
    LILY_TRY(lily_op_binary(ctx, LILY_BINARY_MUL, x0, &ts1a, &b2));
    LILY_TRY(lily_op_binary(ctx, LILY_BINARY_SUB, &a, &b2, &v));
    LILY_TRY(lily_tensor_alloc(ctx, &xin, LILY_DTYPE_F32,
                               LILY_SHAPE(n, xt.shape[1] + cond->shape[1], xt.shape[2], xt.shape[3])));
    LILY_TRY(lily_op_concat(ctx, &xt, cond, &xin));
    LilyTensor vp, dv;
    if (ps) {
        LilyUNetTape *tape = NULL;
        LilyStatus st = lily_unet_train_forward(ctx, m, ps, &xin, t, &tape, &vp);
        if (st == LILY_OK) st = lily_loss_mse(ctx, &vp, &v, scale, loss, &dv);
        if (st == LILY_OK) st = lily_unet_train_backward(ctx, m, ps, tape, &dv, NULL);
        lily_unet_tape_free(tape);
        LILY_TRY(st);
    } else {
        LILY_TRY(lily_unet_forward(ctx, m, &xin, t, &vp));
        LILY_TRY(lily_loss_mse(ctx, &vp, &v, scale, loss, NULL));
    }
    lily_arena_reset(&ctx->arena, mk);
    return LILY_OK;
}

static LilyStatus unet_init(LilyTrainer *t, const LilyWeights *w)
{
    (void)w;
    LilyModel *m = t->model;
    if (!m->encoder.present)
        return lily_error(t->ctx, LILY_ERR_INVALID_ARGUMENT,
                          "%s has no first-stage VAE encoder, which the unet stage needs to make "
                          "target latents: convert the AudioSR checkpoint with lily-convert (it keeps "
                          "the encoder) or start from `lily-convert --random`", m->path);
    if (strcmp(m->cfg.diffusion.parameterization, "v") != 0)
        return lily_error(t->ctx, LILY_ERR_UNSUPPORTED, "unet stage: parameterization '%s' is not "
                          "supported (AudioSR uses v)", m->cfg.diffusion.parameterization);
    UnetState *s = calloc(1, sizeof *s);
    if (!s) return lily_error(t->ctx, LILY_ERR_NO_MEMORY, "out of host memory");
    t->st = s;
    const LilyVaeConfig *vc = &m->cfg.vae;
    int down = 1 << (vc->n_levels - 1);
    s->E = vc->embed_dim;
    s->lh = t->frames / down;
    s->lw = LILY_N_MELS / down;
    s->per = s->E * s->lh * s->lw;
    for (int sp = 0; sp < 2; sp++) {
        s->n_cache[sp] = lily_dataset_count(t->ds, sp ? LILY_SPLIT_VALIDATION : LILY_SPLIT_TRAIN);
        for (int k = 0; k < 2; k++) {
            s->cache[sp][k] = calloc(s->n_cache[sp] ? s->n_cache[sp] : 1, sizeof(float *));
            if (!s->cache[sp][k]) return lily_error(t->ctx, LILY_ERR_NO_MEMORY, "out of host memory");
        }
    }
    size_t bytes = (size_t)t->batch * (size_t)s->per * sizeof(float);
    s->mh = malloc(bytes);
    s->lvh = malloc(bytes);
    s->ml = malloc(bytes);
    s->lvl = malloc(bytes);
    if (!s->mh || !s->lvh || !s->ml || !s->lvl) return lily_error(t->ctx, LILY_ERR_NO_MEMORY, "out of host memory");
    return LILY_OK;
}

static void unet_free(LilyTrainer *t)
{
    UnetState *s = t->st;
    for (int sp = 0; sp < 2; sp++)
        for (int k = 0; k < 2; k++) {
            for (size_t i = 0; s->cache[sp][k] && i < s->n_cache[sp]; i++) free(s->cache[sp][k][i]);
            free(s->cache[sp][k]);
        }
    free(s->mh);
    free(s->lvh);
    free(s->ml);
    free(s->lvl);
    free(s);
    t->st = NULL;
}

static LilyStatus unet_step(LilyTrainer *t, LilyTrainStepInfo *info)
{
    UnetState *s = t->st;
    int accum = t->cfg.train.grad_accum;
    LILY_TRY(lily_train_params_zero_grad(t->ctx, t->tp));
    double total = 0.0;
    for (int k = 0; k < accum; k++) {
        double l = 0.0;
        LILY_TRY(lily_trainer_next_batch(t));
        LILY_TRY(diffusion_loss(t, s, LILY_SPLIT_TRAIN, t->batch, t->step, k, true, 1.0 / accum, &l));
        total += l;
    }
    LilyAdamW opt = t->opt;
    opt.lr = info->lr;
    LilyStepStats stats;
    LILY_TRY(lily_adamw_step(t->ctx, t->tp, &opt, t->step + 1, &stats));
    info->loss = total;
    info->grad_norm = stats.grad_norm;
    info->n_parts = 1;
    info->part_names[0] = "mse";
    info->parts[0] = total;
    return LILY_OK;
}

typedef struct NoiseUser {
    uint64_t seed;
    int batch;
} NoiseUser;

static LilyStatus sampler_noise(LilyContext *ctx, void *user, int k, LilyTensor *noise)
{
    NoiseUser *u = user;
    return lily_op_randn(ctx, noise, 1, lily_tensor_numel(noise), 0, u->seed,
                         lily_trainer_stream(lily_trainer_valid_key(u->batch), k, LILY_DRAW_SAMPLER));
}

/* DDIM (eta 1, CFG at inference.guidance_scale) from validation_steps steps -> decoder ->
 * vocoder, and the LSD of the result against the high side. */
static LilyStatus sample_lsd(LilyTrainer *t, UnetState *s, int n, int kb, double *lsd, double *lsd_in)
{
    LilyContext *ctx = t->ctx;
    LilyModel *m = t->model;
    const LilyDiffusionConfig *d = &m->cfg.diffusion;
    LilyArenaMark mk = lily_arena_mark(&ctx->arena);
    int64_t key = lily_trainer_valid_key(kb);
    LilyTensor mh, lvh, ml, lvl, zl, c, unc, x;
    LILY_TRY(batch_stats(t, s, t->val_split, n, &mh, &lvh, &ml, &lvl));
    LILY_TRY(posterior_sample(ctx, &ml, &lvl, t->seed, lily_trainer_stream(key, 0, LILY_DRAW_POST_LOW), &zl));
    LILY_TRY(condition(t, s, &zl, NULL, &c));
    LILY_TRY(lily_nn_like(ctx, &c, &unc));
    LILY_TRY(lily_op_fill(ctx, &unc, d->unconditional_value * d->scale_factor));
    LILY_TRY(lily_nn_like(ctx, &c, &x));
    LILY_TRY(lily_op_randn(ctx, &x, 1, lily_tensor_numel(&x), 0, t->seed,
                           lily_trainer_stream(key, 0, LILY_DRAW_NOISE)));
    LilyDdimSchedule *sched = malloc(sizeof *sched);
    if (!sched) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
    LilyStatus st = lily_ddim_schedule(ctx, m, t->cfg.train.validation_steps, 1.0, sched);
    NoiseUser nu = {t->seed, kb};
    LilySampleArgs args = {.cond = &c, .uncond = &unc, .guidance = (float)t->cfg.inference.guidance_scale,
                           .schedule = sched, .noise = sampler_noise, .noise_user = &nu};
    if (st == LILY_OK) st = lily_ddim_sample(ctx, m, &args, &x);
    free(sched);
    LILY_TRY(st);
    LilyTensor mel;
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_SCALE, 1.0f / d->scale_factor, &x, &x));
    LILY_TRY(lily_vae_decode(ctx, m, &x, &mel)); /* [n, 1, F, 256] */
    st = lily_trainer_vocode_lsd(t, m, &mel, n, lsd, lsd_in);
    lily_arena_reset(&ctx->arena, mk);
    return st;
}

static LilyStatus unet_validate(LilyTrainer *t, LilyValidationInfo *info)
{
    UnetState *s = t->st;
    int nb = lily_trainer_valid_batches(t);
    double loss = 0.0, lsd = 0.0, lsd_in = 0.0;
    int64_t items = 0;
    for (int k = 0; k < nb; k++) {
        int n = 0;
        LILY_TRY(lily_trainer_valid_batch(t, k, &n));
        if (!n) break;
        double l = 0.0;
        LILY_TRY(diffusion_loss(t, s, t->val_split, n, lily_trainer_valid_key(k), 0, false, 1.0, &l));
        loss += l * n;
        LILY_TRY(sample_lsd(t, s, n, k, &lsd, &lsd_in));
        items += n;
    }
    lily_trainer_validation_means(info, loss, lsd, lsd_in, items);
    return LILY_OK;
}

const LilyStage lily_stage_unet = {
    .name = "unet",
    .trainable = unet_trainable,
    .init = unet_init,
    .step = unet_step,
    .validate = unet_validate,
    .save = NULL,
    .free = unet_free,
};
