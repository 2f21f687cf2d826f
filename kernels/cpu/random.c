/* kernels/cpu/random.c - Philox normal draws into a tensor (see random.h). */
#include "common/philox.h"
#include "cpu/random.h"

void lily_cpu_randn(int n_threads, float *y, int64_t A, int64_t R, int64_t B, int64_t row0,
                    uint64_t seed, uint64_t stream)
{
#pragma omp parallel for num_threads(n_threads) schedule(static) if (A * R * B > 16384)
    for (int64_t ar = 0; ar < A * R; ar++) {
        int64_t a = ar / R, r = ar % R;
        uint64_t base = (uint64_t)(((r + row0) * A + a) * B);
        float *yr = y + ar * B;
        for (int64_t b = 0; b < B; b++) yr[b] = lily_philox_normal(seed, stream, base + (uint64_t)b);
    }
}
