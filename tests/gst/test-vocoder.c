/* tests/gst/test-vocoder.c - lilyvocoder: caps (channels carried through, a channel-mask
 * above two), the latency figure (2 x vocoder-duration + 0.32 s, in samples, converted once),
 * exact output length and counter timestamps, HiFi-GAN resynthesis behind lilymel alone, and
 * refusal of mel buffers without their source samples.
 *
 * Model: the tiny AudioSR model tiny-a (lily-gst-test.h). */
#include <math.h>
#include <string.h>

#include <gst/audio/audio.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include "common/test-util.h"
#include "lily-gst-test.h"

static GstHarness *voc_harness(const char *launch, guint channels)
{
    GError *err = NULL;
    GstElement *bin = gst_parse_bin_from_description(launch, TRUE, &err);
    g_assert_no_error(err);
    GstIterator *it = gst_bin_iterate_elements(GST_BIN(bin));
    GValue v = G_VALUE_INIT;
    while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
        lgt_configure(GST_ELEMENT(g_value_get_object(&v)));
        g_value_reset(&v);
    }
    g_value_unset(&v);
    gst_iterator_free(it);
    GstHarness *h = gst_harness_new_with_element(bin, "sink", "src");
    gst_object_unref(bin);
    gchar *caps = g_strdup_printf("audio/x-raw, format=F32LE, rate=48000, channels=%u, "
                                  "layout=interleaved", channels);
    gst_harness_set_src_caps_str(h, caps);
    g_free(caps);
    return h;
}

/* The src pad template and the caps query: F32LE 48 kHz interleaved, and a caps query on the
 * sink pad carries the channel count downstream allows. */
static void test_caps(void)
{
    GstElement *v = gst_element_factory_make("lilyvocoder", NULL);
    GstPad *src = gst_element_get_static_pad(v, "src");
    GstCaps *tmpl = gst_pad_get_pad_template_caps(src);
    GstCaps *want = gst_caps_from_string("audio/x-raw, format=F32LE, rate=48000, channels=2, "
                                         "layout=interleaved");
    g_assert_true(gst_caps_can_intersect(tmpl, want));
    GstCaps *s16 = gst_caps_from_string("audio/x-raw, format=S16LE, rate=48000, channels=2");
    g_assert_false(gst_caps_can_intersect(tmpl, s16));
    gst_caps_unref(tmpl);
    gst_caps_unref(want);
    gst_caps_unref(s16);
    gst_object_unref(src);
    gst_object_unref(v);

    v = gst_element_factory_make("lilyvocoder", NULL);
    lgt_configure(v); /* the harness plays it: it needs its model */
    GstHarness *h = gst_harness_new_with_element(v, "sink", "src");
    gst_object_unref(v);
    gst_harness_set_sink_caps_str(h, "audio/x-raw, format=F32LE, rate=48000, channels=3, "
                                     "layout=interleaved, channel-mask=(bitmask)0x7");
    GstPad *sink = gst_element_get_static_pad(h->element, "sink");
    GstCaps *q = gst_pad_query_caps(sink, NULL);
    gchar *s = gst_caps_to_string(q);
    g_test_message("lilyvocoder sink caps with a 3-channel downstream: %s", s);
    g_free(s);
    g_assert_false(gst_caps_is_empty(q));
    gint ch = 0;
    g_assert_true(gst_structure_get_int(gst_caps_get_structure(q, 0), "channels", &ch));
    g_assert_cmpint(ch, ==, 3);
    gst_caps_unref(q);
    gst_object_unref(sink);
    gst_harness_teardown(h);
}

/* LATENCY: upstream + (2 V + 32) x 480 samples with V = vocoder-duration in frames rounded to
 * 8 (0.64 s -> V 64 -> 76800 samples -> 1.6 s; 5.12 s -> 1056 frames -> 10.56 s). */
static void test_latency(void)
{
    const struct {
        guint64 ns;
        gint64 samples;
    } cases[] = {{640 * GST_MSECOND, 76800}, {5120 * GST_MSECOND, 506880}};
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        GstElement *v = gst_element_factory_make("lilyvocoder", NULL);
        lgt_configure(v);
        g_object_set(v, "vocoder-duration", cases[i].ns, NULL);
        GstHarness *h = gst_harness_new_with_element(v, "sink", "src");
        gst_harness_set_upstream_latency(h, 5 * GST_MSECOND);
        GstClockTime lat = gst_harness_query_latency(h);
        GstClockTime want = 5 * GST_MSECOND +
                            gst_util_uint64_scale_int_round((guint64)cases[i].samples, GST_SECOND, 48000);
        g_test_message("vocoder-duration %" GST_TIME_FORMAT ": latency %" GST_TIME_FORMAT
                       " (expected %" GST_TIME_FORMAT ")", GST_TIME_ARGS(cases[i].ns),
                       GST_TIME_ARGS(lat), GST_TIME_ARGS(want));
        g_assert_cmpuint(lat, ==, want);
        gst_harness_teardown(h);
        gst_object_unref(v);
    }
}

