/* tests/dsp/test-mel.c - the log-mel front end (spec.md 3a) and the cutoff rules (3b, 8)
 * against AudioSR's reference run ref-a and librosa's filterbank (tests/data/dsp). */
#include <math.h>
#include <string.h>

#include "common/test-util.h"
#include "core/context.h"
#include "dsp-data.h"
#include "dsp/mel.h"

#define NM LILY_N_MELS
#define NB LILY_MEL_MAG_BINS

static LilyMel *new_mel(LilyContext **ctx)
{
    g_assert_cmpint(lily_context_new(NULL, ctx, NULL, 0), ==, LILY_OK);
    LilyMel *m = NULL;
    g_assert_cmpint(lily_mel_new(*ctx, &m), ==, LILY_OK);
    g_assert_nonnull(m);
    return m;
}

/* The filterbank equals librosa 0.9.2's Slaney matrix (float32), entry for entry. */
static void test_filterbank(void)
{
    LilyContext *ctx;
    LilyMel *m = new_mel(&ctx);
    DdArray nz;
    dd_load("mel-fb-nonzero.npy", &nz);
    const float *fb = lily_mel_filterbank(m);
    float *want = g_new0(float, (size_t)NM * LILY_MEL_BINS);
    for (int64_t i = 0; i < nz.shape[0]; i++) {
        size_t r = (size_t)nz.data[3 * i], c = (size_t)nz.data[3 * i + 1];
        want[r * LILY_MEL_BINS + c] = (float)nz.data[3 * i + 2];
    }
    size_t n_nonzero = 0;
    for (size_t i = 0; i < (size_t)NM * LILY_MEL_BINS; i++) n_nonzero += fb[i] != 0.0f;
    g_test_message("filterbank: %zu non-zero weights (librosa %lld)", n_nonzero, (long long)nz.shape[0]);
    g_assert_cmpuint(n_nonzero, ==, (size_t)nz.shape[0]);
    lt_assert_close_rel("mel filterbank vs librosa", fb, want, (size_t)NM * LILY_MEL_BINS, 1e-6);
    g_free(want);
    dd_free(&nz);
    lily_mel_free(m);
    lily_context_free(ctx);
}

/* Worst over frames of max|err| / max|ref| within the frame. */
static double worst_frame_rel(const float *got, const float *ref, size_t frames, size_t width)
{
    double worst = 0;
    for (size_t f = 0; f < frames; f++) {
        LtErr e = lt_compare(got + f * width, ref + f * width, width);
        double rel = e.ref_peak > 0 ? e.max_abs / e.ref_peak : e.max_abs;
        if (!(rel <= worst)) worst = rel;
    }
    return worst;
}

/* |STFT| and log-mel of ref-a's waveform match AudioSR's (rel 1e-4 of each frame's peak;
 * log-mel abs 1e-2 overall and 1e-4 where the log-mel is above -3, away from the float32
 * noise at the 1e-5 floor). */
static void test_ref_a_mel(void)
{
    LilyContext *ctx;
    LilyMel *m = new_mel(&ctx);
    LilyNpy wav, mag_ref, mel_ref;
    lt_load_ref("waveform", &wav);
    lt_load_ref("stft_mag", &mag_ref);
    lt_load_ref("log_mel_spec", &mel_ref);
    const size_t n = (size_t)wav.numel, frames = n / LILY_HOP;
    g_assert_cmpint(mel_ref.shape[1], ==, (int64_t)frames);
    float *mel = g_new(float, frames * NM), *mag = g_new(float, frames * NB);
    g_assert_cmpint(lily_mel_compute(m, wav.data, n, mel, mag), ==, LILY_OK);

    double fr = worst_frame_rel(mag, mag_ref.data, frames, NB);
    LtErr e = lt_compare(mag, mag_ref.data, frames * NB);
    g_test_message("stft_mag: max|err| %.3e (rel to global peak %.3e), worst per-frame rel %.3e "
                   "(tol 1e-4)", e.max_abs, e.rel, fr);
    g_assert_cmpfloat(fr, <=, 1e-4);

    lt_assert_close_abs("log_mel_spec (abs)", mel, mel_ref.data, frames * NM, 1e-2);
    const float *ref = mel_ref.data;
    double loud = 0;
    size_t n_loud = 0;
    for (size_t i = 0; i < frames * NM; i++) {
        if (ref[i] <= -3.0f) continue;
        n_loud++;
        double d = fabs((double)mel[i] - ref[i]);
        if (d > loud) loud = d;
    }
    g_test_message("log_mel_spec where ref > -3 (%zu values): max|err| %.3e (tol 1e-4)", n_loud, loud);
    g_assert_cmpuint(n_loud, >, 1000);
    g_assert_cmpfloat(loud, <=, 1e-4);
    g_free(mel);
    g_free(mag);
    lily_npy_free(&wav);
    lily_npy_free(&mag_ref);
    lily_npy_free(&mel_ref);
    lily_mel_free(m);
    lily_context_free(ctx);
}

