/* tests/data-pipeline/test-trainsink.c - the lilytrainsink element in real pipelines: segments
 * of a known input (appsrc, stereo averaged to mono), the source URI taken from upstream, the
 * low request pad fed by an MP3 round trip (delay found and removed), a full disk (a 2 MB
 * tmpfs, or RLIMIT_FSIZE where mounting is not allowed) posting a RESOURCE error while the
 * shards written before stay intact, and a folder that cannot be written.
 *
 * The plugin comes from the build tree (GST_PLUGIN_PATH_1_0, tests/meson.build); the dataset is
 * read back with the engine's reader (<lily/dataset.h>). */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <signal.h>
#include <dirent.h>

#include <glib/gstdio.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <lily/dataset.h>

#include "common/test-util.h"

#define SEG 30720 /* 0.64 s */

static LilyContext *ctx_new(void)
{
    LilyContextParams cp;
    lily_context_params_init(&cp);
    cp.n_threads = 1;
    LilyContext *ctx = NULL;
    char err[256];
    g_assert_cmpint(lily_context_new(&cp, &ctx, err, sizeof err), ==, LILY_OK);
    return ctx;
}

static char *fresh_dir(const char *name)
{
    char *d = g_build_filename(lt_tmpdir(), name, NULL);
    char *cmd = g_strdup_printf("rm -rf '%s'", d);
    g_assert_cmpint(system(cmd), ==, 0);
    g_free(cmd);
    return d;
}

typedef struct RunResult {
    gboolean eos;
    GError *error;
    GstObject *error_src;
    int shard_messages, source_messages;
    guint64 source_segments;
} RunResult;

/* Runs a pipeline to EOS or error, collecting the sink's messages. */
static void run_pipeline(GstElement *pipe, RunResult *r)
{
    memset(r, 0, sizeof *r);
    GstBus *bus = gst_element_get_bus(pipe);
    g_assert_cmpint(gst_element_set_state(pipe, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
    for (;;) {
        GstMessage *m = gst_bus_timed_pop(bus, 120 * GST_SECOND);
        g_assert_nonnull(m);
        if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS) {
            r->eos = TRUE;
            gst_message_unref(m);
            break;
        }
        if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
            gst_message_parse_error(m, &r->error, NULL);
            r->error_src = gst_object_ref(GST_MESSAGE_SRC(m));
            g_test_message("error from %s: %s", GST_OBJECT_NAME(r->error_src), r->error->message);
            gst_message_unref(m);
            break;
        }
        if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT) {
            const GstStructure *s = gst_message_get_structure(m);
            if (gst_structure_has_name(s, "lilytrainsink-shard")) r->shard_messages++;
            if (gst_structure_has_name(s, "lilytrainsink-source")) {
                r->source_messages++;
                gst_structure_get_uint64(s, "segments-run", &r->source_segments);
            }
        }
        gst_message_unref(m);
    }
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(bus);
}

static void run_result_clear(RunResult *r)
{
    g_clear_error(&r->error);
    if (r->error_src) gst_object_unref(r->error_src);
    r->error_src = NULL;
}

/* A known stereo input through appsrc: 100000 frames (3 full segments of 0.64 s and a short
 * tail) give 3 segments whose high side is exactly the channel average, 2 shards of at most 2
 * segments, one message per shard, and the source URI as set. */
