/* kernels/cpu/onednn.c - the CPU kernels' handle: oneDNN engine/stream, caches, scratch.
 *
 * See onednn.h. The caches are small chained hash tables over byte-string keys with LRU
 * eviction; keys are built by the kernels from fixed-size structs (shapes, parameters,
 * dtypes) or from serialised oneDNN memory descriptors (md_sig below), never from pointers. */
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/half.h"
#include "cpu/onednn.h"

#define CACHE_BUCKETS 512

typedef struct CacheEntry {
    struct CacheEntry *next;
    uint64_t hash;
    uint64_t last_use;
    size_t key_len;
    size_t bytes;
    void *value;
    void (*destroy)(void *);
    unsigned char key[]; /* key_len bytes */
} CacheEntry;

typedef struct Cache {
    CacheEntry *buckets[CACHE_BUCKETS];
    size_t count, bytes;
    size_t max_count, max_bytes;
} Cache;

struct LilyCpuDnn {
    int n_threads;
    int layout;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    Cache caches[2];
    uint64_t tick;
    void *scratch[LILY_CPU_SCRATCH_COUNT];
    size_t scratch_size[LILY_CPU_SCRATCH_COUNT];
    char message[512];
};

static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void entry_free(Cache *c, CacheEntry *e)
{
    if (e->destroy) e->destroy(e->value);
    c->count--;
    c->bytes -= e->bytes;
    free(e);
}

static void cache_clear(Cache *c)
{
    for (int b = 0; b < CACHE_BUCKETS; b++) {
        CacheEntry *e = c->buckets[b];
        while (e) {
            CacheEntry *n = e->next;
            entry_free(c, e);
            e = n;
        }
        c->buckets[b] = NULL;
    }
}

/* Drops least recently used entries until `extra_bytes` more fit under the limits. */
static void cache_evict(Cache *c, size_t extra_bytes)
{
    while (c->count > 0 && (c->count + 1 > c->max_count || c->bytes + extra_bytes > c->max_bytes)) {
        CacheEntry **oldest = NULL;
        for (int b = 0; b < CACHE_BUCKETS; b++)
            for (CacheEntry **pe = &c->buckets[b]; *pe; pe = &(*pe)->next)
                if (!oldest || (*pe)->last_use < (*oldest)->last_use) oldest = pe;
        CacheEntry *e = *oldest;
        *oldest = e->next;
        entry_free(c, e);
    }
}

int lily_cpu_dnn_fail(LilyCpuDnn *h, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->message, sizeof h->message, fmt, ap);
    va_end(ap);
    return code;
}

static const char *dnnl_status_name(dnnl_status_t st)
{
    switch (st) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "no implementation for these shapes/types";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown status";
    }
}

int lily_cpu_dnn_check(LilyCpuDnn *h, dnnl_status_t st, const char *what)
{
    if (st == dnnl_success) return LILY_CPU_OK;
    if (st == dnnl_out_of_memory)
        return lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "oneDNN %s: out of memory", what);
    if (st == dnnl_unimplemented)
        return lily_cpu_dnn_fail(h, LILY_CPU_ERR_UNSUPPORTED, "oneDNN %s: %s", what, dnnl_status_name(st));
    return lily_cpu_dnn_fail(h, LILY_CPU_ERR_DNNL, "oneDNN %s: %s", what, dnnl_status_name(st));
}

