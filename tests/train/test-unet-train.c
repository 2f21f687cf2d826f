/* tests/train/test-unet-train.c - the UNet's training forward and backward (models/unet-train.c).
 *
 * Weights: the "tiny" architecture (tiny-a's widths: 32 channels, [1,1,1,2], 32-channel heads)
 * with lily-convert's random values (seed 5). The training forward must equal the inference
 * forward (models/unet.c, itself checked against AudioSR) exactly; every block's backward must
 * match fourth-order finite differences of its own forward: relative error (max |analytic -
 * numeric| over the largest |numeric| of the sample) below 1e-2 at h = 1e-2. The error budget:
 * float32 rounding of the loss (~1e-7 of its terms, divided by 12h) and the O(h^4) stencil
 * truncation; measured errors are printed by each case (typically 1e-4 to 1e-3). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/unet-train.h"
#include "tests/train/train-test.h"

#define H 1e-2
#define TOL 1e-2
#define FLOOR 1e-2
#define SAMPLES 6
/* The whole UNet sums 4096 outputs: its loss carries more float32 rounding, so a larger step
 * (the stencil's h^4 truncation stays far below) and a higher zero-gradient floor. */
#define H_UNET 3e-2
#define FLOOR_UNET 1e-1

typedef struct Fix {
    LilyContext *ctx;
    LilyModel *m;
    LilyTrainParams *tp;
} Fix;

static void fix_open(Fix *f)
{
    f->ctx = tt_context();
    f->m = tt_random_model(f->ctx, "tiny", 5);
    f->tp = tt_train_all(f->ctx, f->m);
}

static void fix_close(Fix *f)
{
    lily_train_params_free(f->tp);
    lily_model_unref(f->m);
    lily_context_free(f->ctx);
}

/* ---------------------------------------------------------------------------------------- */
/* A generic block case: y = f(x, emb) for one of the block kinds                           */
/* ---------------------------------------------------------------------------------------- */
typedef enum Kind { K_RES, K_ATTN, K_FF, K_ST, K_BLOCK, K_TIME } Kind;

typedef struct Case {
    Fix *f;
    Kind kind;
    const void *mod;    /* the module */
    int heads, dim_head;
    LilyTensor x, emb;  /* inputs (emb: ResBlocks and blocks) */
    const int *t;       /* K_TIME */
    float *wout;
    int64_t ny;
    /* tapes */
    LilyUResTape res;
    LilyUAttnTape attn;
    LilyUTBlockTape tb;
    LilyUSTTape st;
    LilyUBlockTape blk;
    LilyUTimeTape time;
} Case;

static LilyStatus case_forward(Case *c, LilyTensor *y)
{
    LilyContext *ctx = c->f->ctx;
    const LilyParamSet *ps = &c->f->tp->set;
    switch (c->kind) {
    case K_RES: return lily_unet_res_forward(ctx, ps, c->mod, &c->res, &c->x, &c->emb, y);
    case K_ATTN: return lily_unet_attn_forward(ctx, ps, c->mod, c->heads, c->dim_head, &c->attn, &c->x, y);
    case K_FF: return lily_unet_ff_forward(ctx, ps, c->mod, &c->tb, &c->x, y);
    case K_ST: return lily_unet_st_forward(ctx, ps, c->mod, &c->st, &c->x, y);
    case K_BLOCK: return lily_unet_block_forward(ctx, ps, c->mod, &c->blk, &c->x, &c->emb, y);
    case K_TIME:
        return lily_unet_time_forward(ctx, ps, c->mod, c->f->m->cfg.unet.model_channels, c->t,
                                      (int)c->x.shape[0], &c->time, y);
    }
    return LILY_ERR_INTERNAL;
}

static double case_loss(void *user)
{
    Case *c = user;
    LilyContext *ctx = c->f->ctx;
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor y;
    tt_ok(ctx, case_forward(c, &y));
    double l = tt_dot(ctx, &y, c->wout);
    lily_arena_reset(&ctx->arena, m);
    return l;
}

