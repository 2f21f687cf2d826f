/* tests/models/test-stages.c - every model stage of tiny-a against AudioSR's own outputs.
 *
 * Reference: shared/audiosr/ref-a (AudioSR @034db6c on tiny-a.bin, seed 42, 4 DDIM steps,
 * CFG 3.5, eta 1; manifest.json names each array). Each stage is fed the reference input of
 * that stage, so an error cannot hide behind an earlier one; the end-to-end case chains them
 * with the recorded random draws injected. Tolerances are relative to the reference's peak:
 * 1e-4 for fp32 stages (PyTorch's own run-to-run noise is ~2e-6), NMSE 2e-2 for bf16 (the
 * project's bf16 goal, spec.md section 7). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "common/test-util.h"
#include "core/arena.h"
#include "core/context.h"
#include "models/model.h"
#include "models/pipeline.h"
#include "models/sampler.h"

typedef struct Fixture {
    LilyContext *ctx;
    LilyModel *model;
} Fixture;

static void fixture_open(Fixture *f, LilyPrecision prec)
{
    char err[512];
    g_assert_cmpint(lily_context_new(NULL, &f->ctx, err, sizeof err), ==, LILY_OK);
    char *bin = lt_ref_path("tiny-a.bin");
    char *yaml = lt_ref_path("tiny-a.yaml");
    LilyModelParams mp;
    lily_model_params_init(&mp);
    mp.precision = prec;
    mp.config_path = yaml;
    LilyStatus st = lily_model_load(f->ctx, bin, &mp, &f->model);
    if (st != LILY_OK) g_printerr("load: %s\n", lily_context_error(f->ctx));
    g_assert_cmpint(st, ==, LILY_OK);
    g_free(bin);
    g_free(yaml);
}

static void fixture_close(Fixture *f)
{
    lily_model_unref(f->model);
    lily_context_free(f->ctx);
}

/* A device tensor holding a reference array. */
static LilyTensor ref_tensor(LilyContext *ctx, const char *name)
{
    LilyNpy npy;
    lt_load_ref(name, &npy);
    LilyTensor t;
    g_assert_cmpint(lily_tensor_alloc(ctx, &t, LILY_DTYPE_F32, npy.ndim, npy.shape), ==, LILY_OK);
    g_assert_cmpint(lily_tensor_upload(ctx, &t, npy.data), ==, LILY_OK);
    lily_npy_free(&npy);
    return t;
}

/* Compares a device tensor with a reference array. */
static void check(LilyContext *ctx, const char *label, const LilyTensor *t, const char *ref,
                  double tol, bool nmse)
{
    LilyNpy npy;
    lt_load_ref(ref, &npy);
    g_assert_cmpint(npy.numel, ==, lily_tensor_numel(t));
    float *got = g_malloc(lily_tensor_nbytes(t));
    g_assert_cmpint(lily_tensor_download(ctx, t, got), ==, LILY_OK);
    if (nmse) lt_assert_nmse(label, got, npy.data, (size_t)npy.numel, tol);
    else lt_assert_close_rel(label, got, npy.data, (size_t)npy.numel, tol);
    g_free(got);
    lily_npy_free(&npy);
}

static void run_encode(LilyPrecision prec, double tol, bool nmse)
{
    Fixture f;
    fixture_open(&f, prec);
    LilyTensor mel = ref_tensor(f.ctx, "lowpass_mel");
    int64_t sh[4] = {1, 1, mel.shape[1], mel.shape[2]};
    g_assert_true(lily_tensor_reshape(&mel, 4, sh));
    LilyTensor mean, logvar;
    LilyStatus st = lily_vae_encode(f.ctx, f.model, &f.model->cond_encoder, &mel, &mean, &logvar);
    if (st) g_printerr("%s\n", lily_context_error(f.ctx));
    g_assert_cmpint(st, ==, LILY_OK);
    check(f.ctx, "cond_posterior_mean", &mean, "cond_posterior_mean", tol, nmse);
    check(f.ctx, "cond_posterior_logvar", &logvar, "cond_posterior_logvar", tol, nmse);
    fixture_close(&f);
}

