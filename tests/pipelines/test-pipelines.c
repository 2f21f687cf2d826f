/* tests/pipelines/test-pipelines.c - real pipelines through gst_parse_launch: MP3 (lamemp3enc),
 * FLAC (flacenc) and Ogg/Vorbis (vorbisenc ! oggmux) files made at test time, then
 * `filesrc ! decodebin ! lilyenhance ! ...`, must give 48 kHz audio equal, channel by channel,
 * to the engine's LilyEnhancer run on the same decoded and resampled samples (`filesrc !
 * decodebin ! audioconvert ! audioresample` to F32 48 kHz, the elements lilyenhance holds);
 * the WAV written by `... ! lilyenhance ! wavenc ! filesink` holds the same samples; the recipe
 * pipelines/enhance-file.sh writes them too; `lily-enhance` (when built) agrees on a 48 kHz
 * input; and a live `audiotestsrc is-live=true` through the tiny model into a clock-synced
 * sink runs to EOS.
 *
 * Tolerance: 1e-6 absolute against LilyEnhancer (the same engine code on the same samples;
 * the differing-sample count printed shows they are in practice identical). */
#include <math.h>
#include <string.h>

#include <gst/app/gstappsink.h>
#include <gst/audio/audio.h>
#include <gst/gst.h>

#include "common/test-util.h"
#include "lily-gst-test.h"

#define TOL 1e-6

/* The lilyenhance properties every pipeline here uses (the fast test settings). */
static gchar *enhance_props(void)
{
    GString *s = g_string_new(NULL);
    g_string_append_printf(s, "model=\"%s\" steps=%d chunk-duration=%" G_GUINT64_FORMAT
                           " overlap-duration=%" G_GUINT64_FORMAT " vocoder-duration=%"
                           G_GUINT64_FORMAT, lgt_model(), LGT_STEPS, (guint64)LGT_CHUNK_NS,
                           (guint64)LGT_OVERLAP_NS, (guint64)LGT_VOCODER_NS);
    if (lgt_config()[0]) g_string_append_printf(s, " config=\"%s\"", lgt_config());
    return g_string_free(s, FALSE);
}

static void run_launch(const gchar *launch, guint timeout_s)
{
    GError *err = NULL;
    GstElement *p = gst_parse_launch(launch, &err);
    g_assert_no_error(err);
    gchar *fail = lgt_run_pipeline(p, timeout_s);
    if (fail) g_test_message("pipeline `%s` failed: %s", launch, fail);
    g_assert_null(fail);
    gst_object_unref(p);
}

/* Interleaved float samples an appsink named "out" received until EOS. */
typedef struct Pcm {
    guint channels;
    gint rate;
    GArray *x;
} Pcm;

static void pcm_clear(Pcm *p) { g_array_unref(p->x); }

static Pcm run_to_appsink(const gchar *launch, guint timeout_s)
{
    GError *err = NULL;
    GstElement *p = gst_parse_launch(launch, &err);
    g_assert_no_error(err);
    GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "out");
    g_assert_nonnull(sink);
    g_object_set(sink, "sync", FALSE, NULL);
    Pcm pcm = {0, 0, g_array_new(FALSE, FALSE, sizeof(float))};
    GstBus *bus = gst_element_get_bus(p);
    g_assert_cmpint(gst_element_set_state(p, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
    /* pull until EOS; an ERROR on the bus or the deadline ends the wait with a failure */
    while (!gst_app_sink_is_eos(GST_APP_SINK(sink))) {
        GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
        if (m) {
            GError *e = NULL;
            gchar *dbg = NULL;
            gst_message_parse_error(m, &e, &dbg);
            g_test_message("pipeline `%s`: error from %s: %s (%s)", launch,
                           GST_MESSAGE_SRC_NAME(m), e->message, dbg ? dbg : "");
            g_assert_not_reached();
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), GST_SECOND);
        if (!s) continue;
        GstAudioInfo info;
        g_assert_true(gst_audio_info_from_caps(&info, gst_sample_get_caps(s)));
        g_assert_cmpint(GST_AUDIO_INFO_FORMAT(&info), ==, GST_AUDIO_FORMAT_F32LE);
        pcm.channels = (guint)GST_AUDIO_INFO_CHANNELS(&info);
        pcm.rate = GST_AUDIO_INFO_RATE(&info);
        GstMapInfo map;
        GstBuffer *b = gst_sample_get_buffer(s);
        g_assert_true(gst_buffer_map(b, &map, GST_MAP_READ));
        g_array_append_vals(pcm.x, map.data, map.size / sizeof(float));
        gst_buffer_unmap(b, &map);
        gst_sample_unref(s);
    }
    gst_object_unref(bus);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(p);
    return pcm;
}

