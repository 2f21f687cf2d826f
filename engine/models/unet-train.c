/* models/unet-train.c - AudioSR's latent-diffusion UNet, forward with saved activations and
 * backward (see unet-train.h).
 *
 * The forward arithmetic is unet.c's, op for op (openaimodel.py UNetModel/ResBlock/Downsample/
 * Upsample, attention.py SpatialTransformer/BasicTransformerBlock/CrossAttention/GEGLU; spec.md
 * 4.1), so a training forward equals the inference forward bit for bit on the same weights
 * (tests/train/test-unet-train.c checks it). Each backward walks its forward in reverse.
 * Residual sums are written to new tensors instead of in place so the inputs of LayerNorms
 * stay available to their backward; a block's backward frees its temporaries and keeps only
 * the input gradient it returns (arena collapse), so the backward pass needs little more than
 * the forward's activations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/unet-train.h"

#define UNET_GROUPS 32
#define RES_EPS 1e-5f
#define ST_EPS 1e-6f
#define LN_EPS 1e-5f

/* Keep dx (the last allocation) and free what the block's backward allocated since m. */
static void keep(LilyContext *ctx, LilyArenaMark m, LilyTensor *dx) { lily_nn_keep(ctx, m, dx); }

/* ---------------------------------------------------------------------------------------- */
/* ResBlock                                                                                  */
/* ---------------------------------------------------------------------------------------- */
LilyStatus lily_unet_res_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyUResBlock *rb,
                                 LilyUResTape *tp, const LilyTensor *x, const LilyTensor *emb_silu,
                                 LilyTensor *y)
{
    LilyTensor a1, h, e, a2, s;
    LilyConvParams p1 = lily_conv2d_params(1, 1);
    tp->rb = rb;
    tp->x = *x;
    LILY_TRY(lily_t_group_norm(ctx, &tp->n1, &rb->in_norm, x, UNET_GROUPS, RES_EPS, 1, &a1));
    LILY_TRY(lily_t_conv2d(ctx, ps, &tp->c1, &rb->in_conv, &a1, &p1, &h));
    LILY_TRY(lily_t_linear(ctx, ps, &tp->emb, &rb->emb, emb_silu, &e));
    LILY_TRY(lily_op_binary(ctx, LILY_BINARY_ADD, &h, &e, &h)); /* h feeds only n2 */
    LILY_TRY(lily_t_group_norm(ctx, &tp->n2, &rb->out_norm, &h, UNET_GROUPS, RES_EPS, 1, &a2));
    LILY_TRY(lily_t_conv2d(ctx, ps, &tp->c2, &rb->out_conv, &a2, &p1, y));
    if (rb->skip.w) {
        LilyConvParams p0 = lily_conv2d_params(1, 0);
        LILY_TRY(lily_t_conv2d(ctx, ps, &tp->skip, &rb->skip, x, &p0, &s));
        return lily_nn_add(ctx, y, &s, y);
    }
    return lily_nn_add(ctx, y, x, y);
}

