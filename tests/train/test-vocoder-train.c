/* tests/train/test-vocoder-train.c - the HiFi-GAN generator's training forward and backward
 * (models/vocoder-train.c), the discriminators (models/discriminators.c), the mel loss
 * (train/mel-loss.c) and the vocoder stage of the training loop.
 *
 * Generator weights: the "tiny" architecture (64 initial channels) with random values (seed 8);
 * discriminators at 1/16 of HiFi-GAN's widths (grouped convolutions still grouped). The
 * training forward equals vocoder.c's exactly; every backward matches fourth-order finite
 * differences (h = 3e-3 for weights and activations, 2e-2 through the whole generator, 1e-3
 * through the discriminators and for the mel loss's waveform; error
 * below 1e-2 of the sample's largest numeric derivative). Leaky ReLUs, the L1 and the log
 * floor make these losses piecewise smooth, so elements with a kink inside the stencil are
 * detected (steps h and h/2 disagree) and replaced (tt_check_grads_pl). The stage's validation
 * mel L1 must fall within 40 steps. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/discriminators.h"
#include "models/vocoder-train.h"
#include "tests/train/train-test.h"
#include "train/mel-loss.h"
#include "train/trainer.h"

#define H 3e-3
/* the whole generator's gradients are small (1e-4 .. 1e-2) next to float32 rounding of its
 * output: a larger step, and two mel frames (976 samples) */
#define H_GEN 2e-2
/* a discriminator weight reaches ~100 leaky ReLUs per layer: a smaller step meets fewer kinks */
#define H_DISC 1e-3
#define TOL 1e-2
#define FLOOR 1e-2
#define SAMPLES 6

typedef struct Fix {
    LilyContext *ctx;
    LilyModel *m;
    LilyTrainParams *tp;
    LilyDiscriminators *d;
    LilyTrainParams *dtp;
} Fix;

static void fix_open(Fix *f)
{
    f->ctx = tt_context();
    f->m = tt_random_model(f->ctx, "tiny", 8);
    f->tp = tt_train_all(f->ctx, f->m);
    tt_ok(f->ctx, lily_discriminators_new(f->ctx, 1.0 / 16, 4, &f->d));
    tt_ok(f->ctx, lily_train_params_new(f->ctx, f->d->params, f->d->n_params, NULL, LILY_PRECISION_F32, false, &f->dtp));
}

static void fix_close(Fix *f)
{
    lily_train_params_free(f->dtp);
    lily_discriminators_free(f->d);
    lily_train_params_free(f->tp);
    lily_model_unref(f->m);
    lily_context_free(f->ctx);
}

typedef enum Kind { K_RES, K_STAGE, K_GEN, K_DISC } Kind;

typedef struct Case {
    Fix *f;
    Kind kind;
    const void *mod;
    int index; /* stage or discriminator */
    LilyTensor x;
    float *w[LILY_DISC_MAX_FMAPS]; /* projection per output (discriminators: per feature map) */
    int n_out;
    LilyVocResTape res;
    LilyVocStageTape stage;
    LilyVocoderTape *gen;
    LilyDiscTape *disc;
} Case;

/* Runs the forward; outputs into y[] (n_out of them). */
static void forward(Case *c, LilyTensor *y, int *n_out)
{
    LilyContext *ctx = c->f->ctx;
    const LilyParamSet *ps = &c->f->tp->set;
    *n_out = 1;
    switch (c->kind) {
    case K_RES: tt_ok(ctx, lily_voc_res_forward(ctx, ps, c->mod, &c->res, &c->x, &y[0])); break;
    case K_STAGE: tt_ok(ctx, lily_voc_stage_forward(ctx, c->f->m, ps, c->index, &c->stage, &c->x, &y[0])); break;
    case K_GEN: tt_ok(ctx, lily_vocoder_train_forward(ctx, c->f->m, ps, &c->x, &c->gen, &y[0])); break;
    case K_DISC: {
        LilyDiscOut o;
        tt_ok(ctx, lily_disc_forward(ctx, c->f->d, &c->f->dtp->set, c->index, &c->x, &c->disc, &o));
        for (int k = 0; k < o.n_fmaps; k++) y[k] = o.fmap[k];
        *n_out = o.n_fmaps;
        break;
    }
    }
}

