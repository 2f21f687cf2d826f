/* tests/kernels/test-ops.c - every forward op of the CPU backend against a naive C reference.
 *
 * References are written here, in double precision, straight from the definitions of the
 * PyTorch ops backend.h names (conv as cross-correlation with zero padding, ConvTranspose1d
 * as its adjoint, GroupNorm/LayerNorm with biased variance, exact-erf GELU, ...). Inputs are
 * lt_fill_uniform draws; outputs are pre-filled with NaN so an op that leaves an element
 * unwritten fails. Shapes include odd sizes, batch > 1, asymmetric padding, dilation and
 * several row blocks for attention.
 *
 * Tolerances (relative to the reference's peak |value| unless said otherwise):
 *   f32 products (conv, linear, matmul, attention): 1e-5; elementwise and norms: 2e-6;
 *   bf16 weights: 2e-5 against the reference fed bf16-rounded input and weights (proves the
 *   product is bf16 x bf16 with f32 accumulation) and NMSE <= 1e-4 against the f32 reference;
 *   f16 weights: 1e-5 against the reference fed f16-rounded weights (computed in f32);
 *   exp: 4e-7 relative per element over [-87, 88]; gelu tail: 1e-5 relative per element;
 *   copies, casts, randn: exact;
 *   stft, istft, stft_backward: see the spectral section. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "common/test-util.h"
#include "core/context.h"
#include "core/tensor.h"
#include "dsp/stft.h"
#include "kernels/common/activation.h"
#include "kernels/common/philox.h"

static LilyContext *ctx;

#define TOL_PROD 1e-5
#define TOL_ELEM 2e-6
#define TOL_BF16 2e-5
#define NMSE_BF16 1e-4

static void ok(LilyStatus st)
{
    if (st != LILY_OK) g_printerr("op failed: %s\n", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_OK);
}

static float *rnd(size_t n, uint64_t seed)
{
    float *p = g_new(float, n ? n : 1);
    lt_fill_uniform(p, n, seed, -1.0f, 1.0f);
    return p;
}

static float *nans(size_t n)
{
    float *p = g_new(float, n ? n : 1);
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

static float *to_f32(const double *d, size_t n)
{
    float *p = g_new(float, n ? n : 1);
    for (size_t i = 0; i < n; i++) p[i] = (float)d[i];
    return p;
}

#define TEN(p, ...) lily_tensor_make((p), LILY_DTYPE_F32, LILY_DEVICE_CPU, LILY_SHAPE(__VA_ARGS__))

/* Copies of x rounded to bf16 (as float), and the raw bf16 / f16 words. */
static float *round_bf16(const float *x, size_t n)
{
    float *p = g_new(float, n);
    for (size_t i = 0; i < n; i++) p[i] = lily_bf16_to_f32(lily_f32_to_bf16(x[i]));
    return p;
}

static uint16_t *words(const float *x, size_t n, LilyDType dt)
{
    uint16_t *p = g_new(uint16_t, n);
    for (size_t i = 0; i < n; i++) p[i] = dt == LILY_DTYPE_BF16 ? lily_f32_to_bf16(x[i]) : lily_f32_to_f16(x[i]);
    return p;
}

static float *round_f16(const float *x, size_t n)
{
    float *p = g_new(float, n);
    for (size_t i = 0; i < n; i++) p[i] = lily_f16_to_f32(lily_f32_to_f16(x[i]));
    return p;
}

/* An operand as a product with weights of dtype wdt sees it: for bf16 weights the input and
 * the weights are rounded to bf16; f16 weights are rounded to f16 while the input stays f32
 * (f16 computes in f32). A copy either way. */
static float *operand(const float *v, size_t n, LilyDType wdt, bool weight)
{
    if (wdt == LILY_DTYPE_BF16) return round_bf16(v, n);
    if (weight && wdt == LILY_DTYPE_F16) return round_f16(v, n);
    return g_memdup2(v, n * sizeof(float));
}

/* The product's tolerance against a reference on the operands it saw. */
static double prod_tol(LilyDType wdt)
{
    return wdt == LILY_DTYPE_BF16 ? TOL_BF16 : TOL_PROD;
}

/* y against a double reference, relative to its peak. */
static void assert_ref(const char *name, const float *y, const double *ref, size_t ny, double tol)
{
    float *rf = to_f32(ref, ny);
    lt_assert_close_rel(name, y, rf, ny, tol);
    g_free(rf);
}

/* ---------------------------------------------------------------------------------------- */
/* references                                                                                */
/* ---------------------------------------------------------------------------------------- */

typedef struct Geo2 {
    int N, C, H, W, O, KH, KW, Ho, Wo;
    int sh, sw, pt, pl, pb, pr, dh, dw;
} Geo2;

static void geo_out(Geo2 *g)
{
    g->Ho = (g->H + g->pt + g->pb - (g->KH - 1) * g->dh - 1) / g->sh + 1;
    g->Wo = (g->W + g->pl + g->pr - (g->KW - 1) * g->dw - 1) / g->sw + 1;
}

static void ref_conv2d(const Geo2 *g, const float *x, const float *w, const float *b, double *y)
{
    for (int n = 0; n < g->N; n++)
        for (int o = 0; o < g->O; o++)
            for (int i = 0; i < g->Ho; i++)
                for (int j = 0; j < g->Wo; j++) {
                    double acc = b ? b[o] : 0.0;
                    for (int c = 0; c < g->C; c++)
                        for (int ki = 0; ki < g->KH; ki++)
                            for (int kj = 0; kj < g->KW; kj++) {
                                int hi = i * g->sh - g->pt + ki * g->dh, wi = j * g->sw - g->pl + kj * g->dw;
                                if (hi < 0 || hi >= g->H || wi < 0 || wi >= g->W) continue;
                                acc += (double)x[((n * g->C + c) * g->H + hi) * g->W + wi] *
                                       w[((o * g->C + c) * g->KH + ki) * g->KW + kj];
                            }
                    y[((n * g->O + o) * g->Ho + i) * g->Wo + j] = acc;
                }
}

/* PyTorch ConvTranspose1d: y[n,o,l*s - p + k] += x[n,c,l] w[c,o,k]. */
static void ref_convt1d(int N, int C, int L, int O, int K, int s, int p, const float *x, const float *w,
                        const float *b, double *y)
{
    int Lo = (L - 1) * s - 2 * p + K;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++)
            for (int t = 0; t < Lo; t++) y[(n * O + o) * Lo + t] = b ? b[o] : 0.0;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int l = 0; l < L; l++)
                for (int o = 0; o < O; o++)
                    for (int k = 0; k < K; k++) {
                        int t = l * s - p + k;
                        if (t < 0 || t >= Lo) continue;
                        y[(n * O + o) * Lo + t] += (double)x[(n * C + c) * L + l] * w[(c * O + o) * K + k];
                    }
}

static void ref_linear(int M, int K, int N, const float *x, const float *w, const float *b, double *y)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = b ? b[j] : 0.0;
            for (int k = 0; k < K; k++) acc += (double)x[i * K + k] * w[j * K + k];
            y[i * N + j] = acc;
        }
}

static void ref_attention(int B, int T, int S, int D, int Dv, const float *q, const float *k, const float *v,
                          double scale, double *out)
{
    double *p = g_new(double, S);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            double m = -INFINITY, sum = 0.0;
            for (int s = 0; s < S; s++) {
                double acc = 0.0;
                for (int d = 0; d < D; d++) acc += (double)q[(b * T + t) * D + d] * k[(b * S + s) * D + d];
                p[s] = acc * scale;
                if (p[s] > m) m = p[s];
            }
            for (int s = 0; s < S; s++) sum += (p[s] = exp(p[s] - m));
            for (int d = 0; d < Dv; d++) {
                double acc = 0.0;
                for (int s = 0; s < S; s++) acc += p[s] * v[(b * S + s) * Dv + d];
                out[(b * T + t) * Dv + d] = acc / sum;
            }
        }
    g_free(p);
}

static double silu_d(double x)
{
    return x / (1.0 + exp(-x));
}

static void ref_group_norm(int N, int C, int S, int G, const float *x, const float *g, const float *be,
                           double eps, int silu, double *y)
{
    int cg = C / G;
    for (int n = 0; n < N; n++)
        for (int gi = 0; gi < G; gi++) {
            const float *xp = x + ((size_t)n * C + (size_t)gi * cg) * S;
            double m = 0.0, v = 0.0;
            for (int i = 0; i < cg * S; i++) m += xp[i];
            m /= cg * S;
            for (int i = 0; i < cg * S; i++) v += (xp[i] - m) * (xp[i] - m);
            v /= cg * S;
            double r = 1.0 / sqrt(v + eps);
            for (int c = 0; c < cg; c++) {
                int ch = gi * cg + c;
                for (int i = 0; i < S; i++) {
                    double z = (xp[c * S + i] - m) * r * (g ? g[ch] : 1.0) + (be ? be[ch] : 0.0);
                    y[((size_t)n * C + ch) * S + i] = silu ? silu_d(z) : z;
                }
            }
        }
}

/* erfc form: keeps relative precision for large negative x, where 1 + erf cancels */
static double gelu_d(double x)
{
    return 0.5 * x * erfc(-x / sqrt(2.0));
}

