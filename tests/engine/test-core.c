/* tests/engine/test-core.c - context, arena, tensors, names, half precision, Philox, npy. */
#include <math.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include "common/test-util.h"
#include "core/arena.h"
#include "core/context.h"
#include "core/npy.h"
#include "kernels/common/philox.h"

/* A context on the CPU comes up, reports its device, and frees cleanly. */
static void test_context_cpu(void)
{
    LilyContext *ctx = NULL;
    char err[256] = "";
    g_assert_cmpint(lily_context_new(NULL, &ctx, err, sizeof err), ==, LILY_OK);
    g_assert_nonnull(ctx);
    g_assert_cmpint(lily_context_device(ctx), ==, LILY_DEVICE_CPU);
    g_assert_cmpstr(lily_context_error(ctx), ==, "");
    lily_context_free(ctx);
}

/* Asking for CUDA where there is no device is a clear error, not a crash. */
static void test_context_cuda_missing(void)
{
    char why[256] = "";
    if (lily_device_probe(LILY_DEVICE_CUDA, 0, why, sizeof why) == LILY_OK) {
        g_test_skip("a CUDA device answers here; this case is for machines without one");
        return;
    }
    LilyContextParams p;
    lily_context_params_init(&p);
    p.device = LILY_DEVICE_CUDA;
    LilyContext *ctx = (LilyContext *)0x1;
    char err[512] = "";
    LilyStatus st = lily_context_new(&p, &ctx, err, sizeof err);
    g_assert_cmpint(st, ==, LILY_ERR_DEVICE);
    g_assert_null(ctx);
    g_assert_true(strstr(err, "cuda") != NULL);
    g_test_message("message: %s", err);
}

/* Device and precision names round-trip, and bad names are refused. */
static void test_names(void)
{
    LilyDeviceKind k;
    int idx = -1;
    g_assert_cmpint(lily_device_parse("cuda:3", &k, &idx), ==, LILY_OK);
    g_assert_cmpint(k, ==, LILY_DEVICE_CUDA);
    g_assert_cmpint(idx, ==, 3);
    g_assert_cmpint(lily_device_parse("cpu", &k, &idx), ==, LILY_OK);
    g_assert_cmpint(idx, ==, 0);
    g_assert_cmpint(lily_device_parse("cuda:x", &k, &idx), !=, LILY_OK);
    g_assert_cmpint(lily_device_parse("tpu", &k, &idx), !=, LILY_OK);
    LilyPrecision p;
    g_assert_cmpint(lily_precision_from_name("bf16", &p), ==, LILY_OK);
    g_assert_cmpstr(lily_precision_name(p), ==, "bf16");
    g_assert_cmpint(lily_precision_from_name("f8", &p), !=, LILY_OK);
    LilyFilterType f;
    for (int i = 0; i < LILY_FILTER_COUNT; i++) {
        g_assert_cmpint(lily_filter_from_name(lily_filter_name((LilyFilterType)i), &f), ==, LILY_OK);
        g_assert_cmpint(f, ==, i);
    }
    g_assert_cmpstr(lily_status_name(LILY_ERR_DISK_FULL), ==, "disk-full");
}

/* Arena: aligned, keeps pointers valid when it grows, reuses memory after a reset, folds its
 * blocks into one when reset to empty (so the next pass can compact), tracks the peak. */
