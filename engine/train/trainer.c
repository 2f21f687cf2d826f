/* train/trainer.c - set-up, data, schedule, checkpoints and the stage dispatch of the training
 * loop (see trainer.h; the stages are stage-unet.c, stage-vae.c and stage-vocoder.c).
 *
 * Checkpoint layout (one safetensors file, written atomically by weights/safetensors.c):
 *   every model parameter under its AudioSR key (so a checkpoint is also a Lily model file,
 *   holding the current, non-EMA weights) and `scale_factor`;
 *   lily.train/adam_m/<key>, lily.train/adam_v/<key>, lily.train/ema/<key> for the parameters
 *   that train; the stage's own tensors (the vocoder's discriminators: lily.train/disc/...);
 *   metadata lily.config (the model config), lily.train.{stage, step, epoch, position, seed,
 *   ema_updates} and lily.train.project_config (the config.yaml text of the run). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/init.h"
#include "train/lsd.h"
#include "train/trainer-impl.h"

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                             */
/* ---------------------------------------------------------------------------------------- */
uint64_t lily_trainer_stream(int64_t step, int micro, LilyDrawUse use)
{
    /* step in the high bits, then the micro-batch and the use: distinct for any realistic run */
    return ((uint64_t)step << 20) ^ ((uint64_t)(unsigned)micro << 8) ^ (uint64_t)use ^ 0x4c494c5900000000ull;
}

LilyStatus lily_staging_add(LilyStagingList *s, void *p)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        void **np = realloc(s->ptrs, sizeof *np * (size_t)cap);
        if (!np) return LILY_ERR_NO_MEMORY;
        s->ptrs = np;
        s->cap = cap;
    }
    s->ptrs[s->n++] = p;
    return LILY_OK;
}

static void staging_free(LilyStagingList *s)
{
    for (int i = 0; i < s->n; i++) free(s->ptrs[i]);
    free(s->ptrs);
    memset(s, 0, sizeof *s);
}

LilyStatus lily_staging_host(LilyContext *ctx, LilyStagingList *s, const LilyTensor *t,
                             const void **out)
{
    if (t->device == LILY_DEVICE_CPU) {
        *out = t->data;
        return LILY_OK;
    }
    size_t bytes = lily_tensor_nbytes(t);
    void *p = malloc(bytes ? bytes : 1);
    if (!p || lily_staging_add(s, p) != LILY_OK) {
        free(p);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "checkpoint: out of host memory");
    }
    LILY_TRY(lily_tensor_download(ctx, t, p));
    *out = p;
    return LILY_OK;
}