static double ref_unary(LilyUnaryOp op, double a, double x)
{
    switch (op) {
    case LILY_UNARY_IDENTITY: return x;
    case LILY_UNARY_SILU: return silu_d(x);
    case LILY_UNARY_GELU: return gelu_d(x);
    case LILY_UNARY_LEAKY_RELU: return x > 0 ? x : a * x;
    case LILY_UNARY_TANH: return tanh(x);
    case LILY_UNARY_EXP: return exp(x);
    case LILY_UNARY_SCALE: return a * x;
    case LILY_UNARY_ADD_SCALAR: return x + a;
    case LILY_UNARY_SQUARE: return x * x;
    case LILY_UNARY_ABS: return fabs(x);
    case LILY_UNARY_MIN: return x < a ? x : a;
    case LILY_UNARY_MAX: return x > a ? x : a;
    case LILY_UNARY_SIGMOID: return 1.0 / (1.0 + exp(-x));
    default: return NAN;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* dense products                                                                            */
/* ---------------------------------------------------------------------------------------- */

static void run_conv2d(const char *name, Geo2 g, int with_bias, LilyDType wdt, uint64_t stamp)
{
    geo_out(&g);
    size_t nx = (size_t)g.N * g.C * g.H * g.W, nw = (size_t)g.O * g.C * g.KH * g.KW;
    size_t ny = (size_t)g.N * g.O * g.Ho * g.Wo;
    float *x = rnd(nx, 1), *w = rnd(nw, 2), *b = with_bias ? rnd((size_t)g.O, 3) : NULL;
    float *y = nans(ny);
    double *ref = g_new(double, ny);
    uint16_t *wh = wdt != LILY_DTYPE_F32 ? words(w, nw, wdt) : NULL;
    LilyTensor tx = TEN(x, g.N, g.C, g.H, g.W);
    LilyTensor tw = lily_tensor_make(wh ? (void *)wh : (void *)w, wdt, LILY_DEVICE_CPU,
                                     LILY_SHAPE(g.O, g.C, g.KH, g.KW));
    tw.stamp = stamp;
    LilyTensor tb = TEN(b, g.O);
    LilyTensor ty = TEN(y, g.N, g.O, g.Ho, g.Wo);
    LilyConvParams p = {{g.sh, g.sw}, {g.pt, g.pl}, {g.pb, g.pr}, {g.dh, g.dw}};
    /* twice: the second call runs from the primitive (and weight) caches */
    for (int rep = 0; rep < 2; rep++) {
        for (size_t i = 0; i < ny; i++) y[i] = NAN;
        ok(lily_op_conv2d(ctx, &tx, &tw, b ? &tb : NULL, &p, &ty));
    }
    if (wdt == LILY_DTYPE_F32) {
        ref_conv2d(&g, x, w, b, ref);
        assert_ref(name, y, ref, ny, TOL_PROD);
    } else {
        float *xr = operand(x, nx, wdt, false), *wr = operand(w, nw, wdt, true);
        ref_conv2d(&g, xr, wr, b, ref);
        char nm[96];
        snprintf(nm, sizeof nm, "%s vs rounded-input ref", name);
        assert_ref(nm, y, ref, ny, prod_tol(wdt));
        ref_conv2d(&g, x, w, b, ref);
        float *rf = to_f32(ref, ny);
        snprintf(nm, sizeof nm, "%s vs f32 ref", name);
        lt_assert_nmse(nm, y, rf, ny, NMSE_BF16);
        g_free(rf);
        g_free(xr);
        g_free(wr);
    }
    g_free(x);
    g_free(w);
    g_free(b);
    g_free(y);
    g_free(ref);
    g_free(wh);
}

/* conv2d f32 matches direct cross-correlation: padding, stride, asymmetric pads, dilation, 1x1. */
static void test_conv2d(void)
{
    run_conv2d("conv2d 2x3x7x9 k3 p1", (Geo2){.N = 2, .C = 3, .H = 7, .W = 9, .O = 5, .KH = 3, .KW = 3, .sh = 1, .sw = 1, .pt = 1, .pl = 1, .pb = 1, .pr = 1, .dh = 1, .dw = 1}, 1, LILY_DTYPE_F32, 0);
    run_conv2d("conv2d k3 s2 pads(0,0,1,1)", (Geo2){.N = 1, .C = 4, .H = 8, .W = 6, .O = 3, .KH = 3, .KW = 3, .sh = 2, .sw = 2, .pt = 0, .pl = 0, .pb = 1, .pr = 1, .dh = 1, .dw = 1}, 1, LILY_DTYPE_F32, 0);
    run_conv2d("conv2d 1x1 no bias", (Geo2){.N = 1, .C = 5, .H = 6, .W = 7, .O = 4, .KH = 1, .KW = 1, .sh = 1, .sw = 1, .dh = 1, .dw = 1}, 0, LILY_DTYPE_F32, 0);
    run_conv2d("conv2d k3 dil2 p2", (Geo2){.N = 1, .C = 3, .H = 9, .W = 8, .O = 2, .KH = 3, .KW = 3, .sh = 1, .sw = 1, .pt = 2, .pl = 2, .pb = 2, .pr = 2, .dh = 2, .dw = 2}, 1, LILY_DTYPE_F32, 0);
    run_conv2d("conv2d C=1 k3 (plain layout)", (Geo2){.N = 1, .C = 1, .H = 12, .W = 10, .O = 16, .KH = 3, .KW = 3, .sh = 1, .sw = 1, .pt = 1, .pl = 1, .pb = 1, .pr = 1, .dh = 1, .dw = 1}, 1, LILY_DTYPE_F32, 0);
    run_conv2d("conv2d O=1 k3", (Geo2){.N = 1, .C = 16, .H = 12, .W = 10, .O = 1, .KH = 3, .KW = 3, .sh = 1, .sw = 1, .pt = 1, .pl = 1, .pb = 1, .pr = 1, .dh = 1, .dw = 1}, 1, LILY_DTYPE_F32, 0);
    run_conv2d("conv2d 32ch 17x13 k3 stamped", (Geo2){.N = 1, .C = 32, .H = 17, .W = 13, .O = 48, .KH = 3, .KW = 3, .sh = 1, .sw = 1, .pt = 1, .pl = 1, .pb = 1, .pr = 1, .dh = 1, .dw = 1}, 1, LILY_DTYPE_F32, 0x1234);
}

/* conv2d with bf16 weights is a bf16 x bf16 product accumulated in f32; f16 computes in f32. */
static void test_conv2d_half(void)
{
    Geo2 g = {.N = 2, .C = 24, .H = 9, .W = 11, .O = 20, .KH = 3, .KW = 3, .sh = 1, .sw = 1, .pt = 1, .pl = 1, .pb = 1, .pr = 1, .dh = 1, .dw = 1};
    run_conv2d("conv2d bf16", g, 1, LILY_DTYPE_BF16, 0);
    run_conv2d("conv2d bf16 stamped", g, 1, LILY_DTYPE_BF16, 0x777);
    run_conv2d("conv2d f16", g, 1, LILY_DTYPE_F16, 0);
    Geo2 g1 = {.N = 1, .C = 40, .H = 7, .W = 9, .O = 24, .KH = 1, .KW = 1, .sh = 1, .sw = 1, .dh = 1, .dw = 1};
    run_conv2d("conv2d 1x1 bf16 (plain layout)", g1, 1, LILY_DTYPE_BF16, 0x779);
    run_conv2d("conv2d f16 stamped", g, 0, LILY_DTYPE_F16, 0x778);
}

static void run_conv1d(const char *name, int N, int C, int L, int O, int K, int s, int pad, int dil,
                       LilyDType wdt)
{
    Geo2 g = {.N = N, .C = C, .H = 1, .W = L, .O = O, .KH = 1, .KW = K, .sh = 1, .sw = s, .pl = pad, .pr = pad, .dh = 1, .dw = dil};
    geo_out(&g);
    size_t nx = (size_t)N * C * L, nw = (size_t)O * C * K, ny = (size_t)N * O * g.Wo;
    float *x = rnd(nx, 11), *w = rnd(nw, 12), *b = rnd((size_t)O, 13), *y = nans(ny);
    double *ref = g_new(double, ny);
    uint16_t *wh = wdt != LILY_DTYPE_F32 ? words(w, nw, wdt) : NULL;
    LilyTensor tx = TEN(x, N, C, L), ty = TEN(y, N, O, g.Wo), tb = TEN(b, O);
    LilyTensor tw = lily_tensor_make(wh ? (void *)wh : (void *)w, wdt, LILY_DEVICE_CPU, LILY_SHAPE(O, C, K));
    LilyConvParams p = lily_conv1d_params(s, pad, dil);
    ok(lily_op_conv1d(ctx, &tx, &tw, &tb, &p, &ty));
    float *xr = operand(x, nx, wdt, false), *wr = operand(w, nw, wdt, true);
    ref_conv2d(&g, xr, wr, b, ref);
    assert_ref(name, y, ref, ny, prod_tol(wdt));
    g_free(xr);
    g_free(wr);
    g_free(x);
    g_free(w);
    g_free(b);
    g_free(y);
    g_free(ref);
    g_free(wh);
}

/* conv1d matches direct cross-correlation, with dilation (HiFi-GAN's 1/3/5) and stride. */
static void test_conv1d(void)
{
    run_conv1d("conv1d 2x3x17 k5 p2", 2, 3, 17, 4, 5, 1, 2, 1, LILY_DTYPE_F32);
    run_conv1d("conv1d k7 d3 p9", 1, 6, 40, 5, 7, 1, 9, 3, LILY_DTYPE_F32);
    run_conv1d("conv1d k11 d5 p25 odd", 1, 7, 61, 9, 11, 1, 25, 5, LILY_DTYPE_F32);
    run_conv1d("conv1d k4 s2 p1", 1, 4, 33, 3, 4, 2, 1, 1, LILY_DTYPE_F32);
    run_conv1d("conv1d bf16 k7 d3", 1, 32, 50, 16, 7, 1, 9, 3, LILY_DTYPE_BF16);
}

static void run_convt(const char *name, int N, int C, int L, int O, int K, int s, int pad, int bias,
                      LilyDType wdt)
{
    int Lo = (L - 1) * s - 2 * pad + K;
    size_t nx = (size_t)N * C * L, nw = (size_t)C * O * K, ny = (size_t)N * O * Lo;
    float *x = rnd(nx, 21), *w = rnd(nw, 22), *b = bias ? rnd((size_t)O, 23) : NULL, *y = nans(ny);
    double *ref = g_new(double, ny);
    uint16_t *wh = wdt != LILY_DTYPE_F32 ? words(w, nw, wdt) : NULL;
    LilyTensor tx = TEN(x, N, C, L), ty = TEN(y, N, O, Lo), tb = TEN(b, O);
    LilyTensor tw = lily_tensor_make(wh ? (void *)wh : (void *)w, wdt, LILY_DEVICE_CPU, LILY_SHAPE(C, O, K));
    ok(lily_op_conv_transpose1d(ctx, &tx, &tw, b ? &tb : NULL, s, pad, &ty));
    float *xr = operand(x, nx, wdt, false), *wr = operand(w, nw, wdt, true);
    ref_convt1d(N, C, L, O, K, s, pad, xr, wr, b, ref);
    assert_ref(name, y, ref, ny, prod_tol(wdt));
    g_free(xr);
    g_free(wr);
    g_free(x);
    g_free(w);
    g_free(b);
    g_free(y);
    g_free(ref);
    g_free(wh);
}

/* conv_transpose1d matches PyTorch ConvTranspose1d (weights [C, O, K]) at HiFi-GAN's geometries. */
static void test_conv_transpose1d(void)
{
    run_convt("convT1d u6 k12 p3", 1, 6, 10, 4, 12, 6, 3, 1, LILY_DTYPE_F32);
    run_convt("convT1d u5 k10 p2 (5L+1)", 2, 5, 9, 3, 10, 5, 2, 1, LILY_DTYPE_F32);
    run_convt("convT1d u2 k4 p1 no bias", 2, 3, 7, 5, 4, 2, 1, 0, LILY_DTYPE_F32);
    run_convt("convT1d bf16 u4 k8 p2", 1, 32, 13, 16, 8, 4, 2, 1, LILY_DTYPE_BF16);
}

static void run_linear(const char *name, int lead, int M, int K, int N, int bias, LilyDType wdt, uint64_t stamp)
{
    size_t nx = (size_t)lead * M * K, nw = (size_t)N * K, ny = (size_t)lead * M * N;
    float *x = rnd(nx, 31), *w = rnd(nw, 32), *b = bias ? rnd((size_t)N, 33) : NULL, *y = nans(ny);
    double *ref = g_new(double, ny);
    uint16_t *wh = wdt != LILY_DTYPE_F32 ? words(w, nw, wdt) : NULL;
    LilyTensor tx = TEN(x, lead, M, K), ty = TEN(y, lead, M, N), tb = TEN(b, N);
    LilyTensor tw = lily_tensor_make(wh ? (void *)wh : (void *)w, wdt, LILY_DEVICE_CPU, LILY_SHAPE(N, K));
    tw.stamp = stamp;
    for (int rep = 0; rep < 2; rep++) ok(lily_op_linear(ctx, &tx, &tw, b ? &tb : NULL, &ty));
    float *xr = operand(x, nx, wdt, false), *wr = operand(w, nw, wdt, true);
    ref_linear(lead * M, K, N, xr, wr, b, ref);
    assert_ref(name, y, ref, ny, prod_tol(wdt));
    if (wdt == LILY_DTYPE_BF16) {
        ref_linear(lead * M, K, N, x, w, b, ref);
        float *rf = to_f32(ref, ny);
        lt_assert_nmse("  same vs f32 ref", y, rf, ny, NMSE_BF16);
        g_free(rf);
    }
    g_free(xr);
    g_free(wr);
    g_free(x);
    g_free(w);
    g_free(b);
    g_free(y);
    g_free(ref);
    g_free(wh);
}

/* linear matches x w^T + b with leading dims flattened, for f32/bf16/f16 weights, cached or not. */
static void test_linear(void)
{
    run_linear("linear 2x7x13 -> 11", 2, 7, 13, 11, 1, LILY_DTYPE_F32, 0);
    run_linear("linear M=1 no bias", 1, 1, 33, 17, 0, LILY_DTYPE_F32, 0);
    run_linear("linear 64x96->80 stamped", 1, 64, 96, 80, 1, LILY_DTYPE_F32, 0x99);
    run_linear("linear bf16", 1, 37, 64, 48, 1, LILY_DTYPE_BF16, 0);
    run_linear("linear bf16 stamped", 1, 37, 64, 48, 1, LILY_DTYPE_BF16, 0x9a);
    run_linear("linear f16", 1, 9, 40, 24, 1, LILY_DTYPE_F16, 0);
}

/* matmul matches alpha op(a) op(b) + beta c for all four transpose pairs; beta 0 ignores c's NaN. */
static void test_matmul(void)
{
    const int B = 3, M = 5, N = 7, K = 4;
    for (int tr = 0; tr < 4; tr++) {
        int ta = tr & 1, tb = tr >> 1;
        float *a = rnd((size_t)B * M * K, 41 + tr), *b = rnd((size_t)B * K * N, 51 + tr);
        float *c = rnd((size_t)B * M * N, 61 + tr), *c0 = g_memdup2(c, (size_t)B * M * N * 4);
        double *ref = g_new(double, (size_t)B * M * N);
        for (int beta_zero = 0; beta_zero < 2; beta_zero++) {
            float alpha = 0.7f, beta = beta_zero ? 0.0f : 0.3f;
            if (beta_zero)
                for (int i = 0; i < B * M * N; i++) c[i] = NAN;
            else
                memcpy(c, c0, (size_t)B * M * N * 4);
            LilyTensor A = ta ? TEN(a, B, K, M) : TEN(a, B, M, K);
            LilyTensor Bt = tb ? TEN(b, B, N, K) : TEN(b, B, K, N);
            LilyTensor C = TEN(c, B, M, N);
            ok(lily_op_matmul(ctx, &A, ta, &Bt, tb, alpha, beta, &C));
            for (int bb = 0; bb < B; bb++)
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double acc = 0.0;
                        for (int k = 0; k < K; k++) {
                            double av = ta ? a[(bb * K + k) * M + i] : a[(bb * M + i) * K + k];
                            double bv = tb ? b[(bb * N + j) * K + k] : b[(bb * K + k) * N + j];
                            acc += av * bv;
                        }
                        ref[(bb * M + i) * N + j] = alpha * acc + (beta_zero ? 0.0 : beta * (double)c0[(bb * M + i) * N + j]);
                    }
            float *rf = to_f32(ref, (size_t)B * M * N);
            char nm[64];
            snprintf(nm, sizeof nm, "matmul ta=%d tb=%d beta=%g", ta, tb, beta);
            lt_assert_close_rel(nm, c, rf, (size_t)B * M * N, TOL_PROD);
            g_free(rf);
        }
        g_free(a);
        g_free(b);
        g_free(c);
        g_free(c0);
        g_free(ref);
    }
}

static void run_attention(const char *name, int B, int T, int S, int D, int Dv, float scale)
{
    size_t nq = (size_t)B * T * D, nk = (size_t)B * S * D, nv = (size_t)B * S * Dv, no = (size_t)B * T * Dv;
    float *q = rnd(nq, 71), *k = rnd(nk, 72), *v = rnd(nv, 73), *o = nans(no);
    for (size_t i = 0; i < nq; i++) q[i] *= 3.0f; /* peaky rows, so the max subtraction matters */
    double *ref = g_new(double, no);
    LilyTensor tq = TEN(q, B, T, D), tk = TEN(k, B, S, D), tv = TEN(v, B, S, Dv), to = TEN(o, B, T, Dv);
    ok(lily_op_attention(ctx, &tq, &tk, &tv, scale, &to));
    ref_attention(B, T, S, D, Dv, q, k, v, scale, ref);
    assert_ref(name, o, ref, no, TOL_PROD);
    g_free(q);
    g_free(k);
    g_free(v);
    g_free(o);
    g_free(ref);
}

/* attention matches softmax(q k^T scale) v: odd sizes, Dv != D, several row blocks, many heads. */
static void test_attention(void)
{
    run_attention("attention 2x5x7 D3 Dv4", 2, 5, 7, 3, 4, 0.6f);
    run_attention("attention 8 heads 33x33 D32", 8, 33, 33, 32, 32, 0.1767767f);
    run_attention("attention 1x300x300 D16 (2 blocks)", 1, 300, 300, 16, 16, 0.25f);
    run_attention("attention T != S 1x9x40", 1, 9, 40, 8, 8, 0.35f);
}

/* ---------------------------------------------------------------------------------------- */
/* normalisation                                                                             */
/* ---------------------------------------------------------------------------------------- */

static void run_group_norm(const char *name, int N, int C, int H, int W, int G, float eps, int silu,
                           int affine, float offset)
{
    size_t n = (size_t)N * C * H * W;
    float *x = rnd(n, 81), *g = rnd((size_t)C, 82), *b = rnd((size_t)C, 83), *y = nans(n);
    for (size_t i = 0; i < n; i++) x[i] = x[i] * 2.0f + offset;
    double *ref = g_new(double, n);
    LilyTensor tx = TEN(x, N, C, H, W), ty = TEN(y, N, C, H, W), tg = TEN(g, C), tb = TEN(b, C);
    ok(lily_op_group_norm(ctx, &tx, affine ? &tg : NULL, affine ? &tb : NULL, G, eps, silu, &ty));
    ref_group_norm(N, C, H * W, G, x, affine ? g : NULL, affine ? b : NULL, eps, silu, ref);
    assert_ref(name, y, ref, n, TOL_ELEM);
    g_free(x);
    g_free(g);
    g_free(b);
    g_free(y);
    g_free(ref);
}

/* group_norm matches torch group_norm (+ SiLU) with double statistics, also under a large mean. */
static void test_group_norm(void)
{
    run_group_norm("group_norm 2x6x5x7 G3", 2, 6, 5, 7, 3, 1e-5f, 0, 1, 0.0f);
    run_group_norm("group_norm + silu G32 eps1e-6", 1, 64, 9, 11, 32, 1e-6f, 1, 1, 0.0f);
    run_group_norm("group_norm no affine G1", 2, 5, 3, 3, 1, 1e-5f, 0, 0, 0.0f);
    run_group_norm("group_norm mean 100 (stability)", 1, 8, 16, 16, 4, 1e-5f, 0, 1, 100.0f);
    run_group_norm("group_norm + silu 1x64x33x31 (threaded)", 1, 64, 33, 31, 32, 1e-6f, 1, 1, 0.0f);
}

/* layer_norm matches torch layer_norm over the last dim, with and without affine parameters. */
static void test_layer_norm(void)
{
    const int M = 9, D = 37;
    float *x = rnd((size_t)M * D, 91), *g = rnd(D, 92), *b = rnd(D, 93), *y = nans((size_t)M * D);
    for (int i = 0; i < M * D; i++) x[i] = 3.0f * x[i] + 5.0f;
    double *ref = g_new(double, (size_t)M * D);
    for (int affine = 0; affine < 2; affine++) {
        LilyTensor tx = TEN(x, 3, 3, D), ty = TEN(y, 3, 3, D), tg = TEN(g, D), tb = TEN(b, D);
        ok(lily_op_layer_norm(ctx, &tx, affine ? &tg : NULL, affine ? &tb : NULL, 1e-5f, &ty));
        for (int r = 0; r < M; r++) {
            double m = 0, v = 0;
            for (int j = 0; j < D; j++) m += x[r * D + j];
            m /= D;
            for (int j = 0; j < D; j++) v += (x[r * D + j] - m) * (x[r * D + j] - m);
            v /= D;
            for (int j = 0; j < D; j++)
                ref[r * D + j] = (x[r * D + j] - m) / sqrt(v + 1e-5) * (affine ? g[j] : 1.0) + (affine ? b[j] : 0.0);
        }
        assert_ref(affine ? "layer_norm affine" : "layer_norm plain", y, ref, (size_t)M * D, TOL_ELEM);
    }
    g_free(x);
    g_free(g);
    g_free(b);
    g_free(y);
    g_free(ref);
}

/* softmax matches torch.softmax(x * scale, -1), also for logits near 80 (no overflow). */
static void test_softmax(void)
{
    const int M = 6, D = 19;
    float *x = rnd((size_t)M * D, 101), *y = nans((size_t)M * D);
    double *ref = g_new(double, (size_t)M * D);
    for (int big = 0; big < 2; big++) {
        float scale = big ? 80.0f : 0.5f;
        LilyTensor tx = TEN(x, M, D), ty = TEN(y, M, D);
        ok(lily_op_softmax(ctx, &tx, scale, &ty));
        for (int r = 0; r < M; r++) {
            double m = -INFINITY, s = 0;
            for (int j = 0; j < D; j++) m = fmax(m, (double)x[r * D + j] * scale);
            for (int j = 0; j < D; j++) s += exp((double)x[r * D + j] * scale - m);
            for (int j = 0; j < D; j++) ref[r * D + j] = exp((double)x[r * D + j] * scale - m) / s;
        }
        assert_ref(big ? "softmax scale 80" : "softmax scale 0.5", y, ref, (size_t)M * D, TOL_ELEM);
    }
    g_free(x);
    g_free(y);
    g_free(ref);
}

/* ---------------------------------------------------------------------------------------- */
/* elementwise                                                                               */
/* ---------------------------------------------------------------------------------------- */

/* Every unary op matches its double-precision definition over [-6, 6] (in place too, and over
 * 100003 elements for the threaded path). */
static void test_unary(void)
{
    const size_t n = 1001;
    static const char *const names[] = {"identity", "silu", "gelu", "leaky_relu", "tanh", "exp", "scale",
                                        "add_scalar", "square", "abs", "min", "max", "sigmoid"};
    G_STATIC_ASSERT(G_N_ELEMENTS(names) == LILY_UNARY_COUNT);
    float *x = g_new(float, n), *y = nans(n), *rf = g_new(float, n);
    lt_fill_uniform(x, n, 111, -6.0f, 6.0f);
    x[0] = 0.0f;
    for (int op = 0; op < LILY_UNARY_COUNT; op++) {
        float alpha = op == LILY_UNARY_LEAKY_RELU ? 0.1f : 0.75f;
        LilyTensor tx = TEN(x, n), ty = TEN(y, n);
        ok(lily_op_unary(ctx, (LilyUnaryOp)op, alpha, &tx, &ty));
        for (size_t i = 0; i < n; i++) rf[i] = (float)ref_unary((LilyUnaryOp)op, alpha, x[i]);
        char nm[64];
        snprintf(nm, sizeof nm, "unary %s", names[op]);
        lt_assert_close_rel(nm, y, rf, n, TOL_ELEM);
    }
    /* a long vector: threads and chunk remainders */
    const size_t nl = 100003;
    float *xl = g_new(float, nl), *yl = nans(nl), *rl = g_new(float, nl);
    lt_fill_uniform(xl, nl, 112, -8.0f, 8.0f);
    static const LilyUnaryOp longops[3] = {LILY_UNARY_SILU, LILY_UNARY_GELU, LILY_UNARY_LEAKY_RELU};
    for (int k = 0; k < 3; k++) {
        LilyTensor tx = TEN(xl, nl), ty = TEN(yl, nl);
        ok(lily_op_unary(ctx, longops[k], 0.1f, &tx, &ty));
        for (size_t i = 0; i < nl; i++) rl[i] = (float)ref_unary(longops[k], 0.1f, xl[i]);
        char nm[64];
        snprintf(nm, sizeof nm, "unary %s n=100003", names[longops[k]]);
        lt_assert_close_rel(nm, yl, rl, nl, TOL_ELEM);
    }
    g_free(xl);
    g_free(yl);
    g_free(rl);
    /* in place */
    float *z = g_memdup2(x, n * 4);
    LilyTensor tz = TEN(z, n);
    ok(lily_op_unary(ctx, LILY_UNARY_SILU, 0.0f, &tz, &tz));
    for (size_t i = 0; i < n; i++) rf[i] = (float)silu_d(x[i]);
    lt_assert_close_rel("unary silu in place", z, rf, n, TOL_ELEM);
    g_free(z);
    g_free(x);
    g_free(y);
    g_free(rf);
}

/* lily_expf (used by softmax, SiLU, GELU) is within 4e-7 relative of exp over its whole range,
 * exact at 0, 0 / inf / NaN at -inf / +inf / NaN, and gelu keeps relative precision (1e-5) in its negative tail down to -9. */
static void test_exp_accuracy(void)
{
    double worst = 0.0, worst_x = 0.0;
    for (int i = 0; i <= 200000; i++) {
        float x = -87.0f + 175.0f * (float)i / 200000.0f;
        double e = exp((double)x), got = lily_expf(x);
        double rel = fabs(got - e) / e;
        if (rel > worst) {
            worst = rel;
            worst_x = x;
        }
    }
    g_test_message("lily_expf: max rel err %.3e at x = %.4f (tol 4e-7)", worst, worst_x);
    g_assert_cmpfloat(worst, <=, 4e-7);
    g_assert_cmpfloat(lily_expf(-100.0f), ==, 0.0f);
    g_assert_cmpfloat(lily_expf(-INFINITY), ==, 0.0f);
    g_assert_true(isinf(lily_expf(100.0f)) && lily_expf(100.0f) > 0.0f);
    g_assert_true(isinf(lily_expf(INFINITY)));
    g_assert_true(isnan(lily_expf(NAN)));
    g_assert_cmpfloat(lily_expf(0.0f), ==, 1.0f);
    g_assert_cmpfloat(lily_expf(-0.0f), ==, 1.0f);
    double gw = 0.0;
    for (int i = 0; i <= 1000; i++) {
        float x = -9.0f + 9.0f * (float)i / 1000.0f;
        double ref = gelu_d(x);
        if (ref == 0.0) continue;
        double rel = fabs(lily_geluf(x) - ref) / fabs(ref);
        if (rel > gw) gw = rel;
    }
    g_test_message("gelu negative tail: max rel err %.3e (tol 1e-5)", gw);
    g_assert_cmpfloat(gw, <=, 1e-5);
}

/* binary add/sub/mul: same shape, per-channel [N,C] over [N,C,H,W] (small and threaded), scalar,
 * and in place. */
static void test_binary(void)
{
    const int N = 2, C = 3, H = 5, W = 7;
    size_t n = (size_t)N * C * H * W;
    float *a = rnd(n, 121), *b = rnd(n, 122), *y = nans(n), *rf = g_new(float, n);
    static const char *const nm[] = {"add", "sub", "mul"};
    for (int op = 0; op < LILY_BINARY_COUNT; op++)
        for (int kind = 0; kind < 3; kind++) {
            LilyTensor ta = TEN(a, N, C, H, W), ty = TEN(y, N, C, H, W);
            LilyTensor tb = kind == 0 ? TEN(b, N, C, H, W) : (kind == 1 ? TEN(b, N, C) : TEN(b, 1));
            for (size_t i = 0; i < n; i++) y[i] = NAN;
            ok(lily_op_binary(ctx, (LilyBinaryOp)op, &ta, &tb, &ty));
            for (size_t i = 0; i < n; i++) {
                float bv = kind == 0 ? b[i] : (kind == 1 ? b[i / (H * W)] : b[0]);
                rf[i] = op == 0 ? a[i] + bv : (op == 1 ? a[i] - bv : a[i] * bv);
            }
            char s[64];
            snprintf(s, sizeof s, "binary %s %s", nm[op], kind == 0 ? "same" : (kind == 1 ? "per-channel" : "scalar"));
            lt_assert_close_abs(s, y, rf, n, 0.0);
        }
    {
        /* threaded path: [2, 8, 100, 50] by [2, 8] */
        const size_t nl = 2 * 8 * 100 * 50;
        float *al = rnd(nl, 123), *bl = rnd(16, 124), *yl = nans(nl), *rl = g_new(float, nl);
        LilyTensor ta = TEN(al, 2, 8, 100, 50), tbl = TEN(bl, 2, 8), ty = TEN(yl, 2, 8, 100, 50);
        ok(lily_op_binary(ctx, LILY_BINARY_SUB, &ta, &tbl, &ty));
        for (size_t i = 0; i < nl; i++) rl[i] = al[i] - bl[i / 5000];
        lt_assert_close_abs("binary sub per-channel 2x8x100x50", yl, rl, nl, 0.0);
        g_free(al);
        g_free(bl);
        g_free(yl);
        g_free(rl);
    }
    float *c = g_memdup2(a, n * 4);
    LilyTensor tc = TEN(c, N, C, H, W), tb = TEN(b, N, C);
    ok(lily_op_binary(ctx, LILY_BINARY_MUL, &tc, &tb, &tc));
    for (size_t i = 0; i < n; i++) rf[i] = a[i] * b[i / (H * W)];
    lt_assert_close_abs("binary mul in place", c, rf, n, 0.0);
    g_free(c);
    g_free(a);
    g_free(b);
    g_free(y);
    g_free(rf);
}

/* axpby computes alpha x + beta y, and with beta 0 ignores NaN in y. */
static void test_axpby(void)
{
    const size_t n = 777;
    float *x = rnd(n, 131), *y = rnd(n, 132), *y0 = g_memdup2(y, n * 4), *rf = g_new(float, n);
    LilyTensor tx = TEN(x, n), ty = TEN(y, n);
    ok(lily_op_axpby(ctx, 0.3f, &tx, -1.7f, &ty));
    for (size_t i = 0; i < n; i++) rf[i] = (float)(0.3 * x[i] + -1.7 * y0[i]);
    lt_assert_close_rel("axpby", y, rf, n, TOL_ELEM);
    for (size_t i = 0; i < n; i++) y[i] = NAN;
    ok(lily_op_axpby(ctx, 2.0f, &tx, 0.0f, &ty));
    for (size_t i = 0; i < n; i++) rf[i] = 2.0f * x[i];
    lt_assert_close_abs("axpby beta 0 over NaN", y, rf, n, 0.0);
    g_free(x);
    g_free(y);
    g_free(y0);
    g_free(rf);
}

/* geglu = x[:, :D] * gelu(x[:, D:]) (value first, exact GELU). */
static void test_geglu(void)
{
    const int M = 5, D = 9;
    float *x = rnd((size_t)M * 2 * D, 141), *y = nans((size_t)M * D), *rf = g_new(float, (size_t)M * D);
    for (int i = 0; i < M * 2 * D; i++) x[i] *= 4.0f;
    LilyTensor tx = TEN(x, M, 2 * D), ty = TEN(y, M, D);
    ok(lily_op_geglu(ctx, &tx, &ty));
    for (int r = 0; r < M; r++)
        for (int j = 0; j < D; j++) rf[r * D + j] = (float)(x[r * 2 * D + j] * gelu_d(x[r * 2 * D + D + j]));
    lt_assert_close_rel("geglu", y, rf, (size_t)M * D, TOL_ELEM);
    g_free(x);
    g_free(y);
    g_free(rf);
}

/* fill sets every element; cast f32->bf16/f16 rounds as core/tensor.c does and back is exact. */
static void test_fill_cast(void)
{
    const size_t n = 1000;
    float *y = nans(n), *rf = g_new(float, n);
    LilyTensor ty = TEN(y, 10, 100);
    ok(lily_op_fill(ctx, &ty, -2.5f));
    for (size_t i = 0; i < n; i++) rf[i] = -2.5f;
    lt_assert_close_abs("fill", y, rf, n, 0.0);

    float *x = g_new(float, n);
    lt_fill_uniform(x, n, 151, -70000.0f, 70000.0f);
    for (size_t i = 0; i < 100; i++) x[i] *= 1e-9f; /* f16 subnormals and underflow */
    x[100] = INFINITY;
    x[101] = -0.0f;
    static const LilyDType half[2] = {LILY_DTYPE_BF16, LILY_DTYPE_F16};
    for (int hi = 0; hi < 2; hi++) {
        uint16_t *h = g_new0(uint16_t, n);
        LilyTensor tx = TEN(x, n);
        LilyTensor th = lily_tensor_make(h, half[hi], LILY_DEVICE_CPU, LILY_SHAPE((int64_t)n));
        ok(lily_op_cast(ctx, &tx, &th));
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            uint16_t want = half[hi] == LILY_DTYPE_BF16 ? lily_f32_to_bf16(x[i]) : lily_f32_to_f16(x[i]);
            bad += h[i] != want;
        }
        g_test_message("cast f32 -> %s: %zu of %zu words differ from core/tensor.c (tol 0)",
                hi ? "f16" : "bf16", bad, n);
        g_assert_cmpuint(bad, ==, 0);
        LilyTensor tback = TEN(y, n);
        ok(lily_op_cast(ctx, &th, &tback));
        for (size_t i = 0; i < n; i++)
            rf[i] = half[hi] == LILY_DTYPE_BF16 ? lily_bf16_to_f32(h[i]) : lily_f16_to_f32(h[i]);
        /* bitwise, since the data holds an infinity */
        bad = 0;
        for (size_t i = 0; i < n; i++) bad += memcmp(&y[i], &rf[i], 4) != 0;
        g_test_message("cast %s -> f32: %zu of %zu values differ from core/tensor.c (tol 0)", hi ? "f16" : "bf16", bad, n);
        g_assert_cmpuint(bad, ==, 0);
        g_free(h);
    }
    /* bf16 -> f16 goes through f32 */
    uint16_t *hb = words(x, n, LILY_DTYPE_BF16), *hf = g_new0(uint16_t, n);
    LilyTensor tb = lily_tensor_make(hb, LILY_DTYPE_BF16, LILY_DEVICE_CPU, LILY_SHAPE((int64_t)n));
    LilyTensor tf = lily_tensor_make(hf, LILY_DTYPE_F16, LILY_DEVICE_CPU, LILY_SHAPE((int64_t)n));
    ok(lily_op_cast(ctx, &tb, &tf));
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += hf[i] != lily_f32_to_f16(lily_bf16_to_f32(hb[i]));
    g_assert_cmpuint(bad, ==, 0);
    g_free(hb);
    g_free(hf);
    g_free(x);
    g_free(y);
    g_free(rf);
}

