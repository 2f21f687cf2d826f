/* tests/gst/test-elements.c - lilydiffuse, lilyvocoder and lilyenhance without running audio
 * through the models, so that the sanitizer run (which leaves out the 'slow' suite) covers
 * them: the plugin's elements, property defaults against the engine's (AudioSR's CLI), flags
 * and mutability, device parsing, LATENCY figures and messages, the proxies of the bin, the
 * model cache (one load shared by several elements, released with the last one) and model
 * errors (missing, unset, corrupt, truncated files), caps, and refusal of mel buffers without
 * their source samples.
 *
 * Model: the tiny AudioSR model tiny-a (lily-gst-test.h); it is only loaded here. */
#include <math.h>
#include <string.h>

#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include "common/test-util.h"
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

/* Starts `factory` with model/config and extra "prop=value" settings (space separated, may be
 * NULL); checks READY->PAUSED fails with RESOURCE/`code` whose message contains in_message and
 * whose debug text (the engine's message) is not empty. */
static void expect_resource_error_with(const char *factory, const char *model, const char *config,
                                       const char *props, GstResourceError code,
                                       const char *in_message)
{
    GstElement *e = gst_element_factory_make(factory, NULL);
    if (model) g_object_set(e, "model", model, NULL);
    if (config) g_object_set(e, "config", config, NULL);
    gchar **kv = g_strsplit(props ? props : "", " ", -1);
    for (gchar **p = kv; *p; p++) {
        gchar **pair = g_strsplit(*p, "=", 2);
        if (pair[0] && pair[1]) gst_util_set_object_arg(G_OBJECT(e), pair[0], pair[1]);
        g_strfreev(pair);
    }
    g_strfreev(kv);
    GError *err = NULL;
    gchar *dbg = NULL;
    GstStateChangeReturn ret = start_element(e, &err, &dbg);
    g_test_message("%s model=%s %s: state change %s, error: %s | %s", factory,
                   model ? model : "(unset)", props ? props : "",
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

static void expect_resource_error(const char *factory, const char *model, const char *config,
                                  GstResourceError code, const char *in_message)
{
    expect_resource_error_with(factory, model, config, NULL, code, in_message);
}

/* ---- the plugin --------------------------------------------------------------------------- */

/* The plugin registers lilymel, lilydiffuse, lilyvocoder and lilyenhance. */
static void test_plugin_elements(void)
{
    GstPlugin *p = gst_registry_find_plugin(gst_registry_get(), "lily");
    g_assert_nonnull(p);
    const char *names[] = {"lilymel", "lilydiffuse", "lilyvocoder", "lilyenhance"};
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        GstElementFactory *f = gst_element_factory_find(names[i]);
        g_assert_nonnull(f);
        g_assert_nonnull(gst_element_factory_get_metadata(f, "example-launch"));
        gst_object_unref(f);
    }
    gst_object_unref(p);
}

/* ---- properties ---------------------------------------------------------------------------- */

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
    g_assert_cmpuint(G_PARAM_SPEC_UINT64(pspec_of("lilydiffuse", "seed"))->default_value, ==,
                     p.seed);
    g_assert_cmpuint(G_PARAM_SPEC_UINT64(pspec_of("lilydiffuse", "chunk-duration"))->default_value,
                     ==, (guint64)llround(p.chunk_seconds * GST_SECOND));
    g_assert_cmpuint(
        G_PARAM_SPEC_UINT64(pspec_of("lilydiffuse", "overlap-duration"))->default_value,
                     ==, (guint64)llround(p.overlap_seconds * GST_SECOND));
    g_assert_cmpfloat(G_PARAM_SPEC_DOUBLE(pspec_of("lilydiffuse", "cutoff"))->default_value, ==,
                      p.cutoff_hz);
    g_assert_cmpuint(
        G_PARAM_SPEC_UINT64(pspec_of("lilyvocoder", "vocoder-duration"))->default_value,
                     ==, (guint64)llround(p.vocoder_seconds * GST_SECOND));
    g_assert_cmpstr(G_PARAM_SPEC_STRING(pspec_of("lilydiffuse", "device"))->default_value, ==,
                    "cpu");
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
    GParamSpec *prec = pspec_of("lilydiffuse", "precision");
    GEnumClass *ec = g_type_class_ref(G_PARAM_SPEC_VALUE_TYPE(prec));
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

/* lilyenhance proxies model, config, device, precision and the sampler and chunk settings to
 * its children (model settings to both Lily model elements), with the children's ranges. */
static void test_bin_proxies(void)
{
    GstElement *bin = gst_element_factory_make("lilyenhance", NULL);
    g_assert_nonnull(bin);
    g_object_set(bin, "model", "/x/m.safetensors", "device", "cuda:1", "steps", 7,
                 "guidance-scale", 2.0, "seed", (guint64)9, "chunk-duration",
                 (guint64)(2560 * GST_MSECOND), "overlap-duration", (guint64)(320 * GST_MSECOND),
                 "cutoff", 4000.0, "vocoder-duration", (guint64)(1280 * GST_MSECOND), NULL);
    gst_util_set_object_arg(G_OBJECT(bin), "precision", "bf16");
    GstElement *d = gst_bin_get_by_name(GST_BIN(bin), "diffuse");
    GstElement *v = gst_bin_get_by_name(GST_BIN(bin), "vocoder");
    gchar *dm, *vm, *dd, *vd;
    gint steps, dp, vp;
    gdouble g, cutoff;
    guint64 seed, chunk, overlap, voc;
    g_object_get(d, "model", &dm, "device", &dd, "steps", &steps, "guidance-scale", &g, "seed",
                 &seed, "chunk-duration", &chunk, "overlap-duration", &overlap, "cutoff", &cutoff,
                 "precision", &dp, NULL);
    g_object_get(v, "model", &vm, "device", &vd, "vocoder-duration", &voc, "precision", &vp, NULL);
    g_assert_cmpstr(dm, ==, "/x/m.safetensors");
    g_assert_cmpstr(vm, ==, "/x/m.safetensors");
    g_assert_cmpstr(dd, ==, "cuda:1");
    g_assert_cmpstr(vd, ==, "cuda:1");
    g_assert_cmpint(steps, ==, 7);
    g_assert_cmpfloat(g, ==, 2.0);
    g_assert_cmpuint(seed, ==, 9);
    g_assert_cmpuint(chunk, ==, 2560 * GST_MSECOND);
    g_assert_cmpuint(overlap, ==, 320 * GST_MSECOND);
    g_assert_cmpfloat(cutoff, ==, 4000.0);
    g_assert_cmpuint(voc, ==, 1280 * GST_MSECOND);
    g_assert_cmpint(dp, ==, LILY_PRECISION_BF16);
    g_assert_cmpint(vp, ==, LILY_PRECISION_BF16);
    /* reading through the bin gives the children's values, and its pspecs copy theirs */
    gint bsteps;
    g_object_get(bin, "steps", &bsteps, NULL);
    g_assert_cmpint(bsteps, ==, 7);
    GParamSpec *bp = g_object_class_find_property(G_OBJECT_GET_CLASS(bin), "chunk-duration");
    GParamSpec *dps = g_object_class_find_property(G_OBJECT_GET_CLASS(d), "chunk-duration");
    g_assert_cmpstr(g_param_spec_get_blurb(bp), ==, g_param_spec_get_blurb(dps));
    g_assert_cmpuint(G_PARAM_SPEC_UINT64(bp)->minimum, ==, G_PARAM_SPEC_UINT64(dps)->minimum);
    g_assert_true(bp->flags & GST_PARAM_MUTABLE_READY);
    g_free(dm);
    g_free(vm);
    g_free(dd);
    g_free(vd);
    gst_object_unref(d);
    gst_object_unref(v);
    gst_object_unref(bin);
}

/* ---- model errors and the model cache -------------------------------------------------------- */

/* A model path that does not exist fails READY->PAUSED with RESOURCE/NOT_FOUND naming it. */
static void test_missing_model(void)
{
    gchar *path = g_build_filename(lt_tmpdir(), "no-such-model.safetensors", NULL);
    expect_resource_error("lilydiffuse", path, NULL, GST_RESOURCE_ERROR_NOT_FOUND, path);
    expect_resource_error("lilyvocoder", path, NULL, GST_RESOURCE_ERROR_NOT_FOUND, path);
    g_free(path);
}

/* No model property: $LILY_MODEL is used (a missing one is RESOURCE/NOT_FOUND naming it);
 * without it the bundled demonstration model (this build tree's) starts the element, with a
 * RESOURCE/SETTINGS warning on the bus saying its weights are random and naming the file. */
static void test_no_model(void)
{
    gchar *old = g_strdup(g_getenv("LILY_MODEL"));
    gchar *missing = g_build_filename(lt_tmpdir(), "env-model.safetensors", NULL);
    g_setenv("LILY_MODEL", missing, TRUE);
    expect_resource_error("lilydiffuse", NULL, NULL, GST_RESOURCE_ERROR_NOT_FOUND, missing);

    g_unsetenv("LILY_MODEL");
    GstElement *pipe = gst_pipeline_new(NULL);
    GstElement *e = gst_element_factory_make("lilyvocoder", NULL);
    gst_bin_add(GST_BIN(pipe), e);
    GstStateChangeReturn ret = gst_element_set_state(pipe, GST_STATE_PAUSED);
    GstBus *bus = gst_element_get_bus(pipe);
    GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING);
    g_assert_cmpint(ret, !=, GST_STATE_CHANGE_FAILURE);
    g_assert_nonnull(m);
    GError *err = NULL;
    gchar *dbg = NULL;
    gst_message_parse_warning(m, &err, &dbg);
    g_test_message("no model, no LILY_MODEL: %s | %s", err->message, dbg);
    g_assert_true(err->domain == GST_RESOURCE_ERROR);
    g_assert_cmpint(err->code, ==, GST_RESOURCE_ERROR_SETTINGS);
    g_assert_nonnull(strstr(err->message, "random"));
    g_assert_nonnull(strstr(dbg, "lily-tiny.safetensors"));
    g_error_free(err);
    g_free(dbg);
    gst_message_unref(m);
    gst_object_unref(bus);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(pipe);

    if (old) g_setenv("LILY_MODEL", old, TRUE);
    g_free(old);
    g_free(missing);
}

