/* kernels/cpu/conv.c - convolutions on oneDNN: conv1d, conv2d, conv_transpose1d, forward and
 * backward (see conv.h; PyTorch's Conv1d/Conv2d/ConvTranspose1d with groups = 1).
 *
 * Every product goes through one path: build (once per shape, cached in the handle) a oneDNN
 * primitive whose memory layouts are either the caller's plain ones or `any` (oneDNN's choice:
 * channels-last acdb / acb for the brgconv kernels it picks here), then reorder whatever
 * differs from the caller's layout around the call. want_blocked() holds the measured choice
 * between the two. Weights are reordered once when the caller stamped them immutable (the
 * handle's weight cache). ConvTranspose maps to oneDNN's deconvolution, whose weights are
 * logically [O, C, K]; PyTorch stores [C, O, K], which is just another stride order (oneDNN
 * "iow"). oneDNN counts dilation from 0 (0 = dense), PyTorch from 1. Where oneDNN has no bf16
 * kernel (CPUs without AVX-512) a bf16 product runs as f32 on bf16-rounded operands, which
 * gives the same products (bf16 x bf16 is exact in f32). Backward runs in f32 only. */
#include <stdlib.h>
#include <string.h>

#include "common/half.h"
#include "cpu/conv.h"

enum { CONV_FWD = 1, CONV_BWD_DATA, CONV_BWD_WEIGHTS };

typedef struct ConvKey {
    int32_t tag; /* "CONV" */
    int32_t kind, nd, transposed, wdt, has_bias, blocked, pad_;
    int64_t n, c, o, in[2], k[2], out[2];
    int32_t stride[2], pb[2], pe[2], dil[2];
} ConvKey;

/* A cached primitive with the layouts it wants and the caller's plain layouts. */
typedef struct ConvPrim {
    dnnl_primitive_t prim;
    /* the primitive's layouts: a = src or diff_src, w = weights or diff_weights,
     * d = dst or diff_dst */
    dnnl_memory_desc_t a_md, w_md, d_md, bias_md, scratch_md;
    dnnl_memory_desc_t ua_md, uw_md, ud_md; /* the caller's layouts (f32) */
    size_t scratch_bytes;
} ConvPrim;

static void conv_prim_destroy(void *p)
{
    ConvPrim *cp = p;
    if (cp->prim) dnnl_primitive_destroy(cp->prim);
    free(cp);
}

/* Spatial parameters in oneDNN's order (1 or 2 entries). */
typedef struct Geo {
    int nsp;
    dnnl_dims_t strides, dilates, pl, pr;
} Geo;

static Geo geo_of(const LilyConvShape *s)
{
    Geo g;
    memset(&g, 0, sizeof g);
    g.nsp = s->nd;
    int first = s->nd == 1 ? 1 : 0;
    for (int i = 0; i < s->nd; i++) {
        g.strides[i] = s->stride[first + i];
        g.dilates[i] = s->dilation[first + i] - 1;
        g.pl[i] = s->pad_begin[first + i];
        g.pr[i] = s->pad_end[first + i];
    }
    return g;
}

static int act_dims(const LilyConvShape *s, int64_t ch, const int64_t *sp, int64_t *dims)
{
    int n = 0;
    dims[n++] = s->n;
    dims[n++] = ch;
    if (s->nd == 2) dims[n++] = sp[0];
    dims[n++] = sp[1];
    return n;
}

/* The caller's weights layout: [O, C, K..] plain, or [C, O, K] for transposed (logical dims
 * stay oneDNN's [O, C, K]). */
