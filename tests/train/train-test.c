/* tests/train/train-test.c - see train-test.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

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

int tt_param_index(const LilyModel *m, const char *name)
{
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return i;
    return -1;
}

LilyParam *tt_param(LilyModel *m, const char *name)
{
    int i = tt_param_index(m, name);
    if (i < 0) g_printerr("no parameter %s\n", name);
    g_assert_cmpint(i, >=, 0);
    return &m->params[i];
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
