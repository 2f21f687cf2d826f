/* tests/kernels/bench-ops.c - GFLOP/s of the CPU kernels at AudioSR's real layer shapes.
 *
 * Built, not run by `meson test`. Usage: bench-ops [threads] [name-substring]; prints one line per
 * (shape, weight dtype, activation layout policy): best wall time of several calls after a
 * warm-up call (which builds the primitive and caches the reordered weights, as a model's
 * first chunk would) and GFLOP/s with 1 MAC = 2 FLOP, the counting of spec.md section 6.
 * Compare with PyTorch 1.13 fp32 on this machine: 250-290 GFLOP/s for the VAE and vocoder as
 * wholes (spec.md section 7). Calls the kernels directly (not through a context) so that the
 * layout policy can be switched. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/tensor.h"
#include "kernels/common/half.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/conv.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/onednn.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* util: CPU seconds over (wall seconds x threads) of the best call, near 1 when this process
 * had the cores to itself and lower when other processes took them (the figures are then too
 * low). Linux brings the other threads' CPU time up to date only at scheduler ticks, so util
 * reads about 0.5 for calls of a few ms even on an idle machine: trust it from ~20 ms on.
 * GFLOP per cpu-s: flop over the least CPU time of a call (the rate per busy core). On this
 * project's shared 2-vCPU VM other processes slow even a 1-thread run (caches, host), so
 * compare variants only between lines taken at a quiet moment. */
static double last_util, last_cpu;
static int n_threads_used = 2;

static float *buf(size_t n, float scale)
{
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, n * sizeof(float)) != 0) {
        fprintf(stderr, "out of memory (%zu floats)\n", n);
        exit(1);
    }
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = scale * ((float)(s >> 8) / 16777216.0f - 0.5f);
    }
    return p;
}

static uint16_t *to_bf16(const float *x, size_t n)
{
    uint16_t *p = malloc(n * 2);
    for (size_t i = 0; i < n; i++) p[i] = lily_f32_to_bf16_rne(x[i]);
    return p;
}

/* Runs fn until `reps` timed calls or 3 s after one warm-up call; returns the best time. */
typedef int (*BenchFn)(void *arg);

/* Substring a benchmark's name must contain to run (argv[2]; "" = all). */
static const char *filter = "";

static int skip(const char *name)
{
    return *filter && !strstr(name, filter);
}

static double best_time(BenchFn fn, void *arg, int reps)
{
    if (fn(arg) != 0) return -1.0;
    double best = 1e30, start = now();
    last_cpu = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now(), c0 = cpu_now();
        if (fn(arg) != 0) return -1.0;
        double t = now() - t0, c = cpu_now() - c0;
        if (c < last_cpu) last_cpu = c;
        if (t < best) {
            best = t;
            last_util = c / (t * n_threads_used);
        }
        if (now() - start > 3.0) break;
    }
    return best;
}

typedef struct ConvBench {
    LilyCpuDnn *h;
    LilyConvShape s;
    float *x, *y, *b;
    void *w;
    int wdt;
} ConvBench;

static int run_conv(void *arg)
{
    ConvBench *c = arg;
    int rc = lily_cpu_conv_forward(c->h, &c->s, c->x, c->w, c->wdt, 42, c->b, c->y);
    if (rc) fprintf(stderr, "conv failed: %s\n", lily_cpu_dnn_message(c->h));
    return rc;
}

static const char *layout_name(int policy)
{
    return policy == LILY_CPU_LAYOUT_BLOCKED ? "blocked" : (policy == LILY_CPU_LAYOUT_PLAIN ? "plain" : "auto");
}

