/* train/trainer-impl.h - what the stages share inside the trainer (engine-internal).
 *
 * trainer.c owns the set-up (model, optimizer, dataset), the batch reader, the checkpoint and
 * the schedule; each stage file (stage-unet.c, stage-vae.c, stage-vocoder.c) says which
 * parameters train and implements one optimizer step and the validation. */
#ifndef LILY_TRAIN_TRAINER_IMPL_H
#define LILY_TRAIN_TRAINER_IMPL_H

#include <stdbool.h>

#include <lily/dataset.h>

#include "core/context.h"
#include "models/model.h"
#include "train/optim.h"
#include "train/trainer.h"
#include "weights/weights.h"

/* Host memory that must stay valid until a safetensors write returns. */
typedef struct LilyStagingList {
    void **ptrs;
    int n, cap;
} LilyStagingList;

typedef struct LilyStage {
    const char *name;
    /* Whether model parameter `name` trains in this stage. */
    bool (*trainable)(const char *name);
    /* Extra state after the model and its optimizer exist; w is the checkpoint when resuming
     * (NULL on a fresh start). */
    LilyStatus (*init)(LilyTrainer *t, const LilyWeights *w);
    LilyStatus (*step)(LilyTrainer *t, LilyTrainStepInfo *info);
    LilyStatus (*validate)(LilyTrainer *t, LilyValidationInfo *info);
    /* Adds the stage's own tensors (discriminators and their optimizer) to a checkpoint. */
    LilyStatus (*save)(LilyTrainer *t, LilySafetensorsWriter *wr, LilyStagingList *staging);
    void (*free)(LilyTrainer *t);
} LilyStage;

extern const LilyStage lily_stage_unet;
extern const LilyStage lily_stage_vae;
extern const LilyStage lily_stage_vocoder;

struct LilyTrainer {
    LilyContext *ctx;
    LilyProjectConfig cfg;
    char *config_text;
    LilyTrainStage stage;
    const LilyStage *ops;
    void *st;               /* the stage's state */
    LilyModel *model;
    LilyTrainParams *tp;    /* the model's parameters (the stage's subset trains) */
    LilyAdamW opt;
    LilyDataset *ds;
    LilyDatasetIter it;
    LilyDatasetSplit val_split;
    int val_on_train;
    int64_t step;           /* optimizer steps done */
    uint64_t seed;
    char out_dir[LILY_CONFIG_PATH_MAX];
    int batch;
    int64_t samples, frames;
    /* host batch buffers: [batch][samples], [batch][frames][256] */
    float *high, *low, *mel_high, *mel_low;
    size_t *indices;
};

/* Philox stream ids of the draws of a micro-batch: distinct per (step, micro, use). */
typedef enum LilyDrawUse {
    LILY_DRAW_T = 1,       /* diffusion timesteps */
    LILY_DRAW_NOISE,       /* diffusion noise */
    LILY_DRAW_DROP,        /* condition dropout */
    LILY_DRAW_POST_HIGH,   /* posterior sample of the target latent */
    LILY_DRAW_POST_LOW,    /* posterior sample of the condition latent */
    LILY_DRAW_SAMPLER,     /* validation DDIM noise */
} LilyDrawUse;
uint64_t lily_trainer_stream(int64_t step, int micro, LilyDrawUse use);
/* The `step` argument of lily_trainer_stream for the draws of validation batch k: negative, so
 * never a training step's, and the same at every validation (values comparable over a run). */
static inline int64_t lily_trainer_valid_key(int k) { return -1 - (int64_t)k; }

/* The next training batch into the host buffers (t->indices receives the split indices). */
LilyStatus lily_trainer_next_batch(LilyTrainer *t);
/* Validation batch k (0-based) into the host buffers; *n receives its size (the last one may
 * be short; 0 when k is past the end). */
LilyStatus lily_trainer_valid_batch(LilyTrainer *t, int k, int *n);
/* Number of validation batches to run (train.validation_batches, bounded by the split). */
int lily_trainer_valid_batches(const LilyTrainer *t);
/* Learning rate of the current step. */
double lily_trainer_lr(const LilyTrainer *t);
/* A [n, 1, frames, 256] device tensor of host mels [n][frames][256] (the VAE's image). */
LilyStatus lily_trainer_mel_image(LilyTrainer *t, const float *mel, int n, LilyTensor *out);
/* Fills info from sums over `items` validation segments (loss, LSD and the input's LSD, each
 * summed per segment); leaves the averages at 0 when there were none. */
static inline void lily_trainer_validation_means(LilyValidationInfo *info, double loss, double lsd,
                                                 double lsd_in, int64_t items)
{
    if (items) {
        info->loss = loss / (double)items;
        info->lsd = lsd / (double)items;
        info->lsd_input = lsd_in / (double)items;
    }
    info->items = items;
}

/* LSD of the `n` vocoded waveforms in `wave` (a device tensor [n, 1, len], len >= samples)
 * against the high side of the batch in the host buffers; also of the low side when
 * lsd_input_sum is not NULL. Adds the per-item values to the sums (divide by the count). */
LilyStatus lily_trainer_lsd_sum(LilyTrainer *t, const LilyTensor *wave, int n, double *lsd_sum,
                                double *lsd_input_sum);
/* The validation audio of a mel image [n, 1, frames, 256] (the VAE's layout): the model's
 * vocoder on it, then its LSD as lily_trainer_lsd_sum. */
LilyStatus lily_trainer_vocode_lsd(LilyTrainer *t, const LilyModel *m, const LilyTensor *image, int n,
                                   double *lsd_sum, double *lsd_input_sum);
/* Copies a device tensor to new host memory registered in staging (freed after the write). */
LilyStatus lily_staging_host(LilyContext *ctx, LilyStagingList *s, const LilyTensor *t,
                             const void **out);
LilyStatus lily_staging_add(LilyStagingList *s, void *p);
/* Adds tensors of a parameter set to a checkpoint: values under "<prefix>" + name (when
 * values), Adam moments and EMA under "lily.train/adam_m|adam_v|ema/" + prefix + name. */
LilyStatus lily_trainer_save_params(LilyContext *ctx, LilySafetensorsWriter *wr,
                                    LilyStagingList *staging, const char *prefix,
                                    LilyTrainParams *tp, bool values);
/* The reverse: restores what save_params wrote (values too when asked). */
LilyStatus lily_trainer_load_params(LilyContext *ctx, const LilyWeights *w, const char *prefix,
                                    LilyTrainParams *tp, bool values);

#endif /* LILY_TRAIN_TRAINER_IMPL_H */
