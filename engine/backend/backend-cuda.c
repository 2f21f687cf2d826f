/* backend/backend-cuda.c - the CUDA backend: device memory and the op table on kernels/cuda.
 *
 * Registered only when a device answers at run time (lily_device_probe: a driver, the device
 * index, and kernels built for its compute capability). Built only when the build found nvcc
 * (LILY_HAVE_CUDA). Like backend-cpu.c, each op turns tensors into the raw pointers and shape
 * integers of a kernels/cuda function and turns the kernel's status into a context error
 * naming the op and its shapes; the dispatchers in ops.c have already checked shapes, dtypes
 * and devices.
 *
 * The impl holds the kernels' handle: the context's CUDA stream, its cuBLAS and cuDNN handles,
 * the scratch buffers, the convolution plans and the cuFFT plans. Every op is queued on that stream and
 * returns without waiting; only download, reduce and synchronize wait, because the host needs
 * their results (upload waits too, see kernels/cuda/handle.h). Weight stamps are not needed
 * here: bf16/f16 weights are used in place by cuBLAS and cuDNN, with no converted copy to
 * cache.
 *
 * Memory functions use only the backend's device index (not the impl), so memory allocated
 * through one context can be freed through a copy of its backend after the context is gone.
 *
 * Set LILY_CUDA_DETERMINISTIC=1 in the environment to restrict cuDNN to deterministic
 * algorithms (all of Lily's own kernels are deterministic anyway). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/kernel-args.h"
#include "core/context.h"
#include "cuda/activation.h"  /* unary, geglu */
#include "cuda/attention.h"   /* attention, softmax */
#include "cuda/conv.h"        /* conv1d/2d, conv_transpose1d */
#include "cuda/elementwise.h" /* binary, axpby, fill, cast, reduce */
#include "cuda/handle.h"      /* LilyCudaHandle, device memory, copies */
#include "cuda/layout.h"      /* upsample2x, concat, split, transpose, copy_rows */
#include "cuda/matmul.h"      /* linear, matmul */
#include "cuda/norm.h"        /* group_norm, layer_norm */
#include "cuda/random.h"      /* randn */
#include "cuda/sampler.h"     /* ddim_step */
#include "cuda/stft.h"        /* stft, istft, stft_backward (cuFFT) */

typedef struct CudaImpl {
    LilyCudaHandle *h;
} CudaImpl;

LilyStatus lily_device_probe(LilyDeviceKind kind, int index, char *why, size_t why_len)
{
    if (kind == LILY_DEVICE_CPU) return index == 0 ? LILY_OK : LILY_ERR_INVALID_ARGUMENT;
    return lily_cuda_probe(index, why, why_len) == LILY_CUDA_OK ? LILY_OK : LILY_ERR_DEVICE;
}

static LilyCudaHandle *hnd(LilyContext *ctx)
{
    return ((CudaImpl *)ctx->backend->impl)->h;
}

static LilyStatus status_of(int rc)
{
    switch (rc) {
    case LILY_CUDA_OK: return LILY_OK;
    case LILY_CUDA_ERR_NO_MEMORY: return LILY_ERR_NO_MEMORY;
    case LILY_CUDA_ERR_UNSUPPORTED: return LILY_ERR_UNSUPPORTED;
    default: return LILY_ERR_DEVICE;
    }
}

/* A kernel's failure as a context error naming the op and two of its tensors. */
static LilyStatus kfail(LilyContext *ctx, int rc, const char *op, const LilyTensor *a,
                        const LilyTensor *b)
{
    char sa[LILY_KARGS_SHAPE_LEN], sb[LILY_KARGS_SHAPE_LEN];
    LilyCudaHandle *h = hnd(ctx);
    const char *why = lily_cuda_message(h);
    int dev = lily_cuda_handle_device(h);
    if (rc == LILY_CUDA_ERR_NO_MEMORY)
        return lily_error(ctx, LILY_ERR_NO_MEMORY,
                          "cuda:%d %s (%s, %s): out of device memory: %s; use shorter chunks or "
                          "precision=bf16",
                          dev, op, lily_kargs_shape(a, sa), lily_kargs_shape(b, sb), why);
    return lily_error(ctx, status_of(rc), "cuda:%d %s (%s, %s) failed: %s", dev, op,
                      lily_kargs_shape(a, sa), lily_kargs_shape(b, sb),
                      *why ? why : "unknown CUDA error");
}