static int user_weights_md(LilyCpuDnn *h, const LilyConvShape *s, dnnl_memory_desc_t *md)
{
    dnnl_dims_t dims, strides;
    int n = 0;
    dims[n++] = s->o;
    dims[n++] = s->c;
    if (s->nd == 2) dims[n++] = s->k[0];
    dims[n++] = s->k[1];
    int64_t ksz = s->nd == 2 ? s->k[0] * s->k[1] : s->k[1];
    if (s->transposed) {
        strides[0] = ksz;        /* o */
        strides[1] = s->o * ksz; /* c */
    } else {
        strides[0] = s->c * ksz;
        strides[1] = ksz;
    }
    if (s->nd == 2) {
        strides[2] = s->k[1];
        strides[3] = 1;
    } else {
        strides[2] = 1;
    }
    return lily_cpu_dnn_check(h, dnnl_memory_desc_init_by_strides(md, n, dims, dnnl_f32, strides),
                              "conv weights descriptor");
}

static dnnl_data_type_t dt_of(int wdt)
{
    return wdt == LILY_KDT_BF16 ? dnnl_bf16 : dnnl_f32;
}

static void set_any(dnnl_memory_desc_t *md, const dnnl_memory_desc_t *plain, dnnl_data_type_t dt,
                    int any)
{
    if (any) {
        dnnl_memory_desc_init_by_tag(md, plain->ndims, plain->dims, dt, dnnl_format_tag_any);
    } else {
        *md = *plain;
        md->data_type = dt;
    }
}

static int init_fwd_desc(LilyCpuDnn *h, const LilyConvShape *s, dnnl_prop_kind_t prop,
                         const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *w,
                         const dnnl_memory_desc_t *b, const dnnl_memory_desc_t *d,
                         dnnl_convolution_desc_t *desc)
{
    Geo g = geo_of(s);
    dnnl_status_t st;
    if (s->transposed)
        st = dnnl_dilated_deconvolution_forward_desc_init(desc, prop, dnnl_deconvolution_direct, a, w,
                                                          b, d, g.strides, g.dilates, g.pl, g.pr);
    else
        st = dnnl_dilated_convolution_forward_desc_init(desc, prop, dnnl_convolution_direct, a, w, b,
                                                        d, g.strides, g.dilates, g.pl, g.pr);
    return lily_cpu_dnn_check(h, st, s->transposed ? "deconvolution forward" : "convolution forward");
}

static int make_attr(LilyCpuDnn *h, dnnl_primitive_attr_t *attr)
{
    int rc = lily_cpu_dnn_check(h, dnnl_primitive_attr_create(attr), "attributes");
    if (!rc) rc = lily_cpu_dnn_check(h, dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user),
                                     "attributes");
    return rc;
}

static const dnnl_memory_desc_t *pd_md(dnnl_primitive_desc_t pd, dnnl_query_t q)
{
    return dnnl_primitive_desc_query_md(pd, q, 0);
}