LilyStatus lily_unet_res_backward(LilyContext *ctx, const LilyParamSet *ps, LilyUResTape *tp,
                                  const LilyTensor *dy, LilyTensor *d_emb, LilyTensor *dx)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor dskip, da2, dh, de, des, da1, dx1;
    const LilyTensor *ds = dy;
    if (tp->rb->skip.w) {
        LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->skip, dy, &dskip));
        ds = &dskip;
    }
    LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->c2, dy, &da2));
    LILY_TRY(lily_t_norm_backward(ctx, ps, &tp->n2, &da2, &dh));
    LILY_TRY(lily_t_sum_trailing(ctx, &dh, &de));
    LILY_TRY(lily_t_linear_backward(ctx, ps, &tp->emb, &de, d_emb ? &des : NULL));
    if (d_emb) LILY_TRY(lily_t_accumulate(ctx, d_emb, &des));
    LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->c1, &dh, &da1));
    LILY_TRY(lily_t_norm_backward(ctx, ps, &tp->n1, &da1, &dx1));
    LILY_TRY(lily_t_add(ctx, &dx1, ds, dx));
    keep(ctx, m, dx);
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Attention, feed-forward, transformer block, SpatialTransformer                           */
/* ---------------------------------------------------------------------------------------- */
LilyStatus lily_unet_attn_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyAttnWeights *w,
                                  int heads, int dim_head, LilyUAttnTape *tp, const LilyTensor *a,
                                  LilyTensor *out)
{
    int64_t n = a->shape[0], t = a->shape[1], inner = (int64_t)heads * dim_head;
    LilyTensor q, k, v, qh, kh, vh, oh, o;
    tp->heads = heads;
    tp->dim_head = dim_head;
    tp->n = n;
    tp->t = t;
    LILY_TRY(lily_t_linear(ctx, ps, &tp->q, &w->q, a, &q));
    LILY_TRY(lily_t_linear(ctx, ps, &tp->k, &w->k, a, &k));
    LILY_TRY(lily_t_linear(ctx, ps, &tp->v, &w->v, a, &v));
    if (q.shape[2] != inner)
        return lily_error(ctx, LILY_ERR_SHAPE, "attention: to_q gives %lld features, heads*dim_head is %lld",
                          (long long)q.shape[2], (long long)inner);
    /* 'b n (h d) -> (b h) n d' */
    LILY_TRY(lily_tensor_alloc(ctx, &qh, LILY_DTYPE_F32, LILY_SHAPE(n * heads, t, dim_head)));
    LILY_TRY(lily_tensor_alloc(ctx, &kh, LILY_DTYPE_F32, LILY_SHAPE(n * heads, t, dim_head)));
    LILY_TRY(lily_tensor_alloc(ctx, &vh, LILY_DTYPE_F32, LILY_SHAPE(n * heads, t, dim_head)));
    LILY_TRY(lily_op_transpose(ctx, &q, n, t, heads, dim_head, &qh));
    LILY_TRY(lily_op_transpose(ctx, &k, n, t, heads, dim_head, &kh));
    LILY_TRY(lily_op_transpose(ctx, &v, n, t, heads, dim_head, &vh));
    LILY_TRY(lily_t_attention(ctx, &tp->a, &qh, &kh, &vh, 1.0f / sqrtf((float)dim_head), &oh));
    /* '(b h) n d -> b n (h d)' */
    LILY_TRY(lily_tensor_alloc(ctx, &o, LILY_DTYPE_F32, LILY_SHAPE(n, t, inner)));
    LILY_TRY(lily_op_transpose(ctx, &oh, n, heads, t, dim_head, &o));
    return lily_t_linear(ctx, ps, &tp->out, &w->out, &o, out);
}

LilyStatus lily_unet_attn_backward(LilyContext *ctx, const LilyParamSet *ps, LilyUAttnTape *tp,
                                   const LilyTensor *dout, LilyTensor *da)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    int64_t n = tp->n, t = tp->t, heads = tp->heads, dh = tp->dim_head;
    LilyTensor dob, doh, dqh, dkh, dvh, dq, dk, dv, daq, dak, dav;
    LILY_TRY(lily_t_linear_backward(ctx, ps, &tp->out, dout, &dob));
    LILY_TRY(lily_tensor_alloc(ctx, &doh, LILY_DTYPE_F32, LILY_SHAPE(n * heads, t, dh)));
    LILY_TRY(lily_op_transpose(ctx, &dob, n, t, heads, dh, &doh));
    LILY_TRY(lily_t_attention_backward(ctx, &tp->a, &doh, &dqh, &dkh, &dvh));
    LILY_TRY(lily_nn_like(ctx, &dob, &dq));
    LILY_TRY(lily_nn_like(ctx, &dob, &dk));
    LILY_TRY(lily_nn_like(ctx, &dob, &dv));
    LILY_TRY(lily_op_transpose(ctx, &dqh, n, heads, t, dh, &dq));
    LILY_TRY(lily_op_transpose(ctx, &dkh, n, heads, t, dh, &dk));
    LILY_TRY(lily_op_transpose(ctx, &dvh, n, heads, t, dh, &dv));
    LILY_TRY(lily_t_linear_backward(ctx, ps, &tp->q, &dq, &daq));
    LILY_TRY(lily_t_linear_backward(ctx, ps, &tp->k, &dk, &dak));
    LILY_TRY(lily_t_linear_backward(ctx, ps, &tp->v, &dv, &dav));
    LILY_TRY(lily_t_accumulate(ctx, &daq, &dak));
    LILY_TRY(lily_t_add(ctx, &daq, &dav, da));
    keep(ctx, m, da);
    return LILY_OK;
}