static void test_segments_from_appsrc(void)
{
    char *dir = fresh_dir("appsrc");
    gchar *desc = g_strdup_printf("appsrc name=src format=time caps=audio/x-raw,format=F32LE,"
                                  "rate=48000,channels=2,layout=interleaved ! lilytrainsink "
                                  "name=sink location=%s segment-duration=640000000 "
                                  "shard-segments=2 source-uri=test://stereo seed=5", dir);
    GError *err = NULL;
    GstElement *pipe = gst_parse_launch(desc, &err);
    g_assert_no_error(err);
    g_free(desc);
    GstElement *src = gst_bin_get_by_name(GST_BIN(pipe), "src");
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
    const size_t n = 100000;
    float *l = g_new(float, n), *r = g_new(float, n), *mono = g_new(float, n);
    lt_fill_uniform(l, n, 1, -0.4f, 0.4f);
    lt_fill_uniform(r, n, 2, -0.4f, 0.4f);
    for (size_t i = 0; i < n; i++) {
        float acc = 0;
        acc += l[i];
        acc += r[i];
        mono[i] = acc / 2.0f;
    }
    /* appsrc queues everything (block=false); the run below plays it. */
    for (size_t pos = 0, k = 0; pos < n; k++) {
        size_t len = MIN((k % 3 == 0) ? 4410 : 1234, n - pos);
        GstBuffer *b = gst_buffer_new_allocate(NULL, len * 8, NULL);
        GstMapInfo map;
        gst_buffer_map(b, &map, GST_MAP_WRITE);
        float *d = (float *)map.data;
        for (size_t i = 0; i < len; i++) {
            d[2 * i] = l[pos + i];
            d[2 * i + 1] = r[pos + i];
        }
        gst_buffer_unmap(b, &map);
        GST_BUFFER_PTS(b) = gst_util_uint64_scale(pos, GST_SECOND, 48000);
        g_assert_cmpint(gst_app_src_push_buffer(GST_APP_SRC(src), b), ==, GST_FLOW_OK);
        pos += len;
    }
    gst_app_src_end_of_stream(GST_APP_SRC(src));
    RunResult rr;
    run_pipeline(pipe, &rr);
    g_assert_true(rr.eos);
    g_assert_cmpint(rr.shard_messages, ==, 2);
    g_assert_cmpint(rr.source_messages, ==, 1);
    g_assert_cmpuint(rr.source_segments, ==, 3);
    run_result_clear(&rr);

    LilyContext *ctx = ctx_new();
    LilyDataset *ds;
    g_assert_cmpint(lily_dataset_open(ctx, dir, &ds), ==, LILY_OK);
    g_assert_cmpuint(lily_dataset_count(ds, LILY_SPLIT_ALL), ==, 3);
    g_assert_cmpint(lily_dataset_shard_count(ds), ==, 2);
    LilyDatasetCounts c;
    lily_dataset_counts(ds, &c);
    g_assert_cmpuint(c.short_tails, ==, 1);
    for (size_t i = 0; i < 3; i++) {
        LilyDatasetSegment s;
        g_assert_cmpint(lily_dataset_get(ds, LILY_SPLIT_ALL, i, &s), ==, LILY_OK);
        g_assert_cmpstr(lily_dataset_source_uri(ds, s.source), ==, "test://stereo");
        g_assert_cmpint(s.offset, ==, (int64_t)i * SEG);
        g_assert_cmpmem(s.high, SEG * 4, mono + s.offset, SEG * 4);
        g_assert_cmpint(s.frames, ==, 64);
        g_assert_cmpint(s.low_kind, ==, LILY_LOW_LOWPASS);
    }
    g_test_message("appsrc stereo, 100000 frames in buffers of 4410/1234: 3 segments (high = channel "
            "mean, bit-exact), 2 shards, 1 short tail");
    lily_dataset_close(ds);
    lily_context_free(ctx);
    gst_object_unref(src);
    gst_object_unref(sink);
    gst_object_unref(pipe);
    g_free(l);
    g_free(r);
    g_free(mono);
    g_free(dir);
}

/* Without source-uri the element records the URI upstream answers (filesrc on a WAV file);
 * running the same pipeline again skips the complete source instead of duplicating it. */
