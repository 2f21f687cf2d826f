/* kernels/cpu/stft.c - STFT, inverse STFT and the STFT's adjoint on FFTW3f (see stft.h).
 *
 * Reference behaviour: torch.stft(normalized=False, onesided=True, center=False) and
 * torch.istft(center=False) (irfft, window, overlap-add, division by the overlap-added squared
 * window where it exceeds 1e-11).
 *
 * Every frame is one 1-D real transform, executed through the new-array interface on the
 * calling thread's buffers (fftwf_execute_dft_r2c / _c2r are thread-safe; only the planner is
 * not). The inverse transforms write all frames of the call into one buffer, then every output
 * sample gathers the frames covering it (common/stft.h), in parallel over samples with no two
 * threads writing the same element.
 *
 * FFTW's planner keeps process-wide tables and is not re-entrant, and two contexts may plan
 * from two threads, so the single-precision planner is made thread-safe once per process with
 * fftwf_make_planner_thread_safe() (libfftw3f_threads) under pthread_once: a one-time library
 * initialisation, as engine/dsp/stft.c does for the double-precision planner, not state of
 * ours. */
#include <fftw3.h>
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/stft.h"
#include "cpu/onednn.h" /* LilyCpuStatus */
#include "cpu/stft.h"

/* A call shorter than this many frame samples runs on one thread. */
#define PAR_MIN 32768
/* Transform sizes kept; a workload with more is not one model: start over. */
#define MAX_PLANS 16

typedef struct FftPlan {
    int n;
    fftwf_plan r2c; /* n reals -> n/2+1 complex */
    fftwf_plan c2r; /* n/2+1 complex -> n reals, unnormalised, destroys its input */
} FftPlan;

struct LilyCpuFft {
    FftPlan plans[MAX_PLANS];
    int n_plans;
    float *work; /* per-thread transform buffers (fftwf_malloc: FFTW's SIMD alignment) */
    size_t work_floats;
    float *frames; /* the inverse transforms' outputs of one call */
    size_t frames_floats;
    char msg[256];
};

static pthread_once_t planner_once = PTHREAD_ONCE_INIT;

static void planner_init(void)
{
    fftwf_make_planner_thread_safe();
}

static int fail(LilyCpuFft *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(LilyCpuFft *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    return code;
}

int lily_cpu_fft_new(LilyCpuFft **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? LILY_CPU_OK : LILY_CPU_ERR_NO_MEMORY;
}

static void plans_clear(LilyCpuFft *c)
{
    for (int i = 0; i < c->n_plans; i++) {
        if (c->plans[i].r2c) fftwf_destroy_plan(c->plans[i].r2c);
        if (c->plans[i].c2r) fftwf_destroy_plan(c->plans[i].c2r);
    }
    c->n_plans = 0;
}

void lily_cpu_fft_free(LilyCpuFft *c)
{
    if (!c) return;
    plans_clear(c);
    fftwf_free(c->work);
    free(c->frames);
    free(c);
}

const char *lily_cpu_fft_message(const LilyCpuFft *c)
{
    return c ? c->msg : "";
}

/* Floats of one thread's buffers: n reals, then n/2+1 complex, each on a 64-byte boundary so
 * every thread's arrays have the alignment the plans were made for. */
static size_t round16(size_t v)
{
    return (v + 15) / 16 * 16;
}

static size_t slot_floats(int n)
{
    return round16((size_t)n) + round16(2 * (size_t)lily_stft_bins(n));
}

static int plan_get(LilyCpuFft *c, int n, const FftPlan **out)
{
    for (int i = 0; i < c->n_plans; i++)
        if (c->plans[i].n == n) {
            *out = &c->plans[i];
            return LILY_CPU_OK;
        }
    if (c->n_plans == MAX_PLANS) plans_clear(c);
    pthread_once(&planner_once, planner_init);
    /* planned on buffers of the threads' alignment; FFTW_ESTIMATE does not touch them */
    float *in = fftwf_alloc_real(slot_floats(n));
    if (!in) return fail(c, LILY_CPU_ERR_NO_MEMORY, "out of host memory planning a %d-point FFT", n);
    fftwf_complex *sp = (fftwf_complex *)(in + round16((size_t)n));
    FftPlan p = {n, NULL, NULL};
    p.r2c = fftwf_plan_dft_r2c_1d(n, in, sp, FFTW_ESTIMATE);
    p.c2r = fftwf_plan_dft_c2r_1d(n, sp, in, FFTW_ESTIMATE | FFTW_DESTROY_INPUT);
    fftwf_free(in);
    if (!p.r2c || !p.c2r) {
        if (p.r2c) fftwf_destroy_plan(p.r2c);
        if (p.c2r) fftwf_destroy_plan(p.c2r);
        return fail(c, LILY_CPU_ERR_UNSUPPORTED, "FFTW could not plan a %d-point real FFT", n);
    }
    c->plans[c->n_plans] = p;
    *out = &c->plans[c->n_plans++];
    return LILY_CPU_OK;
}

/* Buffers of n_threads threads for size-n transforms. */
static int work_get(LilyCpuFft *c, int n, int n_threads)
{
    size_t want = slot_floats(n) * (size_t)n_threads;
    if (c->work_floats >= want) return LILY_CPU_OK;
    fftwf_free(c->work);
    c->work_floats = 0;
    c->work = fftwf_alloc_real(want);
    if (!c->work)
        return fail(c, LILY_CPU_ERR_NO_MEMORY, "out of host memory for FFT buffers (%.1f MiB)",
                    (double)want * 4.0 / 1048576.0);
    c->work_floats = want;
    return LILY_CPU_OK;
}

static int frames_get(LilyCpuFft *c, size_t floats)
{
    if (c->frames_floats >= floats) return LILY_CPU_OK;
    free(c->frames);
    c->frames_floats = 0;
    c->frames = malloc((floats ? floats : 1) * sizeof(float));
    if (!c->frames)
        return fail(c, LILY_CPU_ERR_NO_MEMORY, "out of host memory for STFT frames (%.1f MiB)",
                    (double)floats * 4.0 / 1048576.0);
    c->frames_floats = floats;
    return LILY_CPU_OK;
}

static int prepare(LilyCpuFft *c, int n_fft, int n_threads, const FftPlan **p)
{
    c->msg[0] = '\0';
    int rc = plan_get(c, n_fft, p);
    if (rc == LILY_CPU_OK) rc = work_get(c, n_fft, n_threads);
    return rc;
}

int lily_cpu_stft(LilyCpuFft *c, int n_threads, const float *x, const float *w, int64_t B,
                  int64_t L, int n_fft, int hop, float *y)
{
    int64_t F = lily_stft_frames(L, n_fft, hop), R = B * F;
    if (R == 0) return LILY_CPU_OK;
    if (n_threads < 1) n_threads = 1;
    const FftPlan *p;
    int rc = prepare(c, n_fft, n_threads, &p);
    if (rc != LILY_CPU_OK) return rc;
    const int K = lily_stft_bins(n_fft);
    const size_t slot = slot_floats(n_fft);
    float *work = c->work;
#pragma omp parallel num_threads(n_threads) if (R * n_fft > PAR_MIN)
    {
        float *in = work + slot * (size_t)omp_get_thread_num();
        fftwf_complex *sp = (fftwf_complex *)(in + round16((size_t)n_fft));
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            const float *xr = x + (r / F) * L;
            int64_t f = r % F;
            for (int n = 0; n < n_fft; n++) in[n] = lily_stft_frame_elem(xr, w, f, n, hop);
            fftwf_execute_dft_r2c(p->r2c, in, sp);
            memcpy(y + r * 2 * K, sp, (size_t)K * 2 * sizeof(float));
        }
    }
    return LILY_CPU_OK;
}

