/* tests/gst/test-mel.c - lilymel with GstHarness: parity with AudioSR's log-mel (ref-a),
 * timestamps, EOS padding, flush, discontinuities, caps refusal, silence, non-finite input,
 * the source-sample meta, the channel-major payload and the latency answer.
 *
 * Reference: ref-a/waveform.npy (AudioSR's padded input, 245760 samples) and
 * ref-a/log_mel_spec.npy (AudioSR mel_spectrogram_train, [1, 512, 256]); log-mel is compared
 * with an absolute tolerance of 1e-2 because the float32 reference carries ~1e-3 of STFT noise
 * near the 1e-5 floor (spec.md section 8). The plugin is found through GST_PLUGIN_PATH_1_0
 * (tests/meson.build) with a registry private to this binary. */
#include <math.h>
#include <string.h>

#include <gst/audio/audio.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include "common/test-util.h"
#include "gstlilymelmeta.h"

#define HOP 480
#define NMELS 256
#define SEG 245760
#define MAXCH 4

/* Odd buffer sizes, cycled, so that frame boundaries never line up with buffer boundaries. */
static const gsize odd_sizes[] = {1, 479, 1021, 4097, 333, 12345, 2, 999, 7, 2401};
#define N_ODD G_N_ELEMENTS(odd_sizes)

static GstClockTime sample_time(guint64 n)
{
    return gst_util_uint64_scale_int_round(n, GST_SECOND, 48000);
}

/* ---- harness helpers ------------------------------------------------------------------- */

static GstHarness *mel_harness(guint channels, gboolean interleaved)
{
    GstHarness *h = gst_harness_new("lilymel");
    gchar *caps = g_strdup_printf("audio/x-raw, format=F32LE, rate=48000, channels=%u, "
                                  "layout=%s",
                                  channels, interleaved ? "interleaved" : "non-interleaved");
    gst_harness_set_src_caps_str(h, caps);
    g_free(caps);
    return h;
}

/* n frames of `channels` interleaved samples; planar when !interleaved. */
static GstBuffer *make_buffer(const float *x, gsize n, guint channels, gboolean interleaved,
                              GstClockTime pts)
{
    GstBuffer *b = gst_buffer_new_allocate(NULL, n * channels * sizeof(float), NULL);
    GstMapInfo map;
    g_assert_true(gst_buffer_map(b, &map, GST_MAP_WRITE));
    float *d = (float *)map.data;
    if (interleaved)
        memcpy(d, x, n * channels * sizeof(float));
    else
        for (guint c = 0; c < channels; c++)
            for (gsize i = 0; i < n; i++) d[c * n + i] = x[i * channels + c];
    gst_buffer_unmap(b, &map);
    if (!interleaved) {
        GstAudioInfo info;
        gst_audio_info_set_format(&info, GST_AUDIO_FORMAT_F32LE, 48000, (gint)channels, NULL);
        info.layout = GST_AUDIO_LAYOUT_NON_INTERLEAVED;
        gst_buffer_add_audio_meta(b, &info, n, NULL);
    }
    GST_BUFFER_PTS(b) = pts;
    GST_BUFFER_DURATION(b) = GST_CLOCK_TIME_NONE;
    return b;
}

/* Pushes x (n interleaved frames) in buffers of the odd sizes, timestamped from `origin`. */
static void push_signal(GstHarness *h, const float *x, gsize n, guint channels,
                        gboolean interleaved, GstClockTime origin)
{
    gsize pos = 0;
    for (guint k = 0; pos < n; k++) {
        gsize len = MIN(odd_sizes[k % N_ODD], n - pos);
        GstBuffer *b = make_buffer(x + pos * channels, len, channels, interleaved,
                                   origin + sample_time(pos));
        g_assert_cmpint(gst_harness_push(h, b), ==, GST_FLOW_OK);
        pos += len;
    }
}

typedef struct MelRun {
    guint channels;
    GArray *mel[MAXCH]; /* floats, frames x 256, per channel */
    GPtrArray *bufs;    /* output buffers, in order */
    guint64 frames;
} MelRun;

static void run_init(MelRun *r, guint channels)
{
    memset(r, 0, sizeof *r);
    r->channels = channels;
    for (guint c = 0; c < channels; c++) r->mel[c] = g_array_new(FALSE, FALSE, sizeof(float));
    r->bufs = g_ptr_array_new_with_free_func((GDestroyNotify)gst_buffer_unref);
}

