/* kernels/cuda/random.cu - Philox normal draws into a tensor (see random.h).
 *
 * One thread per element, each running the whole Philox block its element belongs to: four
 * times the arithmetic of sharing a block between four threads, but the draw is a negligible
 * part of a sampler step and this keeps the index convention in one function, the one the
 * CPU calls. The Box-Muller transform runs in double, as on the CPU. */
#include "common/philox.h"
#include "cuda/handle-impl.cuh"
#include "cuda/random.h"

__global__ static void randn_kernel(float *y, int64_t A, int64_t R, int64_t B, int64_t row0,
                                    uint64_t seed, uint64_t stream)
{
    LILY_CUDA_LOOP(i, A * R * B)
    {
        int64_t b = i % B, ar = i / B;
        int64_t a = ar / R, r = ar % R;
        uint64_t idx = (uint64_t)(((r + row0) * A + a) * B + b);
        y[i] = lily_philox_normal(seed, stream, idx);
    }
}

int lily_cuda_randn(LilyCudaHandle *h, float *y, int64_t A, int64_t R, int64_t B, int64_t row0,
                    uint64_t seed, uint64_t stream)
{
    int64_t n = A * R * B;
    if (n == 0) return LILY_CUDA_OK;
    randn_kernel<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(y, A, R, B, row0, seed,
                                                                         stream);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}