static void bench_conv(LilyCpuDnn *h, const char *name, LilyConvShape s, int reps)
{
    if (skip(name)) return;
    int64_t insp = s.in[0] * s.in[1], outsp = s.out[0] * s.out[1], ksz = s.k[0] * s.k[1];
    size_t nx = (size_t)(s.n * s.c * insp), ny = (size_t)(s.n * s.o * outsp), nw = (size_t)(s.o * s.c * ksz);
    double flop = s.transposed ? 2.0 * (double)s.n * s.c * s.o * (double)insp * ksz
                               : 2.0 * (double)s.n * s.o * (double)outsp * s.c * ksz;
    float *x = buf(nx, 1.0f), *y = buf(ny, 0.0f), *w = buf(nw, 0.05f), *b = buf((size_t)s.o, 0.1f);
    uint16_t *wb = to_bf16(w, nw);
    static const int policies[3] = {LILY_CPU_LAYOUT_AUTO, LILY_CPU_LAYOUT_BLOCKED, LILY_CPU_LAYOUT_PLAIN};
    for (int dt = 0; dt < 2; dt++)
        for (int pi = 0; pi < 3; pi++) {
            lily_cpu_dnn_set_layout(h, policies[pi]);
            ConvBench c = {h, s, x, y, b, dt ? (void *)wb : (void *)w, dt ? LILY_KDT_BF16 : LILY_KDT_F32};
            double t = best_time(run_conv, &c, reps);
            printf("%-44s %-4s %-7s %8.1f ms %8.1f GFLOP/s  (%.1f GFLOP, util %.2f, %.0f GFLOP per cpu-s)\n", name,
                   dt ? "bf16" : "f32", layout_name(policies[pi]), t * 1e3, flop / t * 1e-9, flop * 1e-9,
                   last_util, flop / last_cpu * 1e-9);
            fflush(stdout);
            lily_cpu_dnn_trim(h);
        }
    lily_cpu_dnn_set_layout(h, LILY_CPU_LAYOUT_AUTO);
    free(x);
    free(y);
    free(w);
    free(b);
    free(wb);
}

static LilyConvShape conv2d_shape(int64_t c, int64_t o, int64_t hh, int64_t ww, int k, int stride)
{
    LilyConvShape s;
    memset(&s, 0, sizeof s);
    s.nd = 2;
    s.n = 1;
    s.c = c;
    s.o = o;
    s.in[0] = hh;
    s.in[1] = ww;
    s.k[0] = s.k[1] = k;
    int pad = k / 2;
    for (int i = 0; i < 2; i++) {
        s.stride[i] = stride;
        s.pad_begin[i] = s.pad_end[i] = pad;
        s.dilation[i] = 1;
    }
    s.out[0] = (hh + 2 * pad - k) / stride + 1;
    s.out[1] = (ww + 2 * pad - k) / stride + 1;
    return s;
}

static LilyConvShape conv1d_shape(int64_t c, int64_t o, int64_t len, int k, int dil)
{
    LilyConvShape s;
    memset(&s, 0, sizeof s);
    s.nd = 1;
    s.n = 1;
    s.c = c;
    s.o = o;
    s.in[0] = s.k[0] = s.out[0] = 1;
    s.in[1] = len;
    s.k[1] = k;
    int pad = (k - 1) * dil / 2;
    s.stride[0] = s.stride[1] = 1;
    s.pad_begin[1] = s.pad_end[1] = pad;
    s.dilation[0] = 1;
    s.dilation[1] = dil;
    s.out[1] = len;
    return s;
}

static LilyConvShape convt_shape(int64_t c, int64_t o, int64_t len, int u, int k)
{
    LilyConvShape s;
    memset(&s, 0, sizeof s);
    s.nd = 1;
    s.transposed = 1;
    s.n = 1;
    s.c = c;
    s.o = o;
    s.in[0] = s.k[0] = s.out[0] = 1;
    s.in[1] = len;
    s.k[1] = k;
    s.stride[0] = 1;
    s.stride[1] = u;
    s.pad_begin[1] = s.pad_end[1] = (k - u) / 2;
    s.dilation[0] = s.dilation[1] = 1;
    s.out[1] = (len - 1) * u - (k - u) / 2 * 2 + k;
    return s;
}

typedef struct AttnBench {
    LilyCpuDnn *h;
    int64_t B, T, D;
    float *q, *k, *v, *o;
} AttnBench;

static int run_attn(void *arg)
{
    AttnBench *a = arg;
    return lily_cpu_attention_forward(a->h, a->B, a->T, a->T, a->D, a->D, a->q, a->k, a->v,
                                      1.0f / sqrtf((float)a->D), a->o);
}

