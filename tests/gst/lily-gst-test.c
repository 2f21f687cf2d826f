/* tests/gst/lily-gst-test.c - see lily-gst-test.h. */
#include <math.h>
#include <string.h>

#include "common/test-util.h"
#include "gstlilymelmeta.h"
#include "lily-gst-test.h"

#ifndef LILY_TEST_MODEL
#error "meson passes LILY_TEST_MODEL and LILY_TEST_CONFIG"
#endif

/* Odd buffer sizes, cycled, so that frame and chunk boundaries never line up with buffers. */
static const gsize odd_sizes[] = {1, 479, 1021, 4097, 333, 12345, 2, 999, 7, 2401, 30011};

const char *lgt_model(void) { return LILY_TEST_MODEL; }
const char *lgt_config(void) { return LILY_TEST_CONFIG; }

void lgt_private_registry(gboolean system_plugins)
{
    gchar *reg = g_build_filename(lt_tmpdir(), "registry.bin", NULL);
    g_setenv("GST_REGISTRY", reg, TRUE);
    g_setenv("GST_REGISTRY_1_0", reg, TRUE);
    if (!system_plugins) g_setenv("GST_PLUGIN_SYSTEM_PATH_1_0", "", TRUE);
    g_free(reg);
}

static gboolean has_prop(GstElement *e, const char *name)
{
    return g_object_class_find_property(G_OBJECT_GET_CLASS(e), name) != NULL;
}

void lgt_configure(GstElement *e)
{
    if (has_prop(e, "model")) g_object_set(e, "model", lgt_model(), NULL);
    if (has_prop(e, "config") && lgt_config()[0]) g_object_set(e, "config", lgt_config(), NULL);
    if (has_prop(e, "steps")) g_object_set(e, "steps", LGT_STEPS, NULL);
    if (has_prop(e, "chunk-duration"))
        g_object_set(e, "chunk-duration", (guint64)LGT_CHUNK_NS, "overlap-duration",
                     (guint64)LGT_OVERLAP_NS, NULL);
    if (has_prop(e, "vocoder-duration"))
        g_object_set(e, "vocoder-duration", (guint64)LGT_VOCODER_NS, NULL);
}

void lgt_configure_harness(GstHarness *h)
{
    if (GST_IS_BIN(h->element) && !has_prop(h->element, "model")) {
        GstIterator *it = gst_bin_iterate_elements(GST_BIN(h->element));
        GValue v = G_VALUE_INIT;
        while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
            lgt_configure(GST_ELEMENT(g_value_get_object(&v)));
            g_value_reset(&v);
        }
        g_value_unset(&v);
        gst_iterator_free(it);
    } else {
        lgt_configure(h->element);
    }
}

GstHarness *lgt_chain_harness(const char *launch, guint channels)
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

GstElement *lgt_child(GstHarness *h, const char *factory)
{
    GstIterator *it = gst_bin_iterate_elements(GST_BIN(h->element));
    GValue v = G_VALUE_INIT;
    GstElement *found = NULL;
    while (!found && gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
        GstElement *e = GST_ELEMENT(g_value_get_object(&v));
        GstElementFactory *f = gst_element_get_factory(e);
        if (f && g_str_equal(GST_OBJECT_NAME(f), factory)) found = gst_object_ref(e);
        g_value_reset(&v);
    }
    g_value_unset(&v);
    gst_iterator_free(it);
    g_assert_nonnull(found);
    return found;
}

void lgt_enhance_params(LilyEnhanceParams *p)
{
    lily_enhance_params_init(p);
    p->steps = LGT_STEPS;
    p->chunk_seconds = (double)LGT_CHUNK_NS / GST_SECOND;
    p->overlap_seconds = (double)LGT_OVERLAP_NS / GST_SECOND;
    p->vocoder_seconds = (double)LGT_VOCODER_NS / GST_SECOND;
}

GstClockTime lgt_sample_time(guint64 n)
{
    return gst_util_uint64_scale_int_round(n, GST_SECOND, 48000);
}

GstBuffer *lgt_audio_buffer(const float *x, gsize n, guint channels, GstClockTime pts)
{
    GstBuffer *b = gst_buffer_new_allocate(NULL, n * channels * sizeof(float), NULL);
    gst_buffer_fill(b, 0, x, n * channels * sizeof(float));
    GST_BUFFER_PTS(b) = pts;
    GST_BUFFER_DURATION(b) = lgt_sample_time(n);
    return b;
}

GstFlowReturn lgt_push_audio(GstHarness *h, const float *x, gsize n, guint channels,
                             GstClockTime origin)
{
    GstFlowReturn ret = GST_FLOW_OK;
    gsize pos = 0;
    for (guint k = 0; pos < n && ret == GST_FLOW_OK; k++) {
        gsize len = MIN(odd_sizes[k % G_N_ELEMENTS(odd_sizes)], n - pos);
        ret = gst_harness_push(h, lgt_audio_buffer(x + pos * channels, len, channels,
                                                   origin + lgt_sample_time(pos)));
        pos += len;
    }
    return ret;
}

void lgt_audio_init(LgtAudio *a, guint channels)
{
    a->channels = channels;
    a->samples = g_array_new(FALSE, FALSE, sizeof(float));
    a->buffers = g_ptr_array_new_with_free_func((GDestroyNotify)gst_buffer_unref);
}

void lgt_audio_clear(LgtAudio *a)
{
    g_array_unref(a->samples);
    g_ptr_array_unref(a->buffers);
}

