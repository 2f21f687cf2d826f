/* tests/train/test-train-loop.c - the training loop (engine/train/trainer.c and the stages) on
 * a tiny dataset made at test time: 8 synthetic harmonic sources of 3.2 s, 0.64 s segments,
 * AudioSR's random low-pass as the low side, the "tiny" architecture with random weights.
 *
 * What is proved: the validation loss (fixed draws, so comparable between steps) of each stage
 * falls by a stated fraction within a few hundred steps; a run stopped, saved and resumed
 * produces bit for bit the losses and weights of an uninterrupted run; gradient accumulation
 * over two half batches gives the gradient of the whole batch; bf16 mixed precision trains. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tests/train/train-test.h"
#include "train/diffusion.h"
#include "train/trainer.h"

static const char *dataset(LilyContext *ctx)
{
    static char *dir;
    if (!dir) {
        dir = g_strdup_printf("%s/ds", lt_tmpdir());
        tt_make_dataset(ctx, dir, 8, 3.2, 0.64, 7);
    }
    return dir;
}

static void config(LilyContext *ctx, LilyProjectConfig *c, LilyTrainStage stage, const char *out)
{
    tt_stage_config(c, dataset(ctx), stage, out);
    LilyTrainConfig *t = &c->train;
    t->batch_size = 4;
    t->learning_rate = 1e-3;
    t->min_learning_rate = 1e-4;
    t->warmup_steps = 10;
    t->max_steps = 150;
    t->ema_decay = 0.999;
    t->validation_steps = 2;
    t->seed = 99;
}

static LilyTrainer *trainer(LilyContext *ctx, const LilyProjectConfig *c, const char *resume)
{
    LilyTrainerOptions o = {.cfg = c, .resume = resume};
    LilyTrainer *t = NULL;
    tt_ok(ctx, lily_trainer_new(ctx, &o, &t));
    return t;
}

/* Runs `steps` steps; returns the mean loss of the first and last `window` steps. */
static void run(LilyContext *ctx, LilyTrainer *t, int steps, int window, double *first, double *last)
{
    double a = 0, b = 0;
    for (int i = 0; i < steps; i++) {
        LilyTrainStepInfo info;
        tt_ok(ctx, lily_trainer_step(t, &info));
        if (i < window) a += info.loss;
        if (i >= steps - window) b += info.loss;
    }
    if (first) *first = a / window;
    if (last) *last = b / window;
}

static void loss_falls(LilyTrainStage stage, const char *out, int steps, double lr, double max_ratio)
{
    LilyContext *ctx = tt_context();
    LilyProjectConfig c;
    config(ctx, &c, stage, out);
    c.train.max_steps = steps;
    c.train.learning_rate = lr;
    TtRun r;
    tt_train_run(ctx, &c, steps, 10, &r);
    g_test_message("%s: validation loss %.5f -> %.5f after %d steps (ratio %.3f, bound %.2f); training "
                   "loss %.5f (first 10) -> %.5f (last 10); LSD %.3f -> %.3f (input %.3f)",
                   lily_train_stage_name(stage), r.v0.loss, r.v1.loss, steps, r.v1.loss / r.v0.loss, max_ratio,
                   r.first, r.last, r.v0.lsd, r.v1.lsd, r.v1.lsd_input);
    g_assert_cmpfloat(r.v1.loss, <, max_ratio * r.v0.loss);
    g_assert_cmpfloat(r.last, <, r.first);
    lily_context_free(ctx);
}

/* UNet stage: the v-loss on fixed validation draws (all 5 validation segments) falls to under
 * 90% within 150 steps. (What is left is mostly irreducible here: the random first-stage
 * encoder gives posteriors whose sampling noise no UNet can predict.) */
static void test_unet_loss_falls(void) { loss_falls(LILY_TRAIN_STAGE_UNET, "unet-falls", 150, 1e-3, 0.90); }

/* Stopping after 5 steps, saving and resuming gives the per-step losses and final weights
 * (and EMA) of an uninterrupted 12-step run, bit for bit. */