/* reduce returns the sum, sum of squares and max |x| of the elements in double. */
static void test_reduce(void)
{
    const size_t n = 100003;
    float *x = rnd(n, 161);
    x[500] = -3.5f;
    double s = 0, s2 = 0, m = 0, gs, gs2, gm;
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
        m = fmax(m, fabs(x[i]));
    }
    LilyTensor tx = TEN(x, n);
    ok(lily_op_reduce(ctx, &tx, &gs, &gs2, &gm));
    g_test_message("reduce: sum %.9g (ref %.9g) sumsq %.9g (ref %.9g) max %.9g (ref %.9g), rel tol 1e-12", gs, s,
            gs2, s2, gm, m);
    g_assert_cmpfloat(fabs(gs - s), <=, 1e-12 * s2);
    g_assert_cmpfloat(fabs(gs2 - s2), <=, 1e-12 * s2);
    g_assert_cmpfloat(gm, ==, 3.5);
    ok(lily_op_reduce(ctx, &tx, NULL, &gs2, NULL));
    g_free(x);
}

/* ---------------------------------------------------------------------------------------- */
/* layout                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void run_upsample(int N, int C, int H, int W)
{
    float *x = rnd((size_t)N * C * H * W, 171), *y = nans((size_t)N * C * 4 * H * W);
    float *rf = g_new(float, (size_t)N * C * 4 * H * W);
    LilyTensor tx = TEN(x, N, C, H, W), ty = TEN(y, N, C, 2 * H, 2 * W);
    ok(lily_op_upsample2x(ctx, &tx, &ty));
    for (int nc = 0; nc < N * C; nc++)
        for (int i = 0; i < 2 * H; i++)
            for (int j = 0; j < 2 * W; j++) rf[(nc * 2 * H + i) * 2 * W + j] = x[(nc * H + i / 2) * W + j / 2];
    char nm[64];
    snprintf(nm, sizeof nm, "upsample2x %dx%dx%dx%d", N, C, H, W);
    lt_assert_close_abs(nm, y, rf, (size_t)N * C * 4 * H * W, 0.0);
    g_free(x);
    g_free(y);
    g_free(rf);
}

/* upsample2x copies each element to its 2x2 block (nearest, NCHW), small and threaded. */
static void test_upsample(void)
{
    run_upsample(2, 3, 5, 7);
    run_upsample(2, 4, 100, 91);
}

