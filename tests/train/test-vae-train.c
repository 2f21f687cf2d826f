/* tests/train/test-vae-train.c - the VAE's training forward and backward (models/vae-train.c)
 * and the vae stage of the training loop.
 *
 * Weights: the "tiny" architecture (VAE 32 channels, [1,1,1,2]) with random values (seed 6).
 * The training forwards equal vae.c's inference forwards exactly; each block's backward and
 * the whole encoder's and decoder's match fourth-order finite differences (h = 1e-2, error
 * below 1e-2 of the sample's largest numeric derivative; see train-test.h). The stage's
 * validation loss (reconstruction L1 + KL on fixed draws) must fall to under 70% within 40
 * steps on the synthetic dataset. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/vae-train.h"
#include "tests/train/train-test.h"
#include "train/trainer.h"

#define H 1e-2
#define TOL 1e-2
#define FLOOR 1e-2
#define SAMPLES 6

typedef struct Fix {
    LilyContext *ctx;
    LilyModel *m;
    LilyTrainParams *tp;
} Fix;

static void fix_open(Fix *f)
{
    f->ctx = tt_context();
    f->m = tt_random_model(f->ctx, "tiny", 6);
    f->tp = tt_train_all(f->ctx, f->m);
}

static void fix_close(Fix *f)
{
    lily_train_params_free(f->tp);
    lily_model_unref(f->m);
    lily_context_free(f->ctx);
}

typedef enum Kind { K_RES, K_ATTN, K_DOWN, K_UP, K_ENC, K_DEC } Kind;

typedef struct Case {
    Fix *f;
    Kind kind;
    const void *mod;
    LilyTensor x;
    float *wout, *wout2; /* K_ENC: weights of mean and logvar */
    LilyVResTape res;
    LilyVAttnTape attn;
    LilyTConv conv;
    LilyVaeEncoderTape *enc;
    LilyVaeDecoderTape *dec;
} Case;

static void forward(Case *c, LilyTensor *y, LilyTensor *y2)
{
    LilyContext *ctx = c->f->ctx;
    const LilyParamSet *ps = &c->f->tp->set;
    LilyModel *m = c->f->m;
    switch (c->kind) {
    case K_RES: tt_ok(ctx, lily_vae_res_forward(ctx, ps, c->mod, &c->res, &c->x, y)); break;
    case K_ATTN: tt_ok(ctx, lily_vae_attn_forward(ctx, ps, c->mod, &c->attn, &c->x, y)); break;
    case K_DOWN: tt_ok(ctx, lily_vae_down_forward(ctx, ps, c->mod, &c->conv, &c->x, y)); break;
    case K_UP: tt_ok(ctx, lily_vae_up_forward(ctx, ps, c->mod, &c->conv, &c->x, y)); break;
    case K_ENC:
        tt_ok(ctx, lily_vae_encode_train(ctx, m, ps, &m->encoder, &m->cfg.vae, &c->x, &c->enc, y, y2));
        break;
    case K_DEC: tt_ok(ctx, lily_vae_decode_train(ctx, m, ps, &c->x, &c->dec, y)); break;
    }
}

static void free_tapes(Case *c)
{
    lily_vae_encoder_tape_free(c->enc);
    lily_vae_decoder_tape_free(c->dec);
    c->enc = NULL;
    c->dec = NULL;
}

static double loss(void *user)
{
    Case *c = user;
    LilyContext *ctx = c->f->ctx;
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor y, y2;
    forward(c, &y, &y2);
    double l = tt_dot(ctx, &y, c->wout);
    if (c->kind == K_ENC) l += tt_dot(ctx, &y2, c->wout2);
    free_tapes(c);
    lily_arena_reset(&ctx->arena, m);
    return l;
}

static void run_case(const char *what, Case *c, const char *const *params, int n_params)
{
    Fix *f = c->f;
    LilyContext *ctx = f->ctx;
    const LilyParamSet *ps = &f->tp->set;
    tt_ok(ctx, lily_train_params_zero_grad(ctx, f->tp));
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor y, y2, dy, dy2, dx;
    forward(c, &y, &y2);
    size_t ny = (size_t)lily_tensor_numel(&y);
    c->wout = g_new(float, ny);
    lt_fill_uniform(c->wout, ny, 97, -1.0f, 1.0f);
    tt_ok(ctx, lily_nn_like(ctx, &y, &dy));
    tt_ok(ctx, lily_tensor_upload(ctx, &dy, c->wout));
    switch (c->kind) {
    case K_RES: tt_ok(ctx, lily_vae_res_backward(ctx, ps, &c->res, &dy, &dx)); break;
    case K_ATTN: tt_ok(ctx, lily_vae_attn_backward(ctx, ps, &c->attn, &dy, &dx)); break;
    case K_DOWN: tt_ok(ctx, lily_t_conv_backward(ctx, ps, &c->conv, &dy, &dx)); break;
    case K_UP: tt_ok(ctx, lily_vae_up_backward(ctx, ps, &c->conv, &dy, &dx)); break;
    case K_ENC:
        c->wout2 = g_new(float, ny);
        lt_fill_uniform(c->wout2, ny, 96, -1.0f, 1.0f);
        tt_ok(ctx, lily_nn_like(ctx, &y2, &dy2));
        tt_ok(ctx, lily_tensor_upload(ctx, &dy2, c->wout2));
        tt_ok(ctx, lily_vae_encode_backward(ctx, ps, c->enc, &dy, &dy2, &dx));
        break;
    case K_DEC: tt_ok(ctx, lily_vae_decode_backward(ctx, ps, c->dec, &dy, &dx)); break;
    }
    float *dxh = tt_download(ctx, &dx);
    free_tapes(c);
    lily_arena_reset(&ctx->arena, m);
    TtVar vars[24];
    int nv = 0;
    vars[nv++] = (TtVar){"x", c->x.data, lily_tensor_numel(&c->x), dxh};
    for (int i = 0; i < n_params; i++) vars[nv++] = tt_var(f->tp, params[i]);
    tt_check_grads(what, vars, nv, loss, c, H, TOL, FLOOR, SAMPLES);
    g_free(dxh);
    g_free(c->wout);
    g_free(c->wout2);
    tt_tensor_free(&c->x);
}