LilyStatus lily_unet_ff_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyTransformerBlock *tb,
                                LilyUTBlockTape *tp, const LilyTensor *a, LilyTensor *out)
{
    LilyTensor p, g;
    LILY_TRY(lily_t_linear(ctx, ps, &tp->ff_proj, &tb->ff_proj, a, &p)); /* [N, T, 2 * 4D] */
    LILY_TRY(lily_t_geglu(ctx, &tp->geglu, &p, &g));
    return lily_t_linear(ctx, ps, &tp->ff_out, &tb->ff_out, &g, out);
}

LilyStatus lily_unet_ff_backward(LilyContext *ctx, const LilyParamSet *ps, LilyUTBlockTape *tp,
                                 const LilyTensor *dout, LilyTensor *da)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor dg, dp;
    LILY_TRY(lily_t_linear_backward(ctx, ps, &tp->ff_out, dout, &dg));
    LILY_TRY(lily_t_geglu_backward(ctx, &tp->geglu, &dg, &dp));
    LILY_TRY(lily_t_linear_backward(ctx, ps, &tp->ff_proj, &dp, da));
    keep(ctx, m, da);
    return LILY_OK;
}

/* h1 = h0 + attn1(ln1 h0); h2 = h1 + attn2(ln2 h1); h3 = h2 + ff(ln3 h2). */
static LilyStatus tblock_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyTransformerBlock *tb,
                                 int heads, int dim_head, LilyUTBlockTape *tp, const LilyTensor *h0,
                                 LilyTensor *h3)
{
    LilyTensor a, o, h1, h2;
    LILY_TRY(lily_t_layer_norm(ctx, &tp->ln1, &tb->norm1, h0, LN_EPS, &a));
    LILY_TRY(lily_unet_attn_forward(ctx, ps, &tb->attn1, heads, dim_head, &tp->at1, &a, &o));
    LILY_TRY(lily_t_add(ctx, h0, &o, &h1));
    LILY_TRY(lily_t_layer_norm(ctx, &tp->ln2, &tb->norm2, &h1, LN_EPS, &a));
    LILY_TRY(lily_unet_attn_forward(ctx, ps, &tb->attn2, heads, dim_head, &tp->at2, &a, &o));
    LILY_TRY(lily_t_add(ctx, &h1, &o, &h2));
    LILY_TRY(lily_t_layer_norm(ctx, &tp->ln3, &tb->norm3, &h2, LN_EPS, &a));
    LILY_TRY(lily_unet_ff_forward(ctx, ps, tb, tp, &a, &o));
    return lily_t_add(ctx, &h2, &o, h3);
}

