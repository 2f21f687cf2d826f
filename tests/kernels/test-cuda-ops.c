/* tests/kernels/test-cuda-ops.c - every op of the CUDA backend against the CPU backend on the
 * same inputs (ggml's test-backend-ops idea), forward and backward, plus the CUDA backend's
 * memory contract. (The tiny-a pipeline on CUDA is test-cuda-pipeline.c.)
 *
 * The reference for the op cases is the CPU backend, itself tested against naive references
 * in test-ops.c and test-grad.c. Two contexts are open for the whole run, one per device;
 * each case draws host inputs (lt_fill_uniform), uploads the same bytes to both, runs the op
 * through the lily_op_* dispatchers on each, downloads and compares the CUDA result with the
 * CPU one. Outputs start as NaN so an element the GPU leaves unwritten fails; accumulated
 * gradients start from the same random values on both sides, which checks the "+=".
 *
 * Tolerances, per op family and weight dtype (nmse = sum (gpu-cpu)^2 / sum cpu^2; rel = max
 * |gpu-cpu| / max |cpu|):
 *   exact (copies, layout, casts, fill)                       bit-identical
 *   randn                                                     max abs 1e-6 (double libm ulps)
 *   elementwise, activations, norms, softmax, sampler (f32)   nmse 1e-12, rel 4e-6
 *   dense products in f32 (conv, linear, matmul, attention)   nmse 1e-10, rel 2e-5
 *   bf16 weights: linear (same rounding on both sides)        nmse 1e-8,  rel 1e-4
 *   bf16 weights: convolutions (cuDNN rounds its output too)  nmse 2e-5,  rel 8e-3
 *   f16 weights (GPU rounds input and output to f16; the CPU computes in f32 with f16 weights)
 *                                                             nmse 1e-5,  rel 4e-3
 *   gradients that sum over many terms (dw, db, dgamma, dbeta, attention's dq/dk/dv: up to
 *   48000 terms, where two correct f32 sums differ by ~1e-5 of the result)
 *                                                             nmse 1e-9,  rel 1e-4
 *   stft, istft, stft_backward (cuFFT against FFTW, both f32, up to 2048 points: each
 *   rounds ~1e-7 log2 N of the frame's rms, in a different order)
 *                                                             nmse 1e-10, rel 2e-5
 *
 * Without a CUDA device every case is skipped with lily_device_probe's reason: the only skip
 * the project allows. LILY_CUDA_TEST_SELFCHECK=1 runs every case with a second CPU context
 * in place of the GPU, which checks this harness (shapes, plumbing, tolerances) on a
 * machine without a GPU; it proves nothing about the CUDA kernels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "common/test-util.h"
#include "core/arena.h"
#include "core/context.h"
#include "tests/kernels/cuda-test.h"
#include "core/tensor.h"

#define NMSE_ELEM 1e-12
#define REL_ELEM 4e-6
#define NMSE_PROD 1e-10
#define REL_PROD 2e-5
#define NMSE_BF16_LIN 1e-8
#define REL_BF16_LIN 1e-4
#define NMSE_BF16_CONV 2e-5
#define REL_BF16_CONV 8e-3
#define NMSE_F16 1e-5
#define REL_F16 4e-3
#define NMSE_GRAD 1e-9
#define REL_GRAD 1e-4
#define ABS_RANDN 1e-6
#define NMSE_FFT 1e-10
#define REL_FFT 2e-5

static LilyContext *cpu, *gpu;
static bool have_gpu;
static char why[512];
static GPtrArray *host_bufs; /* host arrays of the running case, freed by end_case() */
static LilyArenaMark mark_cpu, mark_gpu;

/* ---------------------------------------------------------------------------------------- */
/* harness                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void ok(LilyContext *ctx, LilyStatus st)
{
    if (st != LILY_OK)
        g_printerr("%s failed: %s\n", ctx == gpu ? "cuda" : "cpu", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_OK);
}

/* Starts a case; false (and the case is skipped, saying why) when no device answers. */
static bool begin_case(void)
{
    if (!have_gpu) {
        g_test_skip(why);
        return false;
    }
    host_bufs = g_ptr_array_new_with_free_func(g_free);
    mark_cpu = lily_arena_mark(&cpu->arena);
    mark_gpu = lily_arena_mark(&gpu->arena);
    return true;
}

static void end_case(void)
{
    ok(gpu, gpu->backend->ops->synchronize(gpu));
    lily_arena_reset(&cpu->arena, mark_cpu);
    lily_arena_reset(&gpu->arena, mark_gpu);
    g_ptr_array_free(host_bufs, TRUE);
    host_bufs = NULL;
}

static void *hmem(size_t bytes)
{
    void *p = g_malloc(bytes ? bytes : 1);
    g_ptr_array_add(host_bufs, p);
    return p;
}

static float *hrand(size_t n, uint64_t seed, float lo, float hi)
{
    float *p = hmem(n * sizeof(float));
    lt_fill_uniform(p, n, seed, lo, hi);
    return p;
}

