/* kernels/common/stft.h - the per-element parts of the STFT op family (stft, istft,
 * stft_backward), shared by kernels/cpu/stft.c (FFTW) and kernels/cuda/stft.cu (cuFFT).
 *
 * The FFTs themselves come from the libraries; what is ours is written once here:
 *   - framing and windowing: frame f of row b is x[b, f*hop + n] * w[n], n < n_fft;
 *   - the spectrum handed to a complex-to-real transform: the imaginary parts of bin 0 and
 *     (even n_fft) bin n_fft/2 are dropped, as numpy/torch irfft do (FFTW and cuFFT would
 *     otherwise be free to do anything with them), and for the adjoint of the one-sided
 *     forward transform the interior bins are halved (lily_stft_c2r_bin);
 *   - overlap-add as a gather (lily_stft_ola_sample): output sample t sums the frames that
 *     cover it, in increasing frame order, so every backend adds the same terms in the same
 *     order without atomics; for istft it also divides by the overlap-added squared window
 *     (torch.istft's envelope rule, lily_istft_envelope_div).
 *
 * The adjoint. With y_k = sum_n x_n w_n e^{-2 pi i k n / N}, k = 0..N/2 (one-sided), and a
 * real loss L with dL/dRe(y_k) = dyr_k, dL/dIm(y_k) = dyi_k:
 *   dL/dx_n = w_n sum_{k=0}^{N/2} (dyr_k cos(2 pi k n / N) - dyi_k sin(2 pi k n / N)).
 * An unnormalised complex-to-real transform of Z (the Hermitian extension of bins 0..N/2)
 * computes Re Z_0 + [N even] Re Z_{N/2} (-1)^n + 2 sum_{0<k<N/2} (Re Z_k cos - Im Z_k sin),
 * so Z_k = c_k dy_k with c_k = 1 at k = 0 and k = N/2 and 1/2 elsewhere gives the sum exactly
 * (sin vanishes at k = 0 and k = N/2, so dropping those imaginary parts is also exact). */
#ifndef LILY_KERNELS_COMMON_STFT_H
#define LILY_KERNELS_COMMON_STFT_H

#include <stdint.h>

#include "hd.h"

/* torch.istft: the envelope is "non-zero" above this value. */
#define LILY_ISTFT_ENV_EPS 1e-11f

/* Number of one-sided bins. */
LILY_HD int lily_stft_bins(int n_fft)
{
    return n_fft / 2 + 1;
}

/* Frames of a signal of length L (L >= n_fft): (L - n_fft) / hop + 1. */
LILY_HD int64_t lily_stft_frames(int64_t L, int n_fft, int hop)
{
    return L < n_fft ? 0 : (L - n_fft) / hop + 1;
}

/* Frames [*f0, *f1] cover sample t (empty when *f0 > *f1). */
LILY_HD void lily_stft_cover(int64_t t, int n_fft, int hop, int64_t F, int64_t *f0, int64_t *f1)
{
    int64_t hi = t / hop;
    int64_t lo = t - n_fft + 1 <= 0 ? 0 : (t - n_fft + 1 + hop - 1) / hop;
    *f0 = lo;
    *f1 = hi < F - 1 ? hi : F - 1;
}

/* Element n of frame f, windowed: x is one row of the signal. */
LILY_HD float lily_stft_frame_elem(const float *x, const float *w, int64_t f, int n, int hop)
{
    return x[f * hop + n] * w[n];
}

/* Bin k of the spectrum handed to the complex-to-real transform: istft (adjoint = 0) keeps
 * (re, im) and drops the imaginary parts irfft ignores; the adjoint (adjoint = 1) also halves
 * the interior bins (the one-sided weights c_k above). */
LILY_HD void lily_stft_c2r_bin(float re, float im, int k, int n_fft, int adjoint, float *ore,
                               float *oim)
{
    int edge = k == 0 || 2 * k == n_fft;
    float c = adjoint && !edge ? 0.5f : 1.0f;
    *ore = c * re;
    *oim = edge ? 0.0f : c * im;
}

/* torch.istft's normalisation: divide by the overlap-added squared window where it is above
 * LILY_ISTFT_ENV_EPS, 0 elsewhere. */
LILY_HD float lily_istft_envelope_div(float acc, float env)
{
    return env > LILY_ISTFT_ENV_EPS ? acc / env : 0.0f;
}

/* Output sample t of one row: frames holds the row's F frames of n_fft samples each (the
 * unnormalised complex-to-real outputs). Returns scale * sum_f frames[f, t - f hop] w[t - f hop]
 * over the covering frames, divided by sum_f w[t - f hop]^2 (the envelope rule) when
 * `envelope` is set. istft: scale 1/n_fft, envelope 1; stft_backward: scale 1, envelope 0. */
LILY_HD float lily_stft_ola_sample(const float *frames, const float *w, int64_t t, int n_fft,
                                   int hop, int64_t F, float scale, int envelope)
{
    int64_t f0, f1;
    lily_stft_cover(t, n_fft, hop, F, &f0, &f1);
    float acc = 0.0f, env = 0.0f;
    for (int64_t f = f0; f <= f1; f++) {
        int64_t n = t - f * hop;
        float wn = w[n];
        acc += frames[f * n_fft + n] * wn;
        env += wn * wn;
    }
    acc *= scale;
    return envelope ? lily_istft_envelope_div(acc, env) : acc;
}

#endif /* LILY_KERNELS_COMMON_STFT_H */
