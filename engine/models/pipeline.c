/* models/pipeline.c - one chunk through AudioSR's chain (see pipeline.h).
 *
 * Reference: audiosr/pipeline.py super_resolution -> LatentDiffusion.generate_batch
 * (audiosr/latent_diffusion/models/ddpm.py), spec.md section 1 stages 2-11 and section 3.
 * Two documented departures, both for streams: each chunk's output is returned at the level
 * of its input (AudioSR renormalises to peak 0.5; params->audiosr_level restores that), and
 * a silent chunk is passed through as silence (AudioSR crashes on it, spec 9.1 item 1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"
#include "dsp/numpy-random.h"
#include "common/philox.h"
#include "models/blocks.h"
#include "models/pipeline.h"
#include "models/sampler.h"

#define SILENCE_PEAK 1e-6 /* -120 dBFS: below this a chunk is treated as silence */

size_t lily_audiosr_padded_frames(size_t n)
{
    size_t seg = (n + LILY_SEGMENT_SAMPLES - 1) / LILY_SEGMENT_SAMPLES;
    return seg * (LILY_SEGMENT_SAMPLES / LILY_HOP);
}

/* mean and peak |x - mean| over the first n samples */
static void level_of(const float *x, size_t n, double *mean, double *peak)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    *mean = n ? s / (double)n : 0.0;
    double p = 0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs((double)x[i] - *mean);
        if (a > p) p = a;
    }
    *peak = p;
}

/* ---- stage dumps (--dump-dir) ---- */
typedef struct Dump {
    LilyContext *ctx;
    const char *dir;
    char prefix[32];
} Dump;

static LilyStatus dump_host(Dump *d, const char *name, const float *data, int ndim, const int64_t *shape)
{
    if (!d->dir) return LILY_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%s.npy", d->dir, d->prefix, name);
    return lily_npy_write_f32(d->ctx, path, data, ndim, shape);
}

static LilyStatus dump_dev(Dump *d, const char *name, const LilyTensor *t)
{
    if (!d->dir) return LILY_OK;
    LilyArenaMark m = lily_arena_mark(&d->ctx->host_arena);
    LilyTensor h;
    LILY_TRY(lily_tensor_alloc_host(d->ctx, &h, LILY_DTYPE_F32, t->ndim, t->shape));
    LILY_TRY(lily_tensor_download(d->ctx, t, h.data));
    LilyStatus st = dump_host(d, name, h.data, t->ndim, t->shape);
    lily_arena_reset(&d->ctx->host_arena, m);
    return st;
}

/* ---- random draws: Philox keyed by absolute latent row, or recorded .npy files ---- */
typedef struct Noise {
    const LilyEnhanceParams *p;
    int64_t row0; /* absolute latent row of the chunk */
    Dump *dump;
} Noise;

static LilyStatus draw(LilyContext *ctx, const Noise *nz, const char *file, uint64_t stream,
                       LilyTensor *t)
{
    if (nz->p->noise_dir) {
        if (nz->row0 != 0)
            return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                              "--noise: recorded draws cover one segment only; this input needs "
                              "several chunks (use a shorter input or a longer chunk)");
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.npy", nz->p->noise_dir, file);
        LilyNpy npy;
        LILY_TRY(lily_npy_read(ctx, path, &npy));
        if (npy.dtype != LILY_DTYPE_F32 || npy.numel != lily_tensor_numel(t)) {
            char sh[96];
            lily_npy_free(&npy);
            return lily_error(ctx, LILY_ERR_SHAPE, "%s: holds %lld values, this segment's draw "
                              "needs %lld (%s)", path, (long long)npy.numel,
                              (long long)lily_tensor_numel(t), lily_shape_str(t, sh, sizeof sh));
        }
        LilyStatus st = lily_tensor_upload(ctx, t, npy.data);
        lily_npy_free(&npy);
        return st;
    }
    /* t is [N, C, h, w]: element (c, r, x) of batch item 0 takes index ((r + row0) * C + c) * w + x */
    return lily_op_randn(ctx, t, t->shape[1], t->shape[3], nz->row0, nz->p->seed, stream);
}