static void test_unet_resume_exact(void)
{
    LilyContext *ctx = tt_context();
    LilyProjectConfig c;
    config(ctx, &c, LILY_TRAIN_STAGE_UNET, "resume-a");
    c.train.max_steps = 12;
    double la[12], lb[12];
    LilyTrainer *a = trainer(ctx, &c, NULL);
    for (int i = 0; i < 12; i++) {
        LilyTrainStepInfo info;
        tt_ok(ctx, lily_trainer_step(a, &info));
        la[i] = info.loss;
    }
    tt_ok(ctx, lily_trainer_save(a, NULL, NULL));
    lily_trainer_free(a);
    snprintf(c.train.out_dir, sizeof c.train.out_dir, "%s/resume-b", lt_tmpdir());
    LilyTrainer *b = trainer(ctx, &c, NULL);
    for (int i = 0; i < 5; i++) {
        LilyTrainStepInfo info;
        tt_ok(ctx, lily_trainer_step(b, &info));
        lb[i] = info.loss;
    }
    tt_ok(ctx, lily_trainer_save(b, NULL, NULL));
    lily_trainer_free(b);
    b = trainer(ctx, &c, c.train.out_dir);
    g_assert_cmpint(lily_trainer_steps_done(b), ==, 5);
    for (int i = 5; i < 12; i++) {
        LilyTrainStepInfo info;
        tt_ok(ctx, lily_trainer_step(b, &info));
        lb[i] = info.loss;
    }
    tt_ok(ctx, lily_trainer_save(b, NULL, NULL));
    lily_trainer_free(b);
    int same = 0;
    for (int i = 0; i < 12; i++) {
        g_test_message("step %2d: uninterrupted %.9g, resumed %.9g", i + 1, la[i], lb[i]);
        same += la[i] == lb[i];
    }
    g_assert_cmpint(same, ==, 12);
    /* the checkpoints (weights, Adam moments, EMA) and the exported models are identical */
    const char *files[2] = {"checkpoint.safetensors", "model.safetensors"};
    for (int f = 0; f < 2; f++) {
        char *pa = g_strdup_printf("%s/resume-a/%s", lt_tmpdir(), files[f]);
        char *pb = g_strdup_printf("%s/resume-b/%s", lt_tmpdir(), files[f]);
        LilyWeights *wa, *wb;
        tt_ok(ctx, lily_weights_open(ctx, pa, &wa));
        tt_ok(ctx, lily_weights_open(ctx, pb, &wb));
        g_assert_cmpint(lily_weights_count(wa), ==, lily_weights_count(wb));
        int differ = 0;
        for (int i = 0; i < lily_weights_count(wa); i++) {
            const LilyWeight *x = lily_weights_at(wa, i), *y = lily_weights_find(wb, x->name);
            g_assert_nonnull(y);
            differ += x->nbytes != y->nbytes || memcmp(x->data, y->data, x->nbytes) != 0;
        }
        g_test_message("%s: %d tensors, %d differ", files[f], lily_weights_count(wa), differ);
        g_assert_cmpint(differ, ==, 0);
        lily_weights_close(wa);
        lily_weights_close(wb);
        g_free(pa);
        g_free(pb);
    }
    lily_context_free(ctx);
}

/* Gradients accumulated over two half batches (loss scale 1/2 each) equal the whole batch's
 * gradient (relative 1e-5 of the gradient norm: float summation order only). */
