/* tests/dsp/test-filter.c - scipy-equivalent IIR design (butter, cheby1, ellip, bessel ->
 * sos), sosfiltfilt, resample_poly and AudioSR's whole re-low-pass (spec.md 3c), against
 * scipy 1.10 vectors (tests/data/dsp/gen-vectors.py) and ref-a's waveform_lowpass. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/test-util.h"
#include "core/context.h"
#include "dsp-data.h"
#include "dsp/iir.h"
#include "dsp/resample.h"

static const char *const family_names[] = {"butter", "cheby1", "ellip", "bessel"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* max |got - ref| relative to max |ref|, in double, printed with the tolerance */
static void assert_close_rel_d(const char *name, const double *got, const double *ref, size_t n,
                               double tol)
{
    double err = 0, peak = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs(got[i] - ref[i]);
        if (!(d <= err)) {
            err = isnan(d) ? INFINITY : d;
            worst = i;
        }
        peak = fmax(peak, fabs(ref[i]));
    }
    const double rel = peak > 0 ? err / peak : err;
    g_test_message("%-40s max|err| %.3e  rel %.3e  (rel tol %.1e, double)  worst [%zu]  %s", name, err,
            rel, tol, worst, rel <= tol ? "OK" : "NOT OK");
    g_assert_cmpfloat(rel, <=, tol);
}

static LilySos design(LilyContext *ctx, int fam, int order, double cutoff_hz)
{
    LilySos sos;
    const double wn = (double)(long long)cutoff_hz / 24000.0;
    LilyStatus st = lily_iir_lowpass(ctx, (LilyFilterType)fam, order, wn, 0.1, 60.0, &sos);
    if (st != LILY_OK) g_printerr("%s\n", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_OK);
    return sos;
}

/* Every design of the grid (4 families x orders 1-12 x cutoffs 2/4/7.781/12/16 kHz) has
 * scipy's section count and ordering, and each coefficient equals scipy's to 1e-6 relative
 * to the peak of its numerator or denominator. */
static void test_sos_vs_scipy(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    DdArray cases, want;
    dd_load("iir-cases.npy", &cases);
    dd_load("iir-sos.npy", &want);
    double worst[4] = {0};
    int worst_case[4] = {0};
    const int nc = (int)cases.shape[0];
    for (int c = 0; c < nc; c++) {
        const double *cs = cases.data + 4 * c;
        const int fam = (int)cs[0], order = (int)cs[1], nsec = (int)cs[3];
        LilySos sos = design(ctx, fam, order, cs[2]);
        if (sos.n != nsec)
            g_printerr("%s order %d at %g Hz: %d sections, scipy %d\n", family_names[fam], order,
                       cs[2], sos.n, nsec);
        g_assert_cmpint(sos.n, ==, nsec);
        for (int s = 0; s < nsec; s++) {
            const double *ref = want.data + (size_t)c * 36 + (size_t)s * 6;
            for (int half = 0; half < 2; half++) {
                double peak = 0, err = 0;
                for (int i = 3 * half; i < 3 * half + 3; i++) {
                    peak = fmax(peak, fabs(ref[i]));
                    err = fmax(err, fabs(sos.s[s][i] - ref[i]));
                }
                const double rel = peak > 0 ? err / peak : err;
                if (!(rel <= worst[fam])) {
                    worst[fam] = rel;
                    worst_case[fam] = c;
                }
            }
        }
    }
    for (int f = 0; f < 4; f++) {
        const double *cs = cases.data + 4 * worst_case[f];
        g_test_message("sos %-6s: worst coefficient rel err %.3e (order %d, %g Hz) (tol 1e-6)",
                family_names[f], worst[f], (int)cs[1], cs[2]);
    }
    for (int f = 0; f < 4; f++) g_assert_cmpfloat(worst[f], <=, 1e-6);
    dd_free(&cases);
    dd_free(&want);
    lily_context_free(ctx);
}

/* sosfilt_zi is the steady state: a constant input started from zi * x0 stays constant at
 * the filter's DC gain from the first sample. */
