/* kernels/cuda/random.h - standard normal draws from the Philox generator on the GPU.
 *
 * Element (a, r, b) of y viewed as [A, R, B] takes lily_philox_normal(seed, stream,
 * ((r + row0) * A + a) * B + b) (kernels/common/philox.h), the convention of
 * kernels/cpu/random.h, so the CPU and the GPU draw the same numbers. */
#ifndef LILY_KERNELS_CUDA_RANDOM_H
#define LILY_KERNELS_CUDA_RANDOM_H

#include <stdint.h>

#include "cuda/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

int lily_cuda_randn(LilyCudaHandle *h, float *y, int64_t A, int64_t R, int64_t B, int64_t row0,
                    uint64_t seed, uint64_t stream);

#ifdef __cplusplus
}
#endif

#endif /* LILY_KERNELS_CUDA_RANDOM_H */
