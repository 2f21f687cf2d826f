/* tools/lily-dataset.c - make, inspect and check Lily training datasets (docs/datasets.md).
 *
 *   lily-dataset make --config config.yaml --out DIR FILES/FOLDERS...
 *       decodes every file with GStreamer (uridecodebin ! audioconvert ! audioresample !
 *       lilytrainsink), one pipeline per file, all feeding one lilytrainsink so shards fill up
 *       across files; files the dataset already holds are skipped, so a re-run appends.
 *   lily-dataset stats DIR [--json]
 *       hours, segments, splits, skipped counts, filter families, orders, cutoff histogram.
 *   lily-dataset verify DIR
 *       opens every shard, reads every value, checks the index; exit status 1 on a problem.
 *
 * Only the public API (<lily/lily.h>, <lily/dataset.h>) and GStreamer are used. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <gst/gst.h>
#include <lily/dataset.h>
#include <lily/lily.h>

#include "args.h"
#include "progress.h"

/* Extensions taken from folders (files named on the command line are always tried). */
static const char *const media_ext[] = {"wav", "flac", "mp3", "ogg", "oga", "opus", "m4a",
                                        "aac", "aif", "aiff", "wma", "mka", "webm", "mp4",
                                        "mkv", "wv", "ape", "au", "caf", "mp2", "ac3"};

static LilyContext *new_ctx(void)
{
    LilyContextParams cp;
    lily_context_params_init(&cp);
    cp.n_threads = 1;
    LilyContext *ctx = NULL;
    char err[512];
    if (lily_context_new(&cp, &ctx, err, sizeof err) != LILY_OK) {
        fprintf(stderr, "lily-dataset: %s\n", err);
        return NULL;
    }
    return ctx;
}

/* ---- make ------------------------------------------------------------------------------ */

typedef struct FileList {
    char **paths;
    int n, cap;
} FileList;

static void list_add(FileList *l, const char *path)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->paths = g_renew(char *, l->paths, l->cap);
    }
    l->paths[l->n++] = g_strdup(path);
}

static int is_media(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t i = 0; i < G_N_ELEMENTS(media_ext); i++)
        if (g_ascii_strcasecmp(dot + 1, media_ext[i]) == 0) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Folders are walked recursively, in sorted order, so a job is reproducible. */
static void collect(FileList *l, const char *path, int top)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "lily-dataset: %s: %s (skipped)\n", path, strerror(errno));
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        if (top || is_media(path)) list_add(l, path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "lily-dataset: cannot list %s: %s (skipped)\n", path, strerror(errno));
        return;
    }
    FileList names = {0};
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') list_add(&names, e->d_name);
    closedir(d);
    if (names.n) qsort(names.paths, (size_t)names.n, sizeof *names.paths, cmp_str);
    for (int i = 0; i < names.n; i++) {
        char *child = g_build_filename(path, names.paths[i], NULL);
        collect(l, child, 0);
        g_free(child);
        g_free(names.paths[i]);
    }
    g_free(names.paths);
}

static int parse_range(const char *text, const char *opt, double *lo, double *hi)
{
    char *end = NULL;
    *lo = strtod(text, &end);
    if (end == text || *end != ':') goto bad;
    const char *b = end + 1;
    *hi = strtod(b, &end);
    if (end == b || *end) goto bad;
    return 0;
bad:
    fprintf(stderr, "lily-dataset make: --%s expects MIN:MAX, got '%s'\n", opt, text);
    return -1;
}

typedef struct Run {
    GstElement *convert;
    gboolean linked;
} Run;

static void on_pad_added(GstElement *dec, GstPad *pad, gpointer user)
{
    (void)dec;
    Run *r = user;
    GstCaps *caps = gst_pad_get_current_caps(pad);
    if (!caps) caps = gst_pad_query_caps(pad, NULL);
    const GstStructure *s = caps && gst_caps_get_size(caps) ? gst_caps_get_structure(caps, 0) : NULL;
    gboolean audio = s && g_str_has_prefix(gst_structure_get_name(s), "audio/");
    if (caps) gst_caps_unref(caps);
    if (!audio || r->linked) return; /* the first audio stream only */
    GstPad *sink = gst_element_get_static_pad(r->convert, "sink");
    if (gst_pad_link(pad, sink) == GST_PAD_LINK_OK) r->linked = TRUE;
    gst_object_unref(sink);
}

typedef struct Outcome {
    gboolean ok, skipped, fatal;
    guint64 segments, silent, clipped, short_tails;
    gchar *error;
} Outcome;