/* Every frame's complex-to-real transform of spec (bins prepared by lily_stft_c2r_bin) into
 * c->frames [R, n_fft], then out[b, t] = lily_stft_ola_sample for t < Lo. */
static int inverse(LilyCpuFft *c, int n_threads, const float *spec, const float *w, int64_t B,
                   int64_t F, int n_fft, int hop, int adjoint, int64_t Lo, float *out)
{
    int64_t R = B * F;
    if (n_threads < 1) n_threads = 1;
    if (R == 0) {
        memset(out, 0, (size_t)(B * Lo) * sizeof(float));
        return LILY_CPU_OK;
    }
    const FftPlan *p;
    int rc = prepare(c, n_fft, n_threads, &p);
    if (rc == LILY_CPU_OK) rc = frames_get(c, (size_t)R * (size_t)n_fft);
    if (rc != LILY_CPU_OK) return rc;
    const int K = lily_stft_bins(n_fft);
    const size_t slot = slot_floats(n_fft);
    const float scale = adjoint ? 1.0f : 1.0f / (float)n_fft;
    float *work = c->work, *frames = c->frames;
#pragma omp parallel num_threads(n_threads) if (R * n_fft > PAR_MIN)
    {
        float *in = work + slot * (size_t)omp_get_thread_num();
        float *sp = in + round16((size_t)n_fft);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < R; r++) {
            const float *s = spec + r * 2 * K;
            for (int k = 0; k < K; k++)
                lily_stft_c2r_bin(s[2 * k], s[2 * k + 1], k, n_fft, adjoint, &sp[2 * k], &sp[2 * k + 1]);
            fftwf_execute_dft_c2r(p->c2r, (fftwf_complex *)sp, in);
            memcpy(frames + r * n_fft, in, (size_t)n_fft * sizeof(float));
        }
        /* (the implicit barrier of the loop above: every frame is written) */
#pragma omp for schedule(static)
        for (int64_t i = 0; i < B * Lo; i++) {
            int64_t b = i / Lo, t = i % Lo;
            out[i] = lily_stft_ola_sample(frames + b * F * n_fft, w, t, n_fft, hop, F, scale, !adjoint);
        }
    }
    return LILY_CPU_OK;
}

int lily_cpu_istft(LilyCpuFft *c, int n_threads, const float *spec, const float *w, int64_t B,
                   int64_t F, int n_fft, int hop, float *y)
{
    int64_t Lo = F > 0 ? (F - 1) * hop + n_fft : 0;
    return inverse(c, n_threads, spec, w, B, F, n_fft, hop, 0, Lo, y);
}

int lily_cpu_stft_backward(LilyCpuFft *c, int n_threads, const float *w, int64_t B, int64_t F,
                           int64_t L, int n_fft, int hop, const float *dy, float *dx)
{
    return inverse(c, n_threads, dy, w, B, F, n_fft, hop, 1, L, dx);
}
