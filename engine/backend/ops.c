/* backend/ops.c - the op dispatchers: check shapes, dtypes and devices, then call the backend.
 *
 * Checking here, once, keeps both backends free of validation code and gives every shape
 * error the same wording. A failed check is a programmer error in model code or a model
 * whose config disagrees with its tensors; either way the message names the op and the
 * shapes involved. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "core/context.h"

LilyConvParams lily_conv2d_params(int stride, int pad)
{
    LilyConvParams p = {{stride, stride}, {pad, pad}, {pad, pad}, {1, 1}};
    return p;
}

LilyConvParams lily_conv1d_params(int stride, int pad, int dilation)
{
    LilyConvParams p = {{1, stride}, {0, pad}, {0, pad}, {1, dilation}};
    return p;
}

static const char *shp(const LilyTensor *t, char *buf)
{
    if (!t) return "none";
    return lily_shape_str(t, buf, 96);
}

static LilyStatus bad(LilyContext *ctx, const char *op, const char *what, const LilyTensor *a,
                      const LilyTensor *b)
{
    char sa[96], sb[96];
    return lily_error(ctx, LILY_ERR_SHAPE, "%s: %s (%s, %s)", op, what, shp(a, sa), shp(b, sb));
}

/* Activations must be f32 on the context's device. */
static bool act_ok(LilyContext *ctx, const LilyTensor *t)
{
    return t && t->data && t->dtype == LILY_DTYPE_F32 && t->device == ctx->backend->kind;
}

/* Weights may be f32, bf16 or f16, on the context's device. */
static bool wt_ok(LilyContext *ctx, const LilyTensor *t)
{
    return t && t->data && t->device == ctx->backend->kind &&
           (t->dtype == LILY_DTYPE_F32 || t->dtype == LILY_DTYPE_BF16 ||
            t->dtype == LILY_DTYPE_F16);
}

#define NEED(cond, op, what, a, b)                                                             \
    do {                                                                                       \
        if (!(cond)) return bad(ctx, op, what, a, b);                                          \
    } while (0)

#define NEED_ACT(t, op) NEED(act_ok(ctx, (t)), op, "expects f32 tensors on the context device", (t), NULL)
#define NEED_OPT_ACT(t, op) NEED(!(t) || act_ok(ctx, (t)), op, "expects f32 tensors on the context device", (t), NULL)
#define NEED_OPT_BIAS(t, op) NEED(!(t) || act_ok(ctx, (t)), op, "bias must be f32", (t), NULL)

static int64_t conv_out(int64_t in, int k, int stride, int pb, int pe, int dil)
{
    int64_t eff = (int64_t)(k - 1) * dil + 1;
    int64_t span = in + pb + pe - eff;
    if (span < 0 || stride <= 0) return -1;
    return span / stride + 1;
}

static LilyStatus check_conv(LilyContext *ctx, const char *op, int nd, const LilyTensor *x,
                             const LilyTensor *w, const LilyTensor *b, const LilyConvParams *p,
                             const LilyTensor *y)
{
    NEED(x && w && y && p, op, "missing tensor", x, w);
    NEED(x->ndim == nd + 2 && w->ndim == nd + 2 && y->ndim == nd + 2, op, "rank mismatch", x, w);
    NEED(x->shape[1] == w->shape[1], op, "input channels differ from the weight's", x, w);
    NEED(y->shape[0] == x->shape[0] && y->shape[1] == w->shape[0], op,
         "output batch/channels disagree", y, w);
    NEED(!b || (b->ndim == 1 && b->shape[0] == w->shape[0]), op, "bias length", b, w);
    for (int d = 0; d < nd; d++) {
        int pi = nd == 1 ? 1 : d;
        int64_t o = conv_out(x->shape[2 + d], (int)w->shape[2 + d], p->stride[pi],
                             p->pad_begin[pi], p->pad_end[pi], p->dilation[pi]);
        NEED(o == y->shape[2 + d], op, "output size disagrees with the geometry", x, y);
    }
    if (nd == 1)
        NEED(p->stride[0] == 1 && p->pad_begin[0] == 0 && p->pad_end[0] == 0 &&
                 p->dilation[0] == 1,
             op, "1-D geometry must leave index 0 at identity", x, y);
    return LILY_OK;
}

LilyStatus lily_op_conv2d(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                          const LilyTensor *b, const LilyConvParams *p, LilyTensor *y)
{
    NEED_ACT(x, "conv2d");
    NEED_ACT(y, "conv2d");
    NEED(wt_ok(ctx, w), "conv2d", "bad weight dtype or device", w, NULL);
    NEED_OPT_BIAS(b, "conv2d");
    LILY_TRY(check_conv(ctx, "conv2d", 2, x, w, b, p, y));
    ctx->flops += 2.0 * (double)lily_tensor_numel(y) * (double)(w->shape[1] * w->shape[2] * w->shape[3]);
    return ctx->backend->ops->conv2d(ctx, x, w, b, p, y);
}