/* Builds the primitive for `key`. */
static int conv_build(LilyCpuDnn *h, const LilyConvShape *s, const ConvKey *key, ConvPrim **out)
{
    ConvPrim *cp = calloc(1, sizeof *cp);
    if (!cp) return lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "conv: out of memory");
    int64_t dims[5];
    int rc = LILY_CPU_OK;
    int n = act_dims(s, s->c, s->in, dims);
    rc = lily_cpu_md_plain(h, &cp->ua_md, n, dims, dnnl_f32);
    n = act_dims(s, s->o, s->out, dims);
    if (!rc) rc = lily_cpu_md_plain(h, &cp->ud_md, n, dims, dnnl_f32);
    if (!rc) rc = user_weights_md(h, s, &cp->uw_md);
    dnnl_memory_desc_t bias;
    if (!rc) rc = lily_cpu_md_plain(h, &bias, 1, &s->o, dnnl_f32);
    if (rc) {
        free(cp);
        return rc;
    }
    int any = key->blocked;
    dnnl_data_type_t cdt = dt_of(key->wdt);
    dnnl_memory_desc_t a, w, d;
    set_any(&a, &cp->ua_md, cdt, any);
    set_any(&w, &cp->uw_md, cdt, any);
    set_any(&d, &cp->ud_md, dnnl_f32, any);

    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL, hint = NULL;
    dnnl_convolution_desc_t fdesc, desc;
    rc = make_attr(h, &attr);
    if (!rc && key->kind == CONV_FWD) {
        rc = init_fwd_desc(h, s, dnnl_forward_inference, &a, &w, key->has_bias ? &bias : NULL, &d, &desc);
        if (!rc)
            rc = lily_cpu_dnn_check(h, dnnl_primitive_desc_create(&pd, &desc, attr, lily_cpu_dnn_engine(h), NULL),
                                    "convolution forward descriptor");
    } else if (!rc) {
        Geo g = geo_of(s);
        rc = init_fwd_desc(h, s, dnnl_forward_training, &a, &w, NULL, &d, &fdesc);
        if (!rc)
            rc = lily_cpu_dnn_check(h, dnnl_primitive_desc_create(&hint, &fdesc, NULL, lily_cpu_dnn_engine(h), NULL),
                                    "convolution backward hint");
        dnnl_status_t st;
        if (!rc && key->kind == CONV_BWD_DATA) {
            st = s->transposed
                     ? dnnl_dilated_deconvolution_backward_data_desc_init(&desc, dnnl_deconvolution_direct, &a, &w, &d,
                                                                          g.strides, g.dilates, g.pl, g.pr)
                     : dnnl_dilated_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &a, &w, &d,
                                                                        g.strides, g.dilates, g.pl, g.pr);
            rc = lily_cpu_dnn_check(h, st, "convolution backward data");
        } else if (!rc) {
            st = s->transposed
                     ? dnnl_dilated_deconvolution_backward_weights_desc_init(&desc, dnnl_deconvolution_direct, &a, &w,
                                                                             NULL, &d, g.strides, g.dilates, g.pl, g.pr)
                     : dnnl_dilated_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &a, &w,
                                                                           NULL, &d, g.strides, g.dilates, g.pl, g.pr);
            rc = lily_cpu_dnn_check(h, st, "convolution backward weights");
        }
        if (!rc)
            rc = lily_cpu_dnn_check(h, dnnl_primitive_desc_create(&pd, &desc, attr, lily_cpu_dnn_engine(h), hint),
                                    "convolution backward descriptor");
    }
    if (!rc) {
        if (key->kind == CONV_FWD) {
            cp->a_md = *pd_md(pd, dnnl_query_src_md);
            cp->w_md = *pd_md(pd, dnnl_query_weights_md);
            cp->d_md = *pd_md(pd, dnnl_query_dst_md);
            cp->bias_md = bias;
        } else if (key->kind == CONV_BWD_DATA) {
            cp->a_md = *pd_md(pd, dnnl_query_diff_src_md);
            cp->w_md = *pd_md(pd, dnnl_query_weights_md);
            cp->d_md = *pd_md(pd, dnnl_query_diff_dst_md);
        } else {
            cp->a_md = *pd_md(pd, dnnl_query_src_md);
            cp->w_md = *pd_md(pd, dnnl_query_diff_weights_md);
            cp->d_md = *pd_md(pd, dnnl_query_diff_dst_md);
        }
        cp->scratch_md = *pd_md(pd, dnnl_query_scratchpad_md);
        cp->scratch_bytes = dnnl_memory_desc_get_size(&cp->scratch_md);
        rc = lily_cpu_dnn_check(h, dnnl_primitive_create(&cp->prim, pd), "convolution primitive");
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (hint) dnnl_primitive_desc_destroy(hint);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (rc) {
        conv_prim_destroy(cp);
        if (rc == LILY_CPU_ERR_UNSUPPORTED) {
            /* remember the refusal (prim NULL) so later calls do not ask oneDNN again */
            ConvPrim *tomb = calloc(1, sizeof *tomb);
            if (tomb) lily_cpu_cache_put(h, LILY_CPU_CACHE_PRIM, key, sizeof *key, tomb, 0, conv_prim_destroy);
        }
        return rc;
    }
    rc = lily_cpu_cache_put(h, LILY_CPU_CACHE_PRIM, key, sizeof *key, cp, 0, conv_prim_destroy);
    if (rc) return rc;
    *out = cp;
    return LILY_CPU_OK;
}

