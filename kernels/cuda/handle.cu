/* kernels/cuda/handle.cu - device probing, device memory, the per-context handle (stream,
 * cuBLAS, cuDNN, the convolution and cuFFT plan caches), copies and scratch buffers (see
 * handle.h).
 *
 * Reference behaviour: cudaMemcpyAsync / cudaMemcpy semantics of the CUDA runtime, with the
 * one addition that lily_cuda_copy accepts overlapping ranges like memmove (the context's
 * arena compacts a layer's output downwards over its dead inputs). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/handle-impl.cuh"

/* cuBLAS workspace: NVIDIA recommends 32 MiB on Hopper (4 MiB elsewhere); a fixed buffer also
 * keeps cuBLAS from allocating inside a captured CUDA graph. */
#define LILY_CUBLAS_WS_BYTES ((size_t)32 << 20)
/* Scratch grows in steps of 2 MiB and at least by half its size, so a slowly growing request
 * (longer chunks) does not reallocate every call. */
#define LILY_SCRATCH_GRAIN ((size_t)2 << 20)

static double mib(size_t b) { return (double)b / 1048576.0; }

int lily_cuda_fail_call(LilyCudaHandle *h, int status, const char *call, const char *file,
                        int line, const char *err_str, int err_code)
{
    /* A failed runtime call also sets the runtime's "last error"; clear it so the next launch
     * check does not report this failure again against an innocent kernel. Sticky errors (a
     * kernel fault) stay whatever we do: the context is then unusable and says so. */
    (void)cudaGetLastError();
    if (h)
        snprintf(h->msg, sizeof h->msg, "%s failed at %s:%d: %s (%d)", call, file, line,
                 err_str ? err_str : "unknown error", err_code);
    return status;
}

int lily_cuda_fail(LilyCudaHandle *h, int code, const char *fmt, ...)
{
    if (h) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(h->msg, sizeof h->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *lily_cuda_message(const LilyCudaHandle *h)
{
    return h ? h->msg : "";
}

int lily_cuda_handle_device(const LilyCudaHandle *h)
{
    return h->device;
}

/* ---------------------------------------------------------------------------------------- */
/* Probing                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* An empty kernel: whether the runtime finds an image of it for a device tells whether this
 * build (its -gencode list) can run there at all. */
__global__ static void lily_probe_kernel(void) {}

int lily_cuda_probe(int index, char *why, size_t why_len)
{
    char dummy[8];
    if (!why) {
        why = dummy;
        why_len = sizeof dummy;
    }
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(why, why_len, "no usable CUDA device (%s: no NVIDIA GPU with a recent enough "
                 "driver is visible to this process)", cudaGetErrorString(e));
        return LILY_CUDA_ERR_DEVICE;
    }
    if (index < 0 || index >= n) {
        snprintf(why, why_len, "CUDA device %d requested, %d present", index, n);
        return LILY_CUDA_ERR_DEVICE;
    }
    int prev = 0;
    if (cudaGetDevice(&prev) != cudaSuccess) prev = -1;
    e = cudaSetDevice(index);
    cudaFuncAttributes attr;
    if (e == cudaSuccess) e = cudaFuncGetAttributes(&attr, lily_probe_kernel);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        cudaDeviceProp prop;
        int major = 0, minor = 0;
        if (cudaGetDeviceProperties(&prop, index) == cudaSuccess) {
            major = prop.major;
            minor = prop.minor;
        }
        (void)cudaGetLastError();
        snprintf(why, why_len,
                 "CUDA device %d (compute capability %d.%d) cannot run this build's kernels: "
                 "%s; rebuild with -Dgpu_archs including %d%d",
                 index, major, minor, cudaGetErrorString(e), major, minor);
        if (prev >= 0) (void)cudaSetDevice(prev);
        return LILY_CUDA_ERR_DEVICE;
    }
    if (prev >= 0) (void)cudaSetDevice(prev);
    return LILY_CUDA_OK;
}