static void test_sosfilt_zi_steady(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    for (int fam = 0; fam < 4; fam++) {
        LilySos sos = design(ctx, fam, 7, 5000);
        double zi[LILY_IIR_MAX_SECTIONS][2], x[64];
        lily_sosfilt_zi(&sos, zi);
        double dc = 1.0;
        for (int s = 0; s < sos.n; s++)
            dc *= (sos.s[s][0] + sos.s[s][1] + sos.s[s][2]) / (sos.s[s][3] + sos.s[s][4] + sos.s[s][5]);
        for (int s = 0; s < sos.n; s++) zi[s][0] *= 0.7, zi[s][1] *= 0.7;
        for (int i = 0; i < 64; i++) x[i] = 0.7;
        lily_sosfilt(&sos, x, 64, zi);
        double err = 0;
        for (int i = 0; i < 64; i++) err = fmax(err, fabs(x[i] - 0.7 * dc));
        g_test_message("%-6s order 7: steady-state deviation %.3e (tol 1e-12)", family_names[fam], err);
        g_assert_cmpfloat(err, <=, 1e-12);
    }
    lily_context_free(ctx);
}

/* sosfiltfilt equals scipy's (odd padding, default padlen, zi initial conditions) to 1e-6
 * of the output's peak, compared in double. */
static void test_sosfiltfilt_vs_scipy(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    DdArray sig, cases, want;
    dd_load("signal.npy", &sig);
    dd_load("sosfiltfilt-cases.npy", &cases);
    dd_load("sosfiltfilt-out.npy", &want);
    const size_t n = (size_t)want.shape[1];
    double *y = g_new(double, n);
    for (int c = 0; c < (int)cases.shape[0]; c++) {
        const double *cs = cases.data + 3 * c;
        LilySos sos = design(ctx, (int)cs[0], (int)cs[1], cs[2]);
        g_assert_cmpint(lily_sosfiltfilt(ctx, &sos, sig.data, n, y), ==, LILY_OK);
        char name[64];
        snprintf(name, sizeof name, "sosfiltfilt %s %d @ %g Hz", family_names[(int)cs[0]],
                 (int)cs[1], cs[2]);
        assert_close_rel_d(name, y, want.data + (size_t)c * n, n, 1e-6);
    }
    g_free(y);
    dd_free(&sig);
    dd_free(&cases);
    dd_free(&want);
    lily_context_free(ctx);
}

/* resample_poly equals scipy's (length, and values to 1e-6 of the peak in double) for AudioSR's
 * 15562/48000 pair both ways and for small, coprime and common ratios. */
static void test_resample_vs_scipy(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    DdArray sig, cases;
    dd_load("signal.npy", &sig);
    dd_load("resample-cases.npy", &cases);
    const size_t n = 2000;
    for (int c = 0; c < (int)cases.shape[0]; c++) {
        const int up = (int)cases.data[2 * c], down = (int)cases.data[2 * c + 1];
        char file[64], name[64];
        snprintf(file, sizeof file, "resample-out-%d.npy", c);
        DdArray want;
        dd_load(file, &want);
        LilyResampler r;
        g_assert_cmpint(lily_resampler_init(ctx, &r, up, down), ==, LILY_OK);
        const size_t no = lily_resampler_out_len(&r, n);
        g_assert_cmpuint(no, ==, want.numel);
        double *y = g_new(double, no);
        lily_resampler_run(&r, sig.data, n, y);
        snprintf(name, sizeof name, "resample_poly %d/%d (%zu -> %zu)", up, down, n, no);
        assert_close_rel_d(name, y, want.data, no, 1e-6);
        g_free(y);
        dd_free(&want);
        lily_resampler_release(&r);
    }
    dd_free(&sig);
    dd_free(&cases);
    lily_context_free(ctx);
}

/* AudioSR's lowpass (sosfiltfilt, resample_poly down to int(2 cutoff) and back, sosfiltfilt)
 * equals spec_check.py's scipy version to 1e-5 of the peak for all four families, several
 * orders and cutoffs, fractional cutoffs included (truncated as AudioSR does). */