static void run_clear(MelRun *r)
{
    for (guint c = 0; c < r->channels; c++) g_array_unref(r->mel[c]);
    g_ptr_array_unref(r->bufs);
}

/* Pulls every buffer the element has pushed and splits the channel-major payload. */
static void collect(GstHarness *h, MelRun *r)
{
    GstBuffer *b;
    while ((b = gst_harness_try_pull(h))) {
        GstMapInfo map;
        g_assert_true(gst_buffer_map(b, &map, GST_MAP_READ));
        gsize per_frame = (gsize)r->channels * NMELS * sizeof(float);
        g_assert_cmpuint(map.size % per_frame, ==, 0);
        gsize nf = map.size / per_frame;
        const float *d = (const float *)map.data;
        for (guint c = 0; c < r->channels; c++)
            g_array_append_vals(r->mel[c], d + c * nf * NMELS, nf * NMELS);
        gst_buffer_unmap(b, &map);
        r->frames += nf;
        g_ptr_array_add(r->bufs, b);
    }
}

/* Runs a fresh element on x and EOS; interleaved input with the odd buffer sizes. */
static void run_signal(const float *x, gsize n, guint channels, GstClockTime origin, MelRun *r)
{
    GstHarness *h = mel_harness(channels, TRUE);
    run_init(r, channels);
    push_signal(h, x, n, channels, TRUE, origin);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    collect(h, r);
    gst_harness_teardown(h);
}

static gsize frames_of(const GstBuffer *b, guint channels)
{
    return gst_buffer_get_size((GstBuffer *)b) / ((gsize)channels * NMELS * sizeof(float));
}

static void assert_identical(const char *what, const float *a, const float *b, gsize n)
{
    gsize diff = 0;
    for (gsize i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) diff++;
    g_test_message("%-40s %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " values differ (must be 0)",
                   what, diff, n);
    g_assert_cmpuint(diff, ==, 0);
}

/* ---- tests ----------------------------------------------------------------------------- */

/* The element is registered by the plugin found through GST_PLUGIN_PATH_1_0. */
static void test_plugin_found(void)
{
    GstElementFactory *f = gst_element_factory_find("lilymel");
    if (!f)
        g_printerr("lilymel not found: GST_PLUGIN_PATH_1_0=%s\n",
                   g_getenv("GST_PLUGIN_PATH_1_0"));
    g_assert_nonnull(f);
    GstPlugin *p = gst_plugin_feature_get_plugin(GST_PLUGIN_FEATURE(f));
    g_assert_cmpstr(gst_plugin_get_name(p), ==, "lily");
    gst_object_unref(p);
    gst_object_unref(f);
}

/* ref-a's waveform in odd-sized buffers gives AudioSR's 512 log-mel frames within 1e-2. */
static void test_ref_parity(void)
{
    LilyNpy wav, ref;
    lt_load_ref("waveform", &wav);
    lt_load_ref("log_mel_spec", &ref);
    g_assert_cmpint(wav.numel, ==, SEG);
    g_assert_cmpint(ref.numel, ==, 512 * NMELS);
    MelRun r;
    run_signal(wav.data, (gsize)wav.numel, 1, 0, &r);
    g_assert_cmpuint(r.frames, ==, 512);
    lt_assert_close_abs("lilymel vs ref-a log_mel_spec", (float *)r.mel[0]->data, ref.data,
                        (size_t)ref.numel, 1e-2);
    run_clear(&r);
    lily_npy_free(&wav);
    lily_npy_free(&ref);
}

/* Over 12 s in odd buffers from origin 1.5 s, frame f's PTS is exactly origin +
 * round(480 f / 48 kHz), durations tile the time line, offsets are frame indices. */
