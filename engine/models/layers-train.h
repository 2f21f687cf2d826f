/* models/layers-train.h - layer calls for training: each forward keeps what its backward needs.
 *
 * llm.c's pattern at layer granularity: a forward call allocates its output in the context's
 * arena and records its input (a tensor header; the data stays in the arena until the step
 * resets it) in a small struct; the matching backward reads that struct. Model files
 * (unet-train.c, vae-train.c, vocoder-train.c, discriminators.c) compose these calls into
 * explicit per-block forward and backward functions, so every backward is written out beside
 * its forward, in reverse order, as in PyTorch autograd's textbook derivation.
 *
 * Weights are reached through a LilyParamSet: the forward uses each parameter's compute copy
 * (the f32 master itself, or a bf16 shadow for mixed precision), the backward the f32 master
 * (the backward ops take f32 weights) and writes into the parameter's gradient, which the ops
 * ACCUMULATE. A parameter with no gradient buffer (a frozen one) gets NULL, so its gradient
 * is never computed. Backward calls allocate the input gradient they return (dx) in the
 * arena; pass NULL when it is not wanted. */
#ifndef LILY_MODELS_LAYERS_TRAIN_H
#define LILY_MODELS_LAYERS_TRAIN_H

#include "models/blocks.h"

/* Parameters under training: for params[i], compute[i] is what forward passes read and
 * grad[i] its gradient (.data NULL when params[i] is frozen). */
typedef struct LilyParamSet {
    LilyParam *params;
    int n;
    LilyTensor *compute;
    LilyTensor *grad;
} LilyParamSet;

/* The tensor a forward pass should read for weight t (t itself when t is not in the set). */
const LilyTensor *lily_ps_w(const LilyParamSet *ps, const LilyTensor *t);
/* The gradient buffer of t, or NULL (not in the set, frozen, or t NULL). */
LilyTensor *lily_ps_g(const LilyParamSet *ps, const LilyTensor *t);

typedef enum LilyTConvKind { LILY_TCONV_2D = 0, LILY_TCONV_1D, LILY_TCONV_T1D } LilyTConvKind;

typedef struct LilyTConv {
    const LilyConv *c;
    LilyTConvKind kind;
    LilyConvParams p; /* 2-D and 1-D */
    int stride, pad;  /* transposed 1-D */
    LilyTensor x;
} LilyTConv;

/* A 1x1 convolution applied to tokens [N, T, C] as the linear layer it is (the token layout
 * avoids two transposes; AudioSR's proj_in/proj_out and the VAE's q/k/v/proj_out). */
typedef struct LilyTConv1x1 {
    const LilyConv *c;
    LilyTensor x;
} LilyTConv1x1;

typedef struct LilyTLinear {
    const LilyLinear *l;
    LilyTensor x;
} LilyTLinear;

/* GroupNorm (groups > 0, optionally fused SiLU) or LayerNorm (groups == 0). */
typedef struct LilyTNorm {
    const LilyNorm *n;
    int groups;
    float eps;
    int silu;
    LilyTensor x;
} LilyTNorm;

typedef struct LilyTUnary {
    LilyUnaryOp op;
    float alpha;
    LilyTensor x;
} LilyTUnary;

typedef struct LilyTAttention {
    LilyTensor q, k, v;
    float scale;
} LilyTAttention;

typedef struct LilyTGeglu {
    LilyTensor x;
} LilyTGeglu;

/* ---- forward (y allocated here; never in place, so saved inputs stay intact) ---- */
LilyStatus lily_t_conv2d(LilyContext *ctx, const LilyParamSet *ps, LilyTConv *s, const LilyConv *c,
                         const LilyTensor *x, const LilyConvParams *p, LilyTensor *y);
LilyStatus lily_t_conv1d(LilyContext *ctx, const LilyParamSet *ps, LilyTConv *s, const LilyConv *c,
                         const LilyTensor *x, int stride, int pad, int dilation, LilyTensor *y);
LilyStatus lily_t_conv_t1d(LilyContext *ctx, const LilyParamSet *ps, LilyTConv *s,
                           const LilyConv *c, const LilyTensor *x, int stride, int pad,
                           LilyTensor *y);