static void free_tapes(Case *c)
{
    lily_vocoder_tape_free(c->gen);
    lily_disc_tape_free(c->disc);
    c->gen = NULL;
    c->disc = NULL;
}

static double loss(void *user)
{
    Case *c = user;
    LilyContext *ctx = c->f->ctx;
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor y[LILY_DISC_MAX_FMAPS];
    int n;
    forward(c, y, &n);
    double l = 0;
    for (int k = 0; k < n; k++) l += tt_dot(ctx, &y[k], c->w[k]);
    free_tapes(c);
    lily_arena_reset(&ctx->arena, m);
    return l;
}

static void run_case(const char *what, Case *c, LilyTrainParams *tp, const char *const *params, int n_params,
                     double h)
{
    LilyContext *ctx = c->f->ctx;
    tt_ok(ctx, lily_train_params_zero_grad(ctx, tp));
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor y[LILY_DISC_MAX_FMAPS], dy[LILY_DISC_MAX_FMAPS], dx;
    const LilyTensor *dyp[LILY_DISC_MAX_FMAPS];
    forward(c, y, &c->n_out);
    for (int k = 0; k < c->n_out; k++) {
        size_t n = (size_t)lily_tensor_numel(&y[k]);
        c->w[k] = g_new(float, n);
        lt_fill_uniform(c->w[k], n, 90 + (uint64_t)k, -1.0f, 1.0f);
        tt_ok(ctx, lily_nn_like(ctx, &y[k], &dy[k]));
        tt_ok(ctx, lily_tensor_upload(ctx, &dy[k], c->w[k]));
        dyp[k] = &dy[k];
    }
    switch (c->kind) {
    case K_RES: tt_ok(ctx, lily_voc_res_backward(ctx, &c->f->tp->set, &c->res, &dy[0], &dx)); break;
    case K_STAGE: tt_ok(ctx, lily_voc_stage_backward(ctx, &c->f->tp->set, &c->stage, &dy[0], &dx)); break;
    case K_GEN: tt_ok(ctx, lily_vocoder_train_backward(ctx, &c->f->tp->set, c->gen, &dy[0], &dx)); break;
    case K_DISC: tt_ok(ctx, lily_disc_backward(ctx, &c->f->dtp->set, c->disc, NULL, dyp, &dx)); break;
    }
    float *dxh = tt_download(ctx, &dx);
    free_tapes(c);
    lily_arena_reset(&ctx->arena, m);
    TtVar vars[24];
    int nv = 0;
    vars[nv++] = (TtVar){"x", c->x.data, lily_tensor_numel(&c->x), dxh};
    for (int i = 0; i < n_params; i++) vars[nv++] = tt_var(tp, params[i]);
    tt_check_grads_pl(what, vars, nv, loss, c, h, TOL, FLOOR, SAMPLES);
    g_free(dxh);
    for (int k = 0; k < c->n_out; k++) g_free(c->w[k]);
    tt_tensor_free(&c->x);
}

#define V "first_stage_model.vocoder."

/* ResBlock1 (kernel 7, dilations 1, 3, 5; lrelu 0.1 around each conv, residual): dx and weights match finite differences. */
static void test_resblock1(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_RES, .mod = &f.m->vocoder.resblocks[1]};
    c.x = TT_TENSOR(1, 1.0f, 2, 32, 16);
    static const char *const p[] = {V "resblocks.1.convs1.0.weight", V "resblocks.1.convs1.1.bias",
                                    V "resblocks.1.convs1.2.weight", V "resblocks.1.convs2.0.weight",
                                    V "resblocks.1.convs2.2.bias"};
    run_case("resblock1 k7", &c, f.tp, p, 5, H);
    fix_close(&f);
}