LilyStatus lily_op_conv2d_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                   const LilyConvParams *p, const LilyTensor *dy, LilyTensor *dx,
                                   LilyTensor *dw, LilyTensor *db)
{
    NEED_ACT(x, "conv2d_backward");
    NEED_ACT(w, "conv2d_backward");
    NEED_ACT(dy, "conv2d_backward");
    NEED_OPT_ACT(dx, "conv2d_backward");
    NEED_OPT_ACT(dw, "conv2d_backward");
    NEED_OPT_ACT(db, "conv2d_backward");
    LILY_TRY(check_conv(ctx, "conv2d_backward", 2, x, w, NULL, p, dy));
    ctx->flops += 2.0 * (double)((dx != NULL) + (dw != NULL)) * (double)lily_tensor_numel(dy) *
                  (double)(w->shape[1] * w->shape[2] * w->shape[3]);
    NEED(!dx || lily_tensor_same_shape(dx, x), "conv2d_backward", "dx shape", dx, x);
    NEED(!dw || lily_tensor_same_shape(dw, w), "conv2d_backward", "dw shape", dw, w);
    NEED(!db || (db->ndim == 1 && db->shape[0] == w->shape[0]), "conv2d_backward", "db shape", db, w);
    return ctx->backend->ops->conv2d_backward(ctx, x, w, p, dy, dx, dw, db);
}

LilyStatus lily_op_conv1d(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                          const LilyTensor *b, const LilyConvParams *p, LilyTensor *y)
{
    NEED_ACT(x, "conv1d");
    NEED_ACT(y, "conv1d");
    NEED(wt_ok(ctx, w), "conv1d", "bad weight dtype or device", w, NULL);
    NEED_OPT_BIAS(b, "conv1d");
    LILY_TRY(check_conv(ctx, "conv1d", 1, x, w, b, p, y));
    ctx->flops += 2.0 * (double)lily_tensor_numel(y) * (double)(w->shape[1] * w->shape[2]);
    return ctx->backend->ops->conv1d(ctx, x, w, b, p, y);
}

LilyStatus lily_op_conv1d_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                   const LilyConvParams *p, const LilyTensor *dy, LilyTensor *dx,
                                   LilyTensor *dw, LilyTensor *db)
{
    NEED_ACT(x, "conv1d_backward");
    NEED_ACT(w, "conv1d_backward");
    NEED_ACT(dy, "conv1d_backward");
    NEED_OPT_ACT(dx, "conv1d_backward");
    NEED_OPT_ACT(dw, "conv1d_backward");
    NEED_OPT_ACT(db, "conv1d_backward");
    LILY_TRY(check_conv(ctx, "conv1d_backward", 1, x, w, NULL, p, dy));
    ctx->flops += 2.0 * (double)((dx != NULL) + (dw != NULL)) * (double)lily_tensor_numel(dy) *
                  (double)(w->shape[1] * w->shape[2]);
    NEED(!dx || lily_tensor_same_shape(dx, x), "conv1d_backward", "dx shape", dx, x);
    NEED(!dw || lily_tensor_same_shape(dw, w), "conv1d_backward", "dw shape", dw, w);
    NEED(!db || (db->ndim == 1 && db->shape[0] == w->shape[0]), "conv1d_backward", "db shape", db, w);
    return ctx->backend->ops->conv1d_backward(ctx, x, w, p, dy, dx, dw, db);
}

static LilyStatus check_convt(LilyContext *ctx, const char *op, const LilyTensor *x,
                              const LilyTensor *w, const LilyTensor *b, int stride, int pad,
                              const LilyTensor *y)
{
    NEED(x && w && y, op, "missing tensor", x, w);
    NEED(x->ndim == 3 && w->ndim == 3 && y->ndim == 3, op, "rank mismatch", x, w);
    NEED(x->shape[1] == w->shape[0], op, "input channels differ from the weight's", x, w);
    NEED(y->shape[0] == x->shape[0] && y->shape[1] == w->shape[1], op, "output channels", y, w);
    NEED(!b || (b->ndim == 1 && b->shape[0] == w->shape[1]), op, "bias length", b, w);
    NEED(stride > 0 && pad >= 0, op, "bad stride/pad", x, y);
    int64_t lo = (x->shape[2] - 1) * stride - 2 * (int64_t)pad + w->shape[2];
    NEED(lo == y->shape[2], op, "output length disagrees with the geometry", x, y);
    return LILY_OK;
}

LilyStatus lily_op_conv_transpose1d(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                    const LilyTensor *b, int stride, int pad, LilyTensor *y)
{
    NEED_ACT(x, "conv_transpose1d");
    NEED_ACT(y, "conv_transpose1d");
    NEED(wt_ok(ctx, w), "conv_transpose1d", "bad weight dtype or device", w, NULL);
    NEED_OPT_BIAS(b, "conv_transpose1d");
    LILY_TRY(check_convt(ctx, "conv_transpose1d", x, w, b, stride, pad, y));
    ctx->flops += 2.0 * (double)lily_tensor_numel(x) * (double)(w->shape[1] * w->shape[2]);
    return ctx->backend->ops->conv_transpose1d(ctx, x, w, b, stride, pad, y);
}