static float *hnan(size_t n)
{
    float *p = hmem(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

/* The same tensor on both devices. */
typedef struct Twin {
    LilyTensor c, g;
} Twin;

static size_t numel_of(const int64_t *shape, int ndim)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

/* Allocated on both sides and filled with `host` (NaN when host is NULL; host holds f32
 * values, converted to bf16/f16 words for those dtypes). */
static Twin twin_dt(LilyDType dt, const float *host, int ndim, const int64_t *shape)
{
    Twin t;
    ok(cpu, lily_tensor_alloc(cpu, &t.c, dt, ndim, shape));
    ok(gpu, lily_tensor_alloc(gpu, &t.g, dt, ndim, shape));
    size_t n = numel_of(shape, ndim);
    const float *src = host ? host : hnan(n);
    const void *bytes = src;
    if (dt != LILY_DTYPE_F32) {
        uint16_t *w = hmem(n * sizeof(uint16_t));
        for (size_t i = 0; i < n; i++)
            w[i] = dt == LILY_DTYPE_BF16 ? lily_f32_to_bf16(src[i]) : lily_f32_to_f16(src[i]);
        bytes = w;
    }
    ok(cpu, lily_tensor_upload(cpu, &t.c, bytes));
    ok(gpu, lily_tensor_upload(gpu, &t.g, bytes));
    return t;
}

#define TWIN(host, ...) twin_dt(LILY_DTYPE_F32, (host), LILY_SHAPE(__VA_ARGS__))
#define TWIN_DT(dt, host, ...) twin_dt((dt), (host), LILY_SHAPE(__VA_ARGS__))
static Twin twin_rand(uint64_t seed, int ndim, const int64_t *shape)
{
    return twin_dt(LILY_DTYPE_F32, hrand(numel_of(shape, ndim), seed, -1.0f, 1.0f), ndim, shape);
}

/* Random values in [-1, 1) of the given shape. */
#define TWIN_RAND(seed, ...) twin_rand((seed), LILY_SHAPE(__VA_ARGS__))

static float *down(LilyContext *ctx, const LilyTensor *t)
{
    float *p = hmem(lily_tensor_nbytes(t));
    ok(ctx, lily_tensor_download(ctx, t, p));
    return p;
}

/* Compares the GPU tensor with the CPU one: prints the errors, asserts both bounds. */
static void check(const char *name, const Twin *t, double nmse_tol, double rel_tol)
{
    size_t n = (size_t)lily_tensor_numel(&t->c);
    const float *ref = down(cpu, &t->c), *got = down(gpu, &t->g);
    LtErr e = lt_compare(got, ref, n);
    bool pass = e.nmse <= nmse_tol && e.rel <= rel_tol;
    g_test_message("%-44s nmse %.2e (tol %.0e)  rel %.2e (tol %.0e)  max|err| %.2e at [%zu] gpu %.7g "
                   "cpu %.7g  %s",
            name, e.nmse, nmse_tol, e.rel, rel_tol, e.max_abs, e.worst, n ? (double)got[e.worst] : 0.0,
            n ? (double)ref[e.worst] : 0.0, pass ? "OK" : "NOT OK");
    g_assert_cmpfloat(e.nmse, <=, nmse_tol);
    g_assert_cmpfloat(e.rel, <=, rel_tol);
}

/* Bit-identical results (data movement, casts). */
static void check_exact(const char *name, const Twin *t)
{
    size_t bytes = lily_tensor_nbytes(&t->c);
    const void *ref = down(cpu, &t->c), *got = down(gpu, &t->g);
    size_t first = bytes;
    for (size_t i = 0; i < bytes && first == bytes; i++)
        if (((const uint8_t *)ref)[i] != ((const uint8_t *)got)[i]) first = i;
    g_test_message("%-44s %s (%zu bytes%s)", name, first == bytes ? "bit-identical OK" : "DIFFERS NOT OK",
            bytes, first == bytes ? "" : ", first difference at a byte offset printed below");
    if (first != bytes) g_test_message("  first differing byte: %zu", first);
    g_assert_cmpuint(first, ==, bytes);
}

/* ---------------------------------------------------------------------------------------- */
/* memory                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Bytes uploaded to the device come back unchanged, for every dtype size. */
static void test_upload_download(void)
{
    if (!begin_case()) return;
    size_t n = 1000003;
    float *h = hrand(n, 1, -3.0f, 3.0f);
    LilyTensor t;
    ok(gpu, lily_tensor_alloc(gpu, &t, LILY_DTYPE_F32, LILY_SHAPE((int64_t)n)));
    ok(gpu, lily_tensor_upload(gpu, &t, h));
    float *back = hmem(n * sizeof(float));
    ok(gpu, lily_tensor_download(gpu, &t, back));
    g_assert_cmpint(memcmp(h, back, n * sizeof(float)), ==, 0);
    g_test_message("round trip of %zu floats: identical", n);
    end_case();
}

/* Device-to-device copies with overlapping ranges behave like memmove, forwards and
 * backwards, for a distance that is large (chunked copy) and small (staged copy). */
static void test_copy_overlap(void)
{
    if (!begin_case()) return;
    size_t n = 1 << 20;
    float *h = hrand(n, 2, -1.0f, 1.0f);
    size_t dists[] = {n / 4, 3, 100000};
    for (size_t di = 0; di < G_N_ELEMENTS(dists); di++)
        for (int dir = 0; dir < 2; dir++) {
            size_t d = dists[di], len = n - d;
            LilyTensor t;
            ok(gpu, lily_tensor_alloc(gpu, &t, LILY_DTYPE_F32, LILY_SHAPE((int64_t)n)));
            ok(gpu, lily_tensor_upload(gpu, &t, h));
            float *base = t.data;
            float *src = dir ? base : base + d, *dst = dir ? base + d : base;
            ok(gpu, gpu->backend->ops->copy(gpu, dst, src, len * sizeof(float)));
            float *want = hmem(n * sizeof(float));
            memcpy(want, h, n * sizeof(float));
            memmove(dir ? want + d : want, dir ? want : want + d, len * sizeof(float));
            float *got = hmem(n * sizeof(float));
            ok(gpu, lily_tensor_download(gpu, &t, got));
            g_test_message("overlapping copy, distance %zu floats, %s: %s", d, dir ? "upwards" : "downwards",
                    memcmp(got, want, n * sizeof(float)) == 0 ? "memmove result OK" : "WRONG");
            g_assert_cmpint(memcmp(got, want, n * sizeof(float)), ==, 0);
        }
    end_case();
}

/* Asking for more device memory than exists is LILY_ERR_NO_MEMORY with the figures in the
 * message, and the context keeps working afterwards. */
static void test_out_of_memory(void)
{
    if (!begin_case()) return;
    size_t fr = 0, tot = 0;
    ok(gpu, gpu->backend->ops->mem_info(gpu->backend, &fr, &tot));
    g_assert_cmpuint(tot, >, 0);
    int64_t huge = (int64_t)(tot / sizeof(float)) * 2;
    LilyTensor t;
    LilyStatus st = lily_tensor_alloc(gpu, &t, LILY_DTYPE_F32, LILY_SHAPE(huge));
    g_test_message("message: %s", lily_context_error(gpu));
    g_assert_cmpint(st, ==, LILY_ERR_NO_MEMORY);
    g_assert_nonnull(strstr(lily_context_error(gpu), "MiB free"));
    /* still usable: a small op after the failure */
    Twin x = TWIN(hrand(4096, 3, -1.0f, 1.0f), 4096);
    Twin y = TWIN(NULL, 4096);
    ok(cpu, lily_op_unary(cpu, LILY_UNARY_SILU, 0.0f, &x.c, &y.c));
    ok(gpu, lily_op_unary(gpu, LILY_UNARY_SILU, 0.0f, &x.g, &y.g));
    check("silu after an out-of-memory failure", &y, NMSE_ELEM, REL_ELEM);
    end_case();
}

/* Memory can be freed through a copy of the backend whose impl is NULL (a model outliving
 * its loading context does that), and mem_info works on such a copy. */
static void test_free_without_impl(void)
{
    if (!begin_case()) return;
    void *p = NULL;
    ok(gpu, gpu->backend->ops->alloc(gpu->backend, (size_t)64 << 20, &p));
    g_assert_nonnull(p);
    g_assert_cmpuint((uintptr_t)p % 256, ==, 0);
    LilyBackend copy = *gpu->backend;
    copy.impl = NULL;
    size_t fr0 = 0, tot = 0, fr1 = 0;
    g_assert_cmpint(copy.ops->mem_info(&copy, &fr0, &tot), ==, LILY_OK);
    copy.ops->free(&copy, p);
    g_assert_cmpint(copy.ops->mem_info(&copy, &fr1, &tot), ==, LILY_OK);
    g_test_message("free memory before/after freeing 64 MiB through an impl-less copy: %.1f / %.1f MiB",
            fr0 / 1048576.0, fr1 / 1048576.0);
    g_assert_cmpuint(fr1, >=, fr0);
    end_case();
}

/* A device index that does not exist is a clear LILY_ERR_DEVICE naming cuda. */
static void test_bad_device_index(void)
{
    if (!begin_case()) return;
    LilyContextParams p;
    lily_context_params_init(&p);
    p.device = LILY_DEVICE_CUDA;
    p.device_index = 999;
    LilyContext *c = NULL;
    char err[512] = "";
    LilyStatus st = lily_context_new(&p, &c, err, sizeof err);
    g_test_message("message: %s", err);
    g_assert_cmpint(st, ==, LILY_ERR_DEVICE);
    g_assert_null(c);
    g_assert_nonnull(strstr(err, "cuda"));
    end_case();
}

/* ---------------------------------------------------------------------------------------- */
/* dense products                                                                            */
/* ---------------------------------------------------------------------------------------- */

static int64_t out_len(int64_t in, int k, int stride, int pb, int pe, int dil)
{
    return (in + pb + pe - (int64_t)(k - 1) * dil - 1) / stride + 1;
}

static double nmse_for(LilyDType wdt, bool conv)
{
    return wdt == LILY_DTYPE_BF16 ? (conv ? NMSE_BF16_CONV : NMSE_BF16_LIN)
                                  : (wdt == LILY_DTYPE_F16 ? NMSE_F16 : NMSE_PROD);
}

static double rel_for(LilyDType wdt, bool conv)
{
    return wdt == LILY_DTYPE_BF16 ? (conv ? REL_BF16_CONV : REL_BF16_LIN)
                                  : (wdt == LILY_DTYPE_F16 ? REL_F16 : REL_PROD);
}

typedef struct Conv2dCase {
    const char *name;
    int N, C, H, W, O, KH, KW;
    LilyConvParams p;
} Conv2dCase;

static const Conv2dCase conv2d_cases[] = {
    {"3x3 pad 1", 2, 5, 9, 11, 7, 3, 3, {{1, 1}, {1, 1}, {1, 1}, {1, 1}}},
    {"3x3 stride 2 pad (0,1,0,1)", 1, 8, 16, 12, 8, 3, 3, {{2, 2}, {0, 0}, {1, 1}, {1, 1}}},
    {"1x1", 2, 16, 7, 5, 4, 1, 1, {{1, 1}, {0, 0}, {0, 0}, {1, 1}}},
    {"3x3 dilation (2,1) pad (2,1)", 1, 6, 13, 10, 5, 3, 3, {{1, 1}, {2, 1}, {2, 1}, {2, 1}}},
    {"3x3 64->64 on 32x32", 2, 64, 32, 32, 64, 3, 3, {{1, 1}, {1, 1}, {1, 1}, {1, 1}}},
};

static void run_conv2d(const Conv2dCase *k, LilyDType wdt, bool backward)
{
    char name[160];
    int64_t Ho = out_len(k->H, k->KH, k->p.stride[0], k->p.pad_begin[0], k->p.pad_end[0], k->p.dilation[0]);
    int64_t Wo = out_len(k->W, k->KW, k->p.stride[1], k->p.pad_begin[1], k->p.pad_end[1], k->p.dilation[1]);
    Twin x = TWIN_RAND(11, k->N, k->C, k->H, k->W);
    Twin w = TWIN_DT(wdt, hrand((size_t)(k->O * k->C * k->KH * k->KW), 12, -0.5f, 0.5f), k->O, k->C, k->KH, k->KW);
    Twin b = TWIN_RAND(13, k->O);
    Twin y = TWIN(NULL, k->N, k->O, Ho, Wo);
    ok(cpu, lily_op_conv2d(cpu, &x.c, &w.c, &b.c, &k->p, &y.c));
    ok(gpu, lily_op_conv2d(gpu, &x.g, &w.g, &b.g, &k->p, &y.g));
    snprintf(name, sizeof name, "conv2d %s %s", k->name, lily_dtype_name(wdt));
    check(name, &y, nmse_for(wdt, true), rel_for(wdt, true));
    if (!backward) return;
    Twin dy = TWIN_RAND(14, k->N, k->O, Ho, Wo);
    Twin dx = TWIN(NULL, k->N, k->C, k->H, k->W);
    Twin dw = TWIN_RAND(15, k->O, k->C, k->KH, k->KW);
    Twin db = TWIN_RAND(16, k->O);
    ok(cpu, lily_op_conv2d_backward(cpu, &x.c, &w.c, &k->p, &dy.c, &dx.c, &dw.c, &db.c));
    ok(gpu, lily_op_conv2d_backward(gpu, &x.g, &w.g, &k->p, &dy.g, &dx.g, &dw.g, &db.g));
    snprintf(name, sizeof name, "conv2d %s dx", k->name);
    check(name, &dx, NMSE_PROD, REL_PROD);
    snprintf(name, sizeof name, "conv2d %s dw (accumulated)", k->name);
    check(name, &dw, NMSE_GRAD, REL_GRAD);
    snprintf(name, sizeof name, "conv2d %s db (accumulated)", k->name);
    check(name, &db, NMSE_GRAD, REL_GRAD);
}

/* conv2d forward with f32 weights and its three gradients match the CPU, for symmetric,
 * asymmetric, strided, dilated and 1x1 geometries. */
static void test_conv2d_f32(void)
{
    if (!begin_case()) return;
    for (size_t i = 0; i < G_N_ELEMENTS(conv2d_cases); i++) run_conv2d(&conv2d_cases[i], LILY_DTYPE_F32, true);
    end_case();
}

/* conv2d with bf16 and f16 weights matches the CPU within the reduced-precision bounds. */
static void test_conv2d_half(void)
{
    if (!begin_case()) return;
    for (size_t i = 0; i < G_N_ELEMENTS(conv2d_cases); i++) {
        run_conv2d(&conv2d_cases[i], LILY_DTYPE_BF16, false);
        run_conv2d(&conv2d_cases[i], LILY_DTYPE_F16, false);
    }
    end_case();
}

typedef struct Conv1dCase {
    const char *name;
    int N, C, L, O, K;
    LilyConvParams p;
} Conv1dCase;

static const Conv1dCase conv1d_cases[] = {
    {"k7 pad 3", 2, 6, 50, 5, 7, {{1, 1}, {0, 3}, {0, 3}, {1, 1}}},
    {"k3 dilation 5 pad 5", 1, 8, 200, 8, 3, {{1, 1}, {0, 5}, {0, 5}, {1, 5}}},
    {"k4 stride 2 pad (1,2)", 1, 5, 31, 4, 4, {{1, 2}, {0, 1}, {0, 2}, {1, 1}}},
    {"k7 32->32 over 48000 samples", 1, 32, 48000, 32, 7, {{1, 1}, {0, 3}, {0, 3}, {1, 1}}},
};

static void run_conv1d(const Conv1dCase *k, LilyDType wdt, bool backward)
{
    char name[160];
    int64_t Lo = out_len(k->L, k->K, k->p.stride[1], k->p.pad_begin[1], k->p.pad_end[1], k->p.dilation[1]);
    Twin x = TWIN_RAND(21, k->N, k->C, k->L);
    Twin w = TWIN_DT(wdt, hrand((size_t)(k->O * k->C * k->K), 22, -0.5f, 0.5f), k->O, k->C, k->K);
    Twin b = TWIN_RAND(23, k->O);
    Twin y = TWIN(NULL, k->N, k->O, Lo);
    ok(cpu, lily_op_conv1d(cpu, &x.c, &w.c, &b.c, &k->p, &y.c));
    ok(gpu, lily_op_conv1d(gpu, &x.g, &w.g, &b.g, &k->p, &y.g));
    snprintf(name, sizeof name, "conv1d %s %s", k->name, lily_dtype_name(wdt));
    check(name, &y, nmse_for(wdt, true), rel_for(wdt, true));
    if (!backward) return;
    Twin dy = TWIN_RAND(24, k->N, k->O, Lo);
    Twin dx = TWIN(NULL, k->N, k->C, k->L);
    Twin dw = TWIN_RAND(25, k->O, k->C, k->K);
    Twin db = TWIN_RAND(26, k->O);
    ok(cpu, lily_op_conv1d_backward(cpu, &x.c, &w.c, &k->p, &dy.c, &dx.c, &dw.c, &db.c));
    ok(gpu, lily_op_conv1d_backward(gpu, &x.g, &w.g, &k->p, &dy.g, &dx.g, &dw.g, &db.g));
    snprintf(name, sizeof name, "conv1d %s dx", k->name);
    check(name, &dx, NMSE_PROD, REL_PROD);
    snprintf(name, sizeof name, "conv1d %s dw (accumulated)", k->name);
    check(name, &dw, NMSE_GRAD, REL_GRAD);
    snprintf(name, sizeof name, "conv1d %s db (accumulated)", k->name);
    check(name, &db, NMSE_GRAD, REL_GRAD);
}

/* conv1d (dense, dilated, strided with asymmetric padding, vocoder-long) and its gradients
 * match the CPU in f32; bf16 and f16 weights within their bounds. */
static void test_conv1d(void)
{
    if (!begin_case()) return;
    for (size_t i = 0; i < G_N_ELEMENTS(conv1d_cases); i++) {
        run_conv1d(&conv1d_cases[i], LILY_DTYPE_F32, true);
        run_conv1d(&conv1d_cases[i], LILY_DTYPE_BF16, false);
        run_conv1d(&conv1d_cases[i], LILY_DTYPE_F16, false);
    }
    end_case();
}

typedef struct ConvTCase {
    const char *name;
    int N, C, L, O, K, stride, pad;
} ConvTCase;

static const ConvTCase convt_cases[] = {
    {"k16 stride 8 pad 4", 1, 16, 40, 8, 16, 8, 4},
    {"k4 stride 2 pad 1", 2, 5, 33, 3, 4, 2, 1},
    {"k3 stride 1 pad 1", 1, 4, 20, 6, 3, 1, 1},
    {"k11 stride 5 pad 3", 1, 3, 17, 2, 11, 5, 3},
};

/* conv_transpose1d (PyTorch's ConvTranspose1d) and its gradients match the CPU in f32, and
 * its bf16/f16 forms within their bounds. */
static void test_conv_transpose1d(void)
{
    if (!begin_case()) return;
    for (size_t i = 0; i < G_N_ELEMENTS(convt_cases); i++) {
        const ConvTCase *k = &convt_cases[i];
        char name[160];
        int64_t Lo = (int64_t)(k->L - 1) * k->stride - 2 * k->pad + k->K;
        Twin x = TWIN_RAND(31, k->N, k->C, k->L);
        Twin b = TWIN_RAND(33, k->O);
        const LilyDType dts[] = {LILY_DTYPE_F32, LILY_DTYPE_BF16, LILY_DTYPE_F16};
        float *wh = hrand((size_t)(k->C * k->O * k->K), 32, -0.5f, 0.5f);
        for (size_t d = 0; d < G_N_ELEMENTS(dts); d++) {
            Twin w = TWIN_DT(dts[d], wh, k->C, k->O, k->K);
            Twin y = TWIN(NULL, k->N, k->O, Lo);
            ok(cpu, lily_op_conv_transpose1d(cpu, &x.c, &w.c, &b.c, k->stride, k->pad, &y.c));
            ok(gpu, lily_op_conv_transpose1d(gpu, &x.g, &w.g, &b.g, k->stride, k->pad, &y.g));
            snprintf(name, sizeof name, "conv_transpose1d %s %s", k->name, lily_dtype_name(dts[d]));
            check(name, &y, nmse_for(dts[d], true), rel_for(dts[d], true));
        }
        Twin w = TWIN(wh, k->C, k->O, k->K);
        Twin dy = TWIN_RAND(34, k->N, k->O, Lo);
        Twin dx = TWIN(NULL, k->N, k->C, k->L);
        Twin dw = TWIN_RAND(35, k->C, k->O, k->K);
        Twin db = TWIN_RAND(36, k->O);
        ok(cpu, lily_op_conv_transpose1d_backward(cpu, &x.c, &w.c, k->stride, k->pad, &dy.c, &dx.c, &dw.c, &db.c));
        ok(gpu, lily_op_conv_transpose1d_backward(gpu, &x.g, &w.g, k->stride, k->pad, &dy.g, &dx.g, &dw.g, &db.g));
        snprintf(name, sizeof name, "conv_transpose1d %s dx", k->name);
        check(name, &dx, NMSE_PROD, REL_PROD);
        snprintf(name, sizeof name, "conv_transpose1d %s dw (accumulated)", k->name);
        check(name, &dw, NMSE_GRAD, REL_GRAD);
        snprintf(name, sizeof name, "conv_transpose1d %s db (accumulated)", k->name);
        check(name, &db, NMSE_GRAD, REL_GRAD);
    }
    end_case();
}

/* linear (with leading dims, with and without bias) matches the CPU for f32, bf16 and f16
 * weights, and its f32 gradients match (dw and db accumulated). */
static void test_linear(void)
{
    if (!begin_case()) return;
    const LilyDType dts[] = {LILY_DTYPE_F32, LILY_DTYPE_BF16, LILY_DTYPE_F16};
    Twin x = TWIN_RAND(41, 2, 37, 96);
    Twin b = TWIN_RAND(43, 80);
    float *wh = hrand(80 * 96, 42, -0.3f, 0.3f);
    for (size_t d = 0; d < G_N_ELEMENTS(dts); d++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            char name[96];
            Twin w = TWIN_DT(dts[d], wh, 80, 96);
            Twin y = TWIN(NULL, 2, 37, 80);
            ok(cpu, lily_op_linear(cpu, &x.c, &w.c, with_bias ? &b.c : NULL, &y.c));
            ok(gpu, lily_op_linear(gpu, &x.g, &w.g, with_bias ? &b.g : NULL, &y.g));
            snprintf(name, sizeof name, "linear %s%s", lily_dtype_name(dts[d]), with_bias ? " + bias" : "");
            check(name, &y, nmse_for(dts[d], false), rel_for(dts[d], false));
        }
    Twin w = TWIN(wh, 80, 96);
    Twin dy = TWIN_RAND(44, 2, 37, 80);
    Twin dx = TWIN(NULL, 2, 37, 96);
    Twin dw = TWIN_RAND(45, 80, 96);
    Twin db = TWIN_RAND(46, 80);
    ok(cpu, lily_op_linear_backward(cpu, &x.c, &w.c, &dy.c, &dx.c, &dw.c, &db.c));
    ok(gpu, lily_op_linear_backward(gpu, &x.g, &w.g, &dy.g, &dx.g, &dw.g, &db.g));
    check("linear dx", &dx, NMSE_PROD, REL_PROD);
    check("linear dw (accumulated)", &dw, NMSE_GRAD, REL_GRAD);
    check("linear db (accumulated)", &db, NMSE_GRAD, REL_GRAD);
    end_case();
}

/* Batched matmul matches the CPU for all four transpose combinations, with beta 0 ignoring
 * a NaN-filled c and beta 0.5 blending a random one. */
static void test_matmul(void)
{
    if (!begin_case()) return;
    const int64_t B = 3, M = 17, N = 29, K = 23;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int blend = 0; blend < 2; blend++) {
                char name[96];
                Twin a = ta ? TWIN_RAND(51, B, K, M) : TWIN_RAND(51, B, M, K);
                Twin bm = tb ? TWIN_RAND(52, B, N, K) : TWIN_RAND(52, B, K, N);
                Twin c = blend ? TWIN_RAND(53, B, M, N) : TWIN(NULL, B, M, N);
                float beta = blend ? 0.5f : 0.0f;
                ok(cpu, lily_op_matmul(cpu, &a.c, ta, &bm.c, tb, 0.7f, beta, &c.c));
                ok(gpu, lily_op_matmul(gpu, &a.g, ta, &bm.g, tb, 0.7f, beta, &c.g));
                snprintf(name, sizeof name, "matmul trans_a %d trans_b %d beta %.1f", ta, tb, beta);
                check(name, &c, NMSE_PROD, REL_PROD);
            }
    end_case();
}

static void run_attention(const char *label, int64_t B, int64_t T, int64_t S, int64_t D, int64_t Dv,
                          bool backward)
{
    char name[128];
    float scale = 1.0f / sqrtf((float)D);
    Twin q = TWIN_RAND(61, B, T, D), k = TWIN_RAND(62, B, S, D), v = TWIN_RAND(63, B, S, Dv);
    Twin o = TWIN(NULL, B, T, Dv);
    ok(cpu, lily_op_attention(cpu, &q.c, &k.c, &v.c, scale, &o.c));
    ok(gpu, lily_op_attention(gpu, &q.g, &k.g, &v.g, scale, &o.g));
    snprintf(name, sizeof name, "attention %s", label);
    check(name, &o, NMSE_PROD, REL_PROD);
    if (!backward) return;
    Twin dout = TWIN_RAND(64, B, T, Dv);
    Twin dq = TWIN(NULL, B, T, D), dk = TWIN(NULL, B, S, D), dv = TWIN(NULL, B, S, Dv);
    ok(cpu, lily_op_attention_backward(cpu, &q.c, &k.c, &v.c, scale, &dout.c, &dq.c, &dk.c, &dv.c));
    ok(gpu, lily_op_attention_backward(gpu, &q.g, &k.g, &v.g, scale, &dout.g, &dq.g, &dk.g, &dv.g));
    snprintf(name, sizeof name, "attention %s dq", label);
    check(name, &dq, NMSE_GRAD, REL_GRAD);
    snprintf(name, sizeof name, "attention %s dk", label);
    check(name, &dk, NMSE_GRAD, REL_GRAD);
    snprintf(name, sizeof name, "attention %s dv", label);
    check(name, &dv, NMSE_GRAD, REL_GRAD);
}

/* Attention (cross-attention shapes, D != Dv) and its gradients match the CPU; a dk-less
 * backward leaves dq and dv right. */
static void test_attention(void)
{
    if (!begin_case()) return;
    run_attention("B3 T77 S50 D40 Dv24", 3, 77, 50, 40, 24, true);
    Twin q = TWIN_RAND(65, 2, 33, 16), k = TWIN_RAND(66, 2, 45, 16), v = TWIN_RAND(67, 2, 45, 8);
    Twin dout = TWIN_RAND(68, 2, 33, 8);
    Twin dq = TWIN(NULL, 2, 33, 16), dv = TWIN(NULL, 2, 45, 8);
    ok(cpu, lily_op_attention_backward(cpu, &q.c, &k.c, &v.c, 0.25f, &dout.c, &dq.c, NULL, &dv.c));
    ok(gpu, lily_op_attention_backward(gpu, &q.g, &k.g, &v.g, 0.25f, &dout.g, &dq.g, NULL, &dv.g));
    check("attention backward without dk: dq", &dq, NMSE_PROD, REL_PROD);
    check("attention backward without dk: dv", &dv, NMSE_PROD, REL_PROD);
    end_case();
}

/* Attention whose score matrix exceeds the CUDA kernel's block budget (2^25 floats), so it
 * runs in several row blocks, matches the CPU forward and backward. */
static void test_attention_blocked(void)
{
    if (!begin_case()) return;
    run_attention("B4 T4096 S4096 D32 (row blocks)", 4, 4096, 4096, 32, 32, true);
    end_case();
}

/* ---------------------------------------------------------------------------------------- */
/* normalisation                                                                             */
/* ---------------------------------------------------------------------------------------- */

static void run_group_norm(const char *label, int64_t N, int64_t C, int64_t H, int64_t W, int G,
                           int silu, bool affine)
{
    char name[160];
    size_t n = (size_t)(N * C * H * W);
    Twin x = TWIN(hrand(n, 71, 1.5f, 4.5f), N, C, H, W); /* a mean far from 0: two-pass matters */
    Twin gamma = TWIN(hrand((size_t)C, 72, 0.5f, 1.5f), C);
    Twin beta = TWIN_RAND(73, C);
    Twin y = TWIN(NULL, N, C, H, W);
    const LilyTensor *gc = affine ? &gamma.c : NULL, *bc = affine ? &beta.c : NULL;
    const LilyTensor *gg = affine ? &gamma.g : NULL, *bg = affine ? &beta.g : NULL;
    ok(cpu, lily_op_group_norm(cpu, &x.c, gc, bc, G, 1e-6f, silu, &y.c));
    ok(gpu, lily_op_group_norm(gpu, &x.g, gg, bg, G, 1e-6f, silu, &y.g));
    snprintf(name, sizeof name, "group_norm %s", label);
    check(name, &y, NMSE_ELEM, REL_ELEM);
    Twin dy = TWIN_RAND(74, N, C, H, W);
    Twin dx = TWIN(NULL, N, C, H, W);
    Twin dg = TWIN_RAND(75, C), db = TWIN_RAND(76, C);
    ok(cpu, lily_op_group_norm_backward(cpu, &x.c, gc, bc, G, 1e-6f, silu, &dy.c, &dx.c,
                                        affine ? &dg.c : NULL, affine ? &db.c : NULL));
    ok(gpu, lily_op_group_norm_backward(gpu, &x.g, gg, bg, G, 1e-6f, silu, &dy.g, &dx.g,
                                        affine ? &dg.g : NULL, affine ? &db.g : NULL));
    snprintf(name, sizeof name, "group_norm %s dx", label);
    check(name, &dx, NMSE_PROD, REL_PROD);
    if (!affine) return;
    snprintf(name, sizeof name, "group_norm %s dgamma (accumulated)", label);
    check(name, &dg, NMSE_GRAD, REL_GRAD);
    snprintf(name, sizeof name, "group_norm %s dbeta (accumulated)", label);
    check(name, &db, NMSE_GRAD, REL_GRAD);
}

/* GroupNorm with and without the fused SiLU, with and without affine parameters, and with
 * groups long enough to be split over many blocks, matches the CPU forward and backward. */
static void test_group_norm(void)
{
    if (!begin_case()) return;
    run_group_norm("[2,64,37,29] G32", 2, 64, 37, 29, 32, 0, true);
    run_group_norm("[2,64,37,29] G32 + silu", 2, 64, 37, 29, 32, 1, true);
    run_group_norm("[1,12,5,7] G3 no affine", 1, 12, 5, 7, 3, 0, false);
    run_group_norm("[1,32,128,64] G4 (long groups) + silu", 1, 32, 128, 64, 4, 1, true);
    end_case();
}

/* LayerNorm over the last dim matches the CPU forward and backward. */
static void test_layer_norm(void)
{
    if (!begin_case()) return;
    size_t n = 3 * 100 * 320;
    Twin x = TWIN(hrand(n, 81, -2.0f, 6.0f), 3, 100, 320);
    Twin gamma = TWIN(hrand(320, 82, 0.5f, 1.5f), 320), beta = TWIN_RAND(83, 320);
    Twin y = TWIN(NULL, 3, 100, 320);
    ok(cpu, lily_op_layer_norm(cpu, &x.c, &gamma.c, &beta.c, 1e-5f, &y.c));
    ok(gpu, lily_op_layer_norm(gpu, &x.g, &gamma.g, &beta.g, 1e-5f, &y.g));
    check("layer_norm [3,100,320]", &y, NMSE_ELEM, REL_ELEM);
    Twin dy = TWIN_RAND(84, 3, 100, 320);
    Twin dx = TWIN(NULL, 3, 100, 320);
    Twin dg = TWIN_RAND(85, 320), db = TWIN_RAND(86, 320);
    ok(cpu, lily_op_layer_norm_backward(cpu, &x.c, &gamma.c, 1e-5f, &dy.c, &dx.c, &dg.c, &db.c));
    ok(gpu, lily_op_layer_norm_backward(gpu, &x.g, &gamma.g, 1e-5f, &dy.g, &dx.g, &dg.g, &db.g));
    check("layer_norm dx", &dx, NMSE_PROD, REL_PROD);
    check("layer_norm dgamma (accumulated)", &dg, NMSE_GRAD, REL_GRAD);
    check("layer_norm dbeta (accumulated)", &db, NMSE_GRAD, REL_GRAD);
    end_case();
}

/* Softmax with a scale matches the CPU forward and backward. */
static void test_softmax(void)
{
    if (!begin_case()) return;
    Twin x = TWIN(hrand(50 * 1000, 91, -20.0f, 20.0f), 50, 1000);
    Twin y = TWIN(NULL, 50, 1000);
    ok(cpu, lily_op_softmax(cpu, &x.c, 0.125f, &y.c));
    ok(gpu, lily_op_softmax(gpu, &x.g, 0.125f, &y.g));
    check("softmax [50,1000] scale 0.125", &y, NMSE_ELEM, REL_ELEM);
    Twin p = TWIN(hrand(50 * 1000, 92, 0.0f, 0.002f), 50, 1000);
    Twin dy = TWIN_RAND(93, 50, 1000);
    Twin dx = TWIN(NULL, 50, 1000);
    ok(cpu, lily_op_softmax_backward(cpu, &p.c, 0.125f, &dy.c, &dx.c));
    ok(gpu, lily_op_softmax_backward(gpu, &p.g, 0.125f, &dy.g, &dx.g));
    check("softmax backward", &dx, NMSE_ELEM, REL_ELEM);
    end_case();
}

/* ---------------------------------------------------------------------------------------- */
/* elementwise                                                                               */
/* ---------------------------------------------------------------------------------------- */

/* Every unary op and its derivative match the CPU over [-6, 6]. */
static void test_unary(void)
{
    if (!begin_case()) return;
    static const char *const names[] = {"identity", "silu", "gelu", "leaky_relu", "tanh", "exp",
                                        "scale", "add_scalar", "square", "abs", "min", "max",
                                        "sigmoid"};
    G_STATIC_ASSERT(G_N_ELEMENTS(names) == LILY_UNARY_COUNT);
    const int64_t n = 10007;
    Twin x = TWIN(hrand((size_t)n, 101, -6.0f, 6.0f), n);
    Twin dy = TWIN_RAND(102, n);
    for (int op = 0; op < LILY_UNARY_COUNT; op++) {
        float alpha = op == LILY_UNARY_LEAKY_RELU ? 0.1f : (op == LILY_UNARY_SCALE ? 1.7f : 0.25f);
        char name[96];
        Twin y = TWIN(NULL, n), dx = TWIN(NULL, n);
        ok(cpu, lily_op_unary(cpu, (LilyUnaryOp)op, alpha, &x.c, &y.c));
        ok(gpu, lily_op_unary(gpu, (LilyUnaryOp)op, alpha, &x.g, &y.g));
        snprintf(name, sizeof name, "unary %s", names[op]);
        check(name, &y, NMSE_ELEM, REL_ELEM);
        ok(cpu, lily_op_unary_backward(cpu, (LilyUnaryOp)op, alpha, &x.c, &dy.c, &dx.c));
        ok(gpu, lily_op_unary_backward(gpu, (LilyUnaryOp)op, alpha, &x.g, &dy.g, &dx.g));
        snprintf(name, sizeof name, "unary %s backward", names[op]);
        check(name, &dx, NMSE_ELEM, REL_ELEM);
    }
    end_case();
}

/* add/sub/mul with b of the same shape, per channel, and a single element, and in place
 * (y = a), give the CPU's bits. */
static void test_binary(void)
{
    if (!begin_case()) return;
    static const char *const ops[] = {"add", "sub", "mul"};
    Twin a = TWIN_RAND(111, 2, 3, 5, 7);
    Twin bs[3] = {TWIN_RAND(112, 2, 3, 5, 7), TWIN_RAND(113, 2, 3), TWIN_RAND(114, 1)};
    static const char *const kinds[] = {"same shape", "per channel", "scalar"};
    for (int op = 0; op < LILY_BINARY_COUNT; op++)
        for (int k = 0; k < 3; k++) {
            char name[96];
            Twin y = TWIN(NULL, 2, 3, 5, 7);
            ok(cpu, lily_op_binary(cpu, (LilyBinaryOp)op, &a.c, &bs[k].c, &y.c));
            ok(gpu, lily_op_binary(gpu, (LilyBinaryOp)op, &a.g, &bs[k].g, &y.g));
            snprintf(name, sizeof name, "binary %s %s", ops[op], kinds[k]);
            check_exact(name, &y);
        }
    Twin inplace = TWIN(down(cpu, &a.c), 2, 3, 5, 7);
    ok(cpu, lily_op_binary(cpu, LILY_BINARY_MUL, &inplace.c, &bs[1].c, &inplace.c));
    ok(gpu, lily_op_binary(gpu, LILY_BINARY_MUL, &inplace.g, &bs[1].g, &inplace.g));
    check_exact("binary mul per channel in place", &inplace);
    end_case();
}

/* axpby (beta 0 ignores NaN in y; beta 0.3 blends) and fill give the CPU's results. */
static void test_axpby_fill(void)
{
    if (!begin_case()) return;
    Twin x = TWIN_RAND(121, 1000);
    Twin y0 = TWIN(NULL, 1000), y1 = TWIN_RAND(122, 1000), f = TWIN(NULL, 1000);
    ok(cpu, lily_op_axpby(cpu, 1.5f, &x.c, 0.0f, &y0.c));
    ok(gpu, lily_op_axpby(gpu, 1.5f, &x.g, 0.0f, &y0.g));
    check("axpby beta 0 over NaN", &y0, NMSE_ELEM, REL_ELEM);
    ok(cpu, lily_op_axpby(cpu, 1.5f, &x.c, 0.3f, &y1.c));
    ok(gpu, lily_op_axpby(gpu, 1.5f, &x.g, 0.3f, &y1.g));
    check("axpby beta 0.3", &y1, NMSE_ELEM, REL_ELEM);
    ok(cpu, lily_op_fill(cpu, &f.c, -2.5f));
    ok(gpu, lily_op_fill(gpu, &f.g, -2.5f));
    check_exact("fill -2.5", &f);
    end_case();
}

/* Casts between f32, bf16 and f16 (both directions, including overflow, subnormals and NaN)
 * give the CPU's bits. */
static void test_cast(void)
{
    if (!begin_case()) return;
    const int64_t n = 4099;
    float *h = hrand((size_t)n, 131, -70000.0f, 70000.0f);
    h[0] = NAN;
    h[1] = INFINITY;
    h[2] = 1e-6f; /* an f16 subnormal */
    h[3] = 65520.0f; /* rounds to f16 infinity */
    h[4] = -0.0f;
    for (int64_t i = 5; i < 400; i++) h[i] *= 1e-7f;
    const LilyDType dts[] = {LILY_DTYPE_F32, LILY_DTYPE_BF16, LILY_DTYPE_F16};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++) {
            char name[64];
            Twin x = TWIN_DT(dts[a], h, n);
            Twin y = TWIN_DT(dts[b], NULL, n);
            ok(cpu, lily_op_cast(cpu, &x.c, &y.c));
            ok(gpu, lily_op_cast(gpu, &x.g, &y.g));
            snprintf(name, sizeof name, "cast %s -> %s", lily_dtype_name(dts[a]), lily_dtype_name(dts[b]));
            check_exact(name, &y);
        }
    end_case();
}

