/* train/lsd.h - log-spectral distance, the metric AudioSR reports (Liu et al. 2023, section 4,
 * after NVSR / ssr_eval): per STFT frame, the RMS over frequency of the difference of the log10
 * power spectra, averaged over frames:
 *
 *     LSD = mean_t sqrt( mean_f ( log10((|Y(t,f)|^2 + eps) / (|X(t,f)|^2 + eps)) )^2 )
 *
 * with Y the reference and X the estimate, STFT n_fft 2048, hop 512, periodic Hann, centred
 * frames with zero padding (librosa's defaults), f over the 1025 bins, eps = 1e-10 (on both
 * sides, so silence against silence counts as 0; ssr_eval puts eps only under the estimate).
 * Lower is better; identical signals give 0. */
#ifndef LILY_TRAIN_LSD_H
#define LILY_TRAIN_LSD_H

#include <stddef.h>

#include <lily/lily.h>

#define LILY_LSD_N_FFT 2048
#define LILY_LSD_HOP 512
#define LILY_LSD_EPS 1e-10

/* est and ref are n samples each (48 kHz; the metric itself is rate-free). */
LilyStatus lily_lsd(LilyContext *ctx, const float *est, const float *ref, size_t n, double *lsd);
/* The same over the bins [bin_lo, bin_hi) only (e.g. the band above a cutoff: LSD-HF). */
LilyStatus lily_lsd_band(LilyContext *ctx, const float *est, const float *ref, size_t n, int bin_lo,
                         int bin_hi, double *lsd);

#endif /* LILY_TRAIN_LSD_H */