/* oneDNN's preferred layouts for these convolutions are channels-last (acdb / acb, found by
 * `any`), so the blocked policy pays a reorder of the input and of the output around each
 * call; its brgconv kernels still win by 15-50 % on the 3x3 shapes of the VAE and
 * UNet (bench-ops). Plain NCHW wins where the product is a GEMM over contiguous
 * spatial rows anyway (1x1 kernels, a single input channel), for the transposed convolutions
 * (oneDNN runs deconvolution as a backward-data gemm there), and for f32 on tiny maps (the
 * UNet's 16x4 level: 177 against 100 GFLOP/s per core). */
static int want_blocked(LilyCpuDnn *h, const LilyConvShape *s, int cdt)
{
    int policy = lily_cpu_dnn_layout(h);
    if (policy == LILY_CPU_LAYOUT_BLOCKED) return 1;
    if (policy == LILY_CPU_LAYOUT_PLAIN) return 0;
    /* 1-D: blocked (brgconv) primitives for long sequences cost ~0.3 s and ~120 MB each to
     * create, against milliseconds for the plain ones, and are not faster at these widths
     * (measured: tiny vocoder 94 s / 7.7 GB blocked, 0.6 s / 58 MB plain) */
    if (s->transposed || s->c == 1 || s->nd == 1) return 0;
    if (s->k[1] == 1 && s->k[0] == 1) return 0;
    int64_t pixels = s->nd == 2 ? s->out[0] * s->out[1] : s->out[1];
    if (cdt == LILY_KDT_F32 && pixels < 128) return 0;
    return 1;
}

static ConvKey make_key(const LilyConvShape *s, int kind, int wdt, int has_bias, int blocked)
{
    ConvKey k;
    memset(&k, 0, sizeof k);
    k.tag = 0x434f4e56;
    k.kind = kind;
    k.nd = s->nd;
    k.transposed = s->transposed;
    k.wdt = wdt;
    k.has_bias = has_bias;
    k.blocked = blocked;
    k.n = s->n;
    k.c = s->c;
    k.o = s->o;
    for (int i = 0; i < 2; i++) {
        k.in[i] = s->nd == 1 && i == 0 ? 1 : s->in[i];
        k.k[i] = s->nd == 1 && i == 0 ? 1 : s->k[i];
        k.out[i] = s->nd == 1 && i == 0 ? 1 : s->out[i];
        k.stride[i] = s->nd == 1 && i == 0 ? 1 : s->stride[i];
        k.pb[i] = s->nd == 1 && i == 0 ? 0 : s->pad_begin[i];
        k.pe[i] = s->nd == 1 && i == 0 ? 0 : s->pad_end[i];
        k.dil[i] = s->nd == 1 && i == 0 ? 1 : s->dilation[i];
    }
    return k;
}

static int conv_get(LilyCpuDnn *h, const LilyConvShape *s, int kind, int wdt, int has_bias,
                    int blocked, ConvPrim **out)
{
    ConvKey key = make_key(s, kind, wdt, has_bias, blocked);
    *out = lily_cpu_cache_find(h, LILY_CPU_CACHE_PRIM, &key, sizeof key);
    if (*out && !(*out)->prim)
        return lily_cpu_dnn_fail(h, LILY_CPU_ERR_UNSUPPORTED, "oneDNN convolution: no implementation");
    if (*out) return LILY_CPU_OK;
    return conv_build(h, s, &key, out);
}

/* An input in the primitive's layout: the caller's pointer or a reordered copy in `slot`. */
static int stage_in(LilyCpuDnn *h, const dnnl_memory_desc_t *user_md, const void *user,
                    const dnnl_memory_desc_t *want, int slot, const void **out)
{
    if (dnnl_memory_desc_equal(user_md, want)) {
        *out = user;
        return LILY_CPU_OK;
    }
    void *buf = lily_cpu_dnn_scratch(h, slot, dnnl_memory_desc_get_size(want));
    if (!buf) return lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "conv: out of memory staging an input");
    *out = buf;
    return lily_cpu_reorder(h, user_md, user, want, buf);
}