/* Decodes one file into the sink. The sink stays in READY afterwards (its writer open). */
static void run_file(GstElement *sink, const char *uri, uint64_t base, uint64_t size,
                     LilyCliProgress *bar, Outcome *out, guint64 counts_before[4])
{
    memset(out, 0, sizeof *out);
    GstElement *pipe = gst_pipeline_new("lily-dataset");
    GstElement *dec = gst_element_factory_make("uridecodebin", NULL);
    GstElement *conv = gst_element_factory_make("audioconvert", NULL);
    GstElement *res = gst_element_factory_make("audioresample", NULL);
    GstElement *caps = gst_element_factory_make("capsfilter", NULL);
    if (!pipe || !dec || !conv || !res || !caps) {
        out->error = g_strdup("missing GStreamer elements (uridecodebin, audioconvert, "
                              "audioresample, capsfilter): install gstreamer1.0-plugins-base");
        out->fatal = TRUE;
        return;
    }
    GstCaps *c = gst_caps_from_string("audio/x-raw,format=F32LE,rate=48000,layout=interleaved");
    g_object_set(caps, "caps", c, NULL);
    gst_caps_unref(c);
    g_object_set(dec, "uri", uri, NULL);
    g_object_set(sink, "source-uri", uri, NULL);
    gst_bin_add_many(GST_BIN(pipe), dec, conv, res, caps, sink, NULL);
    gst_element_link_many(conv, res, caps, sink, NULL);
    Run r = {conv, FALSE};
    g_signal_connect(dec, "pad-added", G_CALLBACK(on_pad_added), &r);
    GstBus *bus = gst_element_get_bus(pipe);
    if (gst_element_set_state(pipe, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE && !out->error)
        out->error = g_strdup("the pipeline did not start");
    gboolean done = out->error != NULL;
    while (!done) {
        GstMessage *m = gst_bus_timed_pop(bus, 250 * GST_MSECOND);
        if (!m) {
            gint64 pos = 0, dur = 0;
            if (gst_element_query_position(pipe, GST_FORMAT_TIME, &pos) &&
                gst_element_query_duration(pipe, GST_FORMAT_TIME, &dur) && dur > 0 && pos >= 0)
                lily_cli_progress_update(bar, base + (uint64_t)((double)size * MIN(1.0, (double)pos / (double)dur)));
            continue;
        }
        switch (GST_MESSAGE_TYPE(m)) {
        case GST_MESSAGE_ERROR: {
            GError *e = NULL;
            gchar *dbg = NULL;
            gst_message_parse_error(m, &e, &dbg);
            out->error = g_strdup_printf("%s%s%s", e->message, dbg ? " -- " : "", dbg ? dbg : "");
            /* A write failure in the sink ends the job; a file that does not decode does not. */
            out->fatal = GST_MESSAGE_SRC(m) == GST_OBJECT(sink) && e->domain == GST_RESOURCE_ERROR;
            g_error_free(e);
            g_free(dbg);
            done = TRUE;
            break;
        }
        case GST_MESSAGE_EOS: done = TRUE; break;
        case GST_MESSAGE_ELEMENT: {
            const GstStructure *s = gst_message_get_structure(m);
            if (GST_MESSAGE_SRC(m) == GST_OBJECT(sink) && gst_structure_has_name(s, "lilytrainsink-source")) {
                guint64 v[4] = {0};
                gst_structure_get_uint64(s, "segments", &v[0]);
                gst_structure_get_uint64(s, "silent", &v[1]);
                gst_structure_get_uint64(s, "clipped", &v[2]);
                gst_structure_get_uint64(s, "short-tails", &v[3]);
                gst_structure_get_boolean(s, "skipped", &out->skipped);
                out->segments = v[0] - counts_before[0];
                out->silent = v[1] - counts_before[1];
                out->clipped = v[2] - counts_before[2];
                out->short_tails = v[3] - counts_before[3];
                for (int i = 0; i < 4; i++) counts_before[i] = v[i];
            }
            break;
        }
        default: break;
        }
        gst_message_unref(m);
    }
    out->ok = out->error == NULL && r.linked;
    if (!out->error && !r.linked) out->error = g_strdup("no audio stream in the file");
    gst_element_set_state(pipe, GST_STATE_READY);
    gst_object_ref(sink);
    gst_bin_remove(GST_BIN(pipe), sink);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(pipe);
}

static int cmd_make(int argc, char **argv)
{
    const char *config = NULL, *outdir = NULL, *filters = NULL, *cutoff = NULL, *order = NULL;
    uint64_t seed = 0;
    double segment = 0, hop = 0;
    int shard_segments = 0, seed_set = 0, quiet = 0;
    const char *seed_text = NULL;
    const LilyCliOption opts[] = {
        {"config", 'c', LILY_CLI_STRING, &config, "FILE", "Lily config.yaml (its data section); default: built-in defaults"},
        {"out", 'o', LILY_CLI_STRING, &outdir, "DIR", "dataset folder (default: data.dir of the config)"},
        {"filters", 0, LILY_CLI_STRING, &filters, "LIST", "filter families, e.g. ellip,butter (or all)"},
        {"cutoff", 0, LILY_CLI_STRING, &cutoff, "MIN:MAX", "cutoff range in Hz, drawn log-uniformly, e.g. 4000:12000"},
        {"order", 0, LILY_CLI_STRING, &order, "MIN:MAX", "filter order range, e.g. 4:8"},
        {"seed", 0, LILY_CLI_STRING, &seed_text, "N", "seed of the draws and the split"},
        {"segment", 0, LILY_CLI_DOUBLE, &segment, "SECONDS", "segment length (a multiple of 0.64)"},
        {"hop", 0, LILY_CLI_DOUBLE, &hop, "SECONDS", "distance between segment starts"},
        {"shard-segments", 0, LILY_CLI_INT, &shard_segments, "N", "segments per shard"},
        {"quiet", 'q', LILY_CLI_FLAG, &quiet, NULL, "no progress output"},
    };
    const char **pos = g_new0(const char *, argc + 1);
    int n_pos = 0;
    const LilyCliSpec spec = {"lily-dataset make", "[options] FILES/FOLDERS...",
        "Turns media files (anything GStreamer decodes) into a Lily training dataset: 48 kHz\n"
        "segments with an AudioSR-style randomized low-pass as the low side, both log-mels,\n"
        "in safetensors shards with an index. Re-running appends what is missing.",
        opts, (int)G_N_ELEMENTS(opts), 1, argc, "Example:\n  lily-dataset make --config "
        "config.yaml --out data/shards --filters ellip,butter --cutoff 4000:12000 music/"};
    int rc = lily_cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc != LILY_CLI_OK) {
        g_free(pos);
        return rc == LILY_CLI_EXIT ? 0 : 2;
    }
    if (seed_text) {
        char *end = NULL;
        seed = strtoull(seed_text, &end, 10);
        if (end == seed_text || *end) {
            fprintf(stderr, "lily-dataset make: --seed expects an integer, got '%s'\n", seed_text);
            g_free(pos);
            return 2;
        }
        seed_set = 1;
    }
    double clo = 0, chi = 0, olo = 0, ohi = 0;
    if ((cutoff && parse_range(cutoff, "cutoff", &clo, &chi)) ||
        (order && parse_range(order, "order", &olo, &ohi))) {
        g_free(pos);
        return 2;
    }
    GstElement *sink = gst_element_factory_make("lilytrainsink", "sink");
    if (!sink) {
        fprintf(stderr, "lily-dataset: the lilytrainsink element is not available: set "
                "GST_PLUGIN_PATH to the folder of libgstlily.so (gst-inspect-1.0 lily)\n");
        g_free(pos);
        return 1;
    }
    gst_object_ref_sink(sink);
    char *config_abs = config ? g_canonicalize_filename(config, NULL) : NULL;
    g_object_set(sink, "flush-on-eos", FALSE, NULL);
    if (config_abs) g_object_set(sink, "config", config_abs, NULL);
    if (outdir) g_object_set(sink, "location", outdir, NULL);
    if (filters) g_object_set(sink, "filters", filters, NULL);
    if (cutoff) g_object_set(sink, "cutoff-min", clo, "cutoff-max", chi, NULL);
    if (order) g_object_set(sink, "order-min", (int)olo, "order-max", (int)ohi, NULL);
    if (seed_set) g_object_set(sink, "seed", (guint64)seed, NULL);
    if (segment > 0) g_object_set(sink, "segment-duration", (guint64)llround(segment * GST_SECOND), NULL);
    if (hop > 0) g_object_set(sink, "hop-duration", (guint64)llround(hop * GST_SECOND), NULL);
    if (shard_segments > 0) g_object_set(sink, "shard-segments", shard_segments, NULL);

    /* Where the dataset goes (for the skip check): --out, else the config's data.dir. */
    LilyContext *ctx = new_ctx();
    char dir[4096] = "";
    if (outdir) {
        snprintf(dir, sizeof dir, "%s", outdir);
    } else if (config_abs && ctx) {
        LilyDatasetParams p;
        if (lily_dataset_params_load(ctx, config_abs, &p, dir, sizeof dir) != LILY_OK) {
            fprintf(stderr, "lily-dataset: %s\n", lily_context_error(ctx));
            dir[0] = '\0';
        }
    }
    if (!dir[0] || !ctx) {
        if (ctx && !config_abs) fprintf(stderr, "lily-dataset make: give --out DIR (or --config with data.dir)\n");
        lily_context_free(ctx);
        gst_object_unref(sink);
        g_free(config_abs);
        g_free(pos);
        return 2;
    }

    FileList files = {0};
    for (int i = 0; i < n_pos; i++) collect(&files, pos[i], 1);
    g_free(pos);
    uint64_t total = 0;
    for (int i = 0; i < files.n; i++) {
        struct stat sb;
        if (stat(files.paths[i], &sb) == 0) total += (uint64_t)sb.st_size;
    }
    if (!quiet) printf("lily-dataset: %d files to %s\n", files.n, dir);
    LilyCliProgress *bar = lily_cli_progress_new("decoding", total, LILY_CLI_PROGRESS_BYTES |
                                                 (quiet ? LILY_CLI_PROGRESS_QUIET : 0));
    int ok = 0, failed = 0, skipped = 0, fatal = 0;
    uint64_t base = 0;
    guint64 before[4] = {0};
    LilyDataset *prior = NULL;
    if (lily_dataset_open(ctx, dir, &prior) == LILY_OK) {
        /* The sink reports whole-dataset counts; per-file numbers are differences. */
        LilyDatasetCounts pc;
        lily_dataset_counts(prior, &pc);
        before[0] = pc.segments;
        before[1] = pc.silent;
        before[2] = pc.clipped;
        before[3] = pc.short_tails;
        lily_dataset_close(prior);
    }
    GstBus *own_bus = gst_bus_new();
    for (int i = 0; i < files.n && !fatal; i++) {
        struct stat sb;
        uint64_t size = stat(files.paths[i], &sb) == 0 ? (uint64_t)sb.st_size : 0;
        GError *err = NULL;
        char *abs = g_canonicalize_filename(files.paths[i], NULL);
        char *uri = g_filename_to_uri(abs, NULL, &err);
        g_free(abs);
        int state = 0;
        if (!uri) {
            fprintf(stderr, "lily-dataset: %s: %s\n", files.paths[i], err ? err->message : "no URI");
            g_clear_error(&err);
            failed++;
        } else if (lily_dataset_source_state(ctx, dir, uri, &state) == LILY_OK && state == 2) {
            skipped++;
            if (!quiet) printf("[%d/%d] %s: already in the dataset, skipped\n", i + 1, files.n, files.paths[i]);
        } else {
            Outcome o;
            run_file(sink, uri, base, size, bar, &o, before);
            if (o.ok && o.skipped) {
                skipped++;
            } else if (o.ok) {
                ok++;
                if (!quiet)
                    printf("[%d/%d] %s: %" G_GUINT64_FORMAT " segments (%" G_GUINT64_FORMAT " silent, %"
                           G_GUINT64_FORMAT " clipped, %" G_GUINT64_FORMAT " short tail)\n", i + 1, files.n,
                           files.paths[i], o.segments, o.silent, o.clipped, o.short_tails);
            } else {
                failed++;
                fprintf(stderr, "[%d/%d] %s: FAILED: %s\n", i + 1, files.n, files.paths[i], o.error);
                fatal = o.fatal;
            }
            g_free(o.error);
        }
        g_free(uri);
        base += size;
        lily_cli_progress_update(bar, base);
    }
    lily_cli_progress_finish(bar);
    /* Closing the sink writes the last shard; its errors arrive on our own bus. */
    gst_element_set_bus(sink, own_bus);
    GstStateChangeReturn sr = gst_element_set_state(sink, GST_STATE_NULL);
    GstMessage *m;
    while ((m = gst_bus_pop_filtered(own_bus, GST_MESSAGE_ERROR)) != NULL) {
        GError *e = NULL;
        gst_message_parse_error(m, &e, NULL);
        fprintf(stderr, "lily-dataset: closing the dataset: %s\n", e->message);
        g_error_free(e);
        gst_message_unref(m);
        fatal = 1;
    }
    if (sr == GST_STATE_CHANGE_FAILURE) fatal = 1;
    gst_element_set_bus(sink, NULL);
    gst_object_unref(own_bus);
    gst_object_unref(sink);
    LilyDataset *ds = NULL;
    int exit_code = fatal ? 1 : failed ? 3 : 0;
    if (lily_dataset_open(ctx, dir, &ds) == LILY_OK) {
        LilyDatasetCounts c;
        lily_dataset_counts(ds, &c);
        if (!quiet)
            printf("lily-dataset: %d files added, %d skipped (already there), %d failed; the dataset "
                   "holds %" PRIu64 " segments (%.2f h) from %" PRIu64 " sources in %" PRIu64 " shards\n",
                   ok, skipped, failed, c.segments, c.seconds / 3600.0, c.sources, c.shards);
        lily_dataset_close(ds);
    } else {
        fprintf(stderr, "lily-dataset: %s\n", lily_context_error(ctx));
        exit_code = 1;
    }
    for (int i = 0; i < files.n; i++) g_free(files.paths[i]);
    g_free(files.paths);
    g_free(config_abs);
    lily_context_free(ctx);
    return exit_code;
}

