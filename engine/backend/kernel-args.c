/* backend/kernel-args.c - the translations from tensors to kernel arguments that both
 * backends share (see kernel-args.h). */
#include <string.h>

#include "backend/kernel-args.h"

const char *lily_kargs_shape(const LilyTensor *t, char *buf)
{
    if (!t) return "none";
    return lily_shape_str(t, buf, LILY_KARGS_SHAPE_LEN);
}

LilyKDType lily_kargs_dtype(LilyDType t)
{
    switch (t) {
    case LILY_DTYPE_BF16: return LILY_KDT_BF16;
    case LILY_DTYPE_F16: return LILY_KDT_F16;
    default: return LILY_KDT_F32;
    }
}

LilyActOp lily_kargs_act(LilyUnaryOp op)
{
    switch (op) {
    case LILY_UNARY_SILU: return LILY_ACT_SILU;
    case LILY_UNARY_GELU: return LILY_ACT_GELU;
    case LILY_UNARY_LEAKY_RELU: return LILY_ACT_LEAKY_RELU;
    case LILY_UNARY_TANH: return LILY_ACT_TANH;
    case LILY_UNARY_EXP: return LILY_ACT_EXP;
    case LILY_UNARY_SCALE: return LILY_ACT_SCALE;
    case LILY_UNARY_ADD_SCALAR: return LILY_ACT_ADD_SCALAR;
    case LILY_UNARY_SQUARE: return LILY_ACT_SQUARE;
    case LILY_UNARY_ABS: return LILY_ACT_ABS;
    case LILY_UNARY_MIN: return LILY_ACT_MIN;
    case LILY_UNARY_MAX: return LILY_ACT_MAX;
    case LILY_UNARY_SIGMOID: return LILY_ACT_SIGMOID;
    default: return LILY_ACT_IDENTITY;
    }
}

LilyConvShape lily_kargs_conv(const LilyTensor *x, const LilyTensor *w, const LilyConvParams *p,
                              const LilyTensor *y, int nd)
{
    LilyConvShape s;
    memset(&s, 0, sizeof s);
    s.nd = nd;
    s.n = x->shape[0];
    s.c = x->shape[1];
    s.o = w->shape[0];
    for (int i = 0; i < 2; i++) {
        s.stride[i] = p->stride[i];
        s.pad_begin[i] = p->pad_begin[i];
        s.pad_end[i] = p->pad_end[i];
        s.dilation[i] = p->dilation[i];
    }
    if (nd == 2) {
        s.in[0] = x->shape[2];
        s.in[1] = x->shape[3];
        s.k[0] = w->shape[2];
        s.k[1] = w->shape[3];
        s.out[0] = y->shape[2];
        s.out[1] = y->shape[3];
    } else { /* 1-D as 2-D with a unit first spatial dimension */
        s.in[0] = s.k[0] = s.out[0] = 1;
        s.in[1] = x->shape[2];
        s.k[1] = w->shape[2];
        s.out[1] = y->shape[2];
    }
    return s;
}

LilyConvShape lily_kargs_convt(const LilyTensor *x, const LilyTensor *w, int stride, int pad,
                               const LilyTensor *y)
{
    LilyConvShape s;
    memset(&s, 0, sizeof s);
    s.nd = 1;
    s.transposed = 1;
    s.n = x->shape[0];
    s.c = x->shape[1];
    s.o = w->shape[1];
    s.in[0] = s.k[0] = s.out[0] = 1;
    s.in[1] = x->shape[2];
    s.k[1] = w->shape[2];
    s.out[1] = y->shape[2];
    s.stride[0] = 1;
    s.stride[1] = stride;
    s.pad_begin[1] = s.pad_end[1] = pad;
    s.dilation[0] = s.dilation[1] = 1;
    return s;
}

bool lily_kargs_conv_empty(const LilyConvShape *s)
{
    return s->n == 0 || s->c == 0 || s->o == 0 || s->out[0] == 0 || s->out[1] == 0;
}