static void test_timestamps(void)
{
    const gsize n = 12 * 48000 + 123;
    const GstClockTime origin = 1500 * GST_MSECOND;
    float *x = g_new(float, n);
    lt_sine(x, n, 440.0, 48000.0, 0.3);
    MelRun r;
    run_signal(x, n, 1, origin, &r);
    guint64 f = 0;
    for (guint i = 0; i < r.bufs->len; i++) {
        GstBuffer *b = g_ptr_array_index(r.bufs, i);
        gsize nf = frames_of(b, 1);
        g_assert_cmpuint(nf, >, 0);
        g_assert_cmpuint(GST_BUFFER_OFFSET(b), ==, f);
        g_assert_cmpuint(GST_BUFFER_OFFSET_END(b), ==, f + nf);
        GstClockTime pts = origin + sample_time(f * HOP);
        GstClockTime next = origin + sample_time((f + nf) * HOP);
        g_assert_cmpuint(GST_BUFFER_PTS(b), ==, pts);
        g_assert_cmpuint(GST_BUFFER_DURATION(b), ==, next - pts);
        g_assert_cmpint(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT), ==, i == 0);
        f += nf;
    }
    /* 12.0026 s pads to 3 segments of 5.12 s: 1536 frames ending at origin + 15.36 s. */
    g_assert_cmpuint(f, ==, 1536);
    GstBuffer *last = g_ptr_array_index(r.bufs, r.bufs->len - 1);
    g_assert_cmpuint(GST_BUFFER_PTS(last) + GST_BUFFER_DURATION(last), ==,
                     origin + 15360 * GST_MSECOND);
    g_test_message("%u buffers, %" G_GUINT64_FORMAT " frames, PTS/duration exact", r.bufs->len, f);
    run_clear(&r);
    g_free(x);
}

/* EOS pads to a multiple of 245760 samples: 1 s -> 512 frames, 5.12 s -> 512, 5.13 s ->
 * 1024, a single sample -> 512, nothing -> 0. */
static void test_eos_tail(void)
{
    static const struct { gsize n; guint64 frames; } cases[] = {
        {48000, 512}, {SEG, 512}, {246240, 1024}, {1, 512}, {1264, 512}, {0, 0},
    };
    float *x = g_new(float, 246240);
    lt_fill_uniform(x, 246240, 3, -0.5f, 0.5f);
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        MelRun r;
        run_signal(x, cases[i].n, 1, 0, &r);
        g_test_message("%7" G_GSIZE_FORMAT " samples -> %" G_GUINT64_FORMAT " frames (expected %"
                       G_GUINT64_FORMAT ")", cases[i].n, r.frames, cases[i].frames);
        g_assert_cmpuint(r.frames, ==, cases[i].frames);
        run_clear(&r);
    }
    g_free(x);
}

/* The padded tail equals AudioSR's whole-file mel: 1 s of noise gives the same frames as the
 * engine's lily_mel_compute on the zero-padded 5.12 s. */
static void test_eos_tail_values(void)
{
    const gsize n = 48000;
    float *x = g_new0(float, SEG);
    lt_fill_uniform(x, n, 5, -0.5f, 0.5f);
    MelRun r;
    run_signal(x, n, 1, 0, &r);
    g_assert_cmpuint(r.frames, ==, 512);

    LilyContextParams cp;
    lily_context_params_init(&cp);
    cp.n_threads = 1;
    LilyContext *ctx;
    char err[256];
    g_assert_cmpint(lily_context_new(&cp, &ctx, err, sizeof err), ==, LILY_OK);
    LilyMel *mel;
    g_assert_cmpint(lily_mel_new(ctx, &mel), ==, LILY_OK);
    float *want = g_new(float, 512 * NMELS);
    g_assert_cmpint(lily_mel_compute(mel, x, SEG, want, NULL), ==, LILY_OK);
    lt_assert_close_abs("streamed vs whole-file mel (1 s)", (float *)r.mel[0]->data, want,
                        512 * NMELS, 1e-5);
    lily_mel_free(mel);
    lily_context_free(ctx);
    g_free(want);
    run_clear(&r);
    g_free(x);
}

/* After a flush mid-stream the element gives exactly the frames and timestamps of a fresh
 * element fed the same new data. */