static void bench_attention(LilyCpuDnn *h, const char *name, int64_t B, int64_t T, int64_t D, int reps)
{
    if (skip(name)) return;
    size_t n = (size_t)(B * T * D);
    AttnBench a = {h, B, T, D, buf(n, 1.0f), buf(n, 1.0f), buf(n, 1.0f), buf(n, 0.0f)};
    double flop = 4.0 * (double)B * T * T * D;
    double t = best_time(run_attn, &a, reps);
    printf("%-44s %-4s %-7s %8.1f ms %8.1f GFLOP/s  (%.1f GFLOP, util %.2f, %.0f GFLOP per cpu-s)\n", name, "f32",
           "-", t * 1e3, flop / t * 1e-9, flop * 1e-9, last_util, flop / last_cpu * 1e-9);
    free(a.q);
    free(a.k);
    free(a.v);
    free(a.o);
}

typedef struct LinBench {
    LilyCpuDnn *h;
    int64_t M, K, N;
    float *x, *y, *b;
    void *w;
    int wdt;
} LinBench;

static int run_lin(void *arg)
{
    LinBench *l = arg;
    return lily_cpu_linear_forward(l->h, l->M, l->K, l->N, l->x, l->w, l->wdt, 7, l->b, l->y);
}

static void bench_linear(LilyCpuDnn *h, const char *name, int64_t M, int64_t K, int64_t N, int reps)
{
    if (skip(name)) return;
    float *x = buf((size_t)(M * K), 1.0f), *y = buf((size_t)(M * N), 0.0f), *w = buf((size_t)(N * K), 0.05f);
    float *b = buf((size_t)N, 0.1f);
    uint16_t *wb = to_bf16(w, (size_t)(N * K));
    double flop = 2.0 * (double)M * K * N;
    for (int dt = 0; dt < 2; dt++) {
        LinBench l = {h, M, K, N, x, y, b, dt ? (void *)wb : (void *)w, dt ? LILY_KDT_BF16 : LILY_KDT_F32};
        double t = best_time(run_lin, &l, reps);
        printf("%-44s %-4s %-7s %8.1f ms %8.1f GFLOP/s  (%.1f GFLOP, util %.2f, %.0f GFLOP per cpu-s)\n", name,
               dt ? "bf16" : "f32", "-", t * 1e3, flop / t * 1e-9, flop * 1e-9, last_util, flop / last_cpu * 1e-9);
    }
    free(x);
    free(y);
    free(w);
    free(b);
    free(wb);
}

typedef struct GnBench {
    int nt;
    int64_t C, S;
    float *x, *y, *g, *b;
} GnBench;

static int run_gn(void *arg)
{
    GnBench *g = arg;
    return lily_cpu_group_norm_forward(g->nt, 1, g->C, g->S, 32, g->x, g->g, g->b, 1e-6f, 1, g->y);
}

static void bench_group_norm(int nt, const char *name, int64_t C, int64_t S, int reps)
{
    if (skip(name)) return;
    GnBench g = {nt, C, S, buf((size_t)(C * S), 1.0f), buf((size_t)(C * S), 0.0f), buf((size_t)C, 1.0f),
                 buf((size_t)C, 1.0f)};
    double t = best_time(run_gn, &g, reps);
    double bytes = 2.0 * 4.0 * (double)C * S; /* one read + one write at least */
    printf("%-44s %-4s %-7s %8.1f ms %8.1f GB/s in+out  (util %.2f)\n", name, "f32", "-", t * 1e3,
           bytes / t * 1e-9, last_util);
    free(g.x);
    free(g.y);
    free(g.g);
    free(g.b);
}

