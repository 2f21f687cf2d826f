/* train/trainer.h - the training loop of one stage (unet, vae or vocoder), driven by lily-train.
 *
 * A trainer owns the model being trained, its optimizer state, the dataset reader and the
 * position in it. lily_trainer_step() runs one optimizer step (train.grad_accum micro-batches
 * of train.batch_size segments); lily_trainer_validate() measures the stage's loss on the
 * validation split and the log-spectral distance of what the model produces (docs/training.md
 * says what each stage measures); lily_trainer_save() writes the checkpoint and the model
 * file atomically. Every random draw is Philox-keyed by (train.seed, step, micro-batch, use)
 * and the data order by (seed, epoch), so a run resumed from a checkpoint continues exactly
 * as if it had not stopped. */
#ifndef LILY_TRAIN_TRAINER_H
#define LILY_TRAIN_TRAINER_H

#include <stdint.h>

#include <lily/lily.h>

#include "config/project-config.h"

#define LILY_TRAIN_MAX_PARTS 6
#define LILY_TRAIN_CHECKPOINT "checkpoint.safetensors" /* resume state (in out_dir) */
#define LILY_TRAIN_MODEL "model.safetensors"           /* the trained model (EMA weights) */

typedef struct LilyTrainer LilyTrainer;

typedef struct LilyTrainerOptions {
    const LilyProjectConfig *cfg; /* data, model and train sections (already validated) */
    const char *config_text;      /* the config file's text, stored in checkpoints (may be NULL) */
    const char *init;             /* model file to start from; NULL or "": cfg->model.init, and
                                   * when that is empty too, random weights for
                                   * cfg->model.architecture (seed train.seed) */
    const char *resume;           /* a checkpoint file or the folder holding one; NULL: fresh */
    const char *data_dir;         /* NULL: cfg->data.dir */
    const char *out_dir;          /* NULL: cfg->train.out_dir */
} LilyTrainerOptions;

typedef struct LilyTrainStepInfo {
    int64_t step;               /* optimizer steps done, this one included */
    double loss;                /* the stage's main loss (generator loss for the vocoder) */
    int n_parts;
    const char *part_names[LILY_TRAIN_MAX_PARTS];
    double parts[LILY_TRAIN_MAX_PARTS];
    double lr, grad_norm;
    uint64_t epoch;
} LilyTrainStepInfo;

typedef struct LilyValidationInfo {
    double loss;      /* the stage's loss on validation batches (fixed draws) */
    double lsd;       /* LSD (dB-free log10 units) of the model's audio vs the high side */
    double lsd_input; /* LSD of the low side vs the high side (what the model should beat) */
    int64_t items;    /* segments measured */
    int on_train;     /* 1 when the dataset has no validation split and the train split was used */
} LilyValidationInfo;

LilyStatus lily_trainer_new(LilyContext *ctx, const LilyTrainerOptions *opt, LilyTrainer **out);
void lily_trainer_free(LilyTrainer *t);
int64_t lily_trainer_steps_done(const LilyTrainer *t);
LilyTrainStage lily_trainer_stage(const LilyTrainer *t);
/* The folder checkpoints, logs and the model go to. */
const char *lily_trainer_out_dir(const LilyTrainer *t);
LilyStatus lily_trainer_step(LilyTrainer *t, LilyTrainStepInfo *info);
LilyStatus lily_trainer_validate(LilyTrainer *t, LilyValidationInfo *info);
/* Writes out_dir/checkpoint.safetensors (everything --resume needs) and out_dir/
 * model.safetensors (a Lily model file with the EMA weights of the trained part). Both are
 * atomic. progress (may be NULL) is called while the checkpoint is written. */
LilyStatus lily_trainer_save(LilyTrainer *t, void (*progress)(uint64_t done, uint64_t total, void *user),
                             void *user);

#endif /* LILY_TRAIN_TRAINER_H */
