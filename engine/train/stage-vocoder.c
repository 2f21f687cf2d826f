/* train/stage-vocoder.c - the vocoder stage: HiFi-GAN's GAN training of AudioSR's 48 kHz
 * generator.
 *
 * Reference: jik876/hifi-gan train.py, one iteration per optimizer step: y_g_hat = G(mel);
 * discriminator step first (MPD and MSD on y and y_g_hat.detach(), LSGAN loss
 * sum_k mean((1 - D_k(y))^2) + mean(D_k(y_g_hat)^2)), then the generator step with the updated
 * discriminators: 45 * L1(mel(y), mel(y_g_hat)) + sum_k mean((1 - D_k(y_g_hat))^2) + 2 * sum
 * over discriminators and feature maps of mean|fmap(y) - fmap(y_g_hat)|. The generator's input
 * is the high side's log-mel from the dataset (what AudioSR's pipeline feeds it) and its
 * target the high side's waveform; AudioSR's generator makes 480 F + 16 samples for F frames,
 * of which the first 480 F are compared. Both networks use train.* optimizer settings (HiFi-GAN
 * used AdamW lr 2e-4, betas 0.8/0.99 and an exponential decay; set them in config.yaml). The
 * discriminators and their Adam moments live in the checkpoint (lily.train/disc/...), not in
 * the model file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/discriminators.h"
#include "models/vocoder-train.h"
#include "train/losses.h"
#include "train/mel-loss.h"
#include "train/trainer-impl.h"

#define MEL_WEIGHT 45.0
#define FM_WEIGHT 2.0
#define DISC_PREFIX "lily.train/disc/"

typedef struct VocState {
    LilyDiscriminators *disc;
    LilyTrainParams *dtp;
    LilyMelLoss *ml;
    float *target;  /* [B][F][256] log-mel of the high side */
    size_t *idx;    /* [accum][B] the micro-batches of the current step */
} VocState;

static bool voc_trainable(const char *name) { return strncmp(name, "first_stage_model.vocoder.", 26) == 0; }

/* The generator's input [n, 256, F] and target waveform [n, 1, L] of the batch in the host buffers. */
static LilyStatus inputs(LilyTrainer *t, int n, LilyTensor *mel, LilyTensor *y)
{
    LilyContext *ctx = t->ctx;
    LilyTensor m0;
    LILY_TRY(lily_tensor_alloc(ctx, &m0, LILY_DTYPE_F32, LILY_SHAPE(n, t->frames, LILY_N_MELS)));
    LILY_TRY(lily_tensor_upload(ctx, &m0, t->mel_high));
    LILY_TRY(lily_tensor_alloc(ctx, mel, LILY_DTYPE_F32, LILY_SHAPE(n, LILY_N_MELS, t->frames)));
    LILY_TRY(lily_op_transpose(ctx, &m0, n, t->frames, LILY_N_MELS, 1, mel));
    LILY_TRY(lily_tensor_alloc(ctx, y, LILY_DTYPE_F32, LILY_SHAPE(n, 1, t->samples)));
    return lily_tensor_upload(ctx, y, t->high);
}

/* The first L samples of the generator's 480 F + 16. */
static LilyStatus trim(LilyContext *ctx, const LilyTensor *full, int64_t L, LilyTensor *out)
{
    int64_t n = full->shape[0];
    LILY_TRY(lily_tensor_alloc(ctx, out, LILY_DTYPE_F32, LILY_SHAPE(n, 1, L)));
    return lily_op_copy_rows(ctx, full, 0, out, 0, n, L, 1);
}

/* The generator's output of one micro-batch, kept from the discriminator step for the
 * generator step when there is one micro-batch per step (HiFi-GAN computes y_g_hat once). */
typedef struct GenOut {
    LilyVocoderTape *tape;
    LilyTensor mel, y, full;
} GenOut;

/* Discriminator step on one micro-batch: LSGAN loss, gradients into the discriminators. With
 * keep, the generator's forward (tape and tensors) is handed over instead of dropped. */
