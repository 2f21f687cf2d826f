/* tests/train/test-reference.c - two UNet training steps against an independent PyTorch run.
 *
 * Reference: tests/train/data/ref-*, made by tests/train/make-reference.py (PyTorch 1.13) on
 * `lily-convert --random 11 tiny` with inputs drawn there; that script also checks its
 * rebuilt UNet against AudioSR's own forward (ref-a, 1.3e-6 relative). The same model is
 * rebuilt here (lily_train_write_random_model, seed 11: the values lily-convert writes), its
 * checksum compared with the one PyTorch loaded, and two steps of lily_diffusion_v_loss +
 * lily_adamw_step (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01, clip 1.0) are run.
 * Tolerances: losses 1e-5 relative; per-tensor gradient norms 1e-3 relative; sampled
 * gradients 1e-3 of their tensor's gradient norm; weights after two steps 1e-5 absolute (an AdamW step moves a weight by at most ~lr = 1e-3, so this is 1% of a step;
 * weights whose two gradients are both tiny can flip the sign of an update, which a 1e-5
 * bound would catch, and none does). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/train/train-test.h"
#include "train/diffusion.h"

#define PREFIX "model.diffusion_model."

static char *data_path(const char *name)
{
    const char *root = g_getenv("LILY_SOURCE_ROOT");
    g_assert_nonnull(root);
    return g_strdup_printf("%s/tests/train/data/%s.npy", root, name);
}

static void load(const char *name, LilyNpy *out)
{
    char *p = data_path(name);
    lt_load_npy(p, out);
    g_free(p);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp((*(LilyParam *const *)a)->name, (*(LilyParam *const *)b)->name);
}

typedef struct Ref {
    LilyContext *ctx;
    LilyModel *m;
    LilyTrainParams *tp;
    LilyParam **sorted; /* UNet parameters in name order, as the script lists them */
    int n;
    double losses[2];
    float *grad_sample, *grad_norm; /* after step 1 (before clipping) */
} Ref;

static void sample(const LilyParam *p, int k, const float *data, float *out)
{
    int64_t n = lily_tensor_numel(&p->t);
    for (int j = 0; j < 8; j++) out[j] = data[((int64_t)j * 7919 + (int64_t)k * 13) % n];
}

static double norm(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

static void run_steps(Ref *r)
{
    LilyContext *ctx = r->ctx;
    r->grad_sample = g_new(float, (size_t)r->n * 8);
    r->grad_norm = g_new(float, r->n);
    LilyAdamW opt = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01,
                     .grad_clip = 1.0, .ema_decay = 0.0};
    for (int step = 1; step <= 2; step++) {
        LilyNpy x0, cond, noise, t;
        char name[64];
        snprintf(name, sizeof name, "ref-step%d-x0", step);
        load(name, &x0);
        snprintf(name, sizeof name, "ref-step%d-cond", step);
        load(name, &cond);
        snprintf(name, sizeof name, "ref-step%d-noise", step);
        load(name, &noise);
        snprintf(name, sizeof name, "ref-step%d-t", step);
        load(name, &t);
        int tt[2] = {(int)((int64_t *)t.data)[0], (int)((int64_t *)t.data)[1]};
        LilyArenaMark mk = lily_arena_mark(&ctx->arena);
        LilyTensor tx, tc, tn;
        tt_ok(ctx, lily_tensor_alloc(ctx, &tx, LILY_DTYPE_F32, x0.ndim, x0.shape));
        tt_ok(ctx, lily_tensor_alloc(ctx, &tc, LILY_DTYPE_F32, cond.ndim, cond.shape));
        tt_ok(ctx, lily_tensor_alloc(ctx, &tn, LILY_DTYPE_F32, noise.ndim, noise.shape));
        tt_ok(ctx, lily_tensor_upload(ctx, &tx, x0.data));
        tt_ok(ctx, lily_tensor_upload(ctx, &tc, cond.data));
        tt_ok(ctx, lily_tensor_upload(ctx, &tn, noise.data));
        tt_ok(ctx, lily_train_params_zero_grad(ctx, r->tp));
        tt_ok(ctx, lily_diffusion_v_loss(ctx, r->m, &r->tp->set, &tx, &tc, &tn, tt, 1.0, &r->losses[step - 1]));
        lily_arena_reset(&ctx->arena, mk);
        if (step == 1) {
            for (int k = 0; k < r->n; k++) {
                int i = (int)(r->sorted[k] - r->m->params);
                const float *g = r->tp->set.grad[i].data;
                sample(r->sorted[k], k, g, r->grad_sample + (size_t)k * 8);
                r->grad_norm[k] = (float)norm(g, lily_tensor_numel(&r->sorted[k]->t));
            }
        }
        LilyStepStats stats;
        tt_ok(ctx, lily_adamw_step(ctx, r->tp, &opt, step, &stats));
        lily_npy_free(&x0);
        lily_npy_free(&cond);
        lily_npy_free(&noise);
        lily_npy_free(&t);
    }
}

