/* kernels/cuda/handle-impl.cuh - what the .cu files share: the handle's layout, launch sizes
 * and deterministic block reductions. Not for C code (handle.h is the C interface).
 *
 * Reductions are deterministic: each thread accumulates a fixed slice in a fixed order, then a
 * fixed shuffle tree and a fixed shared-memory tree combine them, so the same input gives the
 * same bits on every run (no atomics on floating-point values anywhere in these kernels). */
#ifndef LILY_KERNELS_CUDA_HANDLE_IMPL_CUH
#define LILY_KERNELS_CUDA_HANDLE_IMPL_CUH

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "common/half.h"
#include "cuda/cuda-check.h"
#include "cuda/handle.h"

#define LILY_CUDA_MSG_LEN 1024

struct LilyCudaConvCache; /* conv.cu */
struct LilyCudaFftCache;  /* stft.cu */

struct LilyCudaHandle {
    int device;
    cudaStream_t stream;
    cublasHandle_t cublas;
    cudnnHandle_t cudnn;
    void *cublas_ws; /* fixed cuBLAS workspace (cublasSetWorkspace), also graph-capture safe */
    size_t cublas_ws_bytes;
    void *scratch[LILY_CUDA_SCRATCH_COUNT];
    size_t scratch_size[LILY_CUDA_SCRATCH_COUNT];
    struct LilyCudaConvCache *conv;
    struct LilyCudaFftCache *fft; /* cuFFT plans by (size, batch, direction) */
    bool deterministic;
    char msg[LILY_CUDA_MSG_LEN];
};

/* Frees the convolution plan cache (conv.cu). */
void lily_cuda_conv_cache_free(struct LilyCudaConvCache *c);
/* Destroys the cuFFT plans (stft.cu); the device must be current. */
void lily_cuda_fft_cache_free(struct LilyCudaFftCache *c);

/* Threads per block of the elementwise kernels, and a grid for n elements with grid-stride
 * loops (capped: beyond a few waves more blocks only cost scheduling). */
#define LILY_CUDA_THREADS 256
static inline unsigned lily_cuda_grid(int64_t n)
{
    int64_t b = (n + LILY_CUDA_THREADS - 1) / LILY_CUDA_THREADS;
    if (b < 1) b = 1;
    if (b > 65536) b = 65536;
    return (unsigned)b;
}

/* Grid-stride loop over [0, n) with 64-bit indices. */
#define LILY_CUDA_LOOP(i, n)                                                                   \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                  \
         i += (int64_t)blockDim.x * gridDim.x)

/* Sum over a warp (every lane gets the total). */
template <typename T>
__device__ __forceinline__ T lily_warp_sum(T v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <typename T>
__device__ __forceinline__ T lily_warp_max(T v)
{
    for (int o = 16; o > 0; o >>= 1) {
        T w = __shfl_xor_sync(0xffffffffu, v, o);
        v = w > v ? w : v;
    }
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
 * `sh` is shared memory of 32 elements. Synchronises the block. */
template <typename T>
__device__ __forceinline__ T lily_block_sum(T v, T *sh)
{
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = lily_warp_sum(v);
    __syncthreads(); /* sh may still be read by a previous reduction */
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    T t = lane < nw ? sh[lane] : (T)0;
    return lily_warp_sum(t);
}

/* Max over the block; `lowest` is the identity. */
template <typename T>
__device__ __forceinline__ T lily_block_max(T v, T *sh, T lowest)
{
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = lily_warp_max(v);
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    T t = lane < nw ? sh[lane] : lowest;
    return lily_warp_max(t);
}

/* Element i of an array of LilyKDType dt, as float (the conversions of common/half.h). */
__device__ __forceinline__ float lily_load_kdt(const void *p, int dt, int64_t i)
{
    if (dt == LILY_KDT_F32) return ((const float *)p)[i];
    uint16_t v = ((const uint16_t *)p)[i];
    return dt == LILY_KDT_BF16 ? lily_bf16_bits_to_f32(v) : lily_f16_bits_to_f32(v);
}

__device__ __forceinline__ void lily_store_kdt(void *p, int dt, int64_t i, float f)
{
    if (dt == LILY_KDT_F32)
        ((float *)p)[i] = f;
    else
        ((uint16_t *)p)[i] = dt == LILY_KDT_BF16 ? lily_f32_to_bf16_rne(f) : lily_f32_to_f16_rne(f);
}

static inline size_t lily_kdt_size(int dt)
{
    return dt == LILY_KDT_F32 ? 4 : 2;
}

#endif /* LILY_KERNELS_CUDA_HANDLE_IMPL_CUH */