static gsize pcm_frames(const Pcm *p) { return p->channels ? p->x->len / p->channels : 0; }

/* Checks an enhanced PCM against LilyEnhancer on each channel of the decoded input. */
static void assert_equals_reference(const char *what, const Pcm *out, const Pcm *in)
{
    g_assert_cmpint(out->rate, ==, 48000);
    g_assert_cmpuint(out->channels, ==, in->channels);
    gsize n = pcm_frames(in);
    g_test_message("%s: %" G_GSIZE_FORMAT " samples x %u channels in (48 kHz after resampling), "
                   "%" G_GSIZE_FORMAT " out", what, n, in->channels, pcm_frames(out));
    g_assert_cmpuint(pcm_frames(out), ==, n);
    LilyEnhanceParams p;
    lgt_enhance_params(&p);
    for (guint c = 0; c < in->channels; c++) {
        float *xc = lgt_channel((float *)in->x->data, n, in->channels, c);
        float *yc = lgt_channel((float *)out->x->data, n, in->channels, c);
        float *ref = lgt_reference(xc, n, &p);
        gchar *label = g_strdup_printf("%s, channel %u vs LilyEnhancer", what, c);
        lgt_assert_equal(label, yc, ref, n, TOL);
        g_free(label);
        g_free(xc);
        g_free(yc);
        g_free(ref);
    }
}

/* Makes `name` in the temporary folder: `seconds` of a band-limited test tone at `rate` Hz and
 * `channels` channels, encoded by `encoder` (a launch fragment). */
static gchar *make_file(const char *name, const char *encoder, gint rate, guint channels,
                        double seconds)
{
    gchar *path = g_build_filename(lt_tmpdir(), name, NULL);
    guint buffers = (guint)ceil(seconds * rate / 1024);
    gchar *launch = g_strdup_printf(
        "audiotestsrc wave=saw freq=233 volume=0.25 num-buffers=%u samplesperbuffer=1024 ! "
        "audio/x-raw,rate=%d,channels=%u ! audiocheblimit mode=low-pass cutoff=4000 poles=8 ! "
        "audioconvert ! %s ! filesink location=\"%s\"",
        buffers, rate, channels, encoder, path);
    run_launch(launch, 60);
    g_free(launch);
    g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
    return path;
}

/* The decoded input the bin sees, resampled the way it resamples (audioconvert !
 * audioresample to F32 48 kHz). */
static Pcm decode_48k(const gchar *path)
{
    gchar *launch = g_strdup_printf(
        "filesrc location=\"%s\" ! decodebin ! audioconvert ! audioresample ! "
        "audio/x-raw,format=F32LE,rate=48000,layout=interleaved ! appsink name=out",
        path);
    Pcm pcm = run_to_appsink(launch, 60);
    g_free(launch);
    return pcm;
}

static Pcm enhance_file(const gchar *path)
{
    gchar *props = enhance_props();
    gchar *launch = g_strdup_printf("filesrc location=\"%s\" ! decodebin ! lilyenhance %s ! "
                                    "appsink name=out", path, props);
    Pcm pcm = run_to_appsink(launch, 300);
    g_free(launch);
    g_free(props);
    return pcm;
}

static void check_encoded(const char *name, const char *encoder, gint rate, guint channels)
{
    gchar *path = make_file(name, encoder, rate, channels, 1.0);
    Pcm in = decode_48k(path);
    Pcm out = enhance_file(path);
    g_assert_cmpuint(in.channels, ==, channels);
    assert_equals_reference(name, &out, &in);
    pcm_clear(&in);
    pcm_clear(&out);
    g_free(path);
}

/* An MP3 (44.1 kHz mono, lamemp3enc) through decodebin ! lilyenhance equals LilyEnhancer on
 * its decoded, resampled samples. */
static void test_mp3(void) { check_encoded("in.mp3", "lamemp3enc", 44100, 1); }

/* A stereo 32 kHz FLAC (flacenc) likewise, each channel enhanced on its own. */
static void test_flac(void) { check_encoded("in.flac", "flacenc", 32000, 2); }

/* An Ogg/Vorbis file (vorbisenc ! oggmux, 22.05 kHz mono) likewise. */
static void test_ogg_vorbis(void) { check_encoded("in.ogg", "vorbisenc ! oggmux", 22050, 1); }

/* `... ! lilyenhance ! wavenc ! filesink` (the README line) writes a 48 kHz float WAV whose
 * samples are the ones the appsink received; the recipe pipelines/enhance-file.sh writes the
 * same file. */