/* Runs forward + backward once; returns dx (host, g_free) and d_emb in *demb_out. */
static float *case_backward(Case *c, float **demb_out)
{
    Fix *f = c->f;
    LilyContext *ctx = f->ctx;
    tt_ok(ctx, lily_train_params_zero_grad(ctx, f->tp));
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor y, dy, dx, demb;
    const LilyParamSet *ps = &f->tp->set;
    tt_ok(ctx, case_forward(c, &y));
    c->ny = lily_tensor_numel(&y);
    if (!c->wout) {
        c->wout = g_new(float, c->ny);
        lt_fill_uniform(c->wout, (size_t)c->ny, 99, -1.0f, 1.0f);
    }
    tt_ok(ctx, lily_nn_like(ctx, &y, &dy));
    tt_ok(ctx, lily_tensor_upload(ctx, &dy, c->wout));
    float *dxh = NULL;
    *demb_out = NULL;
    bool has_emb = c->kind == K_RES || c->kind == K_BLOCK;
    if (has_emb) tt_ok(ctx, lily_t_zeros_like(ctx, &c->emb, &demb));
    switch (c->kind) {
    case K_RES: tt_ok(ctx, lily_unet_res_backward(ctx, ps, &c->res, &dy, &demb, &dx)); break;
    case K_ATTN: tt_ok(ctx, lily_unet_attn_backward(ctx, ps, &c->attn, &dy, &dx)); break;
    case K_FF: tt_ok(ctx, lily_unet_ff_backward(ctx, ps, &c->tb, &dy, &dx)); break;
    case K_ST: tt_ok(ctx, lily_unet_st_backward(ctx, ps, &c->st, &dy, &dx)); break;
    case K_BLOCK: tt_ok(ctx, lily_unet_block_backward(ctx, ps, &c->blk, &dy, &demb, &dx)); break;
    case K_TIME: tt_ok(ctx, lily_unet_time_backward(ctx, ps, &c->time, &dy)); break;
    }
    if (c->kind != K_TIME) dxh = tt_download(ctx, &dx);
    if (has_emb) *demb_out = tt_download(ctx, &demb);
    lily_arena_reset(&ctx->arena, m);
    return dxh;
}

/* Checks dx, d_emb and the gradients of the listed parameters. */
static void run_case(const char *what, Case *c, const char *const *params, int n_params)
{
    float *demb = NULL;
    float *dx = case_backward(c, &demb);
    TtVar vars[40];
    int nv = 0;
    if (dx) vars[nv++] = (TtVar){"x", c->x.data, lily_tensor_numel(&c->x), dx};
    if (demb) vars[nv++] = (TtVar){"emb", c->emb.data, lily_tensor_numel(&c->emb), demb};
    for (int i = 0; i < n_params; i++) vars[nv++] = tt_var(c->f->tp, params[i]);
    tt_check_grads(what, vars, nv, case_loss, c, H, TOL, FLOOR, SAMPLES);
    g_free(dx);
    g_free(demb);
    g_free(c->wout);
}

#define D "model.diffusion_model."

/* ResBlock with a 1x1 skip (32 -> 64 channels): dx, d_emb and every parameter match finite differences. */
static void test_resblock_skip(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_RES, .mod = &f.m->unet.input[10].res};
    c.x = TT_TENSOR(1, 1.0f, 2, 32, 4, 3);
    c.emb = TT_TENSOR(2, 1.0f, 2, 128);
    static const char *const p[] = {
        D "input_blocks.10.0.in_layers.0.weight", D "input_blocks.10.0.in_layers.0.bias",
        D "input_blocks.10.0.in_layers.2.weight", D "input_blocks.10.0.in_layers.2.bias",
        D "input_blocks.10.0.emb_layers.1.weight", D "input_blocks.10.0.emb_layers.1.bias",
        D "input_blocks.10.0.out_layers.0.weight", D "input_blocks.10.0.out_layers.0.bias",
        D "input_blocks.10.0.out_layers.3.weight", D "input_blocks.10.0.out_layers.3.bias",
        D "input_blocks.10.0.skip_connection.weight", D "input_blocks.10.0.skip_connection.bias"};
    run_case("resblock 32->64", &c, p, 12);
    tt_tensor_free(&c.x);
    tt_tensor_free(&c.emb);
    fix_close(&f);
}

