/* tests/common/test-util.h - helpers shared by the engine, model and element tests.
 *
 * Reference vectors come from AudioSR's own run (the folder named by LILY_AUDIOSR_DIR, set by
 * meson from -Daudiosr_dir, default ../shared/audiosr). A missing folder is a test failure
 * with a message saying where it was looked for, never a skip. */
#ifndef LILY_TESTS_TEST_UTIL_H
#define LILY_TESTS_TEST_UTIL_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/npy.h"

/* Path of `name` inside the AudioSR reference folder (g_free it). Fails the test when the
 * folder does not exist. */
char *lt_ref_path(const char *name);
/* Loads a reference .npy (ref-a/<name>.npy when name has no slash and no extension). */
void lt_load_npy(const char *path, LilyNpy *out);
void lt_load_ref(const char *name, LilyNpy *out); /* ref-a/<name>.npy */

typedef struct LtErr {
    double max_abs;  /* max |got - ref| */
    double ref_peak; /* max |ref| */
    double rel;      /* max_abs / ref_peak */
    double nmse;     /* sum (got-ref)^2 / sum ref^2 */
    size_t worst;    /* index of max_abs */
} LtErr;

LtErr lt_compare(const float *got, const float *ref, size_t n);
/* Prints "name: max|err| ... rel ... nmse ... (tolerance ...) OK/NOT OK" and asserts
 * rel <= rel_tol (relative to the reference's peak). */
void lt_assert_close_rel(const char *name, const float *got, const float *ref, size_t n,
                         double rel_tol);
/* Same with an absolute tolerance. */
void lt_assert_close_abs(const char *name, const float *got, const float *ref, size_t n,
                         double abs_tol);
/* NMSE bound (for reduced precision). */
void lt_assert_nmse(const char *name, const float *got, const float *ref, size_t n,
                    double nmse_tol);

/* Deterministic test signals. */
void lt_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);
void lt_sine(float *x, size_t n, double freq, double rate, double amp);

/* A writable temporary directory for this test (removed at exit). */
const char *lt_tmpdir(void);

#endif /* LILY_TESTS_TEST_UTIL_H */
