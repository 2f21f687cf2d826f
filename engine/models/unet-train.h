/* models/unet-train.h - the latent-diffusion UNet with its backward pass, for training.
 *
 * The same network as unet.c (AudioSR's openaimodel.UNetModel, spec.md 4.1), written as
 * explicit forward/backward pairs per block that keep their activations in the context's arena
 * (the caller takes an arena mark before the forward and resets it after the backward). The
 * block-level calls are public so tests/train checks each block against finite differences.
 * Tapes (what each block saved) are host structs; a whole-UNet tape is allocated by
 * lily_unet_train_forward and freed by lily_unet_tape_free. */
#ifndef LILY_MODELS_UNET_TRAIN_H
#define LILY_MODELS_UNET_TRAIN_H

#include "models/layers-train.h"

typedef struct LilyUResTape {
    const LilyUResBlock *rb;
    LilyTNorm n1, n2;
    LilyTConv c1, c2, skip;
    LilyTLinear emb;
    LilyTensor x;
} LilyUResTape;

/* Multi-head self-attention on tokens [N, T, D] (CrossAttention with no context). */
typedef struct LilyUAttnTape {
    LilyTLinear q, k, v, out;
    LilyTAttention a;
    int heads, dim_head;
    int64_t n, t;
} LilyUAttnTape;

typedef struct LilyUTBlockTape { /* BasicTransformerBlock */
    LilyTNorm ln1, ln2, ln3;
    LilyUAttnTape at1, at2;
    LilyTLinear ff_proj, ff_out;
    LilyTGeglu geglu;
} LilyUTBlockTape;

typedef struct LilyUSTTape { /* SpatialTransformer */
    const LilySpatialTransformer *st;
    LilyTNorm gn;
    LilyTConv1x1 pin, pout;
    LilyUTBlockTape blk[LILY_MAX_DEPTH];
    LilyTensor x;
} LilyUSTTape;

typedef struct LilyUBlockTape { /* one entry of input_blocks / middle_block / output_blocks */
    const LilyUBlock *b;
    LilyTConv conv;          /* conv_in or Downsample */
    LilyUResTape res, res2;
    LilyUSTTape st[LILY_MAX_ST];
    LilyTConv up_conv;       /* after nearest x2 */
    LilyTensor up_in;        /* shape before upsampling */
} LilyUBlockTape;

typedef struct LilyUNetTape LilyUNetTape;

/* ---- blocks (x is not modified; y is a new tensor) ---- */
LilyStatus lily_unet_res_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyUResBlock *rb,
                                 LilyUResTape *tp, const LilyTensor *x, const LilyTensor *emb_silu,
                                 LilyTensor *y);
/* dx allocated; d_emb (shaped like emb_silu) accumulates the gradient of emb_silu. */
LilyStatus lily_unet_res_backward(LilyContext *ctx, const LilyParamSet *ps, LilyUResTape *tp,
                                  const LilyTensor *dy, LilyTensor *d_emb, LilyTensor *dx);
LilyStatus lily_unet_attn_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyAttnWeights *w,
                                  int heads, int dim_head, LilyUAttnTape *tp, const LilyTensor *a,
                                  LilyTensor *out);
LilyStatus lily_unet_attn_backward(LilyContext *ctx, const LilyParamSet *ps, LilyUAttnTape *tp,
                                   const LilyTensor *dout, LilyTensor *da);
/* GEGLU feed-forward ff(ln3 h) alone: ff_out(geglu(ff_proj(a))). */
LilyStatus lily_unet_ff_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyTransformerBlock *tb,
                                LilyUTBlockTape *tp, const LilyTensor *a, LilyTensor *out);
LilyStatus lily_unet_ff_backward(LilyContext *ctx, const LilyParamSet *ps, LilyUTBlockTape *tp,
                                 const LilyTensor *dout, LilyTensor *da);
LilyStatus lily_unet_st_forward(LilyContext *ctx, const LilyParamSet *ps,
                                const LilySpatialTransformer *st, LilyUSTTape *tp,
                                const LilyTensor *x, LilyTensor *y);
LilyStatus lily_unet_st_backward(LilyContext *ctx, const LilyParamSet *ps, LilyUSTTape *tp,
                                 const LilyTensor *dy, LilyTensor *dx);
/* One UNet block (Downsample, Res+ST..+Res2, Upsample) as the UNet runs it. */
LilyStatus lily_unet_block_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyUBlock *b,
                                   LilyUBlockTape *tp, const LilyTensor *x,
                                   const LilyTensor *emb_silu, LilyTensor *y);
LilyStatus lily_unet_block_backward(LilyContext *ctx, const LilyParamSet *ps, LilyUBlockTape *tp,
                                    const LilyTensor *dy, LilyTensor *d_emb, LilyTensor *dx);
/* Time embedding: SiLU(time_embed_2(SiLU(time_embed_0(temb)))) of integer timesteps, where
 * temb is timestep_embedding(t) (no gradient reaches t). */
typedef struct LilyUTimeTape {
    LilyTLinear l0, l2;
    LilyTUnary s0, s2;
} LilyUTimeTape;
LilyStatus lily_unet_time_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyUNet *u,
                                  int model_channels, const int *t, int n, LilyUTimeTape *tp,
                                  LilyTensor *emb_silu);
LilyStatus lily_unet_time_backward(LilyContext *ctx, const LilyParamSet *ps, LilyUTimeTape *tp,
                                   const LilyTensor *d_emb);

/* ---- whole UNet ---- */
/* x [N, in, h, w], integer t per item -> out [N, out, h, w] (allocated in the arena), keeping
 * the activations in *tape. */
LilyStatus lily_unet_train_forward(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps,
                                   const LilyTensor *x, const int *t, LilyUNetTape **tape,
                                   LilyTensor *out);
/* Accumulates the parameter gradients of dL/dout; dx (may be NULL) receives dL/dx. */
LilyStatus lily_unet_train_backward(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps,
                                    LilyUNetTape *tape, const LilyTensor *dout, LilyTensor *dx);
void lily_unet_tape_free(LilyUNetTape *tape);

#endif /* LILY_MODELS_UNET_TRAIN_H */
