/* models/vae-train.c - AudioSR's KL-VAE, forward with saved activations and backward
 * (see vae-train.h). Forward arithmetic is vae.c's op for op; each backward walks its forward
 * in reverse, and a block's backward keeps only the input gradient it returns. */
#include <math.h>
#include <stdlib.h>

#include "models/vae-train.h"

#define VAE_GROUPS 32
#define VAE_EPS 1e-6f

static const LilyConvParams SAME = {{1, 1}, {1, 1}, {1, 1}, {1, 1}};
static const LilyConvParams ONE = {{1, 1}, {0, 0}, {0, 0}, {1, 1}};
/* Downsample(with_conv): F.pad(x, (0, 1, 0, 1)) then conv 3x3 stride 2 */
static const LilyConvParams DOWN = {{2, 2}, {0, 0}, {1, 1}, {1, 1}};

/* ---------------------------------------------------------------------------------------- */
/* Blocks                                                                                    */
/* ---------------------------------------------------------------------------------------- */
LilyStatus lily_vae_res_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyVaeResBlock *rb,
                                LilyVResTape *tp, const LilyTensor *x, LilyTensor *y)
{
    LilyTensor a1, h, a2, s;
    tp->rb = rb;
    LILY_TRY(lily_t_group_norm(ctx, &tp->n1, &rb->norm1, x, VAE_GROUPS, VAE_EPS, 1, &a1));
    LILY_TRY(lily_t_conv2d(ctx, ps, &tp->c1, &rb->conv1, &a1, &SAME, &h));
    LILY_TRY(lily_t_group_norm(ctx, &tp->n2, &rb->norm2, &h, VAE_GROUPS, VAE_EPS, 1, &a2));
    LILY_TRY(lily_t_conv2d(ctx, ps, &tp->c2, &rb->conv2, &a2, &SAME, y));
    if (rb->nin_shortcut.w) {
        LILY_TRY(lily_t_conv2d(ctx, ps, &tp->skip, &rb->nin_shortcut, x, &ONE, &s));
        return lily_nn_add(ctx, y, &s, y);
    }
    return lily_nn_add(ctx, y, x, y);
}

LilyStatus lily_vae_res_backward(LilyContext *ctx, const LilyParamSet *ps, LilyVResTape *tp,
                                 const LilyTensor *dy, LilyTensor *dx)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor dskip, da2, dh, da1, dx1;
    const LilyTensor *ds = dy;
    if (tp->rb->nin_shortcut.w) {
        LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->skip, dy, &dskip));
        ds = &dskip;
    }
    LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->c2, dy, &da2));
    LILY_TRY(lily_t_norm_backward(ctx, ps, &tp->n2, &da2, &dh));
    LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->c1, &dh, &da1));
    LILY_TRY(lily_t_norm_backward(ctx, ps, &tp->n1, &da1, &dx1));
    LILY_TRY(lily_t_add(ctx, &dx1, ds, dx));
    lily_nn_keep(ctx, m, dx);
    return LILY_OK;
}

LilyStatus lily_vae_attn_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyVaeAttn *at,
                                 LilyVAttnTape *tp, const LilyTensor *x, LilyTensor *y)
{
    LilyTensor h, tok, q, k, v, o, p;
    tp->at = at;
    tp->x = *x;
    LILY_TRY(lily_t_group_norm(ctx, &tp->gn, &at->norm, x, VAE_GROUPS, VAE_EPS, 0, &h));
    LILY_TRY(lily_t_to_tokens(ctx, &h, &tok));
    LILY_TRY(lily_t_conv1x1_tokens(ctx, ps, &tp->q, &at->q, &tok, &q));
    LILY_TRY(lily_t_conv1x1_tokens(ctx, ps, &tp->k, &at->k, &tok, &k));
    LILY_TRY(lily_t_conv1x1_tokens(ctx, ps, &tp->v, &at->v, &tok, &v));
    LILY_TRY(lily_t_attention(ctx, &tp->a, &q, &k, &v, 1.0f / sqrtf((float)at->c), &o));
    LILY_TRY(lily_t_conv1x1_tokens(ctx, ps, &tp->out, &at->proj_out, &o, &p));
    LILY_TRY(lily_t_from_tokens(ctx, &p, x, y));
    return lily_nn_add(ctx, y, x, y);
}

