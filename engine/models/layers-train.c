/* models/layers-train.c - layer calls for training (see layers-train.h).
 *
 * Each pair follows the PyTorch module it stands for (nn.Conv2d/Conv1d/ConvTranspose1d,
 * nn.Linear, nn.GroupNorm (+ SiLU), nn.LayerNorm, the activations, scaled dot-product
 * attention, diffusers' GEGLU); the arithmetic of the backward ops is in the backend
 * (kernels/cpu, checked against finite differences by tests/kernels/test-grad.c). */
#include <string.h>

#include "models/layers-train.h"

static int ps_index(const LilyParamSet *ps, const LilyTensor *t)
{
    if (!ps || !t || !ps->n) return -1;
    const char *base = (const char *)&ps->params[0].t;
    const char *p = (const char *)t;
    if (p < base) return -1;
    size_t off = (size_t)(p - base);
    if (off % sizeof(LilyParam) != 0) return -1;
    size_t i = off / sizeof(LilyParam);
    return i < (size_t)ps->n ? (int)i : -1;
}

const LilyTensor *lily_ps_w(const LilyParamSet *ps, const LilyTensor *t)
{
    int i = ps_index(ps, t);
    return i >= 0 && ps->compute ? &ps->compute[i] : t;
}

LilyTensor *lily_ps_g(const LilyParamSet *ps, const LilyTensor *t)
{
    int i = ps_index(ps, t);
    if (i < 0 || !ps->grad || !ps->grad[i].data) return NULL;
    return &ps->grad[i];
}

/* ---- convolutions ---- */
LilyStatus lily_t_conv2d(LilyContext *ctx, const LilyParamSet *ps, LilyTConv *s, const LilyConv *c,
                         const LilyTensor *x, const LilyConvParams *p, LilyTensor *y)
{
    LilyConv cw = {(LilyTensor *)lily_ps_w(ps, c->w), c->b ? (LilyTensor *)lily_ps_w(ps, c->b) : NULL};
    s->c = c;
    s->kind = LILY_TCONV_2D;
    s->p = *p;
    s->x = *x;
    return lily_nn_conv2d_p(ctx, &cw, x, p, y);
}

LilyStatus lily_t_conv1d(LilyContext *ctx, const LilyParamSet *ps, LilyTConv *s, const LilyConv *c,
                         const LilyTensor *x, int stride, int pad, int dilation, LilyTensor *y)
{
    LilyConv cw = {(LilyTensor *)lily_ps_w(ps, c->w), c->b ? (LilyTensor *)lily_ps_w(ps, c->b) : NULL};
    s->c = c;
    s->kind = LILY_TCONV_1D;
    s->p = lily_conv1d_params(stride, pad, dilation);
    s->x = *x;
    return lily_nn_conv1d(ctx, &cw, x, stride, pad, dilation, y);
}

LilyStatus lily_t_conv_t1d(LilyContext *ctx, const LilyParamSet *ps, LilyTConv *s,
                           const LilyConv *c, const LilyTensor *x, int stride, int pad,
                           LilyTensor *y)
{
    LilyConv cw = {(LilyTensor *)lily_ps_w(ps, c->w), c->b ? (LilyTensor *)lily_ps_w(ps, c->b) : NULL};
    s->c = c;
    s->kind = LILY_TCONV_T1D;
    s->stride = stride;
    s->pad = pad;
    s->x = *x;
    return lily_nn_conv_transpose1d(ctx, &cw, x, stride, pad, y);
}

LilyStatus lily_t_conv_backward(LilyContext *ctx, const LilyParamSet *ps, const LilyTConv *s,
                                const LilyTensor *dy, LilyTensor *dx)
{
    LilyTensor *dw = lily_ps_g(ps, s->c->w), *db = lily_ps_g(ps, s->c->b);
    if (dx) LILY_TRY(lily_nn_like(ctx, &s->x, dx));
    if (!dx && !dw && !db) return LILY_OK;
    switch (s->kind) {
    case LILY_TCONV_2D:
        return lily_op_conv2d_backward(ctx, &s->x, s->c->w, &s->p, dy, dx, dw, db);
    case LILY_TCONV_1D:
        return lily_op_conv1d_backward(ctx, &s->x, s->c->w, &s->p, dy, dx, dw, db);
    case LILY_TCONV_T1D:
        return lily_op_conv_transpose1d_backward(ctx, &s->x, s->c->w, s->stride, s->pad, dy, dx,
                                                 dw, db);
    }
    return lily_error(ctx, LILY_ERR_INTERNAL, "conv backward: unknown kind %d", (int)s->kind);
}

