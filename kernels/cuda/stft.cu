/* kernels/cuda/stft.cu - STFT, inverse STFT and the STFT's adjoint on cuFFT (see stft.h).
 *
 * Reference behaviour: torch.stft(normalized=False, onesided=True, center=False) and
 * torch.istft(center=False), as kernels/cpu/stft.c implements them on FFTW.
 *
 * stft:          frame_kernel (window) -> SRC, cufftExecR2C SRC -> y, per batch of frames.
 * istft/adjoint: bins_kernel (lily_stft_c2r_bin) -> SRC, cufftExecC2R SRC -> DST (every
 *                frame of the call), then ola_kernel gathers DST into the output.
 * A complex-to-real cuFFT transform may overwrite its input, which is why the spectrum always
 * goes through SRC (the caller's spec/dy stay intact). */
#include <stdlib.h>
#include <string.h>

#include <cufft.h>

#include "common/stft.h"
#include "cuda/handle-impl.cuh"
#include "cuda/stft.h"

/* Frame samples per cuFFT execution (2^21 floats = 8 MiB of frames). */
#define LILY_FFT_CHUNK_SAMPLES ((int64_t)1 << 21)
/* Plans kept; a workload with more shapes than this is not one model: start over. */
#define LILY_FFT_MAX_PLANS 32

typedef struct FftPlan {
    int n, batch, inverse;
    bool created; /* plan holds a cuFFT handle (0 may be a valid one) */
    cufftHandle plan;
    size_t ws; /* work area bytes */
} FftPlan;

struct LilyCudaFftCache {
    FftPlan plans[LILY_FFT_MAX_PLANS];
    int n;
};

extern "C" const char *lily_cufft_error_string(int code)
{
    switch (code) {
    case CUFFT_SUCCESS: return "CUFFT_SUCCESS";
    case CUFFT_INVALID_PLAN: return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED: return "CUFFT_ALLOC_FAILED (out of memory)";
    case CUFFT_INVALID_TYPE: return "CUFFT_INVALID_TYPE";
    case CUFFT_INVALID_VALUE: return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR: return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED: return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED: return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE: return "CUFFT_INVALID_SIZE";
    case CUFFT_UNALIGNED_DATA: return "CUFFT_UNALIGNED_DATA";
    case CUFFT_INVALID_DEVICE: return "CUFFT_INVALID_DEVICE";
    case CUFFT_NO_WORKSPACE: return "CUFFT_NO_WORKSPACE";
    case CUFFT_NOT_IMPLEMENTED: return "CUFFT_NOT_IMPLEMENTED";
    case CUFFT_NOT_SUPPORTED: return "CUFFT_NOT_SUPPORTED";
    case CUFFT_MISSING_DEPENDENCY: return "CUFFT_MISSING_DEPENDENCY";
    case CUFFT_NVRTC_FAILURE: return "CUFFT_NVRTC_FAILURE";
    case CUFFT_NVJITLINK_FAILURE: return "CUFFT_NVJITLINK_FAILURE";
    case CUFFT_NVSHMEM_FAILURE: return "CUFFT_NVSHMEM_FAILURE";
    default: return "unknown cuFFT error";
    }
}

static void plans_clear(struct LilyCudaFftCache *c)
{
    for (int i = 0; i < c->n; i++) (void)cufftDestroy(c->plans[i].plan);
    c->n = 0;
}

void lily_cuda_fft_cache_free(struct LilyCudaFftCache *c)
{
    if (!c) return;
    plans_clear(c);
    free(c);
}

static int plan_build(LilyCudaHandle *h, FftPlan *p)
{
    int n = p->n;
    LILY_CUFFT_CHECK(h, cufftCreate(&p->plan));
    p->created = true;
    /* the work area comes from the handle's scratch at each execution */
    LILY_CUFFT_CHECK(h, cufftSetAutoAllocation(p->plan, 0));
    /* NULL embeds: the basic layout, frames of n reals and n/2+1 complex back to back */
    LILY_CUFFT_CHECK(h, cufftMakePlanMany(p->plan, 1, &n, NULL, 1, 0, NULL, 1, 0,
                                          p->inverse ? CUFFT_C2R : CUFFT_R2C, p->batch, &p->ws));
    LILY_CUFFT_CHECK(h, cufftSetStream(p->plan, h->stream));
    return LILY_CUDA_OK;
}