/* ResBlock with an identity skip: dx, d_emb and the conv parameters match finite differences. */
static void test_resblock_identity(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_RES, .mod = &f.m->unet.input[1].res};
    c.x = TT_TENSOR(3, 1.0f, 2, 32, 3, 4);
    c.emb = TT_TENSOR(4, 1.0f, 2, 128);
    static const char *const p[] = {D "input_blocks.1.0.in_layers.2.weight",
                                    D "input_blocks.1.0.emb_layers.1.weight",
                                    D "input_blocks.1.0.out_layers.0.weight",
                                    D "input_blocks.1.0.out_layers.3.bias"};
    run_case("resblock 32->32", &c, p, 4);
    tt_tensor_free(&c.x);
    tt_tensor_free(&c.emb);
    fix_close(&f);
}

/* Two-head self-attention (to_q/k/v, softmax attention, to_out): da and the weights match finite differences. */
static void test_attention(void)
{
    Fix f;
    fix_open(&f);
    const LilySpatialTransformer *st = &f.m->unet.input[10].st[0];
    g_assert_cmpint(st->heads, ==, 2);
    Case c = {.f = &f, .kind = K_ATTN, .mod = &st->blocks[0].attn1, .heads = st->heads, .dim_head = st->dim_head};
    c.x = TT_TENSOR(5, 1.0f, 2, 6, 64);
    static const char *const p[] = {D "input_blocks.10.1.transformer_blocks.0.attn1.to_q.weight",
                                    D "input_blocks.10.1.transformer_blocks.0.attn1.to_k.weight",
                                    D "input_blocks.10.1.transformer_blocks.0.attn1.to_v.weight",
                                    D "input_blocks.10.1.transformer_blocks.0.attn1.to_out.0.weight",
                                    D "input_blocks.10.1.transformer_blocks.0.attn1.to_out.0.bias"};
    run_case("attention 2 heads", &c, p, 5);
    tt_tensor_free(&c.x);
    fix_close(&f);
}

/* GEGLU feed-forward (proj to 2x4D, a * gelu(b), back to D): da and the weights match finite differences. */
static void test_geglu_ff(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_FF, .mod = &f.m->unet.input[10].st[0].blocks[0]};
    c.x = TT_TENSOR(6, 1.0f, 2, 5, 64);
    static const char *const p[] = {D "input_blocks.10.1.transformer_blocks.0.ff.net.0.proj.weight",
                                    D "input_blocks.10.1.transformer_blocks.0.ff.net.0.proj.bias",
                                    D "input_blocks.10.1.transformer_blocks.0.ff.net.2.weight",
                                    D "input_blocks.10.1.transformer_blocks.0.ff.net.2.bias"};
    run_case("geglu ff", &c, p, 4);
    tt_tensor_free(&c.x);
    fix_close(&f);
}

/* SpatialTransformer (GroupNorm, proj_in, LN + 2 attentions + FF, proj_out, residual): dx and
 * weights of every sub-layer match finite differences. */
static void test_spatial_transformer(void)
{
    Fix f;
    fix_open(&f);
    Case c = {.f = &f, .kind = K_ST, .mod = &f.m->unet.input[10].st[1]};
    c.x = TT_TENSOR(7, 1.0f, 2, 64, 2, 3);
    static const char *const p[] = {D "input_blocks.10.2.norm.weight", D "input_blocks.10.2.norm.bias",
                                    D "input_blocks.10.2.proj_in.weight",
                                    D "input_blocks.10.2.transformer_blocks.0.norm1.weight",
                                    D "input_blocks.10.2.transformer_blocks.0.norm2.bias",
                                    D "input_blocks.10.2.transformer_blocks.0.attn2.to_v.weight",
                                    D "input_blocks.10.2.transformer_blocks.0.norm3.weight",
                                    D "input_blocks.10.2.transformer_blocks.0.ff.net.2.weight",
                                    D "input_blocks.10.2.proj_out.weight", D "input_blocks.10.2.proj_out.bias"};
    run_case("spatial transformer", &c, p, 10);
    tt_tensor_free(&c.x);
    fix_close(&f);
}

