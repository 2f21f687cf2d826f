/* kernels/cuda/conv.cu - convolutions on cuDNN's convolution API (see conv.h).
 *
 * Every op is phrased in terms of one "forward convolution" F with cuDNN's three calls:
 *   conv forward              y  = F(x)                      cudnnConvolutionForward
 *   conv backward             dx = F^T(dy), dw += dF(x, dy)   BackwardData, BackwardFilter
 *   conv_transpose1d forward  y  = F^T(x)                     BackwardData
 *   conv_transpose1d backward dx = F(dy), dw += dF(dy, x)     Forward, BackwardFilter
 * where for the transposed convolution F is the Conv1d from O to C channels whose weight is
 * the ConvTranspose1d weight [C, O, K] itself (PyTorch defines ConvTranspose as that
 * adjoint). 1-D convolutions are 2-D ones with height 1.
 *
 * cuDNN pads symmetrically only; AudioSR's VAE downsampling pads (0, 1, 0, 1), so asymmetric
 * geometry pads the input explicitly (lily_cuda_window) and convolves with zero padding, and
 * its data gradient is computed on the padded shape and cropped.
 *
 * A plan per geometry keeps the descriptors and, per direction, the algorithm cuDNN's
 * heuristics rank first among those that need at most LILY_CONV_WS_CAP of workspace (and,
 * in deterministic mode, are deterministic; for f32, that run with FMA math, never TF32). The
 * workspace is the handle's growable scratch
 * slot, so in steady state no call allocates. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/conv.h"
#include "cuda/elementwise.h"
#include "cuda/handle-impl.cuh"
#include "cuda/layout.h"

#define LILY_CONV_WS_CAP ((size_t)256 << 20)
#define LILY_CONV_MAX_PLANS 1024

typedef struct PlanKey {
    int32_t dt;                     /* LilyKDType of data and filter */
    int32_t pad[2], stride[2], dil[2];
    int64_t n, in_c, in_h, in_w;    /* F's input */
    int64_t out_c, out_h, out_w;    /* F's output */
    int64_t kh, kw;
} PlanKey;

enum { DIR_FWD = 0, DIR_BWD_DATA = 1, DIR_BWD_FILTER = 2 };

typedef struct Plan {
    PlanKey key;
    cudnnTensorDescriptor_t in_d, out_d;
    cudnnFilterDescriptor_t w_d;
    cudnnConvolutionDescriptor_t conv_d;
    bool chosen[3];
    bool chosen_det[3]; /* the deterministic setting the choice was made under */
    int algo[3];
    cudnnMathType_t math[3];
    size_t ws[3];
} Plan;

struct LilyCudaConvCache {
    Plan **plans;
    int n, cap;
};

static void plan_free(Plan *p)
{
    if (!p) return;
    if (p->in_d) (void)cudnnDestroyTensorDescriptor(p->in_d);
    if (p->out_d) (void)cudnnDestroyTensorDescriptor(p->out_d);
    if (p->w_d) (void)cudnnDestroyFilterDescriptor(p->w_d);
    if (p->conv_d) (void)cudnnDestroyConvolutionDescriptor(p->conv_d);
    free(p);
}

void lily_cuda_conv_cache_free(struct LilyCudaConvCache *c)
{
    if (!c) return;
    for (int i = 0; i < c->n; i++) plan_free(c->plans[i]);
    free(c->plans);
    free(c);
}

static cudnnDataType_t dnn_type(int dt)
{
    return dt == LILY_KDT_BF16 ? CUDNN_DATA_BFLOAT16 : (dt == LILY_KDT_F16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT);
}

/* The math type a plan's data type asks for: FMA for f32 (CUDNN_DEFAULT_MATH would permit
 * TF32 on Ampere and later), tensor cores for bf16/f16. */
static cudnnMathType_t base_math(int dt)
{
    return dt == LILY_KDT_F32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
}