/* reduce's sum and sum of squares agree with the CPU's to 1e-9 relative, max |x| exactly,
 * and a NaN shows as a NaN max. */
static void test_reduce(void)
{
    if (!begin_case()) return;
    const int64_t n = 3000017;
    float *h = hrand((size_t)n, 141, -1.0f, 3.0f);
    Twin x = TWIN(h, n);
    double s[2], s2[2], m[2];
    ok(cpu, lily_op_reduce(cpu, &x.c, &s[0], &s2[0], &m[0]));
    ok(gpu, lily_op_reduce(gpu, &x.g, &s[1], &s2[1], &m[1]));
    g_test_message("reduce: sum %.12g / %.12g, sum_sq %.12g / %.12g, max_abs %.9g / %.9g (cpu / gpu)",
            s[0], s[1], s2[0], s2[1], m[0], m[1]);
    g_assert_cmpfloat(fabs(s[1] - s[0]), <=, 1e-9 * fabs(s[0]));
    g_assert_cmpfloat(fabs(s2[1] - s2[0]), <=, 1e-9 * s2[0]);
    g_assert_cmpfloat(m[1], ==, m[0]);
    h[12345] = NAN;
    Twin xn = TWIN(h, n);
    double mn = 0.0;
    ok(gpu, lily_op_reduce(gpu, &xn.g, NULL, NULL, &mn));
    g_assert_true(isnan(mn));
    end_case();
}