static void test_arena(void)
{
    LilyContext *ctx = NULL;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    LilyArena *a = &ctx->arena;
    LilyArenaMark m0 = lily_arena_mark(a);
    char *p1 = lily_arena_alloc(a, 100);
    g_assert_nonnull(p1);
    g_assert_cmpuint((uintptr_t)p1 % LILY_ARENA_ALIGN, ==, 0);
    memset(p1, 0xab, 100);
    LilyArenaMark m1 = lily_arena_mark(a);
    char *big = lily_arena_alloc(a, (size_t)200 << 20); /* bigger than a block: a new block */
    g_assert_nonnull(big);
    big[0] = 1;
    big[((size_t)200 << 20) - 1] = 2;
    g_assert_cmpint((unsigned char)p1[99], ==, 0xab); /* earlier memory untouched */
    g_assert_cmpint(a->n_blocks, ==, 2);
    size_t peak = a->peak;
    g_assert_cmpuint(peak, >=, ((size_t)200 << 20) + 100);
    lily_arena_reset(a, m1);
    char *p2 = lily_arena_alloc(a, 100);
    g_assert_true(p2 == p1 + LILY_ARENA_ALIGN); /* reuse after a reset */
    size_t reserved = a->reserved;
    lily_arena_reset(a, m0); /* empty with two blocks: folded into one */
    g_assert_cmpint(a->n_blocks, ==, 0);
    char *p3 = lily_arena_alloc(a, 100);
    g_assert_nonnull(p3);
    g_assert_cmpint(a->n_blocks, ==, 1);
    g_assert_cmpuint(a->blocks[0].size, >=, reserved);
    g_assert_cmpuint(a->peak, ==, peak);
    /* collapse: [x][temp][y] -> [y] at x's place, contents kept */
    LilyArenaMark mx = lily_arena_mark(a);
    float *x = lily_arena_alloc(a, 4096);
    float *tmp = lily_arena_alloc(a, 8192);
    float *y = lily_arena_alloc(a, 4096);
    g_assert_nonnull(x);
    g_assert_nonnull(tmp);
    for (int i = 0; i < 1024; i++) y[i] = (float)i;
    float *yc = lily_arena_collapse(ctx, a, mx, y, 4096);
    g_assert_true(yc == x);
    for (int i = 0; i < 1024; i++) g_assert_cmpfloat(yc[i], ==, (float)i);
    g_assert_true(lily_arena_alloc(a, 16) == (void *)((char *)x + 4096)); /* the rest is free */
    LilyTensor t;
    g_assert_cmpint(lily_tensor_alloc(ctx, &t, LILY_DTYPE_F32, LILY_SHAPE(2, 3, 4)), ==, LILY_OK);
    g_assert_cmpuint(lily_tensor_nbytes(&t), ==, 96);
    char buf[64];
    g_assert_cmpstr(lily_shape_str(&t, buf, sizeof buf), ==, "2x3x4");
    lily_context_free(ctx);
}

/* bf16 and f16 conversions round to nearest even and keep specials. */
static void test_half(void)
{
    g_assert_cmpfloat(lily_bf16_to_f32(lily_f32_to_bf16(1.0f)), ==, 1.0f);
    g_assert_cmpfloat(lily_bf16_to_f32(lily_f32_to_bf16(-3.5f)), ==, -3.5f);
    /* 1 + 2^-8 is halfway between two bf16 values: rounds to even (1.0) */
    g_assert_cmpfloat(lily_bf16_to_f32(lily_f32_to_bf16(1.0f + 1.0f / 256)), ==, 1.0f);
    g_assert_true(isnan(lily_bf16_to_f32(lily_f32_to_bf16(NAN))));
    g_assert_cmpfloat(lily_f16_to_f32(lily_f32_to_f16(0.333251953125f)), ==, 0.333251953125f);
    g_assert_cmpfloat(lily_f16_to_f32(lily_f32_to_f16(65504.0f)), ==, 65504.0f);
    g_assert_true(isinf(lily_f16_to_f32(lily_f32_to_f16(1e6f))));
    g_assert_cmpfloat(lily_f16_to_f32(lily_f32_to_f16(5.9604644775390625e-08f)), ==,
                      5.9604644775390625e-08f); /* smallest subnormal */
    for (int i = -1000; i <= 1000; i++) {
        float f = (float)i * 0.0137f;
        g_assert_cmpfloat(fabsf(lily_f16_to_f32(lily_f32_to_f16(f)) - f), <=, fabsf(f) * 0.0005f + 1e-7f);
        g_assert_cmpfloat(fabsf(lily_bf16_to_f32(lily_f32_to_bf16(f)) - f), <=, fabsf(f) * 0.004f);
    }
}

/* Philox4x32-10 matches the Random123 known-answer vectors, and normal draws have the right
 * moments and do not depend on how a draw is cut. */
