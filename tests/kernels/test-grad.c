/* tests/kernels/test-grad.c - every backward op of the CPU backend against central finite
 * differences of its own forward op.
 *
 * Loss L = sum(w_out * y) in double with a random projection w_out, so dL/dy = w_out is what
 * the backward op receives. For a sample of up to 12 elements of every input and parameter,
 * the numeric derivative (L(v + h) - L(v - h)) / (v+h - (v-h)) is compared with the analytic
 * gradient, relative to the peak |numeric| of the sample:
 *   ops linear in the perturbed tensor (conv, linear, upsample, attention's v): h = 0.25,
 *   tolerance 1e-4 (only float rounding of the loss remains);
 *   nonlinear ops: h = 3e-3, tolerance 3e-3 (h^2 truncation plus rounding / h).
 * Each case also proves that parameter gradients ACCUMULATE (a second call into a buffer
 * holding r gives r + g, to 1e-6 of peak), that input gradients are OVERWRITTEN (pre-filled
 * with NaN) and that NULL gradient pointers work and leave the other gradients unchanged. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "common/test-util.h"
#include "core/context.h"
#include "core/tensor.h"

static LilyContext *ctx;

#define H_LIN 0.25
#define TOL_LIN 1e-4
#define H_NL 3e-3
#define TOL_NL 3e-3
#define N_SAMPLE 12

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

#define TEN(p, ...) lily_tensor_make((p), LILY_DTYPE_F32, LILY_DEVICE_CPU, LILY_SHAPE(__VA_ARGS__))

/* A case: inputs (the tensors perturbed), the output, and the forward call. */
typedef struct Case {
    LilyTensor in[4];
    const char *in_name[4];
    int n_in;
    LilyTensor y;
    float *wout;
    void (*fwd)(struct Case *);
    void *aux; /* op parameters */
} Case;

static double loss(Case *c)
{
    c->fwd(c);
    const float *y = c->y.data;
    size_t n = (size_t)lily_tensor_numel(&c->y);
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)c->wout[i] * y[i];
    return s;
}

/* Compares grad (analytic dL/d in[k]) with finite differences at sampled elements. */
static void check_fd(const char *op, Case *c, int k, const float *grad, double h, double tol)
{
    float *v = c->in[k].data;
    size_t n = (size_t)lily_tensor_numel(&c->in[k]);
    size_t ns = n < N_SAMPLE ? n : N_SAMPLE;
    float an[N_SAMPLE], nu[N_SAMPLE];
    for (size_t s = 0; s < ns; s++) {
        size_t i = ns == n ? s : (size_t)((s * 2654435761u + 17u) % n);
        float v0 = v[i];
        float vp = (float)(v0 + h), vm = (float)(v0 - h);
        v[i] = vp;
        double lp = loss(c);
        v[i] = vm;
        double lm = loss(c);
        v[i] = v0;
        nu[s] = (float)((lp - lm) / ((double)vp - (double)vm));
        an[s] = grad[i];
    }
    char name[96];
    snprintf(name, sizeof name, "%s d%s (%zu of %zu)", op, c->in_name[k], ns, n);
    lt_assert_close_rel(name, an, nu, ns, tol);
    loss(c); /* leave y at the unperturbed forward */
}

/* base + g (g = the gradient from a zero-initialised buffer) must equal what a call into a
 * buffer holding base produced. */
static void check_accumulated(const char *what, const float *acc, const float *base, const float *g, size_t n)
{
    float *want = g_new(float, n);
    for (size_t i = 0; i < n; i++) want[i] = base[i] + g[i];
    lt_assert_close_rel(what, acc, want, n, 1e-6);
    g_free(want);
}

/* ---------------------------------------------------------------------------------------- */
/* convolutions: in[0] = x, in[1] = w, in[2] = b                                             */
/* ---------------------------------------------------------------------------------------- */

typedef struct ConvAux {
    int kind; /* 0 conv2d, 1 conv1d, 2 conv_transpose1d */
    LilyConvParams p;
    int stride, pad;
} ConvAux;

