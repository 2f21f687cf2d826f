/* backend/backend-cpu.c - the CPU backend: host memory and the op table on kernels/cpu.
 *
 * Each op translates tensors into the raw pointers, shape integers and handle of a
 * kernels/cpu function and turns the kernel's return code into a context error naming the op
 * and the shapes. The dispatchers in ops.c have already checked shapes, dtypes and devices.
 * The backend's impl holds the kernels' handle (oneDNN engine, primitive and weight caches,
 * scratch), the STFT ops' FFTW plans and buffers, and the thread count, one per context. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/kernel-args.h"
#include "core/context.h"
#include "cpu/activation.h"  /* unary, geglu */
#include "cpu/attention.h"   /* attention, softmax */
#include "cpu/conv.h"        /* conv1d/2d, conv_transpose1d */
#include "cpu/elementwise.h" /* binary, axpby, fill, cast, reduce */
#include "cpu/layout.h"      /* upsample2x, concat, split, transpose, copy_rows */
#include "cpu/matmul.h"      /* linear, matmul */
#include "cpu/norm.h"        /* group_norm, layer_norm */
#include "cpu/onednn.h"      /* LilyCpuDnn */
#include "cpu/random.h"      /* randn */
#include "cpu/sampler.h"     /* ddim_step */
#include "cpu/stft.h"        /* stft, istft, stft_backward (FFTW3f) */

typedef struct CpuImpl {
    LilyCpuDnn *dnn;
    LilyCpuFft *fft; /* FFTW plans and buffers of the STFT ops */
    int n_threads;
} CpuImpl;

static LilyStatus cpu_alloc(LilyBackend *be, size_t bytes, void **ptr)
{
    (void)be;
    *ptr = NULL;
    size_t sz = (bytes + 255) / 256 * 256;
    if (posix_memalign(ptr, 256, sz ? sz : 256) != 0) {
        *ptr = NULL;
        return LILY_ERR_NO_MEMORY;
    }
    return LILY_OK;
}

static void cpu_free(LilyBackend *be, void *ptr)
{
    (void)be;
    free(ptr);
}

static LilyStatus cpu_memcpy(LilyContext *ctx, void *dst, const void *src, size_t bytes)
{
    (void)ctx;
    if (bytes) memmove(dst, src, bytes);
    return LILY_OK;
}

static LilyStatus cpu_sync(LilyContext *ctx)
{
    (void)ctx;
    return LILY_OK;
}

static LilyStatus cpu_mem_info(LilyBackend *be, size_t *free_bytes, size_t *total_bytes)
{
    (void)be;
    long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES);
    long psz = sysconf(_SC_PAGESIZE);
    *total_bytes = pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : 0;
    *free_bytes = avail > 0 && psz > 0 ? (size_t)avail * (size_t)psz : 0;
    return LILY_OK;
}

static void cpu_destroy(LilyBackend *be)
{
    CpuImpl *im = be->impl;
    if (im) {
        lily_cpu_dnn_free(im->dnn);
        lily_cpu_fft_free(im->fft);
        free(im);
    }
    free(be);
}

/* ---------------------------------------------------------------------------------------- */
/* ops                                                                                       */
/* ---------------------------------------------------------------------------------------- */

static CpuImpl *impl_of(LilyContext *ctx)
{
    return ctx->backend->impl;
}

static int nthreads(LilyContext *ctx)
{
    return impl_of(ctx)->n_threads;
}

/* A kernel's failure as a context error naming the op and two of its tensors (with the oneDNN
 * handle's message when the kernel is one that records it). */
static LilyStatus kfail_why(LilyContext *ctx, int rc, const char *op, const LilyTensor *a,
                            const LilyTensor *b, const char *why)
{
    char sa[LILY_KARGS_SHAPE_LEN], sb[LILY_KARGS_SHAPE_LEN];
    if (rc == LILY_CPU_ERR_NO_MEMORY)
        return lily_error(ctx, LILY_ERR_NO_MEMORY,
                          "cpu %s (%s, %s): out of host memory%s%s; try shorter chunks", op,
                          lily_kargs_shape(a, sa), lily_kargs_shape(b, sb), *why ? ": " : "",
                          why);
    return lily_error(ctx, rc == LILY_CPU_ERR_UNSUPPORTED ? LILY_ERR_UNSUPPORTED : LILY_ERR_INTERNAL,
                      "cpu %s (%s, %s) failed: %s", op, lily_kargs_shape(a, sa),
                      lily_kargs_shape(b, sb), *why ? why : "unknown kernel error");
}

