/* tests/gst/test-diffuse.c - lilydiffuse running the model: steps and guidance-scale really
 * change the output and the number of sampler steps (also when changed while playing, from the
 * next chunk), FLUSH_START cancels a running chunk within a step, the output buffers'
 * timestamps and meta (source samples, condition, real-sample counts), and the
 * falling-behind-live warning. Quick checks without audio are in test-elements.c.
 *
 * Model: the tiny AudioSR model tiny-a (lily-gst-test.h), 0.64 s chunks and 2 steps. */
#include <math.h>
#include <string.h>

#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include "common/test-util.h"
#include "gstlilymelmeta.h"
#include "lily-gst-test.h"

/* ---- helpers ----------------------------------------------------------------------------- */

/* Enhanced mel (all channels' frames concatenated per buffer, as they come) of a chain
 * lilymel ! lilydiffuse run over x and EOS; also returns the sampler step count. */
static GArray *run_diffuse(const float *x, gsize n, const char *extra_props, guint64 *steps_run)
{
    gchar *launch =
        g_strdup_printf("lilymel ! lilydiffuse name=d %s", extra_props ? extra_props : "");
    GstHarness *h = lgt_chain_harness(launch, 1);
    g_free(launch);
    /* extra_props come after the test defaults: re-apply them */
    if (extra_props) {
        GstElement *d = lgt_child(h, "lilydiffuse");
        gchar **kv = g_strsplit(extra_props, " ", -1);
        for (gchar **p = kv; *p; p++) {
            gchar **pair = g_strsplit(*p, "=", 2);
            if (pair[0] && pair[1]) gst_util_set_object_arg(G_OBJECT(d), pair[0], pair[1]);
            g_strfreev(pair);
        }
        g_strfreev(kv);
        gst_object_unref(d);
    }
    g_assert_cmpint(lgt_push_audio(h, x, n, 1, 0), ==, GST_FLOW_OK);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    GArray *mel = g_array_new(FALSE, FALSE, sizeof(float));
    GstBuffer *b;
    while ((b = gst_harness_try_pull(h))) {
        GstMapInfo map;
        g_assert_true(gst_buffer_map(b, &map, GST_MAP_READ));
        g_array_append_vals(mel, map.data, map.size / sizeof(float));
        gst_buffer_unmap(b, &map);
        gst_buffer_unref(b);
    }
    if (steps_run) {
        GstElement *d = lgt_child(h, "lilydiffuse");
        g_object_get(d, "sampler-steps", steps_run, NULL);
        gst_object_unref(d);
    }
    gst_harness_teardown(h);
    return mel;
}

static double max_abs_diff(const GArray *a, const GArray *b)
{
    g_assert_cmpuint(a->len, ==, b->len);
    double m = 0;
    for (guint i = 0; i < a->len; i++)
        m = fmax(m, fabs((double)g_array_index(a, float, i) - g_array_index(b, float, i)));
    return m;
}

/* ---- tests ------------------------------------------------------------------------------- */

/* steps and guidance-scale change the output, and the sampler runs steps x chunks steps; a
 * steps change while playing applies from the next chunk. */
static void test_steps_and_guidance(void)
{
    const gsize n = 72000; /* 1.5 s: 3 chunks of 0.64 s with 0.16 s of overlap */
    const guint64 chunks = 3;
    float *x = g_new(float, n);
    lgt_signal(x, n, 1, 3);
    guint64 s2 = 0, s3 = 0, sg = 0;
    GArray *a = run_diffuse(x, n, "steps=2", &s2);
    GArray *b = run_diffuse(x, n, "steps=3", &s3);
    GArray *c = run_diffuse(x, n, "steps=2 guidance-scale=1.0", &sg);
    GArray *a2 = run_diffuse(x, n, "steps=2", NULL);
    double dab = max_abs_diff(a, b), dac = max_abs_diff(a, c), daa = max_abs_diff(a, a2);
    g_test_message("sampler steps: %" G_GUINT64_FORMAT " (2 steps), %" G_GUINT64_FORMAT
                   " (3 steps), %" G_GUINT64_FORMAT " (guidance 1); max |mel diff| steps 2 vs 3: "
                   "%.4g, guidance 3.5 vs 1: %.4g, same settings twice: %.4g",
                   s2, s3, sg, dab, dac, daa);
    g_assert_cmpuint(s2, ==, 2 * chunks);
    g_assert_cmpuint(s3, ==, 3 * chunks);
    g_assert_cmpuint(sg, ==, 2 * chunks);
    g_assert_cmpfloat(dab, >, 1e-3);
    g_assert_cmpfloat(dac, >, 1e-3);
    g_assert_cmpfloat(daa, ==, 0.0); /* deterministic: the differences above are the settings' */

    /* change while playing: the first chunk (ready after 0.64 s + lilymel's 784 samples)
     * runs with 2 steps, the other two with 5 */
    GstHarness *h = lgt_chain_harness("lilymel ! lilydiffuse", 1);
    GstElement *d = lgt_child(h, "lilydiffuse");
    const gsize first = 30720 + 784 + 480; /* enough for chunk 0, not chunk 1 (53760) */
    g_assert_cmpint(lgt_push_audio(h, x, first, 1, 0), ==, GST_FLOW_OK);
    guint64 steps_run = 0;
    g_object_get(d, "sampler-steps", &steps_run, NULL);
    g_assert_cmpuint(steps_run, ==, 2);
    g_object_set(d, "steps", 5, NULL);
    g_assert_cmpint(lgt_push_audio(h, x + first, n - first, 1, lgt_sample_time(first)), ==,
                    GST_FLOW_OK);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    g_object_get(d, "sampler-steps", &steps_run, NULL);
    g_test_message("steps 2 then 5 from the second chunk: %" G_GUINT64_FORMAT " sampler steps",
                   steps_run);
    g_assert_cmpuint(steps_run, ==, 2 + 5 + 5);
    gst_object_unref(d);
    gst_harness_teardown(h);
    g_array_unref(a);
    g_array_unref(b);
    g_array_unref(c);
    g_array_unref(a2);
    g_free(x);
}