/* The condition VAE encoder gives AudioSR's posterior mean and log-variance (fp32, rel 1e-4). */
static void test_encode_f32(void) { run_encode(LILY_PRECISION_F32, 1e-4, false); }
/* The same in bf16 stays within NMSE 2e-2. */
static void test_encode_bf16(void) { run_encode(LILY_PRECISION_BF16, 2e-2, true); }

static void run_unet(LilyPrecision prec, double tol, bool nmse)
{
    Fixture f;
    fixture_open(&f, prec);
    LilyContext *ctx = f.ctx;
    LilyTensor x = ref_tensor(ctx, "unet_x_t");
    LilyTensor c = ref_tensor(ctx, "cond_latent_scaled");
    LilyTensor u = ref_tensor(ctx, "uncond_latent_scaled");
    LilyNpy t;
    lt_load_ref("unet_t", &t);
    int tt = (int)((int64_t *)t.data)[0];
    lily_npy_free(&t);
    LilyTensor in, out;
    g_assert_cmpint(lily_tensor_alloc(ctx, &in, LILY_DTYPE_F32, LILY_SHAPE(1, 32, x.shape[2], x.shape[3])), ==, LILY_OK);
    g_assert_cmpint(lily_op_concat(ctx, &x, &c, &in), ==, LILY_OK);
    LilyStatus st = lily_unet_forward(ctx, f.model, &in, &tt, &out);
    if (st) g_printerr("%s\n", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_OK);
    check(ctx, "unet_out_cond", &out, "unet_out_cond", tol, nmse);
    g_assert_cmpint(lily_op_concat(ctx, &x, &u, &in), ==, LILY_OK);
    g_assert_cmpint(lily_unet_forward(ctx, f.model, &in, &tt, &out), ==, LILY_OK);
    check(ctx, "unet_out_uncond", &out, "unet_out_uncond", tol, nmse);
    fixture_close(&f);
}

/* One UNet forward at t = 537, conditional and unconditional, equals AudioSR's (fp32). */
static void test_unet_f32(void) { run_unet(LILY_PRECISION_F32, 1e-4, false); }
static void test_unet_bf16(void) { run_unet(LILY_PRECISION_BF16, 2e-2, true); }

/* The DDIM schedule equals AudioSR's timesteps, alphas, previous alphas and sigmas. */
static void test_schedule(void)
{
    Fixture f;
    fixture_open(&f, LILY_PRECISION_F32);
    LilyDdimSchedule s;
    g_assert_cmpint(lily_ddim_schedule(f.ctx, f.model, 4, 1.0, &s), ==, LILY_OK);
    LilyNpy ts, a, ap, sg;
    lt_load_ref("ddim_timesteps", &ts);
    lt_load_ref("ddim_alphas", &a);
    lt_load_ref("ddim_alphas_prev", &ap);
    lt_load_ref("ddim_sigmas", &sg);
    float got_a[4], got_ap[4], got_s[4];
    for (int i = 0; i < 4; i++) {
        g_assert_cmpint(s.t[i], ==, ((int64_t *)ts.data)[i]);
        got_a[i] = (float)s.alpha[i];
        got_ap[i] = (float)s.alpha_prev[i];
        got_s[i] = (float)s.sigma[i];
    }
    lt_assert_close_rel("ddim_alphas", got_a, a.data, 4, 1e-6);
    lt_assert_close_rel("ddim_alphas_prev", got_ap, ap.data, 4, 1e-6);
    lt_assert_close_rel("ddim_sigmas", got_s, sg.data, 4, 1e-5);
    lily_npy_free(&ts);
    lily_npy_free(&a);
    lily_npy_free(&ap);
    lily_npy_free(&sg);
    fixture_close(&f);
}

/* Each DDIM step, fed the reference latent and the recorded noise: both CFG branches, the
 * predicted x0 and the next latent equal AudioSR's (fp32). */