LilyStatus lily_vae_attn_backward(LilyContext *ctx, const LilyParamSet *ps, LilyVAttnTape *tp,
                                  const LilyTensor *dy, LilyTensor *dx)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor dp, dob, dq, dk, dv, dtq, dtk, dtv, dh, dxn;
    LILY_TRY(lily_t_to_tokens(ctx, dy, &dp));
    LILY_TRY(lily_t_conv1x1_tokens_backward(ctx, ps, &tp->out, &dp, &dob));
    LILY_TRY(lily_t_attention_backward(ctx, &tp->a, &dob, &dq, &dk, &dv));
    LILY_TRY(lily_t_conv1x1_tokens_backward(ctx, ps, &tp->q, &dq, &dtq));
    LILY_TRY(lily_t_conv1x1_tokens_backward(ctx, ps, &tp->k, &dk, &dtk));
    LILY_TRY(lily_t_conv1x1_tokens_backward(ctx, ps, &tp->v, &dv, &dtv));
    LILY_TRY(lily_t_accumulate(ctx, &dtq, &dtk));
    LILY_TRY(lily_t_accumulate(ctx, &dtq, &dtv));
    LILY_TRY(lily_t_from_tokens(ctx, &dtq, &tp->x, &dh));
    LILY_TRY(lily_t_norm_backward(ctx, ps, &tp->gn, &dh, &dxn));
    LILY_TRY(lily_t_add(ctx, &dxn, dy, dx));
    lily_nn_keep(ctx, m, dx);
    return LILY_OK;
}

LilyStatus lily_vae_down_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyConv *c,
                                 LilyTConv *tp, const LilyTensor *x, LilyTensor *y)
{
    return lily_t_conv2d(ctx, ps, tp, c, x, &DOWN, y);
}

LilyStatus lily_vae_up_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyConv *c,
                               LilyTConv *tp, const LilyTensor *x, LilyTensor *y)
{
    LilyTensor u;
    LILY_TRY(lily_tensor_alloc(ctx, &u, LILY_DTYPE_F32,
                               LILY_SHAPE(x->shape[0], x->shape[1], 2 * x->shape[2], 2 * x->shape[3])));
    LILY_TRY(lily_op_upsample2x(ctx, x, &u));
    return lily_t_conv2d(ctx, ps, tp, c, &u, &SAME, y);
}

LilyStatus lily_vae_up_backward(LilyContext *ctx, const LilyParamSet *ps, LilyTConv *tp,
                                const LilyTensor *dy, LilyTensor *dx)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor du;
    LILY_TRY(lily_t_conv_backward(ctx, ps, tp, dy, &du));
    LILY_TRY(lily_tensor_alloc(ctx, dx, LILY_DTYPE_F32,
                               LILY_SHAPE(du.shape[0], du.shape[1], du.shape[2] / 2, du.shape[3] / 2)));
    LILY_TRY(lily_op_upsample2x_backward(ctx, &du, dx));
    lily_nn_keep(ctx, m, dx);
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Levels: n ResnetBlocks then an optional resample                                          */
/* ---------------------------------------------------------------------------------------- */
typedef struct LevelTape {
    LilyVResTape res[LILY_VAE_MAX_RES];
    LilyTConv resample;
    int n;
    bool has_resample;
} LevelTape;

typedef struct MidTape {
    LilyVResTape r1, r2;
    LilyVAttnTape at;
} MidTape;

