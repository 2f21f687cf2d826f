/* tests/data-pipeline/test-dataset.c - the engine side of training data (engine/train): the
 * config.yaml parser, AudioSR-style degradation draws and their band limit, the shard writer
 * (segment counts and lengths, silence and clipping, determinism, restart without duplicates,
 * a SIGKILL during a shard write, codec-delay alignment) and the reader (every segment once
 * per epoch, split by source, batches).
 *
 * References: the bundled /config.yaml (defaults), lily_lowpass (engine/dsp, itself tested
 * against scipy), and properties of the data (counts, spectra, permutations) stated per case. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lily/dataset.h>

#include "common/test-util.h"
#include "config/project-config.h"

#define SEG 30720 /* 0.64 s at 48 kHz: the shortest legal segment */

static LilyContext *ctx_new(void)
{
    LilyContextParams cp;
    lily_context_params_init(&cp);
    cp.n_threads = 1;
    LilyContext *ctx = NULL;
    char err[256];
    g_assert_cmpint(lily_context_new(&cp, &ctx, err, sizeof err), ==, LILY_OK);
    return ctx;
}

#define CHECK_OK(ctx, expr)                                                                    \
    do {                                                                                       \
        LilyStatus st_ = (expr);                                                               \
        if (st_ != LILY_OK) g_printerr("%s: %s\n", #expr, lily_context_error(ctx));            \
        g_assert_cmpint(st_, ==, LILY_OK);                                                     \
    } while (0)

static LilyDatasetParams small_params(void)
{
    LilyDatasetParams p;
    lily_dataset_params_init(&p);
    p.segment_seconds = 0.64;
    p.hop_seconds = 0.64;
    p.shard_segments = 4;
    p.validation_fraction = 0.0;
    p.seed = 7;
    return p;
}

static char *fresh_dir(const char *name)
{
    char *d = g_build_filename(lt_tmpdir(), name, NULL);
    char *cmd = g_strdup_printf("rm -rf '%s'", d);
    g_assert_cmpint(system(cmd), ==, 0);
    g_free(cmd);
    return d;
}

/* Band-limited-ish test audio: uniform noise of the given amplitude plus a 440 Hz tone, so
 * every segment is loud enough and differs from the next. */
static float *test_signal(size_t n, uint64_t seed, float amp)
{
    float *x = g_new(float, n);
    lt_fill_uniform(x, n, seed, -amp, amp);
    for (size_t i = 0; i < n; i++) x[i] += (float)(0.3 * amp * sin(2 * G_PI * 440.0 * (double)i / 48000.0));
    return x;
}

/* Pushes x in buffers of odd sizes, as a decoder would. */
static void push_source(LilyContext *ctx, LilyDatasetWriter *w, const char *uri, const float *x,
                        size_t n)
{
    static const size_t sizes[] = {1024, 4097, 333, 12345, 1, 7777};
    int done = 0;
    CHECK_OK(ctx, lily_dataset_writer_begin_source(w, uri, NULL, &done));
    for (size_t pos = 0, k = 0; pos < n; k++) {
        size_t len = MIN(sizes[k % G_N_ELEMENTS(sizes)], n - pos);
        CHECK_OK(ctx, lily_dataset_writer_push(w, x + pos, len));
        pos += len;
    }
    CHECK_OK(ctx, lily_dataset_writer_end_source(w));
}

/* ---- config ------------------------------------------------------------------------------ */

/* The bundled config.yaml parses, and its values are the built-in defaults. */
static void test_config_bundled_equals_defaults(void)
{
    LilyContext *ctx = ctx_new();
    char *path = g_build_filename(g_getenv("LILY_SOURCE_ROOT") ? g_getenv("LILY_SOURCE_ROOT") : ".",
                                  "config.yaml", NULL);
    LilyProjectConfig *cfg = g_new0(LilyProjectConfig, 1), *def = g_new0(LilyProjectConfig, 1);
    CHECK_OK(ctx, lily_project_config_load(ctx, path, cfg));
    lily_project_config_defaults(def);
    g_assert_cmpmem(&cfg->data.params, sizeof cfg->data.params, &def->data.params,
                    sizeof def->data.params);
    g_assert_cmpint(cfg->train.batch_size, ==, def->train.batch_size);
    g_assert_cmpfloat(cfg->train.learning_rate, ==, def->train.learning_rate);
    g_assert_cmpint(cfg->train.stage, ==, LILY_TRAIN_STAGE_UNET);
    g_assert_cmpint(cfg->inference.steps, ==, 50);
    g_assert_cmpfloat(cfg->inference.guidance_scale, ==, 3.5);
    g_assert_cmpstr(cfg->model.architecture, ==, "tiny");
    /* data.dir is resolved against the config's folder. */
    g_assert_true(g_str_has_suffix(cfg->data.dir, "/data/shards"));
    g_assert_true(g_str_has_prefix(cfg->data.dir, g_getenv("LILY_SOURCE_ROOT") ? g_getenv("LILY_SOURCE_ROOT") : "."));
    g_test_message("bundled config.yaml: data.dir=%s, %d filters mask 0x%x, cutoff %g..%g Hz",
            cfg->data.dir, LILY_FILTER_COUNT, cfg->data.params.degradation.filters,
            cfg->data.params.degradation.cutoff_min_hz, cfg->data.params.degradation.cutoff_max_hz);
    g_free(cfg);
    g_free(def);
    g_free(path);
    lily_context_free(ctx);
}

static void expect_config_error(LilyContext *ctx, const char *text, const char *needle)
{
    LilyProjectConfig *cfg = g_new0(LilyProjectConfig, 1);
    LilyStatus st = lily_project_config_parse(ctx, text, strlen(text), "t.yaml", "/base", cfg);
    g_test_message("  %-44s -> %s", needle, lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_ERR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(lily_context_error(ctx), needle));
    g_free(cfg);
}

/* Unknown keys, bad values and inconsistent ranges fail with file:line:column and the key. */
static void test_config_errors_name_line_column(void)
{
    LilyContext *ctx = ctx_new();
    expect_config_error(ctx, "data:\n  seed: 3\n  segmnet_seconds: 5.12\n",
                        "t.yaml:3:3: data.segmnet_seconds: unknown key");
    expect_config_error(ctx, "data:\n  segment_seconds: 5.0\n",
                        "t.yaml:2:20: data.segment_seconds: 5 s is not a positive multiple of 0.64");
    expect_config_error(ctx, "data:\n  degradation:\n    filters: [butter, elip]\n",
                        "t.yaml:3:23: data.degradation.filters: 'elip' is not a filter family");
    expect_config_error(ctx, "data:\n  degradation:\n    order_min: 8\n    order_max: 4\n",
                        "t.yaml:4:16: data.degradation.order_max: 4 is below order_min 8");
    expect_config_error(ctx, "train:\n  batch_size: four\n",
                        "t.yaml:2:15: train.batch_size: expected an integer");
    expect_config_error(ctx, "train:\n  stage: gan\n", "t.yaml:2:10: train.stage: expected unet");
    expect_config_error(ctx, "inference:\n  device: tpu\n", "t.yaml:2:11: inference.device");
    expect_config_error(ctx, "extra: 1\n", "t.yaml:1:1: extra: unknown key");
    expect_config_error(ctx, "data: [1, 2\n", "t.yaml:2:1: YAML syntax");
    /* A partial file keeps the defaults for everything else, and relative paths resolve. */
    LilyProjectConfig *cfg = g_new0(LilyProjectConfig, 1);
    const char *ok = "data:\n  dir: shards\n  degradation:\n    filters: [ellip]\n";
    CHECK_OK(ctx, lily_project_config_parse(ctx, ok, strlen(ok), "t.yaml", "/base", cfg));
    g_assert_cmpstr(cfg->data.dir, ==, "/base/shards");
    g_assert_cmpuint(cfg->data.params.degradation.filters, ==, 1u << LILY_FILTER_ELLIP);
    g_assert_cmpint(cfg->data.params.shard_segments, ==, 256);
    g_free(cfg);
    lily_context_free(ctx);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- degradation ------------------------------------------------------------------------- */

/* Draws stay in their ranges, use only allowed families, are a pure function of (seed,
 * source, index), and the cutoff is log-uniform (median at the geometric mean of the range). */
static void test_draws_in_range_and_deterministic(void)
{
    LilyDegradeParams p = small_params().degradation;
    enum { N = 20000 };
    int fam[LILY_FILTER_COUNT] = {0}, ord[13] = {0};
    double *cut = g_new(double, N);
    uint64_t h = lily_dataset_source_hash("file:///music/a.flac");
    for (int i = 0; i < N; i++) {
        LilyDegradation d, e;
        lily_degradation_draw(&p, 1234, h, (uint64_t)i, &d);
        lily_degradation_draw(&p, 1234, h, (uint64_t)i, &e);
        g_assert_cmpmem(&d, sizeof d, &e, sizeof e);
        g_assert_cmpint(d.order, >=, p.order_min);
        g_assert_cmpint(d.order, <=, p.order_max);
        g_assert_cmpfloat(d.cutoff_hz, >=, p.cutoff_min_hz);
        g_assert_cmpfloat(d.cutoff_hz, <=, p.cutoff_max_hz);
        g_assert_cmpfloat(d.cutoff_hz, ==, floor(d.cutoff_hz));
        fam[d.filter]++;
        ord[d.order]++;
        cut[i] = d.cutoff_hz;
    }
    for (int f = 0; f < LILY_FILTER_COUNT; f++) {
        g_test_message("  %-7s %5d draws", lily_filter_name((LilyFilterType)f), fam[f]);
        g_assert_cmpint(abs(fam[f] - N / 4), <, N / 20); /* 25% +- 5% */
    }
    for (int o = p.order_min; o <= p.order_max; o++) g_assert_cmpint(ord[o], >, N / 9 / 2);
    qsort(cut, N, sizeof *cut, cmp_double);
    const double median = cut[N / 2], geo = sqrt(p.cutoff_min_hz * p.cutoff_max_hz);
    g_test_message("  cutoff median %.0f Hz, geometric mean of the range %.0f Hz (log-uniform: within 3%%)",
            median, geo);
    g_assert_cmpfloat(fabs(median / geo - 1), <, 0.03);
    g_free(cut);
    /* Restricted families. */
    p.filters = (1u << LILY_FILTER_ELLIP) | (1u << LILY_FILTER_BESSEL);
    for (int i = 0; i < 1000; i++) {
        LilyDegradation d;
        lily_degradation_draw(&p, 99, h, (uint64_t)i, &d);
        g_assert_true(d.filter == LILY_FILTER_ELLIP || d.filter == LILY_FILTER_BESSEL);
    }
    /* Another source or seed gives other draws. */
    LilyDegradation a, b, c;
    lily_degradation_draw(&p, 99, h, 5, &a);
    lily_degradation_draw(&p, 99, h + 1, 5, &b);
    lily_degradation_draw(&p, 100, h, 5, &c);
    g_assert_true(a.cutoff_hz != b.cutoff_hz && a.cutoff_hz != c.cutoff_hz);
}

/* Energy above 1.1 x cutoff over energy below the cutoff, in dB, from the mel front end's STFT
 * magnitudes (periodic Hann 2048, 23.4 Hz bins). */
static double band_ratio_db(LilyMel *mel, const float *y, size_t n, double cutoff)
{
    size_t frames = n / LILY_HOP;
    float *m = g_new(float, frames * LILY_N_MELS), *mag = g_new(float, frames * 1024);
    g_assert_cmpint(lily_mel_compute(mel, y, n, m, mag), ==, LILY_OK);
    double below = 0, above = 0;
    for (size_t f = 0; f < frames; f++)
        for (int k = 0; k < 1024; k++) {
            double hz = k * 48000.0 / 2048.0, e = (double)mag[f * 1024 + k] * mag[f * 1024 + k];
            if (hz < cutoff) below += e;
            if (hz > 1.1 * cutoff) above += e;
        }
    g_free(m);
    g_free(mag);
    return 10.0 * log10((above + 1e-30) / below);
}

/* Measured worst case -40.5 dB (cheby1 and ellip of order 2 at 2 kHz: the resample_poly
 * anti-alias filter does most of the work there); the bound leaves 5 dB. */
#define BAND_BOUND_DB (-35.0)

/* The low side of white noise is band-limited at the recorded cutoff: the energy above
 * 1.1 x cutoff is at least 35 dB below the energy under it, for every family at orders 2, 6
 * and 10 and cutoffs 2-16 kHz, and for 24 random draws. */
static void test_low_side_band_limited(void)
{
    LilyContext *ctx = ctx_new();
    LilyMel *mel;
    CHECK_OK(ctx, lily_mel_new(ctx, &mel));
    const size_t n = SEG;
    float *x = g_new(float, n), *y = g_new(float, n);
    lt_fill_uniform(x, n, 11, -0.5f, 0.5f);
    static const int orders[] = {2, 6, 10};
    static const double cutoffs[] = {2000, 4500, 11000, 16000};
    double worst = -1e9;
    char worst_name[96] = "";
    for (int f = 0; f < LILY_FILTER_COUNT; f++)
        for (size_t o = 0; o < G_N_ELEMENTS(orders); o++)
            for (size_t c = 0; c < G_N_ELEMENTS(cutoffs); c++) {
                LilyDegradation d = {(LilyFilterType)f, orders[o], cutoffs[c]};
                CHECK_OK(ctx, lily_degradation_apply(ctx, &d, x, n, y));
                double r = band_ratio_db(mel, y, n, d.cutoff_hz);
                if (r > worst) {
                    worst = r;
                    snprintf(worst_name, sizeof worst_name, "%s order %d at %.0f Hz",
                             lily_filter_name(d.filter), d.order, d.cutoff_hz);
                }
                g_assert_cmpfloat(r, <=, BAND_BOUND_DB);
            }
    LilyDegradeParams p = small_params().degradation;
    for (int i = 0; i < 24; i++) {
        LilyDegradation d;
        lily_degradation_draw(&p, 5, 77, (uint64_t)i, &d);
        CHECK_OK(ctx, lily_degradation_apply(ctx, &d, x, n, y));
        double r = band_ratio_db(mel, y, n, d.cutoff_hz);
        if (r > worst) {
            worst = r;
            snprintf(worst_name, sizeof worst_name, "%s order %d at %.0f Hz (draw %d)",
                     lily_filter_name(d.filter), d.order, d.cutoff_hz, i);
        }
        g_assert_cmpfloat(r, <=, BAND_BOUND_DB);
    }
    g_test_message("worst energy above 1.1 x cutoff vs below: %.1f dB (%s); bound %.0f dB", worst,
            worst_name, BAND_BOUND_DB);
    g_free(x);
    g_free(y);
    lily_mel_free(mel);
    lily_context_free(ctx);
}

/* ---- writer ------------------------------------------------------------------------------ */

/* Known inputs give known segments: 3.3 s -> 5 segments and a dropped 0.1 s tail; 1.0 s -> 1
 * segment plus a zero-padded one holding 0.36 s; hop 0.32 s over 3.3 s -> 9 segments; silence
 * and clipping are skipped and counted; every tensor has its documented shape. */
static void test_segment_count_and_lengths(void)
{
    LilyContext *ctx = ctx_new();
    char *dir = fresh_dir("counts");
    LilyDatasetParams p = small_params();
    LilyDatasetWriter *w;
    CHECK_OK(ctx, lily_dataset_writer_open(ctx, dir, &p, &w));
    const size_t n1 = 158400, n2 = 48000; /* 3.3 s, 1.0 s */
    float *a = test_signal(n1, 1, 0.3f), *b = test_signal(n2, 2, 0.3f);
    float *silent = g_new0(float, n2), *clip = test_signal(n2, 3, 3.0f);
    for (size_t i = 0; i < n2; i++) clip[i] = CLAMP(clip[i], -1.0f, 1.0f);
    push_source(ctx, w, "test://a", a, n1);
    push_source(ctx, w, "test://b", b, n2);
    push_source(ctx, w, "test://silent", silent, n2);
    push_source(ctx, w, "test://clipped", clip, n2);
    LilyDatasetCounts c;
    lily_dataset_writer_counts(w, &c);
    g_assert_cmpuint(c.segments, ==, 7);
    g_assert_cmpuint(c.silent, ==, 2);  /* 1 full + 1 padded tail of silence */
    g_assert_cmpuint(c.clipped, ==, 2);
    g_assert_cmpuint(c.short_tails, ==, 1);
    CHECK_OK(ctx, lily_dataset_writer_close(w));

    LilyDataset *ds;
    CHECK_OK(ctx, lily_dataset_open(ctx, dir, &ds));
    g_assert_cmpuint(lily_dataset_count(ds, LILY_SPLIT_ALL), ==, 7);
    g_assert_cmpint(lily_dataset_samples(ds), ==, SEG);
    g_assert_cmpint(lily_dataset_frames(ds), ==, 64);
    g_assert_cmpint(lily_dataset_shard_count(ds), ==, 2); /* 4 + 3 */
    static const int64_t offsets[] = {0, 30720, 61440, 92160, 122880, 0, 30720};
    static const int64_t valids[] = {SEG, SEG, SEG, SEG, SEG, SEG, 48000 - SEG};
    for (size_t i = 0; i < 7; i++) {
        LilyDatasetSegment s;
        CHECK_OK(ctx, lily_dataset_get(ds, LILY_SPLIT_ALL, i, &s));
        g_assert_cmpstr(lily_dataset_source_uri(ds, s.source), ==, i < 5 ? "test://a" : "test://b");
        g_assert_cmpint(s.offset, ==, offsets[i]);
        g_assert_cmpint(s.valid, ==, valids[i]);
        const float *src = i < 5 ? a : b;
        g_assert_cmpmem(s.high, (size_t)s.valid * 4, src + s.offset, (size_t)s.valid * 4);
        for (int64_t k = s.valid; k < s.samples; k++) g_assert_cmpfloat(s.high[k], ==, 0.0f);
        for (int64_t k = s.valid; k < s.samples; k++) g_assert_cmpfloat(s.low[k], ==, 0.0f);
        g_assert_cmpint(s.low_kind, ==, LILY_LOW_LOWPASS);
        LilyDegradation d;
        lily_degradation_draw(&p.degradation, p.seed, lily_dataset_source_hash(lily_dataset_source_uri(ds, s.source)),
                              (uint64_t)s.index, &d);
        g_assert_cmpmem(&d, sizeof d, &s.degradation, sizeof d);
        g_assert_cmpfloat(s.high_rms_db, >, -20);
    }
    g_test_message("7 segments of %d samples / 64 frames in 2 shards; skipped: 2 silent, 2 clipped, 1 "
            "short tail", SEG);
    lily_dataset_close(ds);

    /* Overlapping hop. */
    char *dir2 = fresh_dir("counts-hop");
    p.hop_seconds = 0.32;
    CHECK_OK(ctx, lily_dataset_writer_open(ctx, dir2, &p, &w));
    push_source(ctx, w, "test://a", a, n1);
    lily_dataset_writer_counts(w, &c);
    g_assert_cmpuint(c.segments, ==, 9);
    CHECK_OK(ctx, lily_dataset_writer_close(w));
    CHECK_OK(ctx, lily_dataset_open(ctx, dir2, &ds));
    for (size_t i = 0; i < 9; i++) {
        LilyDatasetSegment s;
        CHECK_OK(ctx, lily_dataset_get(ds, LILY_SPLIT_ALL, i, &s));
        g_assert_cmpint(s.offset, ==, (int64_t)i * 15360);
        g_assert_cmpmem(s.high, SEG * 4, a + s.offset, SEG * 4);
    }
    lily_dataset_close(ds);
    g_free(a);
    g_free(b);
    g_free(silent);
    g_free(clip);
    g_free(dir);
    g_free(dir2);
    lily_context_free(ctx);
}

static void write_sources(LilyContext *ctx, const char *dir, const LilyDatasetParams *p,
                          int first, int count, size_t n)
{
    LilyDatasetWriter *w;
    CHECK_OK(ctx, lily_dataset_writer_open(ctx, dir, p, &w));
    for (int i = first; i < first + count; i++) {
        float *x = test_signal(n, 100 + (uint64_t)i, 0.25f);
        char uri[64];
        snprintf(uri, sizeof uri, "test://source-%03d", i);
        push_source(ctx, w, uri, x, n);
        g_free(x);
    }
    CHECK_OK(ctx, lily_dataset_writer_close(w));
}

static gboolean files_equal(const char *a, const char *b)
{
    gchar *ca, *cb;
    gsize la, lb;
    g_assert_true(g_file_get_contents(a, &ca, &la, NULL));
    g_assert_true(g_file_get_contents(b, &cb, &lb, NULL));
    gboolean eq = la == lb && memcmp(ca, cb, la) == 0;
    g_free(ca);
    g_free(cb);
    return eq;
}

/* The same seed and sources give byte-identical shards and index; another seed changes the
 * shards (so the comparison can fail). */
static void test_same_seed_identical_shards(void)
{
    LilyContext *ctx = ctx_new();
    LilyDatasetParams p = small_params();
    char *d1 = fresh_dir("seed-a"), *d2 = fresh_dir("seed-b"), *d3 = fresh_dir("seed-c");
    write_sources(ctx, d1, &p, 0, 3, 96000);
    write_sources(ctx, d2, &p, 0, 3, 96000);
    p.seed++;
    write_sources(ctx, d3, &p, 0, 3, 96000);
    int n = 0;
    for (int i = 0;; i++) {
        char name[64];
        snprintf(name, sizeof name, "shard-%05d.safetensors", i);
        char *f1 = g_build_filename(d1, name, NULL), *f2 = g_build_filename(d2, name, NULL),
             *f3 = g_build_filename(d3, name, NULL);
        gboolean exists = g_file_test(f1, G_FILE_TEST_EXISTS);
        if (exists) {
            g_assert_true(files_equal(f1, f2));
            g_assert_false(files_equal(f1, f3));
            n++;
        }
        g_free(f1);
        g_free(f2);
        g_free(f3);
        if (!exists) break;
    }
    char *i1 = g_build_filename(d1, "index.json", NULL), *i2 = g_build_filename(d2, "index.json", NULL);
    g_assert_true(files_equal(i1, i2));
    g_test_message("%d shards byte-identical for seed 7; seed 8 differs", n);
    g_assert_cmpint(n, ==, 3); /* 3 sources x 3 segments (2 s: 3 full + 0.08 s tail) = 9 -> 4+4+1 */
    g_free(i1);
    g_free(i2);
    g_free(d1);
    g_free(d2);
    g_free(d3);
    lily_context_free(ctx);
}

/* A second job on the same folder skips sources the index lists as complete and appends the
 * new ones: no duplicates, and the result equals one job over all sources. */
static void test_restart_appends_without_duplicates(void)
{
    LilyContext *ctx = ctx_new();
    LilyDatasetParams p = small_params();
    char *d1 = fresh_dir("restart"), *d2 = fresh_dir("restart-ref");
    write_sources(ctx, d1, &p, 0, 3, 96000);
    LilyDatasetWriter *w;
    CHECK_OK(ctx, lily_dataset_writer_open(ctx, d1, &p, &w));
    float *x = test_signal(96000, 101, 0.25f);
    int done = 0;
    CHECK_OK(ctx, lily_dataset_writer_begin_source(w, "test://source-001", NULL, &done));
    g_assert_cmpint(done, ==, 1);
    CHECK_OK(ctx, lily_dataset_writer_push(w, x, 96000));
    CHECK_OK(ctx, lily_dataset_writer_end_source(w));
    CHECK_OK(ctx, lily_dataset_writer_close(w));
    g_free(x);
    write_sources(ctx, d1, &p, 1, 4, 96000); /* 1, 2 skipped; 3, 4 new */
    write_sources(ctx, d2, &p, 0, 5, 96000);
    LilyDataset *a, *b;
    CHECK_OK(ctx, lily_dataset_open(ctx, d1, &a));
    CHECK_OK(ctx, lily_dataset_open(ctx, d2, &b));
    g_assert_cmpuint(lily_dataset_count(a, LILY_SPLIT_ALL), ==, 15);
    g_assert_cmpuint(lily_dataset_count(b, LILY_SPLIT_ALL), ==, 15);
    g_assert_cmpint(lily_dataset_source_count(a), ==, 5);
    for (size_t i = 0; i < 15; i++) {
        LilyDatasetSegment sa, sb;
        CHECK_OK(ctx, lily_dataset_get(a, LILY_SPLIT_ALL, i, &sa));
        CHECK_OK(ctx, lily_dataset_get(b, LILY_SPLIT_ALL, i, &sb));
        g_assert_cmpstr(lily_dataset_source_uri(a, sa.source), ==, lily_dataset_source_uri(b, sb.source));
        g_assert_cmpint(sa.offset, ==, sb.offset);
        g_assert_cmpmem(sa.low, SEG * 4, sb.low, SEG * 4);
        g_assert_cmpmem(sa.mel_low, 64 * 256 * 4, sb.mel_low, 64 * 256 * 4);
    }
    g_test_message("3 jobs (3 + 1 skipped + 2 skipped/2 new sources) = one job of 5 sources: 15 segments");
    lily_dataset_close(a);
    lily_dataset_close(b);
    /* Another recipe on the same folder is refused. */
    p.segment_seconds = 1.28;
    LilyStatus st = lily_dataset_writer_open(ctx, d1, &p, &w);
    g_assert_cmpint(st, ==, LILY_ERR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(lily_context_error(ctx), "segment length"));
    g_free(d1);
    g_free(d2);
    lily_context_free(ctx);
}

/* A source abandoned mid-way (a stop or flush before EOS) leaves nothing served: its segments
 * already in a shard are dropped, its pending ones discarded; begun again, it is stored once. */
static void test_abort_source_redone_once(void)
{
    LilyContext *ctx = ctx_new();
    LilyDatasetParams p = small_params();
    p.shard_segments = 2;
    char *dir = fresh_dir("abort");
    const size_t n = 4 * SEG;
    float *x = test_signal(n, 21, 0.25f);
    LilyDatasetWriter *w;
    CHECK_OK(ctx, lily_dataset_writer_open(ctx, dir, &p, &w));
    CHECK_OK(ctx, lily_dataset_writer_begin_source(w, "test://abort", NULL, NULL));
    CHECK_OK(ctx, lily_dataset_writer_push(w, x, 3 * SEG)); /* 2 segments in a shard, 1 pending */
    LilyDatasetCounts c;
    lily_dataset_writer_counts(w, &c);
    g_assert_cmpuint(c.shards_run, ==, 1);
    g_assert_cmpuint(c.pending, ==, 1);
    CHECK_OK(ctx, lily_dataset_writer_abort_source(w));
    g_assert_false(lily_dataset_writer_in_source(w));
    lily_dataset_writer_counts(w, &c);
    g_assert_cmpuint(c.pending, ==, 0);
    push_source(ctx, w, "test://abort", x, n);
    CHECK_OK(ctx, lily_dataset_writer_close(w));
    LilyDataset *ds;
    CHECK_OK(ctx, lily_dataset_open(ctx, dir, &ds));
    g_assert_cmpuint(lily_dataset_count(ds, LILY_SPLIT_ALL), ==, 4);
    for (size_t i = 0; i < 4; i++) {
        LilyDatasetSegment s;
        CHECK_OK(ctx, lily_dataset_get(ds, LILY_SPLIT_ALL, i, &s));
        g_assert_cmpint(s.offset, ==, (int64_t)i * SEG);
        g_assert_cmpint(s.shard, >=, 1); /* shard 0 held the abandoned attempt */
    }
    g_test_message("abandoned after 3 segments (2 stored, 1 pending), redone: 4 segments served once");
    lily_dataset_close(ds);
    g_free(x);
    g_free(dir);
    lily_context_free(ctx);
}

static int find_temp_file(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL)
        if (g_str_has_prefix(e->d_name, ".shard-") && strstr(e->d_name, ".tmp-")) found = 1;
    closedir(d);
    return found;
}

/* The killed child's job: sources 0, 1, 2, ... until it is killed. */
static void G_GNUC_NORETURN kill_child(const char *dir, const LilyDatasetParams *p)
{
    LilyContext *ctx = ctx_new();
    LilyDatasetWriter *w;
    if (lily_dataset_writer_open(ctx, dir, p, &w) != LILY_OK) _exit(3);
    for (int i = 0; i < 100000; i++) {
        float *x = test_signal(96000, 100 + (uint64_t)i, 0.25f);
        char uri[64];
        snprintf(uri, sizeof uri, "test://source-%03d", i);
        if (lily_dataset_writer_begin_source(w, uri, NULL, NULL) != LILY_OK ||
            lily_dataset_writer_push(w, x, 96000) != LILY_OK ||
            lily_dataset_writer_end_source(w) != LILY_OK)
            _exit(4);
        g_free(x);
    }
    _exit(5);
}

/* A job SIGKILLed while a shard is being written (its temporary file exists) leaves a folder
 * that opens and verifies cleanly; a new job over the same sources removes the leftover,
 * redoes the partial source and ends with exactly the dataset an uninterrupted job makes. */
static void test_kill_mid_write(void)
{
    LilyContext *ctx = ctx_new();
    LilyDatasetParams p = small_params();
    p.shard_segments = 2;
    char *dir = fresh_dir("killed"), *ref = fresh_dir("killed-ref");
    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    char *index = g_build_filename(dir, "index.json", NULL);
    fflush(NULL);
    pid_t pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) kill_child(dir, &p);
    /* Wait for at least 3 shards in the index, then for a shard's temporary file. */
    int killed = 0;
    for (int t = 0; t < 600000 && !killed; t++) {
        gchar *text = NULL;
        int shards = 0;
        if (g_file_get_contents(index, &text, NULL, NULL))
            for (const char *s = text; (s = strstr(s, "\"file\":")); s++) shards++;
        g_free(text);
        int status_now = 0;
        g_assert_cmpint(waitpid(pid, &status_now, WNOHANG), ==, 0); /* the child must still run */
        if (shards >= 3 && find_temp_file(dir)) {
            kill(pid, SIGKILL);
            killed = 1;
        }
        g_usleep(50);
    }
    int status = 0;
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(killed);
    g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* Readable as it stands. */
    LilyDataset *ds;
    CHECK_OK(ctx, lily_dataset_open(ctx, dir, &ds));
    size_t served = lily_dataset_count(ds, LILY_SPLIT_ALL);
    int sources = lily_dataset_source_count(ds);
    LilyDatasetCounts c;
    lily_dataset_counts(ds, &c);
    g_assert_cmpuint(c.segments, ==, served); /* complete sources' counts = segments served */
    lily_dataset_close(ds);
    int problems = -1;
    CHECK_OK(ctx, lily_dataset_verify(ctx, dir, NULL, NULL, &problems));
    g_assert_cmpint(problems, ==, 0);
    g_test_message("killed during a shard write: %zu segments of %" G_GUINT64_FORMAT " complete sources "
            "served, %d sources listed, verify finds 0 problems", served, c.sources, sources);

    /* Resume over sources 0 .. sources+1 and compare with an uninterrupted job. */
    int total = sources + 2;
    write_sources(ctx, dir, &p, 0, total, 96000);
    write_sources(ctx, ref, &p, 0, total, 96000);
    g_assert_false(find_temp_file(dir));
    LilyDataset *a, *b;
    CHECK_OK(ctx, lily_dataset_open(ctx, dir, &a));
    CHECK_OK(ctx, lily_dataset_open(ctx, ref, &b));
    size_t na = lily_dataset_count(a, LILY_SPLIT_ALL), nb = lily_dataset_count(b, LILY_SPLIT_ALL);
    g_assert_cmpuint(na, ==, nb);
    g_assert_cmpuint(na, ==, (size_t)total * 3);
    /* Match segments by (source URI, offset): storage order may differ. */
    int matched = 0;
    for (size_t i = 0; i < na; i++) {
        LilyDatasetSegment sa;
        CHECK_OK(ctx, lily_dataset_get(a, LILY_SPLIT_ALL, i, &sa));
        for (size_t j = 0; j < nb; j++) {
            LilyDatasetSegment sb;
            CHECK_OK(ctx, lily_dataset_get(b, LILY_SPLIT_ALL, j, &sb));
            if (sb.offset != sa.offset ||
                strcmp(lily_dataset_source_uri(a, sa.source), lily_dataset_source_uri(b, sb.source)))
                continue;
            g_assert_cmpmem(sa.low, SEG * 4, sb.low, SEG * 4);
            g_assert_cmpmem(sa.high, SEG * 4, sb.high, SEG * 4);
            matched++;
        }
    }
    g_assert_cmpint(matched, ==, (int)na);
    g_test_message("resumed job: %zu segments, each equal to the uninterrupted job's", na);
    lily_dataset_close(a);
    lily_dataset_close(b);
    g_free(index);
    g_free(dir);
    g_free(ref);
    lily_context_free(ctx);
}