static LilyStatus kfail(LilyContext *ctx, int rc, const char *op, const LilyTensor *a,
                        const LilyTensor *b)
{
    return kfail_why(ctx, rc, op, a, b, lily_cpu_dnn_message(impl_of(ctx)->dnn));
}

/* For kernels that use the oneDNN handle (conv, linear, matmul, attention). */
#define KTRY(expr, op, a, b)                                                                   \
    do {                                                                                       \
        int kt_rc_ = (expr);                                                                   \
        if (kt_rc_ != LILY_CPU_OK) return kfail(ctx, kt_rc_, op, a, b);                        \
    } while (0)

/* For the plain loops (norms), which fail only for lack of memory and record nothing. */
#define KTRY_LOOP(expr, op, a, b)                                                              \
    do {                                                                                       \
        int kt_rc_ = (expr);                                                                   \
        if (kt_rc_ != LILY_CPU_OK) return kfail_why(ctx, kt_rc_, op, a, b, "");                \
    } while (0)

static LilyStatus conv_fwd(LilyContext *ctx, const char *op, LilyConvShape s, const LilyTensor *x,
                           const LilyTensor *w, const LilyTensor *b, LilyTensor *y)
{
    if (lily_kargs_conv_empty(&s)) return LILY_OK;
    KTRY(lily_cpu_conv_forward(impl_of(ctx)->dnn, &s, cf(x), w->data, lily_kargs_dtype(w->dtype),
                               w->stamp, cf(b), mf(y)),
         op, x, w);
    return LILY_OK;
}

static LilyStatus conv_bwd(LilyContext *ctx, const char *op, LilyConvShape s, const LilyTensor *x,
                           const LilyTensor *w, const LilyTensor *dy, LilyTensor *dx, LilyTensor *dw,
                           LilyTensor *db)
{
    if (lily_kargs_conv_empty(&s)) {
        if (dx) lily_cpu_fill(nthreads(ctx), mf(dx), 0.0f, numel(dx));
        return LILY_OK;
    }
    KTRY(lily_cpu_conv_backward(impl_of(ctx)->dnn, &s, cf(x), cf(w), cf(dy), mf(dx), mf(dw), mf(db)), op, x, w);
    return LILY_OK;
}

static LilyStatus cpu_conv2d(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                             const LilyTensor *b, const LilyConvParams *p, LilyTensor *y)
{
    return conv_fwd(ctx, "conv2d", lily_kargs_conv(x, w, p, y, 2), x, w, b, y);
}

static LilyStatus cpu_conv2d_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                      const LilyConvParams *p, const LilyTensor *dy, LilyTensor *dx,
                                      LilyTensor *dw, LilyTensor *db)
{
    return conv_bwd(ctx, "conv2d_backward", lily_kargs_conv(x, w, p, dy, 2), x, w, dy, dx, dw, db);
}

static LilyStatus cpu_conv1d(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                             const LilyTensor *b, const LilyConvParams *p, LilyTensor *y)
{
    return conv_fwd(ctx, "conv1d", lily_kargs_conv(x, w, p, y, 1), x, w, b, y);
}

static LilyStatus cpu_conv1d_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                      const LilyConvParams *p, const LilyTensor *dy, LilyTensor *dx,
                                      LilyTensor *dw, LilyTensor *db)
{
    return conv_bwd(ctx, "conv1d_backward", lily_kargs_conv(x, w, p, dy, 1), x, w, dy, dx, dw, db);
}

static LilyStatus cpu_conv_transpose1d(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                       const LilyTensor *b, int stride, int pad, LilyTensor *y)
{
    return conv_fwd(ctx, "conv_transpose1d", lily_kargs_convt(x, w, stride, pad, y), x, w, b, y);
}

static LilyStatus cpu_conv_transpose1d_backward(LilyContext *ctx, const LilyTensor *x,
                                                const LilyTensor *w, int stride, int pad,
                                                const LilyTensor *dy, LilyTensor *dx,
                                                LilyTensor *dw, LilyTensor *db)
{
    return conv_bwd(ctx, "conv_transpose1d_backward", lily_kargs_convt(x, w, stride, pad, dy), x, w,
                    dy, dx, dw, db);
}