static int run(LilyCpuDnn *h, ConvPrim *cp, int n, const int *arg_ids, const dnnl_memory_desc_t **mds,
               void **ptrs, const char *what)
{
    dnnl_exec_arg_t args[6];
    dnnl_memory_t mems[6] = {NULL};
    int rc = LILY_CPU_OK;
    int na = 0;
    for (int i = 0; i < n && !rc; i++) {
        rc = lily_cpu_dnn_check(h, dnnl_memory_create(&mems[na], mds[i], lily_cpu_dnn_engine(h), ptrs[i]),
                                "conv memory");
        if (!rc) {
            args[na].arg = arg_ids[i];
            args[na].memory = mems[na];
            na++;
        }
    }
    if (!rc && cp->scratch_bytes) {
        void *sp = lily_cpu_dnn_scratch(h, LILY_CPU_SCRATCH_DNNL, cp->scratch_bytes);
        if (!sp) rc = lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "conv: out of memory for oneDNN scratchpad");
        if (!rc)
            rc = lily_cpu_dnn_check(h, dnnl_memory_create(&mems[na], &cp->scratch_md, lily_cpu_dnn_engine(h), sp),
                                    "conv memory");
        if (!rc) {
            args[na].arg = DNNL_ARG_SCRATCHPAD;
            args[na].memory = mems[na];
            na++;
        }
    }
    if (!rc) rc = lily_cpu_dnn_exec(h, cp->prim, na, args, what);
    for (int i = 0; i < na; i++) dnnl_memory_destroy(mems[i]);
    return rc;
}

int lily_cpu_conv_forward(LilyCpuDnn *h, const LilyConvShape *s, const float *x, const void *w,
                          int wdt, uint64_t w_stamp, const float *b, float *y)
{
    /* before any primitive is created: oneDNN sizes its thread partition at creation */
    lily_cpu_dnn_use_threads(h);
    int cdt = wdt == LILY_KDT_BF16 ? LILY_KDT_BF16 : LILY_KDT_F32; /* f16 computes in f32 */
    int blocked = want_blocked(h, s, cdt);
    ConvPrim *cp;
    int rc = conv_get(h, s, CONV_FWD, cdt, b != NULL, blocked, &cp);
    const float *xin = x;
    if (rc == LILY_CPU_ERR_UNSUPPORTED && cdt == LILY_KDT_BF16) {
        /* oneDNN has bf16 convolutions only from AVX-512 on: elsewhere the same products run
         * in f32 on the input rounded to bf16 and the weights widened from bf16 */
        rc = conv_get(h, s, CONV_FWD, LILY_KDT_F32, b != NULL, blocked, &cp);
        int64_t nx = s->n * s->c * (s->nd == 2 ? s->in[0] * s->in[1] : s->in[1]);
        float *xr = rc ? NULL : lily_cpu_dnn_scratch(h, LILY_CPU_SCRATCH_AUX, (size_t)nx * sizeof(float));
        if (!rc && !xr) rc = lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "conv: out of memory rounding the input");
        if (!rc) lily_cpu_round_bf16(lily_cpu_dnn_threads(h), x, xr, nx);
        xin = xr;
    }
    if (rc) return rc;
    const void *src = NULL, *wei = NULL;
    rc = stage_in(h, &cp->ua_md, xin, &cp->a_md, LILY_CPU_SCRATCH_SRC, &src);
    if (!rc) rc = lily_cpu_weights_get(h, w_stamp, w, wdt, &cp->uw_md, &cp->w_md, &wei);
    if (rc) return rc;
    int direct = dnnl_memory_desc_equal(&cp->ud_md, &cp->d_md);
    void *dst = direct ? (void *)y : lily_cpu_dnn_scratch(h, LILY_CPU_SCRATCH_DST, dnnl_memory_desc_get_size(&cp->d_md));
    if (!dst) return lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "conv: out of memory for the output");
    int ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    const dnnl_memory_desc_t *mds[4] = {&cp->a_md, &cp->w_md, &cp->d_md, &cp->bias_md};
    void *ptrs[4] = {(void *)src, (void *)wei, dst, (void *)b};
    rc = run(h, cp, b ? 4 : 3, ids, mds, ptrs, "convolution forward");
    if (!rc && !direct) rc = lily_cpu_reorder(h, &cp->d_md, dst, &cp->ud_md, y);
    return rc;
}