static void test_philox(void)
{
    /* Random123 kat_vectors: philox4x32 10 rounds */
    LilyPhilox4 r = lily_philox4x32(0, 0, 0, 0, 0, 0);
    g_assert_cmphex(r.v[0], ==, 0x6627e8d5u);
    g_assert_cmphex(r.v[1], ==, 0xe169c58du);
    g_assert_cmphex(r.v[2], ==, 0xbc57ac4cu);
    g_assert_cmphex(r.v[3], ==, 0x9b00dbd8u);
    r = lily_philox4x32(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
    g_assert_cmphex(r.v[0], ==, 0x408f276du);
    g_assert_cmphex(r.v[1], ==, 0x41c83b0eu);
    g_assert_cmphex(r.v[2], ==, 0xa20bc7c6u);
    g_assert_cmphex(r.v[3], ==, 0x6d5451fdu);
    r = lily_philox4x32(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
    g_assert_cmphex(r.v[0], ==, 0xd16cfe09u);
    g_assert_cmphex(r.v[1], ==, 0x94fdccebu);
    g_assert_cmphex(r.v[2], ==, 0x5001e420u);
    g_assert_cmphex(r.v[3], ==, 0x24126ea1u);

    const int n = 200000;
    double s = 0, s2 = 0, s4 = 0;
    for (int i = 0; i < n; i++) {
        double z = lily_philox_normal(42, 3, (uint64_t)i);
        s += z;
        s2 += z * z;
        s4 += z * z * z * z;
    }
    double mean = s / n, var = s2 / n - mean * mean, kurt = s4 / n;
    g_test_message("normal draws: mean %.4f var %.4f E[z^4] %.3f", mean, var, kurt);
    g_assert_cmpfloat(fabs(mean), <, 0.01);
    g_assert_cmpfloat(fabs(var - 1.0), <, 0.02);
    g_assert_cmpfloat(fabs(kurt - 3.0), <, 0.1);
    /* different streams and seeds give different numbers */
    g_assert_cmpfloat(lily_philox_normal(42, 3, 5), !=, lily_philox_normal(42, 4, 5));
    g_assert_cmpfloat(lily_philox_normal(42, 3, 5), !=, lily_philox_normal(43, 3, 5));
}

/* npy files written by Lily read back identically; bad files are refused with a message. */
static void test_npy(void)
{
    LilyContext *ctx = NULL;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    float data[24];
    for (int i = 0; i < 24; i++) data[i] = (float)i * 0.5f - 3.0f;
    char *path = g_build_filename(lt_tmpdir(), "x.npy", NULL);
    g_assert_cmpint(lily_npy_write_f32(ctx, path, data, LILY_SHAPE(2, 3, 4)), ==, LILY_OK);
    LilyNpy npy;
    g_assert_cmpint(lily_npy_read(ctx, path, &npy), ==, LILY_OK);
    g_assert_cmpint(npy.ndim, ==, 3);
    g_assert_cmpint(npy.shape[2], ==, 4);
    g_assert_cmpint(memcmp(npy.data, data, sizeof data), ==, 0);
    lily_npy_free(&npy);
    /* truncated */
    FILE *f = fopen(path, "r+b");
    g_assert_nonnull(f);
    g_assert_cmpint(ftruncate(fileno(f), 100), ==, 0);
    fclose(f);
    g_assert_cmpint(lily_npy_read(ctx, path, &npy), ==, LILY_ERR_FORMAT);
    g_assert_nonnull(strstr(lily_context_error(ctx), "truncated"));
    /* a reference file from AudioSR's run (int64 timesteps) */
    char *ts = lt_ref_path("ref-a/ddim_timesteps.npy");
    g_assert_cmpint(lily_npy_read(ctx, ts, &npy), ==, LILY_OK);
    g_assert_cmpint(npy.dtype, ==, LILY_DTYPE_I64);
    g_assert_cmpint(npy.numel, ==, 4);
    g_assert_cmpint(((int64_t *)npy.data)[3], ==, 751);
    lily_npy_free(&npy);
    g_free(ts);
    g_free(path);
    lily_context_free(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/core/context-cpu", test_context_cpu);
    g_test_add_func("/lily/core/context-cuda-missing", test_context_cuda_missing);
    g_test_add_func("/lily/core/names", test_names);
    g_test_add_func("/lily/core/arena", test_arena);
    g_test_add_func("/lily/core/half", test_half);
    g_test_add_func("/lily/core/philox", test_philox);
    g_test_add_func("/lily/core/npy", test_npy);
    return g_test_run();
}