/* Every entry point: make the context's device current on this thread, then run. */
#define KTRY(expr, op, a, b)                                                                   \
    do {                                                                                       \
        int kt_rc_ = lily_cuda_use(hnd(ctx));                                                  \
        if (kt_rc_ == LILY_CUDA_OK) kt_rc_ = (expr);                                           \
        if (kt_rc_ != LILY_CUDA_OK) return kfail(ctx, kt_rc_, op, a, b);                       \
    } while (0)

/* ---------------------------------------------------------------------------------------- */
/* memory                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static LilyStatus cuda_alloc(LilyBackend *be, size_t bytes, void **ptr)
{
    /* the caller (arena, model loader) reports the figures through its context, with
     * mem_info; nothing to keep here */
    return status_of(lily_cuda_malloc(be->index, bytes, ptr, NULL, 0));
}

static void cuda_free(LilyBackend *be, void *ptr)
{
    lily_cuda_free(be->index, ptr);
}

static LilyStatus cuda_upload(LilyContext *ctx, void *dst_dev, const void *src_host, size_t bytes)
{
    KTRY(lily_cuda_upload(hnd(ctx), dst_dev, src_host, bytes), "upload", NULL, NULL);
    return LILY_OK;
}

static LilyStatus cuda_download(LilyContext *ctx, void *dst_host, const void *src_dev, size_t bytes)
{
    KTRY(lily_cuda_download(hnd(ctx), dst_host, src_dev, bytes), "download", NULL, NULL);
    return LILY_OK;
}

static LilyStatus cuda_copy(LilyContext *ctx, void *dst_dev, const void *src_dev, size_t bytes)
{
    KTRY(lily_cuda_copy(hnd(ctx), dst_dev, src_dev, bytes), "copy", NULL, NULL);
    return LILY_OK;
}

static LilyStatus cuda_sync(LilyContext *ctx)
{
    KTRY(lily_cuda_synchronize(hnd(ctx)), "synchronize", NULL, NULL);
    return LILY_OK;
}

static LilyStatus cuda_mem_info(LilyBackend *be, size_t *free_bytes, size_t *total_bytes)
{
    return status_of(lily_cuda_mem_info(be->index, free_bytes, total_bytes));
}

static void cuda_destroy(LilyBackend *be)
{
    CudaImpl *im = be->impl;
    if (im) {
        lily_cuda_handle_free(im->h);
        free(im);
    }
    free(be);
}

/* ---------------------------------------------------------------------------------------- */
/* dense products                                                                            */
/* ---------------------------------------------------------------------------------------- */

static LilyStatus conv_fwd(LilyContext *ctx, const char *op, LilyConvShape s,
                           const LilyTensor *x, const LilyTensor *w, const LilyTensor *b,
                           LilyTensor *y)
{
    if (lily_kargs_conv_empty(&s)) return LILY_OK;
    KTRY(lily_cuda_conv_forward(hnd(ctx), &s, cf(x), w->data, lily_kargs_dtype(w->dtype), cf(b),
                                mf(y)),
         op, x, w);
    return LILY_OK;
}

static LilyStatus conv_bwd(LilyContext *ctx, const char *op, LilyConvShape s,
                           const LilyTensor *x, const LilyTensor *w, const LilyTensor *dy,
                           LilyTensor *dx, LilyTensor *dw, LilyTensor *db)
{
    if (lily_kargs_conv_empty(&s)) {
        if (dx) KTRY(lily_cuda_fill(hnd(ctx), mf(dx), 0.0f, numel(dx)), op, x, w);
        return LILY_OK;
    }
    KTRY(lily_cuda_conv_backward(hnd(ctx), &s, cf(x), cf(w), cf(dy), mf(dx), mf(dw), mf(db)), op, x, w);
    return LILY_OK;
}