static void test_grad_accumulation(void)
{
    LilyContext *ctx = tt_context();
    LilyModel *m = tt_random_model(ctx, "tiny", 3);
    LilyTrainParams *tp = tt_train_all(ctx, m);
    LilyTensor x0 = TT_TENSOR(1, 1.5f, 4, 16, 8, 32), c = TT_TENSOR(2, 1.0f, 4, 16, 8, 32),
               e = TT_TENSOR(3, 1.5f, 4, 16, 8, 32);
    int t[4] = {10, 300, 650, 990};
    double l;
    tt_ok(ctx, lily_train_params_zero_grad(ctx, tp));
    tt_ok(ctx, lily_diffusion_v_loss(ctx, m, &tp->set, &x0, &c, &e, t, 1.0, &l));
    int64_t total = 0;
    for (int i = 0; i < m->n_params; i++) total += lily_tensor_numel(&m->params[i].t);
    float *full = g_new(float, total), *acc = g_new(float, total);
    for (int i = 0, off = 0; i < m->n_params; off += (int)lily_tensor_numel(&m->params[i].t), i++)
        memcpy(full + off, tp->set.grad[i].data, lily_tensor_nbytes(&m->params[i].t));
    tt_ok(ctx, lily_train_params_zero_grad(ctx, tp));
    double la = 0, lb = 0;
    for (int h = 0; h < 2; h++) {
        size_t per = (size_t)2 * 16 * 8 * 32;
        LilyTensor hx = x0, hc = c, he = e;
        hx.shape[0] = hc.shape[0] = he.shape[0] = 2;
        hx.data = (float *)x0.data + h * per;
        hc.data = (float *)c.data + h * per;
        he.data = (float *)e.data + h * per;
        tt_ok(ctx, lily_diffusion_v_loss(ctx, m, &tp->set, &hx, &hc, &he, t + 2 * h, 0.5, h ? &lb : &la));
    }
    for (int i = 0, off = 0; i < m->n_params; off += (int)lily_tensor_numel(&m->params[i].t), i++)
        memcpy(acc + off, tp->set.grad[i].data, lily_tensor_nbytes(&m->params[i].t));
    g_assert_cmpfloat(fabs(la + lb - l), <=, 1e-6 * l);
    LtErr err = lt_compare(acc, full, (size_t)total);
    double n = 0;
    for (int64_t i = 0; i < total; i++) n += (double)full[i] * full[i];
    g_test_message("accumulated vs whole-batch gradient: max error %.3e, gradient norm %.4f", err.max_abs, sqrt(n));
    g_assert_cmpfloat(err.max_abs, <=, 1e-5 * sqrt(n));
    g_free(full);
    g_free(acc);
    tt_tensor_free(&x0);
    tt_tensor_free(&c);
    tt_tensor_free(&e);
    lily_train_params_free(tp);
    lily_model_unref(m);
    lily_context_free(ctx);
}

/* bf16 mixed precision (bf16 compute copies, f32 masters and state): the first step's loss is
 * the f32 run's within 2e-2 (bf16 products), and the training loss falls over 40 steps. */
static void test_unet_bf16(void)
{
    LilyContext *ctx = tt_context();
    LilyProjectConfig c;
    config(ctx, &c, LILY_TRAIN_STAGE_UNET, "bf16-f32");
    c.train.max_steps = 40;
    LilyTrainer *t = trainer(ctx, &c, NULL);
    LilyTrainStepInfo i32, i16;
    tt_ok(ctx, lily_trainer_step(t, &i32));
    lily_trainer_free(t);
    snprintf(c.train.out_dir, sizeof c.train.out_dir, "%s/bf16", lt_tmpdir());
    c.train.precision = LILY_PRECISION_BF16;
    t = trainer(ctx, &c, NULL);
    tt_ok(ctx, lily_trainer_step(t, &i16));
    g_test_message("first-step loss: f32 %.6f, bf16 %.6f", i32.loss, i16.loss);
    g_assert_cmpfloat(fabs(i16.loss - i32.loss), <=, 2e-2 * i32.loss);
    double first, last;
    run(ctx, t, 39, 8, &first, &last);
    g_test_message("bf16 training loss %.5f (first 8) -> %.5f (last 8)", first, last);
    g_assert_cmpfloat(last, <, first);
    lily_trainer_free(t);
    lily_context_free(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/train/loop/unet-loss-falls", test_unet_loss_falls);
    g_test_add_func("/lily/train/loop/unet-resume-exact", test_unet_resume_exact);
    g_test_add_func("/lily/train/loop/grad-accumulation-equals-full-batch", test_grad_accumulation);
    g_test_add_func("/lily/train/loop/unet-bf16-trains", test_unet_bf16);
    return g_test_run();
}