static void test_wav_and_recipe(void)
{
    gchar *in = make_file("wav-in.flac", "flacenc", 44100, 2, 1.1);
    Pcm direct = enhance_file(in);
    gchar *wav = g_build_filename(lt_tmpdir(), "out.wav", NULL);
    gchar *props = enhance_props();
    gchar *launch = g_strdup_printf("filesrc location=\"%s\" ! decodebin ! lilyenhance %s ! "
                                    "wavenc ! filesink location=\"%s\"", in, props, wav);
    run_launch(launch, 300);
    g_free(launch);
    launch = g_strdup_printf("filesrc location=\"%s\" ! wavparse ! appsink name=out", wav);
    Pcm back = run_to_appsink(launch, 60);
    g_free(launch);
    g_assert_cmpint(back.rate, ==, 48000);
    g_assert_cmpuint(back.channels, ==, 2);
    g_assert_cmpuint(back.x->len, ==, direct.x->len);
    lgt_assert_equal("WAV from wavenc vs appsink", (float *)back.x->data, (float *)direct.x->data,
                     back.x->len, 0.0);
    pcm_clear(&back);

    /* the recipe, run as a user would from the tree (GST_PLUGIN_PATH set by the script) */
    gchar *recipe = g_build_filename(g_getenv("LILY_SOURCE_ROOT"), "pipelines", "enhance-file.sh",
                                     NULL);
    gchar *wav2 = g_build_filename(lt_tmpdir(), "recipe.wav", NULL);
    gchar **argv = g_new0(gchar *, 16);
    guint k = 0;
    argv[k++] = g_strdup("sh");
    argv[k++] = g_strdup(recipe);
    argv[k++] = g_strdup(in);
    argv[k++] = g_strdup(wav2);
    argv[k++] = g_strdup(lgt_model());
    argv[k++] = g_strdup_printf("steps=%d", LGT_STEPS);
    argv[k++] = g_strdup_printf("chunk-duration=%" G_GUINT64_FORMAT, (guint64)LGT_CHUNK_NS);
    argv[k++] = g_strdup_printf("overlap-duration=%" G_GUINT64_FORMAT, (guint64)LGT_OVERLAP_NS);
    argv[k++] = g_strdup_printf("vocoder-duration=%" G_GUINT64_FORMAT, (guint64)LGT_VOCODER_NS);
    if (lgt_config()[0]) argv[k++] = g_strdup_printf("config=%s", lgt_config());
    gchar *sout = NULL, *serr = NULL;
    gint status = -1;
    GError *err = NULL;
    gchar **envp = g_get_environ();
    envp = g_environ_setenv(envp, "LILY_BUILD_DIR", g_getenv("LILY_BUILD_ROOT"), TRUE);
    g_assert_true(g_spawn_sync(NULL, argv, envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &sout, &serr,
                               &status, &err));
    g_assert_no_error(err);
    g_test_message("enhance-file.sh: exit status %d\n%s%s", status, sout, serr);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    launch = g_strdup_printf("filesrc location=\"%s\" ! wavparse ! appsink name=out", wav2);
    Pcm rec = run_to_appsink(launch, 60);
    g_free(launch);
    g_assert_cmpuint(rec.x->len, ==, direct.x->len);
    lgt_assert_equal("recipe WAV vs appsink", (float *)rec.x->data, (float *)direct.x->data,
                     rec.x->len, 0.0);
    pcm_clear(&rec);
    g_strfreev(argv);
    g_strfreev(envp);
    g_free(sout);
    g_free(serr);
    g_free(recipe);
    g_free(wav2);
    pcm_clear(&direct);
    g_free(props);
    g_free(wav);
    g_free(in);
}

#ifdef LILY_ENHANCE_TOOL
/* lily-enhance on a 48 kHz FLAC (no resampling on either side) gives the pipeline's samples:
 * both drive the same engine streams. The tool's whole-file anti-clipping gain does not apply
 * at this level (peak well under full scale). */
