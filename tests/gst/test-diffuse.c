/* tests/gst/test-diffuse.c - lilydiffuse (and the GstLilyChunker base it shares with
 * lilyvocoder): properties and their defaults against the engine's (AudioSR's CLI), device
 * parsing, mutability, the model cache (shared weights, missing/corrupt/truncated model
 * files), the latency figure and message, steps and guidance really changing the output and
 * the sampler's step count, cancellation by FLUSH_START, and the meta it attaches.
 *
 * Model: the tiny AudioSR model tiny-a (lily-gst-test.h), 0.64 s chunks and 2 steps. */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include "common/test-util.h"
#include "gstlilymelmeta.h"
#include "lily-gst-test.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static GParamSpec *pspec_of(const char *factory, const char *prop)
{
    GstElement *e = gst_element_factory_make(factory, NULL);
    g_assert_nonnull(e);
    GParamSpec *p = g_object_class_find_property(G_OBJECT_GET_CLASS(e), prop);
    g_assert_nonnull(p);
    gst_object_unref(e);
    return p;
}

/* A harness around `launch` (a chain of elements, configured with the test settings). */
static GstHarness *chain_harness(const char *launch, guint channels)
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

static GstElement *child(GstHarness *h, const char *factory)
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

/* Enhanced mel (all channels' frames concatenated per buffer, as they come) of a chain
 * lilymel ! lilydiffuse run over x and EOS; also returns the sampler step count. */
