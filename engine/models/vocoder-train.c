/* models/vocoder-train.c - AudioSR's HiFi-GAN generator, forward with saved activations and
 * backward (see vocoder-train.h). Forward arithmetic is vocoder.c's op for op. */
#include <stdlib.h>

#include "models/vocoder-train.h"

#define LRELU_SLOPE 0.1f

static int get_padding(int k, int d) { return (k * d - d) / 2; }

LilyStatus lily_voc_res_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyVocResBlock *rb,
                                LilyVocResTape *tp, const LilyTensor *x, LilyTensor *y)
{
    tp->rb = rb;
    LilyTensor cur = *x;
    for (int j = 0; j < rb->n_convs; j++) {
        LilyTensor t1, h1, t2, h2, nxt;
        LILY_TRY(lily_t_unary(ctx, &tp->a1[j], LILY_UNARY_LEAKY_RELU, LRELU_SLOPE, &cur, &t1));
        LILY_TRY(lily_t_conv1d(ctx, ps, &tp->c1[j], &rb->convs1[j], &t1, 1,
                               get_padding(rb->kernel, rb->dilation[j]), rb->dilation[j], &h1));
        LILY_TRY(lily_t_unary(ctx, &tp->a2[j], LILY_UNARY_LEAKY_RELU, LRELU_SLOPE, &h1, &t2));
        LILY_TRY(lily_t_conv1d(ctx, ps, &tp->c2[j], &rb->convs2[j], &t2, 1, get_padding(rb->kernel, 1), 1, &h2));
        LILY_TRY(lily_t_add(ctx, &h2, &cur, &nxt));
        cur = nxt;
    }
    *y = cur;
    return LILY_OK;
}

LilyStatus lily_voc_res_backward(LilyContext *ctx, const LilyParamSet *ps, LilyVocResTape *tp,
                                 const LilyTensor *dy, LilyTensor *dx)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor g = *dy;
    for (int j = tp->rb->n_convs - 1; j >= 0; j--) {
        LilyTensor d2, d2a, d1, d1a, ng;
        LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->c2[j], &g, &d2));
        LILY_TRY(lily_t_unary_backward(ctx, &tp->a2[j], &d2, &d2a));
        LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->c1[j], &d2a, &d1));
        LILY_TRY(lily_t_unary_backward(ctx, &tp->a1[j], &d1, &d1a));
        LILY_TRY(lily_t_add(ctx, &d1a, &g, &ng)); /* the residual */
        g = ng;
    }
    LILY_TRY(lily_t_clone(ctx, &g, dx));
    lily_nn_keep(ctx, m, dx);
    return LILY_OK;
}

LilyStatus lily_voc_stage_forward(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps, int i,
                                  LilyVocStageTape *tp, const LilyTensor *x, LilyTensor *y)
{
    const LilyVocoder *v = &m->vocoder;
    int u = m->cfg.vocoder.upsample_rates[i], k = m->cfg.vocoder.upsample_kernel_sizes[i];
    LilyTensor a, up;
    tp->n_kernels = v->n_kernels;
    LILY_TRY(lily_t_unary(ctx, &tp->act, LILY_UNARY_LEAKY_RELU, LRELU_SLOPE, x, &a));
    LILY_TRY(lily_t_conv_t1d(ctx, ps, &tp->up, &v->ups[i], &a, u, (k - u) / 2, &up));
    LILY_TRY(lily_t_zeros_like(ctx, &up, y));
    for (int j = 0; j < v->n_kernels; j++) {
        LilyTensor o;
        LILY_TRY(lily_voc_res_forward(ctx, ps, &v->resblocks[i * v->n_kernels + j], &tp->rb[j], &up, &o));
        LILY_TRY(lily_t_accumulate(ctx, y, &o));
    }
    return lily_op_unary(ctx, LILY_UNARY_SCALE, 1.0f / (float)v->n_kernels, y, y);
}