void lgt_audio_collect(GstHarness *h, LgtAudio *a)
{
    GstBuffer *b;
    while ((b = gst_harness_try_pull(h))) {
        GstMapInfo map;
        g_assert_true(gst_buffer_map(b, &map, GST_MAP_READ));
        g_assert_cmpuint(map.size % (a->channels * sizeof(float)), ==, 0);
        g_array_append_vals(a->samples, map.data, map.size / sizeof(float));
        gst_buffer_unmap(b, &map);
        g_ptr_array_add(a->buffers, b);
    }
}

gsize lgt_audio_frames(const LgtAudio *a) { return a->samples->len / a->channels; }

float *lgt_channel(const float *x, gsize frames, guint channels, guint c)
{
    float *y = g_new(float, frames ? frames : 1);
    for (gsize i = 0; i < frames; i++) y[i] = x[i * channels + c];
    return y;
}

/* One context and model for every reference run of the process. */
static LilyContext *ref_ctx;
static LilyModel *ref_model;

static void ref_init(void)
{
    if (ref_model) return;
    LilyContextParams cp;
    lily_context_params_init(&cp);
    char err[512] = "";
    if (lily_context_new(&cp, &ref_ctx, err, sizeof err) != LILY_OK)
        g_error("reference: lily_context_new: %s", err);
    LilyModelParams mp;
    lily_model_params_init(&mp);
    mp.config_path = lgt_config()[0] ? lgt_config() : NULL;
    if (lily_model_load(ref_ctx, lgt_model(), &mp, &ref_model) != LILY_OK)
        g_error("reference: loading %s: %s", lgt_model(), lily_context_error(ref_ctx));
}

float *lgt_reference(const float *x, gsize n, const LilyEnhanceParams *p)
{
    ref_init();
    LilyEnhancer *e = NULL;
    if (lily_enhancer_new(ref_ctx, ref_model, p, &e) != LILY_OK)
        g_error("reference: %s", lily_context_error(ref_ctx));
    float *y = g_new0(float, n ? n : 1);
    gsize got = 0;
    if (lily_enhancer_push(e, x, n) != LILY_OK || lily_enhancer_finish(e) != LILY_OK)
        g_error("reference: %s", lily_context_error(ref_ctx));
    got = lily_enhancer_pull(e, y, n);
    g_assert_cmpuint(got, ==, n);
    g_assert_cmpuint(lily_enhancer_ready(e), ==, 0);
    lily_enhancer_free(e);
    return y;
}

void lgt_signal(float *x, gsize frames, guint channels, guint seed)
{
    /* Harmonics of a slowly gliding tone under ~4 kHz plus a little smoothed noise: a band
     * limited signal, the kind of input AudioSR extends. */
    float *noise = g_new(float, frames + 8);
    lt_fill_uniform(noise, frames + 8, seed, -1.0f, 1.0f);
    for (guint c = 0; c < channels; c++) {
        double f0 = 180.0 + 40.0 * c + 7.0 * seed, phase = 0;
        for (gsize i = 0; i < frames; i++) {
            double t = (double)i / 48000.0;
            phase += 2 * G_PI * f0 * (1.0 + 0.1 * sin(2 * G_PI * 0.7 * t)) / 48000.0;
            double v = 0;
            for (int k = 1; k <= 12; k++) v += sin(k * phase) / k;
            double nz = 0;
            for (int k = 0; k < 8; k++) nz += noise[i + k];
            x[i * channels + c] = (float)(0.12 * v + 0.01 * nz);
        }
    }
    g_free(noise);
}

void lgt_assert_equal(const char *what, const float *a, const float *b, gsize n, double tol)
{
    double maxd = 0, peak = 0;
    gsize worst = 0, differ = 0;
    for (gsize i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > maxd) {
            maxd = d;
            worst = i;
        }
        if (a[i] != b[i]) differ++;
        peak = fmax(peak, fabs((double)b[i]));
    }
    g_test_message("%s: %" G_GSIZE_FORMAT " samples, %" G_GSIZE_FORMAT " differ, max |diff| %.3g "
                   "at %" G_GSIZE_FORMAT " (reference peak %.3g, tolerance %.3g) %s",
                   what, n, differ, maxd, worst, peak, tol, maxd <= tol ? "OK" : "NOT OK");
    g_assert_cmpfloat(maxd, <=, tol);
}

GstLilyMelMeta *lgt_mel_meta(GstBuffer *b)
{
    GType api = g_type_from_name("GstLilyMelMetaAPI");
    g_assert_true(api != 0);
    return (GstLilyMelMeta *)gst_buffer_get_meta(b, api);
}

static gchar *error_text(GstMessage *m)
{
    GError *e = NULL;
    gchar *dbg = NULL;
    gst_message_parse_error(m, &e, &dbg);
    gchar *t = g_strdup_printf("%s: %s (%s)", GST_MESSAGE_SRC_NAME(m), e->message, dbg ? dbg : "");
    g_error_free(e);
    g_free(dbg);
    return t;
}

gchar *lgt_run_pipeline(GstElement *pipeline, guint timeout_s)
{
    GstBus *bus = gst_element_get_bus(pipeline);
    gchar *fail = NULL;
    GstMessage *m = NULL;
    if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        /* the element that failed has posted why */
        m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
        fail = m ? error_text(m) : g_strdup("state change to PLAYING failed");
    } else {
        m = gst_bus_timed_pop_filtered(bus, (GstClockTime)timeout_s * GST_SECOND,
                                       GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
        if (!m) fail = g_strdup_printf("no EOS within %u s", timeout_s);
        else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) fail = error_text(m);
    }
    if (m) gst_message_unref(m);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(bus);
    return fail;
}
