/* config/project-config.h - Lily's project configuration (config.yaml): the `data`, `model`,
 * `train` and `inference` sections as typed structs.
 *
 * Every key has a default (the values of the bundled /config.yaml), so a file may set only
 * what it changes. Unknown sections and keys, wrong types and out-of-range values are errors
 * naming file:line:column and the key ("config.yaml:12:3: data.segment_seconds: 5.0 is not a
 * multiple of 0.64 s"). Relative paths are resolved against the config file's folder. This is
 * Lily's own file, not AudioSR's model YAML (that one is config/model-config.h). */
#ifndef LILY_CONFIG_PROJECT_CONFIG_H
#define LILY_CONFIG_PROJECT_CONFIG_H

#include <stdint.h>

#include <lily/dataset.h>
#include <lily/lily.h>

#define LILY_CONFIG_PATH_MAX 4096

typedef struct LilyDataConfig {
    int sample_rate;              /* 48000: the only rate Lily trains at */
    LilyDatasetParams params;     /* segment_seconds, hop_seconds, shard_segments, ... */
    char dir[LILY_CONFIG_PATH_MAX]; /* data.dir, resolved */
} LilyDataConfig;

typedef struct LilyModelSection {
    char architecture[LILY_CONFIG_PATH_MAX]; /* "basic", "tiny" or an AudioSR YAML path (resolved) */
    char init[LILY_CONFIG_PATH_MAX];         /* "" or a model file (resolved) */
} LilyModelSection;

typedef enum LilyTrainStage {
    LILY_TRAIN_STAGE_UNET = 0,
    LILY_TRAIN_STAGE_VAE,
    LILY_TRAIN_STAGE_VOCODER,
} LilyTrainStage;

typedef enum LilyLrDecay {
    LILY_LR_DECAY_COSINE = 0,
    LILY_LR_DECAY_CONSTANT,
    LILY_LR_DECAY_LINEAR,
} LilyLrDecay;

typedef struct LilyTrainConfig {
    LilyTrainStage stage;
    char out_dir[LILY_CONFIG_PATH_MAX];
    int batch_size, grad_accum;
    int64_t max_steps;
    double learning_rate;
    int64_t warmup_steps;
    LilyLrDecay decay;
    double min_learning_rate, weight_decay;
    double adam_beta1, adam_beta2, adam_eps;
    double grad_clip;          /* 0 = no clipping */
    double ema_decay;
    LilyPrecision precision;   /* f32 or bf16 */
    double unconditional_prob;
    int64_t log_every, validate_every, checkpoint_every;
    uint64_t seed;
    int validation_batches;    /* batches measured at each validation */
    int validation_steps;      /* DDIM steps of the unet stage's validation samples */
    double kl_weight;          /* VAE stage: weight of the KL term */
    double disc_width;         /* vocoder stage: discriminator widths as a fraction of HiFi-GAN's */
    int scale_by_std;          /* unet stage: set scale_factor = 1/std(latents) at step 0 (LDM) */
} LilyTrainConfig;

typedef struct LilyInferenceConfig {
    char model[LILY_CONFIG_PATH_MAX]; /* "" = the bundled default */
    LilyDeviceKind device;
    int device_index;
    LilyPrecision precision;
    int steps;
    double guidance_scale;
    uint64_t seed;
    double chunk_seconds, overlap_seconds;
} LilyInferenceConfig;

typedef struct LilyProjectConfig {
    LilyDataConfig data;
    LilyModelSection model;
    LilyTrainConfig train;
    LilyInferenceConfig inference;
} LilyProjectConfig;

/* The bundled defaults; relative paths are left as written. */
void lily_project_config_defaults(LilyProjectConfig *cfg);
/* Parses YAML text. origin names it in messages; base_dir resolves relative paths (NULL:
 * leave them relative). Starts from the defaults. */
LilyStatus lily_project_config_parse(LilyContext *ctx, const char *text, size_t len,
                                     const char *origin, const char *base_dir,
                                     LilyProjectConfig *cfg);
LilyStatus lily_project_config_load(LilyContext *ctx, const char *path, LilyProjectConfig *cfg);

const char *lily_train_stage_name(LilyTrainStage s);     /* "unet", "vae", "vocoder" */
LilyStatus lily_train_stage_from_name(const char *name, LilyTrainStage *s);
const char *lily_lr_decay_name(LilyLrDecay d);           /* "cosine", "constant", "linear" */
LilyStatus lily_lr_decay_from_name(const char *name, LilyLrDecay *d);

#endif /* LILY_CONFIG_PROJECT_CONFIG_H */
