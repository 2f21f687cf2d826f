/* tests/train/train-test.c - see train-test.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/philox.h"
#include "tests/train/train-test.h"
#include "train/init.h"

LilyContext *tt_context(void)
{
    LilyContextParams cp;
    lily_context_params_init(&cp);
    cp.n_threads = 2;
    LilyContext *ctx = NULL;
    char err[512];
    LilyStatus st = lily_context_new(&cp, &ctx, err, sizeof err);
    if (st != LILY_OK) g_printerr("context: %s\n", err);
    g_assert_cmpint(st, ==, LILY_OK);
    return ctx;
}

void tt_ok(LilyContext *ctx, LilyStatus st)
{
    if (st != LILY_OK) g_printerr("failed: %s\n", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_OK);
}

LilyModel *tt_random_model(LilyContext *ctx, const char *arch, uint64_t seed)
{
    LilyModelConfig cfg;
    if (lily_model_config_preset(arch, &cfg) != LILY_OK) tt_ok(ctx, lily_model_config_load(ctx, arch, &cfg));
    char *path = g_strdup_printf("%s/random-%llu-%u.safetensors", lt_tmpdir(), (unsigned long long)seed,
                                 g_str_hash(arch));
    tt_ok(ctx, lily_train_write_random_model(ctx, &cfg, seed, path));
    LilyModel *m = NULL;
    tt_ok(ctx, lily_model_load(ctx, path, NULL, &m));
    g_free(path);
    return m;
}

LilyTrainParams *tt_train_all(LilyContext *ctx, LilyModel *m)
{
    LilyTrainParams *tp = NULL;
    tt_ok(ctx, lily_train_params_new(ctx, m->params, m->n_params, NULL, LILY_PRECISION_F32, false, &tp));
    return tp;
}

LilyTensor tt_tensor(uint64_t seed, float a, int ndim, const int64_t *shape)
{
    LilyTensor t = lily_tensor_make(NULL, LILY_DTYPE_F32, LILY_DEVICE_CPU, ndim, shape);
    size_t n = (size_t)lily_tensor_numel(&t);
    t.data = g_new(float, n ? n : 1);
    lt_fill_uniform(t.data, n, seed, -a, a);
    return t;
}

void tt_tensor_free(LilyTensor *t)
{
    g_free(t->data);
    t->data = NULL;
}

double tt_dot(LilyContext *ctx, const LilyTensor *y, const float *w)
{
    size_t n = (size_t)lily_tensor_numel(y);
    float *h = g_new(float, n);
    tt_ok(ctx, lily_tensor_download(ctx, y, h));
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)w[i] * (double)h[i];
    g_free(h);
    return s;
}

void tt_check_grads(const char *what, const TtVar *vars, int n_vars, TtLossFn loss, void *user,
                    double h, double tol, double floor_, int samples)
{
    float *an = g_new(float, samples + 1), *nu = g_new(float, samples + 1);
    for (int k = 0; k < n_vars; k++) {
        const TtVar *v = &vars[k];
        int64_t n = v->n;
        int ns = 0;
        int64_t idx[64];
        g_assert_cmpint(samples, <, 63);
        /* the largest analytic gradient, then spread elements */
        int64_t big = 0;
        for (int64_t i = 1; i < n; i++)
            if (fabsf(v->grad[i]) > fabsf(v->grad[big])) big = i;
        idx[ns++] = big;
        for (int s = 0; s < samples && ns < n; s++) {
            int64_t i = n <= samples ? s : (int64_t)(((uint64_t)s * 2654435761u + 40503u) % (uint64_t)n);
            if (i != big) idx[ns++] = i;
        }
        for (int s = 0; s < ns; s++) {
            int64_t i = idx[s];
            float v0 = v->data[i];
            double l[4];
            const double off[4] = {2 * h, h, -h, -2 * h};
            for (int j = 0; j < 4; j++) {
                v->data[i] = (float)(v0 + off[j]);
                l[j] = loss(user);
            }
            v->data[i] = v0;
            nu[s] = (float)((-l[0] + 8 * l[1] - 8 * l[2] + l[3]) / (12 * h));
            an[s] = v->grad[i];
        }
        char name[160];
        snprintf(name, sizeof name, "%s d%s (%d of %lld)", what, v->name, ns, (long long)n);
        double peak = 0.0;
        for (int s = 0; s < ns; s++) peak = fmax(peak, fabs((double)nu[s]));
        /* A gradient that is zero (e.g. a per-channel shift a 1-channel GroupNorm removes) is
         * checked against the noise floor instead of its own (noise-sized) peak. */
        if (peak < floor_) lt_assert_close_abs(name, an, nu, (size_t)ns, tol * floor_);
        else lt_assert_close_rel(name, an, nu, (size_t)ns, tol);
    }
    g_free(an);
    g_free(nu);
}