static void ref_open(Ref *r)
{
    r->ctx = tt_context();
    r->m = tt_random_model(r->ctx, "tiny", 11);
    bool *tr = g_new0(bool, r->m->n_params);
    r->sorted = g_new(LilyParam *, r->m->n_params);
    for (int i = 0; i < r->m->n_params; i++)
        if (strncmp(r->m->params[i].name, PREFIX, strlen(PREFIX)) == 0) {
            tr[i] = true;
            r->sorted[r->n++] = &r->m->params[i];
        }
    qsort(r->sorted, (size_t)r->n, sizeof *r->sorted, cmp_names);
    tt_ok(r->ctx, lily_train_params_new(r->ctx, r->m->params, r->m->n_params, tr, LILY_PRECISION_F32, false, &r->tp));
    g_free(tr);
}

static void ref_close(Ref *r)
{
    g_free(r->grad_sample);
    g_free(r->grad_norm);
    g_free(r->sorted);
    lily_train_params_free(r->tp);
    lily_model_unref(r->m);
    lily_context_free(r->ctx);
}

/* The model rebuilt here is the one PyTorch loaded: same tensors in the same order, same checksum. */
static void test_same_initial_weights(void)
{
    Ref r = {0};
    ref_open(&r);
    char *names_path = g_strdup_printf("%s/tests/train/data/ref-names.txt", g_getenv("LILY_SOURCE_ROOT"));
    gchar *text = NULL;
    g_assert_true(g_file_get_contents(names_path, &text, NULL, NULL));
    gchar **lines = g_strsplit(text, "\n", -1);
    int nl = 0;
    double sum = 0;
    for (int k = 0; k < r.n; k++) {
        g_assert_cmpstr(lines[k], ==, r.sorted[k]->name);
        nl++;
        const float *w = r.sorted[k]->t.data;
        for (int64_t i = 0; i < lily_tensor_numel(&r.sorted[k]->t); i++) sum += w[i];
    }
    g_assert_cmpint(nl, ==, 1100);
    LilyNpy ck;
    load("ref-init-checksum", &ck);
    float got = (float)sum;
    lt_assert_close_rel("initial UNet weight checksum", &got, ck.data, 1, 1e-6);
    lily_npy_free(&ck);
    g_strfreev(lines);
    g_free(text);
    g_free(names_path);
    ref_close(&r);
}