/* Behind lilymel alone (no condition in the meta) lilyvocoder resynthesises: exactly as many
 * samples out as in, per channel, finite, timestamps T0 + n / 48000 from a counter, contiguous,
 * DISCONT only on the first buffer. */
static void test_resynthesis_length_and_timestamps(void)
{
    /* 70001: long enough for streaming vocoder chunks (2 x 64 + 32 frames) */
    const gsize lengths[] = {1, 479, 70001};
    for (guint k = 0; k < G_N_ELEMENTS(lengths); k++) {
        const gsize n = lengths[k];
        const guint ch = 2;
        const GstClockTime t0 = 7 * GST_SECOND + 123;
        float *x = g_new(float, n * ch);
        lgt_signal(x, n, ch, 4);
        GstHarness *h = voc_harness("lilymel ! lilyvocoder", ch);
        g_assert_cmpint(lgt_push_audio(h, x, n, ch, t0), ==, GST_FLOW_OK);
        g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
        LgtAudio out;
        lgt_audio_init(&out, ch);
        lgt_audio_collect(h, &out);
        g_test_message("%" G_GSIZE_FORMAT " samples in, %" G_GSIZE_FORMAT " out in %u buffers", n,
                       lgt_audio_frames(&out), out.buffers->len);
        g_assert_cmpuint(lgt_audio_frames(&out), ==, n);
        guint64 pos = 0;
        for (guint i = 0; i < out.buffers->len; i++) {
            GstBuffer *b = g_ptr_array_index(out.buffers, i);
            gsize len = gst_buffer_get_size(b) / (ch * sizeof(float));
            g_assert_cmpuint(GST_BUFFER_PTS(b), ==, t0 + lgt_sample_time(pos));
            g_assert_cmpuint(GST_BUFFER_PTS(b) + GST_BUFFER_DURATION(b), ==,
                             t0 + lgt_sample_time(pos + len));
            g_assert_cmpuint(GST_BUFFER_OFFSET(b), ==, pos);
            g_assert_cmpint(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT), ==, i == 0);
            pos += len;
        }
        double peak = 0;
        for (guint i = 0; i < out.samples->len; i++) {
            float v = g_array_index(out.samples, float, i);
            g_assert_true(isfinite(v));
            peak = fmax(peak, fabs(v));
        }
        g_test_message("output peak %.3f", peak);
        if (n >= 48000) g_assert_cmpfloat(peak, >, 1e-3); /* not silence */
        lgt_audio_clear(&out);
        gst_harness_teardown(h);
        g_free(x);
    }
}

/* A mel buffer without GstLilyMelMeta (e.g. from a file) is a STREAM/FORMAT error that says
 * to put lilymel upstream, not a crash. */
static void test_missing_meta_refused(void)
{
    GstElement *v = gst_element_factory_make("lilyvocoder", NULL);
    lgt_configure(v);
    GstHarness *h = gst_harness_new_with_element(v, "sink", "src");
    gst_harness_set_src_caps_str(h, "audio/x-lily-mel, rate=48000, hop=480, n-mels=256, "
                                    "channels=1, n-fft=2048, format=F32LE, layout=planar");
    GstBuffer *b = gst_buffer_new_allocate(NULL, 4 * 256 * sizeof(float), NULL);
    gst_buffer_memset(b, 0, 0, 4 * 256 * sizeof(float));
    GST_BUFFER_PTS(b) = 0;
    g_assert_cmpint(gst_harness_push(h, b), ==, GST_FLOW_ERROR);
    gst_harness_teardown(h);
    gst_object_unref(v);
}

int main(int argc, char **argv)
{
    lgt_private_registry(FALSE);
    gst_init(&argc, &argv);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/gst/vocoder/caps", test_caps);
    g_test_add_func("/lily/gst/vocoder/latency", test_latency);
    g_test_add_func("/lily/gst/vocoder/resynthesis-length-and-timestamps",
                    test_resynthesis_length_and_timestamps);
    g_test_add_func("/lily/gst/vocoder/missing-meta-refused", test_missing_meta_refused);
    int ret = g_test_run();
    gst_deinit();
    return ret;
}