static void test_uri_from_upstream_and_rerun_skips(void)
{
    char *dir = fresh_dir("uri");
    char *wav = g_build_filename(lt_tmpdir(), "noise.wav", NULL);
    gchar *make = g_strdup_printf("audiotestsrc wave=white-noise volume=0.3 num-buffers=40 "
                                  "samplesperbuffer=2400 ! audio/x-raw,rate=48000,channels=1 ! "
                                  "wavenc ! filesink location=%s", wav);
    GError *err = NULL;
    GstElement *p = gst_parse_launch(make, &err);
    g_assert_no_error(err);
    RunResult rr;
    run_pipeline(p, &rr);
    g_assert_true(rr.eos);
    run_result_clear(&rr);
    gst_object_unref(p);
    g_free(make);
    gchar *desc = g_strdup_printf("filesrc location=%s ! wavparse ! audioconvert ! audioresample ! "
                                  "lilytrainsink location=%s segment-duration=640000000", wav, dir);
    for (int run = 0; run < 2; run++) {
        p = gst_parse_launch(desc, &err);
        g_assert_no_error(err);
        run_pipeline(p, &rr);
        g_assert_true(rr.eos);
        g_assert_cmpuint(rr.source_segments, ==, run == 0 ? 3 : 0); /* 2 s: 3 segments + tail */
        run_result_clear(&rr);
        gst_object_unref(p);
    }
    LilyContext *ctx = ctx_new();
    LilyDataset *ds;
    g_assert_cmpint(lily_dataset_open(ctx, dir, &ds), ==, LILY_OK);
    g_assert_cmpint(lily_dataset_source_count(ds), ==, 1);
    g_assert_cmpuint(lily_dataset_count(ds, LILY_SPLIT_ALL), ==, 3);
    gchar *uri = g_filename_to_uri(wav, NULL, NULL);
    g_assert_cmpstr(lily_dataset_source_uri(ds, 0), ==, uri);
    g_test_message("source recorded as %s; the second run added nothing", uri);
    g_free(uri);
    lily_dataset_close(ds);
    lily_context_free(ctx);
    g_free(desc);
    g_free(wav);
    g_free(dir);
}

/* The low pad fed through a tee by a 64 kbit/s MP3 round trip: every segment's low side is
 * the stream (kind, description recorded), its 1105-sample codec delay is found and removed
 * (the stored low side correlates with the high side at lag 0 better than 0.9), and both
 * sides have the same number of segments as the input allows. */
static void test_low_pad_mp3_round_trip(void)
{
    char *dir = fresh_dir("mp3pair");
    const char *caps = "audio/x-raw,format=F32LE,rate=48000,channels=1";
    gchar *desc = g_strdup_printf(
        "audiotestsrc wave=pink-noise num-buffers=100 samplesperbuffer=1024 ! %s ! tee name=t "
        "t. ! queue ! lilytrainsink name=s location=%s segment-duration=640000000 "
        "source-uri=test://mp3 low-description=\"mp3 64k\" "
        "t. ! queue ! audioconvert ! lamemp3enc bitrate=64 ! mpegaudioparse ! mpg123audiodec ! "
        "audioconvert ! audioresample ! %s ! s.low", caps, dir, caps);
    GError *err = NULL;
    GstElement *p = gst_parse_launch(desc, &err);
    g_assert_no_error(err);
    RunResult rr;
    run_pipeline(p, &rr);
    g_assert_true(rr.eos);
    run_result_clear(&rr);
    gst_object_unref(p);
    g_free(desc);
    LilyContext *ctx = ctx_new();
    LilyDataset *ds;
    g_assert_cmpint(lily_dataset_open(ctx, dir, &ds), ==, LILY_OK);
    g_assert_cmpuint(lily_dataset_count(ds, LILY_SPLIT_ALL), ==, 3); /* 102400 samples */
    double worst = 1;
    for (size_t i = 0; i < 3; i++) {
        LilyDatasetSegment s;
        g_assert_cmpint(lily_dataset_get(ds, LILY_SPLIT_ALL, i, &s), ==, LILY_OK);
        g_assert_cmpint(s.low_kind, ==, LILY_LOW_STREAM);
        g_assert_cmpstr(s.low_description, ==, "mp3 64k");
        g_assert_cmpint(s.low_delay, ==, 1105);
        double hh = 0, ll = 0, hl = 0;
        for (int64_t k = 0; k < s.samples; k++) {
            hh += (double)s.high[k] * s.high[k];
            ll += (double)s.low[k] * s.low[k];
            hl += (double)s.high[k] * s.low[k];
        }
        worst = MIN(worst, hl / sqrt(hh * ll));
    }
    g_test_message("mp3 round trip: delay 1105 samples removed; worst correlation of low with high at "
            "lag 0: %.3f (bound 0.9)", worst);
    g_assert_cmpfloat(worst, >, 0.9);
    lily_dataset_close(ds);
    lily_context_free(ctx);
    g_free(dir);
}

