/* dsp/mel.c - AudioSR's log-mel front end (spec.md 3a).
 *
 * Reference: audiosr/utils.py mel_spectrogram_train + wav_feature_extraction: reflect-pad
 * (2048 - 480) / 2 = 784 samples on each side, torch.stft(n_fft 2048, hop 480, periodic Hann
 * 2048, center=False), magnitude, librosa.filters.mel(sr 48000, n_fft 2048, n_mels 256,
 * fmin 20, fmax 24000; htk=False, norm='slaney') as float32, ln(max(mel, 1e-5)), frames x bins.
 * The filterbank follows librosa 0.9.2 filters.mel step by step (triangles stored as float32,
 * then scaled by the Slaney area norm in double and stored as float32 again), so its values
 * equal librosa's to the last bit or one ulp.
 *
 * The transform and the mel sum run in double. The reference is float32 torch, whose noise
 * near the 1e-5 floor is ~1e-3 in log units (spec.md 8): the tests compare log-mel with an
 * absolute tolerance and the magnitudes relative to the peak. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "dsp/mel.h"
#include "dsp/stft.h"

struct LilyMel {
    LilyContext *ctx;
    LilyRfft fft;
    double window[LILY_N_FFT];
    double mag[LILY_MEL_BINS];
    float *fb;             /* [256][1025], librosa's float32 weights */
    int lo[LILY_N_MELS];   /* non-zero weights of row b lie in [lo[b], hi[b]) */
    int hi[LILY_N_MELS];
};

/* ---- librosa 0.9.2 Slaney mel scale ---- */
#define SLANEY_F_SP (200.0 / 3)
#define SLANEY_MIN_LOG_HZ 1000.0

static double slaney_min_log_mel(void)
{
    return SLANEY_MIN_LOG_HZ / SLANEY_F_SP;
}

static double slaney_logstep(void)
{
    return log(6.4) / 27.0;
}

static double hz_to_mel(double f)
{
    if (f >= SLANEY_MIN_LOG_HZ)
        return slaney_min_log_mel() + log(f / SLANEY_MIN_LOG_HZ) / slaney_logstep();
    return f / SLANEY_F_SP;
}

static double mel_to_hz(double m)
{
    if (m >= slaney_min_log_mel())
        return SLANEY_MIN_LOG_HZ * exp(slaney_logstep() * (m - slaney_min_log_mel()));
    return SLANEY_F_SP * m;
}

static LilyStatus build_filterbank(LilyMel *m)
{
    enum { NF = LILY_N_MELS + 2 };
    double mel_f[NF], fdiff[NF - 1];
    /* numpy.linspace: i * step + start, the last point set to stop exactly */
    const double lo = hz_to_mel(LILY_MEL_FMIN), hi = hz_to_mel(LILY_MEL_FMAX);
    const double step = (hi - lo) / (double)(NF - 1);
    for (int i = 0; i < NF; i++) mel_f[i] = mel_to_hz(i == NF - 1 ? hi : (double)i * step + lo);
    /* The last point is fmax itself up to the rounding of exp(log(.)): numpy's vectorised exp
     * lands on 24000 exactly where glibc's gives 24000.000000000004, which would leave a
     * 2e-17 weight on the Nyquist bin that librosa does not have. */
    if (fabs(mel_f[NF - 1] - LILY_MEL_FMAX) <= 1e-12 * LILY_MEL_FMAX) mel_f[NF - 1] = LILY_MEL_FMAX;
    for (int i = 0; i < NF - 1; i++) fdiff[i] = mel_f[i + 1] - mel_f[i];
    /* numpy.fft.rfftfreq(2048, 1/48000) */
    const double bin_hz = 1.0 / ((double)LILY_N_FFT * (1.0 / (double)LILY_SAMPLE_RATE));

    m->fb = calloc((size_t)LILY_N_MELS * LILY_MEL_BINS, sizeof(float));
    if (!m->fb)
        return lily_error(m->ctx, LILY_ERR_NO_MEMORY, "mel: out of memory for the filterbank");
    for (int b = 0; b < LILY_N_MELS; b++) {
        const double enorm = 2.0 / (mel_f[b + 2] - mel_f[b]);
        float *row = m->fb + (size_t)b * LILY_MEL_BINS;
        m->lo[b] = LILY_MEL_BINS;
        m->hi[b] = 0;
        for (int k = 0; k < LILY_MEL_BINS; k++) {
            const double fk = (double)k * bin_hz;
            const double lower = -(mel_f[b] - fk) / fdiff[b];
            const double upper = (mel_f[b + 2] - fk) / fdiff[b + 1];
            double w = lower < upper ? lower : upper;
            if (!(w > 0)) continue;
            row[k] = (float)((double)(float)w * enorm);
            if (k < m->lo[b]) m->lo[b] = k;
            m->hi[b] = k + 1;
        }
        if (m->hi[b] == 0) m->lo[b] = 0;
    }
    return LILY_OK;
}

LilyStatus lily_mel_new(LilyContext *ctx, LilyMel **out)
{
    *out = NULL;
    LilyMel *m = calloc(1, sizeof *m);
    if (!m) return lily_error(ctx, LILY_ERR_NO_MEMORY, "mel: out of memory");
    m->ctx = ctx;
    lily_hann_periodic(m->window, LILY_N_FFT);
    LilyStatus st = build_filterbank(m);
    if (st == LILY_OK) st = lily_rfft_init(ctx, &m->fft, LILY_N_FFT, 0);
    if (st != LILY_OK) {
        lily_mel_free(m);
        return st;
    }
    *out = m;
    return LILY_OK;
}