static LilyStatus tblock_backward(LilyContext *ctx, const LilyParamSet *ps, LilyUTBlockTape *tp,
                                  const LilyTensor *dh3, LilyTensor *dh0)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor da, dn, dh2, dh1;
    LILY_TRY(lily_unet_ff_backward(ctx, ps, tp, dh3, &da));
    LILY_TRY(lily_t_norm_backward(ctx, ps, &tp->ln3, &da, &dn));
    LILY_TRY(lily_t_add(ctx, dh3, &dn, &dh2));
    LILY_TRY(lily_unet_attn_backward(ctx, ps, &tp->at2, &dh2, &da));
    LILY_TRY(lily_t_norm_backward(ctx, ps, &tp->ln2, &da, &dn));
    LILY_TRY(lily_t_add(ctx, &dh2, &dn, &dh1));
    LILY_TRY(lily_unet_attn_backward(ctx, ps, &tp->at1, &dh1, &da));
    LILY_TRY(lily_t_norm_backward(ctx, ps, &tp->ln1, &da, &dn));
    LILY_TRY(lily_t_add(ctx, &dh1, &dn, dh0));
    keep(ctx, m, dh0);
    return LILY_OK;
}

LilyStatus lily_unet_st_forward(LilyContext *ctx, const LilyParamSet *ps,
                                const LilySpatialTransformer *st, LilyUSTTape *tp,
                                const LilyTensor *x, LilyTensor *y)
{
    LilyTensor hn, tok, h, p;
    tp->st = st;
    tp->x = *x;
    LILY_TRY(lily_t_group_norm(ctx, &tp->gn, &st->norm, x, UNET_GROUPS, ST_EPS, 0, &hn));
    LILY_TRY(lily_t_to_tokens(ctx, &hn, &tok));
    LILY_TRY(lily_t_conv1x1_tokens(ctx, ps, &tp->pin, &st->proj_in, &tok, &h));
    for (int d = 0; d < st->depth; d++) {
        LilyTensor hn2;
        LILY_TRY(tblock_forward(ctx, ps, &st->blocks[d], st->heads, st->dim_head, &tp->blk[d], &h, &hn2));
        h = hn2;
    }
    LILY_TRY(lily_t_conv1x1_tokens(ctx, ps, &tp->pout, &st->proj_out, &h, &p));
    LILY_TRY(lily_t_from_tokens(ctx, &p, x, y));
    return lily_nn_add(ctx, y, x, y);
}

LilyStatus lily_unet_st_backward(LilyContext *ctx, const LilyParamSet *ps, LilyUSTTape *tp,
                                 const LilyTensor *dy, LilyTensor *dx)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor dp, dh, dtok, dhn, dxn;
    LILY_TRY(lily_t_to_tokens(ctx, dy, &dp));
    LILY_TRY(lily_t_conv1x1_tokens_backward(ctx, ps, &tp->pout, &dp, &dh));
    for (int d = tp->st->depth - 1; d >= 0; d--) {
        LilyTensor dprev;
        LILY_TRY(tblock_backward(ctx, ps, &tp->blk[d], &dh, &dprev));
        dh = dprev;
    }
    LILY_TRY(lily_t_conv1x1_tokens_backward(ctx, ps, &tp->pin, &dh, &dtok));
    LILY_TRY(lily_t_from_tokens(ctx, &dtok, &tp->x, &dhn));
    LILY_TRY(lily_t_norm_backward(ctx, ps, &tp->gn, &dhn, &dxn));
    LILY_TRY(lily_t_add(ctx, &dxn, dy, dx));
    keep(ctx, m, dx);
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Blocks                                                                                    */
/* ---------------------------------------------------------------------------------------- */
LilyStatus lily_unet_block_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyUBlock *b,
                                   LilyUBlockTape *tp, const LilyTensor *x,
                                   const LilyTensor *emb_silu, LilyTensor *y)
{
    tp->b = b;
    if (b->kind == 2) {
        LilyConvParams p = lily_conv2d_params(2, 1);
        return lily_t_conv2d(ctx, ps, &tp->conv, &b->conv, x, &p, y);
    }
    LilyTensor h = *x;
    if (b->has_res) {
        LilyTensor o;
        LILY_TRY(lily_unet_res_forward(ctx, ps, &b->res, &tp->res, &h, emb_silu, &o));
        h = o;
    }
    for (int i = 0; i < b->n_st; i++) {
        LilyTensor o;
        LILY_TRY(lily_unet_st_forward(ctx, ps, &b->st[i], &tp->st[i], &h, &o));
        h = o;
    }
    if (b->has_res2) {
        LilyTensor o;
        LILY_TRY(lily_unet_res_forward(ctx, ps, &b->res2, &tp->res2, &h, emb_silu, &o));
        h = o;
    }
    if (b->has_up) {
        LilyTensor u;
        tp->up_in = h;
        LILY_TRY(lily_tensor_alloc(ctx, &u, LILY_DTYPE_F32,
                                   LILY_SHAPE(h.shape[0], h.shape[1], 2 * h.shape[2], 2 * h.shape[3])));
        LILY_TRY(lily_op_upsample2x(ctx, &h, &u));
        LilyConvParams p = lily_conv2d_params(1, 1);
        return lily_t_conv2d(ctx, ps, &tp->up_conv, &b->up_conv, &u, &p, y);
    }
    if (h.data == x->data) return lily_t_clone(ctx, x, y); /* an empty block (not in AudioSR) */
    *y = h;
    return LILY_OK;
}

