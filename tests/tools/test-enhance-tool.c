/* tests/tools/test-enhance-tool.c - `lily-enhance` as a user runs it.
 *
 * Encoded files are made at test time with GStreamer encoders (an MP3 at 22.05 kHz mono and a
 * stereo FLAC at 44.1 kHz), enhanced by the built tool with the tiny model, and the results
 * read back: 48 kHz, the input's channel count, exactly as many samples as the input decodes
 * and resamples to (the tool promises the resampled input's length), finite audio. Bad input
 * gets a clear message and exit status. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include "common/test-util.h"

static const char *tool(void)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/tools/lily-enhance", g_getenv("LILY_BUILD_ROOT"));
    return path;
}

static char *model_path(void)
{
    return g_build_filename(g_getenv("LILY_BUILD_ROOT"), "tools", "lily-tiny.safetensors", NULL);
}

static void run_pipeline(const char *desc)
{
    GError *err = NULL;
    GstElement *p = gst_parse_launch(desc, &err);
    g_assert_no_error(err);
    gst_element_set_state(p, GST_STATE_PLAYING);
    GstBus *bus = gst_element_get_bus(p);
    GstMessage *m = gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    g_assert_nonnull(m);
    g_assert_cmpint(GST_MESSAGE_TYPE(m), ==, GST_MESSAGE_EOS);
    gst_message_unref(m);
    gst_object_unref(bus);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
}

/* Decodes `path` and returns frames, rate and channels as decoded (resample_to_48k: through
 * audioresample to 48 kHz first, as the tool does). Also checks every sample is finite. */
static size_t decode(const char *path, bool resample_to_48k, int *rate, int *channels)
{
    gchar *desc = g_strdup_printf("filesrc location=\"%s\" ! decodebin ! audioconvert ! %s "
                                  "audio/x-raw,format=F32LE,layout=interleaved%s ! appsink name=s sync=false",
                                  path, resample_to_48k ? "audioresample !" : "",
                                  resample_to_48k ? ",rate=48000" : "");
    GError *err = NULL;
    GstElement *p = gst_parse_launch(desc, &err);
    g_assert_no_error(err);
    g_free(desc);
    GstAppSink *sink = GST_APP_SINK(gst_bin_get_by_name(GST_BIN(p), "s"));
    gst_element_set_state(p, GST_STATE_PLAYING);
    size_t frames = 0;
    *rate = *channels = 0;
    GstSample *s;
    while ((s = gst_app_sink_pull_sample(sink))) {
        GstStructure *st = gst_caps_get_structure(gst_sample_get_caps(s), 0);
        gst_structure_get_int(st, "rate", rate);
        gst_structure_get_int(st, "channels", channels);
        GstMapInfo map;
        GstBuffer *b = gst_sample_get_buffer(s);
        g_assert_true(gst_buffer_map(b, &map, GST_MAP_READ));
        const float *f = (const float *)map.data;
        for (size_t i = 0; i < map.size / 4; i++) g_assert_true(isfinite(f[i]));
        frames += map.size / 4 / (size_t)*channels;
        gst_buffer_unmap(b, &map);
        gst_sample_unref(s);
    }
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(p);
    return frames;
}

