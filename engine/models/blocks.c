/* models/blocks.c - layer calls shared by the models (see blocks.h). */
#include "models/blocks.h"

LilyStatus lily_nn_like(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    return lily_tensor_alloc(ctx, y, LILY_DTYPE_F32, x->ndim, x->shape);
}

LilyStatus lily_nn_conv2d_p(LilyContext *ctx, const LilyConv *c, const LilyTensor *x,
                            const LilyConvParams *p, LilyTensor *y)
{
    if (x->ndim != 4 || c->w->ndim != 4)
        return lily_error(ctx, LILY_ERR_SHAPE, "conv2d: expects 4-D input and weight");
    int64_t kh = c->w->shape[2], kw = c->w->shape[3];
    int64_t ho = (x->shape[2] + p->pad_begin[0] + p->pad_end[0] - (kh - 1) * p->dilation[0] - 1) /
                     p->stride[0] + 1;
    int64_t wo = (x->shape[3] + p->pad_begin[1] + p->pad_end[1] - (kw - 1) * p->dilation[1] - 1) /
                     p->stride[1] + 1;
    LILY_TRY(lily_tensor_alloc(ctx, y, LILY_DTYPE_F32, LILY_SHAPE(x->shape[0], c->w->shape[0], ho, wo)));
    return lily_op_conv2d(ctx, x, c->w, c->b, p, y);
}

LilyStatus lily_nn_conv2d(LilyContext *ctx, const LilyConv *c, const LilyTensor *x, int stride,
                          int pad, LilyTensor *y)
{
    LilyConvParams p = lily_conv2d_params(stride, pad);
    return lily_nn_conv2d_p(ctx, c, x, &p, y);
}

LilyStatus lily_nn_conv1d(LilyContext *ctx, const LilyConv *c, const LilyTensor *x, int stride,
                          int pad, int dilation, LilyTensor *y)
{
    if (x->ndim != 3 || c->w->ndim != 3)
        return lily_error(ctx, LILY_ERR_SHAPE, "conv1d: expects 3-D input and weight");
    LilyConvParams p = lily_conv1d_params(stride, pad, dilation);
    int64_t k = c->w->shape[2];
    int64_t lo = (x->shape[2] + 2 * pad - (k - 1) * dilation - 1) / stride + 1;
    LILY_TRY(lily_tensor_alloc(ctx, y, LILY_DTYPE_F32, LILY_SHAPE(x->shape[0], c->w->shape[0], lo)));
    return lily_op_conv1d(ctx, x, c->w, c->b, &p, y);
}

LilyStatus lily_nn_conv_transpose1d(LilyContext *ctx, const LilyConv *c, const LilyTensor *x,
                                    int stride, int pad, LilyTensor *y)
{
    if (x->ndim != 3 || c->w->ndim != 3)
        return lily_error(ctx, LILY_ERR_SHAPE, "conv_transpose1d: expects 3-D input and weight");
    int64_t lo = (x->shape[2] - 1) * stride - 2 * (int64_t)pad + c->w->shape[2];
    LILY_TRY(lily_tensor_alloc(ctx, y, LILY_DTYPE_F32, LILY_SHAPE(x->shape[0], c->w->shape[1], lo)));
    return lily_op_conv_transpose1d(ctx, x, c->w, c->b, stride, pad, y);
}

LilyStatus lily_nn_linear(LilyContext *ctx, const LilyLinear *l, const LilyTensor *x,
                          LilyTensor *y)
{
    int64_t shape[LILY_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[x->ndim - 1] = l->w->shape[0];
    LILY_TRY(lily_tensor_alloc(ctx, y, LILY_DTYPE_F32, x->ndim, shape));
    return lily_op_linear(ctx, x, l->w, l->b, y);
}

LilyStatus lily_nn_group_norm(LilyContext *ctx, const LilyNorm *n, const LilyTensor *x,
                              int groups, float eps, int silu, LilyTensor *y)
{
    LILY_TRY(lily_nn_like(ctx, x, y));
    return lily_op_group_norm(ctx, x, n->g, n->b, groups, eps, silu, y);
}

LilyStatus lily_nn_layer_norm(LilyContext *ctx, const LilyNorm *n, const LilyTensor *x,
                              float eps, LilyTensor *y)
{
    LILY_TRY(lily_nn_like(ctx, x, y));
    return lily_op_layer_norm(ctx, x, n->g, n->b, eps, y);
}

LilyStatus lily_nn_add(LilyContext *ctx, const LilyTensor *a, const LilyTensor *b, LilyTensor *y)
{
    return lily_op_binary(ctx, LILY_BINARY_ADD, a, b, y);
}

void lily_nn_keep(LilyContext *ctx, LilyArenaMark m, LilyTensor *y)
{
    y->data = lily_arena_collapse(ctx, &ctx->arena, m, y->data, lily_tensor_nbytes(y));
}

LilyLinear lily_nn_conv1x1_as_linear(const LilyConv *c, LilyTensor *w_view)
{
    *w_view = *c->w;
    w_view->ndim = 2;
    LilyLinear l = {w_view, c->b};
    return l;
}

LilyStatus lily_nn_to_tokens(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    int64_t n = x->shape[0], c = x->shape[1], s = lily_tensor_numel(x) / (n * c);
    LILY_TRY(lily_tensor_alloc(ctx, y, LILY_DTYPE_F32, LILY_SHAPE(n, s, c)));
    return lily_op_transpose(ctx, x, n, c, s, 1, y);
}

LilyStatus lily_nn_from_tokens(LilyContext *ctx, const LilyTensor *t, const LilyTensor *like,
                               LilyTensor *y)
{
    int64_t n = t->shape[0], s = t->shape[1], c = t->shape[2];
    LILY_TRY(lily_tensor_alloc(ctx, y, LILY_DTYPE_F32, like->ndim, like->shape));
    if (like->shape[1] != c) return lily_error(ctx, LILY_ERR_SHAPE, "from_tokens: channel mismatch");
    return lily_op_transpose(ctx, t, n, s, c, 1, y);
}
