/* tests/train/test-lsd.c - the log-spectral distance (engine/train/lsd.c) and lily-eval.
 *
 * References derived from the definition, not from the code: identical signals are at
 * distance 0; an estimate that is the reference scaled by a has, in every bin, a log power
 * ratio of -2 log10(a), so LSD = 2 |log10 a| exactly (white noise keeps every bin's power far
 * above the 1e-10 floor); over a band the same holds. lily-eval (when built, given as
 * --lily-eval=PATH) must print that value for two float WAV files. Tolerance 1e-6 (the floor's
 * effect), 1e-4 through lily-eval (decoding to float and printing 6 decimals). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tests/train/train-test.h"
#include "train/lsd.h"

static const char *eval_exe;

#define N 48000

/* A mono 48 kHz IEEE-float WAV file. */
static void write_wav(const char *path, const float *x, uint32_t n)
{
    FILE *f = fopen(path, "wb");
    g_assert_nonnull(f);
    uint32_t data = n * 4, riff = 36 + data, fmt_len = 16, rate = 48000, byte_rate = 48000 * 4;
    uint16_t fmt = 3, ch = 1, align = 4, bits = 32;
    fwrite("RIFF", 1, 4, f);
    fwrite(&riff, 4, 1, f);
    fwrite("WAVEfmt ", 1, 8, f);
    fwrite(&fmt_len, 4, 1, f);
    fwrite(&fmt, 2, 1, f);
    fwrite(&ch, 2, 1, f);
    fwrite(&rate, 4, 1, f);
    fwrite(&byte_rate, 4, 1, f);
    fwrite(&align, 2, 1, f);
    fwrite(&bits, 2, 1, f);
    fwrite("data", 1, 4, f);
    fwrite(&data, 4, 1, f);
    fwrite(x, 4, n, f);
    g_assert_cmpint(fclose(f), ==, 0);
}

/* LSD of a signal against itself is exactly 0. */
static void test_identical_is_zero(void)
{
    LilyContext *ctx = tt_context();
    float *x = g_new(float, N);
    lt_fill_uniform(x, N, 3, -0.5f, 0.5f);
    double d = -1;
    tt_ok(ctx, lily_lsd(ctx, x, x, N, &d));
    g_assert_cmpfloat(d, ==, 0.0);
    g_free(x);
    lily_context_free(ctx);
}

/* LSD of a*x against x is 2|log10 a| (full band and above 4 kHz). */
static void test_scaled_is_two_log_a(void)
{
    LilyContext *ctx = tt_context();
    float *x = g_new(float, N), *y = g_new(float, N);
    lt_fill_uniform(x, N, 4, -0.5f, 0.5f);
    const double a[3] = {0.5, 2.0, 0.1};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < N; i++) y[i] = (float)(a[k] * x[i]);
        double d, dh, want = 2.0 * fabs(log10(a[k]));
        tt_ok(ctx, lily_lsd(ctx, y, x, N, &d));
        tt_ok(ctx, lily_lsd_band(ctx, y, x, N, 171, 1025, &dh));
        g_test_message("a = %g: LSD %.9f, above 4 kHz %.9f, expected %.9f", a[k], d, dh, want);
        g_assert_cmpfloat(fabs(d - want), <=, 1e-6);
        g_assert_cmpfloat(fabs(dh - want), <=, 1e-6);
    }
    g_free(x);
    g_free(y);
    lily_context_free(ctx);
}

/* lily-eval prints 2 log10 2 = 0.60206 for a file at half the reference's amplitude. */
static void test_lily_eval(void)
{
    float *x = g_new(float, N), *y = g_new(float, N);
    lt_fill_uniform(x, N, 5, -0.5f, 0.5f);
    for (int i = 0; i < N; i++) y[i] = 0.5f * x[i];
    char *ref = g_strdup_printf("%s/ref.wav", lt_tmpdir()), *est = g_strdup_printf("%s/est.wav", lt_tmpdir());
    write_wav(ref, x, N);
    write_wav(est, y, N);
    const char *argv[] = {eval_exe, est, ref, "--json", NULL};
    gchar *out = NULL, *err = NULL;
    gint status = 0;
    GError *e = NULL;
    g_assert_true(g_spawn_sync(NULL, (gchar **)argv, NULL, 0, NULL, NULL, &out, &err, &status, &e));
    g_assert_no_error(e);
    g_test_message("lily-eval: %s%s", out, err);
    g_assert_cmpint(status, ==, 0);
    const char *p = strstr(out, "\"lsd\": ");
    g_assert_nonnull(p);
    double d = g_ascii_strtod(p + 7, NULL);
    g_assert_cmpfloat(fabs(d - 2.0 * log10(2.0)), <=, 1e-4);
    g_free(out);
    g_free(err);
    g_free(ref);
    g_free(est);
    g_free(x);
    g_free(y);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (int i = 1; i < argc; i++)
        if (g_str_has_prefix(argv[i], "--lily-eval=")) eval_exe = argv[i] + strlen("--lily-eval=");
    g_test_add_func("/lily/train/lsd/identical-is-zero", test_identical_is_zero);
    g_test_add_func("/lily/train/lsd/scaled-is-two-log-a", test_scaled_is_two_log_a);
    /* lily-eval exists only in builds with GStreamer; meson passes it when it is built */
    if (eval_exe) g_test_add_func("/lily/train/lsd/lily-eval-prints-lsd", test_lily_eval);
    return g_test_run();
}