static void test_ddim_steps(void)
{
    Fixture f;
    fixture_open(&f, LILY_PRECISION_F32);
    LilyContext *ctx = f.ctx;
    LilyDdimSchedule s;
    g_assert_cmpint(lily_ddim_schedule(ctx, f.model, 4, 1.0, &s), ==, LILY_OK);
    LilyTensor c = ref_tensor(ctx, "cond_latent_scaled");
    LilyTensor u = ref_tensor(ctx, "uncond_latent_scaled");
    for (int k = 0; k < 4; k++) {
        LilyArenaMark m = lily_arena_mark(&ctx->arena);
        int i = 3 - k;
        char name[64];
        if (k == 0) snprintf(name, sizeof name, "ddim_x_T");
        else snprintf(name, sizeof name, "ddim_step%d_x_prev", k - 1);
        LilyTensor x = ref_tensor(ctx, name);
        snprintf(name, sizeof name, "ddim_step%d_noise", k);
        LilyTensor noise = ref_tensor(ctx, name);
        LilyTensor in, vc, vu, x0;
        g_assert_cmpint(lily_tensor_alloc(ctx, &in, LILY_DTYPE_F32, LILY_SHAPE(1, 32, x.shape[2], x.shape[3])), ==, LILY_OK);
        int t = s.t[i];
        g_assert_cmpint(lily_op_concat(ctx, &x, &c, &in), ==, LILY_OK);
        g_assert_cmpint(lily_unet_forward(ctx, f.model, &in, &t, &vc), ==, LILY_OK);
        snprintf(name, sizeof name, "ddim_step%d_model_cond", k);
        check(ctx, name, &vc, name, 1e-4, false);
        g_assert_cmpint(lily_op_concat(ctx, &x, &u, &in), ==, LILY_OK);
        g_assert_cmpint(lily_unet_forward(ctx, f.model, &in, &t, &vu), ==, LILY_OK);
        snprintf(name, sizeof name, "ddim_step%d_model_uncond", k);
        check(ctx, name, &vu, name, 1e-4, false);
        g_assert_cmpint(lily_tensor_alloc(ctx, &x0, LILY_DTYPE_F32, x.ndim, x.shape), ==, LILY_OK);
        g_assert_cmpint(lily_op_ddim_step(ctx, &x, &vc, &vu, &noise, 3.5f, s.alpha[i], s.alpha_prev[i],
                                          s.sigma[i], &x0), ==, LILY_OK);
        snprintf(name, sizeof name, "ddim_step%d_pred_x0", k);
        check(ctx, name, &x0, name, 1e-4, false);
        snprintf(name, sizeof name, "ddim_step%d_x_prev", k);
        check(ctx, name, &x, name, 1e-4, false);
        lily_arena_reset(&ctx->arena, m);
    }
    fixture_close(&f);
}

static void run_decode(LilyPrecision prec, double tol, bool nmse)
{
    Fixture f;
    fixture_open(&f, prec);
    LilyContext *ctx = f.ctx;
    LilyTensor z = ref_tensor(ctx, "ddim_step3_x_prev");
    g_assert_cmpint(lily_op_unary(ctx, LILY_UNARY_SCALE, 1.0f / lily_model_scale_factor(f.model), &z, &z), ==, LILY_OK);
    LilyTensor mel;
    LilyStatus st = lily_vae_decode(ctx, f.model, &z, &mel);
    if (st) g_printerr("%s\n", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_OK);
    check(ctx, "vae_decode_mel", &mel, "vae_decode_mel", tol, nmse);
    fixture_close(&f);
}

/* The VAE decoder turns the final latent / scale_factor into AudioSR's mel (fp32). */
static void test_decode_f32(void) { run_decode(LILY_PRECISION_F32, 1e-4, false); }
static void test_decode_bf16(void) { run_decode(LILY_PRECISION_BF16, 2e-2, true); }

static void run_vocoder(LilyPrecision prec, double tol, bool nmse)
{
    Fixture f;
    fixture_open(&f, prec);
    LilyContext *ctx = f.ctx;
    LilyNpy mel;
    lt_load_ref("mel_replaced", &mel); /* [1, 1, 512, 256] */
    int64_t frames = mel.shape[2];
    float *mt = g_malloc(sizeof(float) * (size_t)(frames * 256));
    for (int64_t fr = 0; fr < frames; fr++)
        for (int b = 0; b < 256; b++) mt[b * frames + fr] = ((float *)mel.data)[fr * 256 + b];
    LilyTensor in, wave;
    g_assert_cmpint(lily_tensor_alloc(ctx, &in, LILY_DTYPE_F32, LILY_SHAPE(1, 256, frames)), ==, LILY_OK);
    g_assert_cmpint(lily_tensor_upload(ctx, &in, mt), ==, LILY_OK);
    LilyStatus st = lily_vocoder_forward(ctx, f.model, &in, &wave);
    if (st) g_printerr("%s\n", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_OK);
    g_assert_cmpint(wave.shape[2], ==, frames * 480 + 16);
    check(ctx, "vocoder_waveform", &wave, "vocoder_waveform", tol, nmse);
    g_free(mt);
    lily_npy_free(&mel);
    fixture_close(&f);
}