static void conv_fwd(Case *c)
{
    ConvAux *a = c->aux;
    if (a->kind == 0) ok(lily_op_conv2d(ctx, &c->in[0], &c->in[1], &c->in[2], &a->p, &c->y));
    if (a->kind == 1) ok(lily_op_conv1d(ctx, &c->in[0], &c->in[1], &c->in[2], &a->p, &c->y));
    if (a->kind == 2) ok(lily_op_conv_transpose1d(ctx, &c->in[0], &c->in[1], &c->in[2], a->stride, a->pad, &c->y));
}

static void conv_bwd(Case *c, const LilyTensor *dy, LilyTensor *dx, LilyTensor *dw, LilyTensor *db)
{
    ConvAux *a = c->aux;
    if (a->kind == 0) ok(lily_op_conv2d_backward(ctx, &c->in[0], &c->in[1], &a->p, dy, dx, dw, db));
    if (a->kind == 1) ok(lily_op_conv1d_backward(ctx, &c->in[0], &c->in[1], &a->p, dy, dx, dw, db));
    if (a->kind == 2)
        ok(lily_op_conv_transpose1d_backward(ctx, &c->in[0], &c->in[1], a->stride, a->pad, dy, dx, dw, db));
}

/* Runs the full set of checks for a conv case whose in[] and y are set up. */
static void run_conv_case(const char *name, Case *c)
{
    size_t nx = (size_t)lily_tensor_numel(&c->in[0]), nw = (size_t)lily_tensor_numel(&c->in[1]);
    size_t nb = (size_t)lily_tensor_numel(&c->in[2]), ny = (size_t)lily_tensor_numel(&c->y);
    c->wout = rnd(ny, 900);
    c->fwd = conv_fwd;
    loss(c);
    float *dx = nans(nx), *dw = g_new0(float, nw), *db = g_new0(float, nb);
    LilyTensor dy = c->y, tdx = c->in[0], tdw = c->in[1], tdb = c->in[2];
    dy.data = c->wout;
    tdx.data = dx;
    tdw.data = dw;
    tdb.data = db;
    conv_bwd(c, &dy, &tdx, &tdw, &tdb);
    check_fd(name, c, 0, dx, H_LIN, TOL_LIN);
    check_fd(name, c, 1, dw, H_LIN, TOL_LIN);
    check_fd(name, c, 2, db, H_LIN, TOL_LIN);
    /* accumulation and NULL gradients */
    float *dw2 = rnd(nw, 901), *db2 = rnd(nb, 902), *w0 = g_memdup2(dw2, nw * 4), *b0 = g_memdup2(db2, nb * 4);
    float *dx2 = nans(nx);
    tdw.data = dw2;
    tdb.data = db2;
    conv_bwd(c, &dy, NULL, &tdw, &tdb);
    check_accumulated("  dw accumulates (dx NULL)", dw2, w0, dw, nw);
    check_accumulated("  db accumulates", db2, b0, db, nb);
    tdx.data = dx2;
    conv_bwd(c, &dy, &tdx, NULL, NULL);
    lt_assert_close_abs("  dx alone (dw, db NULL)", dx2, dx, nx, 0.0);
    g_free(dx);
    g_free(dw);
    g_free(db);
    g_free(dx2);
    g_free(dw2);
    g_free(db2);
    g_free(w0);
    g_free(b0);
    g_free(c->wout);
}

/* conv2d backward (dx, dw, db) matches finite differences; stride 2, asymmetric pads, dilation. */
static void test_conv2d_grad(void)
{
    for (int variant = 0; variant < 2; variant++) {
        const int N = 2, C = 3, H = 6, W = 5, O = 4;
        float *x = rnd((size_t)N * C * H * W, 1), *w = rnd((size_t)O * C * 9, 2), *b = rnd(O, 3);
        ConvAux a = {0};
        int Ho, Wo;
        if (variant == 0) {
            a.p = lily_conv2d_params(1, 1);
            Ho = H;
            Wo = W;
        } else {
            a.p = (LilyConvParams){{2, 1}, {0, 2}, {1, 2}, {1, 2}};
            Ho = (H + 1 - 3) / 2 + 1;
            Wo = (W + 4 - 5) / 1 + 1;
        }
        float *y = nans((size_t)N * O * Ho * Wo);
        Case c = {.in = {TEN(x, N, C, H, W), TEN(w, O, C, 3, 3), TEN(b, O)},
                  .in_name = {"x", "w", "b"}, .n_in = 3, .y = TEN(y, N, O, Ho, Wo), .aux = &a};
        run_conv_case(variant ? "conv2d s2 pads dil2" : "conv2d k3 p1", &c);
        g_free(x);
        g_free(w);
        g_free(b);
        g_free(y);
    }
}

