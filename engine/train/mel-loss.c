/* train/mel-loss.c - the mel L1 loss and its waveform gradient (see mel-loss.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "dsp/mel.h"
#include "dsp/stft.h"
#include "train/mel-loss.h"

#define NFFT LILY_N_FFT
#define BINS (LILY_N_FFT / 2 + 1)
#define FLOOR 1e-5

struct LilyMelLoss {
    LilyContext *ctx;
    LilyMel *mel;
    const float *fb;            /* [256][1025] */
    int lo[LILY_N_MELS], hi[LILY_N_MELS]; /* non-zero bins of each filter */
    LilyRfft fft;
    double win[NFFT];
    double mag[BINS], re[BINS], im[BINS], melv[LILY_N_MELS], gmel[LILY_N_MELS];
};

void lily_mel_loss_free(LilyMelLoss *ml)
{
    if (!ml) return;
    lily_rfft_release(&ml->fft);
    lily_mel_free(ml->mel);
    free(ml);
}

LilyStatus lily_mel_loss_new(LilyContext *ctx, LilyMelLoss **out)
{
    *out = NULL;
    LilyMelLoss *ml = calloc(1, sizeof *ml);
    if (!ml) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
    ml->ctx = ctx;
    LilyStatus st = lily_mel_new(ctx, &ml->mel);
    if (st == LILY_OK) st = lily_rfft_init(ctx, &ml->fft, NFFT, 1);
    if (st != LILY_OK) {
        lily_mel_loss_free(ml);
        return st;
    }
    ml->fb = lily_mel_filterbank(ml->mel);
    for (int m = 0; m < LILY_N_MELS; m++) {
        const float *row = ml->fb + (size_t)m * BINS;
        int lo = BINS, hi = 0;
        for (int k = 0; k < BINS; k++)
            if (row[k] != 0.0f) {
                if (k < lo) lo = k;
                hi = k + 1;
            }
        ml->lo[m] = lo < hi ? lo : 0;
        ml->hi[m] = hi;
    }
    lily_hann_periodic(ml->win, NFFT);
    *out = ml;
    return LILY_OK;
}

static int64_t reflect(int64_t i, int64_t len)
{
    if (i < 0) return -i;
    if (i >= len) return 2 * (len - 1) - i;
    return i;
}

/* Forward of one frame: fills re, im, mag, melv and returns nothing; out gets log-mel. */
static void frame_forward(LilyMelLoss *ml, const float *x, int64_t len, int64_t f, float *out)
{
    int64_t start = f * LILY_HOP - LILY_MEL_PAD;
    for (int k = 0; k < NFFT; k++) ml->fft.in[k] = ml->win[k] * (double)x[reflect(start + k, len)];
    fftw_execute(ml->fft.fwd);
    for (int k = 0; k < BINS; k++) {
        ml->re[k] = ml->fft.spec[k][0];
        ml->im[k] = ml->fft.spec[k][1];
        ml->mag[k] = sqrt(ml->re[k] * ml->re[k] + ml->im[k] * ml->im[k]);
    }
    for (int m = 0; m < LILY_N_MELS; m++) {
        const float *row = ml->fb + (size_t)m * BINS;
        double s = 0.0;
        for (int k = ml->lo[m]; k < ml->hi[m]; k++) s += (double)row[k] * ml->mag[k];
        ml->melv[m] = s;
        out[m] = (float)log(s > FLOOR ? s : FLOOR);
    }
}

LilyStatus lily_mel_loss_logmel(LilyMelLoss *ml, const float *x, int n, int64_t len, float *out)
{
    if (len % LILY_HOP || len <= LILY_MEL_PAD)
        return lily_error(ml->ctx, LILY_ERR_INVALID_ARGUMENT, "mel loss: %lld samples is not a multiple "
                          "of %d above %d", (long long)len, LILY_HOP, LILY_MEL_PAD);
    int64_t frames = len / LILY_HOP;
    for (int b = 0; b < n; b++)
        for (int64_t f = 0; f < frames; f++)
            frame_forward(ml, x + (size_t)b * (size_t)len, len, f, out + ((size_t)b * (size_t)frames + (size_t)f) * LILY_N_MELS);
    return LILY_OK;
}