int main(int argc, char **argv)
{
    int nt = argc > 1 ? atoi(argv[1]) : 2;
    n_threads_used = nt > 0 ? nt : 1;
    if (argc > 2) filter = argv[2];
    LilyCpuDnn *h = NULL;
    if (lily_cpu_dnn_new(nt, &h) != LILY_CPU_OK) {
        fprintf(stderr, "cannot create the oneDNN handle\n");
        return 1;
    }
    double load[3] = {0};
    if (getloadavg(load, 3) < 0) load[0] = -1.0;
    printf("bench-ops: %d threads; best of up to 3 calls after a warm-up; load average %.2f at start\n", nt,
           load[0]);
    {
        bench_conv(h, "vae dec conv3x3 256->256 @512x128", conv2d_shape(256, 256, 512, 128, 3, 1), 3);
        bench_conv(h, "vae dec conv3x3 512->512 @256x64", conv2d_shape(512, 512, 256, 64, 3, 1), 3);
        bench_conv(h, "vae dec conv3x3 128->128 @1024x256", conv2d_shape(128, 128, 1024, 256, 3, 1), 3);
        bench_conv(h, "vae dec conv3x3 1024->1024 @128x32", conv2d_shape(1024, 1024, 128, 32, 3, 1), 3);
        bench_conv(h, "vae dec conv3x3 128->1 @1024x256", conv2d_shape(128, 1, 1024, 256, 3, 1), 3);
        bench_conv(h, "vae enc conv3x3 1->128 @1024x256", conv2d_shape(1, 128, 1024, 256, 3, 1), 3);
        bench_conv(h, "vae nin 1x1 256->128 @1024x256", conv2d_shape(256, 128, 1024, 256, 1, 1), 3);
    }
    {
        bench_conv(h, "unet conv3x3 128->128 @128x32", conv2d_shape(128, 128, 128, 32, 3, 1), 5);
        bench_conv(h, "unet conv3x3 256->256 @64x16", conv2d_shape(256, 256, 64, 16, 3, 1), 5);
        bench_conv(h, "unet conv3x3 384->384 @32x8", conv2d_shape(384, 384, 32, 8, 3, 1), 5);
        bench_conv(h, "unet conv3x3 640->640 @16x4", conv2d_shape(640, 640, 16, 4, 3, 1), 5);
        bench_attention(h, "unet attention 8 heads 1024x1024 D32", 8, 1024, 32, 5);
        bench_linear(h, "unet linear 1024x256 -> 2048 (geglu proj)", 1024, 256, 2048, 5);
        bench_linear(h, "unet linear 256x384 -> 384 (q/k/v)", 256, 384, 384, 5);
    }
    {
        bench_conv(h, "vocoder conv1d 96ch k11 d3 L=96000", conv1d_shape(96, 96, 96000, 11, 3), 3);
        bench_conv(h, "vocoder conv1d 768ch k7 d3 L=6144", conv1d_shape(768, 768, 6144, 7, 3), 3);
        bench_conv(h, "vocoder conv1d 384ch k15 d5 L=30720", conv1d_shape(384, 384, 30720, 15, 5), 3);
        bench_conv(h, "vocoder conv1d 768ch k3 d1 L=6144", conv1d_shape(768, 768, 6144, 3, 1), 3);
        bench_conv(h, "vocoder conv1d 192ch k7 d1 L=122880", conv1d_shape(192, 192, 122880, 7, 1), 3);
        bench_conv(h, "vocoder conv1d 48ch k15 d1 L=491520", conv1d_shape(48, 48, 491520, 15, 1), 3);
        bench_conv(h, "vocoder conv_post 48->1 k7 L=491536", conv1d_shape(48, 1, 491536, 7, 1), 3);
        bench_conv(h, "vocoder conv_pre 256->1536 k7 L=1024", conv1d_shape(256, 1536, 1024, 7, 1), 3);
        bench_conv(h, "vocoder convT 1536->768 u6 k12 L=1024", convt_shape(1536, 768, 1024, 6, 12), 3);
        bench_conv(h, "vocoder convT 768->384 u5 k10 L=6144", convt_shape(768, 384, 6144, 5, 10), 3);
        bench_conv(h, "vocoder convT 384->192 u4 k8 L=30721", convt_shape(384, 192, 30721, 4, 8), 3);
        bench_conv(h, "vocoder convT 96->48 u2 k4 L=245760", convt_shape(96, 48, 245760, 2, 4), 3);
    }
    bench_attention(h, "vae attention 1x4096x4096 D1024", 1, 4096, 1024, 2);
    bench_group_norm(nt, "group_norm+silu 128ch 1024x256", 128, 1024 * 256, 5);
    if (getloadavg(load, 3) < 0) load[0] = -1.0;
    printf("load average %.2f at the end (util < 0.9 marks a contended measurement)\n", load[0]);
    lily_cpu_dnn_free(h);
    return 0;
}