/* conv1d backward matches finite differences with dilation 2. */
static void test_conv1d_grad(void)
{
    const int N = 2, C = 3, L = 13, O = 4, K = 5, d = 2, pad = 4;
    float *x = rnd((size_t)N * C * L, 11), *w = rnd((size_t)O * C * K, 12), *b = rnd(O, 13);
    float *y = nans((size_t)N * O * L);
    ConvAux a = {.kind = 1, .p = lily_conv1d_params(1, pad, d)};
    Case c = {.in = {TEN(x, N, C, L), TEN(w, O, C, K), TEN(b, O)}, .in_name = {"x", "w", "b"}, .n_in = 3,
              .y = TEN(y, N, O, L), .aux = &a};
    run_conv_case("conv1d k5 d2", &c);
    g_free(x);
    g_free(w);
    g_free(b);
    g_free(y);
}

/* conv_transpose1d backward matches finite differences (u4 k8 p2, weights [C, O, K]). */
static void test_convt_grad(void)
{
    const int N = 2, C = 3, L = 6, O = 4, K = 8, s = 4, p = 2, Lo = (L - 1) * s - 2 * p + K;
    float *x = rnd((size_t)N * C * L, 21), *w = rnd((size_t)C * O * K, 22), *b = rnd(O, 23);
    float *y = nans((size_t)N * O * Lo);
    ConvAux a = {.kind = 2, .stride = s, .pad = p};
    Case c = {.in = {TEN(x, N, C, L), TEN(w, C, O, K), TEN(b, O)}, .in_name = {"x", "w", "b"}, .n_in = 3,
              .y = TEN(y, N, O, Lo), .aux = &a};
    run_conv_case("conv_transpose1d u4 k8", &c);
    g_free(x);
    g_free(w);
    g_free(b);
    g_free(y);
}

/* ---------------------------------------------------------------------------------------- */
/* linear                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void linear_fwd(Case *c)
{
    ok(lily_op_linear(ctx, &c->in[0], &c->in[1], &c->in[2], &c->y));
}

/* linear backward (x with leading dims) matches finite differences; dw/db accumulate. */
static void test_linear_grad(void)
{
    const int A = 2, M = 3, K = 7, N = 5;
    float *x = rnd((size_t)A * M * K, 31), *w = rnd((size_t)N * K, 32), *b = rnd(N, 33), *y = nans((size_t)A * M * N);
    Case c = {.in = {TEN(x, A, M, K), TEN(w, N, K), TEN(b, N)}, .in_name = {"x", "w", "b"}, .n_in = 3,
              .y = TEN(y, A, M, N), .fwd = linear_fwd};
    c.wout = rnd((size_t)A * M * N, 34);
    loss(&c);
    float *dx = nans((size_t)A * M * K), *dw = g_new0(float, (size_t)N * K), *db = g_new0(float, N);
    LilyTensor dy = TEN(c.wout, A, M, N), tdx = TEN(dx, A, M, K), tdw = TEN(dw, N, K), tdb = TEN(db, N);
    ok(lily_op_linear_backward(ctx, &c.in[0], &c.in[1], &dy, &tdx, &tdw, &tdb));
    check_fd("linear", &c, 0, dx, H_LIN, TOL_LIN);
    check_fd("linear", &c, 1, dw, H_LIN, TOL_LIN);
    check_fd("linear", &c, 2, db, H_LIN, TOL_LIN);
    float *dw2 = rnd((size_t)N * K, 35), *w0 = g_memdup2(dw2, (size_t)N * K * 4);
    float *db2 = rnd(N, 36), *b0 = g_memdup2(db2, (size_t)N * 4), *dx2 = nans((size_t)A * M * K);
    tdw.data = dw2;
    tdb.data = db2;
    ok(lily_op_linear_backward(ctx, &c.in[0], &c.in[1], &dy, NULL, &tdw, &tdb));
    check_accumulated("  dw accumulates (dx NULL)", dw2, w0, dw, (size_t)N * K);
    check_accumulated("  db accumulates", db2, b0, db, N);
    tdx.data = dx2;
    ok(lily_op_linear_backward(ctx, &c.in[0], &c.in[1], &dy, &tdx, NULL, NULL));
    lt_assert_close_abs("  dx alone (dw, db NULL)", dx2, dx, (size_t)A * M * K, 0.0);
    g_free(x);
    g_free(w);
    g_free(b);
    g_free(y);
    g_free(c.wout);
    g_free(dx);
    g_free(dw);
    g_free(db);
    g_free(dw2);
    g_free(w0);
    g_free(db2);
    g_free(b0);
    g_free(dx2);
}