/* A file that is not a model, and the real model cut short, fail READY->PAUSED with a
 * RESOURCE/READ error whose message names the file and carries the engine's reason. */
static void test_corrupt_model(void)
{
    gchar *junk = g_build_filename(lt_tmpdir(), "junk.safetensors", NULL);
    g_assert_true(
        g_file_set_contents(junk, "this is not a model file, it is a sentence", -1, NULL));
    expect_resource_error("lilydiffuse", junk, NULL, GST_RESOURCE_ERROR_READ, junk);

    gchar *data = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(lgt_model(), &data, &len, NULL));
    gchar *cut = g_build_filename(lt_tmpdir(),
                                  g_str_has_suffix(lgt_model(), ".bin") ? "cut.bin"
                                                                         : "cut.safetensors",
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

/* Two lilydiffuse and a lilyvocoder naming the same model share one weights allocation: one
 * load (one "lily-model" message with loaded=TRUE), the same weights id for all three; a
 * restart through READY reloads nothing; after NULL the next start loads once again. */
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

    /* a restart through READY keeps the weights: no load, the same storage */
    g_assert_cmpint(gst_element_set_state(pipe, GST_STATE_READY), ==, GST_STATE_CHANGE_SUCCESS);
    g_assert_cmpint(gst_element_set_state(pipe, GST_STATE_PAUSED), ==, GST_STATE_CHANGE_SUCCESS);
    loads = 0;
    guint seen = 0;
    while ((m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT))) {
        gboolean loaded = TRUE;
        guint64 id = 0;
        if (gst_structure_get(gst_message_get_structure(m), "loaded", G_TYPE_BOOLEAN, &loaded,
                              "weights-id", G_TYPE_UINT64, &id, NULL)) {
            seen++;
            if (loaded) loads++;
            g_assert_cmpuint(id, ==, ids[0]);
        }
        gst_message_unref(m);
    }
    g_test_message("restart through READY: %u of %u elements loaded the file", loads, seen);
    g_assert_cmpuint(seen, ==, 3);
    g_assert_cmpuint(loads, ==, 0);

    /* in NULL the last element let go: a new start loads again (the cache keeps nothing) */
    gst_element_set_state(pipe, GST_STATE_NULL);
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