static int run_tool(const char *const *args, char **err_out)
{
    GError *err = NULL;
    int status = 0;
    gchar *out = NULL, *errs = NULL;
    g_assert_true(g_spawn_sync(NULL, (gchar **)args, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &errs,
                               &status, &err));
    g_assert_no_error(err);
    if (err_out) *err_out = errs;
    else g_free(errs);
    g_free(out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void enhance_file(const char *make, const char *in_name, const char *out_name, int want_ch)
{
    char *in = g_build_filename(lt_tmpdir(), in_name, NULL);
    char *out = g_build_filename(lt_tmpdir(), out_name, NULL);
    gchar *desc = g_strdup_printf(make, in);
    run_pipeline(desc);
    g_free(desc);
    char *model = model_path();
    const char *args[] = {tool(), "--model", model, "--steps", "2", "--quiet", in, out, NULL};
    char *errs = NULL;
    int rc = run_tool(args, &errs);
    if (rc) g_printerr("%s\n", errs);
    g_assert_cmpint(rc, ==, 0);
    g_free(errs);
    int rate, ch, rin, chin;
    size_t want = decode(in, true, &rin, &chin);
    size_t got = decode(out, false, &rate, &ch);
    g_test_message("%s: %zu frames at 48 kHz expected, %s: %zu frames at %d Hz, %d channel(s)",
                   in_name, want, out_name, got, rate, ch);
    g_assert_cmpint(rate, ==, 48000);
    g_assert_cmpint(ch, ==, want_ch);
    g_assert_cmpint(chin, ==, want_ch);
    g_assert_cmpuint(got, ==, want);
    g_free(model);
    g_free(in);
    g_free(out);
}

/* An MP3 at 22.05 kHz mono becomes a 48 kHz mono WAV of the input's length. */
static void test_mp3_to_wav(void)
{
    enhance_file("audiotestsrc wave=saw freq=330 num-buffers=60 samplesperbuffer=1024 ! "
                 "audio/x-raw,rate=22050,channels=1 ! audioconvert ! lamemp3enc ! filesink location=\"%s\"",
                 "in.mp3", "out-mp3.wav", 1);
}

/* A stereo FLAC at 44.1 kHz becomes a 48 kHz stereo FLAC of the input's length. */
static void test_stereo_flac(void)
{
    enhance_file("audiotestsrc wave=sine freq=500 num-buffers=80 samplesperbuffer=1024 ! "
                 "audio/x-raw,format=S16LE,rate=44100,channels=2 ! flacenc ! filesink location=\"%s\"",
                 "in.flac", "out.flac", 2);
}

/* A file that is not audio, a missing file, an unknown output extension and a missing model
 * each end with a message naming the problem and a nonzero status. */
static void test_bad_input(void)
{
    char *junk = g_build_filename(lt_tmpdir(), "junk.mp3", NULL);
    g_assert_true(g_file_set_contents(junk, "this is not audio at all", -1, NULL));
    char *model = model_path();
    char *out = g_build_filename(lt_tmpdir(), "x.wav", NULL);
    char *errs = NULL;
    const char *a1[] = {tool(), "--model", model, "--quiet", junk, out, NULL};
    g_assert_cmpint(run_tool(a1, &errs), !=, 0);
    g_test_message("junk input: %s", errs);
    g_assert_nonnull(strstr(errs, "junk.mp3"));
    g_free(errs);
    const char *a2[] = {tool(), "--model", model, "/nonexistent/in.wav", out, NULL};
    g_assert_cmpint(run_tool(a2, &errs), !=, 0);
    g_assert_nonnull(strstr(errs, "/nonexistent/in.wav"));
    g_free(errs);
    const char *a3[] = {tool(), "--model", "/nonexistent/model.safetensors", junk, out, NULL};
    g_assert_cmpint(run_tool(a3, &errs), !=, 0);
    g_assert_nonnull(strstr(errs, "model.safetensors"));
    g_free(errs);
    const char *a4[] = {tool(), "--model", model, "--steps", "0", junk, out, NULL};
    g_assert_cmpint(run_tool(a4, &errs), ==, 2);
    g_assert_nonnull(strstr(errs, "--steps"));
    g_free(errs);
    /* no --model and no LILY_MODEL: the bundled demonstration model, said so on stderr */
    gchar *old = g_strdup(g_getenv("LILY_MODEL"));
    g_unsetenv("LILY_MODEL");
    const char *a5[] = {tool(), "--quiet", junk, out, NULL};
    g_assert_cmpint(run_tool(a5, &errs), !=, 0);
    g_test_message("no model: %s", errs);
    g_assert_nonnull(strstr(errs, "demonstration model"));
    g_assert_nonnull(strstr(errs, "junk.mp3"));
    g_free(errs);
    if (old) g_setenv("LILY_MODEL", old, TRUE);
    g_free(old);
    g_assert_false(g_file_test(out, G_FILE_TEST_EXISTS)); /* nothing half-written is left */
    g_free(junk);
    g_free(model);
    g_free(out);
}

int main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/tools/enhance/mp3-to-wav", test_mp3_to_wav);
    g_test_add_func("/lily/tools/enhance/stereo-flac", test_stereo_flac);
    g_test_add_func("/lily/tools/enhance/bad-input", test_bad_input);
    return g_test_run();
}