LilyStatus lily_voc_stage_backward(LilyContext *ctx, const LilyParamSet *ps, LilyVocStageTape *tp,
                                   const LilyTensor *dy, LilyTensor *dx)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor g, du, da;
    LILY_TRY(lily_t_clone(ctx, dy, &g));
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_SCALE, 1.0f / (float)tp->n_kernels, &g, &g));
    LILY_TRY(lily_t_zeros_like(ctx, &tp->rb[0].a1[0].x, &du)); /* the ConvTranspose output */
    for (int j = 0; j < tp->n_kernels; j++) {
        LilyArenaMark mj = lily_arena_mark(&ctx->arena);
        LilyTensor d;
        LILY_TRY(lily_voc_res_backward(ctx, ps, &tp->rb[j], &g, &d));
        LILY_TRY(lily_t_accumulate(ctx, &du, &d));
        lily_arena_reset(&ctx->arena, mj);
    }
    LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->up, &du, &da));
    LILY_TRY(lily_t_unary_backward(ctx, &tp->act, &da, dx));
    lily_nn_keep(ctx, m, dx);
    return LILY_OK;
}

struct LilyVocoderTape {
    int n_ups;
    LilyTConv conv_pre, conv_post;
    LilyVocStageTape st[LILY_VOC_MAX_UPS];
    LilyTUnary act_post, tanh;
};

void lily_vocoder_tape_free(LilyVocoderTape *tape) { free(tape); }

LilyStatus lily_vocoder_train_forward(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps,
                                      const LilyTensor *mel, LilyVocoderTape **tape, LilyTensor *wave)
{
    const LilyVocoder *v = &m->vocoder;
    *tape = NULL;
    if (!v->present) return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "this model file has no vocoder");
    if (mel->ndim != 3 || mel->shape[1] != m->cfg.vocoder.num_mels)
        return lily_error(ctx, LILY_ERR_SHAPE, "vocoder: expects mel [N, %d, frames]", m->cfg.vocoder.num_mels);
    LilyVocoderTape *tp = calloc(1, sizeof *tp);
    if (!tp) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory for the vocoder tape");
    *tape = tp;
    tp->n_ups = v->n_ups;
    LilyTensor x, a, c;
    LILY_TRY(lily_t_conv1d(ctx, ps, &tp->conv_pre, &v->conv_pre, mel, 1, 3, 1, &x));
    for (int i = 0; i < v->n_ups; i++) {
        LilyTensor y;
        LILY_TRY(lily_voc_stage_forward(ctx, m, ps, i, &tp->st[i], &x, &y));
        x = y;
    }
    /* F.leaky_relu with PyTorch's default slope 0.01 before conv_post */
    LILY_TRY(lily_t_unary(ctx, &tp->act_post, LILY_UNARY_LEAKY_RELU, 0.01f, &x, &a));
    LILY_TRY(lily_t_conv1d(ctx, ps, &tp->conv_post, &v->conv_post, &a, 1, 3, 1, &c));
    return lily_t_unary(ctx, &tp->tanh, LILY_UNARY_TANH, 0.0f, &c, wave);
}

LilyStatus lily_vocoder_train_backward(LilyContext *ctx, const LilyParamSet *ps, LilyVocoderTape *tp,
                                       const LilyTensor *dwave, LilyTensor *dmel)
{
    if (dmel) LILY_TRY(lily_nn_like(ctx, &tp->conv_pre.x, dmel));
    LilyArenaMark m0 = lily_arena_mark(&ctx->arena);
    LilyTensor dc, da, g;
    LILY_TRY(lily_t_unary_backward(ctx, &tp->tanh, dwave, &dc));
    LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->conv_post, &dc, &da));
    LILY_TRY(lily_t_unary_backward(ctx, &tp->act_post, &da, &g));
    lily_nn_keep(ctx, m0, &g);
    for (int i = tp->n_ups - 1; i >= 0; i--) {
        LilyTensor d;
        LILY_TRY(lily_voc_stage_backward(ctx, ps, &tp->st[i], &g, &d));
        lily_nn_keep(ctx, m0, &d);
        g = d;
    }
    if (dmel) {
        LilyTensor d;
        LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->conv_pre, &g, &d));
        LILY_TRY(lily_tensor_copy(ctx, &d, dmel));
    } else {
        LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->conv_pre, &g, NULL));
    }
    lily_arena_reset(&ctx->arena, m0);
    return LILY_OK;
}