/* Settings the engine refuses (an overlap above half the chunk) fail READY->PAUSED with
 * RESOURCE/SETTINGS carrying the engine's reason; f16 on the CPU fails the model load with
 * RESOURCE/READ saying f16 is for CUDA. */
static void test_bad_settings_refused(void)
{
    const char *cfg = lgt_config()[0] ? lgt_config() : NULL;
    expect_resource_error_with("lilydiffuse", lgt_model(), cfg,
                               "chunk-duration=640000000 overlap-duration=640000000",
                               GST_RESOURCE_ERROR_SETTINGS, "overlap");
    expect_resource_error_with("lilydiffuse", lgt_model(), cfg, "precision=f16",
                               GST_RESOURCE_ERROR_READ, "CUDA");
}

/* device=cuda starts where a CUDA device answers (lily_device_probe) and otherwise fails
 * READY->PAUSED with a RESOURCE error that names the device; either way the verdict matches
 * the probe. */
static void test_cuda_device_matches_probe(void)
{
    char why[256] = "";
    gboolean have = lily_device_probe(LILY_DEVICE_CUDA, 0, why, sizeof why) == LILY_OK;
    g_test_message("CUDA device 0: %s", have ? "present" : why);
    if (!have) {
        const char *cfg = lgt_config()[0] ? lgt_config() : NULL;
        expect_resource_error_with("lilyvocoder", lgt_model(), cfg,
                                   "device=cuda", GST_RESOURCE_ERROR_FAILED, "cuda");
        return;
    }
    GstElement *e = gst_element_factory_make("lilyvocoder", NULL);
    lgt_configure(e);
    g_object_set(e, "device", "cuda", NULL);
    GError *err = NULL;
    gchar *dbg = NULL;
    g_assert_cmpint(start_element(e, &err, &dbg), ==, GST_STATE_CHANGE_SUCCESS);
    g_assert_null(err);
    gst_object_unref(e);
}