/* Downsample (conv 3x3 stride 2): dx and the weights match finite differences. */
static void test_downsample(void)
{
    Fix f;
    fix_open(&f);
    g_assert_cmpint(f.m->unet.input[3].kind, ==, 2);
    Case c = {.f = &f, .kind = K_BLOCK, .mod = &f.m->unet.input[3]};
    c.x = TT_TENSOR(8, 1.0f, 2, 32, 4, 6);
    c.emb = TT_TENSOR(9, 1.0f, 2, 128);
    static const char *const p[] = {D "input_blocks.3.0.op.weight", D "input_blocks.3.0.op.bias"};
    run_case("downsample", &c, p, 2);
    tt_tensor_free(&c.x);
    tt_tensor_free(&c.emb);
    fix_close(&f);
}

/* An output block with Upsample (Res + ST + ST, nearest x2, conv): dx, d_emb and weights match finite differences. */
static void test_upsample_block(void)
{
    Fix f;
    fix_open(&f);
    const LilyUBlock *b = &f.m->unet.output[2];
    g_assert_true(b->has_up);
    Case c = {.f = &f, .kind = K_BLOCK, .mod = b};
    c.x = TT_TENSOR(10, 1.0f, 1, b->res.c_in, 2, 2);
    c.emb = TT_TENSOR(11, 1.0f, 1, 128);
    static const char *const p[] = {D "output_blocks.2.0.in_layers.2.weight", D "output_blocks.2.0.skip_connection.weight",
                                    D "output_blocks.2.1.proj_in.weight", D "output_blocks.2.2.transformer_blocks.0.attn1.to_q.weight",
                                    D "output_blocks.2.3.conv.weight", D "output_blocks.2.3.conv.bias"};
    run_case("output block with upsample", &c, p, 6);
    tt_tensor_free(&c.x);
    tt_tensor_free(&c.emb);
    fix_close(&f);
}

/* Time embedding (timestep_embedding -> linear -> SiLU -> linear -> SiLU): weight gradients match finite differences. */
static void test_time_embedding(void)
{
    Fix f;
    fix_open(&f);
    static const int t[2] = {17, 803};
    Case c = {.f = &f, .kind = K_TIME, .mod = &f.m->unet, .t = t};
    c.x = TT_TENSOR(12, 1.0f, 2); /* only its batch size is used */
    static const char *const p[] = {D "time_embed.0.weight", D "time_embed.0.bias", D "time_embed.2.weight",
                                    D "time_embed.2.bias"};
    run_case("time embedding", &c, p, 4);
    tt_tensor_free(&c.x);
    fix_close(&f);
}

/* ---------------------------------------------------------------------------------------- */
/* Whole UNet                                                                                */
/* ---------------------------------------------------------------------------------------- */
typedef struct UCase {
    Fix *f;
    LilyTensor x;
    int t[1];
    float *wout;
} UCase;

static double unet_loss(void *user)
{
    UCase *u = user;
    LilyContext *ctx = u->f->ctx;
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyUNetTape *tape = NULL;
    LilyTensor y;
    tt_ok(ctx, lily_unet_train_forward(ctx, u->f->m, &u->f->tp->set, &u->x, u->t, &tape, &y));
    double l = tt_dot(ctx, &y, u->wout);
    lily_unet_tape_free(tape);
    lily_arena_reset(&ctx->arena, m);
    return l;
}

