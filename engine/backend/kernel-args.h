/* backend/kernel-args.h - tensors as the arguments of kernels/cpu and kernels/cuda functions.
 *
 * Both backends call kernels that take raw pointers, element counts, shape integers and enum
 * codes; what they read from a tensor for that is the same on either device, so it is written
 * here once (for backend-cpu.c and backend-cuda.c only). The accessors below are static inline
 * with short names because nearly every op line calls several of them; the larger translations
 * (convolution geometry, op and dtype codes, shape strings for error messages) live in
 * kernel-args.c. */
#ifndef LILY_BACKEND_KERNEL_ARGS_H
#define LILY_BACKEND_KERNEL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "common/activation.h" /* LilyActOp */
#include "common/conv-shape.h" /* LilyConvShape */
#include "common/half.h"       /* LilyKDType */
#include "core/tensor.h"

/* f32 data; NULL for an absent optional tensor (bias, unwanted gradient). */
static inline const float *cf(const LilyTensor *t)
{
    return t ? (const float *)t->data : NULL;
}

static inline float *mf(LilyTensor *t)
{
    return t ? (float *)t->data : NULL;
}

static inline int64_t numel(const LilyTensor *t)
{
    return lily_tensor_numel(t);
}

/* The tensor as a matrix of rows x last for the row-wise kernels (norms, softmax, linear). */
static inline int64_t rows(const LilyTensor *t)
{
    return t->ndim ? numel(t) / t->shape[t->ndim - 1] : 0;
}

static inline int64_t last(const LilyTensor *t)
{
    return t->shape[t->ndim - 1];
}

/* Elements per (batch, channel) of an [N, C, ...] tensor: the spatial size; 0 when empty. */
static inline int64_t inner_of(const LilyTensor *t)
{
    int64_t nc = t->shape[0] * t->shape[1];
    return nc ? numel(t) / nc : 0;
}

/* Room for the shape of any realistic tensor (lily_shape_str truncates a longer one). */
#define LILY_KARGS_SHAPE_LEN 96

/* "16x64x32" into buf (LILY_KARGS_SHAPE_LEN chars), or "none" for an absent tensor. */
const char *lily_kargs_shape(const LilyTensor *t, char *buf);

/* The kernels' element type for a tensor dtype. */
LilyKDType lily_kargs_dtype(LilyDType t);

/* The kernels' activation for an engine unary op. */
LilyActOp lily_kargs_act(LilyUnaryOp op);

/* Geometry of conv1d (nd 1) or conv2d (nd 2) of x [N, C, ...] with w [O, C, ...] into y. */
LilyConvShape lily_kargs_conv(const LilyTensor *x, const LilyTensor *w, const LilyConvParams *p,
                              const LilyTensor *y, int nd);

/* Geometry of conv_transpose1d of x [N, C, L] with w [C, O, K] into y. */
LilyConvShape lily_kargs_convt(const LilyTensor *x, const LilyTensor *w, int stride, int pad,
                               const LilyTensor *y);

/* Nothing to compute: the backends skip the kernel call (zeroing dx in backward) rather than
 * hand zero sizes to oneDNN or cuDNN. */
bool lily_kargs_conv_empty(const LilyConvShape *s);

#endif /* LILY_BACKEND_KERNEL_ARGS_H */
