/* kernels/cpu/stft.h - STFT, inverse STFT and the STFT's adjoint on the CPU, on FFTW3 in
 * single precision.
 *
 * Semantics: engine/backend/backend.h (stft, istft, stft_backward); per-element parts:
 * kernels/common/stft.h, the functions kernels/cuda/stft.cu calls too.
 *
 * LilyCpuFft is the per-context state of these kernels (one per CPU backend, next to its
 * LilyCpuDnn): FFTW plans by transform size, per-thread aligned transform buffers and the
 * frame buffer of the inverse transforms, all growing on demand and freed with it. Nothing of
 * ours is global; FFTW's planner keeps process-wide tables, so planning goes through FFTW's
 * thread-safe planner (fftwf_make_planner_thread_safe, switched on once per process).
 * Executing a plan is thread-safe, so the frames of one call are shared among OpenMP threads,
 * each with its own buffers. Plans are made with FFTW_ESTIMATE: cheap, and the same plan (so
 * the same bits) on every run. */
#ifndef LILY_KERNELS_CPU_STFT_H
#define LILY_KERNELS_CPU_STFT_H

#include <stdint.h>

typedef struct LilyCpuFft LilyCpuFft;

/* Returns LILY_CPU_OK or LILY_CPU_ERR_NO_MEMORY. */
int lily_cpu_fft_new(LilyCpuFft **out);
void lily_cpu_fft_free(LilyCpuFft *c);
/* What the last failing call reported (empty when none). */
const char *lily_cpu_fft_message(const LilyCpuFft *c);

/* x [B, L], w [n_fft] -> y [B, F, n_fft/2+1, 2], F = (L - n_fft) / hop + 1 (L >= n_fft). */
int lily_cpu_stft(LilyCpuFft *c, int n_threads, const float *x, const float *w, int64_t B,
                  int64_t L, int n_fft, int hop, float *y);
/* spec [B, F, n_fft/2+1, 2] -> y [B, (F - 1) hop + n_fft]. */
int lily_cpu_istft(LilyCpuFft *c, int n_threads, const float *spec, const float *w, int64_t B,
                   int64_t F, int n_fft, int hop, float *y);
/* dy [B, F, n_fft/2+1, 2] -> dx [B, L] (overwritten), the adjoint of lily_cpu_stft. */
int lily_cpu_stft_backward(LilyCpuFft *c, int n_threads, const float *w, int64_t B, int64_t F,
                           int64_t L, int n_fft, int hop, const float *dy, float *dx);

#endif /* LILY_KERNELS_CPU_STFT_H */