static LilyStatus cuda_conv2d(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                              const LilyTensor *b, const LilyConvParams *p, LilyTensor *y)
{
    return conv_fwd(ctx, "conv2d", lily_kargs_conv(x, w, p, y, 2), x, w, b, y);
}

static LilyStatus cuda_conv2d_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                       const LilyConvParams *p, const LilyTensor *dy,
                                       LilyTensor *dx, LilyTensor *dw, LilyTensor *db)
{
    return conv_bwd(ctx, "conv2d_backward", lily_kargs_conv(x, w, p, dy, 2), x, w, dy, dx, dw, db);
}

static LilyStatus cuda_conv1d(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                              const LilyTensor *b, const LilyConvParams *p, LilyTensor *y)
{
    return conv_fwd(ctx, "conv1d", lily_kargs_conv(x, w, p, y, 1), x, w, b, y);
}

static LilyStatus cuda_conv1d_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                       const LilyConvParams *p, const LilyTensor *dy,
                                       LilyTensor *dx, LilyTensor *dw, LilyTensor *db)
{
    return conv_bwd(ctx, "conv1d_backward", lily_kargs_conv(x, w, p, dy, 1), x, w, dy, dx, dw, db);
}

static LilyStatus cuda_conv_transpose1d(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                        const LilyTensor *b, int stride, int pad, LilyTensor *y)
{
    return conv_fwd(ctx, "conv_transpose1d", lily_kargs_convt(x, w, stride, pad, y), x, w, b, y);
}

static LilyStatus cuda_conv_transpose1d_backward(LilyContext *ctx, const LilyTensor *x,
                                                 const LilyTensor *w, int stride, int pad,
                                                 const LilyTensor *dy, LilyTensor *dx,
                                                 LilyTensor *dw, LilyTensor *db)
{
    return conv_bwd(ctx, "conv_transpose1d_backward", lily_kargs_convt(x, w, stride, pad, dy), x, w,
                    dy, dx, dw, db);
}

static LilyStatus cuda_linear(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                              const LilyTensor *b, LilyTensor *y)
{
    int64_t M = rows(x), K = last(x), N = w->shape[0];
    KTRY(lily_cuda_linear_forward(hnd(ctx), M, K, N, cf(x), w->data, lily_kargs_dtype(w->dtype),
                                  cf(b), mf(y)),
         "linear", x, w);
    return LILY_OK;
}

static LilyStatus cuda_linear_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                       const LilyTensor *dy, LilyTensor *dx, LilyTensor *dw,
                                       LilyTensor *db)
{
    int64_t M = rows(x), K = last(x), N = w->shape[0];
    KTRY(lily_cuda_linear_backward(hnd(ctx), M, K, N, cf(x), cf(w), cf(dy), mf(dx), mf(dw), mf(db)),
         "linear_backward", x, w);
    return LILY_OK;
}

static LilyStatus cuda_matmul(LilyContext *ctx, const LilyTensor *a, bool trans_a,
                              const LilyTensor *b, bool trans_b, float alpha, float beta,
                              LilyTensor *c)
{
    int64_t B = a->shape[0];
    int64_t M = trans_a ? a->shape[2] : a->shape[1];
    int64_t K = trans_a ? a->shape[1] : a->shape[2];
    int64_t N = trans_b ? b->shape[1] : b->shape[2];
    KTRY(lily_cuda_matmul(hnd(ctx), B, M, N, K, cf(a), trans_a, cf(b), trans_b, alpha, beta, mf(c)),
         "matmul", a, b);
    return LILY_OK;
}