#define E "first_stage_model.encoder."
#define DC "first_stage_model.decoder."

/* VAE ResnetBlock with a 1x1 nin_shortcut (32 -> 64): dx and every parameter match finite differences. */
static void test_resnet_block_shortcut(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_RES, .mod = &f.m->encoder.down[3].block[0]};
    c.x = TT_TENSOR(1, 1.0f, 2, 32, 4, 3);
    static const char *const p[] = {E "down.3.block.0.norm1.weight", E "down.3.block.0.norm1.bias",
                                    E "down.3.block.0.conv1.weight", E "down.3.block.0.conv1.bias",
                                    E "down.3.block.0.norm2.weight", E "down.3.block.0.norm2.bias",
                                    E "down.3.block.0.conv2.weight", E "down.3.block.0.conv2.bias",
                                    E "down.3.block.0.nin_shortcut.weight", E "down.3.block.0.nin_shortcut.bias"};
    run_case("vae resnet 32->64", &c, p, 10);
    fix_close(&f);
}

/* VAE ResnetBlock with an identity skip (64 channels, 2 per GroupNorm group): dx and weights match finite differences. */
static void test_resnet_block_identity(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_RES, .mod = &f.m->decoder.mid_block_1};
    c.x = TT_TENSOR(2, 1.0f, 2, 64, 3, 3);
    static const char *const p[] = {DC "mid.block_1.norm1.weight", DC "mid.block_1.conv1.weight",
                                    DC "mid.block_1.norm2.bias", DC "mid.block_1.conv2.weight"};
    run_case("vae resnet 64", &c, p, 4);
    fix_close(&f);
}

/* AttnBlock (single-head attention over h*w positions, 1x1 q/k/v/proj_out): dx and weights match finite differences. */
static void test_attn_block(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_ATTN, .mod = &f.m->encoder.mid_attn_1};
    c.x = TT_TENSOR(3, 1.0f, 2, 64, 2, 3);
    static const char *const p[] = {E "mid.attn_1.norm.weight", E "mid.attn_1.norm.bias", E "mid.attn_1.q.weight",
                                    E "mid.attn_1.k.weight", E "mid.attn_1.v.weight", E "mid.attn_1.v.bias",
                                    E "mid.attn_1.proj_out.weight", E "mid.attn_1.proj_out.bias"};
    run_case("vae attn block", &c, p, 8);
    fix_close(&f);
}

/* Downsample (pad right/bottom, conv 3x3 stride 2) and Upsample (nearest x2, conv): dx and weights match. */
static void test_down_up(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_DOWN, .mod = &f.m->encoder.down[0].resample};
    c.x = TT_TENSOR(4, 1.0f, 1, 32, 5, 6);
    static const char *const pd[] = {E "down.0.downsample.conv.weight", E "down.0.downsample.conv.bias"};
    run_case("vae downsample", &c, pd, 2);
    Case u = {.f = &f, .kind = K_UP, .mod = &f.m->decoder.up[1].resample};
    u.x = TT_TENSOR(5, 1.0f, 1, 32, 3, 4);
    static const char *const pu[] = {DC "up.1.upsample.conv.weight", DC "up.1.upsample.conv.bias"};
    run_case("vae upsample", &u, pu, 2);
    fix_close(&f);
}

/* Whole encoder (mel -> mean, clamped logvar): dmel and a spread of parameters match finite differences. */
static void test_whole_encoder(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_ENC};
    c.x = TT_TENSOR(6, 1.0f, 1, 1, 16, 32);
    static const char *const p[] = {E "conv_in.weight", E "down.0.block.1.conv2.weight", E "down.1.downsample.conv.bias",
                                    E "down.2.block.0.norm1.weight", E "down.3.block.1.conv1.weight",
                                    E "mid.attn_1.k.weight", E "mid.block_2.norm2.weight", E "norm_out.bias",
                                    E "conv_out.weight", "first_stage_model.quant_conv.weight",
                                    "first_stage_model.quant_conv.bias"};
    run_case("vae encoder", &c, p, 11);
    fix_close(&f);
}