static int mkdir_p(const char *path)
{
    char buf[LILY_CONFIG_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    return 0;
}

static const LilyStage *stage_ops(LilyTrainStage s)
{
    switch (s) {
    case LILY_TRAIN_STAGE_UNET: return &lily_stage_unet;
    case LILY_TRAIN_STAGE_VAE: return &lily_stage_vae;
    case LILY_TRAIN_STAGE_VOCODER: return &lily_stage_vocoder;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Data                                                                                      */
/* ---------------------------------------------------------------------------------------- */
LilyStatus lily_trainer_next_batch(LilyTrainer *t)
{
    LILY_TRY(lily_dataset_iter_next(&t->it, t->batch, t->indices));
    return lily_dataset_batch(t->ds, LILY_SPLIT_TRAIN, t->indices, t->batch, t->high, t->low,
                              t->mel_high, t->mel_low);
}

int lily_trainer_valid_batches(const LilyTrainer *t)
{
    size_t count = lily_dataset_count(t->ds, t->val_split);
    int64_t nb = (int64_t)((count + (size_t)t->batch - 1) / (size_t)t->batch);
    return (int)(nb < t->cfg.train.validation_batches ? nb : t->cfg.train.validation_batches);
}

LilyStatus lily_trainer_valid_batch(LilyTrainer *t, int k, int *n)
{
    size_t count = lily_dataset_count(t->ds, t->val_split);
    size_t first = (size_t)k * (size_t)t->batch;
    *n = 0;
    if (first >= count) return LILY_OK;
    size_t m = count - first < (size_t)t->batch ? count - first : (size_t)t->batch;
    for (size_t i = 0; i < m; i++) t->indices[i] = first + i; /* storage order: fixed over the run */
    *n = (int)m;
    return lily_dataset_batch(t->ds, t->val_split, t->indices, (int)m, t->high, t->low, t->mel_high,
                              t->mel_low);
}

double lily_trainer_lr(const LilyTrainer *t)
{
    const LilyTrainConfig *c = &t->cfg.train;
    LilyLrShape shape = c->decay == LILY_LR_DECAY_LINEAR     ? LILY_LR_LINEAR
                        : c->decay == LILY_LR_DECAY_CONSTANT ? LILY_LR_CONSTANT
                                                             : LILY_LR_COSINE;
    return lily_lr_at(t->step, c->learning_rate, c->min_learning_rate, c->warmup_steps, c->max_steps,
                      shape);
}

LilyStatus lily_trainer_mel_image(LilyTrainer *t, const float *mel, int n, LilyTensor *out)
{
    LILY_TRY(lily_tensor_alloc(t->ctx, out, LILY_DTYPE_F32, LILY_SHAPE(n, 1, t->frames, LILY_N_MELS)));
    return lily_tensor_upload(t->ctx, out, mel);
}

static LilyStatus lsd_host(LilyTrainer *t, const float *wave, int64_t len, int n, double *lsd_sum,
                           double *lsd_input_sum)
{
    for (int b = 0; b < n; b++) {
        LilyDatasetSegment seg;
        LILY_TRY(lily_dataset_get(t->ds, t->val_split, t->indices[b], &seg));
        size_t valid = (size_t)(seg.valid > 0 && seg.valid < t->samples ? seg.valid : t->samples);
        if ((int64_t)valid > len) valid = (size_t)len;
        const float *ref = t->high + (size_t)b * (size_t)t->samples;
        double d;
        LILY_TRY(lily_lsd(t->ctx, wave + (size_t)b * (size_t)len, ref, valid, &d));
        *lsd_sum += d;
        if (lsd_input_sum) {
            LILY_TRY(lily_lsd(t->ctx, t->low + (size_t)b * (size_t)t->samples, ref, valid, &d));
            *lsd_input_sum += d;
        }
    }
    return LILY_OK;
}

LilyStatus lily_trainer_lsd_sum(LilyTrainer *t, const LilyTensor *wave, int n, double *lsd_sum,
                                double *lsd_input_sum)
{
    int64_t len = wave->shape[2];
    float *host = malloc((size_t)n * (size_t)len * sizeof(float));
    if (!host) return lily_error(t->ctx, LILY_ERR_NO_MEMORY, "validation: out of host memory for the audio");
    LilyStatus st = lily_tensor_download(t->ctx, wave, host);
    if (st == LILY_OK) st = lsd_host(t, host, len, n, lsd_sum, lsd_input_sum);
    free(host);
    return st;
}

LilyStatus lily_trainer_vocode_lsd(LilyTrainer *t, const LilyModel *m, const LilyTensor *image, int n,
                                   double *lsd_sum, double *lsd_input_sum)
{
    LilyTensor mel, wave;
    LILY_TRY(lily_tensor_alloc(t->ctx, &mel, LILY_DTYPE_F32, LILY_SHAPE(n, LILY_N_MELS, t->frames)));
    LILY_TRY(lily_op_transpose(t->ctx, image, n, t->frames, LILY_N_MELS, 1, &mel));
    LILY_TRY(lily_vocoder_forward(t->ctx, m, &mel, &wave));
    return lily_trainer_lsd_sum(t, &wave, n, lsd_sum, lsd_input_sum);
}

/* ---------------------------------------------------------------------------------------- */
/* Checkpoint pieces                                                                         */
/* ---------------------------------------------------------------------------------------- */
static LilyStatus add_f32(LilyContext *ctx, LilySafetensorsWriter *wr, const char *prefix,
                          const char *name, const LilyTensor *like, const void *data)
{
    char full[600];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    LilyStatus st = lily_safetensors_writer_add(wr, full, LILY_DTYPE_F32, LILY_DTYPE_F32, like->ndim,
                                                like->shape, data);
    if (st != LILY_OK) return lily_error_prefix(ctx, st, "checkpoint tensor %s: ", full);
    return LILY_OK;
}

LilyStatus lily_trainer_save_params(LilyContext *ctx, LilySafetensorsWriter *wr,
                                    LilyStagingList *staging, const char *prefix,
                                    LilyTrainParams *tp, bool values)
{
    char p[128];
    for (int i = 0; i < tp->set.n; i++) {
        const LilyParam *par = &tp->set.params[i];
        if (values) {
            const void *data;
            LILY_TRY(lily_staging_host(ctx, staging, &par->t, &data));
            LILY_TRY(add_f32(ctx, wr, prefix, par->name, &par->t, data));
        }
        if (!tp->trainable[i]) continue;
        int64_t off = tp->offset[i];
        snprintf(p, sizeof p, "lily.train/adam_m/%s", prefix);
        LILY_TRY(add_f32(ctx, wr, p, par->name, &par->t, tp->adam_m + off));
        snprintf(p, sizeof p, "lily.train/adam_v/%s", prefix);
        LILY_TRY(add_f32(ctx, wr, p, par->name, &par->t, tp->adam_v + off));
        if (tp->ema) {
            snprintf(p, sizeof p, "lily.train/ema/%s", prefix);
            LILY_TRY(add_f32(ctx, wr, p, par->name, &par->t, tp->ema + off));
        }
    }
    return LILY_OK;
}

static LilyStatus load_one(LilyContext *ctx, const LilyWeights *w, const char *prefix, const char *name,
                           const LilyTensor *like, float *dst)
{
    char full[600];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const LilyWeight *wt = lily_weights_find(w, full);
    if (!wt)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: tensor '%s' is missing: not a checkpoint of this "
                          "stage (or written by another version)", lily_weights_path(w), full);
    if (wt->dtype != LILY_DTYPE_F32 || wt->nbytes != lily_tensor_nbytes(like))
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: tensor '%s' has the wrong size or dtype for this "
                          "model", lily_weights_path(w), full);
    memcpy(dst, wt->data, wt->nbytes);
    return LILY_OK;
}

LilyStatus lily_trainer_load_params(LilyContext *ctx, const LilyWeights *w, const char *prefix,
                                    LilyTrainParams *tp, bool values)
{
    char p[128];
    float *staging = NULL;
    LilyStatus st = LILY_OK;
    for (int i = 0; i < tp->set.n && st == LILY_OK; i++) {
        LilyParam *par = &tp->set.params[i];
        if (values) {
            size_t bytes = lily_tensor_nbytes(&par->t);
            float *tmp = realloc(staging, bytes ? bytes : 1);
            if (!tmp) {
                st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
                break;
            }
            staging = tmp;
            st = load_one(ctx, w, prefix, par->name, &par->t, staging);
            if (st == LILY_OK) st = lily_tensor_upload(ctx, &par->t, staging);
        }
        if (st != LILY_OK || !tp->trainable[i]) continue;
        int64_t off = tp->offset[i];
        snprintf(p, sizeof p, "lily.train/adam_m/%s", prefix);
        st = load_one(ctx, w, p, par->name, &par->t, tp->adam_m + off);
        snprintf(p, sizeof p, "lily.train/adam_v/%s", prefix);
        if (st == LILY_OK) st = load_one(ctx, w, p, par->name, &par->t, tp->adam_v + off);
        snprintf(p, sizeof p, "lily.train/ema/%s", prefix);
        if (st == LILY_OK && tp->ema) st = load_one(ctx, w, p, par->name, &par->t, tp->ema + off);
    }
    free(staging);
    LILY_TRY(st);
    return lily_train_params_sync(ctx, tp);
}

static LilyStatus meta_i64(LilyContext *ctx, const LilyWeights *w, const char *key, int64_t *out)
{
    const char *v = lily_weights_metadata(w, key);
    char *end = NULL;
    if (!v || !*v) return lily_error(ctx, LILY_ERR_FORMAT, "%s: metadata '%s' is missing: not a "
                                     "lily-train checkpoint", lily_weights_path(w), key);
    long long x = strtoll(v, &end, 10);
    if (*end) return lily_error(ctx, LILY_ERR_FORMAT, "%s: metadata '%s' is not an integer",
                                lily_weights_path(w), key);
    *out = (int64_t)x;
    return LILY_OK;
}

static LilyStatus set_meta_i64(LilySafetensorsWriter *wr, const char *key, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return lily_safetensors_writer_set_metadata(wr, key, buf);
}

/* Model tensors (masters), scale_factor and the config. */
static LilyStatus add_model(LilyTrainer *t, LilySafetensorsWriter *wr, LilyStagingList *s,
                            const float *scale_factor)
{
    LilyModel *m = t->model;
    for (int i = 0; i < m->n_params; i++) {
        const void *data;
        LILY_TRY(lily_staging_host(t->ctx, s, &m->params[i].t, &data));
        LILY_TRY(add_f32(t->ctx, wr, "", m->params[i].name, &m->params[i].t, data));
    }
    LILY_TRY(lily_safetensors_writer_add(wr, "scale_factor", LILY_DTYPE_F32, LILY_DTYPE_F32, 0, NULL,
                                         scale_factor));
    char *yaml = NULL;
    LILY_TRY(lily_model_config_to_yaml(t->ctx, &m->cfg, &yaml));
    LilyStatus st = lily_safetensors_writer_set_metadata(wr, "lily.config", yaml);
    free(yaml);
    LILY_TRY(st);
    return lily_safetensors_writer_set_metadata(wr, "lily.format", "1");
}

LilyStatus lily_trainer_save(LilyTrainer *t, void (*progress)(uint64_t done, uint64_t total, void *user),
                             void *user)
{
    LilyContext *ctx = t->ctx;
    char path[LILY_CONFIG_PATH_MAX + 64];
    float sf = t->model->cfg.diffusion.scale_factor;
    LilyStagingList s = {0};
    LilySafetensorsWriter *wr = NULL;
    LilyStatus st;
    /* the checkpoint */
    LILY_CHECK(st, lily_safetensors_writer_new(ctx, &wr), done);
    LILY_CHECK(st, add_model(t, wr, &s, &sf), done);
    LILY_CHECK(st, lily_trainer_save_params(ctx, wr, &s, "", t->tp, false), done);
    if (t->ops->save) LILY_CHECK(st, t->ops->save(t, wr, &s), done);
    LILY_CHECK(st, lily_safetensors_writer_set_metadata(wr, "lily.train.stage", lily_train_stage_name(t->stage)), done);
    LILY_CHECK(st, set_meta_i64(wr, "lily.train.step", t->step), done);
    LILY_CHECK(st, set_meta_i64(wr, "lily.train.epoch", (int64_t)t->it.epoch), done);
    LILY_CHECK(st, set_meta_i64(wr, "lily.train.position", (int64_t)t->it.position), done);
    LILY_CHECK(st, set_meta_i64(wr, "lily.train.seed", (int64_t)t->seed), done);
    LILY_CHECK(st, set_meta_i64(wr, "lily.train.ema_updates", t->tp->ema_updates), done);
    if (t->config_text)
        LILY_CHECK(st, lily_safetensors_writer_set_metadata(wr, "lily.train.project_config", t->config_text), done);
    snprintf(path, sizeof path, "%s/%s", t->out_dir, LILY_TRAIN_CHECKPOINT);
    LILY_CHECK(st, lily_safetensors_writer_write(wr, path, progress, user), done);
    lily_safetensors_writer_free(wr);
    wr = NULL;
    staging_free(&s);
    /* the model: the EMA of the trained part in place of its current weights */
    LILY_CHECK(st, lily_train_params_swap_ema(ctx, t->tp), done);
    st = lily_safetensors_writer_new(ctx, &wr);
    if (st == LILY_OK) st = add_model(t, wr, &s, &sf);
    if (st == LILY_OK)
        st = lily_safetensors_writer_set_metadata(wr, "lily.source", t->tp->ema ? "lily-train (EMA weights)"
                                                                                : "lily-train");
    snprintf(path, sizeof path, "%s/%s", t->out_dir, LILY_TRAIN_MODEL);
    if (st == LILY_OK) st = lily_safetensors_writer_write(wr, path, NULL, NULL);
    LilyStatus st2 = lily_train_params_swap_ema(ctx, t->tp);
    if (st == LILY_OK) st = st2;
done:
    lily_safetensors_writer_free(wr);
    staging_free(&s);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Set-up                                                                                    */
/* ---------------------------------------------------------------------------------------- */
static LilyStatus load_model(LilyTrainer *t, const char *path)
{
    LilyModelParams mp;
    lily_model_params_init(&mp);
    mp.precision = LILY_PRECISION_F32; /* master weights */
    LilyStatus st = lily_model_load(t->ctx, path, &mp, &t->model);
    if (st != LILY_OK) return lily_error_prefix(t->ctx, st, "loading the model to train: ");
    return LILY_OK;
}

static LilyStatus fresh_model(LilyTrainer *t, const LilyTrainerOptions *o)
{
    const char *init = o->init && o->init[0] ? o->init : t->cfg.model.init;
    if (init && init[0]) return load_model(t, init);
    LilyModelConfig mc;
    const char *arch = t->cfg.model.architecture;
    if (lily_model_config_preset(arch, &mc) != LILY_OK) LILY_TRY(lily_model_config_load(t->ctx, arch, &mc));
    char path[LILY_CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/init-random.safetensors", t->out_dir);
    lily_log(t->ctx, LILY_LOG_INFO, "train: random '%s' weights (seed %llu) -> %s", arch,
             (unsigned long long)t->seed, path);
    LILY_TRY(lily_train_write_random_model(t->ctx, &mc, t->seed, path));
    LilyStatus st = load_model(t, path);
    /* the weights are on the device now and every checkpoint holds them: the file (2.7 GB for
     * "basic") is not kept; `lily-convert --random SEED ARCH` recreates it exactly */
    unlink(path);
    return st;
}

LilyStatus lily_trainer_new(LilyContext *ctx, const LilyTrainerOptions *o, LilyTrainer **out)
{
    *out = NULL;
    LilyTrainer *t = calloc(1, sizeof *t);
    if (!t) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
    t->ctx = ctx;
    t->cfg = *o->cfg;
    t->stage = t->cfg.train.stage;
    t->ops = stage_ops(t->stage);
    t->seed = t->cfg.train.seed;
    t->batch = t->cfg.train.batch_size;
    LilyWeights *ck = NULL;
    LilyStatus st = LILY_OK;
    if (o->config_text && !(t->config_text = strdup(o->config_text))) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
        goto fail;
    }
    snprintf(t->out_dir, sizeof t->out_dir, "%s", o->out_dir && o->out_dir[0] ? o->out_dir : t->cfg.train.out_dir);
    if (!t->ops) {
        st = lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "train: unknown stage %d", (int)t->stage);
        goto fail;
    }
    if (mkdir_p(t->out_dir) != 0) {
        st = lily_error(ctx, LILY_ERR_IO, "cannot create the output folder %s: %s", t->out_dir, strerror(errno));
        goto fail;
    }
    /* model: from the checkpoint, the init file, or random */
    if (o->resume && o->resume[0]) {
        char path[LILY_CONFIG_PATH_MAX + 64];
        struct stat sb;
        if (stat(o->resume, &sb) == 0 && S_ISDIR(sb.st_mode))
            snprintf(path, sizeof path, "%s/%s", o->resume, LILY_TRAIN_CHECKPOINT);
        else
            snprintf(path, sizeof path, "%s", o->resume);
        LILY_CHECK(st, lily_weights_open(ctx, path, &ck), fail);
        const char *stage = lily_weights_metadata(ck, "lily.train.stage");
        if (!stage) {
            st = lily_error(ctx, LILY_ERR_FORMAT, "%s is not a lily-train checkpoint (no lily.train.stage); "
                            "to start from a model file use --init", path);
            goto fail;
        }
        if (strcmp(stage, lily_train_stage_name(t->stage)) != 0) {
            st = lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "%s is a checkpoint of the %s stage, but this "
                            "run trains the %s stage (--stage / train.stage)", path, stage,
                            lily_train_stage_name(t->stage));
            goto fail;
        }
        int64_t seed;
        LILY_CHECK(st, meta_i64(ctx, ck, "lily.train.seed", &seed), fail);
        t->seed = (uint64_t)seed;
        LILY_CHECK(st, load_model(t, path), fail);
    } else {
        LILY_CHECK(st, fresh_model(t, o), fail);
    }
    /* what trains */
    LilyModel *m = t->model;
    bool *trainable = calloc((size_t)(m->n_params ? m->n_params : 1), sizeof *trainable);
    if (!trainable) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
        goto fail;
    }
    for (int i = 0; i < m->n_params; i++) trainable[i] = t->ops->trainable(m->params[i].name);
    st = lily_train_params_new(ctx, m->params, m->n_params, trainable, t->cfg.train.precision,
                               t->cfg.train.ema_decay > 0.0, &t->tp);
    free(trainable);
    if (st != LILY_OK) goto fail;
    if (t->tp->n_trainable == 0) {
        st = lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "the model has no %s parameters to train",
                        lily_train_stage_name(t->stage));
        goto fail;
    }
    const LilyTrainConfig *tc = &t->cfg.train;
    t->opt = (LilyAdamW){.lr = tc->learning_rate, .beta1 = tc->adam_beta1, .beta2 = tc->adam_beta2,
                         .eps = tc->adam_eps, .weight_decay = tc->weight_decay,
                         .grad_clip = tc->grad_clip, .ema_decay = tc->ema_decay};
    /* data */
    const char *data_dir = o->data_dir && o->data_dir[0] ? o->data_dir : t->cfg.data.dir;
    LILY_CHECK(st, lily_dataset_open(ctx, data_dir, &t->ds), fail);
    LILY_CHECK(st, lily_dataset_iter_init(&t->it, t->ds, LILY_SPLIT_TRAIN, t->seed), fail);
    t->val_split = LILY_SPLIT_VALIDATION;
    if (lily_dataset_count(t->ds, LILY_SPLIT_VALIDATION) == 0) {
        t->val_split = LILY_SPLIT_TRAIN;
        t->val_on_train = 1;
        lily_log(ctx, LILY_LOG_WARNING, "dataset %s has no validation split: validating on training "
                 "segments (raise data.validation_fraction when making the dataset)", data_dir);
    }
    t->samples = lily_dataset_samples(t->ds);
    t->frames = lily_dataset_frames(t->ds);
    if (t->frames % 64) {
        st = lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "dataset %s: segments of %lld frames; training "
                        "needs multiples of 64 frames (0.64 s)", data_dir, (long long)t->frames);
        goto fail;
    }
    size_t B = (size_t)t->batch, L = (size_t)t->samples, M = (size_t)t->frames * LILY_N_MELS;
    t->high = malloc(B * L * sizeof(float));
    t->low = malloc(B * L * sizeof(float));
    t->mel_high = malloc(B * M * sizeof(float));
    t->mel_low = malloc(B * M * sizeof(float));
    t->indices = malloc(B * sizeof(size_t));
    if (!t->high || !t->low || !t->mel_high || !t->mel_low || !t->indices) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory for a batch of %zu segments", B);
        goto fail;
    }
    /* resume state */
    if (ck) {
        int64_t step, epoch, position, ema_updates;
        LILY_CHECK(st, meta_i64(ctx, ck, "lily.train.step", &step), fail);
        LILY_CHECK(st, meta_i64(ctx, ck, "lily.train.epoch", &epoch), fail);
        LILY_CHECK(st, meta_i64(ctx, ck, "lily.train.position", &position), fail);
        LILY_CHECK(st, meta_i64(ctx, ck, "lily.train.ema_updates", &ema_updates), fail);
        LILY_CHECK(st, lily_trainer_load_params(ctx, ck, "", t->tp, false), fail);
        t->tp->ema_updates = ema_updates;
        t->step = step;
        LILY_CHECK(st, lily_dataset_iter_seek(&t->it, (uint64_t)epoch, (size_t)position), fail);
    }
    LILY_CHECK(st, t->ops->init(t, ck), fail);
    lily_weights_close(ck);
    lily_log(ctx, LILY_LOG_INFO, "train %s: %d of %d tensors train (%lld values), %zu training segments, "
             "step %lld", lily_train_stage_name(t->stage), t->tp->n_trainable, m->n_params,
             (long long)t->tp->numel, lily_dataset_count(t->ds, LILY_SPLIT_TRAIN), (long long)t->step);
    *out = t;
    return LILY_OK;