typedef struct PushJob {
    GstHarness *h;
    const float *x;
    gsize n;
    GstFlowReturn ret;
} PushJob;

static gpointer push_thread(gpointer data)
{
    PushJob *j = data;
    j->ret = lgt_push_audio(j->h, j->x, j->n, 1, 0);
    return NULL;
}

/* FLUSH_START while a chunk is being sampled stops it within a step (the push returns
 * FLUSHING long before its 1000 steps), and after FLUSH_STOP the element gives what a fresh
 * element gives. */
static void test_flush_cancels_running_chunk(void)
{
    const gsize n = 36000; /* one chunk of 0.64 s and a bit */
    float *x = g_new(float, n);
    lgt_signal(x, n, 1, 5);
    GstHarness *h = lgt_chain_harness("lilymel ! lilydiffuse", 1);
    GstElement *d = lgt_child(h, "lilydiffuse");
    g_object_set(d, "steps", 1000, NULL);
    PushJob job = {h, x, n, GST_FLOW_OK};
    GThread *t = g_thread_new("push", push_thread, &job);
    guint64 steps_run = 0;
    gint64 deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;
    while (steps_run < 2 && g_get_monotonic_time() < deadline) {
        g_usleep(1000);
        g_object_get(d, "sampler-steps", &steps_run, NULL);
    }
    g_assert_cmpuint(steps_run, >=, 2);
    gint64 t0 = g_get_monotonic_time();
    g_assert_true(gst_harness_push_event(h, gst_event_new_flush_start()));
    g_thread_join(t);
    double waited = (g_get_monotonic_time() - t0) / 1e6;
    g_object_get(d, "sampler-steps", &steps_run, NULL);
    g_test_message("flush during sampling: push returned %s after %.3f s, %" G_GUINT64_FORMAT
                   " of 1000 steps run", gst_flow_get_name(job.ret), waited, steps_run);
    g_assert_cmpint(job.ret, ==, GST_FLOW_FLUSHING);
    g_assert_cmpuint(steps_run, <, 1000);
    g_assert_true(gst_harness_push_event(h, gst_event_new_flush_stop(TRUE)));
    GstSegment seg;
    gst_segment_init(&seg, GST_FORMAT_TIME);
    g_assert_true(gst_harness_push_event(h, gst_event_new_segment(&seg)));
    g_object_set(d, "steps", LGT_STEPS, NULL);
    while (gst_harness_try_pull(h)) {} /* (nothing, but drop it if any) */
    g_assert_cmpint(lgt_push_audio(h, x, n, 1, 0), ==, GST_FLOW_OK);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    GArray *after = g_array_new(FALSE, FALSE, sizeof(float));
    GstBuffer *b;
    while ((b = gst_harness_try_pull(h))) {
        GstMapInfo map;
        g_assert_true(gst_buffer_map(b, &map, GST_MAP_READ));
        g_array_append_vals(after, map.data, map.size / sizeof(float));
        gst_buffer_unmap(b, &map);
        gst_buffer_unref(b);
    }
    gst_object_unref(d);
    gst_harness_teardown(h);
    GArray *fresh = run_diffuse(x, n, NULL, NULL);
    g_test_message("after the cancelled chunk: %u values, fresh element %u, max |diff| %.3g",
                   after->len, fresh->len, max_abs_diff(after, fresh));
    g_assert_cmpfloat(max_abs_diff(after, fresh), ==, 0.0);
    g_array_unref(after);
    g_array_unref(fresh);
    g_free(x);
}

/* Output buffers: one per batch the engine releases, whole frames, frame-counter timestamps
 * (PTS of frame f = T0 + 10 ms f), DISCONT on the first, and a meta holding source samples
 * and the condition waveform whose real-sample counts add up to the input length. */
