/* tests/dsp/test-restore.c - AudioSR's low-band restore (spec.md 10) and its level and
 * length conventions (stages 2 and 11, 9.1 item 2), against ref-a and short cases made by
 * tests/data/dsp/gen-vectors.py. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/test-util.h"
#include "core/context.h"
#include "dsp-data.h"
#include "dsp/prepare.h"

/* ref-a: from vocoder_waveform and waveform_lowpass, cutoff row 303, ratio clamped to 0.8
 * and postprocessed within 1e-5 of its peak. */
static void test_ref_a(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    LilyNpy voc, cond, want;
    lt_load_ref("vocoder_waveform", &voc);
    lt_load_ref("waveform_lowpass", &cond);
    lt_load_ref("postprocessed", &want);
    /* the vocoder gives 16 samples more than the condition; zero-extending the condition
     * leaves its librosa STFT unchanged (the frames already reach past its end) */
    const size_t n = (size_t)voc.numel;
    g_assert_cmpuint(n, ==, (size_t)cond.numel + 16);
    float *c = g_new0(float, n), *out = g_new(float, n);
    memcpy(c, cond.data, (size_t)cond.numel * sizeof(float));
    memcpy(out, voc.data, n * sizeof(float));
    int bin = -1;
    float ratio = 0;
    g_assert_cmpint(lily_restore_lowband(ctx, c, out, n, &bin, &ratio), ==, LILY_OK);
    g_test_message("cutoff row %d (AudioSR 303), ratio %.4f (AudioSR 0.8)", bin, (double)ratio);
    g_assert_cmpint(bin, ==, 303);
    g_assert_cmpfloat(ratio, ==, 0.8f);
    lt_assert_close_rel("postprocessed", out, want.data, n, 1e-5);
    g_free(c);
    g_free(out);
    lily_npy_free(&voc);
    lily_npy_free(&cond);
    lily_npy_free(&want);
    lily_context_free(ctx);
}

/* Short signals (shorter than a 2048 frame, one frame, a few frames) and a silent
 * condition (nothing replaced, ratio clamped to 0.8) match the numpy formula of
 * spec_check.py (rel 1e-5), with the same cutoff row and ratio. */
static void test_short_cases(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    DdArray cases;
    dd_load("restore-cases.npy", &cases);
    for (int k = 0; k < (int)cases.shape[0]; k++) {
        char name[64];
        DdArray cond, out, want;
        snprintf(name, sizeof name, "restore-%d-cond.npy", k);
        dd_load(name, &cond);
        snprintf(name, sizeof name, "restore-%d-out.npy", k);
        dd_load(name, &out);
        snprintf(name, sizeof name, "restore-%d-want.npy", k);
        dd_load(name, &want);
        const size_t n = cond.numel;
        float *c = dd_floats(&cond), *o = dd_floats(&out), *w = dd_floats(&want);
        int bin = -1;
        float ratio = 0;
        g_assert_cmpint(lily_restore_lowband(ctx, c, o, n, &bin, &ratio), ==, LILY_OK);
        g_test_message("n %zu: cutoff row %d (numpy %d), ratio %.6f (numpy %.6f)", n, bin,
                (int)cases.data[3 * k + 1], (double)ratio, cases.data[3 * k + 2]);
        g_assert_cmpint(bin, ==, (int)cases.data[3 * k + 1]);
        g_assert_cmpfloat(fabs(ratio - cases.data[3 * k + 2]), <=, 1e-6);
        snprintf(name, sizeof name, "restore n=%zu", n);
        lt_assert_close_rel(name, o, w, n, 1e-5);
        g_free(c);
        g_free(o);
        g_free(w);
        dd_free(&cond);
        dd_free(&out);
        dd_free(&want);
    }
    dd_free(&cases);
    lily_context_free(ctx);
}

/* Silence in both inputs (AudioSR divides 0 by 0) gives silence out, ratio 1, no NaN; an
 * empty signal is fine; a NaN is refused. */
static void test_silence_and_empty(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    float c[3000] = {0}, o[3000] = {0};
    int bin = -1;
    float ratio = 0;
    g_assert_cmpint(lily_restore_lowband(ctx, c, o, 3000, &bin, &ratio), ==, LILY_OK);
    g_assert_cmpint(bin, ==, 0);
    g_assert_cmpfloat(ratio, ==, 1.0f);
    for (int i = 0; i < 3000; i++) g_assert_cmpfloat(o[i], ==, 0.0f);
    g_assert_cmpint(lily_restore_lowband(ctx, c, o, 0, &bin, &ratio), ==, LILY_OK);
    o[5] = NAN;
    g_assert_cmpint(lily_restore_lowband(ctx, c, o, 3000, NULL, NULL), ==, LILY_ERR_NUMERIC);
    g_assert_nonnull(strstr(lily_context_error(ctx), "sample 5"));
    lily_context_free(ctx);
}