static LilyStatus cuda_attention(LilyContext *ctx, const LilyTensor *q, const LilyTensor *k,
                                 const LilyTensor *v, float scale, LilyTensor *out)
{
    int64_t B = q->shape[0], T = q->shape[1], D = q->shape[2], S = k->shape[1], Dv = v->shape[2];
    KTRY(lily_cuda_attention_forward(hnd(ctx), B, T, S, D, Dv, cf(q), cf(k), cf(v), scale, mf(out)),
         "attention", q, k);
    return LILY_OK;
}

static LilyStatus cuda_attention_backward(LilyContext *ctx, const LilyTensor *q,
                                          const LilyTensor *k, const LilyTensor *v, float scale,
                                          const LilyTensor *dout, LilyTensor *dq, LilyTensor *dk,
                                          LilyTensor *dv)
{
    int64_t B = q->shape[0], T = q->shape[1], D = q->shape[2], S = k->shape[1], Dv = v->shape[2];
    KTRY(lily_cuda_attention_backward(hnd(ctx), B, T, S, D, Dv, cf(q), cf(k), cf(v), scale,
                                      cf(dout), mf(dq), mf(dk), mf(dv)),
         "attention_backward", q, k);
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* normalisation                                                                             */
/* ---------------------------------------------------------------------------------------- */

static LilyStatus cuda_group_norm(LilyContext *ctx, const LilyTensor *x, const LilyTensor *gamma,
                                  const LilyTensor *beta, int groups, float eps, int silu,
                                  LilyTensor *y)
{
    if (numel(x) == 0) return LILY_OK;
    int64_t N = x->shape[0], C = x->shape[1], S = inner_of(x);
    KTRY(lily_cuda_group_norm_forward(hnd(ctx), N, C, S, groups, cf(x), cf(gamma), cf(beta), eps,
                                      silu, mf(y)),
         "group_norm", x, gamma);
    return LILY_OK;
}

static LilyStatus cuda_group_norm_backward(LilyContext *ctx, const LilyTensor *x,
                                           const LilyTensor *gamma, const LilyTensor *beta,
                                           int groups, float eps, int silu, const LilyTensor *dy,
                                           LilyTensor *dx, LilyTensor *dgamma, LilyTensor *dbeta)
{
    if (numel(x) == 0) return LILY_OK;
    int64_t N = x->shape[0], C = x->shape[1], S = inner_of(x);
    KTRY(lily_cuda_group_norm_backward(hnd(ctx), N, C, S, groups, cf(x), cf(gamma), cf(beta), eps,
                                       silu, cf(dy), mf(dx), mf(dgamma), mf(dbeta)),
         "group_norm_backward", x, gamma);
    return LILY_OK;
}

static LilyStatus cuda_layer_norm(LilyContext *ctx, const LilyTensor *x, const LilyTensor *gamma,
                                  const LilyTensor *beta, float eps, LilyTensor *y)
{
    if (numel(x) == 0) return LILY_OK;
    KTRY(lily_cuda_layer_norm_forward(hnd(ctx), rows(x), last(x), cf(x), cf(gamma), cf(beta), eps,
                                      mf(y)),
         "layer_norm", x, gamma);
    return LILY_OK;
}

static LilyStatus cuda_layer_norm_backward(LilyContext *ctx, const LilyTensor *x,
                                           const LilyTensor *gamma, float eps,
                                           const LilyTensor *dy, LilyTensor *dx,
                                           LilyTensor *dgamma, LilyTensor *dbeta)
{
    if (numel(x) == 0) return LILY_OK;
    KTRY(lily_cuda_layer_norm_backward(hnd(ctx), rows(x), last(x), cf(x), cf(gamma), eps, cf(dy),
                                       mf(dx), mf(dgamma), mf(dbeta)),
         "layer_norm_backward", x, gamma);
    return LILY_OK;
}

static LilyStatus cuda_softmax(LilyContext *ctx, const LilyTensor *x, float scale, LilyTensor *y)
{
    if (numel(x) == 0) return LILY_OK;
    KTRY(lily_cuda_softmax_forward(hnd(ctx), rows(x), last(x), cf(x), scale, mf(y)), "softmax", x, y);
    return LILY_OK;
}

static LilyStatus cuda_softmax_backward(LilyContext *ctx, const LilyTensor *y, float scale,
                                        const LilyTensor *dy, LilyTensor *dx)
{
    if (numel(y) == 0) return LILY_OK;
    KTRY(lily_cuda_softmax_backward(hnd(ctx), rows(y), last(y), cf(y), scale, cf(dy), mf(dx)),
         "softmax_backward", y, dy);
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* elementwise                                                                               */
/* ---------------------------------------------------------------------------------------- */

static LilyStatus cuda_unary(LilyContext *ctx, LilyUnaryOp op, float alpha, const LilyTensor *x,
                             LilyTensor *y)
{
    KTRY(lily_cuda_unary_forward(hnd(ctx), lily_kargs_act(op), alpha, cf(x), mf(y), numel(x)),
         "unary", x, y);
    return LILY_OK;
}

static LilyStatus cuda_unary_backward(LilyContext *ctx, LilyUnaryOp op, float alpha,
                                      const LilyTensor *x, const LilyTensor *dy, LilyTensor *dx)
{
    KTRY(lily_cuda_unary_backward(hnd(ctx), lily_kargs_act(op), alpha, cf(x), cf(dy), mf(dx),
                                  numel(x)),
         "unary_backward", x, dy);
    return LILY_OK;
}

static LilyStatus cuda_binary(LilyContext *ctx, LilyBinaryOp op, const LilyTensor *a,
                              const LilyTensor *b, LilyTensor *y)
{
    int64_t na = numel(a), nb = numel(b);
    if (na == 0) return LILY_OK;
    int k = op == LILY_BINARY_SUB ? LILY_CUDA_BIN_SUB
                                  : (op == LILY_BINARY_MUL ? LILY_CUDA_BIN_MUL : LILY_CUDA_BIN_ADD);
    KTRY(lily_cuda_binary(hnd(ctx), k, cf(a), cf(b), mf(y), nb == na ? na : nb, nb == na ? 1 : na / nb),
         "binary", a, b);
    return LILY_OK;
}

static LilyStatus cuda_axpby(LilyContext *ctx, float alpha, const LilyTensor *x, float beta,
                             LilyTensor *y)
{
    KTRY(lily_cuda_axpby(hnd(ctx), alpha, cf(x), beta, mf(y), numel(x)), "axpby", x, y);
    return LILY_OK;
}

static LilyStatus cuda_geglu(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    KTRY(lily_cuda_geglu_forward(hnd(ctx), rows(y), last(y), cf(x), mf(y)), "geglu", x, y);
    return LILY_OK;
}

static LilyStatus cuda_geglu_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *dy,
                                      LilyTensor *dx)
{
    KTRY(lily_cuda_geglu_backward(hnd(ctx), rows(dy), last(dy), cf(x), cf(dy), mf(dx)),
         "geglu_backward", x, dy);
    return LILY_OK;
}

static LilyStatus cuda_fill(LilyContext *ctx, LilyTensor *y, float value)
{
    KTRY(lily_cuda_fill(hnd(ctx), mf(y), value, numel(y)), "fill", y, NULL);
    return LILY_OK;
}

static LilyStatus cuda_cast(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    KTRY(lily_cuda_cast(hnd(ctx), x->data, lily_kargs_dtype(x->dtype), y->data,
                        lily_kargs_dtype(y->dtype), numel(x)),
         "cast", x, y);
    return LILY_OK;
}

static LilyStatus cuda_reduce(LilyContext *ctx, const LilyTensor *x, double *sum, double *sum_sq,
                              double *max_abs)
{
    KTRY(lily_cuda_reduce(hnd(ctx), cf(x), numel(x), sum, sum_sq, max_abs), "reduce", x, NULL);
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* layout                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static LilyStatus cuda_upsample2x(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    KTRY(lily_cuda_upsample2x_forward(hnd(ctx), x->shape[0] * x->shape[1], x->shape[2], x->shape[3],
                                      cf(x), mf(y)),
         "upsample2x", x, y);
    return LILY_OK;
}

static LilyStatus cuda_upsample2x_backward(LilyContext *ctx, const LilyTensor *dy, LilyTensor *dx)
{
    KTRY(lily_cuda_upsample2x_backward(hnd(ctx), dx->shape[0] * dx->shape[1], dx->shape[2],
                                       dx->shape[3], cf(dy), mf(dx)),
         "upsample2x_backward", dy, dx);
    return LILY_OK;
}

static LilyStatus cuda_concat(LilyContext *ctx, const LilyTensor *a, const LilyTensor *b,
                              LilyTensor *y)
{
    KTRY(lily_cuda_concat(hnd(ctx), y->shape[0], a->shape[1], b->shape[1], inner_of(y), cf(a), cf(b),
                          mf(y)),
         "concat", a, b);
    return LILY_OK;
}

static LilyStatus cuda_split(LilyContext *ctx, const LilyTensor *y, LilyTensor *a, LilyTensor *b)
{
    int64_t C = y->shape[1];
    int64_t ca = a ? a->shape[1] : C - b->shape[1];
    KTRY(lily_cuda_split(hnd(ctx), y->shape[0], ca, C - ca, inner_of(y), cf(y), mf(a), mf(b)), "split",
         y, a ? a : b);
    return LILY_OK;
}

static LilyStatus cuda_transpose(LilyContext *ctx, const LilyTensor *x, int64_t P, int64_t A,
                                 int64_t B, int64_t Q, LilyTensor *y)
{
    KTRY(lily_cuda_transpose(hnd(ctx), P, A, B, Q, cf(x), mf(y)), "transpose", x, y);
    return LILY_OK;
}

static LilyStatus cuda_copy_rows(LilyContext *ctx, const LilyTensor *src, int64_t src_row0,
                                 LilyTensor *dst, int64_t dst_row0, int64_t A, int64_t nrows,
                                 int64_t B)
{
    KTRY(lily_cuda_copy_rows(hnd(ctx), cf(src), numel(src) / (A * B), src_row0, mf(dst),
                             numel(dst) / (A * B), dst_row0, A, nrows, B),
         "copy_rows", src, dst);
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* randomness and sampler                                                                    */
/* ---------------------------------------------------------------------------------------- */

static LilyStatus cuda_randn(LilyContext *ctx, LilyTensor *y, int64_t A, int64_t B, int64_t row0,
                             uint64_t seed, uint64_t stream)
{
    KTRY(lily_cuda_randn(hnd(ctx), mf(y), A, numel(y) / (A * B), B, row0, seed, stream), "randn", y,
         NULL);
    return LILY_OK;
}

static LilyStatus cuda_ddim_step(LilyContext *ctx, LilyTensor *x, const LilyTensor *vc,
                                 const LilyTensor *vu, const LilyTensor *noise, float guidance,
                                 double alpha, double alpha_prev, double sigma, LilyTensor *x0_out)
{
    KTRY(lily_cuda_ddim_step(hnd(ctx), mf(x), cf(vc), cf(vu), cf(noise), guidance, alpha, alpha_prev,
                             sigma, mf(x0_out), numel(x)),
         "ddim_step", x, vc);
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* spectral                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static LilyStatus cuda_stft(LilyContext *ctx, const LilyTensor *x, const LilyTensor *window,
                            int n_fft, int hop, LilyTensor *y)
{
    KTRY(lily_cuda_stft(hnd(ctx), cf(x), cf(window), x->shape[0], x->shape[1], n_fft, hop, mf(y)),
         "stft", x, y);
    return LILY_OK;
}

static LilyStatus cuda_istft(LilyContext *ctx, const LilyTensor *spec, const LilyTensor *window,
                             int n_fft, int hop, LilyTensor *y)
{
    KTRY(lily_cuda_istft(hnd(ctx), cf(spec), cf(window), spec->shape[0], spec->shape[1], n_fft, hop,
                         mf(y)),
         "istft", spec, y);
    return LILY_OK;
}

static LilyStatus cuda_stft_backward(LilyContext *ctx, const LilyTensor *window, int n_fft, int hop,
                                     const LilyTensor *dy, LilyTensor *dx)
{
    KTRY(lily_cuda_stft_backward(hnd(ctx), cf(window), dy->shape[0], dy->shape[1], dx->shape[1], n_fft,
                                 hop, cf(dy), mf(dx)),
         "stft_backward", dy, dx);
    return LILY_OK;
}

static const LilyBackendOps cuda_ops = {
    .name = "cuda",
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .synchronize = cuda_sync,
    .mem_info = cuda_mem_info,
    .destroy = cuda_destroy,
    .conv2d = cuda_conv2d,
    .conv2d_backward = cuda_conv2d_backward,
    .conv1d = cuda_conv1d,
    .conv1d_backward = cuda_conv1d_backward,
    .conv_transpose1d = cuda_conv_transpose1d,
    .conv_transpose1d_backward = cuda_conv_transpose1d_backward,
    .linear = cuda_linear,
    .linear_backward = cuda_linear_backward,
    .matmul = cuda_matmul,
    .attention = cuda_attention,
    .attention_backward = cuda_attention_backward,
    .group_norm = cuda_group_norm,
    .group_norm_backward = cuda_group_norm_backward,
    .layer_norm = cuda_layer_norm,
    .layer_norm_backward = cuda_layer_norm_backward,
    .softmax = cuda_softmax,
    .softmax_backward = cuda_softmax_backward,
    .unary = cuda_unary,
    .unary_backward = cuda_unary_backward,
    .binary = cuda_binary,
    .axpby = cuda_axpby,
    .geglu = cuda_geglu,
    .geglu_backward = cuda_geglu_backward,
    .fill = cuda_fill,
    .cast = cuda_cast,
    .reduce = cuda_reduce,
    .upsample2x = cuda_upsample2x,
    .upsample2x_backward = cuda_upsample2x_backward,
    .concat = cuda_concat,
    .split = cuda_split,
    .transpose = cuda_transpose,
    .copy_rows = cuda_copy_rows,
    .randn = cuda_randn,
    .ddim_step = cuda_ddim_step,
    .stft = cuda_stft,
    .istft = cuda_istft,
    .stft_backward = cuda_stft_backward,
};

LilyStatus lily_backend_cuda_new(LilyContext *ctx, int device_index, LilyBackend **out)
{
    char why[512];
    *out = NULL;
    LilyCudaHandle *h = NULL;
    int rc = lily_cuda_handle_new(device_index, &h, why, sizeof why);
    if (rc != LILY_CUDA_OK)
        return lily_error(ctx, rc == LILY_CUDA_ERR_NO_MEMORY ? LILY_ERR_NO_MEMORY : LILY_ERR_DEVICE,
                          "device cuda:%d: %s; use device=cpu", device_index, why);
    LilyBackend *be = calloc(1, sizeof *be);
    CudaImpl *im = calloc(1, sizeof *im);
    if (!be || !im) {
        free(be);
        free(im);
        lily_cuda_handle_free(h);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory creating the CUDA backend");
    }
    const char *det = getenv("LILY_CUDA_DETERMINISTIC");
    lily_cuda_set_deterministic(h, det && *det && strcmp(det, "0") != 0);
    im->h = h;
    be->impl = im;
    be->ops = &cuda_ops;
    be->kind = LILY_DEVICE_CUDA;
    be->index = device_index;
    char desc[256];
    lily_cuda_describe(device_index, desc, sizeof desc);
    lily_log(ctx, LILY_LOG_INFO, "cuda:%d: %s%s", device_index, desc,
             lily_cuda_deterministic(h) ? " (deterministic algorithms)" : "");
    *out = be;
    return LILY_OK;
}