static void test_flush_restarts(void)
{
    const gsize n1 = 30000, n2 = 100000;
    float *x = g_new(float, n1 + n2);
    lt_fill_uniform(x, n1 + n2, 11, -0.4f, 0.4f);

    GstHarness *h = mel_harness(1, TRUE);
    MelRun a;
    run_init(&a, 1);
    push_signal(h, x, n1, 1, TRUE, 0);
    collect(h, &a);
    g_assert_cmpuint(a.frames, >, 0); /* frames were emitted before the flush */
    run_clear(&a);
    g_assert_true(gst_harness_push_event(h, gst_event_new_flush_start()));
    g_assert_true(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
    GstSegment seg;
    gst_segment_init(&seg, GST_FORMAT_TIME);
    g_assert_true(gst_harness_push_event(h, gst_event_new_segment(&seg)));
    run_init(&a, 1);
    push_signal(h, x + n1, n2, 1, TRUE, 0);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    collect(h, &a);
    gst_harness_teardown(h);

    MelRun b;
    run_signal(x + n1, n2, 1, 0, &b);
    g_assert_cmpuint(a.frames, ==, b.frames);
    g_assert_cmpuint(a.frames, ==, 512);
    assert_identical("flushed vs fresh element", (float *)a.mel[0]->data,
                     (float *)b.mel[0]->data, a.frames * NMELS);
    GstBuffer *fa = g_ptr_array_index(a.bufs, 0), *fb = g_ptr_array_index(b.bufs, 0);
    g_assert_cmpuint(GST_BUFFER_PTS(fa), ==, GST_BUFFER_PTS(fb));
    g_assert_cmpuint(GST_BUFFER_OFFSET(fa), ==, 0);
    run_clear(&a);
    run_clear(&b);
    g_free(x);
}

typedef enum { CUT_JUMP, CUT_DISCONT_FLAG, CUT_SEGMENT, CUT_GAP } CutKind;

/* Pushes 0.5 s, then a section boundary of the given kind, then the same 0.5 s again. */
static void run_cut(CutKind kind, GstClockTime *origin2, MelRun *r)
{
    const gsize n = 24000;
    float *x = g_new(float, n);
    lt_sine(x, n, 1000.0, 48000.0, 0.5);
    GstHarness *h = mel_harness(1, TRUE);
    run_init(r, 1);
    push_signal(h, x, n, 1, TRUE, 0);
    *origin2 = kind == CUT_JUMP ? 10 * GST_SECOND : sample_time(n);
    if (kind == CUT_SEGMENT) {
        GstSegment seg;
        gst_segment_init(&seg, GST_FORMAT_TIME);
        g_assert_true(gst_harness_push_event(h, gst_event_new_segment(&seg)));
    } else if (kind == CUT_GAP) {
        g_assert_true(gst_harness_push_event(h, gst_event_new_gap(*origin2, 0)));
    }
    GstBuffer *b = make_buffer(x, 1000, 1, TRUE, *origin2);
    if (kind == CUT_DISCONT_FLAG) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
    g_assert_cmpint(gst_harness_push(h, b), ==, GST_FLOW_OK);
    push_signal(h, x + 1000, n - 1000, 1, TRUE, *origin2 + sample_time(1000));
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    collect(h, r);
    gst_harness_teardown(h);
    g_free(x);
}

/* A timestamp jump over 5 ms, a DISCONT buffer, a new SEGMENT and a GAP each drain the first
 * section (512 padded frames) and restart the frame counter at 0 with the next buffer's
 * timestamp as origin; both sections of the same signal give identical frames. */
static void test_section_restarts(void)
{
    static const char *names[] = {"timestamp jump", "DISCONT flag", "new segment", "gap"};
    for (int kind = CUT_JUMP; kind <= CUT_GAP; kind++) {
        MelRun r;
        GstClockTime origin2;
        run_cut((CutKind)kind, &origin2, &r);
        g_test_message("%s: %" G_GUINT64_FORMAT " frames in %u buffers", names[kind], r.frames,
                       r.bufs->len);
        g_assert_cmpuint(r.frames, ==, 1024);
        guint64 f = 0;
        gboolean restarted = FALSE;
        for (guint i = 0; i < r.bufs->len; i++) {
            GstBuffer *b = g_ptr_array_index(r.bufs, i);
            if (f == 512) {
                f = 0;
                restarted = TRUE;
                g_assert_true(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT));
            }
            GstClockTime origin = restarted ? origin2 : 0;
            g_assert_cmpuint(GST_BUFFER_OFFSET(b), ==, f);
            g_assert_cmpuint(GST_BUFFER_PTS(b), ==, origin + sample_time(f * HOP));
            f += frames_of(b, 1);
        }
        g_assert_true(restarted);
        g_assert_cmpuint(f, ==, 512);
        const float *m = (const float *)r.mel[0]->data;
        assert_identical("section 2 vs section 1", m, m + 512 * NMELS, 512 * NMELS);
        run_clear(&r);
    }
}

/* A change of channel count drains the mono section, sends stereo caps downstream and starts a
 * new section at frame 0. */
