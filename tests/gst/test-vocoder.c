/* tests/gst/test-vocoder.c - lilyvocoder running HiFi-GAN: behind lilymel alone (no condition
 * in the meta) it resynthesises the input with exactly as many samples out as in, counter
 * timestamps and DISCONT only on the first buffer. Caps, latency and error checks are in
 * test-elements.c; the vocoder behind lilydiffuse in test-enhance.c.
 *
 * Model: the tiny AudioSR model tiny-a (lily-gst-test.h). */
#include <math.h>
#include <string.h>

#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include "common/test-util.h"
#include "lily-gst-test.h"

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
        GstHarness *h = lgt_chain_harness("lilymel ! lilyvocoder", ch);
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

int main(int argc, char **argv)
{
    lgt_private_registry(FALSE);
    gst_init(&argc, &argv);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/gst/vocoder/resynthesis-length-and-timestamps",
                    test_resynthesis_length_and_timestamps);
    int ret = g_test_run();
    gst_deinit();
    return ret;
}