int lily_cpu_dnn_new(int n_threads, LilyCpuDnn **out)
{
    *out = NULL;
    LilyCpuDnn *h = calloc(1, sizeof *h);
    if (!h) return LILY_CPU_ERR_NO_MEMORY;
    if (n_threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = cores > 0 ? (int)cores : 1;
    }
    h->n_threads = n_threads;
    h->caches[LILY_CPU_CACHE_PRIM].max_count = 4096;
    h->caches[LILY_CPU_CACHE_PRIM].max_bytes = SIZE_MAX;
    h->caches[LILY_CPU_CACHE_WEIGHTS].max_count = 1u << 16;
    h->caches[LILY_CPU_CACHE_WEIGHTS].max_bytes = (size_t)6 << 30;
    if (dnnl_engine_create(&h->engine, dnnl_cpu, 0) != dnnl_success) {
        free(h);
        return LILY_CPU_ERR_DNNL;
    }
    if (dnnl_stream_create(&h->stream, h->engine, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(h->engine);
        free(h);
        return LILY_CPU_ERR_DNNL;
    }
    *out = h;
    return LILY_CPU_OK;
}

void lily_cpu_dnn_free(LilyCpuDnn *h)
{
    if (!h) return;
    cache_clear(&h->caches[0]);
    cache_clear(&h->caches[1]);
    lily_cpu_dnn_trim(h);
    dnnl_stream_destroy(h->stream);
    dnnl_engine_destroy(h->engine);
    free(h);
}

int lily_cpu_dnn_threads(const LilyCpuDnn *h)
{
    return h->n_threads;
}

const char *lily_cpu_dnn_message(const LilyCpuDnn *h)
{
    return h->message;
}

dnnl_engine_t lily_cpu_dnn_engine(LilyCpuDnn *h)
{
    return h->engine;
}

void lily_cpu_dnn_set_layout(LilyCpuDnn *h, int policy)
{
    h->layout = policy;
}

int lily_cpu_dnn_layout(const LilyCpuDnn *h)
{
    return h->layout;
}

void lily_cpu_dnn_use_threads(const LilyCpuDnn *h)
{
    if (omp_get_max_threads() != h->n_threads) omp_set_num_threads(h->n_threads);
}

int lily_cpu_dnn_exec(LilyCpuDnn *h, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args,
                      const char *what)
{
    lily_cpu_dnn_use_threads(h);
    int rc = lily_cpu_dnn_check(h, dnnl_primitive_execute(prim, h->stream, nargs, args), what);
    if (rc) return rc;
    return lily_cpu_dnn_check(h, dnnl_stream_wait(h->stream), what);
}

int lily_cpu_md_plain(LilyCpuDnn *h, dnnl_memory_desc_t *md, int ndims, const int64_t *dims,
                      dnnl_data_type_t dt)
{
    dnnl_dims_t d, s;
    int64_t stride = 1;
    for (int i = ndims - 1; i >= 0; i--) {
        d[i] = dims[i];
        s[i] = stride;
        stride *= dims[i];
    }
    return lily_cpu_dnn_check(h, dnnl_memory_desc_init_by_strides(md, ndims, d, dt, s),
                              "memory descriptor");
}

void *lily_cpu_dnn_scratch(LilyCpuDnn *h, int slot, size_t bytes)
{
    if (bytes <= h->scratch_size[slot] && h->scratch[slot]) return h->scratch[slot];
    free(h->scratch[slot]);
    h->scratch[slot] = NULL;
    h->scratch_size[slot] = 0;
    size_t sz = (bytes + 4095) / 4096 * 4096;
    void *p = NULL;
    if (posix_memalign(&p, 64, sz ? sz : 64) != 0) return NULL;
    h->scratch[slot] = p;
    h->scratch_size[slot] = sz;
    return p;
}

void lily_cpu_dnn_trim(LilyCpuDnn *h)
{
    for (int i = 0; i < LILY_CPU_SCRATCH_COUNT; i++) {
        free(h->scratch[i]);
        h->scratch[i] = NULL;
        h->scratch_size[i] = 0;
    }
}

void *lily_cpu_cache_find(LilyCpuDnn *h, int which, const void *key, size_t key_len)
{
    Cache *c = &h->caches[which];
    uint64_t hash = fnv1a(key, key_len);
    for (CacheEntry *e = c->buckets[hash % CACHE_BUCKETS]; e; e = e->next)
        if (e->hash == hash && e->key_len == key_len && memcmp(e->key, key, key_len) == 0) {
            e->last_use = ++h->tick;
            return e->value;
        }
    return NULL;
}

int lily_cpu_cache_put(LilyCpuDnn *h, int which, const void *key, size_t key_len, void *value,
                       size_t bytes, void (*destroy)(void *))
{
    Cache *c = &h->caches[which];
    CacheEntry *e = malloc(sizeof *e + key_len);
    if (!e) {
        if (destroy) destroy(value);
        return LILY_CPU_ERR_NO_MEMORY;
    }
    cache_evict(c, bytes);
    e->hash = fnv1a(key, key_len);
    e->last_use = ++h->tick;
    e->key_len = key_len;
    e->bytes = bytes;
    e->value = value;
    e->destroy = destroy;
    memcpy(e->key, key, key_len);
    CacheEntry **head = &c->buckets[e->hash % CACHE_BUCKETS];
    e->next = *head;
    *head = e;
    c->count++;
    c->bytes += bytes;
    return LILY_CPU_OK;
}

/* A deterministic byte string describing a memory descriptor's layout and type (oneDNN's
 * struct has padding and unused union members, so it is not hashed as raw bytes). */
static size_t md_sig(const dnnl_memory_desc_t *md, int64_t *out)
{
    size_t n = 0;
    out[n++] = md->ndims;
    out[n++] = md->data_type;
    out[n++] = md->format_kind;
    out[n++] = md->offset0;
    for (int i = 0; i < md->ndims; i++) {
        out[n++] = md->dims[i];
        out[n++] = md->padded_dims[i];
        out[n++] = md->padded_offsets[i];
    }
    if (md->format_kind == dnnl_blocked) {
        const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
        for (int i = 0; i < md->ndims; i++) out[n++] = b->strides[i];
        out[n++] = b->inner_nblks;
        for (int i = 0; i < b->inner_nblks; i++) {
            out[n++] = b->inner_blks[i];
            out[n++] = b->inner_idxs[i];
        }
    } else {
        /* opaque formats (winograd, packed): fall back to the whole union */
        uint64_t hh = fnv1a(&md->format_desc, sizeof md->format_desc);
        out[n++] = (int64_t)hh;
    }
    out[n++] = (int64_t)md->extra.flags;
    return n;
}

#define MD_SIG_MAX (8 + 3 * DNNL_MAX_NDIMS + 3 * DNNL_MAX_NDIMS + 4)

static void destroy_prim(void *p)
{
    dnnl_primitive_destroy((dnnl_primitive_t)p);
}

static int reorder(LilyCpuDnn *h, const dnnl_memory_desc_t *src_md, const void *src,
                   const dnnl_memory_desc_t *dst_md, void *dst, int add)
{
    int64_t key[1 + 2 * MD_SIG_MAX];
    size_t n = 0;
    lily_cpu_dnn_use_threads(h);
    key[n++] = add ? 0x41444452 : 0x52454f52; /* "ADDR" / "REOR" */
    n += md_sig(src_md, key + n);
    n += md_sig(dst_md, key + n);
    dnnl_primitive_t prim = lily_cpu_cache_find(h, LILY_CPU_CACHE_PRIM, key, n * sizeof key[0]);
    int rc;
    if (!prim) {
        dnnl_primitive_desc_t pd = NULL;
        dnnl_primitive_attr_t attr = NULL;
        dnnl_post_ops_t po = NULL;
        if (add) {
            rc = lily_cpu_dnn_check(h, dnnl_primitive_attr_create(&attr), "reorder attributes");
            if (!rc) rc = lily_cpu_dnn_check(h, dnnl_post_ops_create(&po), "reorder post-ops");
            if (!rc) rc = lily_cpu_dnn_check(h, dnnl_post_ops_append_sum(po, 1.0f), "reorder post-ops");
            if (!rc) rc = lily_cpu_dnn_check(h, dnnl_primitive_attr_set_post_ops(attr, po), "reorder post-ops");
            if (po) dnnl_post_ops_destroy(po);
            if (rc) {
                if (attr) dnnl_primitive_attr_destroy(attr);
                return rc;
            }
        }
        rc = lily_cpu_dnn_check(h, dnnl_reorder_primitive_desc_create(&pd, src_md, h->engine, dst_md,
                                                                      h->engine, attr),
                                "reorder descriptor");
        if (attr) dnnl_primitive_attr_destroy(attr);
        if (rc) return rc;
        rc = lily_cpu_dnn_check(h, dnnl_primitive_create(&prim, pd), "reorder primitive");
        dnnl_primitive_desc_destroy(pd);
        if (rc) return rc;
        rc = lily_cpu_cache_put(h, LILY_CPU_CACHE_PRIM, key, n * sizeof key[0], prim, 0, destroy_prim);
        if (rc) return rc;
    }
    dnnl_memory_t ms = NULL, md = NULL;
    rc = lily_cpu_dnn_check(h, dnnl_memory_create(&ms, src_md, h->engine, (void *)src), "reorder memory");
    if (!rc) rc = lily_cpu_dnn_check(h, dnnl_memory_create(&md, dst_md, h->engine, dst), "reorder memory");
    if (!rc) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md}};
        rc = lily_cpu_dnn_exec(h, prim, 2, args, "reorder");
    }
    if (ms) dnnl_memory_destroy(ms);
    if (md) dnnl_memory_destroy(md);
    return rc;
}