int lily_cuda_describe(int index, char *buf, size_t len)
{
    cudaDeviceProp prop;
    cudaError_t e = cudaGetDeviceProperties(&prop, index);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(buf, len, "cuda:%d (%s)", index, cudaGetErrorString(e));
        return LILY_CUDA_ERR_DEVICE;
    }
    snprintf(buf, len, "%s, compute %d.%d, %.1f GiB", prop.name, prop.major, prop.minor,
             (double)prop.totalGlobalMem / 1073741824.0);
    return LILY_CUDA_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Device memory                                                                             */
/* ---------------------------------------------------------------------------------------- */

int lily_cuda_malloc(int index, size_t bytes, void **ptr, char *why, size_t why_len)
{
    *ptr = NULL;
    cudaError_t e = cudaSetDevice(index);
    if (e == cudaSuccess) e = cudaMalloc(ptr, bytes ? bytes : 256);
    if (e == cudaSuccess) return LILY_CUDA_OK;
    (void)cudaGetLastError();
    *ptr = NULL;
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) (void)cudaGetLastError();
    if (why)
        snprintf(why, why_len, "cudaMalloc of %.1f MiB on cuda:%d failed: %s (%.1f MiB free of "
                 "%.1f MiB)", mib(bytes), index, cudaGetErrorString(e), mib(fr), mib(tot));
    return e == cudaErrorMemoryAllocation ? LILY_CUDA_ERR_NO_MEMORY : LILY_CUDA_ERR_DEVICE;
}

void lily_cuda_free(int index, void *ptr)
{
    if (!ptr) return;
    if (cudaSetDevice(index) != cudaSuccess || cudaFree(ptr) != cudaSuccess)
        (void)cudaGetLastError(); /* nothing to report to: freeing cannot be retried */
}

