/* lily-bench.c - developer benchmarks of liblily stages: `lily-bench CASE [options]`.
 *
 * Each case times one stage on generated input and prints its speed and the process's peak
 * resident memory (getrusage ru_maxrss). Cases live in the table at the bottom; a new stage
 * adds a function and a row there. Timings belong here, never in unit tests: the machines
 * are shared and noisy.
 *
 *   lily-bench mel                  log-mel of 60 s of generated 48 kHz audio
 *   lily-bench mel --seconds 600    ten minutes
 *   lily-bench enhance --size basic --precision bf16 --seconds 10.24
 *                                   every stage of one chunk at AudioSR's real widths
 *   lily-bench --help               lists the cases
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <lily/lily.h>

#include "args.h"
#include "config/model-config.h"
#include "core/context.h"
#include "models/pipeline.h"
#include "models/sampler.h"

typedef struct BenchOpts {
    double seconds; /* length of the generated input */
    int repeat;     /* timed runs; the fastest is reported */
    const char *size;      /* enhance: "tiny" or "basic" */
    const char *precision; /* enhance: f32 | bf16 */
    int steps;             /* enhance: DDIM steps to extrapolate to */
    int unet_calls;        /* enhance: UNet calls actually timed */
    int threads;
} BenchOpts;

typedef struct BenchCase {
    const char *name;
    const char *summary;
    int (*run)(const BenchOpts *opts);
} BenchCase;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

/* A music-like test signal: a few harmonics, a slow chirp and some noise, peak about 0.5. */
static void generate_audio(float *x, size_t n)
{
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i++) {
        const double t = (double)i / LILY_SAMPLE_RATE;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        const double noise = (double)(s >> 11) / 9007199254740992.0 - 0.5;
        x[i] = (float)(0.2 * sin(2 * M_PI * 220 * t) + 0.1 * sin(2 * M_PI * 660 * t) +
                       0.1 * sin(2 * M_PI * (100 + 50 * t) * t) + 0.05 * noise);
    }
}