static int plan_build(LilyCudaHandle *h, const PlanKey *k, Plan *p)
{
    cudnnDataType_t t = dnn_type(k->dt);
    LILY_CUDNN_CHECK(h, cudnnCreateTensorDescriptor(&p->in_d));
    LILY_CUDNN_CHECK(h, cudnnCreateTensorDescriptor(&p->out_d));
    LILY_CUDNN_CHECK(h, cudnnCreateFilterDescriptor(&p->w_d));
    LILY_CUDNN_CHECK(h, cudnnCreateConvolutionDescriptor(&p->conv_d));
    LILY_CUDNN_CHECK(h, cudnnSetTensor4dDescriptor(p->in_d, CUDNN_TENSOR_NCHW, t, (int)k->n,
                                                   (int)k->in_c, (int)k->in_h, (int)k->in_w));
    LILY_CUDNN_CHECK(h, cudnnSetTensor4dDescriptor(p->out_d, CUDNN_TENSOR_NCHW, t, (int)k->n,
                                                   (int)k->out_c, (int)k->out_h, (int)k->out_w));
    LILY_CUDNN_CHECK(h, cudnnSetFilter4dDescriptor(p->w_d, t, CUDNN_TENSOR_NCHW, (int)k->out_c,
                                                   (int)k->in_c, (int)k->kh, (int)k->kw));
    LILY_CUDNN_CHECK(h, cudnnSetConvolution2dDescriptor(p->conv_d, k->pad[0], k->pad[1],
                                                        k->stride[0], k->stride[1], k->dil[0],
                                                        k->dil[1], CUDNN_CROSS_CORRELATION,
                                                        CUDNN_DATA_FLOAT));
    /* f32 stays f32: CUDNN_DEFAULT_MATH would allow TF32 on Ampere and later */
    LILY_CUDNN_CHECK(h, cudnnSetConvolutionMathType(p->conv_d, base_math(k->dt)));
    int on, oc, oh, ow;
    LILY_CUDNN_CHECK(h, cudnnGetConvolution2dForwardOutputDim(p->conv_d, p->in_d, p->w_d, &on, &oc,
                                                              &oh, &ow));
    if (on != k->n || oc != k->out_c || oh != k->out_h || ow != k->out_w)
        return lily_cuda_fail(h, LILY_CUDA_ERR_UNSUPPORTED,
                              "convolution geometry: cuDNN computes an output of %dx%dx%dx%d, "
                              "the op expects %lldx%lldx%lldx%lld",
                              on, oc, oh, ow, (long long)k->n, (long long)k->out_c,
                              (long long)k->out_h, (long long)k->out_w);
    return LILY_CUDA_OK;
}

static int plan_get(LilyCudaHandle *h, const PlanKey *key, Plan **out)
{
    struct LilyCudaConvCache *c = h->conv;
    if (!c) {
        c = (struct LilyCudaConvCache *)calloc(1, sizeof *c);
        if (!c) return lily_cuda_fail(h, LILY_CUDA_ERR_NO_MEMORY, "out of host memory (conv plans)");
        h->conv = c;
    }
    for (int i = 0; i < c->n; i++)
        if (memcmp(&c->plans[i]->key, key, sizeof *key) == 0) {
            *out = c->plans[i];
            return LILY_CUDA_OK;
        }
    if (c->n == LILY_CONV_MAX_PLANS) {
        /* a workload with this many geometries is not one model; start over */
        for (int i = 0; i < c->n; i++) plan_free(c->plans[i]);
        c->n = 0;
    }
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 32;
        Plan **np = (Plan **)realloc(c->plans, (size_t)cap * sizeof *np);
        if (!np) return lily_cuda_fail(h, LILY_CUDA_ERR_NO_MEMORY, "out of host memory (conv plans)");
        c->plans = np;
        c->cap = cap;
    }
    Plan *p = (Plan *)calloc(1, sizeof *p);
    if (!p) return lily_cuda_fail(h, LILY_CUDA_ERR_NO_MEMORY, "out of host memory (conv plans)");
    p->key = *key;
    int rc = plan_build(h, key, p);
    if (rc != LILY_CUDA_OK) {
        plan_free(p);
        return rc;
    }
    c->plans[c->n++] = p;
    *out = p;
    return LILY_CUDA_OK;
}