LilyStatus lily_unet_block_backward(LilyContext *ctx, const LilyParamSet *ps, LilyUBlockTape *tp,
                                    const LilyTensor *dy, LilyTensor *d_emb, LilyTensor *dx)
{
    const LilyUBlock *b = tp->b;
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    if (b->kind == 2) {
        LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->conv, dy, dx));
        keep(ctx, m, dx);
        return LILY_OK;
    }
    LilyTensor g = *dy;
    if (b->has_up) {
        LilyTensor du, dh;
        LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->up_conv, dy, &du));
        LILY_TRY(lily_nn_like(ctx, &tp->up_in, &dh));
        LILY_TRY(lily_op_upsample2x_backward(ctx, &du, &dh));
        g = dh;
    }
    if (b->has_res2) {
        LilyTensor d;
        LILY_TRY(lily_unet_res_backward(ctx, ps, &tp->res2, &g, d_emb, &d));
        g = d;
    }
    for (int i = b->n_st - 1; i >= 0; i--) {
        LilyTensor d;
        LILY_TRY(lily_unet_st_backward(ctx, ps, &tp->st[i], &g, &d));
        g = d;
    }
    if (b->has_res) {
        LilyTensor d;
        LILY_TRY(lily_unet_res_backward(ctx, ps, &tp->res, &g, d_emb, &d));
        g = d;
    }
    LILY_TRY(lily_t_clone(ctx, &g, dx));
    keep(ctx, m, dx);
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Time embedding                                                                            */
/* ---------------------------------------------------------------------------------------- */
LilyStatus lily_unet_time_forward(LilyContext *ctx, const LilyParamSet *ps, const LilyUNet *u,
                                  int model_channels, const int *t, int n, LilyUTimeTape *tp,
                                  LilyTensor *emb_silu)
{
    LilyTensor host, temb, e1, e1s, e2;
    LilyArenaMark hm = lily_arena_mark(&ctx->host_arena);
    LILY_TRY(lily_tensor_alloc_host(ctx, &host, LILY_DTYPE_F32, LILY_SHAPE(n, model_channels)));
    lily_timestep_embedding(t, n, model_channels, host.data);
    LilyStatus st = lily_tensor_alloc(ctx, &temb, LILY_DTYPE_F32, LILY_SHAPE(n, model_channels));
    if (st == LILY_OK) st = lily_tensor_upload(ctx, &temb, host.data);
    lily_arena_reset(&ctx->host_arena, hm);
    LILY_TRY(st);
    LILY_TRY(lily_t_linear(ctx, ps, &tp->l0, &u->time_embed_0, &temb, &e1));
    LILY_TRY(lily_t_unary(ctx, &tp->s0, LILY_UNARY_SILU, 0.0f, &e1, &e1s));
    LILY_TRY(lily_t_linear(ctx, ps, &tp->l2, &u->time_embed_2, &e1s, &e2));
    /* every ResBlock's emb_layers starts with SiLU: applied once here */
    return lily_t_unary(ctx, &tp->s2, LILY_UNARY_SILU, 0.0f, &e2, emb_silu);
}

