/* kernels/cpu/matmul.c - Linear (torch.nn.functional.linear) and batched gemm on oneDNN.
 *
 * Linear forward uses oneDNN's matmul primitive, cached per (M, K, N, dtype, bias), so that
 * immutable weights can live in the primitive's preferred (packed) layout, reordered once.
 * Mutable weights (stamp 0, training) stay in the caller's [N, K] layout, which oneDNN reads
 * as the transposed [K, N] operand. bf16 weights: the input is rounded to bf16 here and the
 * primitive accumulates in f32 (oneDNN's avx512_core_bf16 kernels; without AVX-512 the same
 * products run in f32 on bf16-rounded operands, as in conv.c). Backward and the batched
 * product use dnnl_sgemm (row-major BLAS semantics). */
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "common/half.h"
#include "cpu/matmul.h"

typedef struct LinKey {
    int32_t tag; /* "LINR" */
    int32_t wdt, has_bias, packed;
    int64_t M, K, N;
} LinKey;

typedef struct LinPrim {
    dnnl_primitive_t prim;
    dnnl_memory_desc_t src_md, wei_md, uwei_md, bias_md, dst_md, scratch_md;
    size_t scratch_bytes;
} LinPrim;

static void lin_destroy(void *p)
{
    LinPrim *lp = p;
    if (lp->prim) dnnl_primitive_destroy(lp->prim);
    free(lp);
}

static int lin_build(LilyCpuDnn *h, const LinKey *key, LinPrim **out)
{
    LinPrim *lp = calloc(1, sizeof *lp);
    if (!lp) return lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "linear: out of memory");
    dnnl_data_type_t cdt = key->wdt == LILY_KDT_BF16 ? dnnl_bf16 : dnnl_f32;
    int64_t sd[2] = {key->M, key->K}, dd[2] = {key->M, key->N}, bd[2] = {1, key->N};
    dnnl_dims_t wd = {key->K, key->N}, ws = {1, key->K};
    int rc = lily_cpu_md_plain(h, &lp->src_md, 2, sd, cdt);
    if (!rc) rc = lily_cpu_md_plain(h, &lp->dst_md, 2, dd, dnnl_f32);
    if (!rc) rc = lily_cpu_md_plain(h, &lp->bias_md, 2, bd, dnnl_f32);
    if (!rc)
        rc = lily_cpu_dnn_check(h, dnnl_memory_desc_init_by_strides(&lp->uwei_md, 2, wd, dnnl_f32, ws),
                                "linear weights descriptor");
    dnnl_memory_desc_t w = lp->uwei_md;
    w.data_type = cdt;
    if (!rc && key->packed)
        rc = lily_cpu_dnn_check(h, dnnl_memory_desc_init_by_tag(&w, 2, wd, cdt, dnnl_format_tag_any),
                                "linear weights descriptor");
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_matmul_desc_t desc;
    if (!rc) rc = lily_cpu_dnn_check(h, dnnl_primitive_attr_create(&attr), "attributes");
    if (!rc)
        rc = lily_cpu_dnn_check(h, dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user),
                                "attributes");
    if (!rc)
        rc = lily_cpu_dnn_check(h, dnnl_matmul_desc_init(&desc, &lp->src_md, &w, key->has_bias ? &lp->bias_md : NULL,
                                                         &lp->dst_md),
                                "matmul");
    if (!rc)
        rc = lily_cpu_dnn_check(h, dnnl_primitive_desc_create(&pd, &desc, attr, lily_cpu_dnn_engine(h), NULL),
                                "matmul descriptor");
    if (!rc) {
        lp->wei_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        lp->scratch_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        lp->scratch_bytes = dnnl_memory_desc_get_size(&lp->scratch_md);
        rc = lily_cpu_dnn_check(h, dnnl_primitive_create(&lp->prim, pd), "matmul primitive");
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (rc) {
        lin_destroy(lp);
        if (rc == LILY_CPU_ERR_UNSUPPORTED) {
            /* remember the refusal (prim NULL) so later calls do not ask oneDNN again */
            LinPrim *tomb = calloc(1, sizeof *tomb);
            if (tomb) lily_cpu_cache_put(h, LILY_CPU_CACHE_PRIM, key, sizeof *key, tomb, 0, lin_destroy);
        }
        return rc;
    }
    rc = lily_cpu_cache_put(h, LILY_CPU_CACHE_PRIM, key, sizeof *key, lp, 0, lin_destroy);
    if (rc) return rc;
    *out = lp;
    return LILY_CPU_OK;
}

static int lin_get(LilyCpuDnn *h, const LinKey *key, LinPrim **out)
{
    *out = lily_cpu_cache_find(h, LILY_CPU_CACHE_PRIM, key, sizeof *key);
    if (*out && !(*out)->prim)
        return lily_cpu_dnn_fail(h, LILY_CPU_ERR_UNSUPPORTED, "oneDNN matmul: no implementation");
    if (*out) return LILY_CPU_OK;
    return lin_build(h, key, out);
}