int lily_cuda_mem_info(int index, size_t *free_bytes, size_t *total_bytes)
{
    *free_bytes = *total_bytes = 0;
    cudaError_t e = cudaSetDevice(index);
    if (e == cudaSuccess) e = cudaMemGetInfo(free_bytes, total_bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return LILY_CUDA_ERR_DEVICE;
    }
    return LILY_CUDA_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* The handle                                                                                */
/* ---------------------------------------------------------------------------------------- */

static int handle_init(LilyCudaHandle *h)
{
    LILY_CUDA_CHECK(h, cudaSetDevice(h->device));
    LILY_CUDA_CHECK(h, cudaStreamCreateWithFlags(&h->stream, cudaStreamNonBlocking));
    LILY_CUBLAS_CHECK(h, cublasCreate(&h->cublas));
    LILY_CUBLAS_CHECK(h, cublasSetStream(h->cublas, h->stream));
    /* f32 products stay f32 (no TF32) so CUDA agrees with the CPU backend; bf16/f16 weights
     * reach the tensor cores through cublasGemmEx's data types, not through this mode. */
    LILY_CUBLAS_CHECK(h, cublasSetMathMode(h->cublas, CUBLAS_DEFAULT_MATH));
    LILY_CUDA_CHECK(h, cudaMalloc(&h->cublas_ws, LILY_CUBLAS_WS_BYTES));
    h->cublas_ws_bytes = LILY_CUBLAS_WS_BYTES;
    LILY_CUBLAS_CHECK(h, cublasSetWorkspace(h->cublas, h->cublas_ws, h->cublas_ws_bytes));
    LILY_CUDNN_CHECK(h, cudnnCreate(&h->cudnn));
    LILY_CUDNN_CHECK(h, cudnnSetStream(h->cudnn, h->stream));
    return LILY_CUDA_OK;
}

void lily_cuda_handle_free(LilyCudaHandle *h)
{
    if (!h) return;
    if (cudaSetDevice(h->device) != cudaSuccess) (void)cudaGetLastError();
    if (h->stream && cudaStreamSynchronize(h->stream) != cudaSuccess) (void)cudaGetLastError();
    for (int i = 0; i < LILY_CUDA_SCRATCH_COUNT; i++)
        if (h->scratch[i] && cudaFree(h->scratch[i]) != cudaSuccess) (void)cudaGetLastError();
    lily_cuda_conv_cache_free(h->conv);
    lily_cuda_fft_cache_free(h->fft);
    if (h->cudnn) (void)cudnnDestroy(h->cudnn);
    if (h->cublas) (void)cublasDestroy(h->cublas);
    if (h->cublas_ws && cudaFree(h->cublas_ws) != cudaSuccess) (void)cudaGetLastError();
    if (h->stream && cudaStreamDestroy(h->stream) != cudaSuccess) (void)cudaGetLastError();
    free(h);
}

int lily_cuda_handle_new(int index, LilyCudaHandle **out, char *why, size_t why_len)
{
    *out = NULL;
    int rc = lily_cuda_probe(index, why, why_len);
    if (rc != LILY_CUDA_OK) return rc;
    LilyCudaHandle *h = (LilyCudaHandle *)calloc(1, sizeof *h);
    if (!h) {
        if (why) snprintf(why, why_len, "out of host memory creating the CUDA handle");
        return LILY_CUDA_ERR_NO_MEMORY;
    }
    h->device = index;
    rc = handle_init(h);
    if (rc != LILY_CUDA_OK) {
        if (why) snprintf(why, why_len, "%s", h->msg);
        lily_cuda_handle_free(h);
        return rc;
    }
    *out = h;
    return LILY_CUDA_OK;
}

int lily_cuda_use(LilyCudaHandle *h)
{
    LILY_CUDA_CHECK(h, cudaSetDevice(h->device));
    return LILY_CUDA_OK;
}

void lily_cuda_set_deterministic(LilyCudaHandle *h, bool on)
{
    h->deterministic = on;
}

bool lily_cuda_deterministic(const LilyCudaHandle *h)
{
    return h->deterministic;
}

/* ---------------------------------------------------------------------------------------- */
/* Copies                                                                                    */
/* ---------------------------------------------------------------------------------------- */

int lily_cuda_upload(LilyCudaHandle *h, void *dst_dev, const void *src_host, size_t bytes)
{
    if (!bytes) return LILY_CUDA_OK;
    LILY_CUDA_CHECK(h, cudaMemcpyAsync(dst_dev, src_host, bytes, cudaMemcpyHostToDevice, h->stream));
    LILY_CUDA_CHECK(h, cudaStreamSynchronize(h->stream));
    return LILY_CUDA_OK;
}

int lily_cuda_download(LilyCudaHandle *h, void *dst_host, const void *src_dev, size_t bytes)
{
    if (!bytes) return LILY_CUDA_OK;
    LILY_CUDA_CHECK(h, cudaMemcpyAsync(dst_host, src_dev, bytes, cudaMemcpyDeviceToHost, h->stream));
    LILY_CUDA_CHECK(h, cudaStreamSynchronize(h->stream));
    return LILY_CUDA_OK;
}

/* Overlapping ranges: cudaMemcpy is undefined there. When the distance d between the ranges
 * is large compared with the length, the copy runs in d-sized pieces in the safe direction
 * (each piece's source is not yet overwritten when it is read, by stream order); otherwise it
 * goes through a scratch buffer. */
int lily_cuda_copy(LilyCudaHandle *h, void *dst_dev, const void *src_dev, size_t bytes)
{
    if (!bytes || dst_dev == src_dev) return LILY_CUDA_OK;
    char *d = (char *)dst_dev;
    const char *s = (const char *)src_dev;
    bool overlap = d < s + bytes && s < d + bytes;
    if (!overlap) {
        LILY_CUDA_CHECK(h, cudaMemcpyAsync(d, s, bytes, cudaMemcpyDeviceToDevice, h->stream));
        return LILY_CUDA_OK;
    }
    size_t dist = d < s ? (size_t)(s - d) : (size_t)(d - s);
    if (bytes / dist <= 16) {
        if (d < s) {
            for (size_t off = 0; off < bytes; off += dist) {
                size_t n = bytes - off < dist ? bytes - off : dist;
                LILY_CUDA_CHECK(h, cudaMemcpyAsync(d + off, s + off, n, cudaMemcpyDeviceToDevice,
                                                   h->stream));
            }
        } else {
            for (size_t end = bytes; end > 0;) {
                size_t n = end < dist ? end : dist;
                end -= n;
                LILY_CUDA_CHECK(h, cudaMemcpyAsync(d + end, s + end, n, cudaMemcpyDeviceToDevice,
                                                   h->stream));
            }
        }
        return LILY_CUDA_OK;
    }
    void *tmp = NULL;
    LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_COPY, bytes, &tmp));
    LILY_CUDA_CHECK(h, cudaMemcpyAsync(tmp, s, bytes, cudaMemcpyDeviceToDevice, h->stream));
    LILY_CUDA_CHECK(h, cudaMemcpyAsync(d, tmp, bytes, cudaMemcpyDeviceToDevice, h->stream));
    return LILY_CUDA_OK;
}