LilyStatus lily_unet_time_backward(LilyContext *ctx, const LilyParamSet *ps, LilyUTimeTape *tp,
                                   const LilyTensor *d_emb)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor d2, d1s, d1;
    LILY_TRY(lily_t_unary_backward(ctx, &tp->s2, d_emb, &d2));
    LILY_TRY(lily_t_linear_backward(ctx, ps, &tp->l2, &d2, &d1s));
    LILY_TRY(lily_t_unary_backward(ctx, &tp->s0, &d1s, &d1));
    LILY_TRY(lily_t_linear_backward(ctx, ps, &tp->l0, &d1, NULL));
    lily_arena_reset(&ctx->arena, m);
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Whole UNet                                                                                */
/* ---------------------------------------------------------------------------------------- */
struct LilyUNetTape {
    int n_input, n_output;
    LilyUTimeTape time;
    LilyTensor emb_silu;
    LilyTConv conv_in;
    LilyUBlockTape in[LILY_UNET_MAX_BLOCKS];
    LilyTensor hs[LILY_UNET_MAX_BLOCKS]; /* input block outputs (the skips) */
    LilyUBlockTape mid;
    LilyUBlockTape out[LILY_UNET_MAX_BLOCKS];
    LilyTensor cat_h[LILY_UNET_MAX_BLOCKS]; /* the running tensor before each concatenation */
    LilyTNorm out_norm;
    LilyTConv out_conv;
};

void lily_unet_tape_free(LilyUNetTape *tape) { free(tape); }

LilyStatus lily_unet_train_forward(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps,
                                   const LilyTensor *x, const int *t, LilyUNetTape **tape,
                                   LilyTensor *out)
{
    const LilyUNet *u = &m->unet;
    const LilyUNetConfig *cfg = &m->cfg.unet;
    *tape = NULL;
    if (!u->present) return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "this model file has no UNet");
    if (x->ndim != 4 || x->shape[1] != cfg->in_channels)
        return lily_error(ctx, LILY_ERR_SHAPE, "unet: expects x [N, %d, h, w]", cfg->in_channels);
    int down = 1 << (cfg->n_levels - 1);
    if (x->shape[2] % down || x->shape[3] % down)
        return lily_error(ctx, LILY_ERR_SHAPE,
                          "unet: latent %lldx%lld is not a multiple of %d in both dimensions "
                          "(mel frames must be a multiple of %d)",
                          (long long)x->shape[2], (long long)x->shape[3], down, down * 8);
    LilyUNetTape *tp = calloc(1, sizeof *tp);
    if (!tp) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory for the UNet tape");
    *tape = tp;
    int n = (int)x->shape[0];
    tp->n_input = u->n_input;
    tp->n_output = u->n_output;
    LILY_TRY(lily_unet_time_forward(ctx, ps, u, cfg->model_channels, t, n, &tp->time, &tp->emb_silu));
    LilyConvParams p1 = lily_conv2d_params(1, 1);
    LILY_TRY(lily_t_conv2d(ctx, ps, &tp->conv_in, &u->input[0].conv, x, &p1, &tp->hs[0]));
    for (int i = 1; i < u->n_input; i++)
        LILY_TRY(lily_unet_block_forward(ctx, ps, &u->input[i], &tp->in[i], &tp->hs[i - 1],
                                         &tp->emb_silu, &tp->hs[i]));
    LilyTensor h;
    LILY_TRY(lily_unet_block_forward(ctx, ps, &u->middle, &tp->mid, &tp->hs[u->n_input - 1],
                                     &tp->emb_silu, &h));
    for (int i = 0; i < u->n_output; i++) {
        const LilyTensor *skip = &tp->hs[u->n_input - 1 - i];
        LilyTensor c, o;
        tp->cat_h[i] = h;
        LILY_TRY(lily_tensor_alloc(ctx, &c, LILY_DTYPE_F32,
                                   LILY_SHAPE(n, h.shape[1] + skip->shape[1], h.shape[2], h.shape[3])));
        LILY_TRY(lily_op_concat(ctx, &h, skip, &c));
        LILY_TRY(lily_unet_block_forward(ctx, ps, &u->output[i], &tp->out[i], &c, &tp->emb_silu, &o));
        h = o;
    }
    LilyTensor a;
    LILY_TRY(lily_t_group_norm(ctx, &tp->out_norm, &u->out_norm, &h, UNET_GROUPS, RES_EPS, 1, &a));
    return lily_t_conv2d(ctx, ps, &tp->out_conv, &u->out_conv, &a, &p1, out);
}

