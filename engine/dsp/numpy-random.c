/* dsp/numpy-random.c - numpy's legacy RandomState draws that pick AudioSR's filter family.
 *
 * Reference: numpy 1.24 random/_mt19937.pyx _legacy_seeding and random/src/mt19937
 * (Matsumoto & Nishimura's MT19937 with its 2002 init_genrand and init_by_array seeding),
 * random/mtrand.pyx RandomState.choice -> randint(0, 4) -> _bounded_integers
 * random_bounded_uint64_fill(use_masked=True): for a range under 2^32 it draws 32-bit
 * outputs, masks them to the smallest covering power of two and rejects values above the
 * range. Checked against numpy for many seeds in tests/data/dsp/gen-vectors.py. */
#include "dsp/numpy-random.h"

#define MT_M 397
#define MATRIX_A 0x9908b0dfU
#define UPPER_MASK 0x80000000U
#define LOWER_MASK 0x7fffffffU

static void init_genrand(LilyNpRandom *r, uint32_t s)
{
    r->key[0] = s;
    for (int i = 1; i < LILY_MT19937_N; i++)
        r->key[i] = 1812433253U * (r->key[i - 1] ^ (r->key[i - 1] >> 30)) + (uint32_t)i;
    r->pos = LILY_MT19937_N;
}

static void init_by_array(LilyNpRandom *r, const uint32_t *init_key, int key_length)
{
    init_genrand(r, 19650218U);
    uint32_t *mt = r->key;
    int i = 1, j = 0;
    for (int k = LILY_MT19937_N > key_length ? LILY_MT19937_N : key_length; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525U)) + init_key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= LILY_MT19937_N) {
            mt[0] = mt[LILY_MT19937_N - 1];
            i = 1;
        }
        if (j >= key_length) j = 0;
    }
    for (int k = LILY_MT19937_N - 1; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941U)) - (uint32_t)i;
        i++;
        if (i >= LILY_MT19937_N) {
            mt[0] = mt[LILY_MT19937_N - 1];
            i = 1;
        }
    }
    mt[0] = 0x80000000U; /* non-zero initial state */
    r->pos = LILY_MT19937_N;
}

void lily_np_random_seed(LilyNpRandom *r, uint64_t seed)
{
    if (seed <= 0xffffffffULL) {
        init_genrand(r, (uint32_t)seed);
    } else {
        const uint32_t words[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
        init_by_array(r, words, 2);
    }
}

static void generate(LilyNpRandom *r)
{
    uint32_t *mt = r->key;
    int k;
    uint32_t y;
    for (k = 0; k < LILY_MT19937_N - MT_M; k++) {
        y = (mt[k] & UPPER_MASK) | (mt[k + 1] & LOWER_MASK);
        mt[k] = mt[k + MT_M] ^ (y >> 1) ^ (-(y & 1U) & MATRIX_A);
    }
    for (; k < LILY_MT19937_N - 1; k++) {
        y = (mt[k] & UPPER_MASK) | (mt[k + 1] & LOWER_MASK);
        mt[k] = mt[k + (MT_M - LILY_MT19937_N)] ^ (y >> 1) ^ (-(y & 1U) & MATRIX_A);
    }
    y = (mt[LILY_MT19937_N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
    mt[LILY_MT19937_N - 1] = mt[MT_M - 1] ^ (y >> 1) ^ (-(y & 1U) & MATRIX_A);
    r->pos = 0;
}

uint32_t lily_np_random_next32(LilyNpRandom *r)
{
    if (r->pos >= LILY_MT19937_N) generate(r);
    uint32_t y = r->key[r->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= y >> 18;
    return y;
}

int64_t lily_np_random_randint(LilyNpRandom *r, int64_t low, int64_t high)
{
    const uint64_t rng = (uint64_t)(high - low - 1); /* inclusive span */
    if (high - low <= 1) return low;
    uint32_t mask = (uint32_t)rng;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    uint32_t v;
    while ((v = lily_np_random_next32(r) & mask) > (uint32_t)rng) {
    }
    return low + (int64_t)v;
}

LilyFilterType lily_filter_for_seed(uint64_t seed)
{
    static const LilyFilterType order[4] = {LILY_FILTER_BUTTER, LILY_FILTER_CHEBY1,
                                            LILY_FILTER_ELLIP, LILY_FILTER_BESSEL};
    LilyNpRandom r;
    lily_np_random_seed(&r, seed);
    return order[lily_np_random_randint(&r, 0, 4)];
}