int lily_cpu_linear_forward(LilyCpuDnn *h, int64_t M, int64_t K, int64_t N, const float *x,
                            const void *w, int wdt, uint64_t w_stamp, const float *b, float *y)
{
    LinKey key;
    memset(&key, 0, sizeof key);
    key.tag = 0x4c494e52;
    key.wdt = wdt == LILY_KDT_BF16 ? LILY_KDT_BF16 : LILY_KDT_F32;
    key.has_bias = b != NULL;
    key.packed = w_stamp != 0;
    key.M = M;
    key.K = K;
    key.N = N;
    LinPrim *lp = NULL;
    lily_cpu_dnn_use_threads(h); /* before creation: oneDNN sizes its partition then */
    int rc = lin_get(h, &key, &lp);
    int emulate = 0;
    if (rc == LILY_CPU_ERR_UNSUPPORTED && key.wdt == LILY_KDT_BF16) {
        /* no bf16 matmul below AVX-512: f32 products of bf16-rounded inputs (see conv.c) */
        emulate = 1;
        key.wdt = LILY_KDT_F32;
        rc = lin_get(h, &key, &lp);
    }
    if (rc) return rc;
    const void *src = x;
    if (emulate) {
        float *xr = lily_cpu_dnn_scratch(h, LILY_CPU_SCRATCH_SRC, (size_t)(M * K) * sizeof(float));
        if (!xr) return lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "linear: out of memory rounding the input");
        lily_cpu_round_bf16(lily_cpu_dnn_threads(h), x, xr, M * K);
        src = xr;
    } else if (key.wdt == LILY_KDT_BF16) {
        uint16_t *xb = lily_cpu_dnn_scratch(h, LILY_CPU_SCRATCH_SRC, (size_t)(M * K) * 2);
        if (!xb) return lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "linear: out of memory converting the input");
        lily_cpu_f32_to_bf16(lily_cpu_dnn_threads(h), x, xb, M * K);
        src = xb;
    }
    const void *wei;
    rc = lily_cpu_weights_get(h, w_stamp, w, wdt, &lp->uwei_md, &lp->wei_md, &wei);
    if (rc) return rc;
    void *sp = NULL;
    if (lp->scratch_bytes) {
        sp = lily_cpu_dnn_scratch(h, LILY_CPU_SCRATCH_DNNL, lp->scratch_bytes);
        if (!sp) return lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "linear: out of memory for the scratchpad");
    }
    dnnl_engine_t eng = lily_cpu_dnn_engine(h);
    dnnl_memory_t m[5] = {NULL};
    dnnl_exec_arg_t args[5];
    int na = 0;
    const dnnl_memory_desc_t *mds[5] = {&lp->src_md, &lp->wei_md, &lp->dst_md, &lp->bias_md, &lp->scratch_md};
    void *ptrs[5] = {(void *)src, (void *)wei, y, (void *)b, sp};
    int ids[5] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS, DNNL_ARG_SCRATCHPAD};
    for (int i = 0; i < 5 && !rc; i++) {
        if (!ptrs[i]) continue;
        rc = lily_cpu_dnn_check(h, dnnl_memory_create(&m[na], mds[i], eng, ptrs[i]), "linear memory");
        if (!rc) {
            args[na].arg = ids[i];
            args[na].memory = m[na];
            na++;
        }
    }
    if (!rc) rc = lily_cpu_dnn_exec(h, lp->prim, na, args, "matmul");
    for (int i = 0; i < na; i++) dnnl_memory_destroy(m[i]);
    return rc;
}

int lily_cpu_sgemm(LilyCpuDnn *h, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                   float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                   float *C, int64_t ldc)
{
    if (M == 0 || N == 0) return LILY_CPU_OK;
    /* oneDNN's sgemm does not read C when beta == 0 (NaN there does not leak: test-ops
     * checks it), so no clearing pass is needed, except for the empty product below */
    if (K == 0) {
        if (beta == 0.0f)
            for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(float));
        else if (beta != 1.0f)
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) C[i * ldc + j] *= beta;
        return LILY_CPU_OK;
    }
    dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb,
                                  beta, C, ldc);
    return lily_cpu_dnn_check(h, st, "sgemm");
}

int lily_cpu_linear_backward(LilyCpuDnn *h, int64_t M, int64_t K, int64_t N, const float *x,
                             const float *w, const float *dy, float *dx, float *dw, float *db)
{
    lily_cpu_dnn_use_threads(h);
    int rc = LILY_CPU_OK;
    if (dx) rc = lily_cpu_sgemm(h, false, false, M, K, N, 1.0f, dy, N, w, K, 0.0f, dx, K);
    if (!rc && dw) rc = lily_cpu_sgemm(h, true, false, N, K, M, 1.0f, dy, N, x, K, 1.0f, dw, K);
    if (!rc && db) {
        int nt = lily_cpu_dnn_threads(h);
#pragma omp parallel for num_threads(nt) schedule(static) if (M * N > 65536)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0.0;
            for (int64_t i = 0; i < M; i++) acc += dy[i * N + j];
            db[j] += (float)acc;
        }
    }
    return rc;
}

int lily_cpu_matmul(LilyCpuDnn *h, int64_t batch, int64_t M, int64_t N, int64_t K, const float *a,
                    bool trans_a, const float *bm, bool trans_b, float alpha, float beta, float *c)
{
    int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
    int nt = lily_cpu_dnn_threads(h);
    lily_cpu_dnn_use_threads(h);
    /* many small products: one per thread; few large ones: threads inside each */
    if (batch >= nt && nt > 1 && M * N * K <= ((int64_t)1 << 24)) {
        int rc = LILY_CPU_OK;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t i = 0; i < batch; i++) {
            int r = lily_cpu_sgemm(h, trans_a, trans_b, M, N, K, alpha, a + i * M * K, lda, bm + i * K * N, ldb,
                                   beta, c + i * M * N, N);
            if (r) {
#pragma omp critical(lily_matmul_rc)
                rc = r;
            }
        }
        return rc;
    }
    for (int64_t i = 0; i < batch; i++) {
        int rc = lily_cpu_sgemm(h, trans_a, trans_b, M, N, K, alpha, a + i * M * K, lda, bm + i * K * N, ldb,
                                beta, c + i * M * N, N);
        if (rc) return rc;
    }
    return LILY_CPU_OK;
}