/* concat along channels and split back (both outputs, a only, b only) reproduce the parts. */
static void test_concat_split(void)
{
    const int N = 2, Ca = 3, Cb = 5, L = 11;
    float *a = rnd((size_t)N * Ca * L, 181), *b = rnd((size_t)N * Cb * L, 182);
    float *y = nans((size_t)N * (Ca + Cb) * L), *rf = g_new(float, (size_t)N * (Ca + Cb) * L);
    LilyTensor ta = TEN(a, N, Ca, L), tb = TEN(b, N, Cb, L), ty = TEN(y, N, Ca + Cb, L);
    ok(lily_op_concat(ctx, &ta, &tb, &ty));
    for (int n = 0; n < N; n++)
        for (int c = 0; c < Ca + Cb; c++)
            for (int l = 0; l < L; l++)
                rf[(n * (Ca + Cb) + c) * L + l] = c < Ca ? a[(n * Ca + c) * L + l] : b[(n * Cb + c - Ca) * L + l];
    lt_assert_close_abs("concat", y, rf, (size_t)N * (Ca + Cb) * L, 0.0);
    float *a2 = nans((size_t)N * Ca * L), *b2 = nans((size_t)N * Cb * L);
    LilyTensor ta2 = TEN(a2, N, Ca, L), tb2 = TEN(b2, N, Cb, L);
    ok(lily_op_split(ctx, &ty, &ta2, &tb2));
    lt_assert_close_abs("split a", a2, a, (size_t)N * Ca * L, 0.0);
    lt_assert_close_abs("split b", b2, b, (size_t)N * Cb * L, 0.0);
    for (int i = 0; i < N * Cb * L; i++) b2[i] = NAN;
    ok(lily_op_split(ctx, &ty, NULL, &tb2));
    lt_assert_close_abs("split b only (last channels)", b2, b, (size_t)N * Cb * L, 0.0);
    for (int i = 0; i < N * Ca * L; i++) a2[i] = NAN;
    ok(lily_op_split(ctx, &ty, &ta2, NULL));
    lt_assert_close_abs("split a only (first channels)", a2, a, (size_t)N * Ca * L, 0.0);
    g_free(a);
    g_free(b);
    g_free(a2);
    g_free(b2);
    g_free(y);
    g_free(rf);
}