/* A low side given as a stream delayed by 1105 samples (an MP3 round trip's delay) is
 * re-aligned: the estimate is 1105 and the stored low side equals the undelayed stream. */
static void test_low_stream_delay_compensated(void)
{
    LilyContext *ctx = ctx_new();
    LilyDatasetParams p = small_params();
    char *dir = fresh_dir("stream");
    const size_t n = 4 * SEG, delay = 1105;
    float *x = test_signal(n, 9, 0.3f), *lowpassed = g_new(float, n), *delayed = g_new0(float, n + delay);
    LilyDegradation d = {LILY_FILTER_CHEBY1, 6, 5000};
    CHECK_OK(ctx, lily_degradation_apply(ctx, &d, x, n, lowpassed));
    memcpy(delayed + delay, lowpassed, n * sizeof *x);
    LilyDatasetWriter *w;
    CHECK_OK(ctx, lily_dataset_writer_open(ctx, dir, &p, &w));
    LilyLowStream low = {"test codec", 4800};
    CHECK_OK(ctx, lily_dataset_writer_begin_source(w, "test://stream", &low, NULL));
    /* Interleave the two sides in unequal pieces, the low side running ahead. */
    size_t ph = 0, pl = 0;
    while (ph < n || pl < n + delay) {
        size_t kl = MIN(5000, n + delay - pl), kh = MIN(3000, n - ph);
        if (kl) CHECK_OK(ctx, lily_dataset_writer_push_low(w, delayed + pl, kl));
        if (kh) CHECK_OK(ctx, lily_dataset_writer_push(w, x + ph, kh));
        pl += kl;
        ph += kh;
    }
    CHECK_OK(ctx, lily_dataset_writer_end_source(w));
    CHECK_OK(ctx, lily_dataset_writer_close(w));
    LilyDataset *ds;
    CHECK_OK(ctx, lily_dataset_open(ctx, dir, &ds));
    g_assert_cmpuint(lily_dataset_count(ds, LILY_SPLIT_ALL), ==, 4);
    for (size_t i = 0; i < 4; i++) {
        LilyDatasetSegment s;
        CHECK_OK(ctx, lily_dataset_get(ds, LILY_SPLIT_ALL, i, &s));
        g_assert_cmpint(s.low_kind, ==, LILY_LOW_STREAM);
        g_assert_cmpstr(s.low_description, ==, "test codec");
        g_assert_cmpint(s.low_delay, ==, (int)delay);
        g_assert_cmpmem(s.low, SEG * 4, lowpassed + s.offset, SEG * 4);
        g_assert_cmpmem(s.high, SEG * 4, x + s.offset, SEG * 4);
    }
    g_test_message("low stream delay estimated %zu samples; 4 segments equal the undelayed low side",
            delay);
    lily_dataset_close(ds);
    g_free(x);
    g_free(lowpassed);
    g_free(delayed);
    g_free(dir);
    lily_context_free(ctx);
}