/* First acceptable entry of a heuristics list: successful, within the workspace cap and, in
 * deterministic mode, deterministic. f32 never takes a tensor-op (TF32) entry: only FMA
 * entries, or DEFAULT ones, which the caller runs with FMA math (as PyTorch does with TF32
 * off), so an f32 convolution stays f32 whatever the heuristics rank first. */
template <typename Perf>
static int pick(const Perf *perf, int got, bool f32, bool det)
{
    for (int i = 0; i < got; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > LILY_CONV_WS_CAP) continue;
        if (det && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
        if (f32 && perf[i].mathType != CUDNN_FMA_MATH && perf[i].mathType != CUDNN_DEFAULT_MATH)
            continue;
        return i;
    }
    return -1;
}

static int choose(LilyCudaHandle *h, Plan *p, int dir)
{
    if (p->chosen[dir] && p->chosen_det[dir] == h->deterministic) return LILY_CUDA_OK;
    bool f32 = p->key.dt == LILY_KDT_F32;
    int idx = -1;
    /* the heuristics rank for the descriptor's math type, which the previous direction's
     * choice may have changed: ask with the data type's own */
    LILY_CUDNN_CHECK(h, cudnnSetConvolutionMathType(p->conv_d, base_math(p->key.dt)));
    if (dir == DIR_FWD) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int got = 0;
        LILY_CUDNN_CHECK(h, cudnnGetConvolutionForwardAlgorithm_v7(
                                h->cudnn, p->in_d, p->w_d, p->conv_d, p->out_d,
                                CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
        idx = pick(perf, got, f32, h->deterministic);
        if (idx >= 0) {
            p->algo[dir] = (int)perf[idx].algo;
            p->math[dir] = perf[idx].mathType;
        }
    } else if (dir == DIR_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        int got = 0;
        LILY_CUDNN_CHECK(h, cudnnGetConvolutionBackwardDataAlgorithm_v7(
                                h->cudnn, p->w_d, p->out_d, p->conv_d, p->in_d,
                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf));
        idx = pick(perf, got, f32, h->deterministic);
        if (idx >= 0) {
            p->algo[dir] = (int)perf[idx].algo;
            p->math[dir] = perf[idx].mathType;
        }
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        int got = 0;
        LILY_CUDNN_CHECK(h, cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                                h->cudnn, p->in_d, p->out_d, p->conv_d, p->w_d,
                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perf));
        idx = pick(perf, got, f32, h->deterministic);
        if (idx >= 0) {
            p->algo[dir] = (int)perf[idx].algo;
            p->math[dir] = perf[idx].mathType;
        }
    }
    if (idx < 0)
        return lily_cuda_fail(h, LILY_CUDA_ERR_UNSUPPORTED,
                              "cuDNN offers no %s%s algorithm for a %lldx%lldx%lldx%lld input, "
                              "%lldx%lldx%lldx%lld filter within %.0f MiB of workspace",
                              h->deterministic ? "deterministic " : "",
                              dir == DIR_FWD ? "forward" : (dir == DIR_BWD_DATA ? "backward-data" : "backward-filter"),
                              (long long)p->key.n, (long long)p->key.in_c, (long long)p->key.in_h,
                              (long long)p->key.in_w, (long long)p->key.out_c,
                              (long long)p->key.in_c, (long long)p->key.kh, (long long)p->key.kw,
                              (double)LILY_CONV_WS_CAP / 1048576.0);
    if (f32) p->math[dir] = CUDNN_FMA_MATH;
    /* the workspace asked for with the math type the algorithm will run with */
    LILY_CUDNN_CHECK(h, cudnnSetConvolutionMathType(p->conv_d, p->math[dir]));
    size_t ws = 0;
    if (dir == DIR_FWD)
        LILY_CUDNN_CHECK(h, cudnnGetConvolutionForwardWorkspaceSize(
                                h->cudnn, p->in_d, p->w_d, p->conv_d, p->out_d,
                                (cudnnConvolutionFwdAlgo_t)p->algo[dir], &ws));
    else if (dir == DIR_BWD_DATA)
        LILY_CUDNN_CHECK(h, cudnnGetConvolutionBackwardDataWorkspaceSize(
                                h->cudnn, p->w_d, p->out_d, p->conv_d, p->in_d,
                                (cudnnConvolutionBwdDataAlgo_t)p->algo[dir], &ws));
    else
        LILY_CUDNN_CHECK(h, cudnnGetConvolutionBackwardFilterWorkspaceSize(
                                h->cudnn, p->in_d, p->out_d, p->conv_d, p->w_d,
                                (cudnnConvolutionBwdFilterAlgo_t)p->algo[dir], &ws));
    p->ws[dir] = ws;
    p->chosen[dir] = true;
    p->chosen_det[dir] = h->deterministic;
    return LILY_CUDA_OK;
}