/* The condition mel: log-mel of ref-a's waveform_lowpass equals lowpass_mel (abs 1e-2). */
static void test_ref_a_lowpass_mel(void)
{
    LilyContext *ctx;
    LilyMel *m = new_mel(&ctx);
    LilyNpy wav, ref;
    lt_load_ref("waveform_lowpass", &wav);
    lt_load_ref("lowpass_mel", &ref);
    const size_t frames = (size_t)wav.numel / LILY_HOP;
    float *mel = g_new(float, frames * NM);
    g_assert_cmpint(lily_mel_compute(m, wav.data, (size_t)wav.numel, mel, NULL), ==, LILY_OK);
    lt_assert_close_abs("lowpass_mel (abs)", mel, ref.data, frames * NM, 1e-2);
    g_free(mel);
    lily_npy_free(&wav);
    lily_npy_free(&ref);
    lily_mel_free(m);
    lily_context_free(ctx);
}

/* Streaming frames over odd splits of the reflect-padded signal are bit-identical to the
 * whole-signal computation. */
static void test_streaming_equals_whole(void)
{
    LilyContext *ctx;
    LilyMel *m = new_mel(&ctx);
    const size_t frames = 157, n = frames * LILY_HOP, pad = LILY_MEL_PAD;
    float *x = g_new(float, n);
    lt_fill_uniform(x, n, 5, -0.5f, 0.5f);
    for (size_t i = 0; i < n; i++) x[i] += 0.3f * sinf(0.01f * (float)i);
    float *padded = g_new(float, n + 2 * pad);
    for (size_t i = 0; i < n + 2 * pad; i++) {
        long long j = (long long)i - (long long)pad;
        if (j < 0) j = -j;
        if (j >= (long long)n) j = 2 * ((long long)n - 1) - j;
        padded[i] = x[j];
    }
    float *whole = g_new(float, frames * NM), *stream = g_new(float, frames * NM);
    g_assert_cmpint(lily_mel_compute(m, x, n, whole, NULL), ==, LILY_OK);
    const size_t splits[] = {1, 7, 3, 50, 13, 2};
    size_t done = 0;
    for (size_t s = 0; done < frames; s++) {
        size_t c = s < G_N_ELEMENTS(splits) ? splits[s] : frames - done;
        if (c > frames - done) c = frames - done;
        g_assert_cmpint(lily_mel_frames(m, padded + done * LILY_HOP, c, stream + done * NM), ==,
                        LILY_OK);
        done += c;
    }
    lt_assert_close_abs("streaming vs whole-signal log-mel", stream, whole, frames * NM, 0.0);
    g_free(x);
    g_free(padded);
    g_free(whole);
    g_free(stream);
    lily_mel_free(m);
    lily_context_free(ctx);
}

typedef struct ThreadJob {
    const float *x;
    size_t n;
    float *out;
    LilyStatus st;
} ThreadJob;

static gpointer mel_thread(gpointer data)
{
    ThreadJob *j = data;
    LilyContext *ctx = NULL;
    LilyMel *m = NULL;
    j->st = lily_context_new(NULL, &ctx, NULL, 0);
    if (j->st == LILY_OK) j->st = lily_mel_new(ctx, &m);
    if (j->st == LILY_OK) j->st = lily_mel_compute(m, j->x, j->n, j->out, NULL);
    lily_mel_free(m);
    lily_context_free(ctx);
    return NULL;
}

/* Four threads creating their own LilyMel (FFTW planning) at once all succeed and give the
 * single-thread result bit for bit. */