/* GEGLU and its gradient match the CPU. */
static void test_geglu(void)
{
    if (!begin_case()) return;
    Twin x = TWIN(hrand(37 * 2 * 120, 151, -4.0f, 4.0f), 37, 240);
    Twin y = TWIN(NULL, 37, 120), dy = TWIN_RAND(152, 37, 120), dx = TWIN(NULL, 37, 240);
    ok(cpu, lily_op_geglu(cpu, &x.c, &y.c));
    ok(gpu, lily_op_geglu(gpu, &x.g, &y.g));
    check("geglu [37,240]", &y, NMSE_ELEM, REL_ELEM);
    ok(cpu, lily_op_geglu_backward(cpu, &x.c, &dy.c, &dx.c));
    ok(gpu, lily_op_geglu_backward(gpu, &x.g, &dy.g, &dx.g));
    check("geglu backward", &dx, NMSE_ELEM, REL_ELEM);
    end_case();
}

/* ---------------------------------------------------------------------------------------- */
/* layout                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Nearest x2 upsampling and its gradient give the CPU's bits. */
static void test_upsample(void)
{
    if (!begin_case()) return;
    Twin x = TWIN_RAND(161, 2, 3, 9, 13), y = TWIN(NULL, 2, 3, 18, 26);
    ok(cpu, lily_op_upsample2x(cpu, &x.c, &y.c));
    ok(gpu, lily_op_upsample2x(gpu, &x.g, &y.g));
    check_exact("upsample2x", &y);
    Twin dy = TWIN_RAND(162, 2, 3, 18, 26), dx = TWIN(NULL, 2, 3, 9, 13);
    ok(cpu, lily_op_upsample2x_backward(cpu, &dy.c, &dx.c));
    ok(gpu, lily_op_upsample2x_backward(gpu, &dy.g, &dx.g));
    check_exact("upsample2x backward", &dx);
    end_case();
}