static GArray *run_diffuse(const float *x, gsize n, const char *extra_props, guint64 *steps_run)
{
    gchar *launch = g_strdup_printf("lilymel ! lilydiffuse name=d %s", extra_props ? extra_props : "");
    GstHarness *h = chain_harness(launch, 1);
    g_free(launch);
    /* extra_props come after the test defaults: re-apply them */
    if (extra_props) {
        GstElement *d = child(h, "lilydiffuse");
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
        GstElement *d = child(h, "lilydiffuse");
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

/* Brings a lone element to PAUSED inside a pipeline and returns the state change result; the
 * first ERROR message (if any) is returned in *error. */
static GstStateChangeReturn start_element(GstElement *e, GError **error, gchar **debug)
{
    GstElement *pipe = gst_pipeline_new(NULL);
    gst_bin_add(GST_BIN(pipe), gst_object_ref(e));
    GstStateChangeReturn ret = gst_element_set_state(pipe, GST_STATE_PAUSED);
    GstBus *bus = gst_element_get_bus(pipe);
    GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    if (m) {
        gst_message_parse_error(m, error, debug);
        gst_message_unref(m);
    }
    gst_object_unref(bus);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_bin_remove(GST_BIN(pipe), e);
    gst_object_unref(pipe);
    return ret;
}

/* ---- properties (no model) --------------------------------------------------------------- */

/* The property defaults are AudioSR's CLI defaults as the engine gives them
 * (lily_enhance_params_init): 50 steps, guidance 3.5, seed 42, 10.24 s chunks, 1.28 s
 * overlap, 5.12 s vocoder chunks, automatic cutoff. */
static void test_defaults_match_engine(void)
{
    LilyEnhanceParams p;
    lily_enhance_params_init(&p);
    g_assert_cmpint(G_PARAM_SPEC_INT(pspec_of("lilydiffuse", "steps"))->default_value, ==, p.steps);
    g_assert_cmpfloat(G_PARAM_SPEC_DOUBLE(pspec_of("lilydiffuse", "guidance-scale"))->default_value,
                      ==, p.guidance_scale);
    g_assert_cmpuint(G_PARAM_SPEC_UINT64(pspec_of("lilydiffuse", "seed"))->default_value, ==, p.seed);
    g_assert_cmpuint(G_PARAM_SPEC_UINT64(pspec_of("lilydiffuse", "chunk-duration"))->default_value,
                     ==, (guint64)llround(p.chunk_seconds * GST_SECOND));
    g_assert_cmpuint(G_PARAM_SPEC_UINT64(pspec_of("lilydiffuse", "overlap-duration"))->default_value,
                     ==, (guint64)llround(p.overlap_seconds * GST_SECOND));
    g_assert_cmpfloat(G_PARAM_SPEC_DOUBLE(pspec_of("lilydiffuse", "cutoff"))->default_value, ==,
                      p.cutoff_hz);
    g_assert_cmpuint(G_PARAM_SPEC_UINT64(pspec_of("lilyvocoder", "vocoder-duration"))->default_value,
                     ==, (guint64)llround(p.vocoder_seconds * GST_SECOND));
    g_assert_cmpstr(G_PARAM_SPEC_STRING(pspec_of("lilydiffuse", "device"))->default_value, ==, "cpu");
    g_assert_cmpint(G_PARAM_SPEC_ENUM(pspec_of("lilydiffuse", "precision"))->default_value, ==,
                    LILY_PRECISION_F32);
}

/* Settings that rebuild the engine are MUTABLE_READY; steps and guidance-scale may change
 * while playing; every pspec has static strings and a blurb. */
static void test_property_flags(void)
{
    const char *ready[] = {"model", "config", "device", "precision", "seed", "chunk-duration",
                           "overlap-duration", "cutoff"};
    for (guint i = 0; i < G_N_ELEMENTS(ready); i++) {
        GParamSpec *p = pspec_of("lilydiffuse", ready[i]);
        g_assert_true(p->flags & GST_PARAM_MUTABLE_READY);
        g_assert_true(p->flags & G_PARAM_STATIC_STRINGS);
        g_assert_true(strlen(g_param_spec_get_blurb(p)) > 20);
    }
    g_assert_true(pspec_of("lilydiffuse", "steps")->flags & GST_PARAM_MUTABLE_PLAYING);
    g_assert_true(pspec_of("lilydiffuse", "guidance-scale")->flags & GST_PARAM_MUTABLE_PLAYING);
    g_assert_true(pspec_of("lilyvocoder", "vocoder-duration")->flags & GST_PARAM_MUTABLE_READY);
    g_assert_true(pspec_of("lilyvocoder", "model")->flags & GST_PARAM_MUTABLE_READY);
    /* precision is a GEnum whose nicks are the engine's names */
    GEnumClass *ec = g_type_class_ref(G_PARAM_SPEC_VALUE_TYPE(pspec_of("lilydiffuse", "precision")));
    g_assert_cmpstr(g_enum_get_value(ec, LILY_PRECISION_BF16)->value_nick, ==, "bf16");
    g_assert_cmpstr(g_enum_get_value(ec, LILY_PRECISION_F16)->value_nick, ==, "f16");
    g_type_class_unref(ec);
}

/* device takes "cpu", "cuda" and "cuda:N"; anything else is refused when set, with a warning,
 * and the previous value stays. */
static void test_device_refused(void)
{
    GstElement *e = gst_element_factory_make("lilydiffuse", NULL);
    gchar *dev = NULL;
    g_object_set(e, "device", "cuda:3", NULL);
    g_object_get(e, "device", &dev, NULL);
    g_assert_cmpstr(dev, ==, "cuda:3");
    g_free(dev);
    const char *bad[] = {"gpu", "cuda:", "cuda:x", "cpu:1", ""};
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, "*is not one of*");
        g_object_set(e, "device", bad[i], NULL);
        g_test_assert_expected_messages();
        g_object_get(e, "device", &dev, NULL);
        g_assert_cmpstr(dev, ==, "cuda:3");
        g_free(dev);
    }
    g_object_set(e, "device", "cpu", NULL);
    g_object_get(e, "device", &dev, NULL);
    g_assert_cmpstr(dev, ==, "cpu");
    g_free(dev);
    gst_object_unref(e);
}

/* A change of chunk-duration (or vocoder-duration) posts a LATENCY message on the bus, a
 * setting that does not move the latency posts none. */
static void test_latency_message_on_change(void)
{
    GstElement *pipe = gst_pipeline_new(NULL);
    GstElement *d = gst_element_factory_make("lilydiffuse", NULL);
    GstElement *v = gst_element_factory_make("lilyvocoder", NULL);
    gst_bin_add_many(GST_BIN(pipe), d, v, NULL);
    GstBus *bus = gst_element_get_bus(pipe);
    g_object_set(d, "chunk-duration", (guint64)(1280 * GST_MSECOND), NULL);
    GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_LATENCY);
    g_assert_nonnull(m);
    g_assert_true(GST_MESSAGE_SRC(m) == GST_OBJECT(d));
    gst_message_unref(m);
    g_object_set(d, "chunk-duration", (guint64)(1280 * GST_MSECOND), NULL); /* same value */
    g_object_set(d, "steps", 7, "seed", (guint64)1, NULL);
    g_assert_null(gst_bus_pop_filtered(bus, GST_MESSAGE_LATENCY));
    g_object_set(v, "vocoder-duration", (guint64)(2560 * GST_MSECOND), NULL);
    m = gst_bus_pop_filtered(bus, GST_MESSAGE_LATENCY);
    g_assert_nonnull(m);
    g_assert_true(GST_MESSAGE_SRC(m) == GST_OBJECT(v));
    gst_message_unref(m);
    gst_object_unref(bus);
    gst_object_unref(pipe);
}

