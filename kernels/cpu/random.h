/* kernels/cpu/random.h - standard normal draws from the Philox generator on the CPU.
 *
 * Element (a, r, b) of y viewed as [A, R, B] takes lily_philox_normal(seed, stream,
 * ((r + row0) * A + a) * B + b) (kernels/common/philox.h), so rows are keyed by their absolute
 * position in a stream and a chunk's noise does not depend on where the stream was cut. */
#ifndef LILY_KERNELS_CPU_RANDOM_H
#define LILY_KERNELS_CPU_RANDOM_H

#include <stdint.h>

void lily_cpu_randn(int n_threads, float *y, int64_t A, int64_t R, int64_t B, int64_t row0,
                    uint64_t seed, uint64_t stream);

#endif /* LILY_KERNELS_CPU_RANDOM_H */
