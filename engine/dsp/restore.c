/* dsp/restore.c - AudioSR's waveform low-band restore (spec.md 10).
 *
 * Reference: audiosr/latent_diffusion/models/ddpm.py LatentDiffusion.postprocessing and
 * _get_cutoff_index_np, with librosa 0.9 stft/istft defaults (n_fft 2048, hop 512, periodic
 * Hann, center=True with zero padding; istft with window-sum-square normalisation and
 * `length`), worked in shared/audiosr/spec_check.py (lstft, listft):
 *     cut = 0.985 rule on sum over time of |STFT(cond)|            (an STFT row)
 *     r   = clamp(sum_t |S_cond[cut]| / sum_t |S_out[cut]|, 0.8, 1.2)
 *     S_out[:cut] = S_cond[:cut] / r;  out = istft(S_out, length = n)
 * The STFTs run in double (librosa: float64 FFTs stored as complex64). Nothing is held per
 * frame: three passes over the frames (cutoff energies, the row at the cutoff, then the
 * replacement with overlap-add), so memory is O(n) however long the signal.
 * Departures, for inputs on which AudioSR yields NaN: when sum_t |S_out[cut]| is 0 the ratio
 * is 1.2 (what +inf clamps to) if the condition's row is not silent, else 1. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "dsp/mel.h"
#include "dsp/stft.h"

#define R_NFFT 2048
#define R_HOP 512
#define R_BINS (R_NFFT / 2 + 1)
#define RATIO_MIN 0.8
#define RATIO_MAX 1.2

typedef struct Restore {
    LilyRfft fft;
    double window[R_NFFT];
    fftw_complex *keep; /* one frame of the condition's spectrum */
} Restore;

/* librosa.stft frame f of x[0..n): centred, zero outside the signal, windowed, into fft.spec */
static void stft_frame(Restore *r, const float *x, size_t n, size_t f)
{
    const long long start = (long long)(f * R_HOP) - R_NFFT / 2;
    for (int k = 0; k < R_NFFT; k++) {
        const long long i = start + k;
        r->fft.in[k] = (i >= 0 && i < (long long)n) ? r->window[k] * (double)x[i] : 0.0;
    }
    fftw_execute(r->fft.fwd);
}

static double bin_abs(const fftw_complex c)
{
    return hypot(c[0], c[1]);
}

LilyStatus lily_restore_lowband(LilyContext *ctx, const float *cond, float *out, size_t n,
                                int *cutoff_bin_out, float *ratio_out)
{
    if (cutoff_bin_out) *cutoff_bin_out = 0;
    if (ratio_out) *ratio_out = 1.0f;
    size_t bad = lily_first_nonfinite(cond, n);
    if (bad < n)
        return lily_error(ctx, LILY_ERR_NUMERIC, "restore: condition sample %zu is not finite",
                          bad);
    bad = lily_first_nonfinite(out, n);
    if (bad < n)
        return lily_error(ctx, LILY_ERR_NUMERIC, "restore: vocoder output sample %zu is not "
                          "finite", bad);
    if (n == 0) return LILY_OK;

    Restore r;
    memset(&r, 0, sizeof r);
    LILY_TRY(lily_rfft_init(ctx, &r.fft, R_NFFT, 1));
    lily_hann_periodic(r.window, R_NFFT);
    LilyStatus st = LILY_OK;
    const size_t frames = 1 + n / R_HOP;
    /* istft(length=n) keeps min(frames, ceil((n + n_fft) / hop)) frames: all of them here */
    const size_t y_len = R_NFFT + R_HOP * (frames - 1);
    double *y = calloc(y_len, sizeof *y);
    double *wss = calloc(y_len, sizeof *wss);
    r.keep = fftw_alloc_complex(R_BINS);
    double energy[R_BINS] = {0};
    if (!y || !wss || !r.keep) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "restore: out of memory for %zu samples", n);
        goto done;
    }

    /* pass 1: the cutoff row from the condition's spectrum */
    for (size_t f = 0; f < frames; f++) {
        stft_frame(&r, cond, n, f);
        for (int k = 0; k < R_BINS; k++) energy[k] += bin_abs(r.fft.spec[k]);
    }
    const int cut = lily_cutoff_index(energy, R_BINS);

    /* pass 2: the level ratio at that row */
    double num = energy[cut], den = 0;
    for (size_t f = 0; f < frames; f++) {
        stft_frame(&r, out, n, f);
        den += bin_abs(r.fft.spec[cut]);
    }
    double ratio;
    if (den > 0) ratio = num / den;
    else ratio = num > 0 ? RATIO_MAX : 1.0;
    if (ratio < RATIO_MIN) ratio = RATIO_MIN;
    if (ratio > RATIO_MAX) ratio = RATIO_MAX;

    /* pass 3: replace rows [0, cut), inverse FFT, window, overlap-add */
    for (size_t f = 0; f < frames; f++) {
        stft_frame(&r, cond, n, f);
        memcpy(r.keep, r.fft.spec, (size_t)cut * sizeof(fftw_complex));
        stft_frame(&r, out, n, f);
        for (int k = 0; k < cut; k++) {
            r.fft.spec[k][0] = r.keep[k][0] / ratio;
            r.fft.spec[k][1] = r.keep[k][1] / ratio;
        }
        /* irfft ignores the imaginary parts of DC and Nyquist */
        r.fft.spec[0][1] = 0;
        r.fft.spec[R_BINS - 1][1] = 0;
        fftw_execute(r.fft.inv);
        double *seg = y + f * R_HOP, *ws = wss + f * R_HOP;
        for (int k = 0; k < R_NFFT; k++) {
            seg[k] += r.window[k] * r.fft.in[k] / R_NFFT;
            ws[k] += r.window[k] * r.window[k];
        }
    }
    /* window-sum-square normalisation where the sum is above float32's tiny (librosa), then
     * drop the centring offset */
    for (size_t i = 0; i < n; i++) {
        const size_t j = i + R_NFFT / 2;
        double v = 0;
        if (j < y_len) v = wss[j] > FLT_MIN ? y[j] / wss[j] : y[j];
        out[i] = (float)v;
    }
    if (cutoff_bin_out) *cutoff_bin_out = cut;
    if (ratio_out) *ratio_out = (float)ratio;
done:
    free(y);
    free(wss);
    fftw_free(r.keep);
    lily_rfft_release(&r.fft);
    return st;
}
