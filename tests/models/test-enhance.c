/* tests/models/test-enhance.c - lily_enhance on tiny-a: levels, edges, chunking, determinism.
 *
 * The cases AudioSR itself fails on (spec.md 9.1: silent input, padded-length rounding on about
 * 0.1 % of lengths, a last chunk shorter than the overlap) each run here and must give audio of
 * the input's length. Signals are short and steps few so the suite stays quick; the model is
 * tiny-a (random weights), so these tests check the machinery, not the sound. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/test-util.h"
#include "core/context.h"
#include "models/pipeline.h"

static LilyContext *ctx;
static LilyModel *model;

static void setup_model(void)
{
    if (model) return;
    char err[512];
    g_assert_cmpint(lily_context_new(NULL, &ctx, err, sizeof err), ==, LILY_OK);
    char *bin = lt_ref_path("tiny-a.bin");
    char *yaml = lt_ref_path("tiny-a.yaml");
    LilyModelParams mp;
    lily_model_params_init(&mp);
    mp.config_path = yaml;
    LilyStatus st = lily_model_load(ctx, bin, &mp, &model);
    if (st) g_printerr("%s\n", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_OK);
    g_free(bin);
    g_free(yaml);
}

static void params(LilyEnhanceParams *p)
{
    lily_enhance_params_init(p);
    p->steps = 2;
}

/* A band-limited test signal: harmonics of 220 Hz under 3 kHz plus a little noise. */
static float *test_signal(size_t n, int rate, double amp)
{
    float *x = g_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / rate, v = 0;
        for (int h = 1; h * 220 < 3000; h++) v += sin(2 * G_PI * 220 * h * t) / h;
        x[i] = (float)(amp * 0.4 * v);
    }
    float *nz = g_malloc(n * sizeof(float));
    lt_fill_uniform(nz, n, 9, -0.01f, 0.01f);
    for (size_t i = 0; i < n; i++) x[i] += (float)amp * nz[i];
    g_free(nz);
    return x;
}

static float *enhance(const LilyEnhanceParams *p, const float *x, size_t n, int rate, size_t *n_out)
{
    float *y = NULL;
    LilyStatus st = lily_enhance(ctx, model, p, x, n, rate, &y, n_out);
    if (st) g_printerr("%s\n", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_OK);
    for (size_t i = 0; i < *n_out; i++) g_assert_true(isfinite(y[i]));
    return y;
}

static double peak(const float *x, size_t n)
{
    double p = 0;
    for (size_t i = 0; i < n; i++) p = fmax(p, fabs(x[i]));
    return p;
}

/* The same seed and settings give the same bytes; another seed gives other audio. */
static void test_determinism(void)
{
    setup_model();
    LilyEnhanceParams p;
    params(&p);
    size_t n = 24000, na, nb, nc;
    float *x = test_signal(n, 48000, 1.0);
    float *a = enhance(&p, x, n, 48000, &na);
    float *b = enhance(&p, x, n, 48000, &nb);
    g_assert_cmpuint(na, ==, n);
    g_assert_cmpuint(nb, ==, n);
    g_assert_cmpint(memcmp(a, b, n * sizeof(float)), ==, 0);
    p.seed = 43;
    float *c = enhance(&p, x, n, 48000, &nc);
    LtErr e = lt_compare(c, a, n);
    g_test_message("seed 42 vs 43: max difference %.3g", e.max_abs);
    g_assert_cmpfloat(e.max_abs, >, 1e-4);
    g_free(a);
    g_free(b);
    g_free(c);
    g_free(x);
}

/* Silence in, silence out: all zeros, no NaN (AudioSR crashes here, spec 9.1 item 1). */
static void test_silence(void)
{
    setup_model();
    LilyEnhanceParams p;
    params(&p);
    size_t n = 30000, ny;
    float *x = g_malloc0(n * sizeof(float));
    float *y = enhance(&p, x, n, 48000, &ny);
    g_assert_cmpuint(ny, ==, n);
    g_assert_cmpfloat(peak(y, ny), ==, 0.0);
    g_free(x);
    g_free(y);
}

/* The output's level follows the input's: a 20 dB quieter input gives the same output 20 dB
 * quieter (the normalisation is undone), and a full-scale input does not clip. */
static void test_levels(void)
{
    setup_model();
    LilyEnhanceParams p;
    params(&p);
    size_t n = 24000, n1, n2;
    float *x1 = test_signal(n, 48000, 0.3);
    float *x2 = test_signal(n, 48000, 0.03);
    float *y1 = enhance(&p, x1, n, 48000, &n1);
    float *y2 = enhance(&p, x2, n, 48000, &n2);
    g_test_message("input peak %.3f, output peak %.3f", peak(x1, n), peak(y1, n1));
    g_assert_cmpfloat(peak(y1, n1), <, 0.999); /* the limiter must not have acted here */
    for (size_t i = 0; i < n; i++) y2[i] *= 10.0f;
    lt_assert_close_rel("0.1x input, output x10", y2, y1, n, 1e-4);
    /* full scale: the input peak is 1, the output must stay under 1 (the enhanced signal
     * carries new high-band energy, so without the single-gain limiter it would clip) */
    double px = peak(x1, n);
    for (size_t i = 0; i < n; i++) x1[i] = (float)(x1[i] / px);
    float *y3 = enhance(&p, x1, n, 48000, &n1);
    g_test_message("full-scale input: output peak %.4f", peak(y3, n1));
    g_assert_cmpfloat(peak(y3, n1), <, 1.0);
    g_free(x1);
    g_free(x2);
    g_free(y1);
    g_free(y2);
    g_free(y3);
}