static void test_output_meta_and_timestamps(void)
{
    const gsize n = 60000;
    const GstClockTime t0 = 3 * GST_SECOND;
    float *x = g_new(float, 2 * n);
    lgt_signal(x, n, 2, 9);
    GstHarness *h = lgt_chain_harness("lilymel ! lilydiffuse", 2);
    g_assert_cmpint(lgt_push_audio(h, x, n, 2, t0), ==, GST_FLOW_OK);
    g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
    guint64 frames = 0, valid = 0;
    guint nbuf = 0;
    GstBuffer *b;
    while ((b = gst_harness_try_pull(h))) {
        gsize size = gst_buffer_get_size(b);
        g_assert_cmpuint(size % (2 * 256 * sizeof(float)), ==, 0);
        gsize nf = size / (2 * 256 * sizeof(float));
        g_assert_cmpuint(GST_BUFFER_PTS(b), ==, t0 + lgt_sample_time(frames * 480));
        g_assert_cmpuint(GST_BUFFER_DURATION(b), ==,
                         lgt_sample_time((frames + nf) * 480) - lgt_sample_time(frames * 480));
        g_assert_cmpuint(GST_BUFFER_OFFSET(b), ==, frames);
        g_assert_cmpint(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT), ==, nbuf == 0);
        GstLilyMelMeta *m = lgt_mel_meta(b);
        g_assert_nonnull(m);
        g_assert_nonnull(m->condition);
        g_assert_cmpuint(m->n_channels, ==, 2);
        g_assert_cmpuint(m->n_samples, ==, nf * 480);
        g_assert_cmpuint(m->offset, ==, frames * 480);
        /* the source samples are the input's, channel by channel */
        for (gsize i = 0; i < m->n_valid; i += 997)
            for (guint c = 0; c < 2; c++)
                g_assert_cmpfloat(m->samples[c * m->n_samples + i], ==,
                                  x[(frames * 480 + i) * 2 + c]);
        valid += m->n_valid;
        frames += nf;
        nbuf++;
        gst_buffer_unref(b);
    }
    g_test_message("%u buffers, %" G_GUINT64_FORMAT " frames, %" G_GUINT64_FORMAT " real samples",
                   nbuf, frames, valid);
    g_assert_cmpuint(nbuf, >=, 2);
    g_assert_cmpuint(valid, ==, n);
    g_assert_cmpuint(frames * 480, >=, n);
    gst_harness_teardown(h);
    g_free(x);
}

/* When upstream is live and the engine is slower than real time (real-time-factor above 1),
 * lilydiffuse posts exactly one WARNING naming the real-time factor however many chunks follow
 * (where a fast machine keeps up, at most one); a non-live upstream never gets one. */
static void test_falling_behind_warns_once(void)
{
    const gsize n = 57600; /* 1.2 s: two chunks while streaming, one at EOS */
    float *x = g_new(float, n);
    lgt_signal(x, n, 1, 14);
    for (int live = 1; live >= 0; live--) {
        GstHarness *h = lgt_chain_harness("lilymel ! lilydiffuse", 1);
        gst_harness_set_live(h, live);
        GstBus *bus = gst_bus_new();
        gst_element_set_bus(h->element, bus);
        GstElement *d = lgt_child(h, "lilydiffuse");
        /* 100 steps per 0.64 s chunk: well past real time on a CPU (the live case must warn) */
        g_object_set(d, "steps", live ? 100 : LGT_STEPS, NULL);
        g_assert_cmpint(lgt_push_audio(h, x, n, 1, 0), ==, GST_FLOW_OK);
        g_assert_true(gst_harness_push_event(h, gst_event_new_eos()));
        gdouble rtf = 0;
        g_object_get(d, "real-time-factor", &rtf, NULL);
        guint warnings = 0;
        GstMessage *m;
        while ((m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING))) {
            GError *e = NULL;
            gst_message_parse_warning(m, &e, NULL);
            g_test_message("%s upstream: WARNING from %s: %s", live ? "live" : "non-live",
                           GST_MESSAGE_SRC_NAME(m), e->message);
            if (GST_MESSAGE_SRC(m) == GST_OBJECT(d) && strstr(e->message, "real-time factor"))
                warnings++;
            g_error_free(e);
            gst_message_unref(m);
        }
        g_test_message("%s upstream: real-time factor %.2f, %u falling-behind warning(s)",
                       live ? "live" : "non-live", rtf, warnings);
        g_assert_cmpfloat(rtf, >, 0.0);
        if (!live) g_assert_cmpuint(warnings, ==, 0);
        else if (rtf > 1.0) g_assert_cmpuint(warnings, ==, 1);
        else g_assert_cmpuint(warnings, <=, 1);
        gst_element_set_bus(h->element, NULL);
        gst_object_unref(bus);
        gst_object_unref(d);
        gst_harness_teardown(h);
    }
    g_free(x);
}

int main(int argc, char **argv)
{
    lgt_private_registry(FALSE);
    gst_init(&argc, &argv);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/gst/diffuse/steps-and-guidance", test_steps_and_guidance);
    g_test_add_func("/lily/gst/diffuse/flush-cancels-running-chunk",
                    test_flush_cancels_running_chunk);
    g_test_add_func("/lily/gst/diffuse/output-meta-and-timestamps",
                    test_output_meta_and_timestamps);
    g_test_add_func("/lily/gst/diffuse/falling-behind-warns-once", test_falling_behind_warns_once);
    int ret = g_test_run();
    gst_deinit();
    return ret;
}
