/* dsp/stft.h - the FFTW set-up shared by the mel front end (mel.c) and AudioSR's low-band
 * restore (restore.c): one real FFT of a fixed size with its plans and aligned buffers, and
 * the periodic Hann window of torch.hann_window / scipy.signal.get_window('hann', fftbins).
 *
 * Double precision throughout: AudioSR's own STFTs are float32 (torch) or float64 rounded to
 * complex64 (librosa), so a double transform sits inside the reference's own noise and never
 * adds a second error budget on top of it. */
#ifndef LILY_DSP_STFT_H
#define LILY_DSP_STFT_H

#include <fftw3.h>

#include <lily/lily.h>

typedef struct LilyRfft {
    int n;
    double *in;         /* n real samples; the c2r plan writes its output here too */
    fftw_complex *spec; /* n/2 + 1 bins */
    fftw_plan fwd;      /* in -> spec */
    fftw_plan inv;      /* spec -> in, unnormalised; NULL unless asked for */
} LilyRfft;

/* Plans a size-n real FFT (and its inverse when with_inverse). Planning goes through FFTW's
 * thread-safe planner, switched on once per process. On failure r is left empty. */
LilyStatus lily_rfft_init(LilyContext *ctx, LilyRfft *r, int n, int with_inverse);
void lily_rfft_release(LilyRfft *r);

/* w[k] = 0.5 - 0.5 cos(2 pi k / n), k < n: the periodic Hann window. */
void lily_hann_periodic(double *w, int n);

#endif /* LILY_DSP_STFT_H */