/* HiFi-GAN turns the replaced mel into AudioSR's waveform, 480 F + 16 samples long (fp32). */
static void test_vocoder_f32(void) { run_vocoder(LILY_PRECISION_F32, 1e-4, false); }
static void test_vocoder_bf16(void) { run_vocoder(LILY_PRECISION_BF16, 2e-2, true); }

/* End to end: ref-a's input through the whole chain with the recorded draws injected and
 * AudioSR's filter and cutoff forced gives AudioSR's final waveform. Errors of the stages
 * chain, so the bound is looser (stated: rel 1e-3). */
static void test_end_to_end(void)
{
    Fixture f;
    fixture_open(&f, LILY_PRECISION_F32);
    LilyContext *ctx = f.ctx;
    LilyNpy in, ref;
    lt_load_ref("input_raw", &in); /* [1, 240000] */
    lt_load_ref("final_waveform", &ref); /* [1, 1, 245776] */
    char *noise = lt_ref_path("ref-a");
    LilyEnhanceParams p;
    lily_enhance_params_init(&p);
    p.steps = 4;
    p.noise_dir = noise;
    p.filter_type = LILY_FILTER_ELLIP;
    p.cutoff_hz = 7781.25;
    p.audiosr_level = 1;
    size_t n = (size_t)in.numel;
    size_t frames = lily_audiosr_padded_frames(n);
    g_assert_cmpuint(frames, ==, 512);
    float *src = g_malloc0(sizeof(float) * frames * 480);
    memcpy(src, in.data, n * sizeof(float));
    float *mel = g_malloc(sizeof(float) * frames * 256);
    float *cond = g_malloc(sizeof(float) * frames * 480);
    float *out = g_malloc(sizeof(float) * frames * 480);
    LilyMel *lm;
    g_assert_cmpint(lily_mel_new(ctx, &lm), ==, LILY_OK);
    LilyChunkWork w = {lm, &p};
    LilyChunkInfo info;
    LilyStatus st = lily_diffuse_run(ctx, f.model, &w, src, frames, n, 0, mel, cond, &info);
    if (st) g_printerr("%s\n", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_OK);
    g_assert_cmpint(info.cutoff_melbin, ==, 170);
    st = lily_vocode_run(ctx, f.model, &w, mel, cond, src, frames, n, 0, out);
    g_assert_cmpint(st, ==, LILY_OK);
    lt_assert_close_rel("final_waveform (chained)", out, ref.data, frames * 480, 1e-3);
    lily_mel_free(lm);
    g_free(src);
    g_free(mel);
    g_free(cond);
    g_free(out);
    g_free(noise);
    lily_npy_free(&in);
    lily_npy_free(&ref);
    fixture_close(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/models/schedule", test_schedule);
    g_test_add_func("/lily/models/encode-f32", test_encode_f32);
    g_test_add_func("/lily/models/unet-f32", test_unet_f32);
    g_test_add_func("/lily/models/ddim-steps-f32", test_ddim_steps);
    g_test_add_func("/lily/models/decode-f32", test_decode_f32);
    g_test_add_func("/lily/models/vocoder-f32", test_vocoder_f32);
    g_test_add_func("/lily/models/end-to-end-f32", test_end_to_end);
    g_test_add_func("/lily/models/encode-bf16", test_encode_bf16);
    g_test_add_func("/lily/models/unet-bf16", test_unet_bf16);
    g_test_add_func("/lily/models/decode-bf16", test_decode_bf16);
    g_test_add_func("/lily/models/vocoder-bf16", test_vocoder_bf16);
    return g_test_run();
}