/* The training forward equals the inference forward bit for bit. */
static void test_forward_matches_inference(void)
{
    Fix f;
    fix_open(&f);
    LilyContext *ctx = f.ctx;
    LilyTensor x = TT_TENSOR(20, 1.0f, 2, 32, 8, 16);
    int t[2] = {3, 640};
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor yi, yt;
    tt_ok(ctx, lily_unet_forward(ctx, f.m, &x, t, &yi));
    float *a = tt_download(ctx, &yi);
    lily_arena_reset(&ctx->arena, m);
    LilyUNetTape *tape = NULL;
    tt_ok(ctx, lily_unet_train_forward(ctx, f.m, &f.tp->set, &x, t, &tape, &yt));
    float *b = tt_download(ctx, &yt);
    lt_assert_close_abs("train forward vs inference forward", b, a, (size_t)lily_tensor_numel(&yt), 0.0);
    lily_unet_tape_free(tape);
    lily_arena_reset(&ctx->arena, m);
    g_free(a);
    g_free(b);
    tt_tensor_free(&x);
    fix_close(&f);
}

/* Whole tiny UNet on a 16x16 latent: dx and the gradients of a spread of 20 parameter tensors
 * (every kind of layer at every level) match finite differences. (At 8x8 the deepest level is
 * 1x1 with 2 values per GroupNorm group: normalising two values is so ill-conditioned there
 * that finite differences mean nothing.) */
static void test_whole_unet(void)
{
    Fix f;
    fix_open(&f);
    LilyContext *ctx = f.ctx;
    UCase u = {.f = &f, .t = {911}};
    u.x = TT_TENSOR(21, 1.0f, 1, 32, 16, 16);
    tt_ok(ctx, lily_train_params_zero_grad(ctx, f.tp));
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyUNetTape *tape = NULL;
    LilyTensor y, dy, dx;
    tt_ok(ctx, lily_unet_train_forward(ctx, f.m, &f.tp->set, &u.x, u.t, &tape, &y));
    u.wout = g_new(float, lily_tensor_numel(&y));
    lt_fill_uniform(u.wout, (size_t)lily_tensor_numel(&y), 98, -1.0f, 1.0f);
    tt_ok(ctx, lily_nn_like(ctx, &y, &dy));
    tt_ok(ctx, lily_tensor_upload(ctx, &dy, u.wout));
    tt_ok(ctx, lily_unet_train_backward(ctx, f.m, &f.tp->set, tape, &dy, &dx));
    float *dxh = tt_download(ctx, &dx);
    lily_unet_tape_free(tape);
    lily_arena_reset(&ctx->arena, m);
    TtVar vars[32];
    int nv = 0;
    vars[nv++] = (TtVar){"x", u.x.data, lily_tensor_numel(&u.x), dxh};
    /* every 55th UNet tensor: 20 of the 1100, spread over all blocks */
    int unet_params = 0;
    for (int i = 0; i < f.m->n_params && nv < 32; i++) {
        if (strncmp(f.m->params[i].name, D, strlen(D)) != 0) continue;
        if (unet_params++ % 55 == 0) vars[nv++] = tt_var(f.tp, f.m->params[i].name);
    }
    g_assert_cmpint(nv, >=, 18);
    tt_check_grads("unet", vars, nv, unet_loss, &u, H_UNET, TOL, FLOOR_UNET, 3);
    g_free(dxh);
    g_free(u.wout);
    tt_tensor_free(&u.x);
    fix_close(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/train/unet/forward-matches-inference", test_forward_matches_inference);
    g_test_add_func("/lily/train/unet/grad-resblock-skip", test_resblock_skip);
    g_test_add_func("/lily/train/unet/grad-resblock-identity", test_resblock_identity);
    g_test_add_func("/lily/train/unet/grad-attention", test_attention);
    g_test_add_func("/lily/train/unet/grad-geglu-ff", test_geglu_ff);
    g_test_add_func("/lily/train/unet/grad-spatial-transformer", test_spatial_transformer);
    g_test_add_func("/lily/train/unet/grad-downsample", test_downsample);
    g_test_add_func("/lily/train/unet/grad-upsample-block", test_upsample_block);
    g_test_add_func("/lily/train/unet/grad-time-embedding", test_time_embedding);
    g_test_add_func("/lily/train/unet/grad-whole-unet", test_whole_unet);
    return g_test_run();
}
