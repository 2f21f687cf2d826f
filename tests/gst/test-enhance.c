/* tests/gst/test-enhance.c - the whole chain, lilymel ! lilydiffuse ! lilyvocoder, and the
 * lilyenhance bin, with GstHarness: the output equals the engine's LilyEnhancer on the same
 * samples (channel by channel), is exactly as long as the input at EOS, does not depend on
 * buffer sizes; a flush in the middle of a chunk, a caps change (channel count) mid-stream and
 * a DISCONT each behave as the contract says (drain or drop, then a fresh start); the bin
 * proxies its properties and reports the sum of its stages' latencies.
 *
 * Reference: lgt_reference() (LilyEnhancer, engine/models/stream.c) with the same settings;
 * the element output must match it to 1e-6 absolute (the same code on the same samples: in
 * practice bit-identical, the printed count of differing samples shows it). */
#include <math.h>
#include <string.h>

#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include "common/test-util.h"
#include "lily-gst-test.h"

#define TOL 1e-6

#define CHAIN "lilymel ! lilydiffuse ! lilyvocoder"

/* Compares an interleaved output with the reference of each channel of x. */
static void assert_matches_reference(const char *what, const float *out, const float *x,
                                     gsize n, guint ch)
{
    LilyEnhanceParams p;
    lgt_enhance_params(&p);
    for (guint c = 0; c < ch; c++) {
        float *xc = lgt_channel(x, n, ch, c);
        float *yc = lgt_channel(out, n, ch, c);
        float *ref = lgt_reference(xc, n, &p);
        gchar *label = g_strdup_printf("%s, channel %u", what, c);
        lgt_assert_equal(label, yc, ref, n, TOL);
        g_free(label);
        g_free(xc);
        g_free(yc);
        g_free(ref);
    }
}

/* Runs the chain over x (odd buffer sizes) and EOS. */
static void run_chain(const char *launch, const float *x, gsize n, guint ch, LgtAudio *out)
{
    GstHarness *h = lgt_chain_harness(launch, ch);
    lgt_audio_init(out, ch);
    g_assert_cmpint(lgt_push_audio(h, x, n, ch, 0), ==, GST_FLOW_OK);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    lgt_audio_collect(h, out);
    gst_harness_teardown(h);
}

/* Stereo through the chain equals LilyEnhancer on each channel, sample for sample. */
static void test_equals_enhancer_stereo(void)
{
    /* 1.17 s: three diffusion chunks (0.64 s, overlap 0.16 s), one streaming vocoder chunk
     * (it runs once 2 x 64 + 32 frames are in) and the final one */
    const gsize n = 56000;
    float *x = g_new(float, 2 * n);
    lgt_signal(x, n, 2, 1);
    LgtAudio out;
    run_chain(CHAIN, x, n, 2, &out);
    g_assert_cmpuint(lgt_audio_frames(&out), ==, n);
    assert_matches_reference("chain vs LilyEnhancer", (float *)out.samples->data, x, n, 2);
    lgt_audio_clear(&out);
    g_free(x);
}

/* At EOS the output holds exactly as many samples as went in, for lengths below one chunk,
 * at a chunk, off the 480-sample hop grid, and across several chunks. */
static void test_eos_length(void)
{
    /* 1 sample: shorter than a chunk, one AudioSR-padded chunk; 30720: exactly one chunk;
     * 30721: one sample into the next; 53999: off the hop grid, three chunks */
    const gsize lengths[] = {1, 30720, 30721, 53999};
    for (guint i = 0; i < G_N_ELEMENTS(lengths); i++) {
        gsize n = lengths[i];
        float *x = g_new(float, n);
        lgt_signal(x, n, 1, 2);
        LgtAudio out;
        run_chain(CHAIN, x, n, 1, &out);
        g_test_message("%" G_GSIZE_FORMAT " samples in, %" G_GSIZE_FORMAT " out", n,
                       lgt_audio_frames(&out));
        g_assert_cmpuint(lgt_audio_frames(&out), ==, n);
        lgt_audio_clear(&out);
        g_free(x);
    }
}