static void test_caps_change_drains(void)
{
    const gsize n = 30000;
    float *x = g_new0(float, 2 * n);
    lt_fill_uniform(x, 2 * n, 51, -0.5f, 0.5f);
    GstHarness *h = mel_harness(1, TRUE);
    MelRun r1;
    run_init(&r1, 1);
    push_signal(h, x, n, 1, TRUE, 0);
    gst_harness_set_src_caps_str(h, "audio/x-raw, format=F32LE, rate=48000, channels=2, "
                                    "layout=interleaved");
    collect(h, &r1);
    g_assert_cmpuint(r1.frames, ==, 512);
    GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
    gint ch = 0;
    g_assert_true(gst_structure_get_int(gst_caps_get_structure(caps, 0), "channels", &ch));
    g_assert_cmpint(ch, ==, 2);
    gst_caps_unref(caps);
    MelRun r2;
    run_init(&r2, 2);
    push_signal(h, x, n, 2, TRUE, sample_time(n));
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    collect(h, &r2);
    g_assert_cmpuint(r2.frames, ==, 512);
    g_assert_cmpuint(GST_BUFFER_OFFSET(g_ptr_array_index(r2.bufs, 0)), ==, 0);
    g_assert_cmpuint(GST_BUFFER_PTS(g_ptr_array_index(r2.bufs, 0)), ==, sample_time(n));
    gst_harness_teardown(h);
    run_clear(&r1);
    run_clear(&r2);
    g_free(x);
}

/* Offers `caps`: the accept-caps query says no, and a buffer pushed after the caps event gets
 * not-negotiated. (The caps event itself is sticky: pushing it reports that it was stored.) */
static void assert_caps_refused(const char *caps_str)
{
    GstHarness *h = gst_harness_new("lilymel");
    GstCaps *caps = gst_caps_from_string(caps_str);
    g_assert_false(gst_pad_query_accept_caps(GST_PAD_PEER(h->srcpad), caps));
    gst_harness_push_event(h, gst_event_new_stream_start("refused"));
    gboolean accepted = gst_harness_push_event(h, gst_event_new_caps(caps));
    GstSegment seg;
    gst_segment_init(&seg, GST_FORMAT_TIME);
    gst_harness_push_event(h, gst_event_new_segment(&seg));
    GstBuffer *b = gst_buffer_new_allocate(NULL, 4096, NULL);
    gst_buffer_memset(b, 0, 0, 4096);
    GstFlowReturn fr = gst_harness_push(h, b);
    g_test_message("%-60s caps event %s, push -> %s", caps_str, accepted ? "stored" : "refused",
                   gst_flow_get_name(fr));
    g_assert_cmpint(fr, ==, GST_FLOW_NOT_NEGOTIATED);
    gst_caps_unref(caps);
    gst_harness_teardown(h);
}

/* 44.1 kHz, S8, S16LE and F64LE inputs are refused with not-negotiated. */
static void test_caps_refused(void)
{
    assert_caps_refused("audio/x-raw, format=F32LE, rate=44100, channels=1, layout=interleaved");
    assert_caps_refused("audio/x-raw, format=S8, rate=48000, channels=1, layout=interleaved");
    assert_caps_refused("audio/x-raw, format=S16LE, rate=48000, channels=1, layout=interleaved");
    assert_caps_refused("audio/x-raw, format=F64LE, rate=48000, channels=2, layout=interleaved");
}

/* The output caps carry the documented fields and the input's channel count. */
static void test_src_caps(void)
{
    GstHarness *h = mel_harness(3, TRUE);
    float x[3 * 1300] = {0};
    g_assert_cmpint(gst_harness_push(h, make_buffer(x, 1300, 3, TRUE, 0)), ==, GST_FLOW_OK);
    GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
    g_assert_nonnull(caps);
    GstCaps *want = gst_caps_from_string(
        "audio/x-lily-mel, rate=(int)48000, hop=(int)480, n-mels=(int)256, channels=(int)3, "
        "n-fft=(int)2048, format=(string)F32LE, layout=(string)planar");
    gchar *s = gst_caps_to_string(caps);
    g_test_message("src caps: %s", s);
    g_free(s);
    g_assert_true(gst_caps_is_equal(caps, want));
    gst_caps_unref(want);
    gst_caps_unref(caps);
    gst_harness_teardown(h);
}

