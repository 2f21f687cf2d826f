/* models/model.h - a loaded AudioSR model: weights on the device, organised by module.
 *
 * Module and parameter names follow AudioSR's state_dict keys (shared/audiosr/keys-basic.tsv),
 * so a module struct here is a set of pointers to tensors looked up by those names. The
 * forward functions live in vae.c, unet.c, vocoder.c; the sampler in sampler.c; the whole
 * chain in pipeline.c. Shape letters: N batch, C channels, H rows (time), W columns
 * (frequency), L samples, T tokens. */
#ifndef LILY_MODELS_MODEL_H
#define LILY_MODELS_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <lily/lily.h>

#include "backend/backend.h"
#include "config/model-config.h"
#include "core/tensor.h"
#include "weights/weights.h"

/* ---- building blocks (blocks.c) ---- */
typedef struct LilyConv {
    LilyTensor *w; /* [O, C, KH, KW] or [O, C, K] (transposed: [C, O, K]) */
    LilyTensor *b; /* [O] or NULL */
} LilyConv;

typedef struct LilyLinear {
    LilyTensor *w; /* [O, I] */
    LilyTensor *b; /* [O] or NULL */
} LilyLinear;

typedef struct LilyNorm {
    LilyTensor *g; /* gamma [C] */
    LilyTensor *b; /* beta [C] */
} LilyNorm;

/* ---- VAE (vae.c): AudioSR's AutoencoderKL (LDM diffusionmodules/model.py) ---- */
typedef struct LilyVaeResBlock {
    int c_in, c_out;
    LilyNorm norm1, norm2;
    LilyConv conv1, conv2;
    LilyConv nin_shortcut; /* .w NULL when c_in == c_out */
} LilyVaeResBlock;

typedef struct LilyVaeAttn {
    int c;
    LilyNorm norm;
    LilyConv q, k, v, proj_out;
} LilyVaeAttn;

#define LILY_VAE_MAX_RES 4
typedef struct LilyVaeLevel {
    int n_blocks;
    LilyVaeResBlock block[LILY_VAE_MAX_RES];
    LilyConv resample; /* encoder: downsample.conv; decoder: upsample.conv; .w NULL if none */
} LilyVaeLevel;

typedef struct LilyVaeEncoder {
    bool present;
    LilyConv conv_in;
    LilyVaeLevel down[LILY_CFG_MAX_LEVELS];
    LilyVaeResBlock mid_block_1, mid_block_2;
    LilyVaeAttn mid_attn_1;
    LilyNorm norm_out;
    LilyConv conv_out;
    LilyConv quant_conv; /* 1x1, 2 z -> 2 embed */
} LilyVaeEncoder;

typedef struct LilyVaeDecoder {
    bool present;
    LilyConv post_quant_conv; /* 1x1, embed -> z */
    LilyConv conv_in;
    LilyVaeResBlock mid_block_1, mid_block_2;
    LilyVaeAttn mid_attn_1;
    LilyVaeLevel up[LILY_CFG_MAX_LEVELS];
    LilyNorm norm_out;
    LilyConv conv_out;
} LilyVaeDecoder;

/* ---- UNet (unet.c): LDM openaimodel.UNetModel as AudioSR configures it ---- */
typedef struct LilyUResBlock {
    int c_in, c_out;
    LilyNorm in_norm;      /* in_layers.0 */
    LilyConv in_conv;      /* in_layers.2 */
    LilyLinear emb;        /* emb_layers.1 */
    LilyNorm out_norm;     /* out_layers.0 */
    LilyConv out_conv;     /* out_layers.3 */
    LilyConv skip;         /* skip_connection (1x1), .w NULL if identity */
} LilyUResBlock;

typedef struct LilyAttnWeights {
    LilyLinear q, k, v, out; /* to_q, to_k, to_v (no bias), to_out.0 */
} LilyAttnWeights;

typedef struct LilyTransformerBlock {
    LilyNorm norm1, norm2, norm3;
    LilyAttnWeights attn1, attn2;
    LilyLinear ff_proj; /* ff.net.0.proj: D -> 2 * 4D (GEGLU) */
    LilyLinear ff_out;  /* ff.net.2: 4D -> D */
} LilyTransformerBlock;

#define LILY_MAX_DEPTH 4
typedef struct LilySpatialTransformer {
    int c, heads, dim_head, depth;
    LilyNorm norm;       /* GroupNorm(32, eps 1e-6) */
    LilyConv proj_in;    /* 1x1 */
    LilyTransformerBlock blocks[LILY_MAX_DEPTH];
    LilyConv proj_out;   /* 1x1 */
} LilySpatialTransformer;

/* One entry of input_blocks / output_blocks / middle_block. */
#define LILY_MAX_ST 2
typedef struct LilyUBlock {
    int kind;             /* 0 conv_in, 1 res (+ST), 2 downsample */
    LilyConv conv;        /* conv_in or the downsample op */
    bool has_res;
    LilyUResBlock res;
    int n_st;
    LilySpatialTransformer st[LILY_MAX_ST];
    bool has_up;
    LilyConv up_conv;     /* Upsample.conv */
    bool has_res2;        /* middle block: the second ResBlock */
    LilyUResBlock res2;
} LilyUBlock;