fail:
    lily_weights_close(ck);
    lily_trainer_free(t);
    return st;
}

void lily_trainer_free(LilyTrainer *t)
{
    if (!t) return;
    if (t->ops && t->ops->free && t->st) t->ops->free(t);
    lily_dataset_iter_release(&t->it);
    lily_dataset_close(t->ds);
    lily_train_params_free(t->tp);
    lily_model_unref(t->model);
    free(t->high);
    free(t->low);
    free(t->mel_high);
    free(t->mel_low);
    free(t->indices);
    free(t->config_text);
    free(t);
}

int64_t lily_trainer_steps_done(const LilyTrainer *t) { return t->step; }
LilyTrainStage lily_trainer_stage(const LilyTrainer *t) { return t->stage; }
const char *lily_trainer_out_dir(const LilyTrainer *t) { return t->out_dir; }

LilyStatus lily_trainer_step(LilyTrainer *t, LilyTrainStepInfo *info)
{
    memset(info, 0, sizeof *info);
    info->lr = lily_trainer_lr(t);
    LilyArenaMark m = lily_arena_mark(&t->ctx->arena), hm = lily_arena_mark(&t->ctx->host_arena);
    LilyStatus st = t->ops->step(t, info);
    lily_arena_reset(&t->ctx->arena, m);
    lily_arena_reset(&t->ctx->host_arena, hm); /* the inference forwards stage through it */
    LILY_TRY(st);
    t->step++;
    info->step = t->step;
    info->epoch = t->it.epoch;
    if (!isfinite(info->loss))
        return lily_error(t->ctx, LILY_ERR_NUMERIC, "train: the loss is %g at step %lld: lower "
                          "train.learning_rate or resume from the last checkpoint", info->loss,
                          (long long)t->step);
    return LILY_OK;
}

LilyStatus lily_trainer_validate(LilyTrainer *t, LilyValidationInfo *info)
{
    memset(info, 0, sizeof *info);
    info->on_train = t->val_on_train;
    LilyArenaMark m = lily_arena_mark(&t->ctx->arena), hm = lily_arena_mark(&t->ctx->host_arena);
    LilyStatus st = t->ops->validate(t, info);
    lily_arena_reset(&t->ctx->arena, m);
    lily_arena_reset(&t->ctx->host_arena, hm);
    return st;
}