/* ---- reader ------------------------------------------------------------------------------ */

/* Each epoch's order is a permutation (every segment exactly once); epochs differ; the same
 * (seed, epoch) repeats; the iterator crosses epochs and seeks back to any position. */
static void test_every_segment_once_per_epoch(void)
{
    LilyContext *ctx = ctx_new();
    LilyDatasetParams p = small_params();
    char *dir = fresh_dir("epochs");
    write_sources(ctx, dir, &p, 0, 7, 96000);
    LilyDataset *ds;
    CHECK_OK(ctx, lily_dataset_open(ctx, dir, &ds));
    const size_t n = lily_dataset_count(ds, LILY_SPLIT_TRAIN);
    g_assert_cmpuint(n, ==, 21);
    size_t *o0 = g_new(size_t, n), *o1 = g_new(size_t, n), *again = g_new(size_t, n);
    int *seen = g_new0(int, n);
    CHECK_OK(ctx, lily_dataset_epoch_order(ds, LILY_SPLIT_TRAIN, 42, 0, o0));
    CHECK_OK(ctx, lily_dataset_epoch_order(ds, LILY_SPLIT_TRAIN, 42, 1, o1));
    CHECK_OK(ctx, lily_dataset_epoch_order(ds, LILY_SPLIT_TRAIN, 42, 0, again));
    g_assert_cmpmem(o0, n * sizeof *o0, again, n * sizeof *o0);
    g_assert_true(memcmp(o0, o1, n * sizeof *o0) != 0);
    LilyDatasetIter it;
    CHECK_OK(ctx, lily_dataset_iter_init(&it, ds, LILY_SPLIT_TRAIN, 42));
    size_t batch[5];
    /* 3 epochs in batches of 5 (crossing boundaries): every index once per epoch. */
    size_t taken = 0;
    while (taken < 3 * n) {
        CHECK_OK(ctx, lily_dataset_iter_next(&it, 5, batch));
        for (int b = 0; b < 5 && taken < 3 * n; b++, taken++) seen[batch[b]]++;
    }
    for (size_t i = 0; i < n; i++) g_assert_cmpint(seen[i], ==, 3);
    /* Seeking to (1, 4) gives epoch 1's order from position 4. */
    CHECK_OK(ctx, lily_dataset_iter_seek(&it, 1, 4));
    CHECK_OK(ctx, lily_dataset_iter_next(&it, 5, batch));
    for (int b = 0; b < 5; b++) g_assert_cmpuint(batch[b], ==, o1[4 + b]);
    /* A batch holds exactly the segments it names. */
    float *hi = g_new(float, 2 * SEG), *mel = g_new(float, 2 * 64 * 256);
    CHECK_OK(ctx, lily_dataset_batch(ds, LILY_SPLIT_TRAIN, batch, 2, hi, NULL, mel, NULL));
    for (int b = 0; b < 2; b++) {
        LilyDatasetSegment s;
        CHECK_OK(ctx, lily_dataset_get(ds, LILY_SPLIT_TRAIN, batch[b], &s));
        g_assert_cmpmem(hi + (size_t)b * SEG, SEG * 4, s.high, SEG * 4);
        g_assert_cmpmem(mel + (size_t)b * 64 * 256, 64 * 256 * 4, s.mel_high, 64 * 256 * 4);
    }
    g_assert_cmpint(lily_dataset_get(ds, LILY_SPLIT_TRAIN, n, (LilyDatasetSegment[1]){{0}}), ==,
                    LILY_ERR_INVALID_ARGUMENT);
    g_test_message("%zu segments: 3 epochs, each index exactly once per epoch; epoch 0 and 1 differ", n);
    lily_dataset_iter_release(&it);
    g_free(hi);
    g_free(mel);
    g_free(o0);
    g_free(o1);
    g_free(again);
    g_free(seen);
    lily_dataset_close(ds);
    g_free(dir);
    lily_context_free(ctx);
}