/* Lengths AudioSR's float padding breaks (spec 9.1 item 2, e.g. 12,829 samples) and other odd
 * lengths and rates give output of the input's duration. */
static void test_lengths(void)
{
    setup_model();
    LilyEnhanceParams p;
    params(&p);
    p.steps = 1;
    static const struct { size_t n; int rate; size_t want; } cases[] = {
        {12829, 48000, 12829}, {1, 48000, 1}, {479, 48000, 479}, {245761, 48000, 245761},
        {8000, 8000, 48000}, {16001, 16000, 48003}, {22050, 44100, 24000},
    };
    for (size_t c = 0; c < G_N_ELEMENTS(cases); c++) {
        float *x = test_signal(cases[c].n, cases[c].rate, 0.5);
        size_t ny;
        float *y = enhance(&p, x, cases[c].n, cases[c].rate, &ny);
        g_test_message("%zu samples at %d Hz -> %zu at 48 kHz", cases[c].n, cases[c].rate, ny);
        g_assert_cmpuint(ny, ==, cases[c].want);
        g_free(x);
        g_free(y);
    }
    /* the padded frame count is computed in integers: 5.12 s multiples exactly */
    g_assert_cmpuint(lily_audiosr_padded_frames(12829), ==, 512);
    g_assert_cmpuint(lily_audiosr_padded_frames(245760), ==, 512);
    g_assert_cmpuint(lily_audiosr_padded_frames(245761), ==, 1024);
}

/* Chunked processing: a last chunk shorter than the overlap (spec 9.1 item 3) works; the
 * chunked output's low band (under 2 kHz, below the forced 3 kHz cutoff: the band AudioSR
 * copies from the input) equals the single-chunk output's to better than -40 dB in every
 * 20 ms window, seams included (measured: about -54 dB); and the seams carry no clicks:
 * around each seam the energy of the second difference stays within 2x of its median over the
 * file (per 10 ms window). The band above the cutoff is generated per chunk and is not
 * expected to match. */
static void test_chunks(void)
{
    setup_model();
    LilyEnhanceParams p;
    params(&p);
    p.cutoff_hz = 3000;
    p.filter_type = LILY_FILTER_BUTTER;
    /* 1.28 s chunks, 0.32 s overlap: step 0.96 s. 4.0 s gives a last remainder of 0.16 s after
     * the chunks at 0, 0.96, 1.92 and 2.88 s (covered to 4.16 s: no final chunk needed);
     * 3.9 s + the overlap case: remainder shorter than the overlap. */
    size_t n = 187200; /* 3.9 s */
    float *x = test_signal(n, 48000, 0.8);
    size_t nw, nc;
    float *whole = enhance(&p, x, n, 48000, &nw);
    p.chunk_seconds = 1.28;
    p.overlap_seconds = 0.32;
    p.vocoder_seconds = 0.64;
    float *chunked = enhance(&p, x, n, 48000, &nc);
    g_assert_cmpuint(nw, ==, n);
    g_assert_cmpuint(nc, ==, n);
    /* seams: chunk starts every 0.96 s */
    const size_t step = 46080, win = 480;
    double *e = g_malloc0(sizeof(double) * (n / win + 1));
    size_t nwin = 0;
    for (size_t w = 0; w + 1 < n / win; w++, nwin++)
        for (size_t i = w * win + 2; i < (w + 1) * win; i++) {
            double d2 = chunked[i] - 2.0 * chunked[i - 1] + chunked[i - 2];
            e[w] += d2 * d2;
        }
    double *sorted = g_memdup2(e, sizeof(double) * nwin);
    for (size_t i = 0; i < nwin; i++)
        for (size_t j = i + 1; j < nwin; j++)
            if (sorted[j] < sorted[i]) {
                double t = sorted[i];
                sorted[i] = sorted[j];
                sorted[j] = t;
            }
    double median = sorted[nwin / 2];
    for (size_t s = step; s < n; s += step) {
        for (size_t w = s / win - 2; w <= s / win + 2 && w < nwin; w++) {
            g_test_message("seam at %zu: window %zu energy %.3g (median %.3g)", s, w, e[w], median);
            g_assert_cmpfloat(e[w], <, 2.0 * median);
        }
    }
    g_free(sorted);
    g_free(e);
    /* low band: windowed-sinc low-pass at 2 kHz (under the 3 kHz cutoff), then the error of
     * the chunked output against the single-chunk one per 20 ms window */
    const int taps = 401;
    double h[401];
    for (int k = 0; k < taps; k++) {
        double m = k - taps / 2, fc = 2000.0 / 48000.0;
        double sinc = m == 0 ? 2 * fc : sin(2 * G_PI * fc * m) / (G_PI * m);
        h[k] = sinc * (0.54 - 0.46 * cos(2 * G_PI * k / (taps - 1)));
    }
    float *lw = g_malloc0(n * sizeof(float)), *lc = g_malloc0(n * sizeof(float));
    for (size_t i = taps / 2; i + taps / 2 < n; i++) {
        double aw = 0, ac = 0;
        for (int k = 0; k < taps; k++) {
            aw += h[k] * whole[i + k - taps / 2];
            ac += h[k] * chunked[i + k - taps / 2];
        }
        lw[i] = (float)aw;
        lc[i] = (float)ac;
    }
    const size_t w2 = 960;
    double worst_db = -400;
    for (size_t w = 1; (w + 2) * w2 < n; w++) {
        double se = 0, sr = 0;
        for (size_t i = w * w2; i < (w + 1) * w2; i++) {
            se += (double)(lc[i] - lw[i]) * (lc[i] - lw[i]);
            sr += (double)lw[i] * lw[i];
        }
        double db = 10 * log10(se / sr + 1e-30);
        if (db > worst_db) worst_db = db;
    }
    g_test_message("low band (< 2 kHz), chunked vs whole, worst 20 ms window: %.1f dB", worst_db);
    g_assert_cmpfloat(worst_db, <, -40.0);
    g_free(lw);
    g_free(lc);
    g_free(x);
    g_free(whole);
    g_free(chunked);
}