LilyStatus lily_mel_loss(LilyContext *ctx, LilyMelLoss *ml, const LilyTensor *y, int64_t len,
                         const float *target, double scale, double *loss, LilyTensor *dy)
{
    int64_t n = y->shape[0], ylen = lily_tensor_numel(y) / n;
    if (ylen < len || len % LILY_HOP || len <= LILY_MEL_PAD)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "mel loss: waveform of %lld samples, %lld wanted "
                          "(a multiple of %d)", (long long)ylen, (long long)len, LILY_HOP);
    int64_t frames = len / LILY_HOP, pad_len = len + 2 * LILY_MEL_PAD;
    float *host = malloc(sizeof(float) * (size_t)(n * ylen));
    double *gpad = malloc(sizeof(double) * (size_t)pad_len);
    float *grad = dy ? calloc((size_t)(n * ylen), sizeof(float)) : NULL;
    if (!host || !gpad || (dy && !grad)) {
        free(host);
        free(gpad);
        free(grad);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "mel loss: out of host memory");
    }
    LilyStatus st = lily_tensor_download(ctx, y, host);
    double total = 0.0, s = scale / ((double)n * (double)frames * LILY_N_MELS);
    float lm[LILY_N_MELS];
    for (int64_t b = 0; st == LILY_OK && b < n; b++) {
        const float *x = host + b * ylen;
        if (dy) memset(gpad, 0, sizeof(double) * (size_t)pad_len);
        for (int64_t f = 0; f < frames; f++) {
            frame_forward(ml, x, len, f, lm);
            const float *tg = target + ((size_t)b * (size_t)frames + (size_t)f) * LILY_N_MELS;
            int any = 0;
            for (int m = 0; m < LILY_N_MELS; m++) {
                double d = (double)lm[m] - (double)tg[m];
                total += fabs(d);
                double g = d > 0 ? s : d < 0 ? -s : 0.0; /* torch.sign */
                ml->gmel[m] = ml->melv[m] > FLOOR ? g / ml->melv[m] : 0.0;
                any |= ml->gmel[m] != 0.0;
            }
            if (!dy || !any) continue;
            /* adjoint of the filterbank, then of the magnitude */
            for (int k = 0; k < BINS; k++) ml->fft.spec[k][0] = ml->fft.spec[k][1] = 0.0;
            for (int m = 0; m < LILY_N_MELS; m++) {
                const float *row = ml->fb + (size_t)m * BINS;
                for (int k = ml->lo[m]; k < ml->hi[m]; k++) ml->fft.spec[k][0] += (double)row[k] * ml->gmel[m];
            }
            for (int k = 0; k < BINS; k++) {
                double gm = ml->fft.spec[k][0], mg = ml->mag[k];
                double gr = mg > 1e-20 ? gm * ml->re[k] / mg : 0.0, gi = mg > 1e-20 ? gm * ml->im[k] / mg : 0.0;
                /* c2r sums the bins 1..N/2-1 twice (as their conjugates): halve them */
                double h = (k == 0 || k == BINS - 1) ? 1.0 : 0.5;
                ml->fft.spec[k][0] = h * gr;
                ml->fft.spec[k][1] = (k == 0 || k == BINS - 1) ? 0.0 : h * gi;
            }
            fftw_execute(ml->fft.inv);
            double *gp = gpad + f * LILY_HOP;
            for (int k = 0; k < NFFT; k++) gp[k] += ml->fft.in[k] * ml->win[k];
        }
        if (dy) {
            float *gx = grad + b * ylen;
            for (int64_t j = 0; j < pad_len; j++) gx[reflect(j - LILY_MEL_PAD, len)] += (float)gpad[j];
        }
    }
    *loss = total * s;
    if (st == LILY_OK && dy) {
        st = lily_nn_like(ctx, y, dy);
        if (st == LILY_OK) st = lily_tensor_upload(ctx, dy, grad);
    }
    free(host);
    free(gpad);
    free(grad);
    return st;
}
