/* models/discriminators.c - HiFi-GAN's multi-period and multi-scale discriminators, forward with
 * saved activations and backward (see discriminators.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/philox.h" /* kernels/common: lily_philox_uniform */
#include "core/context.h"
#include "models/discriminators.h"

#define LRELU_SLOPE 0.1f

static const int MPD_PERIODS[LILY_MPD_COUNT] = {2, 3, 5, 7, 11};
static const int MPD_CH[5] = {32, 128, 512, 1024, 1024};
static const int MSD_CH[7] = {128, 128, 256, 512, 1024, 1024, 1024};
static const int MSD_K[7] = {15, 41, 41, 41, 41, 41, 5};
static const int MSD_S[7] = {1, 2, 2, 4, 4, 1, 1};
static const int MSD_G[7] = {1, 4, 16, 16, 16, 16, 1};
static const int MSD_P[7] = {7, 20, 20, 20, 20, 20, 2};

static int scaled(int c, double w)
{
    int v = (int)lround(c * w);
    return v < 1 ? 1 : v;
}

/* The largest divisor of g that divides both channel counts. */
static int fit_groups(int g, int cin, int cout)
{
    for (int k = g; k > 1; k--)
        if (g % k == 0 && cin % k == 0 && cout % k == 0) return k;
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Parameters                                                                                */
/* ---------------------------------------------------------------------------------------- */
typedef struct Spec {
    LilyTensor **dst;
    char name[96];
    int ndim;
    int64_t shape[4];
    int64_t fan_in;
} Spec;

typedef struct Builder {
    Spec s[160];
    int n;
} Builder;

static void spec(Builder *b, LilyTensor **dst, const char *name, int ndim, const int64_t *shape, int64_t fan_in)
{
    Spec *s = &b->s[b->n++];
    s->dst = dst;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = ndim;
    memcpy(s->shape, shape, sizeof(int64_t) * (size_t)ndim);
    s->fan_in = fan_in;
}

static void conv_spec(Builder *b, LilyConv *c, const char *base, int ndim, const int64_t *wshape)
{
    char n[96];
    int64_t fan_in = 1;
    for (int i = 1; i < ndim; i++) fan_in *= wshape[i];
    snprintf(n, sizeof n, "%s.weight", base);
    spec(b, &c->w, n, ndim, wshape, fan_in);
    snprintf(n, sizeof n, "%s.bias", base);
    spec(b, &c->b, n, 1, wshape, fan_in);
}

static uint64_t name_stream(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

void lily_discriminators_free(LilyDiscriminators *d)
{
    if (!d) return;
    if (d->memory && d->mem_backend.ops) d->mem_backend.ops->free(&d->mem_backend, d->memory);
    for (int i = 0; i < d->n_params; i++) free(d->params[i].name);
    free(d->params);
    free(d);
}

LilyStatus lily_discriminators_new(LilyContext *ctx, double width, uint64_t seed,
                                   LilyDiscriminators **out)
{
    *out = NULL;
    if (!(width > 0 && width <= 1))
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "train.disc_width must be in (0, 1], got %g", width);
    LilyDiscriminators *d = calloc(1, sizeof *d);
    Builder *b = calloc(1, sizeof *b);
    if (!d || !b) {
        free(d);
        free(b);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
    }
    d->width = width;
    char base[96];
    for (int i = 0; i < LILY_MPD_COUNT; i++) {
        LilyDiscP *p = &d->mpd[i];
        p->period = MPD_PERIODS[i];
        int cin = 1;
        for (int j = 0; j < 5; j++) {
            int co = scaled(MPD_CH[j], width);
            snprintf(base, sizeof base, "mpd.discriminators.%d.convs.%d", i, j);
            conv_spec(b, &p->convs[j], base, 4, (int64_t[]){co, cin, 5, 1});
            cin = co;
        }
        snprintf(base, sizeof base, "mpd.discriminators.%d.conv_post", i);
        conv_spec(b, &p->post, base, 4, (int64_t[]){1, cin, 3, 1});
    }
    for (int i = 0; i < LILY_MSD_COUNT; i++) {
        LilyDiscS *s = &d->msd[i];
        int cin = 1;
        for (int j = 0; j < 7; j++) {
            int co = scaled(MSD_CH[j], width);
            s->groups[j] = fit_groups(MSD_G[j], cin, co);
            s->kernel[j] = MSD_K[j];
            s->stride[j] = MSD_S[j];
            s->pad[j] = MSD_P[j];
            snprintf(base, sizeof base, "msd.discriminators.%d.convs.%d", i, j);
            conv_spec(b, &s->convs[j], base, 3, (int64_t[]){co, cin / s->groups[j], MSD_K[j]});
            cin = co;
        }
        snprintf(base, sizeof base, "msd.discriminators.%d.conv_post", i);
        conv_spec(b, &s->post, base, 3, (int64_t[]){1, cin, 3});
    }
    size_t total = 256; /* the pooling kernel */
    for (int i = 0; i < b->n; i++) {
        int64_t n = 1;
        for (int k = 0; k < b->s[i].ndim; k++) n *= b->s[i].shape[k];
        total += ((size_t)n * 4 + 255) / 256 * 256;
    }
    LilyStatus st = LILY_OK;
    d->params = calloc((size_t)b->n, sizeof *d->params);
    LilyBackend *be = ctx->backend;
    if (!d->params) st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
    if (st == LILY_OK && be->ops->alloc(be, total, &d->memory) != LILY_OK)
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "discriminators: %.1f MiB of %s memory are not available",
                        total / 1048576.0, lily_device_name(be->kind));
    if (st != LILY_OK) {
        free(b);
        lily_discriminators_free(d);
        return st;
    }
    d->mem_backend = *be;
    d->mem_backend.impl = NULL;
    float *host = NULL;
    size_t off = 0;
    for (int i = 0; i < b->n && st == LILY_OK; i++) {
        Spec *s = &b->s[i];
        LilyParam *p = &d->params[d->n_params];
        p->name = strdup(s->name);
        if (!p->name) {
            st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
            break;
        }
        p->matrix = s->ndim > 1;
        p->t = lily_tensor_make((char *)d->memory + off, LILY_DTYPE_F32, be->kind, s->ndim, s->shape);
        d->n_params++;
        *s->dst = &p->t;
        size_t n = (size_t)lily_tensor_numel(&p->t);
        off += (n * 4 + 255) / 256 * 256;
        float *h = realloc(host, n * sizeof(float));
        if (!h) {
            st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
            break;
        }
        host = h;
        /* nn.Conv*d.reset_parameters: kaiming_uniform(a=sqrt(5)) and the bias share the bound
         * 1/sqrt(fan_in) */
        float bound = (float)(1.0 / sqrt((double)s->fan_in));
        uint64_t stream = name_stream(s->name);
        for (size_t k = 0; k < n; k++) host[k] = (2.0f * lily_philox_uniform(seed, stream, k) - 1.0f) * bound;
        st = lily_tensor_upload(ctx, &p->t, host);
    }
    if (st == LILY_OK) {
        d->pool_w = lily_tensor_make((char *)d->memory + off, LILY_DTYPE_F32, be->kind, LILY_SHAPE(1, 1, 4));
        const float q[4] = {0.25f, 0.25f, 0.25f, 0.25f};
        st = lily_tensor_upload(ctx, &d->pool_w, q);
        d->pool.w = &d->pool_w;
        d->pool.b = NULL;
    }
    free(host);
    free(b);
    if (st != LILY_OK) {
        lily_discriminators_free(d);
        return st;
    }
    *out = d;
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Grouped Conv1d: the op table has no groups, so each group is a dense conv on its slice    */
/* ---------------------------------------------------------------------------------------- */
typedef struct GConv {
    const LilyConv *c;
    int groups, stride, pad;
    LilyTConv plain; /* groups == 1 */
    LilyTensor x;
} GConv;

/* Rows [g*og, (g+1)*og) of a weight [O, ...] (or bias [O]) as a tensor of its own. */
static LilyTensor slice0(const LilyTensor *t, int64_t first, int64_t count)
{
    LilyTensor v = *t;
    int64_t inner = lily_tensor_numel(t) / t->shape[0];
    v.data = (char *)t->data + (size_t)(first * inner) * lily_dtype_size(t->dtype);
    v.shape[0] = count;
    v.stamp = 0;
    return v;
}

static LilyStatus gconv_forward(LilyContext *ctx, const LilyParamSet *ps, GConv *tp, const LilyConv *c,
                                int groups, int stride, int pad, const LilyTensor *x, LilyTensor *y)
{
    tp->c = c;
    tp->groups = groups;
    tp->stride = stride;
    tp->pad = pad;
    tp->x = *x;
    if (groups == 1) return lily_t_conv1d(ctx, ps, &tp->plain, c, x, stride, pad, 1, y);
    int64_t B = x->shape[0], C = x->shape[1], L = x->shape[2], O = c->w->shape[0], K = c->w->shape[2];
    int64_t cg = C / groups, og = O / groups, lo = (L + 2 * pad - K) / stride + 1;
    const LilyTensor *wc = lily_ps_w(ps, c->w), *bc = lily_ps_w(ps, c->b);
    LilyConvParams p = lily_conv1d_params(stride, pad, 1);
    LILY_TRY(lily_tensor_alloc(ctx, y, LILY_DTYPE_F32, LILY_SHAPE(B, O, lo)));
    for (int g = 0; g < groups; g++) {
        LilyArenaMark m = lily_arena_mark(&ctx->arena);
        LilyTensor xs, ys, wv = slice0(wc, g * og, og), bv = slice0(bc, g * og, og);
        LILY_TRY(lily_tensor_alloc(ctx, &xs, LILY_DTYPE_F32, LILY_SHAPE(B, cg, L)));
        LILY_TRY(lily_tensor_alloc(ctx, &ys, LILY_DTYPE_F32, LILY_SHAPE(B, og, lo)));
        LILY_TRY(lily_op_copy_rows(ctx, x, g * cg, &xs, 0, B, cg, L));
        LILY_TRY(lily_op_conv1d(ctx, &xs, &wv, &bv, &p, &ys));
        LILY_TRY(lily_op_copy_rows(ctx, &ys, 0, y, g * og, B, og, lo));
        lily_arena_reset(&ctx->arena, m);
    }
    return LILY_OK;
}

static LilyStatus gconv_backward(LilyContext *ctx, const LilyParamSet *ps, const GConv *tp,
                                 const LilyTensor *dy, LilyTensor *dx)
{
    if (tp->groups == 1) return lily_t_conv_backward(ctx, ps, &tp->plain, dy, dx);
    const LilyTensor *x = &tp->x;
    const LilyConv *c = tp->c;
    int groups = tp->groups;
    int64_t B = x->shape[0], C = x->shape[1], L = x->shape[2], O = c->w->shape[0];
    int64_t cg = C / groups, og = O / groups, lo = dy->shape[2];
    LilyTensor *gw = lily_ps_g(ps, c->w), *gb = lily_ps_g(ps, c->b);
    LilyConvParams p = lily_conv1d_params(tp->stride, tp->pad, 1);
    if (dx) LILY_TRY(lily_nn_like(ctx, x, dx));
    if (!dx && !gw && !gb) return LILY_OK;
    for (int g = 0; g < groups; g++) {
        LilyArenaMark m = lily_arena_mark(&ctx->arena);
        LilyTensor xs, dys, dxs, wv = slice0(c->w, g * og, og), dwv, dbv;
        if (gw) dwv = slice0(gw, g * og, og);
        if (gb) dbv = slice0(gb, g * og, og);
        LILY_TRY(lily_tensor_alloc(ctx, &xs, LILY_DTYPE_F32, LILY_SHAPE(B, cg, L)));
        LILY_TRY(lily_tensor_alloc(ctx, &dys, LILY_DTYPE_F32, LILY_SHAPE(B, og, lo)));
        if (dx) LILY_TRY(lily_tensor_alloc(ctx, &dxs, LILY_DTYPE_F32, LILY_SHAPE(B, cg, L)));
        LILY_TRY(lily_op_copy_rows(ctx, x, g * cg, &xs, 0, B, cg, L));
        LILY_TRY(lily_op_copy_rows(ctx, dy, g * og, &dys, 0, B, og, lo));
        LILY_TRY(lily_op_conv1d_backward(ctx, &xs, &wv, &p, &dys, dx ? &dxs : NULL, gw ? &dwv : NULL,
                                         gb ? &dbv : NULL));
        if (dx) LILY_TRY(lily_op_copy_rows(ctx, &dxs, 0, dx, g * cg, B, cg, L));
        lily_arena_reset(&ctx->arena, m);
    }
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Reflect padding at the end (DiscriminatorP: F.pad(x, (0, n_pad), "reflect")), on the host */
/* ---------------------------------------------------------------------------------------- */
static LilyStatus reflect_pad_end(LilyContext *ctx, const LilyTensor *x, int64_t tp, LilyTensor *y)
{
    int64_t B = x->shape[0], T = x->shape[2];
    LILY_TRY(lily_tensor_alloc(ctx, y, LILY_DTYPE_F32, LILY_SHAPE(B, 1, tp)));
    float *h = malloc(sizeof(float) * (size_t)(B * tp) + sizeof(float) * (size_t)(B * T));
    if (!h) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
    float *src = h + B * tp;
    LilyStatus st = lily_tensor_download(ctx, x, src);
    for (int64_t b = 0; st == LILY_OK && b < B; b++)
        for (int64_t i = 0; i < tp; i++) h[b * tp + i] = src[b * T + (i < T ? i : 2 * (T - 1) - i)];
    if (st == LILY_OK) st = lily_tensor_upload(ctx, y, h);
    free(h);
    return st;
}

static LilyStatus reflect_pad_end_backward(LilyContext *ctx, const LilyTensor *dy, int64_t T, LilyTensor *dx)
{
    int64_t B = dy->shape[0], tp = lily_tensor_numel(dy) / B;
    LILY_TRY(lily_tensor_alloc(ctx, dx, LILY_DTYPE_F32, LILY_SHAPE(B, 1, T)));
    float *h = malloc(sizeof(float) * (size_t)(B * tp) + sizeof(float) * (size_t)(B * T));
    if (!h) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
    float *d = h + B * tp;
    LilyStatus st = lily_tensor_download(ctx, dy, h);
    memset(d, 0, sizeof(float) * (size_t)(B * T));
    for (int64_t b = 0; st == LILY_OK && b < B; b++)
        for (int64_t i = 0; i < tp; i++) d[b * T + (i < T ? i : 2 * (T - 1) - i)] += h[b * tp + i];
    if (st == LILY_OK) st = lily_tensor_upload(ctx, dx, d);
    free(h);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Forward and backward                                                                      */
/* ---------------------------------------------------------------------------------------- */
struct LilyDiscTape {
    int which, n_layers, n_pool;
    int64_t T, Tp; /* DiscriminatorP: length before and after padding */
    LilyTensor wave, pad4;
    LilyTConv conv[7], post, pool[2];
    GConv gconv[7];
    LilyTUnary act[7];
};

void lily_disc_tape_free(LilyDiscTape *tape) { free(tape); }

LilyStatus lily_disc_forward(LilyContext *ctx, const LilyDiscriminators *d, const LilyParamSet *ps,
                             int which, const LilyTensor *wave, LilyDiscTape **tape, LilyDiscOut *out)
{
    *tape = NULL;
    if (which < 0 || which >= LILY_DISC_COUNT || wave->ndim != 3 || wave->shape[1] != 1)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "discriminator %d: expects a waveform [N, 1, T]", which);
    LilyDiscTape *tp = calloc(1, sizeof *tp);
    if (!tp) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
    *tape = tp;
    tp->which = which;
    tp->wave = *wave;
    memset(out, 0, sizeof *out);
    LilyTensor h;
    if (which < LILY_MPD_COUNT) {
        const LilyDiscP *p = &d->mpd[which];
        int64_t B = wave->shape[0], T = wave->shape[2], per = p->period;
        tp->T = T;
        tp->Tp = (T + per - 1) / per * per;
        if (tp->Tp != T && T < tp->Tp - T + 1)
            return lily_error(ctx, LILY_ERR_SHAPE, "discriminator: waveform of %lld samples is too short",
                              (long long)T);
        LilyTensor padded;
        if (tp->Tp != T) LILY_TRY(reflect_pad_end(ctx, wave, tp->Tp, &padded));
        else padded = *wave;
        h = padded;
        lily_tensor_reshape(&h, LILY_SHAPE(B, 1, tp->Tp / per, per)); /* 'b c (t p) -> b c t p' */
        tp->pad4 = h;
        tp->n_layers = 5;
        for (int j = 0; j < 5; j++) {
            int s = j < 4 ? 3 : 1;
            LilyConvParams cp = {{s, 1}, {2, 0}, {2, 0}, {1, 1}};
            LilyTensor c, a;
            LILY_TRY(lily_t_conv2d(ctx, ps, &tp->conv[j], &p->convs[j], &h, &cp, &c));
            LILY_TRY(lily_t_unary(ctx, &tp->act[j], LILY_UNARY_LEAKY_RELU, LRELU_SLOPE, &c, &a));
            out->fmap[j] = a;
            h = a;
        }
        LilyConvParams cp = {{1, 1}, {1, 0}, {1, 0}, {1, 1}};
        LILY_TRY(lily_t_conv2d(ctx, ps, &tp->post, &p->post, &h, &cp, &out->out));
    } else {
        const LilyDiscS *s = &d->msd[which - LILY_MPD_COUNT];
        tp->n_pool = which - LILY_MPD_COUNT;
        h = *wave;
        for (int k = 0; k < tp->n_pool; k++) {
            LilyTensor pooled;
            LILY_TRY(lily_t_conv1d(ctx, ps, &tp->pool[k], &d->pool, &h, 2, 2, 1, &pooled));
            h = pooled;
        }
        tp->n_layers = 7;
        for (int j = 0; j < 7; j++) {
            LilyTensor c, a;
            LILY_TRY(gconv_forward(ctx, ps, &tp->gconv[j], &s->convs[j], s->groups[j], s->stride[j], s->pad[j], &h, &c));
            LILY_TRY(lily_t_unary(ctx, &tp->act[j], LILY_UNARY_LEAKY_RELU, LRELU_SLOPE, &c, &a));
            out->fmap[j] = a;
            h = a;
        }
        LILY_TRY(lily_t_conv1d(ctx, ps, &tp->post, &s->post, &h, 1, 1, 1, &out->out));
    }
    out->fmap[tp->n_layers] = out->out;
    out->n_fmaps = tp->n_layers + 1;
    return LILY_OK;
}

LilyStatus lily_disc_backward(LilyContext *ctx, const LilyParamSet *ps, LilyDiscTape *tp,
                              const LilyTensor *dout, const LilyTensor *const *dfmap,
                              LilyTensor *dwave)
{
    if (dwave) LILY_TRY(lily_nn_like(ctx, &tp->wave, dwave));
    LilyArenaMark m0 = lily_arena_mark(&ctx->arena);
    const LilyTensor *dpost = dfmap ? dfmap[tp->n_layers] : NULL;
    LilyTensor g, dscore;
    if (dout && dpost) LILY_TRY(lily_t_add(ctx, dout, dpost, &dscore));
    else if (dout || dpost) dscore = dout ? *dout : *dpost;
    else return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "discriminator backward: no gradient given");
    LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->post, &dscore, &g));
    for (int j = tp->n_layers - 1; j >= 0; j--) {
        if (dfmap && dfmap[j]) LILY_TRY(lily_t_accumulate(ctx, &g, dfmap[j]));
        LilyTensor da, dc;
        LILY_TRY(lily_t_unary_backward(ctx, &tp->act[j], &g, &da));
        bool need_dx = j > 0 || dwave;
        if (tp->which < LILY_MPD_COUNT)
            LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->conv[j], &da, need_dx ? &dc : NULL));
        else
            LILY_TRY(gconv_backward(ctx, ps, &tp->gconv[j], &da, need_dx ? &dc : NULL));
        if (!need_dx) break;
        g = dc;
    }
    if (dwave) {
        LilyTensor d;
        if (tp->which < LILY_MPD_COUNT) {
            if (tp->Tp != tp->T) {
                LILY_TRY(reflect_pad_end_backward(ctx, &g, tp->T, &d));
            } else {
                d = g;
                lily_tensor_reshape(&d, LILY_SHAPE(tp->wave.shape[0], 1, tp->T));
            }
        } else {
            d = g;
            for (int k = tp->n_pool - 1; k >= 0; k--) {
                LilyTensor e;
                LILY_TRY(lily_t_conv_backward(ctx, ps, &tp->pool[k], &d, &e));
                d = e;
            }
        }
        LILY_TRY(lily_tensor_copy(ctx, &d, dwave));
    }
    lily_arena_reset(&ctx->arena, m0);
    return LILY_OK;
}
