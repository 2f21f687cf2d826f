/* lily-bench.c - developer benchmarks of liblily stages: `lily-bench CASE [options]`.
 *
 * Each case times one stage on generated input and prints its speed and the process's peak
 * resident memory (getrusage ru_maxrss). Cases live in the table at the bottom; a new stage
 * adds a function and a row there.
 *
 *   lily-bench mel                  log-mel of 60 s of generated 48 kHz audio
 *   lily-bench mel --seconds 600    ten minutes
 *   lily-bench --help               lists the cases
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <lily/lily.h>

typedef struct BenchOpts {
    double seconds; /* length of the generated input */
    int repeat;     /* timed runs; the fastest is reported */
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

static const BenchCase cases[] = {
    {"mel", "log-mel front end (STFT 2048/480 + 256 Slaney mels) of generated audio", bench_mel},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: lily-bench CASE [--seconds S] [--repeat N]\n\ncases:\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        fprintf(f, "  %-8s %s\n", cases[i].name, cases[i].summary);
    fprintf(f, "\noptions:\n"
               "  --seconds S  length of the generated input in seconds (default 60)\n"
               "  --repeat N   timed runs, the fastest is reported (default 3)\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    BenchOpts o = {60.0, 3};
    for (int i = 2; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            o.seconds = strtod(argv[++i], &end);
            if (*end || !(o.seconds > 0) || o.seconds > 86400) {
                fprintf(stderr, "lily-bench: --seconds wants a length in (0, 86400], got '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            long r = strtol(argv[++i], &end, 10);
            if (*end || r < 1 || r > 1000) {
                fprintf(stderr, "lily-bench: --repeat wants 1..1000, got '%s'\n", argv[i]);
                return 2;
            }
            o.repeat = (int)r;
        } else {
            fprintf(stderr, "lily-bench: unknown option '%s'\n\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!strcmp(argv[1], cases[i].name)) return cases[i].run(&o);
    fprintf(stderr, "lily-bench: unknown case '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