/* Workspace for direction `dir`, and the descriptor's math type set for it. */
static int prepare(LilyCudaHandle *h, Plan *p, int dir, void **ws)
{
    LILY_CUDA_TRY(choose(h, p, dir));
    LILY_CUDNN_CHECK(h, cudnnSetConvolutionMathType(p->conv_d, p->math[dir]));
    *ws = NULL;
    if (p->ws[dir]) LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_WS, p->ws[dir], ws));
    return LILY_CUDA_OK;
}

/* out = alpha F(in) + beta out */
static int run_fwd(LilyCudaHandle *h, Plan *p, const void *in, const void *w, float beta, void *out)
{
    void *ws;
    LILY_CUDA_TRY(prepare(h, p, DIR_FWD, &ws));
    float alpha = 1.0f;
    LILY_CUDNN_CHECK(h, cudnnConvolutionForward(h->cudnn, &alpha, p->in_d, in, p->w_d, w, p->conv_d,
                                                (cudnnConvolutionFwdAlgo_t)p->algo[DIR_FWD], ws,
                                                p->ws[DIR_FWD], &beta, p->out_d, out));
    return LILY_CUDA_OK;
}

/* in_grad = alpha F^T(out_grad) + beta in_grad */
static int run_bwd_data(LilyCudaHandle *h, Plan *p, const void *w, const void *out_grad,
                        float beta, void *in_grad)
{
    void *ws;
    LILY_CUDA_TRY(prepare(h, p, DIR_BWD_DATA, &ws));
    float alpha = 1.0f;
    LILY_CUDNN_CHECK(h, cudnnConvolutionBackwardData(h->cudnn, &alpha, p->w_d, w, p->out_d, out_grad,
                                                     p->conv_d,
                                                     (cudnnConvolutionBwdDataAlgo_t)p->algo[DIR_BWD_DATA],
                                                     ws, p->ws[DIR_BWD_DATA], &beta, p->in_d, in_grad));
    return LILY_CUDA_OK;
}

/* dw += dF/dw (in, out_grad). The gradient goes to a scratch buffer with beta = 0 and is then
 * added, rather than asking cuDNN to blend with beta = 1: the filter is small, and this keeps
 * the accumulation independent of which algorithms honour blending. */