/* An upsampling stage (lrelu, ConvTranspose1d k10 stride 5, the mean of 4 ResBlock1s): dx and weights match. */
static void test_transposed_stage(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_STAGE, .index = 1};
    c.x = TT_TENSOR(2, 1.0f, 1, 32, 12);
    static const char *const p[] = {V "ups.1.weight", V "ups.1.bias", V "resblocks.4.convs1.0.weight",
                                    V "resblocks.7.convs2.2.weight"};
    run_case("stage 1 (convT x5 + resblocks)", &c, f.tp, p, 4, H);
    fix_close(&f);
}

/* Whole generator (conv_pre, 5 stages, lrelu 0.01, conv_post, tanh): dmel and a spread of weights match. */
static void test_whole_generator(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_GEN};
    c.x = TT_TENSOR(3, 2.0f, 1, 256, 2);
    static const char *const p[] = {V "conv_pre.weight", V "ups.0.weight", V "resblocks.2.convs1.1.weight",
                                    V "ups.3.bias", V "resblocks.17.convs2.0.weight", V "conv_post.weight",
                                    V "conv_post.bias"};
    run_case("generator", &c, f.tp, p, 7, H_GEN);
    fix_close(&f);
}

/* DiscriminatorP (period 7: reflect padding, 5 convs 5x1, conv_post): dwave and weights match through the score and every feature map. */
static void test_disc_period(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_DISC, .index = 3};
    g_assert_cmpint(f.d->mpd[3].period, ==, 7);
    c.x = TT_TENSOR(4, 0.5f, 2, 1, 300);
    static const char *const p[] = {"mpd.discriminators.3.convs.0.weight", "mpd.discriminators.3.convs.2.weight",
                                    "mpd.discriminators.3.convs.4.bias", "mpd.discriminators.3.conv_post.weight"};
    run_case("discriminator P7", &c, f.dtp, p, 4, H_DISC);
    fix_close(&f);
}

/* DiscriminatorS on the twice mean-pooled waveform (AvgPool1d(4,2,2) x2, grouped convs): dwave and weights match. */
static void test_disc_scale(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_DISC, .index = 7};
    g_assert_cmpint(f.d->msd[2].groups[2], >, 1);
    c.x = TT_TENSOR(5, 0.5f, 1, 1, 400);
    static const char *const p[] = {"msd.discriminators.2.convs.0.weight", "msd.discriminators.2.convs.1.weight",
                                    "msd.discriminators.2.convs.2.bias", "msd.discriminators.2.convs.4.weight",
                                    "msd.discriminators.2.convs.6.weight", "msd.discriminators.2.conv_post.bias"};
    run_case("discriminator S (scale 1/4)", &c, f.dtp, p, 6, H_DISC);
    fix_close(&f);
}

typedef struct MelCase {
    LilyContext *ctx;
    LilyMelLoss *ml;
    LilyTensor y;
    float *target;
    int64_t len;
} MelCase;

static double mel_loss_at(void *user)
{
    MelCase *c = user;
    double l = 0;
    tt_ok(c->ctx, lily_mel_loss(c->ctx, c->ml, &c->y, c->len, c->target, 1000.0, &l, NULL));
    return l;
}

/* The mel L1 loss (AudioSR's log-mel: reflect pad, STFT magnitude, Slaney mel, log floor): its
 * waveform gradient matches finite differences, including the 16 extra samples (zero). */
static void test_mel_loss_gradient(void)
{
    LilyContext *ctx = tt_context();
    MelCase c = {.ctx = ctx, .len = 4800};
    tt_ok(ctx, lily_mel_loss_new(ctx, &c.ml));
    c.y = TT_TENSOR(6, 0.3f, 2, 1, 4816);
    float *ref = g_new(float, 2 * 4800);
    lt_sine(ref, 2 * 4800, 440.0, 48000.0, 0.3);
    c.target = g_new(float, 2 * 10 * 256);
    tt_ok(ctx, lily_mel_loss_logmel(c.ml, ref, 2, 4800, c.target));
    LilyTensor dy;
    double l;
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    tt_ok(ctx, lily_mel_loss(ctx, c.ml, &c.y, c.len, c.target, 1000.0, &l, &dy));
    float *g = tt_download(ctx, &dy);
    lily_arena_reset(&ctx->arena, m);
    for (int i = 4800; i < 4816; i++) g_assert_cmpfloat(g[i], ==, 0.0f);
    TtVar v = {"waveform", c.y.data, 2 * 4816, g};
    tt_check_grads_pl("mel loss", &v, 1, mel_loss_at, &c, 1e-3, TOL, FLOOR, 10);
    g_free(g);
    g_free(ref);
    g_free(c.target);
    tt_tensor_free(&c.y);
    lily_mel_loss_free(c.ml);
    lily_context_free(ctx);
}

