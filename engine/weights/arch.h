/* weights/arch.h - the tensors an AudioSR model of a given config holds, by name and shape,
 * and the check of a weights file against them.
 *
 * AudioSR's LatentDiffusion state dict (shared/audiosr/spec.md section 2, keys-basic.tsv) in
 * the order PyTorch writes it: the DDPM schedule buffers and scale_factor, CLAP, the UNet
 * (model.diffusion_model.*), its EMA copy (model_ema.* with the dots of the parameter names
 * removed, plus decay and num_updates), the first-stage AutoencoderKL (encoder, decoder,
 * quant_conv, post_quant_conv, vocoder) and the condition AutoencoderKL
 * (cond_stage_models.0.vae.*, with its own decoder and vocoder that super-resolution never
 * runs). The enumerator walks the same constructors AudioSR does (openaimodel.py UNetModel,
 * diffusionmodules/model.py Encoder/Decoder, hifigan/models.py Generator, HTSAT + RoBERTa for
 * CLAP), so the names and shapes are those of an official checkpoint. */
#ifndef LILY_WEIGHTS_ARCH_H
#define LILY_WEIGHTS_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include <lily/lily.h>

#include "config/model-config.h"
#include "core/tensor.h"
#include "weights/weights.h"

/* Components, as named in keys-basic.tsv (CLAP's three there are one here). */
typedef enum LilyComponent {
    LILY_COMP_DDPM_BUFFERS = 0, /* betas ... logvar, scale_factor */
    LILY_COMP_CLAP,
    LILY_COMP_UNET,
    LILY_COMP_UNET_EMA,
    LILY_COMP_VAE_ENCODER,
    LILY_COMP_VAE_DECODER,
    LILY_COMP_VAE_QUANT,        /* first_stage_model.quant_conv, post_quant_conv */
    LILY_COMP_VOCODER,
    LILY_COMP_COND_VAE_ENCODER,
    LILY_COMP_COND_VAE_DECODER,
    LILY_COMP_COND_VAE_QUANT,   /* cond_stage_models.0.vae.quant_conv, post_quant_conv */
    LILY_COMP_COND_VAE_VOCODER,
    LILY_COMP_UNKNOWN,          /* a name no AudioSR module has */
    LILY_COMP_COUNT
} LilyComponent;

/* What a tensor is for. */
typedef enum LilyUse {
    LILY_USE_SR = 0,  /* read by super-resolution: kept by lily-convert, required to load */
    LILY_USE_TRAIN,   /* first-stage encoder and quant_conv: kept for training, optional */
    LILY_USE_UNUSED,  /* EMA, CLAP, cond decoder/vocoder, schedule buffers: dropped by default */
} LilyUse;

/* How --random initialises a tensor (PyTorch's defaults for the module that owns it). */
typedef enum LilyInit {
    LILY_INIT_FAN_IN = 0, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): conv/linear weights and biases */
    LILY_INIT_ONES,       /* GroupNorm/LayerNorm/BatchNorm gamma, running_var */
    LILY_INIT_ZEROS,      /* norm beta, running_mean, counters */
    LILY_INIT_CONST,      /* init_value: scale_factor (the config's), EMA decay */
    LILY_INIT_SCHEDULE,   /* a DDPM schedule buffer computed from the config */
} LilyInit;

#define LILY_ARCH_NAME_MAX 128

typedef struct LilyArchTensor {
    char name[LILY_ARCH_NAME_MAX];
    int ndim;
    int64_t shape[LILY_MAX_DIMS];
    LilyDType dtype;       /* f32 except int buffers (num_updates i32, CLAP indices i64) */
    LilyComponent comp;
    LilyUse use;
    LilyInit init;
    int64_t fan_in;        /* LILY_INIT_FAN_IN */
    double init_value;     /* LILY_INIT_CONST */
    bool optional;         /* may be absent from a valid file (version-dependent buffers) */
} LilyArchTensor;

typedef struct LilyArch {
    LilyArchTensor *t;
    int n, cap;
} LilyArch;

/* Flags for lily_arch_build. */
#define LILY_ARCH_CLAP 1u  /* include CLAP's 507 tensors (fixed architecture, never used) */