/* Channel concat and split (both halves, and one half only) give the CPU's bits. */
static void test_concat_split(void)
{
    if (!begin_case()) return;
    Twin a = TWIN_RAND(171, 2, 3, 5, 7), b = TWIN_RAND(172, 2, 4, 5, 7), y = TWIN(NULL, 2, 7, 5, 7);
    ok(cpu, lily_op_concat(cpu, &a.c, &b.c, &y.c));
    ok(gpu, lily_op_concat(gpu, &a.g, &b.g, &y.g));
    check_exact("concat", &y);
    Twin a2 = TWIN(NULL, 2, 3, 5, 7), b2 = TWIN(NULL, 2, 4, 5, 7), b3 = TWIN(NULL, 2, 4, 5, 7);
    ok(cpu, lily_op_split(cpu, &y.c, &a2.c, &b2.c));
    ok(gpu, lily_op_split(gpu, &y.g, &a2.g, &b2.g));
    check_exact("split a", &a2);
    check_exact("split b", &b2);
    ok(cpu, lily_op_split(cpu, &y.c, NULL, &b3.c));
    ok(gpu, lily_op_split(gpu, &y.g, NULL, &b3.g));
    check_exact("split b only", &b3);
    end_case();
}

/* 4-D transposes with Q = 1 (tiled kernel, sizes not multiples of the tile) and Q > 1 give
 * the CPU's bits. */