static LilyStatus mid_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyVaeResBlock *r1,
                              const LilyVaeAttn *at, const LilyVaeResBlock *r2, MidTape *tp,
                              LilyTensor *h)
{
    LilyTensor a, b;
    LILY_TRY(lily_vae_res_forward(ctx, ps, r1, &tp->r1, h, &a));
    LILY_TRY(lily_vae_attn_forward(ctx, ps, at, &tp->at, &a, &b));
    return lily_vae_res_forward(ctx, ps, r2, &tp->r2, &b, h);
}

static LilyStatus mid_backward(LilyContext *ctx, const LilyParamSet *ps, MidTape *tp, LilyTensor *g)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor a, b, c;
    LILY_TRY(lily_vae_res_backward(ctx, ps, &tp->r2, g, &a));
    LILY_TRY(lily_vae_attn_backward(ctx, ps, &tp->at, &a, &b));
    LILY_TRY(lily_vae_res_backward(ctx, ps, &tp->r1, &b, &c));
    lily_nn_keep(ctx, m, &c);
    *g = c;
    return LILY_OK;
}

static LilyStatus level_backward(LilyContext *ctx, const LilyParamSet *ps, LevelTape *lt, bool up,
                                 LilyTensor *g)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor cur = *g;
    if (lt->has_resample) {
        LilyTensor d;
        if (up) LILY_TRY(lily_vae_up_backward(ctx, ps, &lt->resample, &cur, &d));
        else LILY_TRY(lily_t_conv_backward(ctx, ps, &lt->resample, &cur, &d));
        cur = d;
    }
    for (int j = lt->n - 1; j >= 0; j--) {
        LilyTensor d;
        LILY_TRY(lily_vae_res_backward(ctx, ps, &lt->res[j], &cur, &d));
        cur = d;
    }
    LILY_TRY(lily_t_clone(ctx, &cur, g));
    lily_nn_keep(ctx, m, g);
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Encoder                                                                                   */
/* ---------------------------------------------------------------------------------------- */
struct LilyVaeEncoderTape {
    const LilyVaeEncoder *enc;
    int n_levels;
    LilyTConv conv_in;
    LevelTape lv[LILY_CFG_MAX_LEVELS];
    MidTape mid;
    LilyTNorm norm_out;
    LilyTConv conv_out, quant;
    LilyTensor moments; /* before the split */
    LilyTensor lv_raw, lv_max; /* logvar before clamping, after max(-30) */
    bool want_dmel;
};

void lily_vae_encoder_tape_free(LilyVaeEncoderTape *tape) { free(tape); }

