/* kernels/cpu/onednn.h - the CPU kernels' handle: thread count, oneDNN engine and stream,
 * a primitive cache, a cache of converted/reordered weights and reusable scratch buffers.
 *
 * One handle per CPU backend (so per context); nothing here is global. oneDNN is the OpenMP
 * runtime build, whose thread count is the calling thread's OpenMP setting: every oneDNN call
 * made through lily_cpu_dnn_exec (and every gemm call of these kernels) first sets it to the
 * handle's thread count.
 *
 * Caches. Creating a oneDNN primitive descriptor and JIT-compiling its kernel costs 0.1-10 ms,
 * far more than many of the calls it serves, so kernels keep their primitives keyed by shapes,
 * parameters and dtypes (lily_cpu_cache_*). Weights whose caller marked them immutable (a
 * nonzero stamp) are converted (f16 -> f32) and reordered into the primitive's preferred
 * layout once and kept, keyed by (stamp, target memory descriptor). Both caches evict the least
 * recently used entries beyond their limits. */
#ifndef LILY_KERNELS_CPU_ONEDNN_H
#define LILY_KERNELS_CPU_ONEDNN_H

#include <stddef.h>
#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>

/* Return codes of every lily_cpu_* kernel (0 = success). */
typedef enum LilyCpuStatus {
    LILY_CPU_OK = 0,
    LILY_CPU_ERR_NO_MEMORY,   /* a host allocation failed */
    LILY_CPU_ERR_DNNL,        /* oneDNN refused or failed (see lily_cpu_dnn_message) */
    LILY_CPU_ERR_UNSUPPORTED, /* no implementation for this combination (oneDNN unimplemented) */
} LilyCpuStatus;

typedef struct LilyCpuDnn LilyCpuDnn;

/* Scratch slots (each a separate growable buffer, valid until the next request of the slot). */
enum {
    LILY_CPU_SCRATCH_DNNL = 0, /* oneDNN's own scratchpad */
    LILY_CPU_SCRATCH_SRC,      /* reordered / converted input */
    LILY_CPU_SCRATCH_DST,      /* output before its reorder to the caller's layout */
    LILY_CPU_SCRATCH_WEI,      /* weights converted for this call only (stamp 0) */
    LILY_CPU_SCRATCH_WEI2,     /* second weight buffer (f16 -> f32 before a reorder) */
    LILY_CPU_SCRATCH_AUX,      /* anything else a kernel needs for one call */
    LILY_CPU_SCRATCH_COUNT
};

/* n_threads <= 0: all online processors. */
int lily_cpu_dnn_new(int n_threads, LilyCpuDnn **out);
void lily_cpu_dnn_free(LilyCpuDnn *h);
int lily_cpu_dnn_threads(const LilyCpuDnn *h);
/* What the last failing call of this handle reported (empty when none). */
const char *lily_cpu_dnn_message(const LilyCpuDnn *h);
/* Records a failure message and returns `code` (for the kernels). */
int lily_cpu_dnn_fail(LilyCpuDnn *h, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps a oneDNN status to LILY_CPU_OK or LILY_CPU_ERR_DNNL with a message naming `what`. */
int lily_cpu_dnn_check(LilyCpuDnn *h, dnnl_status_t st, const char *what);

dnnl_engine_t lily_cpu_dnn_engine(LilyCpuDnn *h);
/* Executes `prim` on the handle's stream with the handle's thread count and waits. */
int lily_cpu_dnn_exec(LilyCpuDnn *h, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args,
                      const char *what);
/* Layout policy of the forward convolutions (the benchmark compares them):
 * LILY_CPU_LAYOUT_AUTO picks per shape, BLOCKED lets oneDNN choose blocked activation layouts
 * (reordering activations around each call), PLAIN keeps NCHW / NCL throughout. */
enum { LILY_CPU_LAYOUT_AUTO = 0, LILY_CPU_LAYOUT_BLOCKED = 1, LILY_CPU_LAYOUT_PLAIN = 2 };
void lily_cpu_dnn_set_layout(LilyCpuDnn *h, int policy);
int lily_cpu_dnn_layout(const LilyCpuDnn *h);
/* Sets the calling thread's OpenMP thread count to the handle's. Needed before a primitive is
 * CREATED (oneDNN fixes its work partition then) as well as before gemm calls. */
void lily_cpu_dnn_use_threads(const LilyCpuDnn *h);
/* Makes `md` plain row-major of the given dims and type. */
int lily_cpu_md_plain(LilyCpuDnn *h, dnnl_memory_desc_t *md, int ndims, const int64_t *dims,
                      dnnl_data_type_t dt);

/* A scratch buffer of at least `bytes` (64-byte aligned), NULL when out of memory. */
void *lily_cpu_dnn_scratch(LilyCpuDnn *h, int slot, size_t bytes);
/* Releases every scratch buffer (they grow back on demand). */
void lily_cpu_dnn_trim(LilyCpuDnn *h);

/* ---- caches ---- */
enum { LILY_CPU_CACHE_PRIM = 0, LILY_CPU_CACHE_WEIGHTS = 1 };

/* The value stored under `key` in cache `which`, or NULL. */
void *lily_cpu_cache_find(LilyCpuDnn *h, int which, const void *key, size_t key_len);
/* Stores `value` (taking ownership: destroy(value) runs at eviction or handle free) under
 * `key`; `bytes` counts against the cache's memory limit. On failure destroys value. */
int lily_cpu_cache_put(LilyCpuDnn *h, int which, const void *key, size_t key_len, void *value,
                       size_t bytes, void (*destroy)(void *));

/* Weights for a primitive: *out receives the weights in layout `want` (type included). The
 * caller's weights `w` are of type wdt (a LilyKDType) in the layout user_md (whose own data
 * type is ignored); f16 goes through f32 first. With stamp != 0 the result is cached and later
 * calls return it directly; with stamp 0 it lives in a scratch slot until the next call. When
 * no conversion is needed *out is w itself. */
int lily_cpu_weights_get(LilyCpuDnn *h, uint64_t stamp, const void *w, int wdt,
                         const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *want,
                         const void **out);

/* Reorders (and converts) src in layout src_md into dst in layout dst_md, through a reorder
 * primitive cached by the two layouts. */
int lily_cpu_reorder(LilyCpuDnn *h, const dnnl_memory_desc_t *src_md, const void *src,
                     const dnnl_memory_desc_t *dst_md, void *dst);
/* The same, adding into dst (dst += src) instead of overwriting it. */
int lily_cpu_reorder_add(LilyCpuDnn *h, const dnnl_memory_desc_t *src_md, const void *src,
                         const dnnl_memory_desc_t *dst_md, void *dst);

/* Typed data conversions between f32 and bf16 / f16 arrays (parallel when large). */
void lily_cpu_f32_to_bf16(int n_threads, const float *x, uint16_t *y, int64_t n);
/* y = x rounded to bf16 precision, kept as f32 (for bf16 products emulated in f32: a product
 * of two bf16 values is exact in f32, so this gives what a bf16 x bf16 -> f32 kernel gives,
 * up to the order of the f32 accumulation). */
void lily_cpu_round_bf16(int n_threads, const float *x, float *y, int64_t n);
void lily_cpu_f16_to_f32(int n_threads, const uint16_t *x, float *y, int64_t n);

#endif /* LILY_KERNELS_CPU_ONEDNN_H */