static void test_lowpass_vs_scipy(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    DdArray sig, cases, want;
    dd_load("signal.npy", &sig);
    dd_load("lowpass-cases.npy", &cases);
    dd_load("lowpass-out.npy", &want);
    const size_t n = sig.numel;
    float *x = dd_floats(&sig), *y = g_new(float, n), *ref = dd_floats(&want);
    for (int c = 0; c < (int)cases.shape[0]; c++) {
        const double *cs = cases.data + 3 * c;
        g_assert_cmpint(lily_lowpass(ctx, x, n, 48000, cs[2], (LilyFilterType)cs[0], (int)cs[1], y),
                        ==, LILY_OK);
        char name[64];
        snprintf(name, sizeof name, "lowpass %s %d @ %g Hz", family_names[(int)cs[0]], (int)cs[1],
                 cs[2]);
        lt_assert_close_rel(name, y, ref + (size_t)c * n, n, 1e-5);
    }
    g_free(x);
    g_free(y);
    g_free(ref);
    dd_free(&sig);
    dd_free(&cases);
    dd_free(&want);
    lily_context_free(ctx);
}

/* ref-a: the condition waveform (ellip order 8 at the detected 7781.25 Hz) equals AudioSR's
 * waveform_lowpass to 1e-5 of its peak. */
static void test_lowpass_ref_a(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    LilyNpy wav, ref;
    lt_load_ref("waveform", &wav);
    lt_load_ref("waveform_lowpass", &ref);
    const size_t n = (size_t)wav.numel;
    float *y = g_new(float, n);
    const double t0 = now_s();
    g_assert_cmpint(lily_lowpass(ctx, wav.data, n, 48000, 7781.25, LILY_FILTER_ELLIP, 8, y), ==,
                    LILY_OK);
    g_test_message("lowpass of %.2f s took %.3f s", n / 48000.0, now_s() - t0);
    lt_assert_close_rel("waveform_lowpass (ellip 8, 7781.25 Hz)", y, ref.data, n, 1e-5);
    g_free(y);
    lily_npy_free(&wav);
    lily_npy_free(&ref);
    lily_context_free(ctx);
}

/* A cutoff at or above Nyquist (AudioSR's answer for silence, which scipy refuses) passes
 * the signal through unchanged, in place too. */
static void test_lowpass_nyquist_passthrough(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    float x[4800], y[4800];
    lt_fill_uniform(x, 4800, 11, -1, 1);
    g_assert_cmpint(lily_lowpass(ctx, x, 4800, 48000, 24000.0, LILY_FILTER_BESSEL, 8, y), ==, LILY_OK);
    lt_assert_close_abs("cutoff 24000 Hz passes through", y, x, 4800, 0.0);
    memcpy(y, x, sizeof x);
    g_assert_cmpint(lily_lowpass(ctx, y, 4800, 48000, 30000.0, LILY_FILTER_ELLIP, 8, y), ==, LILY_OK);
    lt_assert_close_abs("cutoff 30000 Hz in place passes through", y, x, 4800, 0.0);
    lily_context_free(ctx);
}

/* Bad orders, cutoffs, families and non-finite input are refused with a message. */
static void test_lowpass_bad_args(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    float x[1000] = {0}, y[1000];
    g_assert_cmpint(lily_lowpass(ctx, x, 1000, 48000, 4000, LILY_FILTER_BUTTER, 0, y), ==,
                    LILY_ERR_INVALID_ARGUMENT);
    g_assert_cmpint(lily_lowpass(ctx, x, 1000, 48000, 4000, LILY_FILTER_BUTTER, 13, y), ==,
                    LILY_ERR_INVALID_ARGUMENT);
    g_assert_cmpint(lily_lowpass(ctx, x, 1000, 48000, 0.5, LILY_FILTER_BUTTER, 8, y), ==,
                    LILY_ERR_INVALID_ARGUMENT);
    g_assert_cmpint(lily_lowpass(ctx, x, 1000, 48000, NAN, LILY_FILTER_BUTTER, 8, y), ==,
                    LILY_ERR_INVALID_ARGUMENT);
    g_assert_cmpint(lily_lowpass(ctx, x, 1000, 48000, 4000, LILY_FILTER_COUNT, 8, y), ==,
                    LILY_ERR_INVALID_ARGUMENT);
    x[17] = NAN;
    g_assert_cmpint(lily_lowpass(ctx, x, 1000, 48000, 4000, LILY_FILTER_BUTTER, 8, y), ==,
                    LILY_ERR_NUMERIC);
    g_assert_nonnull(strstr(lily_context_error(ctx), "sample 17"));
    lily_context_free(ctx);
}

