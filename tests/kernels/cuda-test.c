/* tests/kernels/cuda-test.c - see cuda-test.h. */
#include <string.h>

#include <glib.h>

#include "tests/kernels/cuda-test.h"

bool lct_open_gpu(LilyContext **gpu, char *why, size_t size)
{
    char err[512] = "";
    *gpu = NULL;
    const char *sc = g_getenv("LILY_CUDA_TEST_SELFCHECK");
    if (sc && *sc && strcmp(sc, "0") != 0) {
        g_assert_cmpint(lily_context_new(NULL, gpu, err, sizeof err), ==, LILY_OK);
        g_test_message("LILY_CUDA_TEST_SELFCHECK: comparing the CPU with itself; no CUDA code runs");
        return true;
    }
    if (lily_device_probe(LILY_DEVICE_CUDA, 0, why, size) != LILY_OK) {
        g_test_message("CUDA tests skipped: %s", why);
        return false;
    }
    LilyContextParams p;
    lily_context_params_init(&p);
    p.device = LILY_DEVICE_CUDA;
    LilyStatus st = lily_context_new(&p, gpu, err, sizeof err);
    if (st != LILY_OK) g_printerr("a CUDA device answers but its context fails: %s\n", err);
    g_assert_cmpint(st, ==, LILY_OK); /* a device that answers must work: not a skip */
    return true;
}