LilyStatus lily_vae_encode_train(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps,
                                 const LilyVaeEncoder *enc, const LilyVaeConfig *cfg,
                                 const LilyTensor *mel, LilyVaeEncoderTape **tape,
                                 LilyTensor *mean, LilyTensor *logvar)
{
    (void)m;
    *tape = NULL;
    if (!enc->present) return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "this model file has no VAE encoder");
    if (mel->ndim != 4 || mel->shape[1] != cfg->in_channels)
        return lily_error(ctx, LILY_ERR_SHAPE, "vae encode: expects mel [N, %d, frames, bins]", cfg->in_channels);
    LilyVaeEncoderTape *tp = calloc(1, sizeof *tp);
    if (!tp) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory for the VAE tape");
    *tape = tp;
    tp->enc = enc;
    tp->n_levels = cfg->n_levels;
    LilyTensor h;
    LILY_TRY(lily_t_conv2d(ctx, ps, &tp->conv_in, &enc->conv_in, mel, &SAME, &h));
    for (int i = 0; i < cfg->n_levels; i++) {
        const LilyVaeLevel *lv = &enc->down[i];
        LevelTape *lt = &tp->lv[i];
        lt->n = lv->n_blocks;
        for (int j = 0; j < lv->n_blocks; j++) {
            LilyTensor o;
            LILY_TRY(lily_vae_res_forward(ctx, ps, &lv->block[j], &lt->res[j], &h, &o));
            h = o;
        }
        if (lv->resample.w) {
            LilyTensor o;
            lt->has_resample = true;
            LILY_TRY(lily_vae_down_forward(ctx, ps, &lv->resample, &lt->resample, &h, &o));
            h = o;
        }
    }
    LILY_TRY(mid_forward(ctx, ps, &enc->mid_block_1, &enc->mid_attn_1, &enc->mid_block_2, &tp->mid, &h));
    LilyTensor a, c;
    LILY_TRY(lily_t_group_norm(ctx, &tp->norm_out, &enc->norm_out, &h, VAE_GROUPS, VAE_EPS, 1, &a));
    LILY_TRY(lily_t_conv2d(ctx, ps, &tp->conv_out, &enc->conv_out, &a, &SAME, &c));
    LILY_TRY(lily_t_conv2d(ctx, ps, &tp->quant, &enc->quant_conv, &c, &ONE, &tp->moments));
    int64_t e = tp->moments.shape[1] / 2;
    LilyTensor raw;
    LILY_TRY(lily_tensor_alloc(ctx, mean, LILY_DTYPE_F32, LILY_SHAPE(mel->shape[0], e, c.shape[2], c.shape[3])));
    LILY_TRY(lily_nn_like(ctx, mean, &raw));
    LILY_TRY(lily_op_split(ctx, &tp->moments, mean, &raw));
    /* logvar.clamp(-30, 20) */
    tp->lv_raw = raw;
    LILY_TRY(lily_nn_like(ctx, mean, &tp->lv_max));
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_MAX, -30.0f, &raw, &tp->lv_max));
    LILY_TRY(lily_nn_like(ctx, mean, logvar));
    return lily_op_unary(ctx, LILY_UNARY_MIN, 20.0f, &tp->lv_max, logvar);
}

LilyStatus lily_vae_encode_backward(LilyContext *ctx, const LilyParamSet *ps,
                                    LilyVaeEncoderTape *tp, const LilyTensor *dmean,
                                    const LilyTensor *dlogvar, LilyTensor *dmel)
{
    if (dmel) LILY_TRY(lily_nn_like(ctx, &tp->conv_in.x, dmel));
    LilyArenaMark m0 = lily_arena_mark(&ctx->arena);
    LilyTensor d1, d2, dmom, dc, da, g;
    LILY_TRY(lily_nn_like(ctx, dlogvar, &d1));
    LILY_TRY(lily_op_unary_backward(ctx, LILY_UNARY_MIN, 20.0f, &tp->lv_max, dlogvar, &d1));
    LILY_TRY(lily_nn_like(ctx, dlogvar, &d2));
    LILY_TRY(lily_op_unary_backward(ctx, LILY_UNARY_MAX, -30.0f, &tp->lv_raw, &d1, &d2));
    LILY_TRY(lily_nn_like(ctx, &tp->moments, &dmom));
    LILY_TRY(lily_op_concat(ctx, dmean, &d2, &dmom));
    LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->quant, &dmom, &dc));
    LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->conv_out, &dc, &da));
    LILY_TRY(lily_t_norm_backward(ctx, ps, &tp->norm_out, &da, &g));
    lily_nn_keep(ctx, m0, &g);
    LILY_TRY(mid_backward(ctx, ps, &tp->mid, &g));
    lily_nn_keep(ctx, m0, &g);
    for (int i = tp->n_levels - 1; i >= 0; i--) {
        LILY_TRY(level_backward(ctx, ps, &tp->lv[i], false, &g));
        lily_nn_keep(ctx, m0, &g);
    }
    if (dmel) {
        LilyTensor d;
        LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->conv_in, &g, &d));
        LILY_TRY(lily_tensor_copy(ctx, &d, dmel));
    } else {
        LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->conv_in, &g, NULL));
    }
    lily_arena_reset(&ctx->arena, m0);
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Decoder                                                                                   */
/* ---------------------------------------------------------------------------------------- */
struct LilyVaeDecoderTape {
    int n_levels;
    LilyTConv post_quant, conv_in;
    MidTape mid;
    LevelTape lv[LILY_CFG_MAX_LEVELS];
    LilyTNorm norm_out;
    LilyTConv conv_out;
};