/* Lowers the file-size limit after the second shard (RLIMIT_FSIZE mode of the disk-full test). */
static GstBusSyncReply limit_after_two_shards(GstBus *bus, GstMessage *m, gpointer user)
{
    (void)bus;
    int *shards = user;
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT &&
        gst_structure_has_name(gst_message_get_structure(m), "lilytrainsink-shard") && ++*shards == 2) {
        struct rlimit rl = {4096, 4096};
        g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &rl), ==, 0);
    }
    return GST_BUS_PASS;
}

/* In a subprocess: a 2 MB tmpfs in a private mount namespace (or, where mounts are refused, a
 * 4 kB file-size limit set after the second shard). */
static void disk_full_child(void)
{
    char *dir = g_build_filename(lt_tmpdir(), "full", NULL);
    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    /* LILY_TEST_NO_TMPFS=1 exercises the RLIMIT_FSIZE path where mounting would work. */
    gboolean tmpfs = !g_getenv("LILY_TEST_NO_TMPFS") && unshare(CLONE_NEWNS) == 0 &&
                     mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
                     mount("tmpfs", dir, "tmpfs", 0, "size=2m") == 0;
    int shards = 0;
    if (!tmpfs) signal(SIGXFSZ, SIG_IGN);
    GString *report = g_string_new(NULL);
    g_string_append_printf(report, "mode: %s\n", tmpfs ? "2 MB tmpfs" : "RLIMIT_FSIZE after 2 shards");
    gchar *desc = g_strdup_printf("audiotestsrc wave=white-noise volume=0.3 num-buffers=1000 "
                                  "samplesperbuffer=4800 ! audio/x-raw,rate=48000,channels=1 ! "
                                  "lilytrainsink name=s location=%s segment-duration=640000000 "
                                  "shard-segments=2 source-uri=test://full", dir);
    GError *err = NULL;
    GstElement *p = gst_parse_launch(desc, &err);
    g_assert_no_error(err);
    GstBus *bus = gst_element_get_bus(p);
    if (!tmpfs) gst_bus_set_sync_handler(bus, limit_after_two_shards, &shards, NULL);
    gst_object_unref(bus);
    RunResult rr;
    run_pipeline(p, &rr);
    g_assert_false(rr.eos);
    g_assert_nonnull(rr.error);
    g_assert_cmpstr(GST_OBJECT_NAME(rr.error_src), ==, "s");
    g_assert_true(rr.error->domain == GST_RESOURCE_ERROR);
    g_assert_cmpint(rr.error->code, ==, tmpfs ? GST_RESOURCE_ERROR_NO_SPACE_LEFT : GST_RESOURCE_ERROR_WRITE);
    g_string_append_printf(report, "element error: %s (%s)\n", rr.error->message,
                           rr.error->code == GST_RESOURCE_ERROR_NO_SPACE_LEFT ? "NO_SPACE_LEFT" : "WRITE");
    int shards_before = rr.shard_messages;
    run_result_clear(&rr);
    gst_object_unref(p);
    if (!tmpfs) {
        struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
        setrlimit(RLIMIT_FSIZE, &rl);
    }
    /* Earlier shards intact: the dataset opens, every value reads back, no temporary files. */
    LilyContext *ctx = ctx_new();
    int problems = -1;
    g_assert_cmpint(lily_dataset_verify(ctx, dir, NULL, NULL, &problems), ==, LILY_OK);
    g_assert_cmpint(problems, ==, 0);
    LilyDataset *ds;
    g_assert_cmpint(lily_dataset_open(ctx, dir, &ds), ==, LILY_OK);
    g_assert_cmpint(lily_dataset_shard_count(ds), ==, shards_before);
    g_assert_cmpint(lily_dataset_shard_count(ds), >=, 2);
    lily_dataset_close(ds);
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) g_assert_null(strstr(e->d_name, ".tmp-"));
    closedir(d);
    g_string_append_printf(report, "earlier shards intact: %d shards verify with 0 problems, no "
                           "temporary files\n", shards_before);
    g_test_message("%s", report->str);
    /* The parent reads this (a quiet subprocess prints nothing). */
    gchar *report_path = g_strdup_printf("%s/lily-disk-full-%d.txt", g_get_tmp_dir(), (int)getppid());
    g_assert_true(g_file_set_contents(report_path, report->str, -1, NULL));
    g_free(report_path);
    g_string_free(report, TRUE);
    lily_context_free(ctx);
    if (tmpfs) umount(dir);
    g_free(desc);
    g_free(dir);
}