#define LILY_UNET_MAX_BLOCKS 40
typedef struct LilyUNet {
    bool present;
    int n_input, n_output;
    LilyLinear time_embed_0, time_embed_2;
    LilyUBlock input[LILY_UNET_MAX_BLOCKS];
    LilyUBlock middle;
    LilyUBlock output[LILY_UNET_MAX_BLOCKS];
    LilyNorm out_norm;  /* out.0 */
    LilyConv out_conv;  /* out.2 */
} LilyUNet;

/* ---- HiFi-GAN (vocoder.c): hifigan/models.py Generator, resblock "1" ---- */
#define LILY_VOC_MAX_UPS 8
#define LILY_VOC_MAX_KERNELS 6
typedef struct LilyVocResBlock {
    int channels, kernel;
    int dilation[4];
    int n_convs;
    LilyConv convs1[4], convs2[4];
} LilyVocResBlock;

typedef struct LilyVocoder {
    bool present;
    LilyConv conv_pre;
    int n_ups, n_kernels;
    LilyConv ups[LILY_VOC_MAX_UPS];
    LilyVocResBlock resblocks[LILY_VOC_MAX_UPS * LILY_VOC_MAX_KERNELS];
    LilyConv conv_post;
} LilyVocoder;

/* ---- the whole model ---- */
typedef struct LilyParam {
    char *name;       /* AudioSR key */
    LilyTensor t;     /* on the model's device, dtype per precision */
    bool matrix;      /* conv/linear weight: converted to the compute precision */
} LilyParam;

struct LilyModel {
    int refcount;     /* atomic */
    LilyModelConfig cfg;
    LilyPrecision precision;
    LilyDeviceKind device;
    int device_index;
    /* How to free the weight memory: a copy of the loading backend's ops/kind/index with no
     * private state, so the model may outlive the context that loaded it (model cache). */
    struct LilyBackend mem_backend;
    void *memory;     /* one device allocation holding every parameter */
    size_t memory_bytes;
    int n_params, cap_params;
    LilyParam *params;
    char *path;
    LilyUNet unet;
    LilyVaeEncoder cond_encoder;  /* cond_stage_models.0.vae.{encoder, quant_conv} */
    LilyVaeEncoder encoder;       /* first_stage_model.{encoder, quant_conv} (training) */
    LilyVaeDecoder decoder;       /* first_stage_model.{post_quant_conv, decoder} */
    LilyVocoder vocoder;          /* first_stage_model.vocoder */
    /* cosine schedule (float64, as AudioSR computes it before storing float32) */
    double *alphas_cumprod;       /* [timesteps] */
};

/* ---- forward passes (all activations f32 on the context's device) ---- */
/* mel [N, 1, H, W] -> mean, logvar [N, embed, H/8, W/8] (logvar clamped to [-30, 20]). */
LilyStatus lily_vae_encode(LilyContext *ctx, const LilyModel *m, const LilyVaeEncoder *enc,
                           const LilyTensor *mel, LilyTensor *mean, LilyTensor *logvar);
/* z [N, embed, h, w] (already divided by scale_factor) -> mel [N, 1, 8h, 8w]. */
LilyStatus lily_vae_decode(LilyContext *ctx, const LilyModel *m, const LilyTensor *z,
                           LilyTensor *mel);
/* x [N, in, h, w] (x_t and the scaled condition concatenated), integer timestep t per batch
 * item -> v [N, out, h, w]. */
LilyStatus lily_unet_forward(LilyContext *ctx, const LilyModel *m, const LilyTensor *x,
                             const int *t, LilyTensor *out);
/* mel [N, n_mels, F] -> waveform [N, 1, 480 F + 16] (AudioSR's length: spec 4.3). */
LilyStatus lily_vocoder_forward(LilyContext *ctx, const LilyModel *m, const LilyTensor *mel,
                                LilyTensor *wave);
int64_t lily_vocoder_out_len(const LilyModelConfig *cfg, int64_t frames);

/* ---- load (model.c) ---- */
LilyStatus lily_model_build(LilyContext *ctx, const char *path, const LilyModelConfig *cfg,
                            const LilyWeights *w, LilyPrecision precision,
                            LilyModel **out);

/* A model of this config with the deterministic random initialisation lily-convert --random
 * writes (same values for the same seed), without a file: for benchmarks and tests. */
LilyStatus lily_model_new_random(LilyContext *ctx, const LilyModelConfig *cfg, uint64_t seed,
                                 LilyPrecision precision, LilyModel **out);

/* Timestep embedding [N, dim] of integer timesteps (cos | sin order, max period 10000). */
void lily_timestep_embedding(const int *t, int n, int dim, float *out);

#endif /* LILY_MODELS_MODEL_H */