static void test_transpose(void)
{
    if (!begin_case()) return;
    Twin x = TWIN_RAND(181, 2, 37, 45), y = TWIN(NULL, 2, 45, 37);
    ok(cpu, lily_op_transpose(cpu, &x.c, 2, 37, 45, 1, &y.c));
    ok(gpu, lily_op_transpose(gpu, &x.g, 2, 37, 45, 1, &y.g));
    check_exact("transpose P2 A37 B45 Q1", &y);
    Twin x2 = TWIN_RAND(182, 3, 5, 7, 6), y2 = TWIN(NULL, 3, 7, 5, 6);
    ok(cpu, lily_op_transpose(cpu, &x2.c, 3, 5, 7, 6, &y2.c));
    ok(gpu, lily_op_transpose(gpu, &x2.g, 3, 5, 7, 6, &y2.g));
    check_exact("transpose P3 A5 B7 Q6", &y2);
    end_case();
}

/* Row-block copies between tensors and within one tensor (overlapping, both directions)
 * give the CPU's bits. */
static void test_copy_rows(void)
{
    if (!begin_case()) return;
    Twin src = TWIN_RAND(191, 3, 20, 7), dst = TWIN_RAND(192, 3, 9, 7);
    ok(cpu, lily_op_copy_rows(cpu, &src.c, 11, &dst.c, 2, 3, 6, 7));
    ok(gpu, lily_op_copy_rows(gpu, &src.g, 11, &dst.g, 2, 3, 6, 7));
    check_exact("copy_rows between tensors", &dst);
    Twin t = TWIN_RAND(193, 3, 8, 7);
    ok(cpu, lily_op_copy_rows(cpu, &t.c, 2, &t.c, 0, 3, 5, 7));
    ok(gpu, lily_op_copy_rows(gpu, &t.g, 2, &t.g, 0, 3, 5, 7));
    check_exact("copy_rows overlapping downwards", &t);
    ok(cpu, lily_op_copy_rows(cpu, &t.c, 0, &t.c, 3, 3, 5, 7));
    ok(gpu, lily_op_copy_rows(gpu, &t.g, 0, &t.g, 3, 3, 5, 7));
    check_exact("copy_rows overlapping upwards", &t);
    end_case();
}