LilyStatus lily_op_conv_transpose1d_backward(LilyContext *ctx, const LilyTensor *x,
                                             const LilyTensor *w, int stride, int pad,
                                             const LilyTensor *dy, LilyTensor *dx,
                                             LilyTensor *dw, LilyTensor *db)
{
    NEED_ACT(x, "conv_transpose1d_backward");
    NEED_ACT(w, "conv_transpose1d_backward");
    NEED_ACT(dy, "conv_transpose1d_backward");
    NEED_OPT_ACT(dx, "conv_transpose1d_backward");
    NEED_OPT_ACT(dw, "conv_transpose1d_backward");
    NEED_OPT_ACT(db, "conv_transpose1d_backward");
    LILY_TRY(check_convt(ctx, "conv_transpose1d_backward", x, w, NULL, stride, pad, dy));
    ctx->flops += 2.0 * (double)((dx != NULL) + (dw != NULL)) * (double)lily_tensor_numel(x) *
                  (double)(w->shape[1] * w->shape[2]);
    NEED(!dx || lily_tensor_same_shape(dx, x), "conv_transpose1d_backward", "dx shape", dx, x);
    NEED(!dw || lily_tensor_same_shape(dw, w), "conv_transpose1d_backward", "dw shape", dw, w);
    NEED(!db || (db->ndim == 1 && db->shape[0] == w->shape[1]), "conv_transpose1d_backward",
         "db shape", db, w);
    return ctx->backend->ops->conv_transpose1d_backward(ctx, x, w, stride, pad, dy, dx, dw, db);
}

/* rows of x (all dims but the last flattened) */
static int64_t rows_of(const LilyTensor *t)
{
    return t->ndim ? lily_tensor_numel(t) / t->shape[t->ndim - 1] : 0;
}

static LilyStatus check_linear(LilyContext *ctx, const char *op, const LilyTensor *x,
                               const LilyTensor *w, const LilyTensor *b, const LilyTensor *y)
{
    NEED(x && w && y, op, "missing tensor", x, w);
    NEED(x->ndim >= 1 && w->ndim == 2 && y->ndim >= 1, op, "rank", x, w);
    NEED(x->shape[x->ndim - 1] == w->shape[1], op, "input width differs from the weight's", x, w);
    NEED(y->shape[y->ndim - 1] == w->shape[0], op, "output width differs from the weight's", y, w);
    NEED(rows_of(x) == rows_of(y), op, "row counts differ", x, y);
    NEED(!b || (b->ndim == 1 && b->shape[0] == w->shape[0]), op, "bias length", b, w);
    return LILY_OK;
}

LilyStatus lily_op_linear(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                          const LilyTensor *b, LilyTensor *y)
{
    NEED_ACT(x, "linear");
    NEED_ACT(y, "linear");
    NEED(wt_ok(ctx, w), "linear", "bad weight dtype or device", w, NULL);
    NEED_OPT_BIAS(b, "linear");
    LILY_TRY(check_linear(ctx, "linear", x, w, b, y));
    ctx->flops += 2.0 * (double)lily_tensor_numel(y) * (double)w->shape[1];
    return ctx->backend->ops->linear(ctx, x, w, b, y);
}

LilyStatus lily_op_linear_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                   const LilyTensor *dy, LilyTensor *dx, LilyTensor *dw,
                                   LilyTensor *db)
{
    NEED_ACT(x, "linear_backward");
    NEED_ACT(w, "linear_backward");
    NEED_ACT(dy, "linear_backward");
    NEED_OPT_ACT(dx, "linear_backward");
    NEED_OPT_ACT(dw, "linear_backward");
    NEED_OPT_ACT(db, "linear_backward");
    LILY_TRY(check_linear(ctx, "linear_backward", x, w, NULL, dy));
    ctx->flops += 2.0 * (double)((dx != NULL) + (dw != NULL)) * (double)lily_tensor_numel(dy) *
                  (double)w->shape[1];
    NEED(!dx || lily_tensor_numel(dx) == lily_tensor_numel(x), "linear_backward", "dx shape", dx, x);
    NEED(!dw || lily_tensor_same_shape(dw, w), "linear_backward", "dw shape", dw, w);
    NEED(!db || (db->ndim == 1 && db->shape[0] == w->shape[0]), "linear_backward", "db shape", db, w);
    return ctx->backend->ops->linear_backward(ctx, x, w, dy, dx, dw, db);
}

LilyStatus lily_op_matmul(LilyContext *ctx, const LilyTensor *a, bool trans_a,
                          const LilyTensor *b, bool trans_b, float alpha, float beta,
                          LilyTensor *c)
{
    NEED_ACT(a, "matmul");
    NEED_ACT(b, "matmul");
    NEED_ACT(c, "matmul");
    NEED(a->ndim == 3 && b->ndim == 3 && c->ndim == 3, "matmul", "expects [B,M,K] tensors", a, b);
    NEED(a->shape[0] == b->shape[0] && a->shape[0] == c->shape[0], "matmul", "batch", a, c);
    int64_t M = trans_a ? a->shape[2] : a->shape[1];
    int64_t K = trans_a ? a->shape[1] : a->shape[2];
    int64_t Kb = trans_b ? b->shape[2] : b->shape[1];
    int64_t N = trans_b ? b->shape[1] : b->shape[2];
    NEED(K == Kb, "matmul", "inner dimensions differ", a, b);
    NEED(c->shape[1] == M && c->shape[2] == N, "matmul", "output shape", a, c);
    ctx->flops += 2.0 * (double)a->shape[0] * (double)M * (double)N * (double)K;
    return ctx->backend->ops->matmul(ctx, a, trans_a, b, trans_b, alpha, beta, c);
}