static LilyStatus step_noise(LilyContext *ctx, void *user, int k, LilyTensor *noise)
{
    const Noise *nz = user;
    char file[64];
    snprintf(file, sizeof file, "ddim_step%d_noise", k);
    return draw(ctx, nz, file, LILY_RNG_DDIM_STEP(k), noise);
}

static LilyStatus step_hook(LilyContext *ctx, void *user, int k, int t, const LilyTensor *vc,
                            const LilyTensor *vu, const LilyTensor *x0, const LilyTensor *x)
{
    (void)ctx;
    (void)t;
    Noise *nz = user;
    char name[64];
    snprintf(name, sizeof name, "ddim_step%d_model_cond", k);
    LILY_TRY(dump_dev(nz->dump, name, vc));
    if (vu) {
        snprintf(name, sizeof name, "ddim_step%d_model_uncond", k);
        LILY_TRY(dump_dev(nz->dump, name, vu));
    }
    snprintf(name, sizeof name, "ddim_step%d_pred_x0", k);
    LILY_TRY(dump_dev(nz->dump, name, x0));
    snprintf(name, sizeof name, "ddim_step%d_x_prev", k);
    return dump_dev(nz->dump, name, x);
}

static LilyFilterType pick_filter(const LilyEnhanceParams *p, int64_t first_frame)
{
    if (p->filter_type >= 0 && p->filter_type < LILY_FILTER_COUNT) return (LilyFilterType)p->filter_type;
    /* AudioSR: np.random.seed(seed); np.random.choice(4 families). Later chunks of a stream
     * draw from Philox keyed by their start frame. */
    if (first_frame == 0) return lily_filter_for_seed(p->seed);
    float u = lily_philox_uniform(p->seed, LILY_RNG_FILTER, (uint64_t)first_frame);
    int f = (int)(u * LILY_FILTER_COUNT);
    return (LilyFilterType)(f < LILY_FILTER_COUNT ? f : LILY_FILTER_COUNT - 1);
}