/* ---------------------------------------------------------------------------------------- */
/* attention                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void attn_fwd(Case *c)
{
    ok(lily_op_attention(ctx, &c->in[0], &c->in[1], &c->in[2], *(float *)c->aux, &c->y));
}

static void run_attention_grad(const char *name, int B, int T, int S, int D, int Dv)
{
    float scale = 1.0f / sqrtf((float)D);
    float *q = rnd((size_t)B * T * D, 41), *k = rnd((size_t)B * S * D, 42), *v = rnd((size_t)B * S * Dv, 43);
    for (int i = 0; i < B * T * D; i++) q[i] *= 2.0f;
    float *o = nans((size_t)B * T * Dv);
    Case c = {.in = {TEN(q, B, T, D), TEN(k, B, S, D), TEN(v, B, S, Dv)}, .in_name = {"q", "k", "v"}, .n_in = 3,
              .y = TEN(o, B, T, Dv), .fwd = attn_fwd, .aux = &scale};
    c.wout = rnd((size_t)B * T * Dv, 44);
    loss(&c);
    float *dq = nans((size_t)B * T * D), *dk = nans((size_t)B * S * D), *dv = nans((size_t)B * S * Dv);
    LilyTensor dout = TEN(c.wout, B, T, Dv), tdq = TEN(dq, B, T, D), tdk = TEN(dk, B, S, D), tdv = TEN(dv, B, S, Dv);
    ok(lily_op_attention_backward(ctx, &c.in[0], &c.in[1], &c.in[2], scale, &dout, &tdq, &tdk, &tdv));
    check_fd(name, &c, 0, dq, H_NL, TOL_NL);
    check_fd(name, &c, 1, dk, H_NL, TOL_NL);
    check_fd(name, &c, 2, dv, H_LIN, TOL_LIN);
    /* dk and dv are input gradients: overwritten, and each may be requested alone */
    float *dk2 = nans((size_t)B * S * D), *dv2 = rnd((size_t)B * S * Dv, 45);
    tdk.data = dk2;
    tdv.data = dv2;
    ok(lily_op_attention_backward(ctx, &c.in[0], &c.in[1], &c.in[2], scale, &dout, NULL, &tdk, NULL));
    lt_assert_close_rel("  dk alone", dk2, dk, (size_t)B * S * D, 1e-6);
    ok(lily_op_attention_backward(ctx, &c.in[0], &c.in[1], &c.in[2], scale, &dout, NULL, NULL, &tdv));
    lt_assert_close_rel("  dv alone, overwritten", dv2, dv, (size_t)B * S * Dv, 1e-6);
    g_free(q);
    g_free(k);
    g_free(v);
    g_free(o);
    g_free(c.wout);
    g_free(dq);
    g_free(dk);
    g_free(dv);
    g_free(dk2);
    g_free(dv2);
}

/* attention backward (dq, dk, dv) matches finite differences for several heads (thread per
 * head) and for one long sequence spanning several row blocks. */
static void test_attention_grad(void)
{
    run_attention_grad("attention 3x5x6 D4 Dv3", 3, 5, 6, 4, 3);
    run_attention_grad("attention 1x300x40 D8 (2 blocks)", 1, 300, 40, 8, 8);
}