/* Whole decoder (post_quant_conv ... conv_out): dz and a spread of parameters match finite differences. */
static void test_whole_decoder(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_DEC};
    c.x = TT_TENSOR(7, 1.0f, 1, 16, 2, 4);
    static const char *const p[] = {"first_stage_model.post_quant_conv.weight", DC "conv_in.weight",
                                    DC "mid.attn_1.q.weight", DC "up.3.block.2.conv1.weight",
                                    DC "up.2.block.0.nin_shortcut.weight", DC "up.2.upsample.conv.weight",
                                    DC "up.0.block.2.norm2.weight", DC "norm_out.weight", DC "conv_out.bias"};
    run_case("vae decoder", &c, p, 9);
    fix_close(&f);
}

/* The training forwards equal the inference forwards (vae.c) bit for bit. */
static void test_forward_matches_inference(void)
{
    Fix f;
    fix_open(&f);
    LilyContext *ctx = f.ctx;
    LilyModel *m = f.m;
    LilyTensor x = TT_TENSOR(8, 3.0f, 2, 1, 64, 256);
    LilyArenaMark mk = lily_arena_mark(&ctx->arena);
    LilyTensor mi, li, mt, lt2, zi, zt;
    tt_ok(ctx, lily_vae_encode(ctx, m, &m->encoder, &x, &mi, &li));
    float *a = tt_download(ctx, &mi), *b = tt_download(ctx, &li);
    LilyVaeEncoderTape *et = NULL;
    tt_ok(ctx, lily_vae_encode_train(ctx, m, &f.tp->set, &m->encoder, &m->cfg.vae, &x, &et, &mt, &lt2));
    float *c = tt_download(ctx, &mt), *d = tt_download(ctx, &lt2);
    lt_assert_close_abs("encode mean: train vs inference", c, a, (size_t)lily_tensor_numel(&mt), 0.0);
    lt_assert_close_abs("encode logvar: train vs inference", d, b, (size_t)lily_tensor_numel(&lt2), 0.0);
    tt_ok(ctx, lily_vae_decode(ctx, m, &mt, &zi));
    float *e = tt_download(ctx, &zi);
    LilyVaeDecoderTape *dt = NULL;
    tt_ok(ctx, lily_vae_decode_train(ctx, m, &f.tp->set, &mt, &dt, &zt));
    float *g = tt_download(ctx, &zt);
    lt_assert_close_abs("decode: train vs inference", g, e, (size_t)lily_tensor_numel(&zt), 0.0);
    lily_vae_encoder_tape_free(et);
    lily_vae_decoder_tape_free(dt);
    lily_arena_reset(&ctx->arena, mk);
    g_free(a);
    g_free(b);
    g_free(c);
    g_free(d);
    g_free(e);
    g_free(g);
    tt_tensor_free(&x);
    fix_close(&f);
}

/* vae stage: the validation loss (L1 + KL on fixed draws) falls to under 70% within 40 steps. */
static void test_vae_loss_falls(void)
{
    LilyContext *ctx = tt_context();
    char *ds = g_strdup_printf("%s/ds", lt_tmpdir());
    tt_make_dataset(ctx, ds, 8, 3.2, 0.64, 7);
    LilyProjectConfig c;
    tt_stage_config(&c, ds, LILY_TRAIN_STAGE_VAE, "vae");
    c.train.learning_rate = 1e-3;
    c.train.warmup_steps = 5;
    c.train.max_steps = 40;
    TtRun r;
    tt_train_run(ctx, &c, 40, 5, &r);
    g_test_message("vae: validation loss %.5f -> %.5f (ratio %.3f, bound 0.70); training loss %.5f -> %.5f; "
                   "LSD of the vocoded reconstruction %.3f -> %.3f (input %.3f)",
                   r.v0.loss, r.v1.loss, r.v1.loss / r.v0.loss, r.first, r.last, r.v0.lsd, r.v1.lsd,
                   r.v1.lsd_input);
    g_assert_cmpfloat(r.v1.loss, <, 0.70 * r.v0.loss);
    g_assert_cmpfloat(r.last, <, r.first);
    g_free(ds);
    lily_context_free(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/train/vae/forward-matches-inference", test_forward_matches_inference);
    g_test_add_func("/lily/train/vae/grad-resnet-block-shortcut", test_resnet_block_shortcut);
    g_test_add_func("/lily/train/vae/grad-resnet-block-identity", test_resnet_block_identity);
    g_test_add_func("/lily/train/vae/grad-attn-block", test_attn_block);
    g_test_add_func("/lily/train/vae/grad-down-up-sample", test_down_up);
    g_test_add_func("/lily/train/vae/grad-whole-encoder", test_whole_encoder);
    g_test_add_func("/lily/train/vae/grad-whole-decoder", test_whole_decoder);
    g_test_add_func("/lily/train/vae/loss-falls", test_vae_loss_falls);
    return g_test_run();
}
