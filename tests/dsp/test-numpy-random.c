/* tests/dsp/test-numpy-random.c - numpy's legacy RandomState as AudioSR uses it to pick the
 * condition's filter family (spec.md 3), against numpy 1.24 (tests/data/dsp/gen-vectors.py). */
#include "common/test-util.h"
#include "dsp-data.h"
#include "dsp/numpy-random.h"

/* spec.md's known answers: seed 42 -> ellip, 7 -> bessel, 0 -> butter, 1 -> cheby1. */
static void test_known_seeds(void)
{
    g_assert_cmpint(lily_filter_for_seed(42), ==, LILY_FILTER_ELLIP);
    g_assert_cmpint(lily_filter_for_seed(7), ==, LILY_FILTER_BESSEL);
    g_assert_cmpint(lily_filter_for_seed(0), ==, LILY_FILTER_BUTTER);
    g_assert_cmpint(lily_filter_for_seed(1), ==, LILY_FILTER_CHEBY1);
}

/* The family for seeds 0-199 and edge seeds up to 2^64 - 1 equals numpy's choice (seeds of
 * 2^32 and more as numpy's two-word array seed). */
static void test_vs_numpy(void)
{
    DdArray s;
    dd_load("np-random-seeds.npy", &s);
    int agree = 0, counts[LILY_FILTER_COUNT] = {0};
    for (int64_t i = 0; i < s.shape[0]; i++) {
        const uint64_t seed = (uint64_t)s.data[3 * i] | ((uint64_t)s.data[3 * i + 1] << 32);
        const int want = (int)s.data[3 * i + 2], got = (int)lily_filter_for_seed(seed);
        if (got != want)
            g_printerr("seed %llu: got %s, numpy %s\n", (unsigned long long)seed,
                       lily_filter_name((LilyFilterType)got), lily_filter_name((LilyFilterType)want));
        agree += got == want;
        counts[want]++;
    }
    g_test_message("%d of %lld seeds agree with numpy (butter %d, cheby1 %d, ellip %d, bessel %d)",
            agree, (long long)s.shape[0], counts[0], counts[1], counts[2], counts[3]);
    g_assert_cmpint(agree, ==, (int)s.shape[0]);
    dd_free(&s);
}

/* The raw 32-bit stream equals numpy's for an integer seed (42) and an array seed [7, 1]. */
static void test_raw_stream(void)
{
    DdArray raw;
    dd_load("np-random-raw.npy", &raw);
    const uint64_t seeds[2] = {42, ((uint64_t)1 << 32) | 7};
    for (int r = 0; r < 2; r++) {
        LilyNpRandom rng;
        lily_np_random_seed(&rng, seeds[r]);
        for (int i = 0; i < 8; i++)
            g_assert_cmpuint(lily_np_random_next32(&rng), ==, (uint32_t)raw.data[r * 8 + i]);
    }
    dd_free(&raw);
}

/* randint(0, 10) draws 4-bit masked values and rejects 10-15, as numpy's legacy path does:
 * 20 draws for seed 42 equal numpy's. */
static void test_randint_rejection(void)
{
    DdArray want;
    dd_load("np-random-randint.npy", &want);
    LilyNpRandom rng;
    lily_np_random_seed(&rng, 42);
    for (size_t i = 0; i < want.numel; i++)
        g_assert_cmpint(lily_np_random_randint(&rng, 0, 10), ==, (int64_t)want.data[i]);
    dd_free(&want);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/dsp/numpy-random/known-seeds", test_known_seeds);
    g_test_add_func("/lily/dsp/numpy-random/filter-vs-numpy", test_vs_numpy);
    g_test_add_func("/lily/dsp/numpy-random/raw-stream", test_raw_stream);
    g_test_add_func("/lily/dsp/numpy-random/randint-rejection", test_randint_rejection);
    return g_test_run();
}