/* A full disk posts GST_RESOURCE_ERROR (NO_SPACE_LEFT on a tmpfs) from the sink and leaves the
 * shards written before it intact and readable. */
static void test_disk_full_keeps_earlier_shards(void)
{
    if (g_test_subprocess()) {
        disk_full_child();
        return;
    }
    gchar *report = g_strdup_printf("%s/lily-disk-full-%d.txt", g_get_tmp_dir(), (int)getpid());
    g_test_trap_subprocess(NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_test_trap_assert_passed();
    gchar *text = NULL;
    g_assert_true(g_file_get_contents(report, &text, NULL, NULL));
    g_unlink(report);
    g_test_message("%s", text);
    g_assert_nonnull(strstr(text, "earlier shards intact"));
    g_free(text);
    g_free(report);
}

/* A location that cannot be created fails the start with a RESOURCE error naming it. */
static void test_unwritable_location_fails(void)
{
    GError *err = NULL;
    GstElement *p = gst_parse_launch("audiotestsrc num-buffers=10 ! audio/x-raw,rate=48000 ! "
                                     "lilytrainsink location=/proc/lily-cannot-write/x", &err);
    g_assert_no_error(err);
    GstBus *bus = gst_element_get_bus(p);
    GstStateChangeReturn r = gst_element_set_state(p, GST_STATE_PAUSED);
    if (r == GST_STATE_CHANGE_ASYNC) r = gst_element_get_state(p, NULL, NULL, 10 * GST_SECOND);
    g_assert_cmpint(r, ==, GST_STATE_CHANGE_FAILURE);
    GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    g_assert_nonnull(m);
    GError *e = NULL;
    gchar *dbg = NULL;
    gst_message_parse_error(m, &e, &dbg);
    g_test_message("start refused: %s (%s)", e->message, dbg);
    g_assert_true(e->domain == GST_RESOURCE_ERROR);
    g_assert_nonnull(strstr(dbg, "/proc/lily-cannot-write"));
    g_error_free(e);
    g_free(dbg);
    gst_message_unref(m);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(p);
}

int main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/data/trainsink/segments-from-appsrc", test_segments_from_appsrc);
    g_test_add_func("/lily/data/trainsink/uri-from-upstream-and-rerun-skips",
                    test_uri_from_upstream_and_rerun_skips);
    g_test_add_func("/lily/data/trainsink/low-pad-mp3-round-trip", test_low_pad_mp3_round_trip);
    g_test_add_func("/lily/data/trainsink/disk-full-keeps-earlier-shards",
                    test_disk_full_keeps_earlier_shards);
    g_test_add_func("/lily/data/trainsink/unwritable-location-fails", test_unwritable_location_fails);
    return g_test_run();
}