void tt_make_dataset(LilyContext *ctx, const char *dir, int sources, double seconds,
                     double segment_seconds, uint64_t seed)
{
    LilyDatasetParams p;
    lily_dataset_params_init(&p);
    p.segment_seconds = segment_seconds;
    p.hop_seconds = segment_seconds;
    p.validation_fraction = 0.25;
    p.seed = seed;
    p.degradation.cutoff_min_hz = 3000;
    p.degradation.cutoff_max_hz = 8000;
    LilyDatasetWriter *w = NULL;
    tt_ok(ctx, lily_dataset_writer_open(ctx, dir, &p, &w));
    size_t n = (size_t)(seconds * LILY_SAMPLE_RATE);
    float *x = g_new(float, n);
    for (int s = 0; s < sources; s++) {
        double f0 = 110.0 * pow(2.0, (double)lily_philox_uniform(seed, 1000 + (uint64_t)s, 0) * 3.0);
        double vib = 2.0 + 4.0 * lily_philox_uniform(seed, 1000 + (uint64_t)s, 1);
        for (size_t i = 0; i < n; i++) {
            double tt = (double)i / LILY_SAMPLE_RATE, v = 0.0;
            double ph = 2.0 * G_PI * f0 * (tt + 0.002 * sin(2.0 * G_PI * vib * tt) / vib);
            for (int h = 1; h <= 24 && h * f0 < 22000.0; h++) v += sin(h * ph) / h;
            double noise = 2.0 * lily_philox_uniform(seed, 2000 + (uint64_t)s, i) - 1.0;
            x[i] = (float)(0.25 * v * (0.6 + 0.4 * sin(2.0 * G_PI * 0.7 * tt)) + 0.01 * noise);
        }
        char uri[64];
        snprintf(uri, sizeof uri, "synthetic://tone-%d", s);
        int done = 0;
        tt_ok(ctx, lily_dataset_writer_begin_source(w, uri, NULL, &done));
        tt_ok(ctx, lily_dataset_writer_push(w, x, n));
        tt_ok(ctx, lily_dataset_writer_end_source(w));
    }
    g_free(x);
    tt_ok(ctx, lily_dataset_writer_close(w));
}

TtVar tt_var(LilyTrainParams *tp, const char *name)
{
    for (int i = 0; i < tp->set.n; i++) {
        LilyParam *p = &tp->set.params[i];
        if (strcmp(p->name, name) == 0)
            return (TtVar){p->name, p->t.data, lily_tensor_numel(&p->t), tp->set.grad[i].data};
    }
    g_printerr("no parameter %s\n", name);
    g_assert_not_reached();
    return (TtVar){0};
}

float *tt_download(LilyContext *ctx, const LilyTensor *t)
{
    float *h = g_new(float, lily_tensor_numel(t));
    tt_ok(ctx, lily_tensor_download(ctx, t, h));
    return h;
}