/* The split is by source: with validation_fraction 0.3 over 20 sources both splits are
 * non-empty, each source's segments all sit in one split, and the split is the pure function
 * of (seed, URI) the index records. */
static void test_split_by_source(void)
{
    LilyContext *ctx = ctx_new();
    LilyDatasetParams p = small_params();
    p.validation_fraction = 0.3;
    char *dir = fresh_dir("split");
    write_sources(ctx, dir, &p, 0, 20, 40000); /* one segment each */
    LilyDataset *ds;
    CHECK_OK(ctx, lily_dataset_open(ctx, dir, &ds));
    size_t nt = lily_dataset_count(ds, LILY_SPLIT_TRAIN), nv = lily_dataset_count(ds, LILY_SPLIT_VALIDATION);
    g_assert_cmpuint(nt + nv, ==, lily_dataset_count(ds, LILY_SPLIT_ALL));
    g_assert_cmpuint(nt, >, 0);
    g_assert_cmpuint(nv, >, 0);
    int val_sources = 0;
    for (int s = 0; s < lily_dataset_source_count(ds); s++) {
        int v = lily_dataset_source_is_validation(p.seed, lily_dataset_source_hash(lily_dataset_source_uri(ds, s)),
                                                  p.validation_fraction);
        g_assert_cmpint(lily_dataset_source_split(ds, s), ==, v ? LILY_SPLIT_VALIDATION : LILY_SPLIT_TRAIN);
        val_sources += v;
    }
    for (int sp = 0; sp < 2; sp++)
        for (size_t i = 0; i < (sp ? nv : nt); i++) {
            LilyDatasetSegment s;
            CHECK_OK(ctx, lily_dataset_get(ds, sp ? LILY_SPLIT_VALIDATION : LILY_SPLIT_TRAIN, i, &s));
            g_assert_cmpint(lily_dataset_source_split(ds, s.source), ==, sp);
        }
    g_assert_cmpuint(nt + nv, ==, 20);
    g_test_message("20 sources: %d validation sources (%zu segments), %zu train segments; no source in "
            "both", val_sources, nv, nt);
    lily_dataset_close(ds);
    g_free(dir);
    lily_context_free(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/data/config/bundled-equals-defaults", test_config_bundled_equals_defaults);
    g_test_add_func("/lily/data/config/errors-name-line-column", test_config_errors_name_line_column);
    g_test_add_func("/lily/data/degrade/draws-in-range-and-deterministic", test_draws_in_range_and_deterministic);
    g_test_add_func("/lily/data/degrade/low-side-band-limited", test_low_side_band_limited);
    g_test_add_func("/lily/data/writer/segment-count-and-lengths", test_segment_count_and_lengths);
    g_test_add_func("/lily/data/writer/same-seed-identical-shards", test_same_seed_identical_shards);
    g_test_add_func("/lily/data/writer/restart-appends-without-duplicates", test_restart_appends_without_duplicates);
    g_test_add_func("/lily/data/writer/abort-source-redone-once", test_abort_source_redone_once);
    g_test_add_func("/lily/data/writer/kill-mid-write", test_kill_mid_write);
    g_test_add_func("/lily/data/writer/low-stream-delay-compensated", test_low_stream_delay_compensated);
    g_test_add_func("/lily/data/reader/every-segment-once-per-epoch", test_every_segment_once_per_epoch);
    g_test_add_func("/lily/data/reader/split-by-source", test_split_by_source);
    return g_test_run();
}