static LilyStatus check_attn(LilyContext *ctx, const char *op, const LilyTensor *q,
                             const LilyTensor *k, const LilyTensor *v, const LilyTensor *o)
{
    NEED(q->ndim == 3 && k->ndim == 3 && v->ndim == 3 && o->ndim == 3, op, "expects [B,T,D]", q, k);
    NEED(q->shape[0] == k->shape[0] && k->shape[0] == v->shape[0], op, "batch", q, v);
    NEED(q->shape[2] == k->shape[2], op, "q/k width", q, k);
    NEED(k->shape[1] == v->shape[1], op, "k/v length", k, v);
    NEED(o->shape[0] == q->shape[0] && o->shape[1] == q->shape[1] && o->shape[2] == v->shape[2],
         op, "output shape", q, o);
    return LILY_OK;
}

LilyStatus lily_op_attention(LilyContext *ctx, const LilyTensor *q, const LilyTensor *k,
                             const LilyTensor *v, float scale, LilyTensor *out)
{
    NEED_ACT(q, "attention");
    NEED_ACT(k, "attention");
    NEED_ACT(v, "attention");
    NEED_ACT(out, "attention");
    LILY_TRY(check_attn(ctx, "attention", q, k, v, out));
    ctx->flops += 2.0 * (double)q->shape[0] * (double)q->shape[1] * (double)k->shape[1] *
                  (double)(q->shape[2] + v->shape[2]);
    return ctx->backend->ops->attention(ctx, q, k, v, scale, out);
}

LilyStatus lily_op_attention_backward(LilyContext *ctx, const LilyTensor *q, const LilyTensor *k,
                                      const LilyTensor *v, float scale, const LilyTensor *dout,
                                      LilyTensor *dq, LilyTensor *dk, LilyTensor *dv)
{
    NEED_ACT(q, "attention_backward");
    NEED_ACT(k, "attention_backward");
    NEED_ACT(v, "attention_backward");
    NEED_ACT(dout, "attention_backward");
    NEED_OPT_ACT(dq, "attention_backward");
    NEED_OPT_ACT(dk, "attention_backward");
    NEED_OPT_ACT(dv, "attention_backward");
    LILY_TRY(check_attn(ctx, "attention_backward", q, k, v, dout));
    ctx->flops += 4.0 * (double)q->shape[0] * (double)q->shape[1] * (double)k->shape[1] *
                  (double)(q->shape[2] + v->shape[2]);
    NEED(!dq || lily_tensor_same_shape(dq, q), "attention_backward", "dq", dq, q);
    NEED(!dk || lily_tensor_same_shape(dk, k), "attention_backward", "dk", dk, k);
    NEED(!dv || lily_tensor_same_shape(dv, v), "attention_backward", "dv", dv, v);
    return ctx->backend->ops->attention_backward(ctx, q, k, v, scale, dout, dq, dk, dv);
}

static LilyStatus check_gn(LilyContext *ctx, const char *op, const LilyTensor *x,
                           const LilyTensor *g, const LilyTensor *b, int groups)
{
    NEED(x->ndim >= 2, op, "expects [N,C,...]", x, NULL);
    NEED(groups > 0 && x->shape[1] % groups == 0, op, "channels not divisible by groups", x, NULL);
    NEED(!g || (g->ndim == 1 && g->shape[0] == x->shape[1]), op, "gamma length", g, x);
    NEED(!b || (b->ndim == 1 && b->shape[0] == x->shape[1]), op, "beta length", b, x);
    return LILY_OK;
}

LilyStatus lily_op_group_norm(LilyContext *ctx, const LilyTensor *x, const LilyTensor *gamma,
                              const LilyTensor *beta, int groups, float eps, int silu,
                              LilyTensor *y)
{
    NEED_ACT(x, "group_norm");
    NEED_ACT(y, "group_norm");
    NEED_OPT_ACT(gamma, "group_norm");
    NEED_OPT_ACT(beta, "group_norm");
    LILY_TRY(check_gn(ctx, "group_norm", x, gamma, beta, groups));
    NEED(lily_tensor_same_shape(x, y), "group_norm", "output shape", x, y);
    return ctx->backend->ops->group_norm(ctx, x, gamma, beta, groups, eps, silu, y);
}

LilyStatus lily_op_group_norm_backward(LilyContext *ctx, const LilyTensor *x,
                                       const LilyTensor *gamma, const LilyTensor *beta,
                                       int groups, float eps, int silu, const LilyTensor *dy,
                                       LilyTensor *dx, LilyTensor *dgamma, LilyTensor *dbeta)
{
    NEED_ACT(x, "group_norm_backward");
    NEED_ACT(dy, "group_norm_backward");
    NEED_OPT_ACT(gamma, "group_norm_backward");
    NEED_OPT_ACT(beta, "group_norm_backward");
    NEED_OPT_ACT(dx, "group_norm_backward");
    NEED_OPT_ACT(dgamma, "group_norm_backward");
    NEED_OPT_ACT(dbeta, "group_norm_backward");
    LILY_TRY(check_gn(ctx, "group_norm_backward", x, gamma, beta, groups));
    NEED(lily_tensor_same_shape(x, dy), "group_norm_backward", "dy shape", x, dy);
    NEED(!dx || lily_tensor_same_shape(x, dx), "group_norm_backward", "dx shape", x, dx);
    NEED(!dgamma || (dgamma->ndim == 1 && dgamma->shape[0] == x->shape[1]), "group_norm_backward", "dgamma", dgamma, x);
    NEED(!dbeta || (dbeta->ndim == 1 && dbeta->shape[0] == x->shape[1]), "group_norm_backward", "dbeta", dbeta, x);
    return ctx->backend->ops->group_norm_backward(ctx, x, gamma, beta, groups, eps, silu, dy, dx,
                                                  dgamma, dbeta);
}