void lily_mel_free(LilyMel *m)
{
    if (!m) return;
    lily_rfft_release(&m->fft);
    free(m->fb);
    free(m);
}

const float *lily_mel_filterbank(const LilyMel *m)
{
    return m->fb;
}

size_t lily_first_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return n;
}

/* Index into x[0..n) of padded position i under numpy/torch 'reflect' padding (edge sample
 * not repeated). Reflection repeats for pads longer than the signal, as numpy.pad does; torch
 * refuses those, so this only widens what AudioSR accepts. */
static size_t reflect_index(long long i, size_t n)
{
    if (n == 1) return 0;
    const long long period = 2 * ((long long)n - 1);
    long long r = i % period;
    if (r < 0) r += period;
    if (r >= (long long)n) r = period - r;
    return (size_t)r;
}

/* Loads the windowed frame whose first sample is x[start] (start may lie in the padding). */
static void load_frame(LilyMel *m, const float *x, size_t n, long long start)
{
    double *in = m->fft.in;
    if (start >= 0 && (size_t)start + LILY_N_FFT <= n) {
        const float *p = x + start;
        for (int k = 0; k < LILY_N_FFT; k++) in[k] = m->window[k] * (double)p[k];
    } else {
        for (int k = 0; k < LILY_N_FFT; k++)
            in[k] = m->window[k] * (double)x[reflect_index(start + k, n)];
    }
}

/* FFT of the loaded frame into m->mag (1025 magnitudes). */
static void frame_magnitude(LilyMel *m)
{
    fftw_execute(m->fft.fwd);
    for (int k = 0; k < LILY_MEL_BINS; k++) {
        const double re = m->fft.spec[k][0], im = m->fft.spec[k][1];
        m->mag[k] = sqrt(re * re + im * im); /* no overflow risk at audio levels */
    }
}

static void frame_logmel(const LilyMel *m, float *out)
{
    for (int b = 0; b < LILY_N_MELS; b++) {
        const float *row = m->fb + (size_t)b * LILY_MEL_BINS;
        double s = 0;
        for (int k = m->lo[b]; k < m->hi[b]; k++) s += (double)row[k] * m->mag[k];
        out[b] = (float)log(s > LILY_LOG_MEL_FLOOR ? s : LILY_LOG_MEL_FLOOR);
    }
}

static LilyStatus check_input(LilyMel *m, const char *what, const float *x, size_t n)
{
    size_t bad = lily_first_nonfinite(x, n);
    if (bad < n)
        return lily_error(m->ctx, LILY_ERR_NUMERIC,
                          "%s: input sample %zu is %s: the mel front end needs finite audio "
                          "(check the decoder or any gain applied before it)",
                          what, bad, isnan(x[bad]) ? "NaN" : "infinite");
    return LILY_OK;
}

LilyStatus lily_mel_compute(LilyMel *m, const float *x, size_t n, float *out, float *stft_mag)
{
    if (n % LILY_HOP)
        return lily_error(m->ctx, LILY_ERR_INVALID_ARGUMENT,
                          "mel: %zu samples is not a multiple of the hop (480): pad the signal "
                          "to whole frames first", n);
    LILY_TRY(check_input(m, "mel", x, n));
    const size_t frames = n / LILY_HOP;
    for (size_t f = 0; f < frames; f++) {
        load_frame(m, x, n, (long long)(f * LILY_HOP) - LILY_MEL_PAD);
        frame_magnitude(m);
        frame_logmel(m, out + f * LILY_N_MELS);
        if (stft_mag) {
            float *row = stft_mag + f * LILY_MEL_MAG_BINS;
            for (int k = 0; k < LILY_MEL_MAG_BINS; k++) row[k] = (float)m->mag[k];
        }
    }
    return LILY_OK;
}

LilyStatus lily_mel_frames(LilyMel *m, const float *x, size_t count, float *out)
{
    const size_t len = count * LILY_HOP + 2 * LILY_MEL_PAD;
    LILY_TRY(check_input(m, "mel frames", x, count ? len : 0));
    for (size_t f = 0; f < count; f++) {
        load_frame(m, x, len, (long long)(f * LILY_HOP));
        frame_magnitude(m);
        frame_logmel(m, out + f * LILY_N_MELS);
    }
    return LILY_OK;
}

LilyStatus lily_mel_stft_energy(LilyMel *m, const float *x, size_t n, double *energy)
{
    if (n % LILY_HOP)
        return lily_error(m->ctx, LILY_ERR_INVALID_ARGUMENT,
                          "cutoff detection: %zu samples is not a multiple of the hop (480)", n);
    LILY_TRY(check_input(m, "cutoff detection", x, n));
    memset(energy, 0, LILY_MEL_MAG_BINS * sizeof *energy);
    for (size_t f = 0; f < n / LILY_HOP; f++) {
        load_frame(m, x, n, (long long)(f * LILY_HOP) - LILY_MEL_PAD);
        frame_magnitude(m);
        for (int k = 0; k < LILY_MEL_MAG_BINS; k++) energy[k] += m->mag[k];
    }
    return LILY_OK;
}