static LilyStatus disc_micro(LilyTrainer *t, VocState *s, int n, double scale, double *loss_d, GenOut *keep)
{
    LilyContext *ctx = t->ctx;
    LilyTensor mel, y, full, yg;
    LILY_TRY(inputs(t, n, &mel, &y));
    LilyVocoderTape *gt = NULL;
    LilyStatus st = lily_vocoder_train_forward(ctx, t->model, &t->tp->set, &mel, &gt, &full);
    if (keep && st == LILY_OK) *keep = (GenOut){gt, mel, y, full};
    else lily_vocoder_tape_free(gt);
    LILY_TRY(st);
    LILY_TRY(trim(ctx, &full, t->samples, &yg));
    for (int k = 0; k < LILY_DISC_COUNT && st == LILY_OK; k++) {
        LilyArenaMark mk = lily_arena_mark(&ctx->arena);
        LilyDiscTape *tr = NULL, *tg = NULL;
        LilyDiscOut dr, dg;
        LilyTensor d_r, d_g;
        double lr = 0, lg = 0;
        st = lily_disc_forward(ctx, s->disc, &s->dtp->set, k, &y, &tr, &dr);
        if (st == LILY_OK) st = lily_disc_forward(ctx, s->disc, &s->dtp->set, k, &yg, &tg, &dg);
        if (st == LILY_OK) st = lily_loss_ls(ctx, &dr.out, 1.0f, scale, &lr, &d_r);
        if (st == LILY_OK) st = lily_loss_ls(ctx, &dg.out, 0.0f, scale, &lg, &d_g);
        if (st == LILY_OK) st = lily_disc_backward(ctx, &s->dtp->set, tr, &d_r, NULL, NULL);
        if (st == LILY_OK) st = lily_disc_backward(ctx, &s->dtp->set, tg, &d_g, NULL, NULL);
        lily_disc_tape_free(tr);
        lily_disc_tape_free(tg);
        *loss_d += lr + lg;
        lily_arena_reset(&ctx->arena, mk);
    }
    return st;
}

/* Generator step on one micro-batch: mel L1 x45 + LSGAN + feature matching x2. `have` (may be
 * NULL) is the generator's forward of this batch from the discriminator step. */
static LilyStatus gen_micro(LilyTrainer *t, VocState *s, int n, double scale, GenOut *have,
                            double *mel_l1, double *adv, double *fm)
{
    LilyContext *ctx = t->ctx;
    LilyTensor mel, y, full, yg, dfull, dyg;
    LilyVocoderTape *gt = NULL;
    LilyStatus st = LILY_OK;
    if (have) {
        gt = have->tape;
        y = have->y;
        full = have->full;
    } else {
        LILY_TRY(inputs(t, n, &mel, &y));
        st = lily_vocoder_train_forward(ctx, t->model, &t->tp->set, &mel, &gt, &full);
    }
    if (st == LILY_OK) st = lily_mel_loss_logmel(s->ml, t->high, n, t->samples, s->target);
    double lm = 0;
    if (st == LILY_OK) st = trim(ctx, &full, t->samples, &yg);
    if (st == LILY_OK) st = lily_mel_loss(ctx, s->ml, &full, t->samples, s->target, MEL_WEIGHT * scale, &lm,
                                          &dfull);
    if (st == LILY_OK) st = lily_t_zeros_like(ctx, &yg, &dyg);
    *mel_l1 += lm / (MEL_WEIGHT * scale);
    LilyParamSet frozen = s->dtp->set;
    frozen.grad = NULL; /* no discriminator gradients in the generator step */
    for (int k = 0; k < LILY_DISC_COUNT && st == LILY_OK; k++) {
        LilyArenaMark mk = lily_arena_mark(&ctx->arena);
        LilyDiscTape *tr = NULL, *tg = NULL;
        LilyDiscOut dr, dg;
        LilyTensor dout, dfm[LILY_DISC_MAX_FMAPS], dw;
        const LilyTensor *dfp[LILY_DISC_MAX_FMAPS];
        double la = 0;
        st = lily_disc_forward(ctx, s->disc, &frozen, k, &y, &tr, &dr);
        if (st == LILY_OK) st = lily_disc_forward(ctx, s->disc, &frozen, k, &yg, &tg, &dg);
        if (st == LILY_OK) st = lily_loss_ls(ctx, &dg.out, 1.0f, scale, &la, &dout);
        *adv += la / scale;
        for (int l = 0; l < dg.n_fmaps && st == LILY_OK; l++) {
            double lf = 0;
            st = lily_loss_l1(ctx, &dg.fmap[l], &dr.fmap[l], FM_WEIGHT * scale, &lf, &dfm[l]);
            dfp[l] = &dfm[l];
            *fm += lf / scale;
        }
        if (st == LILY_OK) st = lily_disc_backward(ctx, &frozen, tg, &dout, dfp, &dw);
        if (st == LILY_OK) st = lily_t_accumulate(ctx, &dyg, &dw);
        lily_disc_tape_free(tr);
        lily_disc_tape_free(tg);
        lily_arena_reset(&ctx->arena, mk);
    }
    if (st == LILY_OK) {
        /* d full = mel gradient (already full length) + the discriminators' on the first L */
        LilyTensor pad;
        st = lily_t_zeros_like(ctx, &full, &pad);
        if (st == LILY_OK) st = lily_op_copy_rows(ctx, &dyg, 0, &pad, 0, n, t->samples, 1);
        if (st == LILY_OK) st = lily_t_accumulate(ctx, &dfull, &pad);
        if (st == LILY_OK) st = lily_vocoder_train_backward(ctx, &t->tp->set, gt, &dfull, NULL);
    }
    lily_vocoder_tape_free(gt);
    return st;
}