/* transpose [P,A,B,Q] -> [P,B,A,Q] for Q = 1 (tiled path, sizes not multiples of the tile) and Q > 1. */
static void test_transpose(void)
{
    const int shapes[4][4] = {{2, 37, 45, 1}, {1, 64, 33, 1}, {3, 5, 4, 6}, {1, 300, 257, 1}};
    for (int s = 0; s < 4; s++) {
        int P = shapes[s][0], A = shapes[s][1], B = shapes[s][2], Q = shapes[s][3];
        size_t n = (size_t)P * A * B * Q;
        float *x = rnd(n, 191 + s), *y = nans(n), *rf = g_new(float, n);
        LilyTensor tx = TEN(x, n), ty = TEN(y, n);
        ok(lily_op_transpose(ctx, &tx, P, A, B, Q, &ty));
        for (int p = 0; p < P; p++)
            for (int a = 0; a < A; a++)
                for (int b = 0; b < B; b++)
                    for (int q = 0; q < Q; q++) rf[((p * B + b) * A + a) * Q + q] = x[((p * A + a) * B + b) * Q + q];
        char nm[64];
        snprintf(nm, sizeof nm, "transpose %dx%dx%dx%d", P, A, B, Q);
        lt_assert_close_abs(nm, y, rf, n, 0.0);
        g_free(x);
        g_free(y);
        g_free(rf);
    }
}