static int plan_get(LilyCudaHandle *h, int n, int batch, int inverse, FftPlan **out)
{
    struct LilyCudaFftCache *c = h->fft;
    if (!c) {
        c = (struct LilyCudaFftCache *)calloc(1, sizeof *c);
        if (!c) return lily_cuda_fail(h, LILY_CUDA_ERR_NO_MEMORY, "out of host memory (cuFFT plans)");
        h->fft = c;
    }
    for (int i = 0; i < c->n; i++) {
        FftPlan *p = &c->plans[i];
        if (p->n == n && p->batch == batch && p->inverse == inverse) {
            *out = p;
            return LILY_CUDA_OK;
        }
    }
    if (c->n == LILY_FFT_MAX_PLANS) {
        /* transforms queued earlier may still use the plans' device data */
        LILY_CUDA_CHECK(h, cudaStreamSynchronize(h->stream));
        plans_clear(c);
    }
    FftPlan *p = &c->plans[c->n];
    memset(p, 0, sizeof *p);
    p->n = n;
    p->batch = batch;
    p->inverse = inverse;
    int rc = plan_build(h, p);
    if (rc != LILY_CUDA_OK) {
        if (p->created) (void)cufftDestroy(p->plan);
        memset(p, 0, sizeof *p);
        return rc;
    }
    c->n++;
    *out = p;
    return LILY_CUDA_OK;
}

/* Frames per execution. */
static int64_t chunk_frames(int n_fft, int64_t R)
{
    int64_t c = LILY_FFT_CHUNK_SAMPLES / n_fft;
    if (c < 1) c = 1;
    return c < R ? c : R;
}

/* The plan for `batch` frames, with its work area pointed at the WS scratch slot. */
static int plan_ready(LilyCudaHandle *h, int n_fft, int64_t batch, int inverse, FftPlan **p)
{
    LILY_CUDA_TRY(plan_get(h, n_fft, (int)batch, inverse, p));
    void *ws = NULL;
    LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_WS, (*p)->ws, &ws));
    LILY_CUFFT_CHECK(h, cufftSetWorkArea((*p)->plan, ws));
    return LILY_CUDA_OK;
}

/* frames[rr, n] = x[b, f hop + n] w[n] for rows r = r0 + rr = b F + f, rr < nb. */
__global__ static void frame_kernel(const float *x, const float *w, int64_t L, int64_t F,
                                    int n_fft, int hop, int64_t r0, int64_t nb, float *frames)
{
    LILY_CUDA_LOOP(i, nb * n_fft)
    {
        int64_t r = r0 + i / n_fft;
        int n = (int)(i % n_fft);
        frames[i] = lily_stft_frame_elem(x + (r / F) * L, w, r % F, n, hop);
    }
}

/* out[rr, k] = lily_stft_c2r_bin(spec[r0 + rr, k]), rr < nb (complex interleaved). */
__global__ static void bins_kernel(const float *spec, int64_t r0, int64_t nb, int n_fft,
                                   int adjoint, float *out)
{
    const int K = lily_stft_bins(n_fft);
    LILY_CUDA_LOOP(i, nb * K)
    {
        const float *s = spec + 2 * (r0 * K + i);
        lily_stft_c2r_bin(s[0], s[1], (int)(i % K), n_fft, adjoint, &out[2 * i], &out[2 * i + 1]);
    }
}

/* out[b, t] = lily_stft_ola_sample over row b's frames, t < Lo. */
__global__ static void ola_kernel(const float *frames, const float *w, int64_t B, int64_t F,
                                  int n_fft, int hop, int64_t Lo, float scale, int envelope,
                                  float *out)
{
    LILY_CUDA_LOOP(i, B * Lo)
    {
        int64_t b = i / Lo, t = i % Lo;
        out[i] = lily_stft_ola_sample(frames + b * F * n_fft, w, t, n_fft, hop, F, scale, envelope);
    }
}