static int bench_mel(const BenchOpts *o)
{
    const size_t frames = (size_t)ceil(o->seconds * LILY_SAMPLE_RATE / LILY_HOP);
    const size_t n = frames * LILY_HOP;
    float *x = malloc(n * sizeof *x);
    float *mel = malloc(frames * LILY_N_MELS * sizeof *mel);
    if (!x || !mel) {
        fprintf(stderr, "lily-bench mel: out of memory for %.1f s of audio\n", o->seconds);
        free(x);
        free(mel);
        return 1;
    }
    generate_audio(x, n);
    LilyContext *ctx = NULL;
    char err[512];
    if (lily_context_new(NULL, &ctx, err, sizeof err) != LILY_OK) {
        fprintf(stderr, "lily-bench mel: %s\n", err);
        free(x);
        free(mel);
        return 1;
    }
    const double rss_ctx = peak_rss_mib(); /* the context (backend set-up) and the input */
    LilyMel *m = NULL;
    int rc = 0;
    if (lily_mel_new(ctx, &m) != LILY_OK) {
        fprintf(stderr, "lily-bench mel: %s\n", lily_context_error(ctx));
        rc = 1;
        goto done;
    }
    double best = INFINITY;
    for (int r = 0; r < o->repeat; r++) {
        const double t0 = now_s();
        if (lily_mel_compute(m, x, n, mel, NULL) != LILY_OK) {
            fprintf(stderr, "lily-bench mel: %s\n", lily_context_error(ctx));
            rc = 1;
            goto done;
        }
        const double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    const double audio_s = (double)n / LILY_SAMPLE_RATE;
    printf("mel: %.1f s of 48 kHz audio -> %zu frames x %d mels (fp32 in and out, double FFT)\n",
           audio_s, frames, LILY_N_MELS);
    printf("mel: %.4f s (fastest of %d), %.0fx real time, %.1f us per frame\n", best, o->repeat,
           audio_s / best, 1e6 * best / (double)frames);
    printf("mel: peak RSS %.1f MiB, of which %.1f MiB before the mel ran (context, input "
           "%.1f MiB); output %.1f MiB\n", peak_rss_mib(), rss_ctx,
           (double)(n * sizeof(float)) / 1048576.0,
           (double)(frames * LILY_N_MELS * sizeof(float)) / 1048576.0);
done:
    lily_mel_free(m);
    lily_context_free(ctx);
    free(x);
    free(mel);
    return rc;
}

/* ---- enhance: every stage of one chunk, timed and counted ---- */
typedef struct Stage {
    const char *name;
    double seconds;
    double gflop;
} Stage;

static void stage_row(const Stage *st)
{
    printf("  %-28s %9.3f s %10.1f GFLOP %9.1f GFLOP/s\n", st->name, st->seconds, st->gflop,
           st->seconds > 0 ? st->gflop / st->seconds : 0.0);
}

static int bench_enhance(const BenchOpts *o)
{
    LilyModelConfig cfg;
    LilyPrecision prec;
    if (lily_model_config_preset(o->size, &cfg) != LILY_OK) {
        fprintf(stderr, "lily-bench enhance: --size must be tiny or basic\n");
        return 2;
    }
    if (lily_precision_from_name(o->precision, &prec) != LILY_OK) {
        fprintf(stderr, "lily-bench enhance: --precision must be f32 or bf16\n");
        return 2;
    }
    LilyContextParams cp;
    lily_context_params_init(&cp);
    cp.n_threads = o->threads;
    LilyContext *ctx = NULL;
    char err[512];
    if (lily_context_new(&cp, &ctx, err, sizeof err) != LILY_OK) {
        fprintf(stderr, "lily-bench enhance: %s\n", err);
        return 1;
    }
    int rc = 1;
    LilyModel *m = NULL;
    LilyMel *mel = NULL;
    float *x = NULL, *cond = NULL, *cmel = NULL, *melT = NULL, *wave = NULL;
    double t0 = now_s();
    if (lily_model_new_random(ctx, &cfg, 1, prec, &m) != LILY_OK || lily_mel_new(ctx, &mel) != LILY_OK) {
        fprintf(stderr, "lily-bench enhance: %s\n", lily_context_error(ctx));
        goto done;
    }
    const double t_load = now_s() - t0;
    const size_t frames = (size_t)ceil(o->seconds * 100.0 / 64.0) * 64; /* UNet needs 64s */
    const size_t n = frames * LILY_HOP;
    const double audio_s = (double)n / LILY_SAMPLE_RATE;
    x = malloc(n * sizeof *x);
    cond = malloc(n * sizeof *cond);
    cmel = malloc(frames * LILY_N_MELS * sizeof *cmel);
    melT = malloc(frames * LILY_N_MELS * sizeof *melT);
    wave = malloc((n + 64) * sizeof *wave);
    if (!x || !cond || !cmel || !melT || !wave) {
        fprintf(stderr, "lily-bench enhance: out of memory\n");
        goto done;
    }
    generate_audio(x, n);
    printf("enhance: %s model (%.1f MiB of %s weights, built in %.1f s), %.2f s chunk = %zu "
           "frames, %d threads\n", o->size, lily_model_weight_bytes(m) / 1048576.0, o->precision,
           t_load, audio_s, frames, ctx->n_threads);
    Stage st[6];
    int ns = 0;
    /* front end: cutoff detection, the condition's re-low-pass and its log-mel */
    t0 = now_s();
    double hz = 0;
    if (lily_detect_cutoff(mel, x, n, &hz) != LILY_OK ||
        lily_lowpass(ctx, x, n, LILY_SAMPLE_RATE, hz < 20000 ? hz : 8000, LILY_FILTER_ELLIP, 8, cond) != LILY_OK ||
        lily_mel_compute(mel, cond, n, cmel, NULL) != LILY_OK) {
        fprintf(stderr, "lily-bench enhance: %s\n", lily_context_error(ctx));
        goto done;
    }
    st[ns++] = (Stage){"front end (cutoff, low-pass, mel)", now_s() - t0, 0};
    LilyArenaMark mk = lily_arena_mark(&ctx->arena);
    LilyTensor melt, mean, logvar, xin, v, z, dec, vm, vw;
    /* condition encoder */
    if (lily_tensor_alloc(ctx, &melt, LILY_DTYPE_F32, 4, (int64_t[]){1, 1, (int64_t)frames, LILY_N_MELS}) ||
        lily_tensor_upload(ctx, &melt, cmel))
        goto engine_fail;
    lily_context_reset_flops(ctx);
    t0 = now_s();
    if (lily_vae_encode(ctx, m, &m->cond_encoder, &melt, &mean, &logvar)) goto engine_fail;
    st[ns++] = (Stage){"VAE encode (condition)", now_s() - t0, lily_context_flops(ctx) / 1e9};
    /* UNet: a few calls timed, the rest extrapolated */
    if (lily_tensor_alloc(ctx, &xin, LILY_DTYPE_F32, 4, (int64_t[]){1, 32, (int64_t)frames / 8, 32}) ||
        lily_op_randn(ctx, &xin, 32, 32, 0, 7, 1))
        goto engine_fail;
    double best = INFINITY, gf = 0;
    for (int c = 0; c < o->unet_calls; c++) {
        LilyArenaMark mc = lily_arena_mark(&ctx->arena);
        int t = 981 - 20 * c;
        lily_context_reset_flops(ctx);
        t0 = now_s();
        if (lily_unet_forward(ctx, m, &xin, &t, &v)) goto engine_fail;
        double dt = now_s() - t0;
        if (dt < best) best = dt;
        gf = lily_context_flops(ctx) / 1e9;
        lily_arena_reset(&ctx->arena, mc);
    }
    st[ns++] = (Stage){"UNet forward (one call)", best, gf};
    const int calls = 2 * o->steps; /* classifier-free guidance: two calls per step */
    /* decoder */
    if (lily_tensor_alloc(ctx, &z, LILY_DTYPE_F32, 4, (int64_t[]){1, 16, (int64_t)frames / 8, 32}) ||
        lily_op_randn(ctx, &z, 16, 32, 0, 8, 1))
        goto engine_fail;
    lily_context_reset_flops(ctx);
    t0 = now_s();
    if (lily_vae_decode(ctx, m, &z, &dec)) goto engine_fail;
    st[ns++] = (Stage){"VAE decode", now_s() - t0, lily_context_flops(ctx) / 1e9};
    /* vocoder */
    for (size_t f = 0; f < frames; f++)
        for (int b = 0; b < LILY_N_MELS; b++) melT[(size_t)b * frames + f] = cmel[f * LILY_N_MELS + b];
    if (lily_tensor_alloc(ctx, &vm, LILY_DTYPE_F32, 3, (int64_t[]){1, LILY_N_MELS, (int64_t)frames}) ||
        lily_tensor_upload(ctx, &vm, melT))
        goto engine_fail;
    lily_context_reset_flops(ctx);
    t0 = now_s();
    if (lily_vocoder_forward(ctx, m, &vm, &vw)) goto engine_fail;
    st[ns++] = (Stage){"HiFi-GAN vocoder", now_s() - t0, lily_context_flops(ctx) / 1e9};
    if (lily_tensor_download(ctx, &vw, wave)) goto engine_fail;
    lily_arena_reset(&ctx->arena, mk);
    /* low-band restore */
    t0 = now_s();
    int bin;
    float ratio;
    if (lily_restore_lowband(ctx, cond, wave, n, &bin, &ratio)) goto engine_fail;
    st[ns++] = (Stage){"low-band restore (STFT)", now_s() - t0, 0};

    printf("stage timings (%s, fastest of %d UNet calls):\n", o->precision, o->unet_calls);
    double total = 0, total_gf = 0;
    for (int i = 0; i < ns; i++) {
        stage_row(&st[i]);
        double mult = i == 2 ? calls : 1;
        total += st[i].seconds * mult;
        total_gf += st[i].gflop * mult;
    }
    printf("  UNet x %d (%d steps with guidance)  %9.3f s %10.1f GFLOP\n", calls, o->steps,
           st[2].seconds * calls, st[2].gflop * calls);
    printf("total for %.2f s of audio at %d steps: %.1f s, %.1f GFLOP (%.1f GFLOP/s overall)\n",
           audio_s, o->steps, total, total_gf, total_gf / total);
    printf("real-time factor: %.2f s of compute per second of audio (%.3fx real time)\n",
           total / audio_s, audio_s / total);
    printf("peak RSS: %.1f MiB (weights %.1f MiB, scratch peak %.1f MiB)\n", peak_rss_mib(),
           lily_model_weight_bytes(m) / 1048576.0, lily_context_peak_scratch(ctx) / 1048576.0);
    rc = 0;
    goto done;
engine_fail:
    fprintf(stderr, "lily-bench enhance: %s\n", lily_context_error(ctx));
done:
    free(x);
    free(cond);
    free(cmel);
    free(melT);
    free(wave);
    lily_mel_free(mel);
    lily_model_unref(m);
    lily_context_free(ctx);
    return rc;
}

static const BenchCase cases[] = {
    {"mel", "log-mel front end (STFT 2048/480 + 256 Slaney mels) of generated audio", bench_mel},
    {"enhance", "every stage of one chunk: time, GFLOP/s, real-time factor, peak RSS", bench_enhance},
};

int main(int argc, char **argv)
{
    BenchOpts o = {0, 3, "tiny", "f32", 50, 2, 0};
    const LilyCliOption opts[] = {
        {"seconds", 0, LILY_CLI_DOUBLE, &o.seconds, "S",
         "length of the generated input (mel: default 60; enhance: default 10.24)"},
        {"repeat", 0, LILY_CLI_INT, &o.repeat, "N", "timed runs, the fastest is reported (mel)"},
        {"size", 0, LILY_CLI_STRING, &o.size, "tiny|basic", "enhance: model widths (random weights)"},
        {"precision", 0, LILY_CLI_STRING, &o.precision, "f32|bf16", "enhance: compute precision"},
        {"steps", 0, LILY_CLI_INT, &o.steps, "N", "enhance: DDIM steps the totals assume (default 50)"},
        {"unet-calls", 0, LILY_CLI_INT, &o.unet_calls, "N", "enhance: UNet calls timed (default 2)"},
        {"threads", 0, LILY_CLI_INT, &o.threads, "N", "CPU threads (default: all cores)"},
    };
    char summary[512];
    int off = snprintf(summary, sizeof summary, "Benchmarks of liblily stages. Cases:");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        off += snprintf(summary + off, sizeof summary - (size_t)off, "\n  %-8s %s", cases[i].name,
                        cases[i].summary);
    const LilyCliSpec spec = {"lily-bench", "CASE [options]", summary, opts,
                              (int)(sizeof opts / sizeof opts[0]), 1, 1,
                              "Examples:\n  lily-bench mel --seconds 600\n"
                              "  lily-bench enhance --size basic --precision bf16"};
    const char *pos[1];
    int n_pos = 0;
    int r = lily_cli_parse(&spec, argc, argv, pos, &n_pos);
    if (r == LILY_CLI_EXIT) return 0;
    if (r != LILY_CLI_OK) return 2;
    bool is_mel = strcmp(pos[0], "mel") == 0;
    if (o.seconds == 0) o.seconds = is_mel ? 60.0 : 10.24;
    if (!(o.seconds > 0) || o.seconds > 86400 || o.repeat < 1 || o.steps < 1 || o.unet_calls < 1) {
        fprintf(stderr, "lily-bench: --seconds, --repeat, --steps and --unet-calls must be positive\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!strcmp(pos[0], cases[i].name)) return cases[i].run(&o);
    fprintf(stderr, "lily-bench: unknown case '%s'\n\n", pos[0]);
    lily_cli_usage(&spec, stderr);
    return 2;
}