/* copy_rows moves a row range between [A, R, B] views of different lengths, leaving the rest. */
static void test_copy_rows(void)
{
    const int A = 3, Rs = 10, Rd = 6, B = 4, rows = 4, s0 = 5, d0 = 1;
    float *src = rnd((size_t)A * Rs * B, 201), *dst = rnd((size_t)A * Rd * B, 202);
    float *rf = g_memdup2(dst, (size_t)A * Rd * B * 4);
    LilyTensor ts = TEN(src, A, Rs, B), td = TEN(dst, A, Rd, B);
    ok(lily_op_copy_rows(ctx, &ts, s0, &td, d0, A, rows, B));
    for (int a = 0; a < A; a++)
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < B; b++) rf[(a * Rd + d0 + r) * B + b] = src[(a * Rs + s0 + r) * B + b];
    lt_assert_close_abs("copy_rows", dst, rf, (size_t)A * Rd * B, 0.0);
    g_free(src);
    g_free(dst);
    g_free(rf);
}

/* ---------------------------------------------------------------------------------------- */
/* randomness and sampler                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* randn element (a, r, b) is Philox normal ((r + row0) A + a) B + b, so drawing rows [0, 10) at
 * once equals drawing [0, 4) and [4, 10) with row0 = 4. */
static void test_randn(void)
{
    const int A = 3, R = 10, B = 5;
    const uint64_t seed = 0x1234567890ull, stream = 7;
    float *y = nans((size_t)A * R * B), *rf = g_new(float, (size_t)A * R * B);
    LilyTensor ty = TEN(y, A, R, B);
    ok(lily_op_randn(ctx, &ty, A, B, 0, seed, stream));
    for (int a = 0; a < A; a++)
        for (int r = 0; r < R; r++)
            for (int b = 0; b < B; b++)
                rf[(a * R + r) * B + b] = lily_philox_normal(seed, stream, (uint64_t)((r * A + a) * B + b));
    lt_assert_close_abs("randn vs philox formula", y, rf, (size_t)A * R * B, 0.0);
    float *p1 = nans((size_t)A * 4 * B), *p2 = nans((size_t)A * 6 * B), *joined = g_new(float, (size_t)A * R * B);
    LilyTensor t1 = TEN(p1, A, 4, B), t2 = TEN(p2, A, 6, B);
    ok(lily_op_randn(ctx, &t1, A, B, 0, seed, stream));
    ok(lily_op_randn(ctx, &t2, A, B, 4, seed, stream));
    for (int a = 0; a < A; a++)
        for (int r = 0; r < R; r++)
            for (int b = 0; b < B; b++)
                joined[(a * R + r) * B + b] = r < 4 ? p1[(a * 4 + r) * B + b] : p2[(a * 6 + r - 4) * B + b];
    lt_assert_close_abs("randn in two row chunks", joined, y, (size_t)A * R * B, 0.0);
    double s = 0, s2 = 0;
    for (int i = 0; i < A * R * B; i++) {
        s += y[i];
        s2 += (double)y[i] * y[i];
    }
    g_assert_cmpfloat(fabs(s / (A * R * B)), <, 0.5);
    g_assert_cmpfloat(s2 / (A * R * B), >, 0.4);
    g_free(y);
    g_free(rf);
    g_free(p1);
    g_free(p2);
    g_free(joined);
}

/* ddim_step follows AudioSR's v-prediction DDIM update with guidance, with and without CFG and
 * noise, and returns x0. */
static void test_ddim(void)
{
    const size_t n = 517;
    float *x0 = rnd(n, 211), *vc = rnd(n, 212), *vu = rnd(n, 213), *nz = rnd(n, 214);
    float *x = g_new(float, n), *px0 = nans(n), *rf = g_new(float, n), *rf0 = g_new(float, n);
    const double a = 0.6, ap = 0.8, sigma = 0.2;
    const float g = 3.5f;
    for (int variant = 0; variant < 2; variant++) {
        memcpy(x, x0, n * 4);
        LilyTensor tx = TEN(x, n), tc = TEN(vc, n), tu = TEN(vu, n), tn = TEN(nz, n), to = TEN(px0, n);
        double sg = variant ? 0.0 : sigma;
        ok(lily_op_ddim_step(ctx, &tx, &tc, variant ? NULL : &tu, variant ? NULL : &tn, g, a, ap, sg,
                             variant ? NULL : &to));
        for (size_t i = 0; i < n; i++) {
            double v = variant ? vc[i] : vu[i] + g * ((double)vc[i] - vu[i]);
            double p0 = sqrt(a) * x0[i] - sqrt(1 - a) * v;
            double eps = sqrt(a) * v + sqrt(1 - a) * x0[i];
            rf0[i] = (float)p0;
            rf[i] = (float)(sqrt(ap) * p0 + sqrt(1 - ap - sg * sg) * eps + (variant ? 0.0 : sg * nz[i]));
        }
        lt_assert_close_rel(variant ? "ddim no cfg, no noise" : "ddim cfg + noise", x, rf, n, TOL_ELEM);
        if (!variant) lt_assert_close_rel("ddim x0", px0, rf0, n, TOL_ELEM);
    }
    g_free(x0);
    g_free(vc);
    g_free(vu);
    g_free(nz);
    g_free(x);
    g_free(px0);
    g_free(rf);
    g_free(rf0);
}

/* ---------------------------------------------------------------------------------------- */
/* spectral: stft, istft, stft_backward                                                      */
/* ---------------------------------------------------------------------------------------- */

/* Tolerances of the STFT family (f32 FFTs of up to 2048 points against double references):
 *   stft vs a direct O(N^2) DFT in double: max |err| over a frame <= 1e-5 of the frame's
 *     peak |re|, |im| (FFTW f32 rounding is ~1e-7 log2 N of the frame's rms);
 *   stft_backward vs the adjoint formula of backend.h in double: 1e-5 of the peak |dx|;
 *   istft of a random spectrum vs irfft + overlap-add + envelope in double: 1e-5 of the peak;
 *   <stft(x), dy> == <x, stft_backward(dy)>: 1e-5 relative to sum |y_i dy_i| and to
 *     |<stft(x), dy>|;
 *   central finite differences (step 1: the op is linear, so only rounding remains):
 *     1e-4 of the peak |dx|;
 *   istft(stft(x)) == x: 1e-5 of peak |x| where the envelope (overlap-added squared window) is
 *     >= 1e-2; where 1e-11 < envelope < 1e-2 (the first and last few samples of a Hann
 *     analysis, where the division by a tiny envelope magnifies the FFT's rounding by about
 *     1 / sqrt(envelope)) 1e-6 / sqrt(envelope) of peak |x|; where the envelope <= 1e-11,
 *     exactly 0 (torch.istft's rule);
 *   magnitudes vs the engine's double-precision host STFT (dsp/stft.h) with AudioSR's setting:
 *     1e-4 of the frame's peak magnitude. */
#define TOL_STFT 1e-5
#define TOL_STFT_FD 1e-4
#define TOL_STFT_HOST 1e-4

/* Reference frames in double: ref[b, f, k] = sum_n x[b, f hop + n] w[n] e^{-2 pi i k n / N}. */
static void ref_stft(int B, int64_t L, int N, int hop, const float *x, const float *w, double *ref)
{
    int64_t F = (L - N) / hop + 1;
    int K = N / 2 + 1;
    double *c = g_new(double, N), *sn = g_new(double, N);
    for (int m = 0; m < N; m++) {
        c[m] = cos(2.0 * M_PI * m / N);
        sn[m] = sin(2.0 * M_PI * m / N);
    }
    for (int b = 0; b < B; b++)
        for (int64_t f = 0; f < F; f++)
            for (int k = 0; k < K; k++) {
                double re = 0, im = 0;
                for (int n = 0; n < N; n++) {
                    double v = (double)x[b * L + f * hop + n] * w[n];
                    int m = (int)(((int64_t)k * n) % N);
                    re += v * c[m];
                    im -= v * sn[m];
                }
                double *o = ref + 2 * (((int64_t)b * F + f) * K + k);
                o[0] = re;
                o[1] = im;
            }
    g_free(c);
    g_free(sn);
}

/* The adjoint of backend.h in double: dx[b, f hop + n] += w[n] sum_k (dyr cos - dyi sin). */
static void ref_stft_adjoint(int B, int64_t L, int N, int hop, const float *dy, const float *w, double *dx)
{
    int64_t F = (L - N) / hop + 1;
    int K = N / 2 + 1;
    memset(dx, 0, (size_t)(B * L) * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int64_t f = 0; f < F; f++)
            for (int n = 0; n < N; n++) {
                double acc = 0;
                for (int k = 0; k < K; k++) {
                    const float *d = dy + 2 * (((int64_t)b * F + f) * K + k);
                    double a = 2.0 * M_PI * (double)(((int64_t)k * n) % N) / N;
                    acc += d[0] * cos(a) - d[1] * sin(a);
                }
                dx[b * L + f * hop + n] += w[n] * acc;
            }
}

/* Largest per-frame error relative to the frame's peak component. */
static double frame_rel_err(const float *got, const double *ref, int64_t frames, int K)
{
    double worst = 0;
    for (int64_t r = 0; r < frames; r++) {
        double peak = 0, err = 0;
        for (int i = 0; i < 2 * K; i++) {
            double rv = ref[r * 2 * K + i], d = fabs((double)got[r * 2 * K + i] - rv);
            if (fabs(rv) > peak) peak = fabs(rv);
            if (!(d <= err)) err = isnan(d) ? INFINITY : d;
        }
        double rel = err / (peak > 0 ? peak : 1.0);
        if (!(rel <= worst)) worst = rel;
    }
    return worst;
}

static float *hann_f(int n)
{
    double *d = g_new(double, n);
    lily_hann_periodic(d, n);
    float *w = to_f32(d, (size_t)n);
    g_free(d);
    return w;
}

/* stft against the direct DFT (random window, so no symmetry helps), even and odd sizes,
 * trailing samples no frame covers; stft_backward against the adjoint written out. */