/* The generator's training forward equals vocoder.c's inference forward bit for bit. */
static void test_forward_matches_inference(void)
{
    Fix f;
    fix_open(&f);
    LilyContext *ctx = f.ctx;
    LilyTensor mel = TT_TENSOR(9, 3.0f, 2, 256, 8);
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor wi, wt;
    tt_ok(ctx, lily_vocoder_forward(ctx, f.m, &mel, &wi));
    float *a = tt_download(ctx, &wi);
    LilyVocoderTape *tape = NULL;
    tt_ok(ctx, lily_vocoder_train_forward(ctx, f.m, &f.tp->set, &mel, &tape, &wt));
    float *b = tt_download(ctx, &wt);
    g_assert_cmpint(wt.shape[2], ==, 480 * 8 + 16);
    lt_assert_close_abs("generator: train vs inference", b, a, (size_t)lily_tensor_numel(&wt), 0.0);
    lily_vocoder_tape_free(tape);
    lily_arena_reset(&ctx->arena, m);
    g_free(a);
    g_free(b);
    tt_tensor_free(&mel);
    fix_close(&f);
}

/* vocoder stage (GAN: MPD + MSD at 1/16 width): the validation mel L1 falls to under 85% within 40 steps. */
static void test_vocoder_loss_falls(void)
{
    LilyContext *ctx = tt_context();
    char *ds = g_strdup_printf("%s/ds", lt_tmpdir());
    tt_make_dataset(ctx, ds, 8, 3.2, 0.64, 7);
    LilyProjectConfig c;
    tt_stage_config(&c, ds, LILY_TRAIN_STAGE_VOCODER, "voc");
    c.train.learning_rate = 5e-4;
    c.train.adam_beta1 = 0.8;
    c.train.adam_beta2 = 0.99;
    c.train.warmup_steps = 0;
    c.train.max_steps = 40;
    c.train.disc_width = 1.0 / 16;
    TtRun r;
    tt_train_run(ctx, &c, 40, 5, &r);
    /* parts: 0 mel L1, 3 discriminator loss */
    g_test_message("vocoder: validation mel L1 %.5f -> %.5f (ratio %.3f, bound 0.85); training mel L1 %.5f -> "
                   "%.5f; discriminator loss %.4f -> %.4f; LSD %.3f -> %.3f (input %.3f)",
                   r.v0.loss, r.v1.loss, r.v1.loss / r.v0.loss, r.first_parts[0], r.last_parts[0],
                   r.first_parts[3], r.last_parts[3], r.v0.lsd, r.v1.lsd, r.v1.lsd_input);
    g_assert_cmpfloat(r.v1.loss, <, 0.85 * r.v0.loss);
    g_assert_cmpfloat(r.last_parts[0], <, r.first_parts[0]);
    g_free(ds);
    lily_context_free(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/train/vocoder/forward-matches-inference", test_forward_matches_inference);
    g_test_add_func("/lily/train/vocoder/grad-resblock1", test_resblock1);
    g_test_add_func("/lily/train/vocoder/grad-transposed-conv-stage", test_transposed_stage);
    g_test_add_func("/lily/train/vocoder/grad-whole-generator", test_whole_generator);
    g_test_add_func("/lily/train/vocoder/grad-discriminator-period", test_disc_period);
    g_test_add_func("/lily/train/vocoder/grad-discriminator-scale", test_disc_scale);
    g_test_add_func("/lily/train/vocoder/grad-mel-loss", test_mel_loss_gradient);
    g_test_add_func("/lily/train/vocoder/loss-falls", test_vocoder_loss_falls);
    return g_test_run();
}