/* ---------------------------------------------------------------------------------------- */
/* normalisation                                                                             */
/* ---------------------------------------------------------------------------------------- */

typedef struct NormAux {
    int groups, silu;
    float eps;
} NormAux;

static void gn_fwd(Case *c)
{
    NormAux *a = c->aux;
    ok(lily_op_group_norm(ctx, &c->in[0], &c->in[1], &c->in[2], a->groups, a->eps, a->silu, &c->y));
}

/* group_norm backward (dx, dgamma, dbeta) matches finite differences, plain and with SiLU. */
static void test_group_norm_grad(void)
{
    const int N = 2, C = 6, H = 4, W = 5;
    size_t n = (size_t)N * C * H * W;
    for (int silu = 0; silu < 2; silu++) {
        float *x = rnd(n, 51), *g = rnd(C, 52), *b = rnd(C, 53), *y = nans(n);
        for (int i = 0; i < C; i++) g[i] += 1.5f;
        NormAux a = {3, silu, 1e-5f};
        Case c = {.in = {TEN(x, N, C, H, W), TEN(g, C), TEN(b, C)}, .in_name = {"x", "gamma", "beta"}, .n_in = 3,
                  .y = TEN(y, N, C, H, W), .fwd = gn_fwd, .aux = &a};
        c.wout = rnd(n, 54);
        loss(&c);
        float *dx = nans(n), *dg = g_new0(float, C), *db = g_new0(float, C);
        LilyTensor dy = TEN(c.wout, N, C, H, W), tdx = TEN(dx, N, C, H, W), tdg = TEN(dg, C), tdb = TEN(db, C);
        ok(lily_op_group_norm_backward(ctx, &c.in[0], &c.in[1], &c.in[2], 3, 1e-5f, silu, &dy, &tdx, &tdg, &tdb));
        const char *name = silu ? "group_norm+silu" : "group_norm";
        check_fd(name, &c, 0, dx, H_NL, TOL_NL);
        check_fd(name, &c, 1, dg, H_NL, TOL_NL);
        check_fd(name, &c, 2, db, H_NL, TOL_NL);
        float *dg2 = rnd(C, 55), *g0 = g_memdup2(dg2, (size_t)C * 4), *db2 = rnd(C, 56), *b0 = g_memdup2(db2, (size_t)C * 4);
        tdg.data = dg2;
        tdb.data = db2;
        ok(lily_op_group_norm_backward(ctx, &c.in[0], &c.in[1], &c.in[2], 3, 1e-5f, silu, &dy, NULL, &tdg, &tdb));
        check_accumulated("  dgamma accumulates (dx NULL)", dg2, g0, dg, C);
        check_accumulated("  dbeta accumulates", db2, b0, db, C);
        float *dx2 = nans(n);
        tdx.data = dx2;
        ok(lily_op_group_norm_backward(ctx, &c.in[0], &c.in[1], &c.in[2], 3, 1e-5f, silu, &dy, &tdx, NULL, NULL));
        lt_assert_close_abs("  dx alone", dx2, dx, n, 0.0);
        g_free(x);
        g_free(g);
        g_free(b);
        g_free(y);
        g_free(c.wout);
        g_free(dx);
        g_free(dg);
        g_free(db);
        g_free(dg2);
        g_free(g0);
        g_free(db2);
        g_free(b0);
        g_free(dx2);
    }
}

static void ln_fwd(Case *c)
{
    ok(lily_op_layer_norm(ctx, &c->in[0], &c->in[1], &c->in[2], 1e-5f, &c->y));
}