LilyStatus lily_t_linear(LilyContext *ctx, const LilyParamSet *ps, LilyTLinear *s,
                         const LilyLinear *l, const LilyTensor *x, LilyTensor *y);
LilyStatus lily_t_conv1x1_tokens(LilyContext *ctx, const LilyParamSet *ps, LilyTConv1x1 *s,
                                 const LilyConv *c, const LilyTensor *x, LilyTensor *y);
LilyStatus lily_t_group_norm(LilyContext *ctx, LilyTNorm *s, const LilyNorm *n, const LilyTensor *x,
                             int groups, float eps, int silu, LilyTensor *y);
LilyStatus lily_t_layer_norm(LilyContext *ctx, LilyTNorm *s, const LilyNorm *n, const LilyTensor *x,
                             float eps, LilyTensor *y);
LilyStatus lily_t_unary(LilyContext *ctx, LilyTUnary *s, LilyUnaryOp op, float alpha,
                        const LilyTensor *x, LilyTensor *y);
LilyStatus lily_t_attention(LilyContext *ctx, LilyTAttention *s, const LilyTensor *q,
                            const LilyTensor *k, const LilyTensor *v, float scale, LilyTensor *y);
LilyStatus lily_t_geglu(LilyContext *ctx, LilyTGeglu *s, const LilyTensor *x, LilyTensor *y);

/* ---- backward (dx allocated here when dx != NULL; parameter gradients accumulated) ---- */
LilyStatus lily_t_conv_backward(LilyContext *ctx, const LilyParamSet *ps, const LilyTConv *s,
                                const LilyTensor *dy, LilyTensor *dx);
LilyStatus lily_t_linear_backward(LilyContext *ctx, const LilyParamSet *ps, const LilyTLinear *s,
                                  const LilyTensor *dy, LilyTensor *dx);
LilyStatus lily_t_conv1x1_tokens_backward(LilyContext *ctx, const LilyParamSet *ps,
                                          const LilyTConv1x1 *s, const LilyTensor *dy,
                                          LilyTensor *dx);
LilyStatus lily_t_norm_backward(LilyContext *ctx, const LilyParamSet *ps, const LilyTNorm *s,
                                const LilyTensor *dy, LilyTensor *dx);
LilyStatus lily_t_unary_backward(LilyContext *ctx, const LilyTUnary *s, const LilyTensor *dy,
                                 LilyTensor *dx);
LilyStatus lily_t_attention_backward(LilyContext *ctx, const LilyTAttention *s,
                                     const LilyTensor *dy, LilyTensor *dq, LilyTensor *dk,
                                     LilyTensor *dv);
LilyStatus lily_t_geglu_backward(LilyContext *ctx, const LilyTGeglu *s, const LilyTensor *dy,
                                 LilyTensor *dx);

/* ---- helpers ---- */
/* out[N, C] = sum over the trailing dimensions of x[N, C, ...] (allocated here): the gradient
 * of a per-channel value broadcast over H, W (the UNet's timestep embedding add). */
LilyStatus lily_t_sum_trailing(LilyContext *ctx, const LilyTensor *x, LilyTensor *out);
/* y = a + b into a new tensor. */
LilyStatus lily_t_add(LilyContext *ctx, const LilyTensor *a, const LilyTensor *b, LilyTensor *y);
/* acc += x. */
LilyStatus lily_t_accumulate(LilyContext *ctx, LilyTensor *acc, const LilyTensor *x);
/* A zero-filled tensor shaped like x. */
LilyStatus lily_t_zeros_like(LilyContext *ctx, const LilyTensor *x, LilyTensor *y);
/* A copy of x (new tensor). */
LilyStatus lily_t_clone(LilyContext *ctx, const LilyTensor *x, LilyTensor *y);
/* NCHW [N, C, S] <-> tokens [N, S, C] (new tensors), for gradients as for activations. */
LilyStatus lily_t_to_tokens(LilyContext *ctx, const LilyTensor *x, LilyTensor *y);
LilyStatus lily_t_from_tokens(LilyContext *ctx, const LilyTensor *tok, const LilyTensor *like,
                              LilyTensor *y);

#endif /* LILY_MODELS_LAYERS_TRAIN_H */