int lily_cuda_stft(LilyCudaHandle *h, const float *x, const float *w, int64_t B, int64_t L,
                   int n_fft, int hop, float *y)
{
    int64_t F = lily_stft_frames(L, n_fft, hop), R = B * F;
    if (R == 0) return LILY_CUDA_OK;
    const int K = lily_stft_bins(n_fft);
    const int64_t chunk = chunk_frames(n_fft, R);
    float *frames = NULL;
    LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_SRC,
                                    (size_t)chunk * (size_t)n_fft * sizeof(float), (void **)&frames));
    for (int64_t r0 = 0; r0 < R; r0 += chunk) {
        int64_t nb = R - r0 < chunk ? R - r0 : chunk;
        FftPlan *p = NULL;
        LILY_CUDA_TRY(plan_ready(h, n_fft, nb, 0, &p));
        frame_kernel<<<lily_cuda_grid(nb * n_fft), LILY_CUDA_THREADS, 0, h->stream>>>(
            x, w, L, F, n_fft, hop, r0, nb, frames);
        LILY_CUDA_LAUNCHED(h);
        LILY_CUFFT_CHECK(h, cufftExecR2C(p->plan, (cufftReal *)frames,
                                         (cufftComplex *)(y + 2 * r0 * K)));
    }
    return LILY_CUDA_OK;
}

/* Every frame's complex-to-real transform into DST, then the gather into out [B, Lo]. */
static int inverse(LilyCudaHandle *h, const float *spec, const float *w, int64_t B, int64_t F,
                   int n_fft, int hop, int adjoint, int64_t Lo, float *out)
{
    int64_t R = B * F;
    if (B * Lo == 0) return LILY_CUDA_OK;
    if (R == 0) {
        LILY_CUDA_CHECK(h, cudaMemsetAsync(out, 0, (size_t)(B * Lo) * sizeof(float), h->stream));
        return LILY_CUDA_OK;
    }
    const int K = lily_stft_bins(n_fft);
    const int64_t chunk = chunk_frames(n_fft, R);
    float *bins = NULL, *frames = NULL;
    LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_DST,
                                    (size_t)R * (size_t)n_fft * sizeof(float), (void **)&frames));
    LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_SRC,
                                    (size_t)chunk * (size_t)K * 2 * sizeof(float), (void **)&bins));
    for (int64_t r0 = 0; r0 < R; r0 += chunk) {
        int64_t nb = R - r0 < chunk ? R - r0 : chunk;
        FftPlan *p = NULL;
        LILY_CUDA_TRY(plan_ready(h, n_fft, nb, 1, &p));
        bins_kernel<<<lily_cuda_grid(nb * K), LILY_CUDA_THREADS, 0, h->stream>>>(spec, r0, nb, n_fft,
                                                                                 adjoint, bins);
        LILY_CUDA_LAUNCHED(h);
        LILY_CUFFT_CHECK(h, cufftExecC2R(p->plan, (cufftComplex *)bins,
                                         (cufftReal *)(frames + r0 * n_fft)));
    }
    const float scale = adjoint ? 1.0f : 1.0f / (float)n_fft;
    ola_kernel<<<lily_cuda_grid(B * Lo), LILY_CUDA_THREADS, 0, h->stream>>>(
        frames, w, B, F, n_fft, hop, Lo, scale, !adjoint, out);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

int lily_cuda_istft(LilyCudaHandle *h, const float *spec, const float *w, int64_t B, int64_t F,
                    int n_fft, int hop, float *y)
{
    int64_t Lo = F > 0 ? (F - 1) * hop + n_fft : 0;
    return inverse(h, spec, w, B, F, n_fft, hop, 0, Lo, y);
}

int lily_cuda_stft_backward(LilyCudaHandle *h, const float *w, int64_t B, int64_t F, int64_t L,
                            int n_fft, int hop, const float *dy, float *dx)
{
    return inverse(h, dy, w, B, F, n_fft, hop, 1, L, dx);
}