LilyStatus lily_diffuse_run(LilyContext *ctx, LilyModel *m, const LilyChunkWork *w,
                            const float *src, size_t frames, size_t n_valid, int64_t first_frame,
                            float *mel_out, float *cond_out, LilyChunkInfo *info)
{
    const LilyEnhanceParams *p = w->params;
    const size_t n = frames * LILY_HOP, nm = frames * LILY_N_MELS;
    memset(info, 0, sizeof *info);
    info->first_frame = first_frame;
    info->frames = (int64_t)frames;
    if (frames % 64)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "diffuse: a chunk must be a multiple of "
                          "64 mel frames (0.64 s), got %zu", frames);
    if (n_valid > n) n_valid = n;
    double mean, peak;
    level_of(src, n_valid, &mean, &peak);
    if (!(peak > SILENCE_PEAK) || !isfinite(peak)) {
        if (!isfinite(peak))
            return lily_error(ctx, LILY_ERR_NUMERIC, "diffuse: the input holds NaN or infinite "
                              "samples (frames from %lld)", (long long)first_frame);
        /* silence in, silence out: the floor of the log-mel, no condition */
        for (size_t i = 0; i < nm; i++) mel_out[i] = logf(LILY_LOG_MEL_FLOOR);
        memset(cond_out, 0, n * sizeof(float));
        info->silent = 1;
        info->cutoff_hz = LILY_SAMPLE_RATE / 2.0;
        lily_log(ctx, LILY_LOG_DEBUG, "diffuse: chunk at frame %lld is silent: skipped",
                 (long long)first_frame);
        return LILY_OK;
    }
    const double gain = 0.5 / (peak + 1e-8);
    Dump dump = {ctx, p->dump_dir, ""};
    if (first_frame) snprintf(dump.prefix, sizeof dump.prefix, "f%06lld_", (long long)first_frame);

    LilyStatus st = LILY_OK;
    float *xn = calloc(n, sizeof(float));
    float *cond = calloc(n, sizeof(float));
    float *cmel = malloc(nm * sizeof(float));
    float *mel = malloc(nm * sizeof(float));
    if (!xn || !cond || !cmel || !mel) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory for a %zu-frame chunk", frames);
        goto done;
    }
    for (size_t i = 0; i < n_valid; i++) xn[i] = (float)(((double)src[i] - mean) * gain);
    LILY_CHECK(st, dump_host(&dump, "waveform", xn, LILY_SHAPE(1, 1, (int64_t)n)), done);

    /* cutoff (spec 3b) and the condition's re-low-pass (3c) */
    double hz = p->cutoff_hz;
    if (!(hz > 0)) LILY_CHECK(st, lily_detect_cutoff(w->mel, xn, n, &hz), done);
    LilyFilterType ft = pick_filter(p, first_frame);
    info->cutoff_hz = hz;
    info->filter_type = ft;
    LILY_CHECK(st, lily_lowpass(ctx, xn, n, LILY_SAMPLE_RATE, hz, ft, 8, cond), done);
    LILY_CHECK(st, dump_host(&dump, "waveform_lowpass", cond, LILY_SHAPE(1, 1, (int64_t)n)), done);
    LILY_CHECK(st, lily_mel_compute(w->mel, cond, n, cmel, NULL), done);
    LILY_CHECK(st, dump_host(&dump, "lowpass_mel", cmel, LILY_SHAPE(1, (int64_t)frames, LILY_N_MELS)), done);
    lily_log(ctx, LILY_LOG_DEBUG, "diffuse: chunk at frame %lld: %zu frames, cutoff %.2f Hz, %s",
             (long long)first_frame, frames, hz, lily_filter_name(ft));

    {
        LilyArenaMark m0 = lily_arena_mark(&ctx->arena);
        const float sf = m->cfg.diffusion.scale_factor;
        LilyTensor melt, mean_t, logvar, noise, cond_s, uncond, x, z, dec;
        Noise nz = {p, (int64_t)(first_frame / LILY_LATENT_DOWNSAMPLE), &dump};
        LILY_CHECK(st, lily_tensor_alloc(ctx, &melt, LILY_DTYPE_F32, LILY_SHAPE(1, 1, (int64_t)frames, LILY_N_MELS)), arena);
        LILY_CHECK(st, lily_tensor_upload(ctx, &melt, cmel), arena);
        /* condition: cond_stage_models.0.vae encode, then DiagonalGaussian.sample() */
        LILY_CHECK(st, lily_vae_encode(ctx, m, &m->cond_encoder, &melt, &mean_t, &logvar), arena);
        LILY_CHECK(st, dump_dev(&dump, "cond_posterior_mean", &mean_t), arena);
        LILY_CHECK(st, dump_dev(&dump, "cond_posterior_logvar", &logvar), arena);
        LILY_CHECK(st, lily_nn_like(ctx, &mean_t, &cond_s), arena);
        if (p->use_posterior_mean) {
            LILY_CHECK(st, lily_tensor_copy(ctx, &mean_t, &cond_s), arena);
        } else {
            LILY_CHECK(st, lily_nn_like(ctx, &mean_t, &noise), arena);
            LILY_CHECK(st, draw(ctx, &nz, "cond_sample_noise", LILY_RNG_COND_SAMPLE, &noise), arena);
            /* mean + exp(0.5 * logvar) * noise */
            LILY_CHECK(st, lily_op_unary(ctx, LILY_UNARY_SCALE, 0.5f, &logvar, &logvar), arena);
            LILY_CHECK(st, lily_op_unary(ctx, LILY_UNARY_EXP, 0.0f, &logvar, &logvar), arena);
            LILY_CHECK(st, lily_op_binary(ctx, LILY_BINARY_MUL, &logvar, &noise, &cond_s), arena);
            LILY_CHECK(st, lily_nn_add(ctx, &cond_s, &mean_t, &cond_s), arena);
        }
        LILY_CHECK(st, dump_dev(&dump, "cond_latent", &cond_s), arena);
        /* DiffusionWrapper multiplies the concat condition by scale_factor */
        LILY_CHECK(st, lily_op_unary(ctx, LILY_UNARY_SCALE, sf, &cond_s, &cond_s), arena);
        LILY_CHECK(st, lily_nn_like(ctx, &cond_s, &uncond), arena);
        LILY_CHECK(st, lily_op_fill(ctx, &uncond, LILY_UNCOND_VALUE * sf), arena);
        /* x_T, then DDIM */
        LILY_CHECK(st, lily_nn_like(ctx, &cond_s, &x), arena);
        LILY_CHECK(st, draw(ctx, &nz, "ddim_x_T", LILY_RNG_X_T, &x), arena);
        LilyDdimSchedule sched;
        LILY_CHECK(st, lily_ddim_schedule(ctx, m, p->steps, p->eta, &sched), arena);
        LilySampleArgs sa = {.cond = &cond_s, .uncond = &uncond, .guidance = p->guidance_scale,
                             .schedule = &sched, .noise = step_noise, .noise_user = &nz,
                             .hook = p->dump_dir ? step_hook : NULL, .hook_user = &nz};
        LILY_CHECK(st, lily_ddim_sample(ctx, m, &sa, &x), arena);
        LILY_CHECK(st, dump_dev(&dump, "latent", &x), arena);
        /* decode_first_stage: decoder(post_quant_conv(z / scale_factor)) */
        LILY_CHECK(st, lily_nn_like(ctx, &x, &z), arena);
        LILY_CHECK(st, lily_tensor_copy(ctx, &x, &z), arena);
        LILY_CHECK(st, lily_op_unary(ctx, LILY_UNARY_SCALE, 1.0f / sf, &z, &z), arena);
        LILY_CHECK(st, lily_vae_decode(ctx, m, &z, &dec), arena);
        LILY_CHECK(st, lily_tensor_download(ctx, &dec, mel), arena);
    arena:
        lily_arena_reset(&ctx->arena, m0);
        if (st != LILY_OK) goto done;
    }
    LILY_CHECK(st, dump_host(&dump, "vae_decode_mel", mel, LILY_SHAPE(1, 1, (int64_t)frames, LILY_N_MELS)), done);
    {
        /* mel_replace_ops: bins under the condition's 0.985 energy point come from it */
        double e[LILY_N_MELS] = {0};
        for (size_t f = 0; f < frames; f++)
            for (int b = 0; b < LILY_N_MELS; b++) e[b] += exp((double)cmel[f * LILY_N_MELS + b]);
        int cut = lily_cutoff_index(e, LILY_N_MELS);
        info->cutoff_melbin = cut;
        for (size_t f = 0; f < frames; f++)
            memcpy(mel + f * LILY_N_MELS, cmel + f * LILY_N_MELS, (size_t)cut * sizeof(float));
    }
    LILY_CHECK(st, dump_host(&dump, "mel_replaced", mel, LILY_SHAPE(1, 1, (int64_t)frames, LILY_N_MELS)), done);
    {
        /* back to the input's level: ln-mel shifts by -ln(gain), waveforms divide by it */
        const float lg = (float)log(gain);
        for (size_t i = 0; i < nm; i++) mel_out[i] = mel[i] - lg;
        for (size_t i = 0; i < n; i++) cond_out[i] = (float)(cond[i] / gain);
    }