/* normalize_wav on ref-a's raw input gives waveform.npy (rel 1e-6), and mean/gain undo it. */
static void test_normalize_ref_a(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    LilyNpy raw, want;
    lt_load_ref("input_raw", &raw);
    lt_load_ref("waveform", &want);
    const size_t n = (size_t)raw.numel;
    float *x = g_new(float, n), *back = g_new(float, n);
    memcpy(x, raw.data, n * sizeof(float));
    double mean = 0, gain = 0;
    g_assert_cmpint(lily_audiosr_normalize(ctx, x, n, &mean, &gain), ==, LILY_OK);
    g_test_message("mean %.6g, gain %.6g", mean, gain);
    lt_assert_close_rel("normalised input vs waveform[:240000]", x, want.data, n, 1e-6);
    for (size_t i = 0; i < n; i++) back[i] = (float)((double)x[i] / gain + mean);
    lt_assert_close_rel("undo of the normalisation", back, raw.data, n, 1e-6);
    /* the padding that follows: waveform is zero past the input */
    g_assert_cmpuint(lily_audiosr_padded_length(n), ==, (size_t)want.numel);
    for (size_t i = n; i < (size_t)want.numel; i++) g_assert_cmpfloat(((float *)want.data)[i], ==, 0.0f);
    x[100] = INFINITY;
    g_assert_cmpint(lily_audiosr_normalize(ctx, x, n, NULL, NULL), ==, LILY_ERR_NUMERIC);
    g_free(x);
    g_free(back);
    lily_npy_free(&raw);
    lily_npy_free(&want);
    lily_context_free(ctx);
}

/* Padding to 5.12 s segments is exact integer arithmetic, including the lengths on which
 * AudioSR's float version comes out one sample short (spec.md 9.1 item 2). */
static void test_padded_length(void)
{
    g_assert_cmpuint(lily_audiosr_padded_length(0), ==, 0);
    g_assert_cmpuint(lily_audiosr_padded_length(1), ==, 245760);
    g_assert_cmpuint(lily_audiosr_padded_length(240000), ==, 245760);
    g_assert_cmpuint(lily_audiosr_padded_length(245760), ==, 245760);
    g_assert_cmpuint(lily_audiosr_padded_length(245761), ==, 491520);
    g_assert_cmpuint(lily_audiosr_padded_length(12829), ==, 245760);
    g_assert_cmpuint(lily_audiosr_segments(81920, 16000), ==, 1); /* 5.12 s at 16 kHz */
    g_assert_cmpuint(lily_audiosr_segments(81921, 16000), ==, 2);
    g_assert_cmpuint(lily_audiosr_segments(44100 * 60, 44100), ==, 12); /* 60 s / 5.12 s */
    g_assert_cmpuint(lily_audiosr_segments(UINT64_MAX / 2, 48000), ==,
                     (UINT64_MAX / 2) / 245760 + 1);
}

/* Stage 11 on ref-a: postprocessed -> final_waveform (peak 0.5, then mean removed), rel
 * 1e-6; silence stays silence with gain 0. */
static void test_output_normalize(void)
{
    LilyNpy post, want;
    lt_load_ref("postprocessed", &post);
    lt_load_ref("final_waveform", &want);
    const size_t n = (size_t)post.numel;
    double gain = lily_audiosr_output_normalize(post.data, n);
    g_assert_cmpfloat(gain, >, 0);
    lt_assert_close_rel("final_waveform", post.data, want.data, n, 1e-6);
    float z[100] = {0};
    g_assert_cmpfloat(lily_audiosr_output_normalize(z, 100), ==, 0.0);
    for (int i = 0; i < 100; i++) g_assert_cmpfloat(z[i], ==, 0.0f);
    lily_npy_free(&post);
    lily_npy_free(&want);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/dsp/restore/ref-a", test_ref_a);
    g_test_add_func("/lily/dsp/restore/short-signals-vs-numpy", test_short_cases);
    g_test_add_func("/lily/dsp/restore/silence-and-empty", test_silence_and_empty);
    g_test_add_func("/lily/dsp/prepare/normalize-ref-a", test_normalize_ref_a);
    g_test_add_func("/lily/dsp/prepare/padded-length-integer", test_padded_length);
    g_test_add_func("/lily/dsp/prepare/output-normalize-ref-a", test_output_normalize);
    return g_test_run();
}