/* Two training steps give PyTorch's losses, gradients (step 1) and updated weights (step 2). */
static void test_two_steps_match_pytorch(void)
{
    Ref r = {0};
    ref_open(&r);
    run_steps(&r);
    LilyNpy losses, gs, gn, ws, wn;
    load("ref-losses", &losses);
    load("ref-grad-sample", &gs);
    load("ref-grad-norm", &gn);
    load("ref-weight-sample", &ws);
    load("ref-weight-norm", &wn);
    g_assert_cmpint(gs.numel, ==, (int64_t)r.n * 8);
    float l[2] = {(float)r.losses[0], (float)r.losses[1]};
    lt_assert_close_rel("losses (steps 1, 2)", l, losses.data, 2, 1e-5);
    lt_assert_close_rel("per-tensor gradient norms, step 1", r.grad_norm, gn.data, (size_t)r.n, 1e-3);
    /* each tensor's sampled gradient, relative to that tensor's gradient norm; norms under
     * 1e-5 (the whole gradient's norm is ~1) are numerically zero gradients, e.g. the emb_layers
     * of 32-channel ResBlocks, whose per-channel shift a one-channel GroupNorm removes */
    const float *rs = gs.data, *rn = gn.data;
    double worst = 0;
    int worst_k = 0;
    for (int k = 0; k < r.n; k++)
        for (int j = 0; j < 8; j++) {
            double e = fabs((double)r.grad_sample[k * 8 + j] - rs[k * 8 + j]) / fmax(rn[k], 1e-5);
            if (e > worst) worst = e, worst_k = k;
        }
    g_test_message("sampled gradients: worst error %.3e of the tensor's norm (%s)", worst, r.sorted[worst_k]->name);
    g_assert_cmpfloat(worst, <=, 1e-3);
    float *w2 = g_new(float, (size_t)r.n * 8), *w2n = g_new(float, r.n);
    for (int k = 0; k < r.n; k++) {
        sample(r.sorted[k], k, r.sorted[k]->t.data, w2 + k * 8);
        w2n[k] = (float)norm(r.sorted[k]->t.data, lily_tensor_numel(&r.sorted[k]->t));
    }
    /* Tensors whose gradient is numerically zero (47 of them: norms ~1e-10..1e-9, the 32-channel
     * emb_layers and the biases before a one-channel GroupNorm) get Adam updates of +-lr in the
     * direction of float noise, on both sides alike: their weights may differ by up to two
     * steps (2 lr); every other weight within 2e-5. */
    int n_zero = 0;
    const float *wr = ws.data;
    float *a = g_new(float, (size_t)r.n * 8), *b = g_new(float, (size_t)r.n * 8);
    size_t na = 0;
    double zero_worst = 0;
    for (int k = 0; k < r.n; k++) {
        if (rn[k] < 1e-5) {
            n_zero++;
            for (int j = 0; j < 8; j++) zero_worst = fmax(zero_worst, fabs((double)w2[k * 8 + j] - wr[k * 8 + j]));
            continue;
        }
        memcpy(a + na, w2 + k * 8, 8 * sizeof(float));
        memcpy(b + na, wr + k * 8, 8 * sizeof(float));
        na += 8;
    }
    g_test_message("%d zero-gradient tensors: weights within %.3e (bound 2 lr = 2e-3)", n_zero, zero_worst);
    g_assert_cmpint(n_zero, <, 60);
    g_assert_cmpfloat(zero_worst, <=, 2e-3 + 1e-6);
    lt_assert_close_abs("sampled weights after step 2", a, b, na, 2e-5);
    size_t nn = 0;
    for (int k = 0; k < r.n; k++)
        if (rn[k] >= 1e-5) {
            a[nn] = w2n[k];
            b[nn] = ((const float *)wn.data)[k];
            nn++;
        }
    lt_assert_close_rel("per-tensor weight norms after step 2", a, b, nn, 1e-5);
    g_free(a);
    g_free(b);
    g_free(w2);
    g_free(w2n);
    lily_npy_free(&losses);
    lily_npy_free(&gs);
    lily_npy_free(&gn);
    lily_npy_free(&ws);
    lily_npy_free(&wn);
    ref_close(&r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/train/reference/same-initial-weights", test_same_initial_weights);
    g_test_add_func("/lily/train/reference/two-steps-match-pytorch", test_two_steps_match_pytorch);
    return g_test_run();
}
