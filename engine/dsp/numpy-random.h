/* dsp/numpy-random.h - numpy's legacy RandomState (MT19937) as far as AudioSR uses it:
 * np.random.seed(seed) followed by np.random.choice of the four filter families
 * (spec.md 3, "the filter type is a pure function of the seed"). Engine-internal. */
#ifndef LILY_DSP_NUMPY_RANDOM_H
#define LILY_DSP_NUMPY_RANDOM_H

#include <stdint.h>

#include <lily/lily.h>

#define LILY_MT19937_N 624

typedef struct LilyNpRandom {
    uint32_t key[LILY_MT19937_N];
    int pos;
} LilyNpRandom;

/* RandomState.seed(seed). Seeds below 2^32 are what numpy accepts as an integer
 * (init_genrand); numpy refuses larger ones, so those are taken as
 * np.random.seed([low 32 bits, high 32 bits]) (init_by_array), which numpy does accept. */
void lily_np_random_seed(LilyNpRandom *r, uint64_t seed);
/* The next raw 32-bit output (genrand_int32). */
uint32_t lily_np_random_next32(LilyNpRandom *r);
/* RandomState.randint(low, high) for a range below 2^32: legacy masked rejection sampling. */
int64_t lily_np_random_randint(LilyNpRandom *r, int64_t low, int64_t high);

/* np.random.seed(seed); np.random.choice(["butter", "cheby1", "ellip", "bessel"]). */
LilyFilterType lily_filter_for_seed(uint64_t seed);

#endif /* LILY_DSP_NUMPY_RANDOM_H */