/* ---- model errors -------------------------------------------------------------------------- */

static void expect_resource_error(const char *factory, const char *model, const char *config,
                                  GstResourceError code, const char *in_message)
{
    GstElement *e = gst_element_factory_make(factory, NULL);
    if (model) g_object_set(e, "model", model, NULL);
    if (config) g_object_set(e, "config", config, NULL);
    GError *err = NULL;
    gchar *dbg = NULL;
    GstStateChangeReturn ret = start_element(e, &err, &dbg);
    g_test_message("%s model=%s: state change %s, error: %s | %s", factory, model ? model : "(unset)",
                   gst_element_state_change_return_get_name(ret), err ? err->message : "none",
                   dbg ? dbg : "");
    g_assert_cmpint(ret, ==, GST_STATE_CHANGE_FAILURE);
    g_assert_nonnull(err);
    g_assert_true(err->domain == GST_RESOURCE_ERROR);
    g_assert_cmpint(err->code, ==, code);
    g_assert_nonnull(strstr(err->message, in_message));
    g_assert_nonnull(dbg);
    g_assert_cmpuint(strlen(dbg), >, 0);
    g_error_free(err);
    g_free(dbg);
    gst_object_unref(e);
}

/* A model path that does not exist fails READY->PAUSED with RESOURCE/NOT_FOUND naming it. */
static void test_missing_model(void)
{
    gchar *path = g_build_filename(lt_tmpdir(), "no-such-model.safetensors", NULL);
    expect_resource_error("lilydiffuse", path, NULL, GST_RESOURCE_ERROR_NOT_FOUND, path);
    expect_resource_error("lilyvocoder", path, NULL, GST_RESOURCE_ERROR_NOT_FOUND, path);
    g_free(path);
}

/* No model set at all is a RESOURCE/NOT_FOUND error that says to set the property. */
static void test_no_model(void)
{
    expect_resource_error("lilydiffuse", NULL, NULL, GST_RESOURCE_ERROR_NOT_FOUND, "model property");
}

/* A file that is not a model, and the real model cut short, fail READY->PAUSED with a
 * RESOURCE/READ error whose message names the file and carries the engine's reason. */
static void test_corrupt_model(void)
{
    gchar *junk = g_build_filename(lt_tmpdir(), "junk.safetensors", NULL);
    g_assert_true(g_file_set_contents(junk, "this is not a model file, it is a sentence", -1, NULL));
    expect_resource_error("lilydiffuse", junk, NULL, GST_RESOURCE_ERROR_READ, junk);

    gchar *data = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(lgt_model(), &data, &len, NULL));
    gchar *cut = g_build_filename(lt_tmpdir(),
                                  g_str_has_suffix(lgt_model(), ".bin") ? "cut.bin" : "cut.safetensors",
                                  NULL);
    g_assert_true(g_file_set_contents(cut, data, (gssize)(len / 3), NULL));
    expect_resource_error("lilydiffuse", cut, lgt_config()[0] ? lgt_config() : NULL,
                          GST_RESOURCE_ERROR_READ, cut);
    expect_resource_error("lilyvocoder", cut, lgt_config()[0] ? lgt_config() : NULL,
                          GST_RESOURCE_ERROR_READ, cut);
    g_free(data);
    g_free(junk);
    g_free(cut);
}

/* ---- with the model ---------------------------------------------------------------------- */

/* Two lilydiffuse and a lilyvocoder naming the same model share one weights allocation: one
 * load (one "lily-model" message with loaded=TRUE), the same weights id for all three. */
