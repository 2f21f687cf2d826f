/* config/model-config.h - the architecture of an AudioSR model, as numbers.
 *
 * Filled from AudioSR's YAML (model.params.unet_config / first_stage_config /
 * cond_stage_config.concat_lowpass_cond, plus vocoder_48k, which AudioSR hard-codes in
 * audiosr/utilities/model.py and tiny-a.yaml carries), from the metadata of a Lily
 * .safetensors file (the same YAML text), or from the built-in AudioSR "basic" defaults
 * (audiosr/utils.py get_basic_config: spec.md section 4). Names follow AudioSR's keys. */
#ifndef LILY_CONFIG_MODEL_CONFIG_H
#define LILY_CONFIG_MODEL_CONFIG_H

#include <lily/lily.h>

#define LILY_CFG_MAX_LEVELS 8

typedef struct LilyUNetConfig {
    int in_channels;        /* 32: x_t (16) + condition latent (16) */
    int out_channels;       /* 16 */
    int model_channels;     /* 128 */
    int n_levels;           /* len(channel_mult) */
    int channel_mult[LILY_CFG_MAX_LEVELS]; /* [1, 2, 3, 5] */
    int num_res_blocks;     /* 2 */
    int n_attention_resolutions;
    int attention_resolutions[LILY_CFG_MAX_LEVELS]; /* downsample factors: [8, 4, 2] */
    int num_head_channels;  /* 32; -1 when num_heads is used */
    int num_heads;          /* -1 unless num_head_channels is -1 */
    int transformer_depth;  /* 1 */
    int extra_sa_layer;     /* 1: a second SpatialTransformer at each attention point */
    int context_dim;        /* 0: no cross-attention context */
    int use_scale_shift_norm; /* 0 */
    int resblock_updown;    /* 0 */
    int conv_resample;      /* 1 */
    int time_embed_dim;     /* 4 * model_channels */
} LilyUNetConfig;

typedef struct LilyVaeConfig {
    int ch;                 /* 128 */
    int n_levels;
    int ch_mult[LILY_CFG_MAX_LEVELS]; /* [1, 2, 4, 8] */
    int num_res_blocks;     /* 2 */
    int z_channels;         /* 16 */
    int embed_dim;          /* 16 */
    int double_z;           /* 1 */
    int in_channels;        /* 1 */
    int out_ch;             /* 1 */
    int mel_bins;           /* 256 */
    int resolution;         /* 256: ddconfig.resolution, where attn_resolutions are counted from */
    int n_attn_resolutions; /* 0: only the mid-block attention */
    int attn_resolutions[LILY_CFG_MAX_LEVELS];
    int downsample_time;    /* 0 */
} LilyVaeConfig;

typedef struct LilyVocoderConfig {
    int num_mels;           /* 256 */
    int n_upsamples;
    int upsample_rates[LILY_CFG_MAX_LEVELS];        /* [6, 5, 4, 2, 2] */
    int upsample_kernel_sizes[LILY_CFG_MAX_LEVELS]; /* [12, 10, 8, 4, 4] */
    int upsample_initial_channel;                   /* 1536 */
    int n_resblocks;
    int resblock_kernel_sizes[LILY_CFG_MAX_LEVELS]; /* [3, 7, 11, 15] */
    int n_dilations;
    int resblock_dilation_sizes[LILY_CFG_MAX_LEVELS][4]; /* [1, 3, 5] each */
    int resblock_type;      /* 1 */
    int sampling_rate;      /* 48000 */
} LilyVocoderConfig;

typedef struct LilyDiffusionConfig {
    int timesteps;          /* 1000 */
    char beta_schedule[16]; /* "cosine" (s = 0.008, unclipped), or "linear" */
    char parameterization[8]; /* "v" or "eps" */
    double linear_start, linear_end;
    float scale_factor;     /* from the checkpoint's `scale_factor` buffer; 1.0 if absent */
    float unconditional_value; /* -11.4981: the unconditional concat input (before scale) */
    double unconditional_prob_cfg; /* 0.1: condition dropped at this rate in training */
    int latent_channels;    /* 16 */
} LilyDiffusionConfig;

typedef struct LilyModelConfig {
    LilyUNetConfig unet;
    LilyVaeConfig vae;      /* first stage: decoder (and encoder for training) */
    LilyVaeConfig cond_vae; /* cond_stage_models.0.vae: encoder of the condition */
    LilyVocoderConfig vocoder;
    LilyDiffusionConfig diffusion;
    int sample_rate, n_fft, hop, n_mels;
    double fmin, fmax;
} LilyModelConfig;

/* AudioSR's basic (and speech) config: spec.md section 4, scale_factor left at 1.0. */
void lily_model_config_basic(LilyModelConfig *cfg);
/* Built-in architectures by name: "basic" (= "speech", AudioSR's real widths) and "tiny"
 * (the widths of shared/audiosr/tiny-a: UNet 32 [1,1,1,2], VAE 32 [1,1,1,2], vocoder 64,
 * scale_factor 0.7; small enough to train and test on a laptop). LILY_ERR_INVALID_ARGUMENT
 * for other names. */
LilyStatus lily_model_config_preset(const char *name, LilyModelConfig *cfg);
/* Parses AudioSR's YAML layout (as tiny-a.yaml) from text. Missing sections fall back to the
 * basic defaults; vocoder_48k overrides the hard-coded vocoder. Errors carry line:column. */
LilyStatus lily_model_config_parse(LilyContext *ctx, const char *yaml_text, size_t len,
                                   const char *origin, LilyModelConfig *cfg);
LilyStatus lily_model_config_load(LilyContext *ctx, const char *path, LilyModelConfig *cfg);
/* Writes the config as YAML in AudioSR's layout (what .safetensors metadata carries); the
 * result parses back to the same struct. malloc'ed, NUL-terminated. */
LilyStatus lily_model_config_to_yaml(LilyContext *ctx, const LilyModelConfig *cfg, char **yaml);
/* Checks ranges and internal consistency (e.g. channels divisible by 32 GroupNorm groups). */
LilyStatus lily_model_config_validate(LilyContext *ctx, const LilyModelConfig *cfg);
/* Whether two configs describe the same model (every field, scale_factor included). */
int lily_model_config_equal(const LilyModelConfig *a, const LilyModelConfig *b);

#endif /* LILY_CONFIG_MODEL_CONFIG_H */