/* A model setting changed in READY takes effect at the next start: an element sharing f32
 * weights with another one, switched to bf16, loads its own copy (another weights id, while
 * the f32 copy is still held by the other element). */
static void test_model_change_in_ready(void)
{
    GstElement *keep_pipe = gst_pipeline_new(NULL), *pipe = gst_pipeline_new(NULL);
    GstElement *keep = gst_element_factory_make("lilyvocoder", NULL);
    GstElement *d = gst_element_factory_make("lilydiffuse", NULL);
    lgt_configure(keep);
    lgt_configure(d);
    gst_bin_add(GST_BIN(keep_pipe), keep);
    gst_bin_add(GST_BIN(pipe), d);
    g_assert_cmpint(gst_element_set_state(keep_pipe, GST_STATE_PAUSED), ==,
                    GST_STATE_CHANGE_SUCCESS);
    GstBus *bus = gst_element_get_bus(pipe);
    guint64 id[2] = {0, 0};
    gboolean loaded[2] = {TRUE, FALSE};
    for (guint run = 0; run < 2; run++) {
        if (run == 1) {
            g_assert_cmpint(gst_element_set_state(pipe, GST_STATE_READY), ==,
                            GST_STATE_CHANGE_SUCCESS);
            gst_util_set_object_arg(G_OBJECT(d), "precision", "bf16");
        }
        g_assert_cmpint(gst_element_set_state(pipe, GST_STATE_PAUSED), ==,
                        GST_STATE_CHANGE_SUCCESS);
        GstMessage *m;
        while ((m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT))) {
            const GstStructure *st = gst_message_get_structure(m);
            if (gst_structure_has_name(st, "lily-model")) {
                g_assert_true(gst_structure_get(st, "loaded", G_TYPE_BOOLEAN, &loaded[run],
                                                "weights-id", G_TYPE_UINT64, &id[run], NULL));
                g_assert_cmpstr(gst_structure_get_string(st, "precision"), ==,
                                run ? "bf16" : "f32");
            }
            gst_message_unref(m);
        }
    }
    g_test_message("f32 weights id %#" G_GINT64_MODIFIER "x (loaded %d), after the switch to "
                   "bf16 %#" G_GINT64_MODIFIER "x (loaded %d)", id[0], loaded[0], id[1],
                   loaded[1]);
    g_assert_false(loaded[0]); /* shared with `keep` */
    g_assert_true(loaded[1]);
    g_assert_cmpuint(id[0], !=, 0);
    g_assert_cmpuint(id[1], !=, 0);
    g_assert_cmpuint(id[0], !=, id[1]);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_element_set_state(keep_pipe, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(pipe);
    gst_object_unref(keep_pipe);
}

