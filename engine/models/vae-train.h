/* models/vae-train.h - AudioSR's KL-VAE (AutoencoderKL) with its backward pass, for training.
 *
 * The arithmetic of vae.c (LDM diffusionmodules/model.py Encoder, Decoder, ResnetBlock,
 * AttnBlock, Downsample, Upsample; spec.md 4.2) as explicit forward/backward pairs that keep
 * their activations in the context's arena. Dropout (0.1 in AudioSR's ddconfig) is not applied:
 * see docs/training.md. Block calls are public for the finite-difference tests. */
#ifndef LILY_MODELS_VAE_TRAIN_H
#define LILY_MODELS_VAE_TRAIN_H

#include "models/layers-train.h"

typedef struct LilyVResTape {
    const LilyVaeResBlock *rb;
    LilyTNorm n1, n2;
    LilyTConv c1, c2, skip;
} LilyVResTape;

typedef struct LilyVAttnTape {
    const LilyVaeAttn *at;
    LilyTNorm gn;
    LilyTConv1x1 q, k, v, out;
    LilyTAttention a;
    LilyTensor x;
} LilyVAttnTape;

typedef struct LilyVaeEncoderTape LilyVaeEncoderTape;
typedef struct LilyVaeDecoderTape LilyVaeDecoderTape;

LilyStatus lily_vae_res_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyVaeResBlock *rb,
                                LilyVResTape *tp, const LilyTensor *x, LilyTensor *y);
LilyStatus lily_vae_res_backward(LilyContext *ctx, const LilyParamSet *ps, LilyVResTape *tp,
                                 const LilyTensor *dy, LilyTensor *dx);
LilyStatus lily_vae_attn_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyVaeAttn *at,
                                 LilyVAttnTape *tp, const LilyTensor *x, LilyTensor *y);
LilyStatus lily_vae_attn_backward(LilyContext *ctx, const LilyParamSet *ps, LilyVAttnTape *tp,
                                  const LilyTensor *dy, LilyTensor *dx);
/* Downsample (pad right/bottom by 1, conv 3x3 stride 2) and Upsample (nearest x2, conv 3x3). */
LilyStatus lily_vae_down_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyConv *c,
                                 LilyTConv *tp, const LilyTensor *x, LilyTensor *y);
LilyStatus lily_vae_up_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyConv *c,
                               LilyTConv *tp, const LilyTensor *x, LilyTensor *y);
LilyStatus lily_vae_up_backward(LilyContext *ctx, const LilyParamSet *ps, LilyTConv *tp,
                                const LilyTensor *dy, LilyTensor *dx);

/* mel [N, 1, H, W] -> mean, logvar [N, embed, H/8, W/8] (logvar clamped to [-30, 20]). */
LilyStatus lily_vae_encode_train(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps,
                                 const LilyVaeEncoder *enc, const LilyVaeConfig *cfg,
                                 const LilyTensor *mel, LilyVaeEncoderTape **tape,
                                 LilyTensor *mean, LilyTensor *logvar);
/* dmean, dlogvar -> parameter gradients (and dmel when not NULL). */
LilyStatus lily_vae_encode_backward(LilyContext *ctx, const LilyParamSet *ps,
                                    LilyVaeEncoderTape *tape, const LilyTensor *dmean,
                                    const LilyTensor *dlogvar, LilyTensor *dmel);
void lily_vae_encoder_tape_free(LilyVaeEncoderTape *tape);
/* z [N, embed, h, w] (not divided by scale_factor) -> mel [N, 1, 8h, 8w]. */
LilyStatus lily_vae_decode_train(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps,
                                 const LilyTensor *z, LilyVaeDecoderTape **tape, LilyTensor *mel);
LilyStatus lily_vae_decode_backward(LilyContext *ctx, const LilyParamSet *ps,
                                    LilyVaeDecoderTape *tape, const LilyTensor *dmel,
                                    LilyTensor *dz);
void lily_vae_decoder_tape_free(LilyVaeDecoderTape *tape);

#endif /* LILY_MODELS_VAE_TRAIN_H */