static void test_stft_dft(void)
{
    static const struct { int N, hop, F, extra; } cs[] = {
        {64, 16, 10, 5}, {2048, 480, 5, 100}, {45, 7, 9, 3},
    };
    const int B = 2;
    for (size_t ci = 0; ci < G_N_ELEMENTS(cs); ci++) {
        int N = cs[ci].N, hop = cs[ci].hop, K = N / 2 + 1;
        int64_t F = cs[ci].F, L = (F - 1) * hop + N + cs[ci].extra;
        size_t ny = (size_t)(B * F * K * 2), nx = (size_t)(B * L);
        float *x = rnd(nx, 300 + ci), *w = rnd((size_t)N, 310 + ci), *y = nans(ny);
        for (int n = 0; n < N; n++) w[n] = 0.5f + 0.5f * w[n]; /* [0, 1) */
        LilyTensor tx = TEN(x, B, L), tw = TEN(w, N), ty = TEN(y, B, F, K, 2);
        ok(lily_op_stft(ctx, &tx, &tw, N, hop, &ty));
        double *ref = g_new(double, ny);
        ref_stft(B, L, N, hop, x, w, ref);
        double rel = frame_rel_err(y, ref, B * F, K);
        g_test_message("stft n_fft %d hop %d B %d F %lld vs direct DFT: max err / frame peak %.2e (tol %.0e)",
                       N, hop, B, (long long)F, rel, TOL_STFT);
        g_assert_cmpfloat(rel, <=, TOL_STFT);

        /* the adjoint, against the formula */
        float *dy = rnd(ny, 320 + ci), *dx = nans(nx);
        LilyTensor tdy = TEN(dy, B, F, K, 2), tdx = TEN(dx, B, L);
        ok(lily_op_stft_backward(ctx, &tw, N, hop, &tdy, &tdx));
        double *rdx = g_new(double, nx);
        ref_stft_adjoint(B, L, N, hop, dy, w, rdx);
        float *rdxf = to_f32(rdx, nx);
        char name[96];
        snprintf(name, sizeof name, "stft_backward n_fft %d hop %d vs adjoint formula", N, hop);
        lt_assert_close_rel(name, dx, rdxf, nx, TOL_STFT);
        /* samples after the last frame get exactly 0 */
        for (int b = 0; b < B; b++)
            for (int64_t t = (F - 1) * hop + N; t < L; t++) g_assert_cmpfloat(dx[b * L + t], ==, 0.0f);
        g_free(x);
        g_free(w);
        g_free(y);
        g_free(ref);
        g_free(dy);
        g_free(dx);
        g_free(rdx);
        g_free(rdxf);
    }
}

/* <stft(x), dy> == <x, stft_backward(dy)>, and central differences of L = <stft(x), dy>. */
static void test_stft_adjoint(void)
{
    static const struct { int N, hop; int64_t L; } cs[] = {{64, 16, 300}, {2048, 480, 6000}, {16, 4, 43}};
    const int B = 2;
    for (size_t ci = 0; ci < G_N_ELEMENTS(cs); ci++) {
        int N = cs[ci].N, hop = cs[ci].hop, K = N / 2 + 1;
        int64_t L = cs[ci].L, F = (L - N) / hop + 1;
        size_t ny = (size_t)(B * F * K * 2), nx = (size_t)(B * L);
        float *x = rnd(nx, 400 + ci), *w = hann_f(N), *y = nans(ny), *dy = rnd(ny, 410 + ci), *dx = nans(nx);
        LilyTensor tx = TEN(x, B, L), tw = TEN(w, N), ty = TEN(y, B, F, K, 2);
        LilyTensor tdy = TEN(dy, B, F, K, 2), tdx = TEN(dx, B, L);
        ok(lily_op_stft(ctx, &tx, &tw, N, hop, &ty));
        ok(lily_op_stft_backward(ctx, &tw, N, hop, &tdy, &tdx));
        double a = 0, b = 0, norm = 0;
        for (size_t i = 0; i < ny; i++) {
            a += (double)y[i] * dy[i];
            norm += fabs((double)y[i] * dy[i]);
        }
        for (size_t i = 0; i < nx; i++) b += (double)x[i] * dx[i];
        double rel = fabs(a - b) / norm, rel_a = fabs(a - b) / fabs(a);
        g_test_message("stft adjoint n_fft %d hop %d: <stft(x),dy> %.9g  <x,stft_backward(dy)> %.9g  "
                       "|diff| / sum|y dy| %.2e, |diff| / |<stft(x),dy>| %.2e (tol %.0e each)",
                       N, hop, a, b, rel, rel_a, TOL_STFT);
        g_assert_cmpfloat(rel, <=, TOL_STFT);
        g_assert_cmpfloat(rel_a, <=, TOL_STFT);

        if (N == 16) {
            /* central differences on a few elements (near the start, covered by one frame;
             * interior; the uncovered tail, gradient 0; second row) */
            int64_t idx[] = {1, 3, 21, L - 1, L + 17};
            float *yp = g_new(float, ny), *ym = g_new(float, ny), *fd = g_new(float, G_N_ELEMENTS(idx)),
                  *an = g_new(float, G_N_ELEMENTS(idx));
            LilyTensor typ = TEN(yp, B, F, K, 2), tym = TEN(ym, B, F, K, 2);
            const float h = 1.0f;
            for (size_t j = 0; j < G_N_ELEMENTS(idx); j++) {
                float keep = x[idx[j]];
                x[idx[j]] = keep + h;
                ok(lily_op_stft(ctx, &tx, &tw, N, hop, &typ));
                x[idx[j]] = keep - h;
                ok(lily_op_stft(ctx, &tx, &tw, N, hop, &tym));
                x[idx[j]] = keep;
                double d = 0;
                for (size_t i = 0; i < ny; i++) d += ((double)yp[i] - ym[i]) * dy[i];
                fd[j] = (float)(d / (2.0 * h));
                an[j] = dx[idx[j]];
            }
            /* relative to the peak |dx| of the whole gradient */
            float peak = 0;
            for (size_t i = 0; i < nx; i++) peak = fmaxf(peak, fabsf(dx[i]));
            for (size_t j = 0; j < G_N_ELEMENTS(idx); j++) {
                g_test_message("stft_backward fd [%lld]: analytic %.7g  central difference %.7g",
                               (long long)idx[j], (double)an[j], (double)fd[j]);
                g_assert_cmpfloat(fabs((double)an[j] - fd[j]), <=, TOL_STFT_FD * peak);
            }
            g_free(yp);
            g_free(ym);
            g_free(fd);
            g_free(an);
        }
        g_free(x);
        g_free(w);
        g_free(y);
        g_free(dy);
        g_free(dx);
    }
}

/* istft(stft(x)) == x where the envelope is non-zero: periodic Hann at hop n_fft/4 (64 and
 * 2048 points) and a rectangular window at hop n_fft; 0 where the envelope is <= 1e-11. */
static void test_istft_roundtrip(void)
{
    static const struct { int N, hop, rect; int64_t F; } cs[] = {
        {64, 16, 0, 20}, {2048, 512, 0, 12}, {64, 64, 1, 7}, {2048, 2048, 1, 3},
    };
    const int B = 2;
    for (size_t ci = 0; ci < G_N_ELEMENTS(cs); ci++) {
        int N = cs[ci].N, hop = cs[ci].hop, K = N / 2 + 1;
        int64_t F = cs[ci].F, L = (F - 1) * hop + N;
        size_t ny = (size_t)(B * F * K * 2), nx = (size_t)(B * L);
        float *x = rnd(nx, 500 + ci), *y = nans(ny), *xr = nans(nx);
        float *w = cs[ci].rect ? g_new(float, N) : hann_f(N);
        if (cs[ci].rect)
            for (int n = 0; n < N; n++) w[n] = 1.0f;
        LilyTensor tx = TEN(x, B, L), tw = TEN(w, N), ty = TEN(y, B, F, K, 2), txr = TEN(xr, B, L);
        ok(lily_op_stft(ctx, &tx, &tw, N, hop, &ty));
        ok(lily_op_istft(ctx, &ty, &tw, N, hop, &txr));
        double peak = 0, err_main = 0, err_edge = 0;
        int64_t n_main = 0, n_edge = 0, n_zero = 0;
        for (int64_t t = 0; t < L; t++) {
            double env = 0;
            for (int64_t f = 0; f < F; f++)
                if (t >= f * hop && t < f * hop + N) env += (double)w[t - f * hop] * w[t - f * hop];
            for (int b = 0; b < B; b++) {
                double xv = x[b * L + t], d = fabs((double)xr[b * L + t] - xv);
                if (isnan(d)) d = INFINITY;
                peak = fmax(peak, fabs(xv));
                if (env <= 1e-11) {
                    g_assert_cmpfloat(xr[b * L + t], ==, 0.0f);
                    n_zero++;
                } else if (env >= 1e-2) {
                    err_main = fmax(err_main, d);
                    n_main++;
                } else {
                    err_edge = fmax(err_edge, d * sqrt(env));
                    n_edge++;
                }
            }
        }
        g_test_message("istft(stft(x)) %s n_fft %d hop %d: max|err| / peak %.2e over %lld samples with "
                       "envelope >= 1e-2 (tol %.0e); max |err| sqrt(env) / peak %.2e over %lld edge samples "
                       "(tol 1e-6); %lld samples with envelope <= 1e-11 are 0",
                       cs[ci].rect ? "rect" : "hann", N, hop, err_main / peak, (long long)n_main, TOL_STFT,
                       err_edge / peak, (long long)n_edge, (long long)n_zero);
        g_assert_cmpfloat(err_main / peak, <=, TOL_STFT);
        g_assert_cmpfloat(err_edge / peak, <=, 1e-6);
        if (cs[ci].rect) g_assert_cmpint(n_main, ==, (int64_t)nx);
        g_free(x);
        g_free(y);
        g_free(xr);
        g_free(w);
    }
}

/* istft of a random spectrum against irfft + window + overlap-add + envelope written out in
 * double: the imaginary parts of bin 0 and (even n_fft) bin n_fft/2 are ignored, as irfft
 * ignores them. Windows in [0.5, 1), so the envelope is never small. */