/* ---------------------------------------------------------------------------------------- */
/* randomness and sampler                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* The GPU draws the CPU's Philox normals for the same seed, stream and row offset (to the
 * last bit except where double log/sin/cos differ by an ulp before the rounding to float). */
static void test_randn(void)
{
    if (!begin_case()) return;
    Twin y = TWIN(NULL, 3, 10, 17);
    ok(cpu, lily_op_randn(cpu, &y.c, 3, 17, 5, 42, 7));
    ok(gpu, lily_op_randn(gpu, &y.g, 3, 17, 5, 42, 7));
    size_t n = 3 * 10 * 17, same = 0;
    const float *a = down(cpu, &y.c), *b = down(gpu, &y.g);
    for (size_t i = 0; i < n; i++) same += memcmp(&a[i], &b[i], sizeof(float)) == 0;
    g_test_message("randn: %zu of %zu draws bit-identical", same, n);
    lt_assert_close_abs("randn [3,10,17] row0 5", b, a, n, ABS_RANDN);
    end_case();
}

/* The DDIM step with guidance and noise, without guidance, and without noise matches the
 * CPU, x0 included. */
static void test_ddim(void)
{
    if (!begin_case()) return;
    for (int variant = 0; variant < 3; variant++) {
        char name[96];
        Twin x = TWIN_RAND(201, 2, 8, 16, 16), vc = TWIN_RAND(202, 2, 8, 16, 16);
        Twin vu = TWIN_RAND(203, 2, 8, 16, 16), nz = TWIN_RAND(204, 2, 8, 16, 16);
        Twin x0 = TWIN(NULL, 2, 8, 16, 16);
        bool cfg = variant != 1, noise = variant != 2;
        double sigma = noise ? 0.1 : 0.0;
        ok(cpu, lily_op_ddim_step(cpu, &x.c, &vc.c, cfg ? &vu.c : NULL, noise ? &nz.c : NULL, 3.5f, 0.7,
                                  0.85, sigma, &x0.c));
        ok(gpu, lily_op_ddim_step(gpu, &x.g, &vc.g, cfg ? &vu.g : NULL, noise ? &nz.g : NULL, 3.5f, 0.7,
                                  0.85, sigma, &x0.g));
        snprintf(name, sizeof name, "ddim_step%s%s x", cfg ? " cfg" : "", noise ? " noise" : "");
        check(name, &x, NMSE_ELEM, REL_ELEM);
        snprintf(name, sizeof name, "ddim_step%s%s x0", cfg ? " cfg" : "", noise ? " noise" : "");
        check(name, &x0, NMSE_ELEM, REL_ELEM);
    }
    end_case();
}

/* ---------------------------------------------------------------------------------------- */
/* spectral                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* stft (window `hann` or random), istft of a random spectrum (imaginary parts of bins 0 and
 * n_fft/2 non-zero: both backends must ignore them) and stft_backward of a random dy. istft
 * uses a window in [0.5, 1): with a Hann window the envelope division multiplies the rounding
 * of the first and last samples by up to 1e5 (1 / w[2]), which would compare rounding noise;
 * the CPU tests cover that case against the input itself. With `repeat`, the three ops run
 * again on the device (cached plans, grown scratch) and must give the same bits. */
