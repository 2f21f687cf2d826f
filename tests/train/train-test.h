/* tests/train/train-test.h - helpers shared by the training tests: tiny random models and a
 * finite-difference gradient checker.
 *
 * The checker perturbs one element of a tensor at a time and differentiates a scalar loss
 * L = sum(w_out * y) (accumulated in double) with the fourth-order central stencil
 * (-L(+2h) + 8 L(+h) - 8 L(-h) + L(-2h)) / (12 h): with float32 forwards its truncation error is
 * O(h^4), so h can be large enough (1e-2) for the rounding of the loss to stay small. Each
 * tensor is checked at a few spread elements plus the element of largest analytic gradient,
 * relative to the largest numeric derivative of the sample (absolute below a floor). */
#ifndef LILY_TESTS_TRAIN_TEST_H
#define LILY_TESTS_TRAIN_TEST_H

#include <lily/dataset.h>

#include "common/test-util.h"
#include "core/context.h"
#include "models/model.h"
#include "train/optim.h"
#include "train/trainer.h"

/* A context on the CPU (2 threads), failing the test on error. */
LilyContext *tt_context(void);
void tt_ok(LilyContext *ctx, LilyStatus st);
/* A model with random weights (seed) for a preset name ("tiny") or AudioSR YAML path, f32. */
LilyModel *tt_random_model(LilyContext *ctx, const char *arch, uint64_t seed);
/* Training state for every parameter of m (f32, no EMA). */
LilyTrainParams *tt_train_all(LilyContext *ctx, LilyModel *m);

/* A host f32 tensor (CPU backend: host memory is device memory) filled from U(-a, a). */
LilyTensor tt_tensor(uint64_t seed, float a, int ndim, const int64_t *shape);
#define TT_TENSOR(seed, a, ...) tt_tensor((seed), (a), LILY_SHAPE(__VA_ARGS__))
void tt_tensor_free(LilyTensor *t);

typedef struct TtVar {
    const char *name;
    float *data;        /* perturbed in place */
    int64_t n;
    const float *grad;  /* analytic gradient (n values) */
} TtVar;

/* The parameter `name` of a training set as a variable to check: its values and gradient
 * (host memory: the CPU backend). Fails the test when absent. */
TtVar tt_var(LilyTrainParams *tp, const char *name);
/* A device tensor's values in new host memory (g_free). */
float *tt_download(LilyContext *ctx, const LilyTensor *t);

/* Loss at the current values: runs the forward and returns sum(w_out * y). */
typedef double (*TtLossFn)(void *user);

/* Checks every var; asserts max error <= tol relative to the sample's peak. Below `floor`
 * a tensor's peak |numeric gradient| counts as zero (e.g. a per-channel shift that a
 * one-channel-per-group GroupNorm removes) and the error is compared with tol * floor. */
void tt_check_grads(const char *what, const TtVar *vars, int n_vars, TtLossFn loss, void *user,
                    double h, double tol, double floor, int samples);
/* For losses through leaky ReLUs (piecewise linear): finite differences are meaningless where
 * a kink lies inside the stencil, so each candidate element is differentiated with steps h
 * and h/2 and kept only when the two agree (within tol/2 of its size, or of floor); rejected
 * elements are replaced by others (up to 16x samples candidates), and at least `samples`
 * elements per tensor must be kept, so a wrong gradient cannot hide behind rejections. */
void tt_check_grads_pl(const char *what, const TtVar *vars, int n_vars, TtLossFn loss, void *user,
                       double h, double tol, double floor, int samples);
/* sum(w * y) over a device tensor, in double. */
double tt_dot(LilyContext *ctx, const LilyTensor *y, const float *w);



/* A dataset of `sources` synthetic sources (harmonic tones with vibrato and a little noise,
 * `seconds` long each) cut into segments of segment_seconds (a multiple of 0.64), with
 * AudioSR's random low-pass (cutoff 3-8 kHz) as the low side, written with the engine's
 * dataset writer into dir. About a quarter of the sources go to validation. */
void tt_make_dataset(LilyContext *ctx, const char *dir, int sources, double seconds,
                     double segment_seconds, uint64_t seed);

/* The config every loss-falls test starts from: defaults, 0.64 s segments of `dataset`, the
 * tiny architecture, `stage`, output in <tmpdir>/<out>, batch 2, 2 validation batches. */
void tt_stage_config(LilyProjectConfig *c, const char *dataset, LilyTrainStage stage, const char *out);

/* A training run measured: validation before and after, and the training loss and its parts
 * averaged over the first and the last `window` steps. */
typedef struct TtRun {
    LilyValidationInfo v0, v1;
    double first, last;
    double first_parts[LILY_TRAIN_MAX_PARTS], last_parts[LILY_TRAIN_MAX_PARTS];
} TtRun;
/* Builds a trainer for c, validates, runs `steps` steps, validates again. */
void tt_train_run(LilyContext *ctx, const LilyProjectConfig *c, int steps, int window, TtRun *r);
#endif /* LILY_TESTS_TRAIN_TEST_H */