/* ---- linear ---- */
LilyStatus lily_t_linear(LilyContext *ctx, const LilyParamSet *ps, LilyTLinear *s,
                         const LilyLinear *l, const LilyTensor *x, LilyTensor *y)
{
    LilyLinear lw = {(LilyTensor *)lily_ps_w(ps, l->w), l->b ? (LilyTensor *)lily_ps_w(ps, l->b) : NULL};
    s->l = l;
    s->x = *x;
    return lily_nn_linear(ctx, &lw, x, y);
}

LilyStatus lily_t_linear_backward(LilyContext *ctx, const LilyParamSet *ps, const LilyTLinear *s,
                                  const LilyTensor *dy, LilyTensor *dx)
{
    LilyTensor *dw = lily_ps_g(ps, s->l->w), *db = lily_ps_g(ps, s->l->b);
    if (dx) LILY_TRY(lily_nn_like(ctx, &s->x, dx));
    if (!dx && !dw && !db) return LILY_OK;
    return lily_op_linear_backward(ctx, &s->x, s->l->w, dy, dx, dw, db);
}

/* ---- normalisation ---- */
LilyStatus lily_t_group_norm(LilyContext *ctx, LilyTNorm *s, const LilyNorm *n, const LilyTensor *x,
                             int groups, float eps, int silu, LilyTensor *y)
{
    s->n = n;
    s->groups = groups;
    s->eps = eps;
    s->silu = silu;
    s->x = *x;
    return lily_nn_group_norm(ctx, n, x, groups, eps, silu, y);
}

LilyStatus lily_t_layer_norm(LilyContext *ctx, LilyTNorm *s, const LilyNorm *n, const LilyTensor *x,
                             float eps, LilyTensor *y)
{
    s->n = n;
    s->groups = 0;
    s->eps = eps;
    s->silu = 0;
    s->x = *x;
    return lily_nn_layer_norm(ctx, n, x, eps, y);
}

LilyStatus lily_t_norm_backward(LilyContext *ctx, const LilyParamSet *ps, const LilyTNorm *s,
                                const LilyTensor *dy, LilyTensor *dx)
{
    LilyTensor *dg = lily_ps_g(ps, s->n->g), *db = lily_ps_g(ps, s->n->b);
    if (dx) LILY_TRY(lily_nn_like(ctx, &s->x, dx));
    if (!dx && !dg && !db) return LILY_OK;
    if (s->groups > 0)
        return lily_op_group_norm_backward(ctx, &s->x, s->n->g, s->n->b, s->groups, s->eps, s->silu,
                                           dy, dx, dg, db);
    return lily_op_layer_norm_backward(ctx, &s->x, s->n->g, s->eps, dy, dx, dg, db);
}

/* ---- elementwise ---- */
LilyStatus lily_t_unary(LilyContext *ctx, LilyTUnary *s, LilyUnaryOp op, float alpha,
                        const LilyTensor *x, LilyTensor *y)
{
    s->op = op;
    s->alpha = alpha;
    s->x = *x;
    LILY_TRY(lily_nn_like(ctx, x, y));
    return lily_op_unary(ctx, op, alpha, x, y);
}

LilyStatus lily_t_unary_backward(LilyContext *ctx, const LilyTUnary *s, const LilyTensor *dy,
                                 LilyTensor *dx)
{
    LILY_TRY(lily_nn_like(ctx, &s->x, dx));
    return lily_op_unary_backward(ctx, s->op, s->alpha, &s->x, dy, dx);
}

/* ---- attention ---- */
LilyStatus lily_t_attention(LilyContext *ctx, LilyTAttention *s, const LilyTensor *q,
                            const LilyTensor *k, const LilyTensor *v, float scale, LilyTensor *y)
{
    s->q = *q;
    s->k = *k;
    s->v = *v;
    s->scale = scale;
    LILY_TRY(lily_tensor_alloc(ctx, y, LILY_DTYPE_F32, LILY_SHAPE(q->shape[0], q->shape[1], v->shape[2])));
    return lily_op_attention(ctx, q, k, v, scale, y);
}

LilyStatus lily_t_attention_backward(LilyContext *ctx, const LilyTAttention *s,
                                     const LilyTensor *dy, LilyTensor *dq, LilyTensor *dk,
                                     LilyTensor *dv)
{
    LILY_TRY(lily_nn_like(ctx, &s->q, dq));
    LILY_TRY(lily_nn_like(ctx, &s->k, dk));
    LILY_TRY(lily_nn_like(ctx, &s->v, dv));
    return lily_op_attention_backward(ctx, &s->q, &s->k, &s->v, s->scale, dy, dq, dk, dv);
}