LilyStatus lily_op_layer_norm(LilyContext *ctx, const LilyTensor *x, const LilyTensor *gamma,
                              const LilyTensor *beta, float eps, LilyTensor *y)
{
    NEED_ACT(x, "layer_norm");
    NEED_ACT(y, "layer_norm");
    NEED_OPT_ACT(gamma, "layer_norm");
    NEED_OPT_ACT(beta, "layer_norm");
    NEED(x->ndim >= 1 && lily_tensor_same_shape(x, y), "layer_norm", "shape", x, y);
    int64_t D = x->shape[x->ndim - 1];
    NEED(!gamma || (gamma->ndim == 1 && gamma->shape[0] == D), "layer_norm", "gamma", gamma, x);
    NEED(!beta || (beta->ndim == 1 && beta->shape[0] == D), "layer_norm", "beta", beta, x);
    return ctx->backend->ops->layer_norm(ctx, x, gamma, beta, eps, y);
}

LilyStatus lily_op_layer_norm_backward(LilyContext *ctx, const LilyTensor *x,
                                       const LilyTensor *gamma, float eps, const LilyTensor *dy,
                                       LilyTensor *dx, LilyTensor *dgamma, LilyTensor *dbeta)
{
    NEED_ACT(x, "layer_norm_backward");
    NEED_ACT(dy, "layer_norm_backward");
    NEED_OPT_ACT(gamma, "layer_norm_backward");
    NEED_OPT_ACT(dx, "layer_norm_backward");
    NEED_OPT_ACT(dgamma, "layer_norm_backward");
    NEED_OPT_ACT(dbeta, "layer_norm_backward");
    NEED(lily_tensor_same_shape(x, dy), "layer_norm_backward", "dy shape", x, dy);
    NEED(!dx || lily_tensor_same_shape(x, dx), "layer_norm_backward", "dx shape", x, dx);
    int64_t D = x->shape[x->ndim - 1];
    NEED(!gamma || (gamma->ndim == 1 && gamma->shape[0] == D), "layer_norm_backward", "gamma", gamma, x);
    NEED(!dgamma || (dgamma->ndim == 1 && dgamma->shape[0] == D), "layer_norm_backward", "dgamma", dgamma, x);
    NEED(!dbeta || (dbeta->ndim == 1 && dbeta->shape[0] == D), "layer_norm_backward", "dbeta", dbeta, x);
    return ctx->backend->ops->layer_norm_backward(ctx, x, gamma, eps, dy, dx, dgamma, dbeta);
}

LilyStatus lily_op_softmax(LilyContext *ctx, const LilyTensor *x, float scale, LilyTensor *y)
{
    NEED_ACT(x, "softmax");
    NEED_ACT(y, "softmax");
    NEED(x->ndim >= 1 && lily_tensor_same_shape(x, y), "softmax", "shape", x, y);
    return ctx->backend->ops->softmax(ctx, x, scale, y);
}

LilyStatus lily_op_softmax_backward(LilyContext *ctx, const LilyTensor *y, float scale,
                                    const LilyTensor *dy, LilyTensor *dx)
{
    NEED_ACT(y, "softmax_backward");
    NEED_ACT(dy, "softmax_backward");
    NEED_ACT(dx, "softmax_backward");
    NEED(lily_tensor_same_shape(y, dy) && lily_tensor_same_shape(y, dx), "softmax_backward",
         "shape", y, dx);
    return ctx->backend->ops->softmax_backward(ctx, y, scale, dy, dx);
}

LilyStatus lily_op_unary(LilyContext *ctx, LilyUnaryOp op, float alpha, const LilyTensor *x,
                         LilyTensor *y)
{
    NEED_ACT(x, "unary");
    NEED_ACT(y, "unary");
    NEED(op >= 0 && op < LILY_UNARY_COUNT, "unary", "unknown op", x, NULL);
    NEED(lily_tensor_numel(x) == lily_tensor_numel(y), "unary", "shape", x, y);
    return ctx->backend->ops->unary(ctx, op, alpha, x, y);
}

LilyStatus lily_op_unary_backward(LilyContext *ctx, LilyUnaryOp op, float alpha,
                                  const LilyTensor *x, const LilyTensor *dy, LilyTensor *dx)
{
    NEED_ACT(x, "unary_backward");
    NEED_ACT(dy, "unary_backward");
    NEED_ACT(dx, "unary_backward");
    NEED(op >= 0 && op < LILY_UNARY_COUNT, "unary_backward", "unknown op", x, NULL);
    NEED(lily_tensor_numel(x) == lily_tensor_numel(dy) &&
             lily_tensor_numel(x) == lily_tensor_numel(dx),
         "unary_backward", "shape", x, dy);
    return ctx->backend->ops->unary_backward(ctx, op, alpha, x, dy, dx);
}

LilyStatus lily_op_binary(LilyContext *ctx, LilyBinaryOp op, const LilyTensor *a,
                          const LilyTensor *b, LilyTensor *y)
{
    NEED_ACT(a, "binary");
    NEED_ACT(b, "binary");
    NEED_ACT(y, "binary");
    NEED(op >= 0 && op < LILY_BINARY_COUNT, "binary", "unknown op", a, b);
    NEED(lily_tensor_same_shape(a, y), "binary", "output shape", a, y);
    bool prefix = b->ndim <= a->ndim;
    for (int i = 0; prefix && i < b->ndim; i++) prefix = b->shape[i] == a->shape[i];
    bool scalar = lily_tensor_numel(b) == 1;
    NEED(prefix || scalar, "binary", "b must be a prefix of a's shape or a single element", a, b);
    NEED(b->data != y->data || lily_tensor_same_shape(a, b), "binary",
         "output may alias b only when shapes are equal", b, y);
    return ctx->backend->ops->binary(ctx, op, a, b, y);
}

