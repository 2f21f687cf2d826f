/* dsp/mel.h - engine-internal parts of the mel front end (mel.c); the public calls are in
 * lily.h (lily_mel_*). */
#ifndef LILY_DSP_MEL_H
#define LILY_DSP_MEL_H

#include <stddef.h>

#include <lily/lily.h>

#define LILY_MEL_PAD ((LILY_N_FFT - LILY_HOP) / 2) /* 784: AudioSR's reflect padding */
#define LILY_MEL_BINS (LILY_N_FFT / 2 + 1)          /* 1025 FFT bins */
#define LILY_MEL_MAG_BINS (LILY_N_FFT / 2)          /* 1024: AudioSR drops the Nyquist bin */

/* Index of the first NaN or infinite sample of x[0..n), or n when all are finite. */
size_t lily_first_nonfinite(const float *x, size_t n);

/* Whole-signal STFT of x (as lily_mel_compute frames it) summed over time:
 * energy[k] = sum over frames of |X[frame][k]|, k < 1024. The input of AudioSR's cutoff rule
 * (spec.md 3b) without storing the [frames][1024] magnitudes. */
LilyStatus lily_mel_stft_energy(LilyMel *mel, const float *x, size_t n, double *energy);

#endif /* LILY_DSP_MEL_H */