/* Silence gives ln(1e-5) in every bin of every frame. */
static void test_silence(void)
{
    const gsize n = 100000;
    float *x = g_new0(float, n);
    MelRun r;
    run_signal(x, n, 1, 0, &r);
    g_assert_cmpuint(r.frames, ==, 512);
    gsize len = r.frames * NMELS;
    float *want = g_new(float, len);
    for (gsize i = 0; i < len; i++) want[i] = logf(1e-5f);
    lt_assert_close_abs("silence vs ln(1e-5)", (float *)r.mel[0]->data, want, len, 1e-6);
    g_free(want);
    run_clear(&r);
    g_free(x);
}

/* NaN and +-inf samples are replaced by 0: the frames equal those of the zeroed signal, one
 * element warning is posted, sanitized-samples counts every replaced sample (and the frames
 * property every emitted frame). */
static void test_nonfinite_sanitized(void)
{
    const gsize n = 60000;
    float *x = g_new(float, n), *clean = g_new(float, n);
    lt_fill_uniform(x, n, 21, -0.5f, 0.5f);
    const gsize bad_at[] = {0, 17, 5000, 5001, 33333, 59999};
    for (guint i = 0; i < G_N_ELEMENTS(bad_at); i++)
        x[bad_at[i]] = i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : -INFINITY;
    memcpy(clean, x, n * sizeof(float));
    for (guint i = 0; i < G_N_ELEMENTS(bad_at); i++) clean[bad_at[i]] = 0.0f;

    GstHarness *h = mel_harness(1, TRUE);
    GstBus *bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
    MelRun r;
    run_init(&r, 1);
    push_signal(h, x, n, 1, TRUE, 0);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    collect(h, &r);
    guint64 counted = 0, frames_prop = 0;
    g_object_get(h->element, "sanitized-samples", &counted, "frames", &frames_prop, NULL);
    guint warnings = 0;
    GstMessage *msg;
    while ((msg = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING))) {
        GError *e = NULL;
        gst_message_parse_warning(msg, &e, NULL);
        g_test_message("warning: %s", e->message);
        g_error_free(e);
        gst_message_unref(msg);
        warnings++;
    }
    gst_element_set_bus(h->element, NULL);
    gst_object_unref(bus);
    gst_harness_teardown(h);

    MelRun c;
    run_signal(clean, n, 1, 0, &c);
    g_test_message("sanitized-samples = %" G_GUINT64_FORMAT ", warnings = %u", counted, warnings);
    g_assert_cmpuint(counted, ==, G_N_ELEMENTS(bad_at));
    g_assert_cmpuint(warnings, ==, 1);
    g_assert_cmpuint(frames_prop, ==, r.frames);
    g_assert_cmpuint(r.frames, ==, c.frames);
    const float *m = (const float *)r.mel[0]->data;
    for (gsize i = 0; i < r.frames * NMELS; i++) g_assert_true(isfinite(m[i]));
    assert_identical("non-finite input vs zeroed input", m, (float *)c.mel[0]->data,
                     r.frames * NMELS);
    run_clear(&r);
    run_clear(&c);
    g_free(x);
    g_free(clean);
}

/* Every buffer carries GstLilyMelMeta: per channel, the samples of its frames' hop spans,
 * which concatenated equal the input followed by zeros; n_valid counts the real ones. */