static void test_tool_agrees(void)
{
    gchar *in = make_file("tool-in.flac", "flacenc", 48000, 1, 1.2);
    gchar *props = enhance_props();
    /* the tool has no vocoder chunk option: the pipeline uses the default 5.12 s here */
    gchar *launch = g_strdup_printf(
        "filesrc location=\"%s\" ! decodebin ! lilyenhance %s vocoder-duration=5120000000 ! "
        "appsink name=out", in, props);
    Pcm pipe = run_to_appsink(launch, 300);
    g_free(launch);
    gchar *out = g_build_filename(lt_tmpdir(), "tool.wav", NULL);
    gchar *cmd = g_strdup_printf("\"%s\" \"%s\" \"%s\" --model \"%s\" %s%s%s --steps %d --chunk %g "
                                 "--overlap %g --quiet", LILY_ENHANCE_TOOL, in, out, lgt_model(),
                                 lgt_config()[0] ? "--config \"" : "", lgt_config(),
                                 lgt_config()[0] ? "\"" : "", LGT_STEPS,
                                 (double)LGT_CHUNK_NS / GST_SECOND,
                                 (double)LGT_OVERLAP_NS / GST_SECOND);
    gchar *serr = NULL;
    gint status = -1;
    g_assert_true(g_spawn_command_line_sync(cmd, NULL, &serr, &status, NULL));
    g_test_message("%s: status %d %s", cmd, status, serr ? serr : "");
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    launch = g_strdup_printf("filesrc location=\"%s\" ! wavparse ! audioconvert ! "
                             "audio/x-raw,format=F32LE ! appsink name=out", out);
    Pcm tool = run_to_appsink(launch, 60);
    g_free(launch);
    g_assert_cmpuint(tool.x->len, ==, pipe.x->len);
    lgt_assert_equal("lily-enhance vs lilyenhance", (float *)tool.x->data, (float *)pipe.x->data,
                     tool.x->len, TOL);
    pcm_clear(&tool);
    pcm_clear(&pipe);
    g_free(cmd);
    g_free(serr);
    g_free(out);
    g_free(props);
    g_free(in);
}
#endif

/* A live source (audiotestsrc is-live=true, 1 s) through lilyenhance with the tiny model into
 * a clock-synchronised sink runs to EOS without an error; the sink gets every sample. A
 * falling-behind warning, if the engine is slower than real time here, is printed, not fatal:
 * it is the documented behaviour. */
static void test_live(void)
{
    gchar *props = enhance_props();
    gchar *launch = g_strdup_printf(
        "audiotestsrc is-live=true wave=sine freq=300 volume=0.3 num-buffers=100 "
        "samplesperbuffer=480 ! audio/x-raw,rate=48000,channels=1 ! lilyenhance %s ! "
        "appsink name=out sync=true", props);
    GError *err = NULL;
    GstElement *p = gst_parse_launch(launch, &err);
    g_assert_no_error(err);
    GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "out");
    g_object_set(sink, "emit-signals", FALSE, "max-buffers", 0, NULL);
    gint64 t0 = g_get_monotonic_time();
    g_assert_cmpint(gst_element_set_state(p, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
    guint64 samples = 0;
    for (;;) {
        GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 120 * GST_SECOND);
        if (!s) break;
        samples += gst_buffer_get_size(gst_sample_get_buffer(s)) / sizeof(float);
        gst_sample_unref(s);
    }
    double wall = (g_get_monotonic_time() - t0) / 1e6;
    g_assert_true(gst_app_sink_is_eos(GST_APP_SINK(sink)));
    GstBus *bus = gst_element_get_bus(p);
    GstMessage *m;
    while ((m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR | GST_MESSAGE_WARNING))) {
        GError *e = NULL;
        if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) gst_message_parse_error(m, &e, NULL);
        else gst_message_parse_warning(m, &e, NULL);
        g_test_message("%s from %s: %s", GST_MESSAGE_TYPE_NAME(m), GST_MESSAGE_SRC_NAME(m),
                       e->message);
        g_assert_cmpint(GST_MESSAGE_TYPE(m), !=, GST_MESSAGE_ERROR);
        g_error_free(e);
        gst_message_unref(m);
    }
    GstQuery *q = gst_query_new_latency();
    gboolean live = FALSE;
    GstClockTime min = 0;
    if (gst_element_query(p, q)) gst_query_parse_latency(q, &live, &min, NULL);
    gst_query_unref(q);
    g_test_message("live run: %" G_GUINT64_FORMAT " samples out in %.1f s of wall time, pipeline "
                   "latency %" GST_TIME_FORMAT, samples, wall, GST_TIME_ARGS(min));
    g_assert_cmpuint(samples, ==, 100 * 480);
    gst_object_unref(bus);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(p);
    g_free(launch);
    g_free(props);
}

int main(int argc, char **argv)
{
    lgt_private_registry(TRUE); /* decoders, encoders and the base elements are needed */
    gst_init(&argc, &argv);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/pipelines/mp3", test_mp3);
    g_test_add_func("/lily/pipelines/flac-stereo", test_flac);
    g_test_add_func("/lily/pipelines/ogg-vorbis", test_ogg_vorbis);
    g_test_add_func("/lily/pipelines/wavenc-and-recipe", test_wav_and_recipe);
#ifdef LILY_ENHANCE_TOOL
    g_test_add_func("/lily/pipelines/tool-agrees", test_tool_agrees);
#endif
    g_test_add_func("/lily/pipelines/live", test_live);
    int ret = g_test_run();
    gst_deinit();
    return ret;
}