/* ---- stats ----------------------------------------------------------------------------- */

static int cmd_stats(int argc, char **argv)
{
    int json = 0;
    const LilyCliOption opts[] = {{"json", 0, LILY_CLI_FLAG, &json, NULL, "machine-readable output"}};
    const char *pos[1];
    int n_pos = 0;
    const LilyCliSpec spec = {"lily-dataset stats", "DIR [--json]",
        "Hours, segments, splits, skipped counts, filter families, orders and a cutoff histogram.",
        opts, 1, 1, 1, NULL};
    int rc = lily_cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc != LILY_CLI_OK) return rc == LILY_CLI_EXIT ? 0 : 2;
    LilyContext *ctx = new_ctx();
    if (!ctx) return 1;
    LilyDataset *ds;
    if (lily_dataset_open(ctx, pos[0], &ds) != LILY_OK) {
        fprintf(stderr, "lily-dataset stats: %s\n", lily_context_error(ctx));
        lily_context_free(ctx);
        return 1;
    }
    LilyDatasetCounts c;
    lily_dataset_counts(ds, &c);
    const size_t n = lily_dataset_count(ds, LILY_SPLIT_ALL);
    uint64_t fam[LILY_FILTER_COUNT] = {0}, ord[13] = {0}, hist[24] = {0}, streams = 0;
    double cmin = 1e9, cmax = 0;
    for (size_t i = 0; i < n; i++) {
        LilyDatasetSegment s;
        lily_dataset_get(ds, LILY_SPLIT_ALL, i, &s);
        if (s.low_kind == LILY_LOW_STREAM) {
            streams++;
            continue;
        }
        fam[s.degradation.filter]++;
        if (s.degradation.order >= 0 && s.degradation.order <= 12) ord[s.degradation.order]++;
        int b = (int)(s.degradation.cutoff_hz / 1000.0);
        hist[b < 0 ? 0 : b > 23 ? 23 : b]++;
        cmin = fmin(cmin, s.degradation.cutoff_hz);
        cmax = fmax(cmax, s.degradation.cutoff_hz);
    }
    const size_t ntrain = lily_dataset_count(ds, LILY_SPLIT_TRAIN), nval = lily_dataset_count(ds, LILY_SPLIT_VALIDATION);
    int partial = lily_dataset_source_count(ds) - (int)c.sources;
    if (json) {
        printf("{\"hours\": %.6f, \"segments\": %zu, \"train_segments\": %zu, \"validation_segments\": %zu, "
               "\"sources\": %" PRIu64 ", \"partial_sources\": %d, \"shards\": %" PRIu64 ", \"silent\": %" PRIu64
               ", \"clipped\": %" PRIu64 ", \"short_tails\": %" PRIu64 ", \"stream_low\": %" PRIu64
               ", \"segment_seconds\": %g, \"filters\": {",
               c.seconds / 3600.0, n, ntrain, nval, c.sources, partial, c.shards, c.silent, c.clipped,
               c.short_tails, streams, (double)lily_dataset_samples(ds) / LILY_SAMPLE_RATE);
        for (int f = 0; f < LILY_FILTER_COUNT; f++)
            printf("%s\"%s\": %" PRIu64, f ? ", " : "", lily_filter_name((LilyFilterType)f), fam[f]);
        printf("}, \"orders\": {");
        int first = 1;
        for (int o = 0; o <= 12; o++)
            if (ord[o]) {
                printf("%s\"%d\": %" PRIu64, first ? "" : ", ", o, ord[o]);
                first = 0;
            }
        printf("}, \"cutoff_khz_histogram\": [");
        for (int b = 0; b < 24; b++) printf("%s%" PRIu64, b ? ", " : "", hist[b]);
        printf("]}\n");
    } else {
        char dur[32];
        printf("dataset %s\n", pos[0]);
        printf("  audio        %s (%.3f h) in %zu segments of %.2f s\n",
               lily_cli_format_duration(dur, sizeof dur, c.seconds), c.seconds / 3600.0, n,
               (double)lily_dataset_samples(ds) / LILY_SAMPLE_RATE);
        printf("  split        %zu train, %zu validation segments (by source; %.0f%% of sources held out)\n",
               ntrain, nval, 100.0 * lily_dataset_params(ds)->validation_fraction);
        printf("  sources      %" PRIu64 " complete, %d partial; %" PRIu64 " shards\n", c.sources,
               partial, c.shards);
        printf("  skipped      %" PRIu64 " silent, %" PRIu64 " clipped segments; %" PRIu64 " short tails\n",
               c.silent, c.clipped, c.short_tails);
        if (streams) printf("  low side     %" PRIu64 " segments from a stream (codec pairs)\n", streams);
        if (n > streams) {
            printf("  filters     ");
            for (int f = 0; f < LILY_FILTER_COUNT; f++)
                printf(" %s %" PRIu64, lily_filter_name((LilyFilterType)f), fam[f]);
            printf("\n  orders      ");
            for (int o = 0; o <= 12; o++)
                if (ord[o]) printf(" %d:%" PRIu64, o, ord[o]);
            printf("\n  cutoff       %.0f .. %.0f Hz\n", cmin, cmax);
            uint64_t peak = 1;
            for (int b = 0; b < 24; b++) peak = hist[b] > peak ? hist[b] : peak;
            for (int b = 0; b < 24; b++) {
                if (!hist[b]) continue;
                int w = (int)((40 * hist[b] + peak - 1) / peak);
                printf("    %2d-%2d kHz %6" PRIu64 " %.*s\n", b, b + 1, hist[b], w,
                       "########################################");
            }
        }
    }
    lily_dataset_close(ds);
    lily_context_free(ctx);
    return 0;
}