static void test_shared_weights(void)
{
    GstElement *pipe = gst_pipeline_new(NULL);
    GstElement *e[3] = {gst_element_factory_make("lilydiffuse", "a"),
                        gst_element_factory_make("lilydiffuse", "b"),
                        gst_element_factory_make("lilyvocoder", "c")};
    for (guint i = 0; i < 3; i++) {
        lgt_configure(e[i]);
        gst_bin_add(GST_BIN(pipe), e[i]);
    }
    g_assert_cmpint(gst_element_set_state(pipe, GST_STATE_PAUSED), ==, GST_STATE_CHANGE_SUCCESS);
    GstBus *bus = gst_element_get_bus(pipe);
    GstMessage *m;
    guint loads = 0, shares = 0;
    guint64 ids[3] = {0, 0, 0};
    while ((m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT))) {
        const GstStructure *s = gst_message_get_structure(m);
        if (gst_structure_has_name(s, "lily-model")) {
            gboolean loaded;
            guint64 id, bytes;
            g_assert_true(gst_structure_get(s, "loaded", G_TYPE_BOOLEAN, &loaded, "weights-id",
                                            G_TYPE_UINT64, &id, "weight-bytes", G_TYPE_UINT64,
                                            &bytes, NULL));
            for (guint i = 0; i < 3; i++)
                if (GST_MESSAGE_SRC(m) == GST_OBJECT(e[i])) ids[i] = id;
            g_test_message("%s: loaded %d, weights id %#" G_GINT64_MODIFIER "x, %" G_GUINT64_FORMAT
                           " bytes", GST_MESSAGE_SRC_NAME(m), loaded, id, bytes);
            g_assert_cmpuint(bytes, >, 0);
            if (loaded) loads++;
            else shares++;
        }
        gst_message_unref(m);
    }
    g_assert_cmpuint(loads, ==, 1);
    g_assert_cmpuint(shares, ==, 2);
    g_assert_cmpuint(ids[0], !=, 0);
    g_assert_cmpuint(ids[0], ==, ids[1]);
    g_assert_cmpuint(ids[0], ==, ids[2]);
    gst_element_set_state(pipe, GST_STATE_NULL);
    /* after the last element let go, a new start loads again (the cache holds no reference) */
    g_assert_cmpint(gst_element_set_state(pipe, GST_STATE_PAUSED), ==, GST_STATE_CHANGE_SUCCESS);
    loads = 0;
    while ((m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT))) {
        gboolean loaded = FALSE;
        if (gst_structure_get_boolean(gst_message_get_structure(m), "loaded", &loaded) && loaded)
            loads++;
        gst_message_unref(m);
    }
    g_assert_cmpuint(loads, ==, 1);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(pipe);
}

/* The LATENCY answer is upstream's plus exactly one chunk: chunk-duration rounded to 0.64 s,
 * in samples, converted once (1.28 s -> 61440 samples -> 1280000000 ns; 1.3 s rounds to the
 * same; the default 10.24 s -> 491520 samples), and equals the engine stream's figure. */
static void test_latency_equals_chunk(void)
{
    const struct {
        guint64 chunk_ns;
        gint64 samples;
    } cases[] = {
        {1280 * GST_MSECOND, 61440},
        {1300 * GST_MSECOND, 61440},
        {10240 * GST_MSECOND, 491520},
        {640 * GST_MSECOND, 30720},
    };
    const GstClockTime upstream = 30 * GST_MSECOND;
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        GstElement *d = gst_element_factory_make("lilydiffuse", NULL);
        lgt_configure(d);
        g_object_set(d, "chunk-duration", cases[i].chunk_ns, "overlap-duration",
                     (guint64)(160 * GST_MSECOND), NULL);
        GstHarness *h = gst_harness_new_with_element(d, "sink", "src");
        gst_harness_set_upstream_latency(h, upstream);
        GstClockTime lat = gst_harness_query_latency(h);
        GstClockTime ours = gst_util_uint64_scale_int_round((guint64)cases[i].samples, GST_SECOND, 48000);
        g_test_message("chunk-duration %" GST_TIME_FORMAT ": latency %" GST_TIME_FORMAT " = upstream "
                       "%" GST_TIME_FORMAT " + %" G_GINT64_FORMAT " samples",
                       GST_TIME_ARGS(cases[i].chunk_ns), GST_TIME_ARGS(lat), GST_TIME_ARGS(upstream),
                       cases[i].samples);
        g_assert_cmpuint(lat, ==, upstream + ours);

        /* the engine's own figure for the same settings */
        LilyEnhanceParams p;
        lgt_enhance_params(&p);
        p.chunk_seconds = (double)cases[i].chunk_ns / GST_SECOND;
        p.overlap_seconds = 0.16;
        LilyContextParams cp;
        lily_context_params_init(&cp);
        LilyContext *ctx = NULL;
        g_assert_cmpint(lily_context_new(&cp, &ctx, NULL, 0), ==, LILY_OK);
        LilyModelParams mp;
        lily_model_params_init(&mp);
        mp.config_path = lgt_config()[0] ? lgt_config() : NULL;
        LilyModel *model = NULL;
        g_assert_cmpint(lily_model_load(ctx, lgt_model(), &mp, &model), ==, LILY_OK);
        LilyDiffuser *df = NULL;
        g_assert_cmpint(lily_diffuser_new(ctx, model, &p, &df), ==, LILY_OK);
        g_assert_cmpint(lily_diffuser_latency(df), ==, cases[i].samples);
        lily_diffuser_free(df);
        lily_model_unref(model);
        lily_context_free(ctx);
        gst_harness_teardown(h);
        gst_object_unref(d);
    }
}