static LilyStatus cpu_linear(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                             const LilyTensor *b, LilyTensor *y)
{
    int64_t M = rows(x), K = last(x), N = w->shape[0];
    if (M == 0 || N == 0) return LILY_OK;
    if (K == 0) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) mf(y)[i * N + j] = b ? cf(b)[j] : 0.0f;
        return LILY_OK;
    }
    KTRY(lily_cpu_linear_forward(impl_of(ctx)->dnn, M, K, N, cf(x), w->data,
                                 lily_kargs_dtype(w->dtype), w->stamp, cf(b), mf(y)),
         "linear", x, w);
    return LILY_OK;
}

static LilyStatus cpu_linear_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                      const LilyTensor *dy, LilyTensor *dx, LilyTensor *dw,
                                      LilyTensor *db)
{
    int64_t M = rows(x), K = last(x), N = w->shape[0];
    KTRY(lily_cpu_linear_backward(impl_of(ctx)->dnn, M, K, N, cf(x), cf(w), cf(dy), mf(dx), mf(dw), mf(db)),
         "linear_backward", x, w);
    return LILY_OK;
}

static LilyStatus cpu_matmul(LilyContext *ctx, const LilyTensor *a, bool trans_a, const LilyTensor *b,
                             bool trans_b, float alpha, float beta, LilyTensor *c)
{
    int64_t B = a->shape[0];
    int64_t M = trans_a ? a->shape[2] : a->shape[1];
    int64_t K = trans_a ? a->shape[1] : a->shape[2];
    int64_t N = trans_b ? b->shape[1] : b->shape[2];
    KTRY(lily_cpu_matmul(impl_of(ctx)->dnn, B, M, N, K, cf(a), trans_a, cf(b), trans_b, alpha, beta, mf(c)),
         "matmul", a, b);
    return LILY_OK;
}

static LilyStatus cpu_attention(LilyContext *ctx, const LilyTensor *q, const LilyTensor *k,
                                const LilyTensor *v, float scale, LilyTensor *out)
{
    int64_t B = q->shape[0], T = q->shape[1], D = q->shape[2], S = k->shape[1], Dv = v->shape[2];
    if (B == 0 || T == 0 || Dv == 0) return LILY_OK;
    if (S == 0) { /* nothing to attend to: a zero output rather than 0/0 */
        lily_cpu_fill(nthreads(ctx), mf(out), 0.0f, numel(out));
        return LILY_OK;
    }
    KTRY(lily_cpu_attention_forward(impl_of(ctx)->dnn, B, T, S, D, Dv, cf(q), cf(k), cf(v), scale, mf(out)),
         "attention", q, k);
    return LILY_OK;
}

static LilyStatus cpu_attention_backward(LilyContext *ctx, const LilyTensor *q, const LilyTensor *k,
                                         const LilyTensor *v, float scale, const LilyTensor *dout,
                                         LilyTensor *dq, LilyTensor *dk, LilyTensor *dv)
{
    int64_t B = q->shape[0], T = q->shape[1], D = q->shape[2], S = k->shape[1], Dv = v->shape[2];
    if (B == 0 || T == 0 || S == 0) {
        if (dq) lily_cpu_fill(nthreads(ctx), mf(dq), 0.0f, numel(dq));
        if (dk) lily_cpu_fill(nthreads(ctx), mf(dk), 0.0f, numel(dk));
        if (dv) lily_cpu_fill(nthreads(ctx), mf(dv), 0.0f, numel(dv));
        return LILY_OK;
    }
    KTRY(lily_cpu_attention_backward(impl_of(ctx)->dnn, B, T, S, D, Dv, cf(q), cf(k), cf(v), scale, cf(dout),
                                     mf(dq), mf(dk), mf(dv)),
         "attention_backward", q, k);
    return LILY_OK;
}

static LilyStatus cpu_group_norm(LilyContext *ctx, const LilyTensor *x, const LilyTensor *gamma,
                                 const LilyTensor *beta, int groups, float eps, int silu,
                                 LilyTensor *y)
{
    if (numel(x) == 0) return LILY_OK;
    int64_t N = x->shape[0], C = x->shape[1], S = inner_of(x);
    KTRY_LOOP(lily_cpu_group_norm_forward(nthreads(ctx), N, C, S, groups, cf(x), cf(gamma), cf(beta), eps, silu,
                                     mf(y)),
         "group_norm", x, gamma);
    return LILY_OK;
}

