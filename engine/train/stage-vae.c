/* train/stage-vae.c - the VAE stage: AutoencoderKL on the high side's log-mel.
 *
 * Reference: LDM's AutoencoderKL.training_step with LPIPSWithDiscriminator (taming/ldm
 * contperceptual.py), which AudioLDM's VAE training uses on mels, as the generator loss
 * without its perceptual and adversarial terms: reconstruction L1 |x - x_rec| of the decoded
 * posterior sample, summed over the image and averaged over the batch (the learned output
 * log-variance is fixed at its initial 0), plus kl_weight times the KL divergence of the
 * posterior from N(0, I), summed over latent elements and averaged over the batch. Lily
 * optimises that sum divided by the number of mel bins per item (frames x 256): the same
 * minimiser, an Adam step of the same size, but a loss figure per mel bin and gradients whose
 * norm train.grad_clip can be set for. Both encoder and decoder train (with quant_conv and
 * post_quant_conv); the condition encoder and everything else stay frozen. Simplifications
 * (docs/training.md): no discriminator, no ResnetBlock dropout. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/vae-train.h"
#include "train/losses.h"
#include "train/trainer-impl.h"

static bool vae_trainable(const char *name)
{
    return strncmp(name, "first_stage_model.encoder.", 26) == 0 ||
           strncmp(name, "first_stage_model.decoder.", 26) == 0 ||
           strncmp(name, "first_stage_model.quant_conv.", 29) == 0 ||
           strncmp(name, "first_stage_model.post_quant_conv.", 34) == 0;
}

/* Loss of the n mels in the host batch: (sum |x - rec| + w KL) / (n * frames * 256) * scale.
 * With ps, gradients accumulate; rec_out (may be NULL) receives the reconstruction. */
static LilyStatus vae_loss(LilyTrainer *t, int n, int64_t key, int micro, const LilyParamSet *ps,
                           double scale, double *rec_l1, double *kl_out, double *total,
                           LilyTensor *rec_out)
{
    LilyContext *ctx = t->ctx;
    LilyModel *m = t->model;
    LilyTensor x, mean, logvar, eps, sd, z, rec, drec, dz, dmean, dlv, dkm, dkl, tmp;
    LILY_TRY(lily_trainer_mel_image(t, t->mel_high, n, &x));
    double per = (double)n * (double)t->frames * LILY_N_MELS;
    LilyVaeEncoderTape *et = NULL;
    LilyVaeDecoderTape *dt = NULL;
    LilyStatus st = lily_vae_encode_train(ctx, m, ps, &m->encoder, &m->cfg.vae, &x, &et, &mean, &logvar);
    /* z = mean + exp(0.5 logvar) eps */
    if (st == LILY_OK) st = lily_nn_like(ctx, &mean, &eps);
    if (st == LILY_OK) st = lily_op_randn(ctx, &eps, 1, lily_tensor_numel(&eps), 0, t->seed,
                                          lily_trainer_stream(key, micro, LILY_DRAW_POST_HIGH));
    if (st == LILY_OK) st = lily_nn_like(ctx, &mean, &sd);
    if (st == LILY_OK) st = lily_op_unary(ctx, LILY_UNARY_SCALE, 0.5f, &logvar, &sd);
    if (st == LILY_OK) st = lily_op_unary(ctx, LILY_UNARY_EXP, 0.0f, &sd, &sd);
    if (st == LILY_OK) st = lily_nn_like(ctx, &mean, &z);
    if (st == LILY_OK) st = lily_op_binary(ctx, LILY_BINARY_MUL, &sd, &eps, &z);
    if (st == LILY_OK) st = lily_op_binary(ctx, LILY_BINARY_ADD, &z, &mean, &z);
    if (st == LILY_OK) st = lily_vae_decode_train(ctx, m, ps, &z, &dt, &rec);
    double l1 = 0, kl = 0;
    /* mean |x - rec| over elements, times per / per: the summed L1 over n items */
    if (st == LILY_OK) st = lily_loss_l1(ctx, &rec, &x, scale, &l1, ps ? &drec : NULL);
    double w = t->cfg.train.kl_weight, kl_scaled = 0;
    if (st == LILY_OK) st = lily_loss_kl(ctx, &mean, &logvar, 1.0, &kl, NULL, NULL);
    if (st == LILY_OK && ps)
        st = lily_loss_kl(ctx, &mean, &logvar, scale * w / per, &kl_scaled, &dkm, &dkl);
    if (st == LILY_OK && ps) {
        st = lily_vae_decode_backward(ctx, ps, dt, &drec, &dz);
        /* dmean = dz + dKL/dmean; dlogvar = dz * eps * 0.5 exp(0.5 lv) + dKL/dlogvar */
        if (st == LILY_OK) st = lily_nn_like(ctx, &mean, &dmean);
        if (st == LILY_OK) st = lily_op_binary(ctx, LILY_BINARY_ADD, &dz, &dkm, &dmean);
        if (st == LILY_OK) st = lily_nn_like(ctx, &mean, &tmp);
        if (st == LILY_OK) st = lily_op_binary(ctx, LILY_BINARY_MUL, &dz, &eps, &tmp);
        if (st == LILY_OK) st = lily_op_binary(ctx, LILY_BINARY_MUL, &tmp, &sd, &tmp);
        if (st == LILY_OK) st = lily_nn_like(ctx, &mean, &dlv);
        if (st == LILY_OK) st = lily_op_unary(ctx, LILY_UNARY_SCALE, 0.5f, &tmp, &dlv);
        if (st == LILY_OK) st = lily_op_binary(ctx, LILY_BINARY_ADD, &dlv, &dkl, &dlv);
        if (st == LILY_OK) st = lily_vae_encode_backward(ctx, ps, et, &dmean, &dlv, NULL);
    }
    lily_vae_encoder_tape_free(et);
    lily_vae_decoder_tape_free(dt);
    LILY_TRY(st);
    if (rec_out) *rec_out = rec;
    *rec_l1 = l1 / scale;          /* mean |x - rec| per mel bin */
    *kl_out = kl / n;              /* KL per item */
    *total = l1 + scale * w / per * kl;
    return LILY_OK;
}