int lily_cpu_reorder(LilyCpuDnn *h, const dnnl_memory_desc_t *src_md, const void *src,
                     const dnnl_memory_desc_t *dst_md, void *dst)
{
    return reorder(h, src_md, src, dst_md, dst, 0);
}

int lily_cpu_reorder_add(LilyCpuDnn *h, const dnnl_memory_desc_t *src_md, const void *src,
                         const dnnl_memory_desc_t *dst_md, void *dst)
{
    return reorder(h, src_md, src, dst_md, dst, 1);
}

void lily_cpu_f32_to_bf16(int n_threads, const float *x, uint16_t *y, int64_t n)
{
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] = lily_f32_to_bf16_rne(x[i]);
}

void lily_cpu_round_bf16(int n_threads, const float *x, float *y, int64_t n)
{
#pragma omp parallel for simd num_threads(n_threads) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] = lily_bf16_bits_to_f32(lily_f32_to_bf16_rne(x[i]));
}

void lily_cpu_f16_to_f32(int n_threads, const uint16_t *x, float *y, int64_t n)
{
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] = lily_f16_bits_to_f32(x[i]);
}

static void destroy_buffer(void *p)
{
    free(p);
}

int lily_cpu_weights_get(LilyCpuDnn *h, uint64_t stamp, const void *w, int wdt,
                         const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *want,
                         const void **out)
{
    int64_t key[3 + MD_SIG_MAX];
    size_t n = 0;
    key[n++] = (int64_t)stamp;
    key[n++] = wdt;
    n += md_sig(want, key + n);
    if (stamp) {
        void *hit = lily_cpu_cache_find(h, LILY_CPU_CACHE_WEIGHTS, key, n * sizeof key[0]);
        if (hit) {
            *out = hit;
            return LILY_CPU_OK;
        }
    }
    dnnl_memory_desc_t src_md = *user_md;
    const void *src = w;
    int64_t numel = 1;
    for (int i = 0; i < user_md->ndims; i++) numel *= user_md->dims[i];
    if (wdt == LILY_KDT_F16) {
        float *tmp = lily_cpu_dnn_scratch(h, LILY_CPU_SCRATCH_WEI2, (size_t)numel * sizeof(float));
        if (!tmp) return lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "weights: out of memory converting f16");
        lily_cpu_f16_to_f32(h->n_threads, w, tmp, numel);
        src = tmp;
        src_md.data_type = dnnl_f32;
    } else {
        src_md.data_type = wdt == LILY_KDT_BF16 ? dnnl_bf16 : dnnl_f32;
    }
    if (src == w && dnnl_memory_desc_equal(&src_md, want)) {
        *out = w;
        return LILY_CPU_OK;
    }
    size_t bytes = dnnl_memory_desc_get_size(want);
    void *dst;
    if (stamp) {
        dst = NULL;
        if (posix_memalign(&dst, 64, bytes ? bytes : 64) != 0) dst = NULL;
    } else {
        dst = lily_cpu_dnn_scratch(h, LILY_CPU_SCRATCH_WEI, bytes);
    }
    if (!dst) return lily_cpu_dnn_fail(h, LILY_CPU_ERR_NO_MEMORY, "weights: out of memory (%zu bytes)", bytes);
    int rc = lily_cpu_reorder(h, &src_md, src, want, dst);
    if (rc) {
        if (stamp) free(dst);
        return rc;
    }
    if (stamp) {
        rc = lily_cpu_cache_put(h, LILY_CPU_CACHE_WEIGHTS, key, n * sizeof key[0], dst, bytes,
                                destroy_buffer);
        if (rc) return rc;
    }
    *out = dst;
    return LILY_CPU_OK;
}