/* Every tensor of an AudioSR model with this config, in state-dict order. */
LilyStatus lily_arch_build(LilyContext *ctx, const LilyModelConfig *cfg, unsigned flags,
                           LilyArch *arch);
void lily_arch_free(LilyArch *arch);
/* Index of `name` in arch, -1 if absent (linear; build a LilyWeights-style index for bulk). */
int lily_arch_find(const LilyArch *arch, const char *name);

const char *lily_component_name(LilyComponent c); /* "unet", "vae_decoder", ... */
const char *lily_use_name(LilyUse u);             /* "sr", "train", "unused" */
/* The component a state-dict name belongs to, from its prefix (any name, known or not). */
LilyComponent lily_component_of_name(const char *name);
/* What the component is for (per-tensor uses can be finer: see LilyArchTensor.use). */
LilyUse lily_component_use(LilyComponent c);

/* Element i.. of the deterministic random initialisation of a tensor (lily-convert --random):
 * Philox (kernels/common/philox.h) keyed by seed, one stream per tensor name, so a tensor's
 * values depend on its name and the seed only. */
void lily_arch_random_values(const LilyArchTensor *t, const LilyModelConfig *cfg, uint64_t seed,
                             uint64_t first, size_t count, float *out);

/* ---- compatibility check ---- */

typedef enum LilyCheckKind {
    LILY_CHECK_MISSING = 0,     /* expected, absent */
    LILY_CHECK_COMPONENT_ABSENT,/* every tensor of one use in a component absent (one item) */
    LILY_CHECK_UNEXPECTED,      /* present, not part of the config's model */
    LILY_CHECK_SHAPE,           /* present with another shape */
    LILY_CHECK_DTYPE,           /* present with a dtype of the wrong kind (int vs float) */
    LILY_CHECK_NONFINITE,       /* NaN or infinity in the values */
} LilyCheckKind;

typedef struct LilyCheckItem {
    LilyCheckKind kind;
    const char *name;           /* tensor name; the component name for COMPONENT_ABSENT */
    LilyComponent comp;
    LilyUse use;                /* what the tensor(s) are for */
    bool required;              /* the problem prevents super-resolution */
    const LilyArchTensor *expected; /* NULL for UNEXPECTED and COMPONENT_ABSENT */
    const LilyWeight *found;    /* NULL for MISSING and COMPONENT_ABSENT */
    int count;                  /* COMPONENT_ABSENT: tensors of that use in the component */
    int64_t bad_index;          /* NONFINITE: first bad element */
    double bad_value;
} LilyCheckItem;

typedef void (*LilyCheckReportFn)(const LilyCheckItem *item, void *user);

/* Flags for lily_weights_check. */
#define LILY_CHECK_VALUES 1u    /* scan float tensors for NaN/Inf */
#define LILY_CHECK_CLAP 2u      /* check CLAP names and shapes too (else any clap.* is accepted) */

/* Compares a weights file with the tensors cfg describes and reports each difference through
 * report (may be NULL). Returns LILY_OK when super-resolution can run: every LILY_USE_SR
 * tensor present with its shape and no NaN/Inf in what was scanned; otherwise LILY_ERR_SHAPE
 * (missing or wrong shape or dtype) or LILY_ERR_NUMERIC, with a message naming the first
 * problem and the counts. Problems in unused or training-only tensors are reported but do not
 * fail. */
LilyStatus lily_weights_check(LilyContext *ctx, const LilyWeights *w, const LilyModelConfig *cfg,
                              unsigned flags, LilyCheckReportFn report, void *user);

/* The config that describes a weights file: config_path (a YAML file) when given, else the
 * file's "lily.config" metadata, else AudioSR's basic config. The checkpoint's scale_factor
 * tensor, when present, overrides the config's (AudioSR keeps the trained value only there).
 * *source (may be NULL) receives "config file", "embedded" or "AudioSR basic defaults". */
LilyStatus lily_weights_resolve_config(LilyContext *ctx, const LilyWeights *w,
                                       const char *config_path, LilyModelConfig *cfg,
                                       const char **source);

/* First non-finite element of a float tensor (f32/bf16/f16), or -1; *value receives it. */
int64_t lily_weight_first_nonfinite(const LilyWeight *t, double *value);

#endif /* LILY_WEIGHTS_ARCH_H */