static int run_bwd_filter_add(LilyCudaHandle *h, Plan *p, const void *in, const void *out_grad,
                              float *dw)
{
    void *ws, *tmp;
    int64_t nw = p->key.out_c * p->key.in_c * p->key.kh * p->key.kw;
    LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_AUX, (size_t)nw * sizeof(float), &tmp));
    LILY_CUDA_TRY(prepare(h, p, DIR_BWD_FILTER, &ws));
    float alpha = 1.0f, beta = 0.0f;
    LILY_CUDNN_CHECK(h, cudnnConvolutionBackwardFilter(h->cudnn, &alpha, p->in_d, in, p->out_d, out_grad,
                                                       p->conv_d,
                                                       (cudnnConvolutionBwdFilterAlgo_t)p->algo[DIR_BWD_FILTER],
                                                       ws, p->ws[DIR_BWD_FILTER], &beta, p->w_d, tmp));
    return lily_cuda_axpby(h, 1.0f, (const float *)tmp, 1.0f, dw, nw);
}

/* The geometry of F for a shape (see the file comment); *pad_explicit tells whether the
 * input must be padded by hand (asymmetric padding of a plain convolution). */
static int make_key(LilyCudaHandle *h, const LilyConvShape *s, int dt, PlanKey *k,
                    bool *pad_explicit)
{
    memset(k, 0, sizeof *k);
    k->dt = dt;
    k->n = s->n;
    *pad_explicit = false;
    if (s->transposed) {
        if (s->nd != 1 || s->pad_begin[1] != s->pad_end[1])
            return lily_cuda_fail(h, LILY_CUDA_ERR_UNSUPPORTED,
                                  "transposed convolution: only 1-D with symmetric padding");
        k->in_c = s->o;
        k->in_h = 1;
        k->in_w = s->out[1];
        k->out_c = s->c;
        k->out_h = 1;
        k->out_w = s->in[1];
        k->kh = 1;
        k->kw = s->k[1];
        k->pad[0] = 0;
        k->pad[1] = s->pad_begin[1];
        k->stride[0] = 1;
        k->stride[1] = s->stride[1];
        k->dil[0] = 1;
        k->dil[1] = 1;
    } else {
        bool asym = s->pad_begin[1] != s->pad_end[1] ||
                    (s->nd == 2 && s->pad_begin[0] != s->pad_end[0]);
        *pad_explicit = asym;
        k->in_c = s->c;
        k->out_c = s->o;
        if (s->nd == 2) {
            k->in_h = s->in[0] + (asym ? s->pad_begin[0] + s->pad_end[0] : 0);
            k->kh = s->k[0];
            k->out_h = s->out[0];
            k->pad[0] = asym ? 0 : s->pad_begin[0];
            k->stride[0] = s->stride[0];
            k->dil[0] = s->dilation[0];
        } else {
            k->in_h = k->kh = k->out_h = 1;
            k->stride[0] = k->dil[0] = 1;
        }
        k->in_w = s->in[1] + (asym ? s->pad_begin[1] + s->pad_end[1] : 0);
        k->kw = s->k[1];
        k->out_w = s->out[1];
        k->pad[1] = asym ? 0 : s->pad_begin[1];
        k->stride[1] = s->stride[1];
        k->dil[1] = s->dilation[1];
    }
    /* cuDNN's 4-D descriptors hold int sizes and int strides */
    int64_t nin = k->n * k->in_c * k->in_h * k->in_w, nout = k->n * k->out_c * k->out_h * k->out_w;
    int64_t nw = k->out_c * k->in_c * k->kh * k->kw;
    if (nin > INT_MAX || nout > INT_MAX || nw > INT_MAX)
        return lily_cuda_fail(h, LILY_CUDA_ERR_UNSUPPORTED,
                              "convolution tensors of %lld / %lld elements exceed cuDNN's 2^31 "
                              "limit; use shorter chunks",
                              (long long)nin, (long long)nout);
    return LILY_CUDA_OK;
}