LilyStatus lily_t_geglu(LilyContext *ctx, LilyTGeglu *s, const LilyTensor *x, LilyTensor *y)
{
    int64_t shape[LILY_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] /= 2;
    s->x = *x;
    LILY_TRY(lily_tensor_alloc(ctx, y, LILY_DTYPE_F32, x->ndim, shape));
    return lily_op_geglu(ctx, x, y);
}

LilyStatus lily_t_geglu_backward(LilyContext *ctx, const LilyTGeglu *s, const LilyTensor *dy,
                                 LilyTensor *dx)
{
    LILY_TRY(lily_nn_like(ctx, &s->x, dx));
    return lily_op_geglu_backward(ctx, &s->x, dy, dx);
}

/* ---- helpers ---- */
LilyStatus lily_t_sum_trailing(LilyContext *ctx, const LilyTensor *x, LilyTensor *out)
{
    int64_t n = x->shape[0], c = x->shape[1];
    int64_t s = lily_tensor_numel(x) / (n * c);
    LilyTensor ones, xv = *x;
    LILY_TRY(lily_tensor_alloc(ctx, out, LILY_DTYPE_F32, LILY_SHAPE(n, c)));
    LILY_TRY(lily_tensor_alloc(ctx, &ones, LILY_DTYPE_F32, LILY_SHAPE(1, s)));
    LILY_TRY(lily_op_fill(ctx, &ones, 1.0f));
    if (!lily_tensor_reshape(&xv, LILY_SHAPE(n * c, s)))
        return lily_error(ctx, LILY_ERR_INTERNAL, "sum_trailing: reshape");
    LilyTensor ov = *out;
    lily_tensor_reshape(&ov, LILY_SHAPE(n * c, 1));
    return lily_op_linear(ctx, &xv, &ones, NULL, &ov);
}

LilyStatus lily_t_add(LilyContext *ctx, const LilyTensor *a, const LilyTensor *b, LilyTensor *y)
{
    LILY_TRY(lily_nn_like(ctx, a, y));
    return lily_op_binary(ctx, LILY_BINARY_ADD, a, b, y);
}

LilyStatus lily_t_accumulate(LilyContext *ctx, LilyTensor *acc, const LilyTensor *x)
{
    return lily_op_binary(ctx, LILY_BINARY_ADD, acc, x, acc);
}

LilyStatus lily_t_zeros_like(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    LILY_TRY(lily_nn_like(ctx, x, y));
    return lily_op_fill(ctx, y, 0.0f);
}

LilyStatus lily_t_clone(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    LILY_TRY(lily_nn_like(ctx, x, y));
    return lily_tensor_copy(ctx, x, y);
}

LilyStatus lily_t_to_tokens(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    return lily_nn_to_tokens(ctx, x, y);
}

LilyStatus lily_t_from_tokens(LilyContext *ctx, const LilyTensor *tok, const LilyTensor *like,
                              LilyTensor *y)
{
    return lily_nn_from_tokens(ctx, tok, like, y);
}

/* ---- 1x1 convolution on tokens ---- */
static LilyTensor view2d(const LilyTensor *w)
{
    LilyTensor v = *w;
    v.ndim = 2; /* [O, C, 1, 1] -> [O, C] */
    return v;
}

LilyStatus lily_t_conv1x1_tokens(LilyContext *ctx, const LilyParamSet *ps, LilyTConv1x1 *s,
                                 const LilyConv *c, const LilyTensor *x, LilyTensor *y)
{
    s->c = c;
    s->x = *x;
    LilyTensor wv = view2d(lily_ps_w(ps, c->w));
    LilyLinear l = {&wv, c->b ? (LilyTensor *)lily_ps_w(ps, c->b) : NULL};
    return lily_nn_linear(ctx, &l, x, y);
}

LilyStatus lily_t_conv1x1_tokens_backward(LilyContext *ctx, const LilyParamSet *ps,
                                          const LilyTConv1x1 *s, const LilyTensor *dy,
                                          LilyTensor *dx)
{
    LilyTensor *g = lily_ps_g(ps, s->c->w), *db = lily_ps_g(ps, s->c->b);
    LilyTensor wv = view2d(s->c->w), gv;
    if (g) gv = view2d(g);
    if (dx) LILY_TRY(lily_nn_like(ctx, &s->x, dx));
    if (!dx && !g && !db) return LILY_OK;
    return lily_op_linear_backward(ctx, &s->x, &wv, dy, dx, g ? &gv : NULL, db);
}
