/* kernels/cuda/handle.h - the CUDA kernels' handle and device memory, as a plain C interface.
 *
 * One handle per CUDA backend (so per context): the device ordinal, one non-blocking stream,
 * the cuBLAS and cuDNN handles bound to that stream, a fixed cuBLAS workspace, growable
 * scratch buffers, the caches of convolution plans and cuFFT plans (their work areas are
 * scratch too) and the message of the last failure.
 * Nothing here is global; the CUDA runtime's own per-process state is the only shared thing.
 *
 * Every kernel call is asynchronous on the handle's stream. Scratch buffers grow (after a
 * stream synchronisation, so no queued kernel still reads the old buffer) and never shrink
 * until lily_cuda_trim, so after the first pass over a model no call allocates device memory.
 *
 * Device memory (lily_cuda_malloc/free/mem_info) needs only the device ordinal, so memory can
 * be released after the handle that allocated it is gone (a model outliving its loading
 * context). */
#ifndef LILY_KERNELS_CUDA_HANDLE_H
#define LILY_KERNELS_CUDA_HANDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cuda/cuda-check.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- devices and memory (no handle needed) ---- */

/* LILY_CUDA_OK when device `index` exists and this build has kernels for it; otherwise why
 * (no driver, no device, index out of range, compute capability not built) goes to `why`. */
int lily_cuda_probe(int index, char *why, size_t why_len);
/* "NVIDIA H100 80GB HBM3, compute 9.0, 79.1 GiB" into buf. */
int lily_cuda_describe(int index, char *buf, size_t len);
/* cudaMalloc on device `index`; on failure *ptr is NULL, the status is NO_MEMORY (or DEVICE)
 * and `why` holds the figure asked for and the figure free. 256-byte aligned. */
int lily_cuda_malloc(int index, size_t bytes, void **ptr, char *why, size_t why_len);
/* cudaFree on device `index` (waits for work using the memory to finish, as cudaFree does). */
void lily_cuda_free(int index, void *ptr);
int lily_cuda_mem_info(int index, size_t *free_bytes, size_t *total_bytes);

/* ---- the handle ---- */

int lily_cuda_handle_new(int index, LilyCudaHandle **out, char *why, size_t why_len);
void lily_cuda_handle_free(LilyCudaHandle *h);
int lily_cuda_handle_device(const LilyCudaHandle *h);
/* What the last failing call of this handle reported (empty when none). */
const char *lily_cuda_message(const LilyCudaHandle *h);
/* Records a failure message and returns `code`. */
int lily_cuda_fail(LilyCudaHandle *h, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Makes the handle's device current on the calling thread (a context may move between
 * threads; CUDA's current device is per thread). Every entry point of the backend calls it. */
int lily_cuda_use(LilyCudaHandle *h);
/* Selects deterministic algorithms only (cuDNN backward filter/data choices); for tests. */
void lily_cuda_set_deterministic(LilyCudaHandle *h, bool on);
bool lily_cuda_deterministic(const LilyCudaHandle *h);

/* ---- copies on the handle's stream ---- */

/* Host -> device. Returns once the data is on the device: a model's weights are uploaded
 * through one context and read by others on other streams, and a pinned source could
 * otherwise be changed by the caller before the copy ran. */
int lily_cuda_upload(LilyCudaHandle *h, void *dst_dev, const void *src_host, size_t bytes);
/* Device -> host; returns once the host has the data. */
int lily_cuda_download(LilyCudaHandle *h, void *dst_host, const void *src_dev, size_t bytes);
/* Device -> device, asynchronous; the ranges may overlap (memmove semantics). */
int lily_cuda_copy(LilyCudaHandle *h, void *dst_dev, const void *src_dev, size_t bytes);
/* Waits for everything queued on the handle's stream; reports faults of earlier kernels. */
int lily_cuda_synchronize(LilyCudaHandle *h);

/* ---- scratch ---- */

/* Scratch slots: separate growable device buffers, each valid until the next request of the
 * same slot. A kernel may use several slots at once but never one slot twice. */
enum {
    LILY_CUDA_SCRATCH_WS = 0,  /* cuDNN workspace, cuFFT work area */
    LILY_CUDA_SCRATCH_SRC,     /* an input converted to 16-bit or padded; STFT frames/bins */
    LILY_CUDA_SCRATCH_DST,     /* an output before conversion or cropping; inverse frames */
    LILY_CUDA_SCRATCH_AUX,     /* attention probabilities, statistics */
    LILY_CUDA_SCRATCH_AUX2,    /* attention probability gradients */
    LILY_CUDA_SCRATCH_RED,     /* reduction partials */
    LILY_CUDA_SCRATCH_COPY,    /* lily_cuda_copy's staging for overlapping ranges */
    LILY_CUDA_SCRATCH_COUNT
};

/* *out receives a device buffer of at least `bytes`; NO_MEMORY with the figures otherwise. */
int lily_cuda_scratch(LilyCudaHandle *h, int slot, size_t bytes, void **out);
/* Bytes currently held by the scratch slots (for benchmarks and memory reports). */
size_t lily_cuda_scratch_bytes(const LilyCudaHandle *h);
/* Releases every scratch buffer (they grow back on demand). */
int lily_cuda_trim(LilyCudaHandle *h);

#ifdef __cplusplus
}
#endif

#endif /* LILY_KERNELS_CUDA_HANDLE_H */