static LilyStatus voc_step(LilyTrainer *t, LilyTrainStepInfo *info)
{
    LilyContext *ctx = t->ctx;
    VocState *s = t->st;
    int accum = t->cfg.train.grad_accum, B = t->batch;
    LilyAdamW opt = t->opt;
    opt.lr = info->lr;
    LilyStepStats stats;
    /* discriminators (the generator's forward is kept for its own step when accum is 1; the
     * arena is reset by lily_trainer_step after both) */
    double loss_d = 0;
    GenOut kept = {0};
    LILY_TRY(lily_train_params_zero_grad(ctx, s->dtp));
    for (int k = 0; k < accum; k++) {
        LILY_TRY(lily_trainer_next_batch(t));
        memcpy(s->idx + (size_t)k * B, t->indices, sizeof(size_t) * (size_t)B);
        LilyArenaMark mk = lily_arena_mark(&ctx->arena);
        LilyStatus st = disc_micro(t, s, B, 1.0 / accum, &loss_d, accum == 1 ? &kept : NULL);
        if (st != LILY_OK) {
            lily_vocoder_tape_free(kept.tape);
            return st;
        }
        if (accum > 1) lily_arena_reset(&ctx->arena, mk);
    }
    LilyAdamW dopt = opt;
    dopt.ema_decay = 0;
    LilyStatus st = lily_adamw_step(ctx, s->dtp, &dopt, t->step + 1, &stats);
    if (st != LILY_OK) {
        lily_vocoder_tape_free(kept.tape);
        return st;
    }
    /* generator, on the same batches, with the updated discriminators */
    double mel_l1 = 0, adv = 0, fm = 0;
    LILY_TRY(lily_train_params_zero_grad(ctx, t->tp));
    for (int k = 0; k < accum; k++) {
        if (accum > 1) {
            memcpy(t->indices, s->idx + (size_t)k * B, sizeof(size_t) * (size_t)B);
            LILY_TRY(lily_dataset_batch(t->ds, LILY_SPLIT_TRAIN, t->indices, B, t->high, t->low, t->mel_high,
                                        t->mel_low));
        }
        LilyArenaMark mk = lily_arena_mark(&ctx->arena);
        LILY_TRY(gen_micro(t, s, B, 1.0 / accum, accum == 1 ? &kept : NULL, &mel_l1, &adv, &fm));
        lily_arena_reset(&ctx->arena, mk);
    }
    LILY_TRY(lily_adamw_step(ctx, t->tp, &opt, t->step + 1, &stats));
    mel_l1 /= accum;
    adv /= accum;
    fm /= accum;
    info->loss = MEL_WEIGHT * mel_l1 + adv + fm;
    info->grad_norm = stats.grad_norm;
    info->n_parts = 4;
    info->part_names[0] = "mel_l1";
    info->parts[0] = mel_l1;
    info->part_names[1] = "gen_adv";
    info->parts[1] = adv;
    info->part_names[2] = "feature_match";
    info->parts[2] = fm;
    info->part_names[3] = "disc";
    info->parts[3] = loss_d;
    return LILY_OK;
}