static void test_meta(void)
{
    const guint ch = 2;
    const gsize n = 70001;
    float *x = g_new(float, n * ch);
    lt_fill_uniform(x, n * ch, 31, -1.0f, 1.0f);
    MelRun r;
    run_signal(x, n, ch, 0, &r);
    g_assert_cmpuint(r.frames, ==, 512);
    GType api = g_type_from_name("GstLilyMelMetaAPI");
    g_assert_true(api != 0);
    guint64 next = 0, valid = 0;
    gsize mismatches = 0;
    for (guint i = 0; i < r.bufs->len; i++) {
        GstBuffer *b = g_ptr_array_index(r.bufs, i);
        GstLilyMelMeta *m = (GstLilyMelMeta *)gst_buffer_get_meta(b, api);
        g_assert_nonnull(m);
        gsize nf = frames_of(b, ch);
        g_assert_cmpuint(m->n_channels, ==, ch);
        g_assert_cmpuint(m->n_samples, ==, nf * HOP);
        g_assert_cmpuint(m->offset, ==, GST_BUFFER_OFFSET(b) * HOP);
        g_assert_cmpuint(m->offset, ==, next);
        g_assert_cmpuint(m->n_valid, <=, m->n_samples);
        for (guint c = 0; c < ch; c++)
            for (gsize k = 0; k < m->n_samples; k++) {
                guint64 s = m->offset + k;
                float want = s < n ? x[s * ch + c] : 0.0f;
                if (memcmp(&m->samples[c * m->n_samples + k], &want, sizeof want)) mismatches++;
            }
        /* Real samples come first: n_valid is the count of indices below n. */
        guint64 real = m->offset >= n ? 0 : MIN(n - m->offset, m->n_samples);
        g_assert_cmpuint(m->n_valid, ==, real);
        valid += m->n_valid;
        next += m->n_samples;
    }
    g_test_message("meta: %u buffers, %" G_GUINT64_FORMAT " samples/channel, %" G_GUINT64_FORMAT
                   " valid, %" G_GSIZE_FORMAT " mismatches", r.bufs->len, next, valid, mismatches);
    g_assert_cmpuint(next, ==, SEG);
    g_assert_cmpuint(valid, ==, n);
    g_assert_cmpuint(mismatches, ==, 0);

    /* The meta survives a buffer copy with its own sample block. */
    GstBuffer *b0 = g_ptr_array_index(r.bufs, 0);
    GstBuffer *copy = gst_buffer_copy(b0);
    GstLilyMelMeta *m0 = (GstLilyMelMeta *)gst_buffer_get_meta(b0, api);
    GstLilyMelMeta *m1 = (GstLilyMelMeta *)gst_buffer_get_meta(copy, api);
    g_assert_nonnull(m1);
    g_assert_true(m1->samples != m0->samples);
    g_assert_cmpuint(m1->n_samples, ==, m0->n_samples);
    g_assert_cmpuint(m1->offset, ==, m0->offset);
    g_assert_cmpuint(m1->n_valid, ==, m0->n_valid);
    g_assert_cmpint(memcmp(m1->samples, m0->samples,
                           m0->n_channels * m0->n_samples * sizeof(float)), ==, 0);
    gst_buffer_unref(copy);
    run_clear(&r);
    g_free(x);
}

/* A stereo payload is channel-major: channel c of each buffer equals the mono run of that
 * channel's signal; non-interleaved input gives the same frames as interleaved. */
static void test_channel_major(void)
{
    const guint ch = 2;
    const gsize n = 50000;
    float *x = g_new(float, n * ch), *mono[2];
    for (guint c = 0; c < ch; c++) {
        mono[c] = g_new(float, n);
        lt_sine(mono[c], n, c ? 3000.0 : 250.0, 48000.0, c ? 0.1 : 0.6);
        for (gsize i = 0; i < n; i++) x[i * ch + c] = mono[c][i];
    }
    MelRun st;
    run_signal(x, n, ch, 0, &st);
    for (guint c = 0; c < ch; c++) {
        MelRun m;
        run_signal(mono[c], n, 1, 0, &m);
        g_assert_cmpuint(m.frames, ==, st.frames);
        assert_identical(c ? "stereo channel 1 vs mono" : "stereo channel 0 vs mono",
                         (float *)st.mel[c]->data, (float *)m.mel[0]->data, m.frames * NMELS);
        run_clear(&m);
    }
    /* The two channels differ, so a wrong interleave could not pass the comparison above. */
    g_assert_cmpint(memcmp(st.mel[0]->data, st.mel[1]->data, st.frames * NMELS * 4), !=, 0);

    GstHarness *h = mel_harness(ch, FALSE);
    MelRun p;
    run_init(&p, ch);
    push_signal(h, x, n, ch, FALSE, 0);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    collect(h, &p);
    gst_harness_teardown(h);
    g_assert_cmpuint(p.frames, ==, st.frames);
    for (guint c = 0; c < ch; c++)
        assert_identical("non-interleaved vs interleaved", (float *)p.mel[c]->data,
                         (float *)st.mel[c]->data, p.frames * NMELS);
    run_clear(&p);
    run_clear(&st);
    for (guint c = 0; c < ch; c++) g_free(mono[c]);
    g_free(x);
}

/* The latency answer is upstream's minimum plus 784 samples = 16333333 ns; an unbounded
 * maximum stays unbounded. */