static LilyStatus cpu_group_norm_backward(LilyContext *ctx, const LilyTensor *x,
                                          const LilyTensor *gamma, const LilyTensor *beta,
                                          int groups, float eps, int silu, const LilyTensor *dy,
                                          LilyTensor *dx, LilyTensor *dgamma, LilyTensor *dbeta)
{
    if (numel(x) == 0) return LILY_OK;
    int64_t N = x->shape[0], C = x->shape[1], S = inner_of(x);
    KTRY_LOOP(lily_cpu_group_norm_backward(nthreads(ctx), N, C, S, groups, cf(x), cf(gamma), cf(beta), eps, silu,
                                      cf(dy), mf(dx), mf(dgamma), mf(dbeta)),
         "group_norm_backward", x, gamma);
    return LILY_OK;
}

static LilyStatus cpu_layer_norm(LilyContext *ctx, const LilyTensor *x, const LilyTensor *gamma,
                                 const LilyTensor *beta, float eps, LilyTensor *y)
{
    if (numel(x) == 0) return LILY_OK;
    KTRY_LOOP(lily_cpu_layer_norm_forward(nthreads(ctx), rows(x), last(x), cf(x), cf(gamma), cf(beta), eps, mf(y)),
         "layer_norm", x, gamma);
    return LILY_OK;
}

static LilyStatus cpu_layer_norm_backward(LilyContext *ctx, const LilyTensor *x,
                                          const LilyTensor *gamma, float eps, const LilyTensor *dy,
                                          LilyTensor *dx, LilyTensor *dgamma, LilyTensor *dbeta)
{
    if (numel(x) == 0) return LILY_OK;
    KTRY_LOOP(lily_cpu_layer_norm_backward(nthreads(ctx), rows(x), last(x), cf(x), cf(gamma), eps, cf(dy), mf(dx),
                                      mf(dgamma), mf(dbeta)),
         "layer_norm_backward", x, gamma);
    return LILY_OK;
}

static LilyStatus cpu_softmax(LilyContext *ctx, const LilyTensor *x, float scale, LilyTensor *y)
{
    if (numel(x) == 0) return LILY_OK;
    lily_cpu_softmax_forward(nthreads(ctx), rows(x), last(x), cf(x), scale, mf(y));
    return LILY_OK;
}

static LilyStatus cpu_softmax_backward(LilyContext *ctx, const LilyTensor *y, float scale,
                                       const LilyTensor *dy, LilyTensor *dx)
{
    if (numel(y) == 0) return LILY_OK;
    lily_cpu_softmax_backward(nthreads(ctx), rows(y), last(y), cf(y), scale, cf(dy), mf(dx));
    return LILY_OK;
}

static LilyStatus cpu_unary(LilyContext *ctx, LilyUnaryOp op, float alpha, const LilyTensor *x,
                            LilyTensor *y)
{
    lily_cpu_unary_forward(nthreads(ctx), lily_kargs_act(op), alpha, cf(x), mf(y), numel(x));
    return LILY_OK;
}

static LilyStatus cpu_unary_backward(LilyContext *ctx, LilyUnaryOp op, float alpha,
                                     const LilyTensor *x, const LilyTensor *dy, LilyTensor *dx)
{
    lily_cpu_unary_backward(nthreads(ctx), lily_kargs_act(op), alpha, cf(x), cf(dy), mf(dx),
                            numel(x));
    return LILY_OK;
}

static LilyStatus cpu_binary(LilyContext *ctx, LilyBinaryOp op, const LilyTensor *a,
                             const LilyTensor *b, LilyTensor *y)
{
    int64_t na = numel(a), nb = numel(b);
    if (na == 0) return LILY_OK;
    LilyBinOp k = op == LILY_BINARY_SUB ? LILY_BIN_SUB : (op == LILY_BINARY_MUL ? LILY_BIN_MUL : LILY_BIN_ADD);
    if (nb == na)
        lily_cpu_binary(nthreads(ctx), k, cf(a), cf(b), mf(y), na, 1);
    else
        lily_cpu_binary(nthreads(ctx), k, cf(a), cf(b), mf(y), nb, na / nb);
    return LILY_OK;
}

static LilyStatus cpu_axpby(LilyContext *ctx, float alpha, const LilyTensor *x, float beta,
                            LilyTensor *y)
{
    lily_cpu_axpby(nthreads(ctx), alpha, cf(x), beta, mf(y), numel(x));
    return LILY_OK;
}

static LilyStatus cpu_geglu(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    lily_cpu_geglu_forward(nthreads(ctx), rows(y), last(y), cf(x), mf(y));
    return LILY_OK;
}

static LilyStatus cpu_geglu_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *dy,
                                     LilyTensor *dx)
{
    lily_cpu_geglu_backward(nthreads(ctx), rows(dy), last(dy), cf(x), cf(dy), mf(dx));
    return LILY_OK;
}