void lily_vae_decoder_tape_free(LilyVaeDecoderTape *tape) { free(tape); }

LilyStatus lily_vae_decode_train(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps,
                                 const LilyTensor *z, LilyVaeDecoderTape **tape, LilyTensor *mel)
{
    const LilyVaeDecoder *dec = &m->decoder;
    const LilyVaeConfig *cfg = &m->cfg.vae;
    *tape = NULL;
    if (!dec->present) return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "this model file has no VAE decoder");
    if (z->ndim != 4 || z->shape[1] != cfg->embed_dim)
        return lily_error(ctx, LILY_ERR_SHAPE, "vae decode: expects z [N, %d, h, w]", cfg->embed_dim);
    LilyVaeDecoderTape *tp = calloc(1, sizeof *tp);
    if (!tp) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory for the VAE tape");
    *tape = tp;
    tp->n_levels = cfg->n_levels;
    LilyTensor h0, h;
    LILY_TRY(lily_t_conv2d(ctx, ps, &tp->post_quant, &dec->post_quant_conv, z, &ONE, &h0));
    LILY_TRY(lily_t_conv2d(ctx, ps, &tp->conv_in, &dec->conv_in, &h0, &SAME, &h));
    LILY_TRY(mid_forward(ctx, ps, &dec->mid_block_1, &dec->mid_attn_1, &dec->mid_block_2, &tp->mid, &h));
    for (int i = cfg->n_levels - 1; i >= 0; i--) {
        const LilyVaeLevel *lv = &dec->up[i];
        LevelTape *lt = &tp->lv[i];
        lt->n = lv->n_blocks;
        for (int j = 0; j < lv->n_blocks; j++) {
            LilyTensor o;
            LILY_TRY(lily_vae_res_forward(ctx, ps, &lv->block[j], &lt->res[j], &h, &o));
            h = o;
        }
        if (lv->resample.w) {
            LilyTensor o;
            lt->has_resample = true;
            LILY_TRY(lily_vae_up_forward(ctx, ps, &lv->resample, &lt->resample, &h, &o));
            h = o;
        }
    }
    LilyTensor a;
    LILY_TRY(lily_t_group_norm(ctx, &tp->norm_out, &dec->norm_out, &h, VAE_GROUPS, VAE_EPS, 1, &a));
    return lily_t_conv2d(ctx, ps, &tp->conv_out, &dec->conv_out, &a, &SAME, mel);
}

LilyStatus lily_vae_decode_backward(LilyContext *ctx, const LilyParamSet *ps,
                                    LilyVaeDecoderTape *tp, const LilyTensor *dmel,
                                    LilyTensor *dz)
{
    if (dz) LILY_TRY(lily_nn_like(ctx, &tp->post_quant.x, dz));
    LilyArenaMark m0 = lily_arena_mark(&ctx->arena);
    LilyTensor da, g;
    LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->conv_out, dmel, &da));
    LILY_TRY(lily_t_norm_backward(ctx, ps, &tp->norm_out, &da, &g));
    lily_nn_keep(ctx, m0, &g);
    for (int i = 0; i < tp->n_levels; i++) {
        LILY_TRY(level_backward(ctx, ps, &tp->lv[i], true, &g));
        lily_nn_keep(ctx, m0, &g);
    }
    LILY_TRY(mid_backward(ctx, ps, &tp->mid, &g));
    lily_nn_keep(ctx, m0, &g);
    LilyTensor d0, d;
    LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->conv_in, &g, &d0));
    LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->post_quant, &d0, dz ? &d : NULL));
    if (dz) LILY_TRY(lily_tensor_copy(ctx, &d, dz));
    lily_arena_reset(&ctx->arena, m0);
    return LILY_OK;
}