/* ---- latency, caps, data checks -------------------------------------------------------------- */

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
        GstClockTime ours =
            gst_util_uint64_scale_int_round((guint64)cases[i].samples, GST_SECOND, 48000);
        g_test_message("chunk-duration %" GST_TIME_FORMAT ": latency %" GST_TIME_FORMAT
                       " = upstream "
                       "%" GST_TIME_FORMAT " + %" G_GINT64_FORMAT " samples",
                       GST_TIME_ARGS(cases[i].chunk_ns), GST_TIME_ARGS(lat),
                       GST_TIME_ARGS(upstream),
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

/* LATENCY: upstream + (2 V + 32) x 480 samples with V = vocoder-duration in frames rounded to
 * 8 (0.64 s -> V 64 -> 76800 samples -> 1.6 s; 5.12 s -> 1056 frames -> 10.56 s). */
static void test_vocoder_latency(void)
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
                            gst_util_uint64_scale_int_round((guint64)cases[i].samples, GST_SECOND,
                                                            48000);
        g_test_message("vocoder-duration %" GST_TIME_FORMAT ": latency %" GST_TIME_FORMAT
                       " (expected %" GST_TIME_FORMAT ")", GST_TIME_ARGS(cases[i].ns),
                       GST_TIME_ARGS(lat), GST_TIME_ARGS(want));
        g_assert_cmpuint(lat, ==, want);
        gst_harness_teardown(h);
        gst_object_unref(v);
    }
}

/* The chain's latency at 48 kHz is exactly lilymel's + lilydiffuse's + lilyvocoder's. */
static void test_chain_latency(void)
{
    GstHarness *h = lgt_chain_harness("lilymel ! lilydiffuse ! lilyvocoder", 1);
    gst_harness_set_upstream_latency(h, 0);
    GstClockTime lat = gst_harness_query_latency(h);
    GstClockTime want = gst_util_uint64_scale_int_round(784, GST_SECOND, 48000) +
                        gst_util_uint64_scale_int_round(64 * 480, GST_SECOND, 48000) +
                        gst_util_uint64_scale_int_round((2 * 64 + 32) * 480, GST_SECOND, 48000);
    g_test_message("chain latency %" GST_TIME_FORMAT ", expected %" GST_TIME_FORMAT,
                   GST_TIME_ARGS(lat), GST_TIME_ARGS(want));
    g_assert_cmpuint(lat, ==, want);
    gst_harness_teardown(h);
}

/* The src pad template and the caps query: F32LE 48 kHz interleaved, and a caps query on the
 * sink pad carries the channel count downstream allows. */
static void test_vocoder_caps(void)
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
    lgt_private_registry(TRUE); /* lilyenhance holds audioconvert and audioresample */
    gst_init(&argc, &argv);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/gst/elements/plugin-elements", test_plugin_elements);
    g_test_add_func("/lily/gst/elements/defaults-match-engine", test_defaults_match_engine);
    g_test_add_func("/lily/gst/elements/property-flags", test_property_flags);
    g_test_add_func("/lily/gst/elements/device-refused", test_device_refused);
    g_test_add_func("/lily/gst/elements/latency-message-on-change", test_latency_message_on_change);
    g_test_add_func("/lily/gst/elements/bin-proxies", test_bin_proxies);
    g_test_add_func("/lily/gst/elements/missing-model", test_missing_model);
    g_test_add_func("/lily/gst/elements/no-model", test_no_model);
    g_test_add_func("/lily/gst/elements/corrupt-model", test_corrupt_model);
    g_test_add_func("/lily/gst/elements/bad-settings-refused", test_bad_settings_refused);
    g_test_add_func("/lily/gst/elements/cuda-device-matches-probe", test_cuda_device_matches_probe);
    g_test_add_func("/lily/gst/elements/shared-weights", test_shared_weights);
    g_test_add_func("/lily/gst/elements/model-change-in-ready", test_model_change_in_ready);
    g_test_add_func("/lily/gst/elements/diffuse-latency-equals-chunk", test_latency_equals_chunk);
    g_test_add_func("/lily/gst/elements/vocoder-latency", test_vocoder_latency);
    g_test_add_func("/lily/gst/elements/chain-latency", test_chain_latency);
    g_test_add_func("/lily/gst/elements/ready-settings-locked", test_ready_settings_locked);
    g_test_add_func("/lily/gst/elements/vocoder-caps", test_vocoder_caps);
    g_test_add_func("/lily/gst/elements/missing-meta-refused", test_missing_meta_refused);
    int ret = g_test_run();
    gst_deinit();
    return ret;
}