static LilyStatus cpu_fill(LilyContext *ctx, LilyTensor *y, float value)
{
    lily_cpu_fill(nthreads(ctx), mf(y), value, numel(y));
    return LILY_OK;
}

static LilyStatus cpu_cast(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    lily_cpu_cast(nthreads(ctx), x->data, lily_kargs_dtype(x->dtype), y->data,
                  lily_kargs_dtype(y->dtype), numel(x));
    return LILY_OK;
}

static LilyStatus cpu_reduce(LilyContext *ctx, const LilyTensor *x, double *sum, double *sum_sq,
                             double *max_abs)
{
    lily_cpu_reduce(nthreads(ctx), cf(x), numel(x), sum, sum_sq, max_abs);
    return LILY_OK;
}

static LilyStatus cpu_upsample2x(LilyContext *ctx, const LilyTensor *x, LilyTensor *y)
{
    lily_cpu_upsample2x_forward(nthreads(ctx), x->shape[0] * x->shape[1], x->shape[2], x->shape[3], cf(x),
                                mf(y));
    return LILY_OK;
}

static LilyStatus cpu_upsample2x_backward(LilyContext *ctx, const LilyTensor *dy, LilyTensor *dx)
{
    lily_cpu_upsample2x_backward(nthreads(ctx), dx->shape[0] * dx->shape[1], dx->shape[2], dx->shape[3],
                                 cf(dy), mf(dx));
    return LILY_OK;
}

static LilyStatus cpu_concat(LilyContext *ctx, const LilyTensor *a, const LilyTensor *b,
                             LilyTensor *y)
{
    lily_cpu_concat(nthreads(ctx), y->shape[0], a->shape[1], b->shape[1], inner_of(y), cf(a), cf(b), mf(y));
    return LILY_OK;
}

static LilyStatus cpu_split(LilyContext *ctx, const LilyTensor *y, LilyTensor *a, LilyTensor *b)
{
    int64_t C = y->shape[1];
    int64_t ca = a ? a->shape[1] : C - b->shape[1];
    lily_cpu_split(nthreads(ctx), y->shape[0], ca, C - ca, inner_of(y), cf(y), mf(a), mf(b));
    return LILY_OK;
}

static LilyStatus cpu_transpose(LilyContext *ctx, const LilyTensor *x, int64_t P, int64_t A,
                                int64_t B, int64_t Q, LilyTensor *y)
{
    lily_cpu_transpose(nthreads(ctx), P, A, B, Q, cf(x), mf(y));
    return LILY_OK;
}

static LilyStatus cpu_copy_rows(LilyContext *ctx, const LilyTensor *src, int64_t src_row0,
                                LilyTensor *dst, int64_t dst_row0, int64_t A, int64_t nrows,
                                int64_t B)
{
    lily_cpu_copy_rows(nthreads(ctx), cf(src), numel(src) / (A * B), src_row0, mf(dst), numel(dst) / (A * B),
                       dst_row0, A, nrows, B);
    return LILY_OK;
}

static LilyStatus cpu_randn(LilyContext *ctx, LilyTensor *y, int64_t A, int64_t B, int64_t row0,
                            uint64_t seed, uint64_t stream)
{
    lily_cpu_randn(nthreads(ctx), mf(y), A, numel(y) / (A * B), B, row0, seed, stream);
    return LILY_OK;
}

static LilyStatus cpu_ddim_step(LilyContext *ctx, LilyTensor *x, const LilyTensor *vc,
                                const LilyTensor *vu, const LilyTensor *noise, float guidance,
                                double alpha, double alpha_prev, double sigma, LilyTensor *x0_out)
{
    lily_cpu_ddim_step(nthreads(ctx), mf(x), cf(vc), cf(vu), cf(noise), guidance, alpha, alpha_prev, sigma,
                       mf(x0_out), numel(x));
    return LILY_OK;
}

/* The FFT kernels keep their own message (FFTW plans, buffers). */
#define KTRY_FFT(expr, op, a, b)                                                               \
    do {                                                                                       \
        int kt_rc_ = (expr);                                                                   \
        if (kt_rc_ != LILY_CPU_OK)                                                             \
            return kfail_why(ctx, kt_rc_, op, a, b, lily_cpu_fft_message(impl_of(ctx)->fft));  \
    } while (0)

