/* kernels/common/philox.h - Philox4x32-10 counter-based random numbers, host and device.
 *
 * Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC'11): ten rounds of a
 * multiply-xor bijection keyed by a 64-bit key. The output for a counter does not depend on
 * any other draw, so the CPU and the GPU produce the same numbers for the same (key, counter)
 * and a chunk of a stream draws the same noise whatever the chunk boundaries were.
 *
 * Lily's convention for normal draws: element i of a draw of stream `stream` under key `seed`
 * uses counter (i / 4, stream) and takes lane i % 4 of the Box-Muller transform applied to
 * lanes (0, 1) and (2, 3). lily_philox_normal() gives element i directly. */
#ifndef LILY_KERNELS_COMMON_PHILOX_H
#define LILY_KERNELS_COMMON_PHILOX_H

#include <math.h>
#include <stdint.h>

#include "hd.h"

#define LILY_PHILOX_M0 0xD2511F53u
#define LILY_PHILOX_M1 0xCD9E8D57u
#define LILY_PHILOX_W0 0x9E3779B9u
#define LILY_PHILOX_W1 0xBB67AE85u

typedef struct LilyPhilox4 {
    uint32_t v[4];
} LilyPhilox4;

LILY_HD uint32_t lily_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1). */
LILY_HD LilyPhilox4 lily_philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                     uint32_t k0, uint32_t k1)
{
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = lily_mulhilo32(LILY_PHILOX_M0, c0, &hi0);
        uint32_t lo1 = lily_mulhilo32(LILY_PHILOX_M1, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0;
        uint32_t n1 = lo1;
        uint32_t n2 = hi0 ^ c3 ^ k1;
        uint32_t n3 = lo0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += LILY_PHILOX_W0;
        k1 += LILY_PHILOX_W1;
    }
    LilyPhilox4 out;
    out.v[0] = c0;
    out.v[1] = c1;
    out.v[2] = c2;
    out.v[3] = c3;
    return out;
}

/* A uniform in (0, 1]: never 0, so log() is safe. 24-bit resolution. */
LILY_HD float lily_u32_to_uniform(uint32_t x)
{
    return ((float)(x >> 8) + 1.0f) * (1.0f / 16777216.0f);
}

/* A uniform in [0, 1) with 53-bit resolution from two words (host-side draws). */
LILY_HD double lily_u32x2_to_uniform_f64(uint32_t a, uint32_t b)
{
    uint64_t v = ((uint64_t)(a >> 5) << 26) | (uint64_t)(b >> 6);
    return (double)v * (1.0 / 9007199254740992.0);
}

/* Element i of the standard normal draw (seed, stream). Box-Muller in double precision, then
 * rounded to float, so host and device agree to the last bit as long as both follow IEEE
 * double arithmetic for log, sqrt, cos and sin (CUDA's are correctly rounded to within 1-2
 * ulp of double, which disappears in the final rounding except in rare ties). */
LILY_HD float lily_philox_normal(uint64_t seed, uint64_t stream, uint64_t i)
{
    uint64_t block = i >> 2;
    LilyPhilox4 r = lily_philox4x32((uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                                    (uint32_t)(stream >> 32), (uint32_t)seed,
                                    (uint32_t)(seed >> 32));
    int lane = (int)(i & 3);
    uint32_t a = (lane < 2) ? r.v[0] : r.v[2];
    uint32_t b = (lane < 2) ? r.v[1] : r.v[3];
    double u1 = ((double)a + 1.0) * (1.0 / 4294967296.0); /* (0, 1] */
    double u2 = (double)b * (1.0 / 4294967296.0);         /* [0, 1) */
    double rad = sqrt(-2.0 * log(u1));
    double th = 6.283185307179586476925286766559 * u2;
    return (float)((lane & 1) ? rad * sin(th) : rad * cos(th));
}

/* Element i of the uniform [0, 1) draw (seed, stream), 24-bit resolution. */
LILY_HD float lily_philox_uniform(uint64_t seed, uint64_t stream, uint64_t i)
{
    uint64_t block = i >> 2;
    LilyPhilox4 r = lily_philox4x32((uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                                    (uint32_t)(stream >> 32), (uint32_t)seed,
                                    (uint32_t)(seed >> 32));
    return (float)(r.v[i & 3] >> 8) * (1.0f / 16777216.0f);
}

#endif /* LILY_KERNELS_COMMON_PHILOX_H */