/* Validation: the mel L1 (unweighted) of the vocoded validation segments, and their LSD. */
static LilyStatus voc_validate(LilyTrainer *t, LilyValidationInfo *info)
{
    LilyContext *ctx = t->ctx;
    VocState *s = t->st;
    int nb = lily_trainer_valid_batches(t);
    double loss = 0, lsd = 0, lsd_in = 0;
    int64_t items = 0;
    for (int k = 0; k < nb; k++) {
        int n = 0;
        LILY_TRY(lily_trainer_valid_batch(t, k, &n));
        if (!n) break;
        LilyArenaMark mk = lily_arena_mark(&ctx->arena);
        LilyTensor mel, y, wave;
        LILY_TRY(inputs(t, n, &mel, &y));
        LILY_TRY(lily_vocoder_forward(ctx, t->model, &mel, &wave));
        LILY_TRY(lily_mel_loss_logmel(s->ml, t->high, n, t->samples, s->target));
        double l = 0;
        LILY_TRY(lily_mel_loss(ctx, s->ml, &wave, t->samples, s->target, 1.0, &l, NULL));
        loss += l * n;
        LILY_TRY(lily_trainer_lsd_sum(t, &wave, n, &lsd, &lsd_in));
        lily_arena_reset(&ctx->arena, mk);
        items += n;
    }
    lily_trainer_validation_means(info, loss, lsd, lsd_in, items);
    return LILY_OK;
}

static void voc_free(LilyTrainer *t)
{
    VocState *s = t->st;
    lily_train_params_free(s->dtp);
    lily_discriminators_free(s->disc);
    lily_mel_loss_free(s->ml);
    free(s->target);
    free(s->idx);
    free(s);
    t->st = NULL;
}

static LilyStatus voc_init(LilyTrainer *t, const LilyWeights *w)
{
    LilyContext *ctx = t->ctx;
    if (!t->model->vocoder.present)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "%s has no vocoder to train", t->model->path);
    if (t->samples < 2 * LILY_HOP)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "vocoder stage: segments are too short");
    VocState *s = calloc(1, sizeof *s);
    if (!s) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
    t->st = s;
    s->target = malloc(sizeof(float) * (size_t)t->batch * (size_t)t->frames * LILY_N_MELS);
    s->idx = malloc(sizeof(size_t) * (size_t)t->batch * (size_t)t->cfg.train.grad_accum);
    if (!s->target || !s->idx) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
    LILY_TRY(lily_mel_loss_new(ctx, &s->ml));
    LILY_TRY(lily_discriminators_new(ctx, t->cfg.train.disc_width, t->seed ^ 0x44495343ull, &s->disc));
    LILY_TRY(lily_train_params_new(ctx, s->disc->params, s->disc->n_params, NULL, t->cfg.train.precision,
                                   false, &s->dtp));
    if (w) LILY_TRY(lily_trainer_load_params(ctx, w, DISC_PREFIX, s->dtp, true));
    return LILY_OK;
}

static LilyStatus voc_save(LilyTrainer *t, LilySafetensorsWriter *wr, LilyStagingList *staging)
{
    VocState *s = t->st;
    char width[32];
    snprintf(width, sizeof width, "%.9g", s->disc->width);
    LILY_TRY(lily_safetensors_writer_set_metadata(wr, "lily.train.disc_width", width));
    return lily_trainer_save_params(t->ctx, wr, staging, DISC_PREFIX, s->dtp, true);
}

const LilyStage lily_stage_vocoder = {
    .name = "vocoder",
    .trainable = voc_trainable,
    .init = voc_init,
    .step = voc_step,
    .validate = voc_validate,
    .save = voc_save,
    .free = voc_free,
};