static void bias_grad(int nt, const LilyConvShape *s, const float *dy, float *db)
{
    int64_t sp = s->nd == 2 ? s->out[0] * s->out[1] : s->out[1];
#pragma omp parallel for num_threads(nt) schedule(static) if (s->o * s->n * sp > 65536)
    for (int64_t o = 0; o < s->o; o++) {
        double acc = 0.0;
        for (int64_t n = 0; n < s->n; n++) {
            const float *p = dy + (n * s->o + o) * sp;
#pragma omp simd reduction(+ : acc)
            for (int64_t i = 0; i < sp; i++) acc += p[i];
        }
        db[o] += (float)acc;
    }
}

int lily_cpu_conv_backward(LilyCpuDnn *h, const LilyConvShape *s, const float *x, const float *w,
                           const float *dy, float *dx, float *dw, float *db)
{
    int rc = LILY_CPU_OK;
    ConvPrim *cp;
    lily_cpu_dnn_use_threads(h);
    if (dx) {
        rc = conv_get(h, s, CONV_BWD_DATA, LILY_KDT_F32, 0, 1, &cp);
        const void *ddst = NULL, *wei = NULL;
        if (!rc) rc = stage_in(h, &cp->ud_md, dy, &cp->d_md, LILY_CPU_SCRATCH_SRC, &ddst);
        if (!rc) rc = lily_cpu_weights_get(h, 0, w, LILY_KDT_F32, &cp->uw_md, &cp->w_md, &wei);
        if (rc) return rc;
        int direct = dnnl_memory_desc_equal(&cp->ua_md, &cp->a_md);
        void *dsrc = direct ? (void *)dx : lily_cpu_dnn_scratch(h, LILY_CPU_SCRATCH_DST, dnnl_memory_desc_get_size(&cp->a_md));
        if (!dsrc) return lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "conv backward: out of memory");
        int ids[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
        const dnnl_memory_desc_t *mds[3] = {&cp->d_md, &cp->w_md, &cp->a_md};
        void *ptrs[3] = {(void *)ddst, (void *)wei, dsrc};
        rc = run(h, cp, 3, ids, mds, ptrs, "convolution backward data");
        if (!rc && !direct) rc = lily_cpu_reorder(h, &cp->a_md, dsrc, &cp->ua_md, dx);
        if (rc) return rc;
    }
    if (dw) {
        rc = conv_get(h, s, CONV_BWD_WEIGHTS, LILY_KDT_F32, 0, 1, &cp);
        const void *src = NULL, *ddst = NULL;
        if (!rc) rc = stage_in(h, &cp->ua_md, x, &cp->a_md, LILY_CPU_SCRATCH_SRC, &src);
        if (!rc) rc = stage_in(h, &cp->ud_md, dy, &cp->d_md, LILY_CPU_SCRATCH_DST, &ddst);
        if (rc) return rc;
        void *dwei = lily_cpu_dnn_scratch(h, LILY_CPU_SCRATCH_WEI, dnnl_memory_desc_get_size(&cp->w_md));
        if (!dwei) return lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "conv backward: out of memory");
        int ids[3] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS};
        const dnnl_memory_desc_t *mds[3] = {&cp->a_md, &cp->d_md, &cp->w_md};
        void *ptrs[3] = {(void *)src, (void *)ddst, dwei};
        rc = run(h, cp, 3, ids, mds, ptrs, "convolution backward weights");
        if (!rc) rc = lily_cpu_reorder_add(h, &cp->w_md, dwei, &cp->uw_md, dw);
        if (rc) return rc;
    }
    if (db) bias_grad(lily_cpu_dnn_threads(h), s, dy, db);
    return LILY_CPU_OK;
}