LilyStatus lily_op_axpby(LilyContext *ctx, float alpha, const LilyTensor *x, float beta,
                         LilyTensor *y)
{
    NEED_ACT(x, "axpby");
    NEED_ACT(y, "axpby");
    NEED(lily_tensor_numel(x) == lily_tensor_numel(y), "axpby", "shape", x, y);
    return ctx->backend->ops->axpby(ctx, alpha, x, beta, y);
}

LilyStatus lily_op_geglu(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    NEED_ACT(x, "geglu");
    NEED_ACT(y, "geglu");
    NEED(x->ndim >= 1 && y->ndim == x->ndim && x->shape[x->ndim - 1] == 2 * y->shape[y->ndim - 1] &&
             rows_of(x) == rows_of(y),
         "geglu", "expects x[M,2D] -> y[M,D]", x, y);
    return ctx->backend->ops->geglu(ctx, x, y);
}

LilyStatus lily_op_geglu_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *dy,
                                  LilyTensor *dx)
{
    NEED_ACT(x, "geglu_backward");
    NEED_ACT(dy, "geglu_backward");
    NEED_ACT(dx, "geglu_backward");
    NEED(lily_tensor_same_shape(x, dx) && x->shape[x->ndim - 1] == 2 * dy->shape[dy->ndim - 1] &&
             rows_of(x) == rows_of(dy),
         "geglu_backward", "shapes", x, dy);
    return ctx->backend->ops->geglu_backward(ctx, x, dy, dx);
}

LilyStatus lily_op_fill(LilyContext *ctx, LilyTensor *y, float value)
{
    NEED_ACT(y, "fill");
    return ctx->backend->ops->fill(ctx, y, value);
}

LilyStatus lily_op_cast(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    NEED(x && y && x->data && y->data, "cast", "missing tensor", x, y);
    NEED(x->device == ctx->backend->kind && y->device == ctx->backend->kind, "cast", "device", x, y);
    NEED(lily_tensor_numel(x) == lily_tensor_numel(y), "cast", "shape", x, y);
    NEED((x->dtype <= LILY_DTYPE_F16) && (y->dtype <= LILY_DTYPE_F16), "cast",
         "only f32/bf16/f16", x, y);
    return ctx->backend->ops->cast(ctx, x, y);
}

LilyStatus lily_op_reduce(LilyContext *ctx, const LilyTensor *x, double *sum, double *sum_sq,
                          double *max_abs)
{
    NEED_ACT(x, "reduce");
    return ctx->backend->ops->reduce(ctx, x, sum, sum_sq, max_abs);
}

LilyStatus lily_op_upsample2x(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    NEED_ACT(x, "upsample2x");
    NEED_ACT(y, "upsample2x");
    NEED(x->ndim == 4 && y->ndim == 4 && y->shape[0] == x->shape[0] && y->shape[1] == x->shape[1] &&
             y->shape[2] == 2 * x->shape[2] && y->shape[3] == 2 * x->shape[3],
         "upsample2x", "expects [N,C,H,W] -> [N,C,2H,2W]", x, y);
    return ctx->backend->ops->upsample2x(ctx, x, y);
}

LilyStatus lily_op_upsample2x_backward(LilyContext *ctx, const LilyTensor *dy, LilyTensor *dx)
{
    NEED_ACT(dy, "upsample2x_backward");
    NEED_ACT(dx, "upsample2x_backward");
    NEED(dx->ndim == 4 && dy->ndim == 4 && dy->shape[0] == dx->shape[0] &&
             dy->shape[1] == dx->shape[1] && dy->shape[2] == 2 * dx->shape[2] &&
             dy->shape[3] == 2 * dx->shape[3],
         "upsample2x_backward", "shapes", dy, dx);
    return ctx->backend->ops->upsample2x_backward(ctx, dy, dx);
}

static LilyStatus check_cat(LilyContext *ctx, const char *op, const LilyTensor *a,
                            const LilyTensor *b, const LilyTensor *y)
{
    NEED(y->ndim >= 2, op, "expects [N,C,...]", y, NULL);
    int64_t ca = a ? a->shape[1] : 0, cb = b ? b->shape[1] : 0;
    const LilyTensor *ref = a ? a : b;
    NEED(ref, op, "missing tensor", y, NULL);
    if (a && b) NEED(a->ndim == b->ndim, op, "rank", a, b);
    if (a && b) NEED(ca + cb == y->shape[1], op, "channel counts", a, y);
    for (int i = 0; i < y->ndim; i++) {
        if (i == 1) continue;
        NEED(ref->shape[i] == y->shape[i], op, "non-channel dims differ", ref, y);
        if (a && b) NEED(a->shape[i] == b->shape[i], op, "non-channel dims differ", a, b);
    }
    return LILY_OK;
}