void tt_stage_config(LilyProjectConfig *c, const char *dataset, LilyTrainStage stage, const char *out)
{
    lily_project_config_defaults(c);
    c->data.params.segment_seconds = c->data.params.hop_seconds = 0.64;
    snprintf(c->data.dir, sizeof c->data.dir, "%s", dataset);
    snprintf(c->model.architecture, sizeof c->model.architecture, "tiny");
    c->train.stage = stage;
    snprintf(c->train.out_dir, sizeof c->train.out_dir, "%s/%s", lt_tmpdir(), out);
    c->train.batch_size = 2;
    c->train.validation_batches = 2;
}

void tt_train_run(LilyContext *ctx, const LilyProjectConfig *c, int steps, int window, TtRun *r)
{
    memset(r, 0, sizeof *r);
    LilyTrainerOptions o = {.cfg = c};
    LilyTrainer *t = NULL;
    tt_ok(ctx, lily_trainer_new(ctx, &o, &t));
    tt_ok(ctx, lily_trainer_validate(t, &r->v0));
    for (int i = 0; i < steps; i++) {
        LilyTrainStepInfo info;
        tt_ok(ctx, lily_trainer_step(t, &info));
        int head = i < window, tail = i >= steps - window;
        if (head) r->first += info.loss / window;
        if (tail) r->last += info.loss / window;
        for (int k = 0; k < info.n_parts; k++) {
            if (head) r->first_parts[k] += info.parts[k] / window;
            if (tail) r->last_parts[k] += info.parts[k] / window;
        }
    }
    tt_ok(ctx, lily_trainer_validate(t, &r->v1));
    lily_trainer_free(t);
}

static double stencil(const TtVar *v, int64_t i, TtLossFn loss, void *user, double h)
{
    float v0 = v->data[i];
    double l[4];
    const double off[4] = {2 * h, h, -h, -2 * h};
    for (int j = 0; j < 4; j++) {
        v->data[i] = (float)(v0 + off[j]);
        l[j] = loss(user);
    }
    v->data[i] = v0;
    return (-l[0] + 8 * l[1] - 8 * l[2] + l[3]) / (12 * h);
}

void tt_check_grads_pl(const char *what, const TtVar *vars, int n_vars, TtLossFn loss, void *user,
                       double h, double tol, double floor_, int samples)
{
    float *an = g_new(float, samples), *nu = g_new(float, samples);
    for (int k = 0; k < n_vars; k++) {
        const TtVar *v = &vars[k];
        int ns = 0, rejected = 0;
        int64_t big = 0; /* the largest analytic gradient is the first candidate */
        for (int64_t i = 1; i < v->n; i++)
            if (fabsf(v->grad[i]) > fabsf(v->grad[big])) big = i;
        for (int c = -1; c < 16 * samples && ns < samples && c < v->n; c++) {
            int64_t i = c < 0 ? big
                        : v->n <= 16 * samples ? c
                                              : (int64_t)(((uint64_t)c * 2654435761u + 40503u) % (uint64_t)v->n);
            if (c >= 0 && i == big) continue;
            double a = stencil(v, i, loss, user, h), b = stencil(v, i, loss, user, h / 2);
            if (fabs(a - b) > 0.5 * tol * fmax(fabs(b), floor_)) {
                rejected++;
                continue;
            }
            nu[ns] = (float)b;
            an[ns] = v->grad[i];
            ns++;
        }
        char name[160];
        snprintf(name, sizeof name, "%s d%s (%d of %lld, %d near a kink)", what, v->name, ns,
                 (long long)v->n, rejected);
        g_test_message("%s", name);
        g_assert_cmpint(ns, >=, samples < v->n ? samples : v->n);
        double peak = 0.0;
        for (int s2 = 0; s2 < ns; s2++) peak = fmax(peak, fabs((double)nu[s2]));
        if (peak < floor_) lt_assert_close_abs(name, an, nu, (size_t)ns, tol * floor_);
        else lt_assert_close_rel(name, an, nu, (size_t)ns, tol);
    }
    g_free(an);
    g_free(nu);
}