/* chunk-duration is MUTABLE_READY: a change while PLAYING is refused with a warning and the
 * value (and the latency) stay. */
static void test_ready_settings_locked(void)
{
    GstElement *d = gst_element_factory_make("lilydiffuse", NULL);
    lgt_configure(d);
    GstHarness *h = gst_harness_new_with_element(d, "sink", "src");
    GstClockTime before = gst_harness_query_latency(h);
    g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, "*only be changed in the NULL or READY*");
    g_object_set(d, "chunk-duration", (guint64)(5120 * GST_MSECOND), NULL);
    g_test_assert_expected_messages();
    guint64 chunk;
    g_object_get(d, "chunk-duration", &chunk, NULL);
    g_assert_cmpuint(chunk, ==, LGT_CHUNK_NS);
    g_assert_cmpuint(gst_harness_query_latency(h), ==, before);
    /* steps may change while playing: no warning */
    g_object_set(d, "steps", 3, NULL);
    gint steps;
    g_object_get(d, "steps", &steps, NULL);
    g_assert_cmpint(steps, ==, 3);
    gst_harness_teardown(h);
    gst_object_unref(d);
}

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
    GstHarness *h = chain_harness("lilymel ! lilydiffuse", 1);
    GstElement *d = child(h, "lilydiffuse");
    const gsize first = 30720 + 784 + 480; /* enough for chunk 0, not chunk 1 (53760) */
    g_assert_cmpint(lgt_push_audio(h, x, first, 1, 0), ==, GST_FLOW_OK);
    guint64 steps_run = 0;
    g_object_get(d, "sampler-steps", &steps_run, NULL);
    g_assert_cmpuint(steps_run, ==, 2);
    g_object_set(d, "steps", 5, NULL);
    g_assert_cmpint(lgt_push_audio(h, x + first, n - first, 1, lgt_sample_time(first)), ==, GST_FLOW_OK);
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
    GstHarness *h = chain_harness("lilymel ! lilydiffuse", 1);
    GstElement *d = child(h, "lilydiffuse");
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
    GstHarness *h = chain_harness("lilymel ! lilydiffuse", 2);
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
                g_assert_cmpfloat(m->samples[c * m->n_samples + i], ==, x[(frames * 480 + i) * 2 + c]);
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

int main(int argc, char **argv)
{
    lgt_private_registry(FALSE);
    gst_init(&argc, &argv);
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/lily/gst/diffuse/defaults-match-engine", test_defaults_match_engine);
    g_test_add_func("/lily/gst/diffuse/property-flags", test_property_flags);
    g_test_add_func("/lily/gst/diffuse/device-refused", test_device_refused);
    g_test_add_func("/lily/gst/diffuse/latency-message-on-change", test_latency_message_on_change);
    g_test_add_func("/lily/gst/diffuse/missing-model", test_missing_model);
    g_test_add_func("/lily/gst/diffuse/no-model", test_no_model);
    g_test_add_func("/lily/gst/diffuse/corrupt-model", test_corrupt_model);
    g_test_add_func("/lily/gst/diffuse/shared-weights", test_shared_weights);
    g_test_add_func("/lily/gst/diffuse/latency-equals-chunk", test_latency_equals_chunk);
    g_test_add_func("/lily/gst/diffuse/ready-settings-locked", test_ready_settings_locked);
    g_test_add_func("/lily/gst/diffuse/steps-and-guidance", test_steps_and_guidance);
    g_test_add_func("/lily/gst/diffuse/flush-cancels-running-chunk", test_flush_cancels_running_chunk);
    g_test_add_func("/lily/gst/diffuse/output-meta-and-timestamps", test_output_meta_and_timestamps);
    int ret = g_test_run();
    gst_deinit();
    return ret;
}
