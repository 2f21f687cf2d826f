/* tests/common/test-util.c - see test-util.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "common/test-util.h"
#include "kernels/common/philox.h"

#ifndef LILY_AUDIOSR_DIR_DEFAULT
#define LILY_AUDIOSR_DIR_DEFAULT "../shared/audiosr"
#endif

char *lt_ref_path(const char *name)
{
    const char *dir = g_getenv("LILY_AUDIOSR_DIR");
    if (!dir || !*dir) dir = LILY_AUDIOSR_DIR_DEFAULT;
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        g_printerr("AudioSR reference folder not found: %s (set LILY_AUDIOSR_DIR or "
                   "-Daudiosr_dir)\n", dir);
        g_assert_not_reached();
    }
    return g_build_filename(dir, name, NULL);
}

void lt_load_npy(const char *path, LilyNpy *out)
{
    LilyStatus st = lily_npy_read(NULL, path, out);
    if (st != LILY_OK) g_printerr("cannot read %s: %s\n", path, lily_status_name(st));
    g_assert_cmpint(st, ==, LILY_OK);
}

void lt_load_ref(const char *name, LilyNpy *out)
{
    char *file = g_strdup_printf("ref-a/%s.npy", name);
    char *path = lt_ref_path(file);
    lt_load_npy(path, out);
    g_free(path);
    g_free(file);
}

LtErr lt_compare(const float *got, const float *ref, size_t n)
{
    LtErr e = {0};
    double se = 0, sr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= e.max_abs)) { /* also catches NaN */
            e.max_abs = isnan(d) ? INFINITY : d;
            e.worst = i;
        }
        double r = fabs((double)ref[i]);
        if (r > e.ref_peak) e.ref_peak = r;
        se += d * d;
        sr += r * r;
    }
    e.rel = e.ref_peak > 0 ? e.max_abs / e.ref_peak : e.max_abs;
    e.nmse = sr > 0 ? se / sr : se;
    return e;
}

static void report(const char *name, LtErr e, const float *got, const float *ref,
                   const char *kind, double tol, bool ok)
{
    g_test_message("%-40s max|err| %.3e  rel %.3e  nmse %.3e  (%s tol %.1e)  worst [%zu] "
                   "got %.6g ref %.6g  %s",
                   name, e.max_abs, e.rel, e.nmse, kind, tol, e.worst, (double)got[e.worst],
                   (double)ref[e.worst], ok ? "OK" : "NOT OK");
}

void lt_assert_close_rel(const char *name, const float *got, const float *ref, size_t n,
                         double rel_tol)
{
    LtErr e = lt_compare(got, ref, n);
    bool ok = e.rel <= rel_tol;
    report(name, e, got, ref, "rel", rel_tol, ok);
    g_assert_cmpfloat(e.rel, <=, rel_tol);
}

void lt_assert_close_abs(const char *name, const float *got, const float *ref, size_t n,
                         double abs_tol)
{
    LtErr e = lt_compare(got, ref, n);
    bool ok = e.max_abs <= abs_tol;
    report(name, e, got, ref, "abs", abs_tol, ok);
    g_assert_cmpfloat(e.max_abs, <=, abs_tol);
}

void lt_assert_nmse(const char *name, const float *got, const float *ref, size_t n,
                    double nmse_tol)
{
    LtErr e = lt_compare(got, ref, n);
    bool ok = e.nmse <= nmse_tol;
    report(name, e, got, ref, "nmse", nmse_tol, ok);
    g_assert_cmpfloat(e.nmse, <=, nmse_tol);
}

void lt_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * lily_philox_uniform(seed, 77, i);
}

void lt_sine(float *x, size_t n, double freq, double rate, double amp)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(amp * sin(2.0 * G_PI * freq * (double)i / rate));
}

static char *tmpdir_path;

static void rm_tmpdir(void)
{
    if (!tmpdir_path) return;
    char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir_path);
    if (system(cmd) != 0) g_printerr("could not remove %s\n", tmpdir_path);
    g_free(cmd);
    g_free(tmpdir_path);
    tmpdir_path = NULL;
}

const char *lt_tmpdir(void)
{
    if (!tmpdir_path) {
        GError *err = NULL;
        tmpdir_path = g_dir_make_tmp("lily-test-XXXXXX", &err);
        g_assert_no_error(err);
        atexit(rm_tmpdir);
    }
    return tmpdir_path;
}