LilyStatus lily_op_concat(LilyContext *ctx, const LilyTensor *a, const LilyTensor *b,
                          LilyTensor *y)
{
    NEED_ACT(a, "concat");
    NEED_ACT(b, "concat");
    NEED_ACT(y, "concat");
    LILY_TRY(check_cat(ctx, "concat", a, b, y));
    return ctx->backend->ops->concat(ctx, a, b, y);
}

LilyStatus lily_op_split(LilyContext *ctx, const LilyTensor *y, LilyTensor *a, LilyTensor *b)
{
    NEED_ACT(y, "split");
    NEED_OPT_ACT(a, "split");
    NEED_OPT_ACT(b, "split");
    NEED(a || b, "split", "no outputs", y, NULL);
    LILY_TRY(check_cat(ctx, "split", a, b, y));
    if (!(a && b)) {
        /* one side only: its channels plus the other's must still fit */
        const LilyTensor *o = a ? a : b;
        NEED(o->shape[1] <= y->shape[1], "split", "channels", o, y);
    }
    return ctx->backend->ops->split(ctx, y, a, b);
}

LilyStatus lily_op_transpose(LilyContext *ctx, const LilyTensor *x, int64_t P, int64_t A,
                             int64_t B, int64_t Q, LilyTensor *y)
{
    NEED_ACT(x, "transpose");
    NEED_ACT(y, "transpose");
    NEED(P > 0 && A > 0 && B > 0 && Q > 0 && P * A * B * Q == lily_tensor_numel(x) &&
             lily_tensor_numel(y) == lily_tensor_numel(x) && x->data != y->data,
         "transpose", "view sizes disagree with the tensors (or y aliases x)", x, y);
    return ctx->backend->ops->transpose(ctx, x, P, A, B, Q, y);
}

LilyStatus lily_op_copy_rows(LilyContext *ctx, const LilyTensor *src, int64_t src_row0,
                             LilyTensor *dst, int64_t dst_row0, int64_t A, int64_t rows,
                             int64_t B)
{
    NEED_ACT(src, "copy_rows");
    NEED_ACT(dst, "copy_rows");
    NEED(A > 0 && B > 0 && rows >= 0 && src_row0 >= 0 && dst_row0 >= 0, "copy_rows", "bad view",
         src, dst);
    int64_t ns = lily_tensor_numel(src), nd = lily_tensor_numel(dst);
    NEED(ns % (A * B) == 0 && nd % (A * B) == 0, "copy_rows", "view does not divide tensors",
         src, dst);
    NEED(src_row0 + rows <= ns / (A * B) && dst_row0 + rows <= nd / (A * B), "copy_rows",
         "rows out of range", src, dst);
    if (rows == 0) return LILY_OK;
    return ctx->backend->ops->copy_rows(ctx, src, src_row0, dst, dst_row0, A, rows, B);
}

LilyStatus lily_op_randn(LilyContext *ctx, LilyTensor *y, int64_t A, int64_t B, int64_t row0,
                         uint64_t seed, uint64_t stream)
{
    NEED_ACT(y, "randn");
    NEED(A > 0 && B > 0 && row0 >= 0 && lily_tensor_numel(y) % (A * B) == 0, "randn", "bad view",
         y, NULL);
    return ctx->backend->ops->randn(ctx, y, A, B, row0, seed, stream);
}

LilyStatus lily_op_ddim_step(LilyContext *ctx, LilyTensor *x, const LilyTensor *vc,
                             const LilyTensor *vu, const LilyTensor *noise, float guidance,
                             double alpha, double alpha_prev, double sigma, LilyTensor *x0_out)
{
    NEED_ACT(x, "ddim_step");
    NEED_ACT(vc, "ddim_step");
    NEED_OPT_ACT(vu, "ddim_step");
    NEED_OPT_ACT(noise, "ddim_step");
    NEED_OPT_ACT(x0_out, "ddim_step");
    NEED(lily_tensor_same_shape(x, vc) && (!vu || lily_tensor_same_shape(x, vu)) &&
             (!noise || lily_tensor_same_shape(x, noise)) &&
             (!x0_out || lily_tensor_same_shape(x, x0_out)),
         "ddim_step", "shapes differ", x, vc);
    NEED(noise || sigma == 0.0, "ddim_step", "sigma > 0 needs noise", x, NULL);
    return ctx->backend->ops->ddim_step(ctx, x, vc, vu, noise, guidance, alpha, alpha_prev, sigma,
                                        x0_out);
}

/* ---- spectral ---- */

/* The family's parameters: n_fft >= 2, hop >= 1, window [n_fft] f32 on the device. */
static LilyStatus check_stft_params(LilyContext *ctx, const char *op, const LilyTensor *window,
                                    int n_fft, int hop)
{
    char sw[96];
    if (n_fft < 2 || hop < 1)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                          "%s: n_fft %d and hop %d (need n_fft >= 2 and hop >= 1)", op, n_fft, hop);
    NEED_ACT(window, op);
    if (window->ndim != 1 || window->shape[0] != n_fft)
        return lily_error(ctx, LILY_ERR_SHAPE, "%s: window is %s, n_fft %d needs [%d]", op,
                          shp(window, sw), n_fft, n_fft);
    return LILY_OK;
}