static void test_istft_direct(void)
{
    static const struct { int N, hop; int64_t F; } cs[] = {{64, 16, 12}, {45, 7, 9}, {32, 40, 5}};
    const int B = 2;
    for (size_t ci = 0; ci < G_N_ELEMENTS(cs); ci++) {
        int N = cs[ci].N, hop = cs[ci].hop, K = N / 2 + 1;
        int64_t F = cs[ci].F, L = (F - 1) * hop + N;
        size_t ns = (size_t)(B * F * K * 2), nx = (size_t)(B * L);
        float *spec = rnd(ns, 900 + ci), *w = rnd((size_t)N, 910 + ci), *y = nans(nx);
        for (int n = 0; n < N; n++) w[n] = 0.75f + 0.25f * w[n];
        LilyTensor ts = TEN(spec, B, F, K, 2), tw = TEN(w, N), ty = TEN(y, B, L);
        ok(lily_op_istft(ctx, &ts, &tw, N, hop, &ty));
        double *acc = g_new0(double, nx), *env = g_new0(double, (size_t)L);
        for (int b = 0; b < B; b++)
            for (int64_t f = 0; f < F; f++)
                for (int n = 0; n < N; n++) {
                    const float *X = spec + 2 * (((int64_t)b * F + f) * K);
                    double v = X[0];
                    for (int k = 1; k < K; k++) {
                        double a = 2.0 * M_PI * (double)(((int64_t)k * n) % N) / N;
                        if (2 * k == N)
                            v += X[2 * k] * cos(a);
                        else
                            v += 2.0 * (X[2 * k] * cos(a) - X[2 * k + 1] * sin(a));
                    }
                    acc[b * L + f * hop + n] += v / N * w[n];
                    if (b == 0) env[f * hop + n] += (double)w[n] * w[n];
                }
        float *ref = g_new(float, nx);
        for (int b = 0; b < B; b++)
            for (int64_t t = 0; t < L; t++)
                ref[b * L + t] = env[t] > 1e-11 ? (float)(acc[b * L + t] / env[t]) : 0.0f;
        char name[96];
        snprintf(name, sizeof name, "istft n_fft %d hop %d vs irfft + overlap-add", N, hop);
        lt_assert_close_rel(name, y, ref, nx, TOL_STFT);
        /* hop > n_fft leaves gaps: envelope 0, output exactly 0 */
        for (int64_t t = 0; t < L; t++)
            if (env[t] == 0.0) g_assert_cmpfloat(y[t], ==, 0.0f);
        g_free(spec);
        g_free(w);
        g_free(y);
        g_free(acc);
        g_free(env);
        g_free(ref);
    }
}

/* AudioSR's setting (n_fft 2048, hop 480, periodic Hann) against the engine's host STFT
 * (dsp/stft.h, FFTW in double): magnitudes per frame. */
static void test_stft_vs_host(void)
{
    const int N = 2048, hop = 480, K = N / 2 + 1, B = 1;
    const int64_t F = 12, L = (F - 1) * hop + N;
    float *x = g_new(float, L), *noise = rnd((size_t)L, 600);
    lt_sine(x, (size_t)L, 1000.0, 48000.0, 0.5);
    for (int64_t i = 0; i < L; i++) x[i] += 0.1f * noise[i];
    float *w = hann_f(N), *y = nans((size_t)(F * K * 2));
    LilyTensor tx = TEN(x, B, L), tw = TEN(w, N), ty = TEN(y, B, F, K, 2);
    ok(lily_op_stft(ctx, &tx, &tw, N, hop, &ty));
    LilyRfft r;
    ok(lily_rfft_init(ctx, &r, N, 0));
    double *wd = g_new(double, N);
    lily_hann_periodic(wd, N);
    double worst = 0;
    for (int64_t f = 0; f < F; f++) {
        for (int n = 0; n < N; n++) r.in[n] = (double)x[f * hop + n] * wd[n];
        fftw_execute(r.fwd);
        double peak = 0, err = 0;
        for (int k = 0; k < K; k++) {
            double ref = hypot(r.spec[k][0], r.spec[k][1]);
            double got = hypot(y[(f * K + k) * 2], y[(f * K + k) * 2 + 1]);
            peak = fmax(peak, ref);
            err = fmax(err, isnan(got) ? INFINITY : fabs(got - ref));
        }
        worst = fmax(worst, err / peak);
    }
    g_test_message("stft vs dsp/stft.h host STFT (n_fft 2048, hop 480, periodic Hann): max |mag err| / "
                   "frame peak %.2e (tol %.0e)", worst, TOL_STFT_HOST);
    g_assert_cmpfloat(worst, <=, TOL_STFT_HOST);
    lily_rfft_release(&r);
    g_free(wd);
    g_free(x);
    g_free(noise);
    g_free(w);
    g_free(y);
}

/* Shape and parameter errors come back as statuses naming the op. */
static void expect_err(LilyStatus st, LilyStatus want, const char *op)
{
    const char *msg = lily_context_error(ctx);
    g_test_message("expected error: %s", msg);
    g_assert_cmpint(st, ==, want);
    g_assert_nonnull(strstr(msg, op));
}

static void test_stft_errors(void)
{
    const int N = 64, hop = 16, K = N / 2 + 1, B = 2;
    const int64_t L = 300, F = (L - N) / hop + 1, Lo = (F - 1) * hop + N;
    float *x = rnd((size_t)(B * L), 700), *w = hann_f(N), *y = nans((size_t)(B * (F + 1) * K * 2));
    float *xr = nans((size_t)(B * (Lo + 1)));
    LilyTensor tx = TEN(x, B, L), tw = TEN(w, N), tw_short = TEN(w, N - 1);
    LilyTensor ty = TEN(y, B, F, K, 2), ty_frames = TEN(y, B, F + 1, K, 2), ty_bins = TEN(y, B, F, K - 1, 2);
    LilyTensor ty_batch = TEN(y, 1, F, K, 2), tx_short = TEN(x, B, N - 1);
    LilyTensor txr = TEN(xr, B, Lo), txr_long = TEN(xr, B, Lo + 1);
    expect_err(lily_op_stft(ctx, &tx, &tw, N, hop, &ty_frames), LILY_ERR_SHAPE, "stft");
    expect_err(lily_op_stft(ctx, &tx, &tw, N, hop, &ty_bins), LILY_ERR_SHAPE, "stft");
    expect_err(lily_op_stft(ctx, &tx, &tw, N, hop, &ty_batch), LILY_ERR_SHAPE, "stft");
    expect_err(lily_op_stft(ctx, &tx, &tw_short, N, hop, &ty), LILY_ERR_SHAPE, "stft");
    expect_err(lily_op_stft(ctx, &tx_short, &tw, N, hop, &ty), LILY_ERR_SHAPE, "stft");
    expect_err(lily_op_stft(ctx, &tx, &tw, N, 0, &ty), LILY_ERR_INVALID_ARGUMENT, "stft");
    expect_err(lily_op_stft(ctx, &tx, NULL, N, hop, &ty), LILY_ERR_SHAPE, "stft");
    expect_err(lily_op_istft(ctx, &ty, &tw, N, hop, &txr_long), LILY_ERR_SHAPE, "istft");
    expect_err(lily_op_istft(ctx, &ty_bins, &tw, N, hop, &txr), LILY_ERR_SHAPE, "istft");
    expect_err(lily_op_istft(ctx, &ty, &tw, N, hop, &ty), LILY_ERR_SHAPE, "istft");
    expect_err(lily_op_stft_backward(ctx, &tw, N, hop, &ty_frames, &tx), LILY_ERR_SHAPE, "stft_backward");
    expect_err(lily_op_stft_backward(ctx, &tw, N, hop, &ty, &tx_short), LILY_ERR_SHAPE, "stft_backward");
    expect_err(lily_op_stft_backward(ctx, &tw_short, N, hop, &ty, &tx), LILY_ERR_SHAPE, "stft_backward");
    /* and the right shapes still work afterwards */
    ok(lily_op_stft(ctx, &tx, &tw, N, hop, &ty));
    ok(lily_op_istft(ctx, &ty, &tw, N, hop, &txr));
    g_free(x);
    g_free(w);
    g_free(y);
    g_free(xr);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    LilyContextParams cp;
    lily_context_params_init(&cp);
    cp.n_threads = 2;
    char err[256] = "";
    if (lily_context_new(&cp, &ctx, err, sizeof err) != LILY_OK) {
        g_printerr("context: %s\n", err);
        return 1;
    }
    g_test_add_func("/lily/kernels/conv2d", test_conv2d);
    g_test_add_func("/lily/kernels/conv2d-half", test_conv2d_half);
    g_test_add_func("/lily/kernels/conv1d", test_conv1d);
    g_test_add_func("/lily/kernels/conv-transpose1d", test_conv_transpose1d);
    g_test_add_func("/lily/kernels/linear", test_linear);
    g_test_add_func("/lily/kernels/matmul", test_matmul);
    g_test_add_func("/lily/kernels/attention", test_attention);
    g_test_add_func("/lily/kernels/group-norm", test_group_norm);
    g_test_add_func("/lily/kernels/layer-norm", test_layer_norm);
    g_test_add_func("/lily/kernels/softmax", test_softmax);
    g_test_add_func("/lily/kernels/unary", test_unary);
    g_test_add_func("/lily/kernels/exp-accuracy", test_exp_accuracy);
    g_test_add_func("/lily/kernels/binary", test_binary);
    g_test_add_func("/lily/kernels/axpby", test_axpby);
    g_test_add_func("/lily/kernels/geglu", test_geglu);
    g_test_add_func("/lily/kernels/fill-cast", test_fill_cast);
    g_test_add_func("/lily/kernels/reduce", test_reduce);
    g_test_add_func("/lily/kernels/upsample2x", test_upsample);
    g_test_add_func("/lily/kernels/concat-split", test_concat_split);
    g_test_add_func("/lily/kernels/transpose", test_transpose);
    g_test_add_func("/lily/kernels/copy-rows", test_copy_rows);
    g_test_add_func("/lily/kernels/randn", test_randn);
    g_test_add_func("/lily/kernels/ddim-step", test_ddim);
    g_test_add_func("/lily/kernels/stft-dft", test_stft_dft);
    g_test_add_func("/lily/kernels/stft-adjoint", test_stft_adjoint);
    g_test_add_func("/lily/kernels/istft-direct", test_istft_direct);
    g_test_add_func("/lily/kernels/istft-roundtrip", test_istft_roundtrip);
    g_test_add_func("/lily/kernels/stft-vs-host", test_stft_vs_host);
    g_test_add_func("/lily/kernels/stft-errors", test_stft_errors);
    int rc = g_test_run();
    lily_context_free(ctx);
    return rc;
}