/* layer_norm backward (dx, dgamma, dbeta) matches finite differences; dgamma/dbeta accumulate. */
static void test_layer_norm_grad(void)
{
    const int M = 4, D = 9;
    float *x = rnd((size_t)M * D, 61), *g = rnd(D, 62), *b = rnd(D, 63), *y = nans((size_t)M * D);
    Case c = {.in = {TEN(x, M, D), TEN(g, D), TEN(b, D)}, .in_name = {"x", "gamma", "beta"}, .n_in = 3,
              .y = TEN(y, M, D), .fwd = ln_fwd};
    c.wout = rnd((size_t)M * D, 64);
    loss(&c);
    float *dx = nans((size_t)M * D), *dg = g_new0(float, D), *db = g_new0(float, D);
    LilyTensor dy = TEN(c.wout, M, D), tdx = TEN(dx, M, D), tdg = TEN(dg, D), tdb = TEN(db, D);
    ok(lily_op_layer_norm_backward(ctx, &c.in[0], &c.in[1], 1e-5f, &dy, &tdx, &tdg, &tdb));
    check_fd("layer_norm", &c, 0, dx, H_NL, TOL_NL);
    check_fd("layer_norm", &c, 1, dg, H_NL, TOL_NL);
    check_fd("layer_norm", &c, 2, db, H_NL, TOL_NL);
    float *dg2 = rnd(D, 65), *g0 = g_memdup2(dg2, (size_t)D * 4), *db2 = rnd(D, 66), *b0 = g_memdup2(db2, (size_t)D * 4);
    tdg.data = dg2;
    tdb.data = db2;
    ok(lily_op_layer_norm_backward(ctx, &c.in[0], &c.in[1], 1e-5f, &dy, NULL, &tdg, &tdb));
    check_accumulated("  dgamma accumulates (dx NULL)", dg2, g0, dg, D);
    check_accumulated("  dbeta accumulates", db2, b0, db, D);
    g_free(x);
    g_free(g);
    g_free(b);
    g_free(y);
    g_free(c.wout);
    g_free(dx);
    g_free(dg);
    g_free(db);
    g_free(dg2);
    g_free(g0);
    g_free(db2);
    g_free(b0);
}

static void softmax_fwd(Case *c)
{
    ok(lily_op_softmax(ctx, &c->in[0], *(float *)c->aux, &c->y));
}

/* softmax backward (from the forward output y) matches finite differences. */
static void test_softmax_grad(void)
{
    const int M = 3, D = 7;
    float scale = 0.7f;
    float *x = rnd((size_t)M * D, 71), *y = nans((size_t)M * D);
    for (int i = 0; i < M * D; i++) x[i] *= 3.0f;
    Case c = {.in = {TEN(x, M, D)}, .in_name = {"x"}, .n_in = 1, .y = TEN(y, M, D), .fwd = softmax_fwd, .aux = &scale};
    c.wout = rnd((size_t)M * D, 72);
    loss(&c);
    float *dx = nans((size_t)M * D);
    LilyTensor dy = TEN(c.wout, M, D), tdx = TEN(dx, M, D);
    ok(lily_op_softmax_backward(ctx, &c.y, scale, &dy, &tdx));
    check_fd("softmax", &c, 0, dx, H_NL, TOL_NL);
    g_free(x);
    g_free(y);
    g_free(c.wout);
    g_free(dx);
}

/* ---------------------------------------------------------------------------------------- */
/* elementwise and layout                                                                    */
/* ---------------------------------------------------------------------------------------- */

typedef struct UnAux {
    LilyUnaryOp op;
    float alpha;
} UnAux;

static void unary_fwd(Case *c)
{
    UnAux *a = c->aux;
    ok(lily_op_unary(ctx, a->op, a->alpha, &c->in[0], &c->y));
}

/* unary_backward matches finite differences for every op (inputs kept away from kinks). */
static void test_unary_grad(void)
{
    static const char *const names[] = {"identity", "silu", "gelu", "leaky_relu", "tanh", "exp", "scale",
                                        "add_scalar", "square", "abs", "min", "max", "sigmoid"};
    G_STATIC_ASSERT(G_N_ELEMENTS(names) == LILY_UNARY_COUNT);
    const size_t n = 40;
    for (int op = 0; op < LILY_UNARY_COUNT; op++) {
        UnAux a = {(LilyUnaryOp)op, op == LILY_UNARY_LEAKY_RELU ? 0.1f : 0.3f};
        float *x = g_new(float, n), *y = nans(n), *dx = nans(n);
        lt_fill_uniform(x, n, 81, -2.5f, 2.5f);
        float kink = (op == LILY_UNARY_MIN || op == LILY_UNARY_MAX) ? a.alpha : 0.0f;
        for (size_t i = 0; i < n; i++)
            if (fabsf(x[i] - kink) < 0.05f) x[i] = kink + (x[i] < kink ? -0.1f : 0.1f);
        Case c = {.in = {TEN(x, n)}, .in_name = {"x"}, .n_in = 1, .y = TEN(y, n), .fwd = unary_fwd, .aux = &a};
        c.wout = rnd(n, 82);
        loss(&c);
        LilyTensor dy = TEN(c.wout, n), tdx = TEN(dx, n);
        ok(lily_op_unary_backward(ctx, a.op, a.alpha, &c.in[0], &dy, &tdx));
        char name[64];
        snprintf(name, sizeof name, "unary %s", names[op]);
        check_fd(name, &c, 0, dx, H_NL, TOL_NL);
        g_free(x);
        g_free(y);
        g_free(dx);
        g_free(c.wout);
    }
}