/* Long audio in constant memory: streaming 3 s and 12 s through a LilyEnhancer (1.28 s chunks)
 * gives the same peak scratch (arena) in a fresh context each, and the samples held inside
 * (pushed minus pulled) never exceed the reported latency plus one chunk: nothing grows with
 * the stream's length. */
static size_t stream_peak(double seconds, int64_t *worst_held, int64_t *latency)
{
    LilyEnhanceParams p;
    params(&p);
    p.cutoff_hz = 3000;
    p.filter_type = LILY_FILTER_BUTTER;
    p.chunk_seconds = 1.28;
    p.overlap_seconds = 0.32;
    p.vocoder_seconds = 0.64;
    LilyContext *c = NULL;
    char err[512];
    g_assert_cmpint(lily_context_new(NULL, &c, err, sizeof err), ==, LILY_OK);
    LilyEnhancer *e = NULL;
    g_assert_cmpint(lily_enhancer_new(c, model, &p, &e), ==, LILY_OK);
    *latency = lily_enhancer_latency(e);
    size_t n = (size_t)(seconds * 48000), piece = 4800, pushed = 0, pulled = 0;
    float *x = test_signal(n, 48000, 0.5);
    float *y = g_malloc(n * 2 * sizeof(float));
    *worst_held = 0;
    while (pushed < n) {
        size_t k = MIN(piece, n - pushed);
        g_assert_cmpint(lily_enhancer_push(e, x + pushed, k), ==, LILY_OK);
        pushed += k;
        pulled += lily_enhancer_pull(e, y + pulled, 2 * n - pulled);
        *worst_held = MAX(*worst_held, (int64_t)(pushed - pulled));
    }
    g_assert_cmpint(lily_enhancer_finish(e), ==, LILY_OK);
    pulled += lily_enhancer_pull(e, y + pulled, 2 * n - pulled);
    g_assert_cmpuint(pulled, ==, n);
    size_t peak_scratch = lily_context_peak_scratch(c);
    lily_enhancer_free(e);
    lily_context_free(c);
    g_free(x);
    g_free(y);
    return peak_scratch;
}

static void test_memory_flat(void)
{
    setup_model();
    int64_t held3, held12, lat;
    size_t p3 = stream_peak(3.0, &held3, &lat);
    size_t p12 = stream_peak(12.0, &held12, &lat);
    g_test_message("peak scratch: 3 s %.1f MiB, 12 s %.1f MiB; most samples held inside: %" G_GINT64_FORMAT
                   " and %" G_GINT64_FORMAT " (latency %" G_GINT64_FORMAT ", chunk 61440)",
                   p3 / 1048576.0, p12 / 1048576.0, held3, held12, lat);
    g_assert_cmpuint(p12, <=, p3 + p3 / 20);
    g_assert_cmpint(held12, <=, lat + 61440);
    g_assert_cmpint(held12, <=, held3 + 61440);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/enhance/determinism", test_determinism);
    g_test_add_func("/lily/enhance/silence", test_silence);
    g_test_add_func("/lily/enhance/levels", test_levels);
    g_test_add_func("/lily/enhance/lengths", test_lengths);
    g_test_add_func("/lily/enhance/chunks", test_chunks);
    g_test_add_func("/lily/enhance/memory-flat", test_memory_flat);
    int rc = g_test_run();
    lily_model_unref(model);
    lily_context_free(ctx);
    return rc;
}