LilyStatus lily_unet_train_backward(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps,
                                    LilyUNetTape *tp, const LilyTensor *dout, LilyTensor *dx)
{
    const LilyUNet *u = &m->unet;
    if (u->n_output != u->n_input)
        return lily_error(ctx, LILY_ERR_INTERNAL, "unet backward: %d input blocks but %d output blocks",
                          u->n_input, u->n_output);
    /* Persistent for the whole pass: the input gradient (first, so it survives), the
     * embedding gradient and one gradient per skip. */
    if (dx) LILY_TRY(lily_nn_like(ctx, &tp->conv_in.x, dx));
    LilyTensor d_emb, d_hs[LILY_UNET_MAX_BLOCKS];
    LILY_TRY(lily_t_zeros_like(ctx, &tp->emb_silu, &d_emb));
    for (int i = 0; i < u->n_input; i++) LILY_TRY(lily_nn_like(ctx, &tp->hs[i], &d_hs[i]));
    LilyArenaMark m0 = lily_arena_mark(&ctx->arena);

    LilyTensor da, g;
    LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->out_conv, dout, &da));
    LILY_TRY(lily_t_norm_backward(ctx, ps, &tp->out_norm, &da, &g));
    keep(ctx, m0, &g);
    for (int i = u->n_output - 1; i >= 0; i--) {
        LilyTensor dc, dh;
        LILY_TRY(lily_unet_block_backward(ctx, ps, &tp->out[i], &g, &d_emb, &dc));
        LILY_TRY(lily_nn_like(ctx, &tp->cat_h[i], &dh));
        LILY_TRY(lily_op_split(ctx, &dc, &dh, &d_hs[u->n_input - 1 - i])); /* each skip used once */
        keep(ctx, m0, &dh); /* [g][dc][dh] -> [dh] at g's place */
        g = dh;
    }
    {
        LilyTensor d;
        LILY_TRY(lily_unet_block_backward(ctx, ps, &tp->mid, &g, &d_emb, &d));
        LILY_TRY(lily_t_accumulate(ctx, &d, &d_hs[u->n_input - 1]));
        keep(ctx, m0, &d);
        g = d;
    }
    for (int i = u->n_input - 1; i >= 1; i--) {
        LilyTensor d;
        LILY_TRY(lily_unet_block_backward(ctx, ps, &tp->in[i], &g, &d_emb, &d));
        LILY_TRY(lily_t_accumulate(ctx, &d, &d_hs[i - 1]));
        keep(ctx, m0, &d);
        g = d;
    }
    if (dx) {
        LilyTensor d;
        LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->conv_in, &g, &d));
        LILY_TRY(lily_tensor_copy(ctx, &d, dx));
    } else {
        LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->conv_in, &g, NULL));
    }
    LILY_TRY(lily_unet_time_backward(ctx, ps, &tp->time, &d_emb));
    lily_arena_reset(&ctx->arena, m0);
    return LILY_OK;
}