int lily_cuda_conv_forward(LilyCudaHandle *h, const LilyConvShape *s, const float *x,
                           const void *w, int wdt, const float *b, float *y)
{
    PlanKey key;
    bool padx;
    LILY_CUDA_TRY(make_key(h, s, wdt, &key, &padx));
    Plan *p;
    LILY_CUDA_TRY(plan_get(h, &key, &p));
    size_t es = wdt == LILY_KDT_F32 ? 4 : 2;
    int64_t out_c = s->o;
    int64_t out_sp = s->nd == 2 ? s->out[0] * s->out[1] : s->out[1];
    /* the input in the compute type (and padded when cuDNN cannot pad it) */
    const void *xin = x;
    int64_t ih = s->nd == 2 ? s->in[0] : 1, iw = s->in[1];
    if (padx || wdt != LILY_KDT_F32) {
        int64_t ph = s->transposed ? 1 : key.in_h, pw = s->transposed ? s->in[1] : key.in_w;
        int64_t top = padx && s->nd == 2 ? s->pad_begin[0] : 0, left = padx ? s->pad_begin[1] : 0;
        void *buf;
        LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_SRC, (size_t)(s->n * s->c * ph * pw) * es, &buf));
        LILY_CUDA_TRY(lily_cuda_window(h, s->n * s->c, ih, iw, x, ph, pw, top, left, buf, wdt));
        xin = buf;
    }
    void *yout = y;
    if (wdt != LILY_KDT_F32)
        LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_DST, (size_t)(s->n * out_c * out_sp) * es, &yout));
    if (s->transposed)
        LILY_CUDA_TRY(run_bwd_data(h, p, w, xin, 0.0f, yout));
    else
        LILY_CUDA_TRY(run_fwd(h, p, xin, w, 0.0f, yout));
    if (yout != y || b)
        LILY_CUDA_TRY(lily_cuda_bias_cast(h, yout, wdt, b, y, s->n, out_c, out_sp));
    return LILY_CUDA_OK;
}

int lily_cuda_conv_backward(LilyCudaHandle *h, const LilyConvShape *s, const float *x,
                            const float *w, const float *dy, float *dx, float *dw, float *db)
{
    PlanKey key;
    bool padx;
    LILY_CUDA_TRY(make_key(h, s, LILY_KDT_F32, &key, &padx));
    Plan *p;
    LILY_CUDA_TRY(plan_get(h, &key, &p));
    int64_t out_sp = s->nd == 2 ? s->out[0] * s->out[1] : s->out[1];
    int64_t ih = s->nd == 2 ? s->in[0] : 1, iw = s->in[1];
    if (s->transposed) {
        /* F maps y-space (dy) to x-space */
        if (dx) LILY_CUDA_TRY(run_fwd(h, p, dy, w, 0.0f, dx));
        if (dw) LILY_CUDA_TRY(run_bwd_filter_add(h, p, dy, x, dw));
    } else {
        int64_t top = padx && s->nd == 2 ? s->pad_begin[0] : 0, left = padx ? s->pad_begin[1] : 0;
        if (dx) {
            if (padx) {
                void *buf;
                LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_DST,
                                                (size_t)(s->n * s->c * key.in_h * key.in_w) * 4, &buf));
                LILY_CUDA_TRY(run_bwd_data(h, p, w, dy, 0.0f, buf));
                LILY_CUDA_TRY(lily_cuda_window(h, s->n * s->c, key.in_h, key.in_w, (const float *)buf,
                                               ih, iw, -top, -left, dx, LILY_KDT_F32));
            } else {
                LILY_CUDA_TRY(run_bwd_data(h, p, w, dy, 0.0f, dx));
            }
        }
        if (dw) {
            const void *xin = x;
            if (padx) {
                void *buf;
                LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_SRC,
                                                (size_t)(s->n * s->c * key.in_h * key.in_w) * 4, &buf));
                LILY_CUDA_TRY(lily_cuda_window(h, s->n * s->c, ih, iw, x, key.in_h, key.in_w, top,
                                               left, buf, LILY_KDT_F32));
                xin = buf;
            }
            LILY_CUDA_TRY(run_bwd_filter_add(h, p, xin, dy, dw));
        }
    }
    if (db) LILY_CUDA_TRY(lily_cuda_channel_sum_add(h, dy, s->n, s->o, out_sp, db));
    return LILY_CUDA_OK;
}