static void test_latency(void)
{
    GstHarness *h = mel_harness(1, TRUE);
    gst_harness_set_upstream_latency(h, 10 * GST_MSECOND);
    const GstClockTime ours = 16333333;
    g_assert_cmpuint(ours, ==, gst_util_uint64_scale_int_round(784, GST_SECOND, 48000));
    GstClockTime min = gst_harness_query_latency(h);
    GstQuery *q = gst_query_new_latency();
    g_assert_true(gst_pad_peer_query(h->sinkpad, q));
    gboolean live;
    GstClockTime qmin, qmax;
    gst_query_parse_latency(q, &live, &qmin, &qmax);
    gst_query_unref(q);
    g_test_message("latency: min %" GST_TIME_FORMAT " max %" GST_TIME_FORMAT " live %d",
                   GST_TIME_ARGS(qmin), GST_TIME_ARGS(qmax), live);
    g_assert_cmpuint(min, ==, 10 * GST_MSECOND + ours);
    g_assert_cmpuint(qmin, ==, 10 * GST_MSECOND + ours);
    /* The harness reports an unbounded upstream maximum: it must stay unbounded. */
    g_assert_cmpuint(qmax, ==, GST_CLOCK_TIME_NONE);
    gst_harness_teardown(h);
}

/* The last frame is emitted as soon as its window's last sample arrives, not earlier: with
 * 480 f + 1263 samples frame f is still pending, with one more it is out. */
static void test_frame_ready_point(void)
{
    const gsize n = 480 * 9 + 1264;
    float *x = g_new(float, n);
    lt_fill_uniform(x, n, 41, -0.5f, 0.5f);
    GstHarness *h = mel_harness(1, TRUE);
    g_assert_cmpint(gst_harness_push(h, make_buffer(x, n - 1, 1, TRUE, 0)), ==, GST_FLOW_OK);
    MelRun r;
    run_init(&r, 1);
    collect(h, &r);
    g_assert_cmpuint(r.frames, ==, 9);
    g_assert_cmpint(gst_harness_push(h, make_buffer(x + n - 1, 1, 1, TRUE, sample_time(n - 1))),
                    ==, GST_FLOW_OK);
    collect(h, &r);
    g_assert_cmpuint(r.frames, ==, 10);
    run_clear(&r);
    gst_harness_teardown(h);
    g_free(x);
}

int main(int argc, char **argv)
{
    /* A registry of our own, so a stale or shared one can never hide the built plugin, holding
     * only the build tree's plugins: the harness needs no other element, and scanning the
     * system's would only cost time (and load libraries valgrind cannot run). */
    gchar *reg = g_build_filename(lt_tmpdir(), "registry.bin", NULL);
    g_setenv("GST_REGISTRY", reg, TRUE);
    g_setenv("GST_REGISTRY_1_0", reg, TRUE);
    g_setenv("GST_PLUGIN_SYSTEM_PATH_1_0", "", TRUE);
    g_free(reg);
    gst_init(&argc, &argv);
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/lily/gst/mel/plugin-found", test_plugin_found);
    g_test_add_func("/lily/gst/mel/ref-a-parity", test_ref_parity);
    g_test_add_func("/lily/gst/mel/timestamps-odd-buffers", test_timestamps);
    g_test_add_func("/lily/gst/mel/eos-tail-length", test_eos_tail);
    g_test_add_func("/lily/gst/mel/eos-tail-values", test_eos_tail_values);
    g_test_add_func("/lily/gst/mel/flush-mid-stream", test_flush_restarts);
    g_test_add_func("/lily/gst/mel/section-restarts", test_section_restarts);
    g_test_add_func("/lily/gst/mel/caps-change-drains", test_caps_change_drains);
    g_test_add_func("/lily/gst/mel/caps-refused", test_caps_refused);
    g_test_add_func("/lily/gst/mel/src-caps", test_src_caps);
    g_test_add_func("/lily/gst/mel/silence", test_silence);
    g_test_add_func("/lily/gst/mel/nonfinite-sanitized", test_nonfinite_sanitized);
    g_test_add_func("/lily/gst/mel/meta-samples", test_meta);
    g_test_add_func("/lily/gst/mel/channel-major", test_channel_major);
    g_test_add_func("/lily/gst/mel/latency", test_latency);
    g_test_add_func("/lily/gst/mel/frame-ready-point", test_frame_ready_point);
    int ret = g_test_run();
    gst_deinit();
    return ret;
}