/* Inputs shorter than scipy's pad (which scipy refuses) are filtered with a shorter odd
 * extension: finite output of the same length, and a constant stays that constant. */
static void test_lowpass_short_input(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    for (size_t n = 1; n <= 40; n += 13) {
        float x[64], y[64];
        for (size_t i = 0; i < n; i++) x[i] = 0.25f;
        g_assert_cmpint(lily_lowpass(ctx, x, n, 48000, 7000, LILY_FILTER_CHEBY1, 8, y), ==, LILY_OK);
        for (size_t i = 0; i < n; i++) g_assert_true(isfinite(y[i]));
        /* sosfiltfilt keeps a constant at its DC gain; the resampler's zero padding does not,
         * so check the IIR part on its own */
        LilySos sos = design(ctx, LILY_FILTER_BUTTER, 8, 7000);
        double xd[64], yd[64];
        for (size_t i = 0; i < n; i++) xd[i] = 0.25;
        g_assert_cmpint(lily_sosfiltfilt(ctx, &sos, xd, n, yd), ==, LILY_OK);
        for (size_t i = 0; i < n; i++) g_assert_cmpfloat(fabs(yd[i] - 0.25), <=, 1e-9);
    }
    lily_context_free(ctx);
}

/* A minute of audio goes through the whole lowpass with finite output (the polyphase
 * resampler keeps this linear in the length; the time is printed). */
static void test_lowpass_long_input(void)
{
    LilyContext *ctx;
    g_assert_cmpint(lily_context_new(NULL, &ctx, NULL, 0), ==, LILY_OK);
    const size_t n = 60 * 48000;
    float *x = g_new(float, n);
    lt_fill_uniform(x, n, 21, -0.5f, 0.5f);
    const double t0 = now_s();
    g_assert_cmpint(lily_lowpass(ctx, x, n, 48000, 3727.0, LILY_FILTER_BESSEL, 8, x), ==, LILY_OK);
    const double dt = now_s() - t0;
    g_test_message("lowpass (bessel 8 at 3727 Hz) of 60 s: %.2f s, %.0fx real time", dt, 60.0 / dt);
    double peak = 0;
    for (size_t i = 0; i < n; i++) {
        g_assert_true(isfinite(x[i]));
        peak = fmax(peak, fabs(x[i]));
    }
    g_assert_cmpfloat(peak, >, 0.01);
    g_free(x);
    lily_context_free(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/dsp/iir/sos-vs-scipy", test_sos_vs_scipy);
    g_test_add_func("/lily/dsp/iir/sosfilt-zi-steady-state", test_sosfilt_zi_steady);
    g_test_add_func("/lily/dsp/iir/sosfiltfilt-vs-scipy", test_sosfiltfilt_vs_scipy);
    g_test_add_func("/lily/dsp/resample/vs-scipy", test_resample_vs_scipy);
    g_test_add_func("/lily/dsp/lowpass/vs-scipy", test_lowpass_vs_scipy);
    g_test_add_func("/lily/dsp/lowpass/ref-a", test_lowpass_ref_a);
    g_test_add_func("/lily/dsp/lowpass/nyquist-passthrough", test_lowpass_nyquist_passthrough);
    g_test_add_func("/lily/dsp/lowpass/bad-args-refused", test_lowpass_bad_args);
    g_test_add_func("/lily/dsp/lowpass/short-input", test_lowpass_short_input);
    g_test_add_func("/lily/dsp/lowpass/long-input", test_lowpass_long_input);
    return g_test_run();
}