int lily_cuda_synchronize(LilyCudaHandle *h)
{
    LILY_CUDA_CHECK(h, cudaStreamSynchronize(h->stream));
    return LILY_CUDA_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Scratch                                                                                   */
/* ---------------------------------------------------------------------------------------- */

int lily_cuda_scratch(LilyCudaHandle *h, int slot, size_t bytes, void **out)
{
    *out = NULL;
    if (slot < 0 || slot >= LILY_CUDA_SCRATCH_COUNT)
        return lily_cuda_fail(h, LILY_CUDA_ERR_UNSUPPORTED, "scratch slot %d does not exist", slot);
    if (bytes == 0) bytes = 256;
    if (h->scratch[slot] && h->scratch_size[slot] >= bytes) {
        *out = h->scratch[slot];
        return LILY_CUDA_OK;
    }
    /* kernels queued earlier may still read the old buffer */
    LILY_CUDA_CHECK(h, cudaStreamSynchronize(h->stream));
    if (h->scratch[slot]) LILY_CUDA_CHECK(h, cudaFree(h->scratch[slot]));
    h->scratch[slot] = NULL;
    size_t old = h->scratch_size[slot];
    h->scratch_size[slot] = 0;
    size_t want = bytes > old + old / 2 ? bytes : old + old / 2;
    want = (want + LILY_SCRATCH_GRAIN - 1) / LILY_SCRATCH_GRAIN * LILY_SCRATCH_GRAIN;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, want);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        want = bytes; /* the growth margin is a luxury */
        e = cudaMalloc(&p, want);
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        size_t fr = 0, tot = 0;
        if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) (void)cudaGetLastError();
        return lily_cuda_fail(h, e == cudaErrorMemoryAllocation ? LILY_CUDA_ERR_NO_MEMORY
                                                               : LILY_CUDA_ERR_DEVICE,
                              "cudaMalloc of %.1f MiB of scratch on cuda:%d failed: %s (%.1f MiB "
                              "free of %.1f MiB, scratch held %.1f MiB)",
                              mib(bytes), h->device, cudaGetErrorString(e), mib(fr), mib(tot),
                              mib(lily_cuda_scratch_bytes(h)));
    }
    h->scratch[slot] = p;
    h->scratch_size[slot] = want;
    *out = p;
    return LILY_CUDA_OK;
}

size_t lily_cuda_scratch_bytes(const LilyCudaHandle *h)
{
    size_t n = h->cublas_ws_bytes;
    for (int i = 0; i < LILY_CUDA_SCRATCH_COUNT; i++) n += h->scratch_size[i];
    return n;
}

int lily_cuda_trim(LilyCudaHandle *h)
{
    LILY_CUDA_CHECK(h, cudaStreamSynchronize(h->stream));
    for (int i = 0; i < LILY_CUDA_SCRATCH_COUNT; i++) {
        if (h->scratch[i]) LILY_CUDA_CHECK(h, cudaFree(h->scratch[i]));
        h->scratch[i] = NULL;
        h->scratch_size[i] = 0;
    }
    return LILY_CUDA_OK;
}
