/* kernels/cuda/stft.h - STFT, inverse STFT and the STFT's adjoint on the GPU: cuFFT for the
 * transforms, Lily's kernels for framing and windowing, the spectrum preparation of the
 * complex-to-real transforms and the overlap-add.
 *
 * Semantics: engine/backend/backend.h (stft, istft, stft_backward); per-element parts:
 * kernels/common/stft.h, the functions kernels/cpu/stft.c calls too. The overlap-add is a
 * gather (each output sample sums the frames that cover it, in frame order): deterministic,
 * no atomics.
 *
 * cuFFT plans (single precision, 1-D, batched over frames with cufftMakePlanMany) are cached
 * in the handle by (n_fft, batch, direction), bound to the handle's stream, and destroyed with
 * the handle. Their work areas are not cuFFT's own allocations but the handle's WS scratch
 * slot; the frames go through the SRC and DST slots; so after the first call of a shape no
 * call allocates device memory. Frames are transformed in batches of at most 2^21 / n_fft
 * frames (1024 at n_fft 2048), which bounds the work area and the number of plan sizes. */
#ifndef LILY_KERNELS_CUDA_STFT_H
#define LILY_KERNELS_CUDA_STFT_H

#include <stdint.h>

#include "cuda/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x [B, L], w [n_fft] -> y [B, F, n_fft/2+1, 2], F = (L - n_fft) / hop + 1 (L >= n_fft). */
int lily_cuda_stft(LilyCudaHandle *h, const float *x, const float *w, int64_t B, int64_t L,
                   int n_fft, int hop, float *y);
/* spec [B, F, n_fft/2+1, 2] -> y [B, (F - 1) hop + n_fft]. */
int lily_cuda_istft(LilyCudaHandle *h, const float *spec, const float *w, int64_t B, int64_t F,
                    int n_fft, int hop, float *y);
/* dy [B, F, n_fft/2+1, 2] -> dx [B, L] (overwritten), the adjoint of lily_cuda_stft. */
int lily_cuda_stft_backward(LilyCudaHandle *h, const float *w, int64_t B, int64_t F, int64_t L,
                            int n_fft, int hop, const float *dy, float *dx);

#ifdef __cplusplus
}
#endif

#endif /* LILY_KERNELS_CUDA_STFT_H */