static void run_stft(int B, int64_t F, int N, int hop, int extra, bool hann, uint64_t seed, bool repeat)
{
    char name[96];
    const int K = N / 2 + 1;
    const int64_t L = (F - 1) * hop + N + extra, Lo = (F - 1) * hop + N;
    float *wh = hmem((size_t)N * sizeof(float));
    if (hann)
        for (int n = 0; n < N; n++) wh[n] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * n / N));
    else
        lt_fill_uniform(wh, (size_t)N, seed, 0.0f, 1.0f);
    Twin w = TWIN(wh, N), wp = TWIN(hrand((size_t)N, seed + 1, 0.5f, 1.0f), N);
    Twin x = TWIN_RAND(seed + 2, B, L), y = TWIN(NULL, B, F, K, 2);
    Twin spec = TWIN_RAND(seed + 3, B, F, K, 2), xr = TWIN(NULL, B, Lo);
    Twin dy = TWIN_RAND(seed + 4, B, F, K, 2), dx = TWIN(NULL, B, L);
    ok(cpu, lily_op_stft(cpu, &x.c, &w.c, N, hop, &y.c));
    ok(gpu, lily_op_stft(gpu, &x.g, &w.g, N, hop, &y.g));
    ok(cpu, lily_op_istft(cpu, &spec.c, &wp.c, N, hop, &xr.c));
    ok(gpu, lily_op_istft(gpu, &spec.g, &wp.g, N, hop, &xr.g));
    ok(cpu, lily_op_stft_backward(cpu, &w.c, N, hop, &dy.c, &dx.c));
    ok(gpu, lily_op_stft_backward(gpu, &w.g, N, hop, &dy.g, &dx.g));
    snprintf(name, sizeof name, "stft n_fft %d hop %d [%d,%lld]%s", N, hop, B, (long long)L,
             hann ? " hann" : "");
    check(name, &y, NMSE_FFT, REL_FFT);
    snprintf(name, sizeof name, "istft n_fft %d hop %d [%d,%lld,%d,2]", N, hop, B, (long long)F, K);
    check(name, &xr, NMSE_FFT, REL_FFT);
    snprintf(name, sizeof name, "stft_backward n_fft %d hop %d [%d,%lld]", N, hop, B, (long long)L);
    check(name, &dx, NMSE_FFT, REL_FFT);
    if (!repeat) return;
    const float *y1 = down(gpu, &y.g), *xr1 = down(gpu, &xr.g), *dx1 = down(gpu, &dx.g);
    Twin y2 = TWIN(NULL, B, F, K, 2), xr2 = TWIN(NULL, B, Lo), dx2 = TWIN(NULL, B, L);
    ok(gpu, lily_op_stft(gpu, &x.g, &w.g, N, hop, &y2.g));
    ok(gpu, lily_op_istft(gpu, &spec.g, &wp.g, N, hop, &xr2.g));
    ok(gpu, lily_op_stft_backward(gpu, &w.g, N, hop, &dy.g, &dx2.g));
    g_assert_cmpint(memcmp(y1, down(gpu, &y2.g), lily_tensor_nbytes(&y.g)), ==, 0);
    g_assert_cmpint(memcmp(xr1, down(gpu, &xr2.g), lily_tensor_nbytes(&xr.g)), ==, 0);
    g_assert_cmpint(memcmp(dx1, down(gpu, &dx2.g), lily_tensor_nbytes(&dx.g)), ==, 0);
    g_test_message("stft/istft/stft_backward n_fft %d, %lld frames: identical bits on a second run", N,
            (long long)(B * F));
}

/* Small and odd sizes, then AudioSR's setting (n_fft 2048, hop 480, periodic Hann) on 2 x 1300
 * frames: 2600 frames, which the GPU transforms in batches of 1024, 1024 and 552 (two plan
 * sizes, the first used twice per op), run twice (the cached plans again). */
static void test_stft(void)
{
    if (!begin_case()) return;
    run_stft(3, 40, 64, 16, 5, false, 801, false);
    run_stft(2, 9, 45, 7, 3, false, 811, false);
    run_stft(1, 4, 512, 512, 0, false, 821, false);
    run_stft(2, 1300, 2048, 480, 100, true, 831, true);
    end_case();
}

/* Lily's own GPU kernels are deterministic: group norm backward, attention backward and
 * reduce give the same bits twice. */
static void test_deterministic(void)
{
    if (!begin_case()) return;
    Twin x = TWIN(hrand(2 * 64 * 32 * 32, 211, 0.0f, 2.0f), 2, 64, 32, 32);
    Twin dy = TWIN_RAND(212, 2, 64, 32, 32);
    Twin dx1 = TWIN(NULL, 2, 64, 32, 32), dx2 = TWIN(NULL, 2, 64, 32, 32);
    ok(gpu, lily_op_group_norm_backward(gpu, &x.g, NULL, NULL, 32, 1e-5f, 1, &dy.g, &dx1.g, NULL, NULL));
    ok(gpu, lily_op_group_norm_backward(gpu, &x.g, NULL, NULL, 32, 1e-5f, 1, &dy.g, &dx2.g, NULL, NULL));
    size_t n = 2 * 64 * 32 * 32;
    g_assert_cmpint(memcmp(down(gpu, &dx1.g), down(gpu, &dx2.g), n * sizeof(float)), ==, 0);
    Twin q = TWIN_RAND(213, 4, 300, 64), k = TWIN_RAND(214, 4, 200, 64), v = TWIN_RAND(215, 4, 200, 64);
    Twin dout = TWIN_RAND(216, 4, 300, 64);
    Twin dk1 = TWIN(NULL, 4, 200, 64), dk2 = TWIN(NULL, 4, 200, 64);
    ok(gpu, lily_op_attention_backward(gpu, &q.g, &k.g, &v.g, 0.125f, &dout.g, NULL, &dk1.g, NULL));
    ok(gpu, lily_op_attention_backward(gpu, &q.g, &k.g, &v.g, 0.125f, &dout.g, NULL, &dk2.g, NULL));
    g_assert_cmpint(memcmp(down(gpu, &dk1.g), down(gpu, &dk2.g), 4 * 200 * 64 * sizeof(float)), ==, 0);
    double s1, s2;
    ok(gpu, lily_op_reduce(gpu, &x.g, &s1, NULL, NULL));
    ok(gpu, lily_op_reduce(gpu, &x.g, &s2, NULL, NULL));
    g_assert_cmpfloat(s1, ==, s2);
    g_test_message("group_norm backward, attention backward and reduce: identical bits on a second run");
    end_case();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    char err[512] = "";
    g_assert_cmpint(lily_context_new(NULL, &cpu, err, sizeof err), ==, LILY_OK);
    have_gpu = lct_open_gpu(&gpu, why, sizeof why);
    g_test_add_func("/lily/cuda/memory/upload-download", test_upload_download);
    g_test_add_func("/lily/cuda/memory/copy-overlap", test_copy_overlap);
    g_test_add_func("/lily/cuda/memory/out-of-memory", test_out_of_memory);
    g_test_add_func("/lily/cuda/memory/free-without-impl", test_free_without_impl);
    g_test_add_func("/lily/cuda/device/bad-index", test_bad_device_index);
    g_test_add_func("/lily/cuda/conv2d-f32", test_conv2d_f32);
    g_test_add_func("/lily/cuda/conv2d-half", test_conv2d_half);
    g_test_add_func("/lily/cuda/conv1d", test_conv1d);
    g_test_add_func("/lily/cuda/conv-transpose1d", test_conv_transpose1d);
    g_test_add_func("/lily/cuda/linear", test_linear);
    g_test_add_func("/lily/cuda/matmul", test_matmul);
    g_test_add_func("/lily/cuda/attention", test_attention);
    g_test_add_func("/lily/cuda/attention-blocked", test_attention_blocked);
    g_test_add_func("/lily/cuda/group-norm", test_group_norm);
    g_test_add_func("/lily/cuda/layer-norm", test_layer_norm);
    g_test_add_func("/lily/cuda/softmax", test_softmax);
    g_test_add_func("/lily/cuda/unary", test_unary);
    g_test_add_func("/lily/cuda/binary", test_binary);
    g_test_add_func("/lily/cuda/axpby-fill", test_axpby_fill);
    g_test_add_func("/lily/cuda/cast", test_cast);
    g_test_add_func("/lily/cuda/reduce", test_reduce);
    g_test_add_func("/lily/cuda/geglu", test_geglu);
    g_test_add_func("/lily/cuda/upsample2x", test_upsample);
    g_test_add_func("/lily/cuda/concat-split", test_concat_split);
    g_test_add_func("/lily/cuda/transpose", test_transpose);
    g_test_add_func("/lily/cuda/copy-rows", test_copy_rows);
    g_test_add_func("/lily/cuda/randn", test_randn);
    g_test_add_func("/lily/cuda/ddim-step", test_ddim);
    g_test_add_func("/lily/cuda/stft", test_stft);
    g_test_add_func("/lily/cuda/deterministic", test_deterministic);
    int rc = g_test_run();
    lily_context_free(gpu);
    lily_context_free(cpu);
    return rc;
}