static void geglu_fwd(Case *c)
{
    ok(lily_op_geglu(ctx, &c->in[0], &c->y));
}

/* geglu backward (both halves of x) matches finite differences. */
static void test_geglu_grad(void)
{
    const int M = 3, D = 5;
    float *x = rnd((size_t)M * 2 * D, 91), *y = nans((size_t)M * D), *dx = nans((size_t)M * 2 * D);
    for (int i = 0; i < M * 2 * D; i++) x[i] *= 2.0f;
    Case c = {.in = {TEN(x, M, 2 * D)}, .in_name = {"x"}, .n_in = 1, .y = TEN(y, M, D), .fwd = geglu_fwd};
    c.wout = rnd((size_t)M * D, 92);
    loss(&c);
    LilyTensor dy = TEN(c.wout, M, D), tdx = TEN(dx, M, 2 * D);
    ok(lily_op_geglu_backward(ctx, &c.in[0], &dy, &tdx));
    check_fd("geglu", &c, 0, dx, H_NL, TOL_NL);
    g_free(x);
    g_free(y);
    g_free(dx);
    g_free(c.wout);
}

static void up_fwd(Case *c)
{
    ok(lily_op_upsample2x(ctx, &c->in[0], &c->y));
}

/* upsample2x backward sums each 2x2 block, as finite differences of the forward say. */
static void test_upsample_grad(void)
{
    const int N = 1, C = 2, H = 3, W = 5;
    float *x = rnd((size_t)N * C * H * W, 101), *y = nans((size_t)N * C * 4 * H * W), *dx = nans((size_t)N * C * H * W);
    Case c = {.in = {TEN(x, N, C, H, W)}, .in_name = {"x"}, .n_in = 1, .y = TEN(y, N, C, 2 * H, 2 * W), .fwd = up_fwd};
    c.wout = rnd((size_t)N * C * 4 * H * W, 102);
    loss(&c);
    LilyTensor dy = TEN(c.wout, N, C, 2 * H, 2 * W), tdx = TEN(dx, N, C, H, W);
    ok(lily_op_upsample2x_backward(ctx, &dy, &tdx));
    check_fd("upsample2x", &c, 0, dx, H_LIN, TOL_LIN);
    g_free(x);
    g_free(y);
    g_free(dx);
    g_free(c.wout);
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
    g_test_add_func("/lily/kernels/grad/conv2d", test_conv2d_grad);
    g_test_add_func("/lily/kernels/grad/conv1d", test_conv1d_grad);
    g_test_add_func("/lily/kernels/grad/conv-transpose1d", test_convt_grad);
    g_test_add_func("/lily/kernels/grad/linear", test_linear_grad);
    g_test_add_func("/lily/kernels/grad/attention", test_attention_grad);
    g_test_add_func("/lily/kernels/grad/group-norm", test_group_norm_grad);
    g_test_add_func("/lily/kernels/grad/layer-norm", test_layer_norm_grad);
    g_test_add_func("/lily/kernels/grad/softmax", test_softmax_grad);
    g_test_add_func("/lily/kernels/grad/unary", test_unary_grad);
    g_test_add_func("/lily/kernels/grad/geglu", test_geglu_grad);
    g_test_add_func("/lily/kernels/grad/upsample2x", test_upsample_grad);
    int rc = g_test_run();
    lily_context_free(ctx);
    return rc;
}