done:
    free(xn);
    free(cond);
    free(cmel);
    free(mel);
    return st;
}

LilyStatus lily_vocode_run(LilyContext *ctx, LilyModel *m, const LilyChunkWork *w,
                           const float *mel, const float *cond, const float *src, size_t frames,
                           size_t n_valid, int64_t first_frame, float *out)
{
    const LilyEnhanceParams *p = w->params;
    const size_t n = frames * LILY_HOP;
    if (n_valid > n) n_valid = n;
    double mean, peak;
    level_of(src, n_valid, &mean, &peak);
    if (!isfinite(peak))
        return lily_error(ctx, LILY_ERR_NUMERIC, "vocoder: the source holds NaN or infinite samples");
    if (!(peak > SILENCE_PEAK)) {
        memset(out, 0, n * sizeof(float));
        return LILY_OK;
    }
    const double gain = 0.5 / (peak + 1e-8);
    const int64_t nw = lily_vocoder_out_len(&m->cfg, (int64_t)frames); /* 480 F + 16 */
    Dump dump = {ctx, p->dump_dir, ""};
    if (first_frame) snprintf(dump.prefix, sizeof dump.prefix, "f%06lld_", (long long)first_frame);
    LilyStatus st = LILY_OK;
    float *melT = malloc(frames * LILY_N_MELS * sizeof(float));
    float *wave = malloc((size_t)nw * sizeof(float));
    float *cn = calloc((size_t)nw, sizeof(float));
    if (!melT || !wave || !cn) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory for a %zu-frame vocoder chunk", frames);
        goto done;
    }
    {
        /* mel at the model's level, [256][frames] as mel.permute(0, 2, 1) */
        const float lg = (float)log(gain);
        for (size_t f = 0; f < frames; f++)
            for (int b = 0; b < LILY_N_MELS; b++) melT[(size_t)b * frames + f] = mel[f * LILY_N_MELS + b] + lg;
        LilyArenaMark m0 = lily_arena_mark(&ctx->arena);
        LilyTensor mt, wt;
        LILY_CHECK(st, lily_tensor_alloc(ctx, &mt, LILY_DTYPE_F32, LILY_SHAPE(1, LILY_N_MELS, (int64_t)frames)), arena);
        LILY_CHECK(st, lily_tensor_upload(ctx, &mt, melT), arena);
        LILY_CHECK(st, lily_vocoder_forward(ctx, m, &mt, &wt), arena);
        LILY_CHECK(st, lily_tensor_download(ctx, &wt, wave), arena);
    arena:
        lily_arena_reset(&ctx->arena, m0);
        if (st != LILY_OK) goto done;
    }
    LILY_CHECK(st, dump_host(&dump, "vocoder_waveform", wave, LILY_SHAPE(1, 1, nw)), done);
    /* postprocessing: the condition's low band back into the output (spec 10); the condition
     * is 16 samples shorter than the vocoder output: zero-extended, as librosa's padding
     * sees it */
    for (size_t i = 0; i < n; i++) cn[i] = (float)(cond[i] * gain);
    {
        int bin = 0;
        float ratio = 0;
        LILY_CHECK(st, lily_restore_lowband(ctx, cn, wave, (size_t)nw, &bin, &ratio), done);
        lily_log(ctx, LILY_LOG_DEBUG, "vocoder: chunk at frame %lld: low band restored under STFT "
                 "bin %d, ratio %.4f", (long long)first_frame, bin, (double)ratio);
    }
    LILY_CHECK(st, dump_host(&dump, "postprocessed", wave, LILY_SHAPE(1, 1, nw)), done);
    if (p->audiosr_level) {
        /* generate_batch: 0.5 * x / max|x|, then the mean removed */
        double mx = 0, s = 0;
        for (int64_t i = 0; i < nw; i++) mx = fmax(mx, fabs((double)wave[i]));
        for (int64_t i = 0; i < nw; i++) {
            wave[i] = (float)(0.5 * wave[i] / (mx > 0 ? mx : 1));
            s += wave[i];
        }
        float mu = (float)(s / (double)nw);
        for (int64_t i = 0; i < nw; i++) wave[i] -= mu;
        LILY_CHECK(st, dump_host(&dump, "final_waveform", wave, LILY_SHAPE(1, 1, nw)), done);
        memcpy(out, wave, n * sizeof(float));
    } else {
        for (size_t i = 0; i < n; i++) out[i] = (float)(wave[i] / gain);
    }
done:
    free(melT);
    free(wave);
    free(cn);
    return st;
}