static LilyStatus vae_init(LilyTrainer *t, const LilyWeights *w)
{
    (void)w;
    if (!t->model->encoder.present)
        return lily_error(t->ctx, LILY_ERR_INVALID_ARGUMENT,
                          "%s has no first-stage VAE encoder: the vae stage trains encoder and decoder "
                          "(convert the AudioSR checkpoint with lily-convert, which keeps it)", t->model->path);
    return LILY_OK; /* no state of its own */
}

static LilyStatus vae_step(LilyTrainer *t, LilyTrainStepInfo *info)
{
    int accum = t->cfg.train.grad_accum;
    LILY_TRY(lily_train_params_zero_grad(t->ctx, t->tp));
    double total = 0, rec = 0, kl = 0;
    for (int k = 0; k < accum; k++) {
        double r, q, l;
        LILY_TRY(lily_trainer_next_batch(t));
        LilyArenaMark mk = lily_arena_mark(&t->ctx->arena);
        LILY_TRY(vae_loss(t, t->batch, t->step, k, &t->tp->set, 1.0 / accum, &r, &q, &l, NULL));
        lily_arena_reset(&t->ctx->arena, mk);
        total += l;
        rec += r / accum;
        kl += q / accum;
    }
    LilyAdamW opt = t->opt;
    opt.lr = info->lr;
    LilyStepStats stats;
    LILY_TRY(lily_adamw_step(t->ctx, t->tp, &opt, t->step + 1, &stats));
    info->loss = total;
    info->grad_norm = stats.grad_norm;
    info->n_parts = 2;
    info->part_names[0] = "rec_l1";
    info->parts[0] = rec;
    info->part_names[1] = "kl";
    info->parts[1] = kl;
    return LILY_OK;
}

/* Reconstruction loss on the validation batches, and the LSD of the vocoded reconstruction. */
static LilyStatus vae_validate(LilyTrainer *t, LilyValidationInfo *info)
{
    LilyContext *ctx = t->ctx;
    int nb = lily_trainer_valid_batches(t);
    double loss = 0, lsd = 0, lsd_in = 0;
    int64_t items = 0;
    for (int k = 0; k < nb; k++) {
        int n = 0;
        LILY_TRY(lily_trainer_valid_batch(t, k, &n));
        if (!n) break;
        LilyArenaMark mk = lily_arena_mark(&ctx->arena);
        double r, q, l;
        LilyTensor rec;
        LILY_TRY(vae_loss(t, n, lily_trainer_valid_key(k), 0, NULL, 1.0, &r, &q, &l, &rec));
        loss += l * n;
        LILY_TRY(lily_trainer_vocode_lsd(t, t->model, &rec, n, &lsd, &lsd_in));
        lily_arena_reset(&ctx->arena, mk);
        items += n;
    }
    lily_trainer_validation_means(info, loss, lsd, lsd_in, items);
    return LILY_OK;
}

const LilyStage lily_stage_vae = {
    .name = "vae",
    .trainable = vae_trainable,
    .init = vae_init,
    .step = vae_step,
    .validate = vae_validate,
    .save = NULL,
    .free = NULL,
};