/* A spectrum [B, F, n_fft/2+1, 2] with F >= 1 frames. */
static LilyStatus check_spec(LilyContext *ctx, const char *op, const char *name,
                             const LilyTensor *spec, int64_t B, int64_t F, int n_fft)
{
    char ss[96];
    if (spec->ndim != 4 || spec->shape[0] != B || spec->shape[1] != F ||
        spec->shape[2] != n_fft / 2 + 1 || spec->shape[3] != 2 || F < 1)
        return lily_error(ctx, LILY_ERR_SHAPE,
                          "%s: %s is %s, expected [%lld, %lld, %d, 2] ([batch, frames, n_fft/2+1 "
                          "bins, re/im] for n_fft %d)",
                          op, name, shp(spec, ss), (long long)B, (long long)F, n_fft / 2 + 1, n_fft);
    return LILY_OK;
}

static double stft_flops(int64_t frames, int n_fft)
{
    return 2.5 * (double)frames * (double)n_fft * log2((double)n_fft);
}

LilyStatus lily_op_stft(LilyContext *ctx, const LilyTensor *x, const LilyTensor *window, int n_fft,
                        int hop, LilyTensor *y)
{
    char sx[96];
    NEED_ACT(x, "stft");
    NEED_ACT(y, "stft");
    LILY_TRY(check_stft_params(ctx, "stft", window, n_fft, hop));
    if (x->ndim != 2 || x->shape[1] < n_fft)
        return lily_error(ctx, LILY_ERR_SHAPE,
                          "stft: x is %s, expected [batch, L] with L >= n_fft %d (pad first)",
                          shp(x, sx), n_fft);
    int64_t B = x->shape[0], F = (x->shape[1] - n_fft) / hop + 1;
    LILY_TRY(check_spec(ctx, "stft", "y", y, B, F, n_fft));
    NEED(x->data != y->data, "stft", "y may not alias x", x, y);
    ctx->flops += stft_flops(B * F, n_fft);
    return ctx->backend->ops->stft(ctx, x, window, n_fft, hop, y);
}

LilyStatus lily_op_istft(LilyContext *ctx, const LilyTensor *spec, const LilyTensor *window,
                         int n_fft, int hop, LilyTensor *y)
{
    char ss[96], sy[96];
    NEED_ACT(spec, "istft");
    NEED_ACT(y, "istft");
    LILY_TRY(check_stft_params(ctx, "istft", window, n_fft, hop));
    NEED(spec->ndim == 4, "istft", "spec must be [batch, frames, n_fft/2+1, 2]", spec, NULL);
    int64_t B = spec->shape[0], F = spec->shape[1];
    NEED(F >= 1, "istft", "spec has no frames", spec, y);
    LILY_TRY(check_spec(ctx, "istft", "spec", spec, B, F, n_fft));
    int64_t L = (F - 1) * hop + n_fft;
    if (y->ndim != 2 || y->shape[0] != B || y->shape[1] != L)
        return lily_error(ctx, LILY_ERR_SHAPE,
                          "istft: y is %s, spec %s with n_fft %d and hop %d gives [%lld, %lld] "
                          "((frames - 1) * hop + n_fft)",
                          shp(y, sy), shp(spec, ss), n_fft, hop, (long long)B, (long long)L);
    NEED(spec->data != y->data, "istft", "y may not alias spec", spec, y);
    ctx->flops += stft_flops(B * F, n_fft);
    return ctx->backend->ops->istft(ctx, spec, window, n_fft, hop, y);
}

LilyStatus lily_op_stft_backward(LilyContext *ctx, const LilyTensor *window, int n_fft, int hop,
                                 const LilyTensor *dy, LilyTensor *dx)
{
    char sx[96];
    NEED_ACT(dy, "stft_backward");
    NEED_ACT(dx, "stft_backward");
    LILY_TRY(check_stft_params(ctx, "stft_backward", window, n_fft, hop));
    if (dx->ndim != 2 || dx->shape[1] < n_fft)
        return lily_error(ctx, LILY_ERR_SHAPE,
                          "stft_backward: dx is %s, expected [batch, L] with L >= n_fft %d",
                          shp(dx, sx), n_fft);
    int64_t B = dx->shape[0], F = (dx->shape[1] - n_fft) / hop + 1;
    LILY_TRY(check_spec(ctx, "stft_backward", "dy", dy, B, F, n_fft));
    NEED(dy->data != dx->data, "stft_backward", "dx may not alias dy", dy, dx);
    ctx->flops += stft_flops(B * F, n_fft);
    return ctx->backend->ops->stft_backward(ctx, window, n_fft, hop, dy, dx);
}

LilyStatus lily_tensor_upload(LilyContext *ctx, LilyTensor *dst, const void *host)
{
    NEED(dst && dst->data && host, "upload", "missing tensor", dst, NULL);
    return ctx->backend->ops->upload(ctx, dst->data, host, lily_tensor_nbytes(dst));
}

LilyStatus lily_tensor_download(LilyContext *ctx, const LilyTensor *src, void *host)
{
    NEED(src && src->data && host, "download", "missing tensor", src, NULL);
    return ctx->backend->ops->download(ctx, host, src->data, lily_tensor_nbytes(src));
}

LilyStatus lily_tensor_copy(LilyContext *ctx, const LilyTensor *src, LilyTensor *dst)
{
    NEED(src && dst && src->data && dst->data, "copy", "missing tensor", src, dst);
    NEED(lily_tensor_nbytes(src) == lily_tensor_nbytes(dst), "copy", "sizes differ", src, dst);
    if (src->data == dst->data) return LILY_OK;
    return ctx->backend->ops->copy(ctx, dst->data, src->data, lily_tensor_nbytes(src));
}