static LilyStatus cpu_stft(LilyContext *ctx, const LilyTensor *x, const LilyTensor *window,
                           int n_fft, int hop, LilyTensor *y)
{
    KTRY_FFT(lily_cpu_stft(impl_of(ctx)->fft, nthreads(ctx), cf(x), cf(window), x->shape[0], x->shape[1],
                           n_fft, hop, mf(y)),
             "stft", x, y);
    return LILY_OK;
}

static LilyStatus cpu_istft(LilyContext *ctx, const LilyTensor *spec, const LilyTensor *window,
                            int n_fft, int hop, LilyTensor *y)
{
    KTRY_FFT(lily_cpu_istft(impl_of(ctx)->fft, nthreads(ctx), cf(spec), cf(window), spec->shape[0],
                            spec->shape[1], n_fft, hop, mf(y)),
             "istft", spec, y);
    return LILY_OK;
}

static LilyStatus cpu_stft_backward(LilyContext *ctx, const LilyTensor *window, int n_fft, int hop,
                                    const LilyTensor *dy, LilyTensor *dx)
{
    KTRY_FFT(lily_cpu_stft_backward(impl_of(ctx)->fft, nthreads(ctx), cf(window), dy->shape[0], dy->shape[1],
                                    dx->shape[1], n_fft, hop, cf(dy), mf(dx)),
             "stft_backward", dy, dx);
    return LILY_OK;
}

static const LilyBackendOps cpu_ops = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_memcpy,
    .download = cpu_memcpy,
    .copy = cpu_memcpy,
    .synchronize = cpu_sync,
    .mem_info = cpu_mem_info,
    .destroy = cpu_destroy,
    .conv2d = cpu_conv2d,
    .conv2d_backward = cpu_conv2d_backward,
    .conv1d = cpu_conv1d,
    .conv1d_backward = cpu_conv1d_backward,
    .conv_transpose1d = cpu_conv_transpose1d,
    .conv_transpose1d_backward = cpu_conv_transpose1d_backward,
    .linear = cpu_linear,
    .linear_backward = cpu_linear_backward,
    .matmul = cpu_matmul,
    .attention = cpu_attention,
    .attention_backward = cpu_attention_backward,
    .group_norm = cpu_group_norm,
    .group_norm_backward = cpu_group_norm_backward,
    .layer_norm = cpu_layer_norm,
    .layer_norm_backward = cpu_layer_norm_backward,
    .softmax = cpu_softmax,
    .softmax_backward = cpu_softmax_backward,
    .unary = cpu_unary,
    .unary_backward = cpu_unary_backward,
    .binary = cpu_binary,
    .axpby = cpu_axpby,
    .geglu = cpu_geglu,
    .geglu_backward = cpu_geglu_backward,
    .fill = cpu_fill,
    .cast = cpu_cast,
    .reduce = cpu_reduce,
    .upsample2x = cpu_upsample2x,
    .upsample2x_backward = cpu_upsample2x_backward,
    .concat = cpu_concat,
    .split = cpu_split,
    .transpose = cpu_transpose,
    .copy_rows = cpu_copy_rows,
    .randn = cpu_randn,
    .ddim_step = cpu_ddim_step,
    .stft = cpu_stft,
    .istft = cpu_istft,
    .stft_backward = cpu_stft_backward,
};

LilyStatus lily_backend_cpu_new(LilyContext *ctx, int n_threads, LilyBackend **out)
{
    LilyBackend *be = calloc(1, sizeof *be);
    CpuImpl *im = calloc(1, sizeof *im);
    if (!be || !im) {
        free(be);
        free(im);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory creating the CPU backend");
    }
    if (n_threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = cores > 0 ? (int)cores : 1;
    }
    im->n_threads = n_threads;
    int rc = lily_cpu_dnn_new(n_threads, &im->dnn);
    if (rc != LILY_CPU_OK) {
        free(be);
        free(im);
        return lily_error(ctx, rc == LILY_CPU_ERR_NO_MEMORY ? LILY_ERR_NO_MEMORY : LILY_ERR_DEVICE,
                          "CPU backend: could not create the oneDNN engine (libdnnl %s)",
                          rc == LILY_CPU_ERR_NO_MEMORY ? "ran out of memory" : "failed");
    }
    if (lily_cpu_fft_new(&im->fft) != LILY_CPU_OK) {
        lily_cpu_dnn_free(im->dnn);
        free(be);
        free(im);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory creating the CPU backend");
    }
    be->impl = im;
    be->ops = &cpu_ops;
    be->kind = LILY_DEVICE_CPU;
    be->index = 0;
    *out = be;
    return LILY_OK;
}