/* The result depends on the samples only: one big buffer gives what odd-sized buffers give. */
static void test_buffer_sizes_irrelevant(void)
{
    const gsize n = 40000;
    float *x = g_new(float, n);
    lgt_signal(x, n, 1, 6);
    LgtAudio odd, whole;
    run_chain(CHAIN, x, n, 1, &odd);
    GstHarness *h = lgt_chain_harness(CHAIN, 1);
    lgt_audio_init(&whole, 1);
    g_assert_cmpint(gst_harness_push(h, lgt_audio_buffer(x, n, 1, 0)), ==, GST_FLOW_OK);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    lgt_audio_collect(h, &whole);
    gst_harness_teardown(h);
    g_assert_cmpuint(lgt_audio_frames(&whole), ==, n);
    lgt_assert_equal("one buffer vs odd buffers", (float *)whole.samples->data,
                     (float *)odd.samples->data, n, 0.0);
    lgt_audio_clear(&odd);
    lgt_audio_clear(&whole);
    g_free(x);
}

/* A flush in the middle of a chunk drops everything pending: the next run gives exactly what
 * a fresh chain gives (and nothing of the flushed audio comes out). */
static void test_flush_mid_chunk(void)
{
    const gsize n1 = 20000, n2 = 40000; /* n1 < one chunk (30720 + lilymel's 784) */
    float *x = g_new(float, n1 + n2);
    lgt_signal(x, n1 + n2, 1, 8);
    GstHarness *h = lgt_chain_harness(CHAIN, 1);
    g_assert_cmpint(lgt_push_audio(h, x, n1, 1, 0), ==, GST_FLOW_OK);
    g_assert_null(gst_harness_try_pull(h)); /* mid-chunk: nothing out yet */
    g_assert_true(gst_harness_push_event(h, gst_event_new_flush_start()));
    g_assert_true(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
    GstSegment seg;
    gst_segment_init(&seg, GST_FORMAT_TIME);
    g_assert_true(gst_harness_push_event(h, gst_event_new_segment(&seg)));
    LgtAudio after, fresh;
    lgt_audio_init(&after, 1);
    g_assert_cmpint(lgt_push_audio(h, x + n1, n2, 1, 0), ==, GST_FLOW_OK);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    lgt_audio_collect(h, &after);
    gst_harness_teardown(h);
    run_chain(CHAIN, x + n1, n2, 1, &fresh);
    g_assert_cmpuint(lgt_audio_frames(&after), ==, n2);
    g_assert_cmpuint(lgt_audio_frames(&fresh), ==, n2);
    lgt_assert_equal("after a mid-chunk flush vs a fresh chain", (float *)after.samples->data,
                     (float *)fresh.samples->data, n2, 0.0);
    GstBuffer *first = g_ptr_array_index(after.buffers, 0);
    g_assert_cmpuint(GST_BUFFER_PTS(first), ==, 0);
    g_assert_true(GST_BUFFER_FLAG_IS_SET(first, GST_BUFFER_FLAG_DISCONT));
    lgt_audio_clear(&after);
    lgt_audio_clear(&fresh);
    g_free(x);
}

/* A caps change from stereo to mono mid-stream drains the stereo part first (all of it comes
 * out, as two channels, equal to enhancing that part alone), then the mono part is enhanced
 * on its own. */
static void test_caps_change_drains(void)
{
    const gsize n1 = 36000, n2 = 36000;
    float *a = g_new(float, 2 * n1), *b = g_new(float, n2);
    lgt_signal(a, n1, 2, 10);
    lgt_signal(b, n2, 1, 11);
    GstHarness *h = lgt_chain_harness(CHAIN, 2);
    g_assert_cmpint(lgt_push_audio(h, a, n1, 2, 0), ==, GST_FLOW_OK);
    gst_harness_set_src_caps_str(h, "audio/x-raw, format=F32LE, rate=48000, channels=1, "
                                    "layout=interleaved");
    /* everything of the stereo part is out now, before any mono data */
    LgtAudio st;
    lgt_audio_init(&st, 2);
    lgt_audio_collect(h, &st);
    g_assert_cmpuint(lgt_audio_frames(&st), ==, n1);
    GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
    g_assert_nonnull(caps);
    gint ch = 0;
    gst_structure_get_int(gst_caps_get_structure(caps, 0), "channels", &ch);
    g_assert_cmpint(ch, ==, 1); /* the new caps went downstream after the drain */
    gst_caps_unref(caps);
    g_assert_cmpint(lgt_push_audio(h, b, n2, 1, lgt_sample_time(n1)), ==, GST_FLOW_OK);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    LgtAudio mono;
    lgt_audio_init(&mono, 1);
    lgt_audio_collect(h, &mono);
    gst_harness_teardown(h);
    g_assert_cmpuint(lgt_audio_frames(&mono), ==, n2);
    assert_matches_reference("stereo part before the caps change", (float *)st.samples->data, a,
                             n1, 2);
    assert_matches_reference("mono part after the caps change", (float *)mono.samples->data, b,
                             n2, 1);
    GstBuffer *first = g_ptr_array_index(mono.buffers, 0);
    g_assert_cmpuint(GST_BUFFER_PTS(first), ==, lgt_sample_time(n1));
    lgt_audio_clear(&st);
    lgt_audio_clear(&mono);
    g_free(a);
    g_free(b);
}

/* A DISCONT buffer (here with a 2 s timestamp jump) ends the section: the part before is
 * enhanced and trimmed as a stream of its own, the part after starts fresh at its own time. */
static void test_discont_restarts(void)
{
    const gsize n1 = 36000, n2 = 30000;
    float *x = g_new(float, n1 + n2);
    lgt_signal(x, n1 + n2, 1, 12);
    GstHarness *h = lgt_chain_harness(CHAIN, 1);
    g_assert_cmpint(lgt_push_audio(h, x, n1, 1, 0), ==, GST_FLOW_OK);
    const GstClockTime t2 = lgt_sample_time(n1) + 2 * GST_SECOND;
    GstBuffer *b = lgt_audio_buffer(x + n1, 1000, 1, t2);
    GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
    g_assert_cmpint(gst_harness_push(h, b), ==, GST_FLOW_OK);
    g_assert_cmpint(lgt_push_audio(h, x + n1 + 1000, n2 - 1000, 1, t2 + lgt_sample_time(1000)), ==,
                    GST_FLOW_OK);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    LgtAudio out;
    lgt_audio_init(&out, 1);
    lgt_audio_collect(h, &out);
    gst_harness_teardown(h);
    g_assert_cmpuint(lgt_audio_frames(&out), ==, n1 + n2);
    /* the second section starts at t2 with a DISCONT buffer */
    guint64 pos = 0;
    gboolean found = FALSE;
    for (guint i = 0; i < out.buffers->len; i++) {
        GstBuffer *o = g_ptr_array_index(out.buffers, i);
        if (pos == n1) {
            g_assert_cmpuint(GST_BUFFER_PTS(o), ==, t2);
            g_assert_true(GST_BUFFER_FLAG_IS_SET(o, GST_BUFFER_FLAG_DISCONT));
            found = TRUE;
        }
        pos += gst_buffer_get_size(o) / sizeof(float);
    }
    g_assert_true(found);
    const float *y = (const float *)out.samples->data;
    assert_matches_reference("section before the DISCONT", y, x, n1, 1);
    assert_matches_reference("section after the DISCONT", y + n1, x + n1, n2, 1);
    lgt_audio_clear(&out);
    g_free(x);
}

/* lilyenhance on 44.1 kHz stereo S16 gives 48 kHz F32 stereo: exactly the samples
 * audioconvert ! audioresample make of the input, each channel equal to LilyEnhancer on them;
 * its latency is lilymel's 784 samples + one diffusion chunk + the vocoder's (2 V + 32)
 * frames, each converted once, plus what audioresample reports. */
static void test_bin_any_input(void)
{
    const gsize n = 35280; /* 0.8 s at 44.1 kHz */
    const char *in_caps = "audio/x-raw, format=S16LE, rate=44100, channels=2, "
                          "layout=interleaved, channel-mask=(bitmask)0x3";
    gint16 *x = g_new(gint16, 2 * n);
    float *xf = g_new(float, 2 * n);
    lgt_signal(xf, n, 2, 13);
    for (gsize i = 0; i < 2 * n; i++) x[i] = (gint16)lrintf(xf[i] * 32767.0f);

    /* what the bin's first two elements make of it */
    GstHarness *r = gst_harness_new_parse("audioconvert ! audioresample ! "
                                          "capsfilter caps=audio/x-raw,format=F32LE,rate=48000");
    gst_harness_set_src_caps_str(r, in_caps);
    const gsize bytes = 2 * n * sizeof(gint16);
    GstBuffer *b = gst_buffer_new_wrapped(g_memdup2(x, bytes), bytes);
    GST_BUFFER_PTS(b) = 0;
    g_assert_cmpint(gst_harness_push(r, b), ==, GST_FLOW_OK);
    g_assert_true(gst_harness_push_event(r, gst_event_new_eos()));
    LgtAudio resampled;
    lgt_audio_init(&resampled, 2);
    lgt_audio_collect(r, &resampled);
    gst_harness_teardown(r);

    GstElement *bin = gst_element_factory_make("lilyenhance", NULL);
    lgt_configure(bin);
    GstHarness *h = gst_harness_new_with_element(bin, "sink", "src");
    gst_harness_set_upstream_latency(h, 0);
    gst_harness_set_src_caps_str(h, in_caps);
    GstClockTime lat = gst_harness_query_latency(h);
    /* audioresample's own share, as it answers inside the bin */
    GstElement *resample = gst_bin_get_by_name(GST_BIN(bin), "resample");
    GstPad *rpad = gst_element_get_static_pad(resample, "src");
    GstQuery *q = gst_query_new_latency();
    g_assert_true(gst_pad_query(rpad, q));
    GstClockTime resample_lat = 0;
    gst_query_parse_latency(q, NULL, &resample_lat, NULL);
    gst_query_unref(q);
    gst_object_unref(rpad);
    gst_object_unref(resample);
    b = gst_buffer_new_wrapped(g_memdup2(x, bytes), bytes);
    GST_BUFFER_PTS(b) = 0;
    g_assert_cmpint(gst_harness_push(h, b), ==, GST_FLOW_OK);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    LgtAudio out;
    lgt_audio_init(&out, 2);
    lgt_audio_collect(h, &out);
    GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
    GstStructure *s = gst_caps_get_structure(caps, 0);
    gint rate = 0, ch = 0;
    gst_structure_get_int(s, "rate", &rate);
    gst_structure_get_int(s, "channels", &ch);
    g_assert_cmpint(rate, ==, 48000);
    g_assert_cmpint(ch, ==, 2);
    g_assert_cmpstr(gst_structure_get_string(s, "format"), ==, "F32LE");
    gst_caps_unref(caps);
    gst_harness_teardown(h);
    gst_object_unref(bin);
    g_test_message("44.1 kHz: %" G_GSIZE_FORMAT " samples in, %" G_GSIZE_FORMAT " out at 48 kHz "
                   "(audioresample alone: %" G_GSIZE_FORMAT "); latency %" GST_TIME_FORMAT
                   " (audioresample's share %" GST_TIME_FORMAT ")",
                   n, lgt_audio_frames(&out), lgt_audio_frames(&resampled), GST_TIME_ARGS(lat),
                   GST_TIME_ARGS(resample_lat));
    g_assert_cmpuint(lgt_audio_frames(&out), ==, lgt_audio_frames(&resampled));
    assert_matches_reference("lilyenhance on 44.1 kHz S16", (float *)out.samples->data,
                             (float *)resampled.samples->data, lgt_audio_frames(&out), 2);
    GstClockTime stages = gst_util_uint64_scale_int_round(784, GST_SECOND, 48000) +
                          gst_util_uint64_scale_int_round(64 * 480, GST_SECOND, 48000) +
                          gst_util_uint64_scale_int_round((2 * 64 + 32) * 480, GST_SECOND, 48000);
    g_assert_cmpuint(lat, ==, resample_lat + stages);
    lgt_audio_clear(&out);
    lgt_audio_clear(&resampled);
    g_free(x);
    g_free(xf);
}

int main(int argc, char **argv)
{
    /* lilyenhance needs audioconvert and audioresample: system plugins stay visible */
    lgt_private_registry(TRUE);
    gst_init(&argc, &argv);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/gst/enhance/equals-enhancer-stereo", test_equals_enhancer_stereo);
    g_test_add_func("/lily/gst/enhance/eos-length", test_eos_length);
    g_test_add_func("/lily/gst/enhance/buffer-sizes-irrelevant", test_buffer_sizes_irrelevant);
    g_test_add_func("/lily/gst/enhance/flush-mid-chunk", test_flush_mid_chunk);
    g_test_add_func("/lily/gst/enhance/caps-change-drains", test_caps_change_drains);
    g_test_add_func("/lily/gst/enhance/discont-restarts", test_discont_restarts);
    g_test_add_func("/lily/gst/enhance/bin-any-input", test_bin_any_input);
    int ret = g_test_run();
    gst_deinit();
    return ret;
}
