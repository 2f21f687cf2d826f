/* train/mel-loss.h - HiFi-GAN's mel-spectrogram L1 loss on AudioSR's front end, with its
 * gradient with respect to the waveform.
 *
 * HiFi-GAN (train.py) weights L1(mel(y), mel(G(x))) by 45. The mel is AudioSR's (spec.md 3a):
 * reflect padding of 784 samples, periodic Hann 2048, hop 480, |STFT| (magnitude), Slaney mel
 * 256 bins 20 Hz - 24 kHz, ln(max(mel, 1e-5)); frames = samples / 480. It runs on the host in
 * double precision (FFTW), which is far cheaper than the networks around it: the backward pass
 * is the adjoint of each step, the STFT's being one inverse real FFT per frame (dL/dx[n] =
 * Re sum_k G[k] e^{+2 pi i k n / N} over the one-sided bins), windowed and overlap-added,
 * then folded back through the reflect padding. */
#ifndef LILY_TRAIN_MEL_LOSS_H
#define LILY_TRAIN_MEL_LOSS_H

#include <stdint.h>

#include "models/layers-train.h"

typedef struct LilyMelLoss LilyMelLoss;

LilyStatus lily_mel_loss_new(LilyContext *ctx, LilyMelLoss **out);
void lily_mel_loss_free(LilyMelLoss *ml);
/* Log-mel of n host signals x[n][len] (len a multiple of 480) into out[n][len / 480][256]. */
LilyStatus lily_mel_loss_logmel(LilyMelLoss *ml, const float *x, int n, int64_t len, float *out);
/* *loss = scale * mean |logmel(y[:, :, :len]) - target| (target [n][len / 480][256], host);
 * y is a device tensor [n, 1, >= len]. dy (may be NULL) is allocated shaped like y: the
 * gradient, zero past len. */
LilyStatus lily_mel_loss(LilyContext *ctx, LilyMelLoss *ml, const LilyTensor *y, int64_t len,
                         const float *target, double scale, double *loss, LilyTensor *dy);

#endif /* LILY_TRAIN_MEL_LOSS_H */