static void test_threads(void)
{
    enum { NT = 4 };
    LilyContext *ctx;
    LilyMel *m = new_mel(&ctx);
    const size_t frames = 40, n = frames * LILY_HOP;
    float *x = g_new(float, n), *want = g_new(float, frames * NM);
    lt_fill_uniform(x, n, 9, -1, 1);
    g_assert_cmpint(lily_mel_compute(m, x, n, want, NULL), ==, LILY_OK);
    ThreadJob jobs[NT];
    GThread *th[NT];
    for (int i = 0; i < NT; i++) {
        jobs[i] = (ThreadJob){x, n, g_new(float, frames * NM), LILY_ERR_INTERNAL};
        th[i] = g_thread_new("mel", mel_thread, &jobs[i]);
    }
    for (int i = 0; i < NT; i++) {
        g_thread_join(th[i]);
        g_assert_cmpint(jobs[i].st, ==, LILY_OK);
        lt_assert_close_abs("thread vs single-thread log-mel", jobs[i].out, want, frames * NM, 0.0);
        g_free(jobs[i].out);
    }
    g_free(x);
    g_free(want);
    lily_mel_free(m);
    lily_context_free(ctx);
}

/* Silence gives exactly ln(1e-5) everywhere, and zero magnitudes. */
static void test_silence_floor(void)
{
    LilyContext *ctx;
    LilyMel *m = new_mel(&ctx);
    const size_t frames = 20, n = frames * LILY_HOP;
    float *x = g_new0(float, n), *mel = g_new(float, frames * NM), *mag = g_new(float, frames * NB);
    g_assert_cmpint(lily_mel_compute(m, x, n, mel, mag), ==, LILY_OK);
    const float floor_v = (float)log(LILY_LOG_MEL_FLOOR);
    for (size_t i = 0; i < frames * NM; i++) g_assert_cmpfloat(mel[i], ==, floor_v);
    for (size_t i = 0; i < frames * NB; i++) g_assert_cmpfloat(mag[i], ==, 0.0f);
    g_test_message("silence: every log-mel value is %.9g = ln(1e-5)", (double)floor_v);
    g_free(x);
    g_free(mel);
    g_free(mag);
    lily_mel_free(m);
    lily_context_free(ctx);
}

/* A NaN or infinity is refused with LILY_ERR_NUMERIC naming the first bad sample. */
static void test_nonfinite_rejected(void)
{
    LilyContext *ctx;
    LilyMel *m = new_mel(&ctx);
    const size_t frames = 10, n = frames * LILY_HOP;
    float *x = g_new0(float, n + 2 * LILY_MEL_PAD), *mel = g_new(float, frames * NM);
    x[1234] = NAN;
    x[2000] = INFINITY;
    g_assert_cmpint(lily_mel_compute(m, x, n, mel, NULL), ==, LILY_ERR_NUMERIC);
    g_test_message("message: %s", lily_context_error(ctx));
    g_assert_nonnull(strstr(lily_context_error(ctx), "sample 1234 is NaN"));
    x[1234] = 0;
    g_assert_cmpint(lily_mel_frames(m, x, frames, mel), ==, LILY_ERR_NUMERIC);
    g_assert_nonnull(strstr(lily_context_error(ctx), "sample 2000 is infinite"));
    double hz;
    g_assert_cmpint(lily_detect_cutoff(m, x, n, &hz), ==, LILY_ERR_NUMERIC);
    g_free(x);
    g_free(mel);
    lily_mel_free(m);
    lily_context_free(ctx);
}

/* A length that is not whole hops is an invalid argument, with a message. */
static void test_bad_length(void)
{
    LilyContext *ctx;
    LilyMel *m = new_mel(&ctx);
    float x[1000] = {0}, mel[NM * 2];
    g_assert_cmpint(lily_mel_compute(m, x, 1000, mel, NULL), ==, LILY_ERR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(lily_context_error(ctx), "multiple of the hop"));
    /* shorter than the 784-sample reflection: repeated reflection (numpy.pad), finite out */
    lt_fill_uniform(x, 480, 3, -1, 1);
    g_assert_cmpint(lily_mel_compute(m, x, 480, mel, NULL), ==, LILY_OK);
    for (int i = 0; i < NM; i++) g_assert_true(isfinite(mel[i]));
    lily_mel_free(m);
    lily_context_free(ctx);
}

/* The 0.985 rule by hand: uniform energies 1..10 put the cutoff at index 8; all-zero energy
 * and a single bin give 0. */