/* ---- verify ---------------------------------------------------------------------------- */

static void print_line(const char *line, void *user)
{
    (void)user;
    printf("  %s\n", line);
}

static int cmd_verify(int argc, char **argv)
{
    const char *pos[1];
    int n_pos = 0;
    const LilyCliSpec spec = {"lily-dataset verify", "DIR",
        "Opens every shard the index lists, reads every value (all must be finite), compares the\n"
        "index's counts with the shards and lists files the index does not know. Exit status 1\n"
        "when a problem is found.", NULL, 0, 1, 1, NULL};
    int rc = lily_cli_parse(&spec, argc, argv, pos, &n_pos);
    if (rc != LILY_CLI_OK) return rc == LILY_CLI_EXIT ? 0 : 2;
    LilyContext *ctx = new_ctx();
    if (!ctx) return 1;
    int problems = 0;
    printf("verifying %s\n", pos[0]);
    LilyStatus st = lily_dataset_verify(ctx, pos[0], print_line, NULL, &problems);
    lily_context_free(ctx);
    printf("%s: %d problem%s\n", st == LILY_OK && problems == 0 ? "OK" : "FAILED", problems,
           problems == 1 ? "" : "s");
    return st == LILY_OK && problems == 0 ? 0 : 1;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: lily-dataset COMMAND [options]\n\n"
               "Commands:\n"
               "  make    --config config.yaml --out DIR FILES/FOLDERS...   make or extend a dataset\n"
               "  stats   DIR [--json]                                      hours, segments, histograms\n"
               "  verify  DIR                                               check every shard and the index\n\n"
               "lily-dataset COMMAND --help shows a command's options. Datasets: docs/datasets.md.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("lily-dataset (Lily) %s\n", LILY_VERSION_STRING);
        return 0;
    }
    if (strcmp(argv[1], "make") == 0) {
        gst_init(&argc, &argv);
        return cmd_make(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "stats") == 0) return cmd_stats(argc - 1, argv + 1);
    if (strcmp(argv[1], "verify") == 0) return cmd_verify(argc - 1, argv + 1);
    fprintf(stderr, "lily-dataset: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