static void test_cutoff_rule(void)
{
    double e[10];
    for (int i = 0; i < 10; i++) e[i] = 1.0;
    g_assert_cmpint(lily_cutoff_index(e, 10), ==, 8); /* cumsum[8] = 9 < 9.85 <= 10 */
    e[9] = 100;                                        /* the top bin holds most energy */
    g_assert_cmpint(lily_cutoff_index(e, 10), ==, 8);
    for (int i = 0; i < 10; i++) e[i] = i < 5 ? 1.0 : 0.0; /* band-limited to bins 0..4 */
    g_assert_cmpint(lily_cutoff_index(e, 10), ==, 3);
    memset(e, 0, sizeof e);
    g_assert_cmpint(lily_cutoff_index(e, 10), ==, 0);
    g_assert_cmpint(lily_cutoff_index(e, 1), ==, 0);
}

/* ref-a's cutoffs: bin 332 -> 7781.25 Hz on the mel STFT, and mel bin 170 on
 * exp(lowpass_mel), as AudioSR found them (manifest). */
static void test_cutoff_ref_a(void)
{
    LilyContext *ctx;
    LilyMel *m = new_mel(&ctx);
    LilyNpy wav, mag, lmel;
    lt_load_ref("waveform", &wav);
    lt_load_ref("stft_mag", &mag);
    lt_load_ref("lowpass_mel", &lmel);
    double hz = 0;
    g_assert_cmpint(lily_detect_cutoff(m, wav.data, (size_t)wav.numel, &hz), ==, LILY_OK);
    g_test_message("detected cutoff %.2f Hz (AudioSR 7781.25)", hz);
    g_assert_cmpfloat(hz, ==, 7781.25);
    const size_t frames = (size_t)mag.shape[1];
    double e[NB] = {0}, em[NM] = {0};
    for (size_t f = 0; f < frames; f++)
        for (int k = 0; k < NB; k++) e[k] += ((const float *)mag.data)[f * NB + k];
    g_assert_cmpint(lily_cutoff_index(e, NB), ==, 332);
    for (size_t f = 0; f < frames; f++)
        for (int k = 0; k < NM; k++) em[k] += exp(((float *)lmel.data)[f * NM + k]);
    const int melbin = lily_cutoff_index(em, NM);
    g_test_message("mel cutoff bin %d (AudioSR 170)", melbin);
    g_assert_cmpint(melbin, ==, 170);
    lily_npy_free(&wav);
    lily_npy_free(&mag);
    lily_npy_free(&lmel);
    lily_mel_free(m);
    lily_context_free(ctx);
}

/* Silence has no cutoff under 1 kHz, so AudioSR's rule answers the full band, 24000 Hz. */
static void test_cutoff_silence(void)
{
    LilyContext *ctx;
    LilyMel *m = new_mel(&ctx);
    const size_t n = 48 * LILY_HOP;
    float *x = g_new0(float, n);
    double hz = 0;
    g_assert_cmpint(lily_detect_cutoff(m, x, n, &hz), ==, LILY_OK);
    g_assert_cmpfloat(hz, ==, 24000.0);
    g_free(x);
    lily_mel_free(m);
    lily_context_free(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/dsp/mel/filterbank-librosa", test_filterbank);
    g_test_add_func("/lily/dsp/mel/ref-a-stft-and-log-mel", test_ref_a_mel);
    g_test_add_func("/lily/dsp/mel/ref-a-lowpass-mel", test_ref_a_lowpass_mel);
    g_test_add_func("/lily/dsp/mel/streaming-equals-whole", test_streaming_equals_whole);
    g_test_add_func("/lily/dsp/mel/threads-concurrent", test_threads);
    g_test_add_func("/lily/dsp/mel/silence-floor", test_silence_floor);
    g_test_add_func("/lily/dsp/mel/nonfinite-rejected", test_nonfinite_rejected);
    g_test_add_func("/lily/dsp/mel/bad-length", test_bad_length);
    g_test_add_func("/lily/dsp/cutoff/rule-by-hand", test_cutoff_rule);
    g_test_add_func("/lily/dsp/cutoff/ref-a", test_cutoff_ref_a);
    g_test_add_func("/lily/dsp/cutoff/silence-full-band", test_cutoff_silence);
    return g_test_run();
}
