/* gstlilytrainsink.c - GstLilyTrainSink (`lilytrainsink`): the GStreamer front of Lily's
 * dataset writer (engine/train, <lily/dataset.h>). It turns a 48 kHz stream into AudioSR-style
 * (low, high) training pairs: fixed-length segments, the low side drawn per segment from
 * AudioSR's randomized IIR low-pass (audiosr/lowpass.py, spec.md 3c) or taken from a second,
 * already degraded stream, both sides' log-mel (spec.md 3a), written to safetensors shards
 * with an index, atomically. This file owns the streaming: settings, caps, the source's URI,
 * the optional `low` request pad and its alignment, back-pressure between the two pads, EOS,
 * flushes and errors.
 */

/**
 * SECTION:element-lilytrainsink
 * @title: lilytrainsink
 * @short_description: write AudioSR-style training pairs into a Lily dataset
 *
 * lilytrainsink cuts its input into segments of `segment-duration` every `hop-duration` and
 * appends them to the dataset folder `location` (created if missing): shard files
 * `shard-NNNNN.safetensors` holding for each segment the 48 kHz high side, the low side and
 * both log-mels, and `index.json` (docs/datasets.md). Silent segments (RMS below
 * data.min_rms_db) and clipped ones are skipped and counted. Settings come from `config` (a
 * Lily config.yaml, its `data` section) and are overridden by the properties set explicitly.
 *
 * The low side: by default each segment is low-passed as AudioSR trains, with a filter family,
 * order and cutoff drawn from (seed, source URI, segment index), so the same seed gives the
 * same shards. When the `low` request pad is linked, the low side is that stream instead (a
 * codec round trip made upstream: lamemp3enc, opusenc, a telephone band...), placed by its
 * running time against the main stream and then re-aligned by cross-correlation within
 * `low-max-delay` (an MP3 encoder and decoder add 1105 samples the timestamps do not show);
 * `low-description` is recorded. Put a `queue` on each branch of the tee that feeds the two
 * pads: the element holds one pad while the other is more than 10 s behind, and at EOS it
 * waits (up to 30 s) for the low stream to end.
 *
 * Input: `audio/x-raw, format=F32LE, rate=48000, layout=interleaved`, any channel count;
 * several channels are averaged to mono (channels of one recording are near copies, and all
 * of a source must stay on one side of the train/validation split anyway). Put `audioconvert
 * ! audioresample` in front for anything else.
 *
 * The source: `source-uri` names it in the index (its draws and its split depend on it);
 * when unset the element asks upstream (the URI query that filesrc and uridecodebin answer),
 * then uses a `location` tag, then the stream id. A source the index already lists as
 * complete is skipped (render returns EOS at once), so re-running a job appends only what is
 * missing; a source a killed job left partial is redone from its start.
 *
 * End of stream ends the source; with `flush-on-eos` (default) the pending segments are
 * written as a last, shorter shard, otherwise they wait for the next source (lily-dataset
 * reuses one element over many files this way and closes it at READY->NULL). A stop before
 * EOS abandons the source (it stays partial). Write failures post
 * `GST_RESOURCE_ERROR_NO_SPACE_LEFT` (disk full) or `GST_RESOURCE_ERROR_WRITE`; every shard
 * written before stays valid. Each shard written posts an element message
 * `lilytrainsink-shard`, each source ended `lilytrainsink-source` (uri, segments, silent,
 * clipped, short-tails, skipped). `GST_DEBUG=lily*:5` logs every segment's draw and level.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 uridecodebin uri=file:///music/a.flac ! audioconvert ! audioresample ! \
 *     lilytrainsink location=/data/set config=config.yaml
 * ]| One file into a dataset with the config's degradation mix.
 * |[
 * gst-launch-1.0 -e uridecodebin uri=file:///music/a.flac ! audioconvert ! audioresample ! \
 *     audio/x-raw,format=F32LE,rate=48000,channels=1 ! tee name=t \
 *     t. ! queue ! lilytrainsink name=s location=/data/mp3 low-description="mp3 64k" \
 *     t. ! queue ! audioconvert ! lamemp3enc bitrate=64 ! mpegaudioparse ! mpg123audiodec ! \
 *         audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000 ! s.low
 * ]| MP3 pairs: the low side is a 64 kbit/s round trip (pipelines/codec-pairs.sh).
 */
#include <math.h>
#include <string.h>

#include <gst/audio/audio.h>
#include <lily/dataset.h>

#include "gstlily.h"
#include "gstlilytrainsink.h"

GST_DEBUG_CATEGORY_STATIC(gst_lily_train_sink_debug);
#define GST_CAT_DEFAULT gst_lily_train_sink_debug

#define DEFAULT_LOW_MAX_DELAY (100 * GST_MSECOND)
#define MAX_AHEAD_SAMPLES (10 * 48000)       /* back-pressure between the two pads */
#define LOW_EOS_WAIT (30 * G_TIME_SPAN_SECOND)
#define LOW_TOLERANCE 240                    /* 5 ms: timestamp jitter that is not a gap */

enum {
    PROP_0,
    PROP_LOCATION,
    PROP_CONFIG,
    PROP_SEGMENT_DURATION,
    PROP_HOP_DURATION,
    PROP_SEED,
    PROP_SOURCE_URI,
    PROP_SHARD_SEGMENTS,
    PROP_FILTERS,
    PROP_ORDER_MIN,
    PROP_ORDER_MAX,
    PROP_CUTOFF_MIN,
    PROP_CUTOFF_MAX,
    PROP_LOW_DESCRIPTION,
    PROP_LOW_MAX_DELAY,
    PROP_FLUSH_ON_EOS,
    PROP_SEGMENTS,
    PROP_SKIPPED,
    PROP_SHARDS,
};

/* Properties (object lock). A numeric override of 0 means "from config / defaults". */
typedef struct Settings {
    gchar *location, *config, *source_uri, *filters, *low_description;
    guint64 segment_duration, hop_duration, seed, low_max_delay;
    gboolean seed_set, flush_on_eos;
    gint shard_segments, order_min, order_max;
    gdouble cutoff_min, cutoff_max;
} Settings;

struct _GstLilyTrainSink {
    GstBaseSink parent;
    Settings settings;

    /* Everything below: self->lock. */
    GMutex lock;
    GCond cond;
    LilyContext *ctx;
    LilyDatasetWriter *writer;
    gchar *writer_location;
    LilyDatasetParams writer_params;
    guint channels;
    gboolean source_open, skipping, flushing, main_eos;
    GstClockTime main_t0; /* running time of the source's first main sample */
    gchar *tag_uri, *stream_id;
    gchar *current_uri;   /* the source being written */
    float *scratch;
    gsize scratch_len;
    guint64 segments_seen, shards_seen;

    GstPad *lowpad;
    gboolean low_active;  /* the current source takes its low side from lowpad */
    guint low_channels;
    GstSegment low_segment;
    gboolean low_eos, low_flushing;
    gint64 low_pos;       /* low samples given to the writer, in main-stream samples */
    GQueue low_queue;     /* low buffers that came before the main stream started */
    guint64 low_queued;   /* samples in low_queue */
};

G_DEFINE_TYPE_WITH_CODE(GstLilyTrainSink, gst_lily_train_sink, GST_TYPE_BASE_SINK,
                        GST_DEBUG_CATEGORY_INIT(gst_lily_train_sink_debug, "lilytrainsink", 0,
                                                "Lily training-data sink");
                        gst_lily_debug_init());
GST_ELEMENT_REGISTER_DEFINE(lilytrainsink, "lilytrainsink", GST_RANK_NONE,
                            GST_TYPE_LILY_TRAIN_SINK);

#define AUDIO_CAPS                                                                             \
    "audio/x-raw, format = (string) F32LE, rate = (int) 48000, channels = (int) [ 1, MAX ], "  \
    "layout = (string) interleaved"

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(AUDIO_CAPS));
static GstStaticPadTemplate low_template =
    GST_STATIC_PAD_TEMPLATE("low", GST_PAD_SINK, GST_PAD_REQUEST, GST_STATIC_CAPS(AUDIO_CAPS));

/* ---- errors ----------------------------------------------------------------------------- */

/* Posts the engine's failure as an element error; disk full and write failures are RESOURCE
 * errors, the rest STREAM errors. Called without self->lock. */
static void post_engine_error(GstLilyTrainSink *self, LilyStatus st, const char *msg,
                              const char *what)
{
    if (st == LILY_ERR_DISK_FULL)
        GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT,
                          ("No space left writing the dataset: %s", what),
                          ("%s (earlier shards are intact; free space and run again to append)",
                           msg));
    else if (st == LILY_ERR_IO)
        GST_ELEMENT_ERROR(self, RESOURCE, WRITE, ("Could not write the dataset: %s", what), ("%s", msg));
    else if (st == LILY_ERR_INVALID_ARGUMENT)
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Bad dataset settings: %s", what), ("%s", msg));
    else
        GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Could not make training pairs: %s", what),
                          ("%s: %s", lily_status_name(st), msg));
}

/* ---- settings --------------------------------------------------------------------------- */

static LilyStatus settings_to_params(GstLilyTrainSink *self, LilyDatasetParams *p, gchar **dir)
{
    Settings *s = &self->settings;
    char cfg_dir[4096] = "";
    lily_dataset_params_init(p);
    GST_OBJECT_LOCK(self);
    gchar *config = g_strdup(s->config), *location = g_strdup(s->location);
    gchar *filters = g_strdup(s->filters);
    Settings v = *s;
    GST_OBJECT_UNLOCK(self);
    LilyStatus st = LILY_OK;
    if (config && config[0]) st = lily_dataset_params_load(self->ctx, config, p, cfg_dir, sizeof cfg_dir);
    if (st == LILY_OK && v.segment_duration) {
        /* A new segment length keeps the config's overlap ratio unless the hop is set too. */
        double ratio = p->hop_seconds / p->segment_seconds;
        p->segment_seconds = (double)v.segment_duration / GST_SECOND;
        p->hop_seconds = p->segment_seconds * ratio;
    }
    if (st == LILY_OK && v.hop_duration) p->hop_seconds = (double)v.hop_duration / GST_SECOND;
    if (v.seed_set) p->seed = v.seed;
    if (v.shard_segments) p->shard_segments = v.shard_segments;
    if (v.order_min) p->degradation.order_min = v.order_min;
    if (v.order_max) p->degradation.order_max = v.order_max;
    if (v.cutoff_min > 0) p->degradation.cutoff_min_hz = v.cutoff_min;
    if (v.cutoff_max > 0) p->degradation.cutoff_max_hz = v.cutoff_max;
    if (st == LILY_OK && filters && filters[0])
        st = lily_dataset_filters_parse(self->ctx, filters, &p->degradation.filters);
    if (st == LILY_OK) st = lily_dataset_params_validate(self->ctx, p);
    *dir = location && location[0] ? g_strdup(location) : cfg_dir[0] ? g_strdup(cfg_dir) : NULL;
    g_free(config);
    g_free(location);
    g_free(filters);
    return st;
}

/* Creates the context and opens (or keeps) the writer. Called from start() without
 * self->lock: no streaming thread runs then, and errors are posted with no lock held (a bus
 * sync handler may call back into the element). The pointers are published under the lock. */
static gboolean engine_open(GstLilyTrainSink *self)
{
    if (!self->ctx) {
        LilyContextParams cp;
        lily_context_params_init(&cp);
        cp.n_threads = 1; /* filtering and two mels per segment: one core is plenty */
        cp.log = gst_lily_engine_log;
        cp.log_user_data = self;
        GstDebugLevel lvl = gst_debug_category_get_threshold(gst_lily_engine_debug);
        cp.log_level = lvl >= GST_LEVEL_DEBUG ? LILY_LOG_DEBUG
                       : lvl >= GST_LEVEL_INFO ? LILY_LOG_INFO
                                               : LILY_LOG_WARNING;
        if (!gst_lily_context_new(GST_ELEMENT(self), &cp, &self->ctx)) return FALSE;
    }
    LilyDatasetParams p;
    gchar *dir = NULL;
    LilyStatus st = settings_to_params(self, &p, &dir);
    if (st != LILY_OK) {
        g_free(dir);
        post_engine_error(self, st, lily_context_error(self->ctx), "check the properties and config");
        return FALSE;
    }
    if (!dir) {
        GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("No dataset folder given"),
                          ("set the location property (or data.dir in config)"));
        return FALSE;
    }
    /* A writer kept open across pipelines (flush-on-eos=false) is reused when nothing that
     * shapes the dataset changed. */
    if (self->writer && (g_strcmp0(dir, self->writer_location) != 0 ||
                         memcmp(&p, &self->writer_params, sizeof p) != 0)) {
        GST_INFO_OBJECT(self, "settings changed: closing the dataset in %s", self->writer_location);
        g_mutex_lock(&self->lock);
        LilyDatasetWriter *old = self->writer;
        self->writer = NULL;
        g_mutex_unlock(&self->lock);
        st = lily_dataset_writer_close(old);
        if (st != LILY_OK) {
            g_free(dir);
            post_engine_error(self, st, lily_context_error(self->ctx), "closing the previous folder");
            return FALSE;
        }
    }
    if (!self->writer) {
        LilyDatasetWriter *w = NULL;
        st = lily_dataset_writer_open(self->ctx, dir, &p, &w);
        g_mutex_lock(&self->lock);
        self->writer = w;
        g_mutex_unlock(&self->lock);
        if (st != LILY_OK) {
            if (st == LILY_ERR_IO)
                GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE, ("Could not open the dataset folder %s", dir),
                                  ("%s", lily_context_error(self->ctx)));
            else
                post_engine_error(self, st, lily_context_error(self->ctx), dir);
            g_free(dir);
            return FALSE;
        }
        g_free(self->writer_location);
        self->writer_location = dir;
        self->writer_params = p;
        GST_INFO_OBJECT(self, "dataset %s: segment %.2f s, hop %.2f s, %d segments per shard, seed %"
                        G_GUINT64_FORMAT, dir, p.segment_seconds, p.hop_seconds, p.shard_segments,
                        p.seed);
    } else {
        g_free(dir);
    }
    return TRUE;
}

/* Closes the writer (writing what is pending). Returns FALSE after posting an error. Called
 * without self->lock, when no streaming thread runs. */
static gboolean engine_close(GstLilyTrainSink *self)
{
    g_mutex_lock(&self->lock);
    LilyDatasetWriter *w = self->writer;
    self->writer = NULL;
    g_mutex_unlock(&self->lock);
    if (!w) return TRUE;
    LilyDatasetCounts c;
    lily_dataset_writer_counts(w, &c);
    LilyStatus st = lily_dataset_writer_close(w);
    if (st != LILY_OK) {
        post_engine_error(self, st, lily_context_error(self->ctx), "writing the last shard");
        return FALSE;
    }
    GST_INFO_OBJECT(self, "dataset %s closed: %" G_GUINT64_FORMAT " shards, %" G_GUINT64_FORMAT
                    " segments in all", self->writer_location, c.shards + (c.pending ? 1 : 0),
                    c.segments);
    return TRUE;
}

/* ---- sources ---------------------------------------------------------------------------- */

static gchar *upstream_uri(GstLilyTrainSink *self)
{
    GstQuery *q = gst_query_new_uri();
    gchar *uri = NULL;
    if (gst_pad_peer_query(GST_BASE_SINK_PAD(self), q)) gst_query_parse_uri(q, &uri);
    gst_query_unref(q);
    return uri;
}

static void post_counts(GstLilyTrainSink *self, const char *name, const char *uri,
                        gboolean skipped)
{
    LilyDatasetCounts c;
    g_mutex_lock(&self->lock);
    if (!self->writer) {
        g_mutex_unlock(&self->lock);
        return;
    }
    lily_dataset_writer_counts(self->writer, &c);
    g_mutex_unlock(&self->lock);
    GstStructure *s = gst_structure_new(name, "segments", G_TYPE_UINT64, c.segments,
                                        "segments-run", G_TYPE_UINT64, c.segments_run,
                                        "shards", G_TYPE_UINT64, c.shards,
                                        "silent", G_TYPE_UINT64, c.silent,
                                        "clipped", G_TYPE_UINT64, c.clipped,
                                        "short-tails", G_TYPE_UINT64, c.short_tails,
                                        "skipped", G_TYPE_BOOLEAN, skipped, NULL);
    if (uri) gst_structure_set(s, "uri", G_TYPE_STRING, uri, NULL);
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

/* Posts a shard message for each shard written since the last call. Without self->lock. */
static void post_new_shards(GstLilyTrainSink *self)
{
    g_mutex_lock(&self->lock);
    LilyDatasetCounts c = {0};
    if (self->writer) lily_dataset_writer_counts(self->writer, &c);
    gboolean news = self->writer && c.shards_run > self->shards_seen;
    self->shards_seen = c.shards_run;
    g_mutex_unlock(&self->lock);
    if (news) post_counts(self, "lilytrainsink-shard", NULL, FALSE);
}

/* Averages `n` frames of `ch` interleaved channels into self->scratch (grown as needed): the
 * dataset writer takes mono. self->lock held (the scratch is shared by both pads). */
static void downmix_to_scratch(GstLilyTrainSink *self, const float *x, gsize n, guint ch)
{
    if (self->scratch_len < n) {
        self->scratch = g_renew(float, self->scratch, n);
        self->scratch_len = n;
    }
    for (gsize i = 0; i < n; i++) {
        float acc = 0;
        for (guint c = 0; c < ch; c++) acc += x[i * ch + c];
        self->scratch[i] = acc / (float)ch;
    }
}

/* Pushes one low buffer placed by its running time. self->lock held. */
static LilyStatus push_low_buffer(GstLilyTrainSink *self, GstBuffer *buf, GstClockTime rt)
{
    GstMapInfo map;
    if (!gst_buffer_map(buf, &map, GST_MAP_READ)) return LILY_OK;
    const guint ch = self->low_channels ? self->low_channels : 1;
    gsize n = map.size / (sizeof(float) * ch);
    /* Copied even when mono: the buffer is unmapped before the samples are used. */
    downmix_to_scratch(self, (const float *)map.data, n, ch);
    gst_buffer_unmap(buf, &map);
    const float *y = self->scratch;
    LilyStatus st = LILY_OK;
    if (GST_CLOCK_TIME_IS_VALID(rt) && GST_CLOCK_TIME_IS_VALID(self->main_t0)) {
        gint64 pos = (gint64)gst_util_uint64_scale_round(rt > self->main_t0 ? rt - self->main_t0 : 0,
                                                         48000, GST_SECOND);
        if (rt < self->main_t0)
            pos = -(gint64)gst_util_uint64_scale_round(self->main_t0 - rt, 48000, GST_SECOND);
        if (pos > self->low_pos + LOW_TOLERANCE) {
            gint64 gap = pos - self->low_pos;
            GST_DEBUG_OBJECT(self, "low stream: %" G_GINT64_FORMAT " samples of gap filled with silence", gap);
            float zeros[1024] = {0};
            while (gap > 0 && st == LILY_OK) {
                gsize k = gap > 1024 ? 1024 : (gsize)gap;
                st = lily_dataset_writer_push_low(self->writer, zeros, k);
                gap -= (gint64)k;
                self->low_pos += (gint64)k;
            }
        } else if (pos < self->low_pos - LOW_TOLERANCE) {
            gint64 drop = MIN((gint64)n, self->low_pos - pos);
            GST_DEBUG_OBJECT(self, "low stream: %" G_GINT64_FORMAT " samples before the main "
                             "stream's position dropped", drop);
            y += drop;
            n -= (gsize)drop;
        }
    }
    if (st == LILY_OK && n) {
        st = lily_dataset_writer_push_low(self->writer, y, n);
        self->low_pos += (gint64)n;
    }
    return st;
}

static LilyStatus drain_low_queue(GstLilyTrainSink *self)
{
    LilyStatus st = LILY_OK;
    GstBuffer *b;
    while ((b = g_queue_pop_head(&self->low_queue)) != NULL) {
        GstClockTime rt = GST_BUFFER_OFFSET(b); /* stored running time, see low_chain */
        if (st == LILY_OK && !self->skipping && self->low_active) st = push_low_buffer(self, b, rt);
        gst_buffer_unref(b);
    }
    self->low_queued = 0;
    return st;
}

/* Starts the source at the first main buffer. self->lock held; uri decided by the caller. */
static LilyStatus begin_source(GstLilyTrainSink *self, const gchar *uri, GstClockTime t0)
{
    GST_OBJECT_LOCK(self);
    gchar *desc = g_strdup(self->settings.low_description);
    guint64 max_delay = self->settings.low_max_delay;
    GST_OBJECT_UNLOCK(self);
    LilyLowStream low = {desc && desc[0] ? desc : "stream",
                         (int)gst_util_uint64_scale(max_delay, 48000, GST_SECOND)};
    int complete = 0;
    /* A requested but unlinked low pad feeds nothing: the built-in low-pass applies. */
    self->low_active = self->lowpad && gst_pad_is_linked(self->lowpad);
    LilyStatus st = lily_dataset_writer_begin_source(self->writer, uri, self->low_active ? &low : NULL,
                                                     &complete);
    g_free(desc);
    if (st != LILY_OK) return st;
    self->source_open = TRUE;
    self->skipping = complete;
    g_free(self->current_uri);
    self->current_uri = g_strdup(uri);
    self->main_t0 = t0;
    self->low_pos = 0;
    GST_INFO_OBJECT(self, "source %s: %s", uri,
                    complete ? "already complete in the dataset, skipped"
                             : self->low_active ? "low side from the low pad" : "randomized low-pass");
    return drain_low_queue(self);
}

/* Ends the current source. self->lock held. */
static LilyStatus end_source(GstLilyTrainSink *self)
{
    LilyStatus st = LILY_OK;
    if (self->writer && self->source_open) st = lily_dataset_writer_end_source(self->writer);
    self->source_open = FALSE;
    self->skipping = FALSE;
    self->main_t0 = GST_CLOCK_TIME_NONE;
    return st;
}

static gchar *source_uri_for_stream(GstLilyTrainSink *self)
{
    GST_OBJECT_LOCK(self);
    gchar *uri = g_strdup(self->settings.source_uri);
    GST_OBJECT_UNLOCK(self);
    if (uri && uri[0]) return uri;
    g_free(uri);
    uri = upstream_uri(self);
    if (uri) return uri;
    g_mutex_lock(&self->lock);
    if (self->tag_uri)
        uri = g_strdup(self->tag_uri);
    else if (self->stream_id)
        uri = g_strdup_printf("stream-id:%s", self->stream_id);
    g_mutex_unlock(&self->lock);
    if (!uri) {
        uri = g_strdup("stream:unnamed");
        GST_WARNING_OBJECT(self, "no source URI (no source-uri property, no URI query answer, no "
                           "location tag, no stream id): using %s", uri);
    }
    return uri;
}

/* ---- the main pad ----------------------------------------------------------------------- */

static gboolean gst_lily_train_sink_set_caps(GstBaseSink *sink, GstCaps *caps)
{
    GstLilyTrainSink *self = GST_LILY_TRAIN_SINK(sink);
    GstAudioInfo info;
    if (!gst_audio_info_from_caps(&info, caps)) return FALSE;
    g_mutex_lock(&self->lock);
    self->channels = (guint)GST_AUDIO_INFO_CHANNELS(&info);
    g_mutex_unlock(&self->lock);
    GST_DEBUG_OBJECT(self, "caps: %u channel(s)%s", GST_AUDIO_INFO_CHANNELS(&info),
                     GST_AUDIO_INFO_CHANNELS(&info) > 1 ? ", averaged to mono" : "");
    return TRUE;
}

static GstFlowReturn gst_lily_train_sink_render(GstBaseSink *sink, GstBuffer *buf)
{
    GstLilyTrainSink *self = GST_LILY_TRAIN_SINK(sink);
    gchar *uri = NULL;
    g_mutex_lock(&self->lock);
    gboolean need_source = !self->source_open;
    g_mutex_unlock(&self->lock);
    if (need_source) uri = source_uri_for_stream(self);

    g_mutex_lock(&self->lock);
    LilyStatus st = LILY_OK;
    if (!self->writer) {
        g_mutex_unlock(&self->lock);
        g_free(uri);
        return GST_FLOW_FLUSHING;
    }
    if (!self->source_open) {
        GstClockTime t0 = GST_BUFFER_PTS_IS_VALID(buf)
                              ? gst_segment_to_running_time(&sink->segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buf))
                              : GST_CLOCK_TIME_NONE;
        st = begin_source(self, uri, t0);
    }
    g_free(uri);
    if (st == LILY_OK && self->skipping) {
        g_mutex_unlock(&self->lock);
        return GST_FLOW_EOS; /* nothing of this source is needed: let upstream stop */
    }
    GstMapInfo map;
    if (st == LILY_OK && gst_buffer_map(buf, &map, GST_MAP_READ)) {
        const guint ch = self->channels ? self->channels : 1;
        const gsize n = map.size / (sizeof(float) * ch);
        const float *x = (const float *)map.data;
        if (ch > 1) {
            downmix_to_scratch(self, x, n, ch);
            x = self->scratch;
        }
        st = lily_dataset_writer_push(self->writer, x, n);
        gst_buffer_unmap(buf, &map);
    }
    /* Back-pressure: wait while the main side is far ahead of the low side. */
    while (st == LILY_OK && self->low_active && !self->low_eos && !self->flushing) {
        gint64 high_ahead, low_ahead;
        lily_dataset_writer_buffered(self->writer, &high_ahead, &low_ahead);
        if (high_ahead <= MAX_AHEAD_SAMPLES) break;
        g_cond_wait(&self->cond, &self->lock);
    }
    g_cond_broadcast(&self->cond);
    gboolean flushing = self->flushing;
    g_mutex_unlock(&self->lock);
    if (st != LILY_OK) {
        post_engine_error(self, st, lily_context_error(self->ctx), "while writing segments");
        return GST_FLOW_ERROR;
    }
    post_new_shards(self);
    return flushing ? GST_FLOW_FLUSHING : GST_FLOW_OK;
}

/* Raises or clears the flushing flag (FLUSH_START, unlock, unlock_stop); raising it wakes
 * every wait on the lock so the streaming threads see it. */
static void set_flushing(GstLilyTrainSink *self, gboolean flushing)
{
    g_mutex_lock(&self->lock);
    self->flushing = flushing;
    if (flushing) g_cond_broadcast(&self->cond);
    g_mutex_unlock(&self->lock);
}

static gboolean gst_lily_train_sink_event(GstBaseSink *sink, GstEvent *event)
{
    GstLilyTrainSink *self = GST_LILY_TRAIN_SINK(sink);
    switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_STREAM_START: {
        const gchar *sid = NULL;
        gst_event_parse_stream_start(event, &sid);
        g_mutex_lock(&self->lock);
        LilyStatus st = LILY_OK;
        if (self->source_open) {
            GST_INFO_OBJECT(self, "new stream %s: ending the current source", sid);
            st = end_source(self);
        }
        g_free(self->stream_id);
        self->stream_id = g_strdup(sid);
        g_free(self->tag_uri);
        self->tag_uri = NULL;
        g_mutex_unlock(&self->lock);
        if (st != LILY_OK) {
            post_engine_error(self, st, lily_context_error(self->ctx), "ending a source");
            gst_event_unref(event);
            return FALSE;
        }
        break;
    }
    case GST_EVENT_TAG: {
        GstTagList *tags = NULL;
        gchar *loc = NULL;
        gst_event_parse_tag(event, &tags);
        if (tags && gst_tag_list_get_string(tags, GST_TAG_LOCATION, &loc)) {
            g_mutex_lock(&self->lock);
            g_free(self->tag_uri);
            self->tag_uri = loc;
            g_mutex_unlock(&self->lock);
        }
        break;
    }
    case GST_EVENT_EOS: {
        g_mutex_lock(&self->lock);
        self->main_eos = TRUE;
        g_cond_broadcast(&self->cond);
        gint64 deadline = g_get_monotonic_time() + LOW_EOS_WAIT;
        while (self->low_active && self->source_open && !self->skipping && !self->low_eos &&
               !self->flushing) {
            if (!g_cond_wait_until(&self->cond, &self->lock, deadline)) {
                GST_WARNING_OBJECT(self, "the low stream did not end within 30 s of the main "
                                   "stream: its missing end is taken as silence (is there a "
                                   "queue on each tee branch?)");
                break;
            }
        }
        LilyStatus st = LILY_OK;
        gchar *uri = NULL;
        gboolean skipped = self->skipping;
        if (self->source_open && self->writer) {
            st = drain_low_queue(self);
            if (st == LILY_OK) st = end_source(self);
        }
        GST_OBJECT_LOCK(self);
        gboolean flush = self->settings.flush_on_eos;
        GST_OBJECT_UNLOCK(self);
        uri = g_strdup(self->current_uri);
        if (st == LILY_OK && flush && self->writer) st = lily_dataset_writer_flush(self->writer);
        g_mutex_unlock(&self->lock);
        if (st != LILY_OK) {
            post_engine_error(self, st, lily_context_error(self->ctx), "at the end of the stream");
            g_free(uri);
            gst_event_unref(event);
            return FALSE;
        }
        post_new_shards(self);
        post_counts(self, "lilytrainsink-source", uri, skipped);
        g_free(uri);
        break;
    }
    case GST_EVENT_FLUSH_START:
        set_flushing(self, TRUE);
        break;
    case GST_EVENT_FLUSH_STOP:
        g_mutex_lock(&self->lock);
        self->flushing = FALSE;
        /* A seek breaks the source's continuity: what came so far cannot be trusted as one
         * recording, so the source is abandoned and redone by a later run. */
        if (self->source_open && self->writer) {
            GST_INFO_OBJECT(self, "flush: abandoning the current source");
            lily_dataset_writer_abort_source(self->writer);
            self->source_open = FALSE;
        }
        g_mutex_unlock(&self->lock);
        break;
    default:
        break;
    }
    return GST_BASE_SINK_CLASS(gst_lily_train_sink_parent_class)->event(sink, event);
}

static gboolean gst_lily_train_sink_unlock(GstBaseSink *sink)
{
    set_flushing(GST_LILY_TRAIN_SINK(sink), TRUE);
    return TRUE;
}

static gboolean gst_lily_train_sink_unlock_stop(GstBaseSink *sink)
{
    set_flushing(GST_LILY_TRAIN_SINK(sink), FALSE);
    return TRUE;
}

static gboolean gst_lily_train_sink_start(GstBaseSink *sink)
{
    GstLilyTrainSink *self = GST_LILY_TRAIN_SINK(sink);
    g_mutex_lock(&self->lock);
    self->flushing = FALSE;
    self->main_eos = FALSE;
    self->low_eos = FALSE;
    self->low_flushing = FALSE;
    self->source_open = FALSE;
    self->main_t0 = GST_CLOCK_TIME_NONE;
    g_mutex_unlock(&self->lock);
    gboolean ok = engine_open(self);
    g_mutex_lock(&self->lock);
    if (ok) {
        LilyDatasetCounts c;
        lily_dataset_writer_counts(self->writer, &c);
        self->shards_seen = c.shards_run;
    }
    g_mutex_unlock(&self->lock);
    return ok;
}

static gboolean gst_lily_train_sink_stop(GstBaseSink *sink)
{
    GstLilyTrainSink *self = GST_LILY_TRAIN_SINK(sink);
    g_mutex_lock(&self->lock);
    if (self->source_open && self->writer) {
        GST_INFO_OBJECT(self, "stopped before the end of the stream: the source stays partial");
        lily_dataset_writer_abort_source(self->writer);
    }
    self->source_open = FALSE;
    self->skipping = FALSE;
    GstBuffer *b;
    while ((b = g_queue_pop_head(&self->low_queue)) != NULL) gst_buffer_unref(b);
    self->low_queued = 0;
    GST_OBJECT_LOCK(self);
    gboolean flush = self->settings.flush_on_eos;
    GST_OBJECT_UNLOCK(self);
    g_mutex_unlock(&self->lock);
    /* With flush-on-eos the folder is released at once (another job may use it); otherwise
     * the writer waits for the next source or READY->NULL. */
    return flush ? engine_close(self) : TRUE;
}

/* ---- the low pad ------------------------------------------------------------------------ */

static GstFlowReturn low_chain(GstPad *pad, GstObject *parent, GstBuffer *buf)
{
    (void)pad;
    GstLilyTrainSink *self = GST_LILY_TRAIN_SINK(parent);
    GstClockTime rt = GST_BUFFER_PTS_IS_VALID(buf)
                          ? gst_segment_to_running_time(&self->low_segment, GST_FORMAT_TIME,
                                                        GST_BUFFER_PTS(buf))
                          : GST_CLOCK_TIME_NONE;
    const gsize bytes = gst_buffer_get_size(buf);
    g_mutex_lock(&self->lock);
    if (self->low_flushing) {
        g_mutex_unlock(&self->lock);
        gst_buffer_unref(buf);
        return GST_FLOW_FLUSHING;
    }
    LilyStatus st = LILY_OK;
    GstFlowReturn ret = GST_FLOW_OK;
    if (self->source_open && self->skipping) {
        ret = GST_FLOW_EOS;
    } else if (self->source_open && !self->low_active) {
        GST_LOG_OBJECT(self, "low pad linked after the source began: buffer dropped");
    } else if (!self->source_open || !self->writer) {
        /* The main stream has not started: keep it (its running time in OFFSET) until it does. */
        if (self->main_eos) {
            gst_buffer_unref(buf);
            g_mutex_unlock(&self->lock);
            return GST_FLOW_EOS;
        }
        GstBuffer *w = gst_buffer_make_writable(buf);
        GST_BUFFER_OFFSET(w) = rt;
        g_queue_push_tail(&self->low_queue, w);
        buf = NULL;
        self->low_queued += bytes / (sizeof(float) * (self->low_channels ? self->low_channels : 1));
        while (self->low_queued > MAX_AHEAD_SAMPLES && !self->source_open && !self->low_flushing &&
               !self->flushing && !self->main_eos)
            g_cond_wait(&self->cond, &self->lock);
    } else {
        st = push_low_buffer(self, buf, rt);
        while (st == LILY_OK && !self->main_eos && !self->low_flushing && !self->flushing &&
               self->source_open) {
            gint64 high_ahead, low_ahead;
            lily_dataset_writer_buffered(self->writer, &high_ahead, &low_ahead);
            if (low_ahead <= MAX_AHEAD_SAMPLES) break;
            g_cond_wait(&self->cond, &self->lock);
        }
    }
    g_cond_broadcast(&self->cond);
    if (self->low_flushing && ret == GST_FLOW_OK) ret = GST_FLOW_FLUSHING;
    g_mutex_unlock(&self->lock);
    if (buf) gst_buffer_unref(buf);
    if (st != LILY_OK) {
        post_engine_error(self, st, lily_context_error(self->ctx), "while writing segments");
        return GST_FLOW_ERROR;
    }
    post_new_shards(self);
    return ret;
}

static gboolean low_event(GstPad *pad, GstObject *parent, GstEvent *event)
{
    GstLilyTrainSink *self = GST_LILY_TRAIN_SINK(parent);
    switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
        GstCaps *caps;
        GstAudioInfo info;
        gst_event_parse_caps(event, &caps);
        gboolean ok = gst_audio_info_from_caps(&info, caps);
        if (ok) {
            g_mutex_lock(&self->lock);
            self->low_channels = (guint)GST_AUDIO_INFO_CHANNELS(&info);
            g_mutex_unlock(&self->lock);
        }
        gst_event_unref(event);
        return ok;
    }
    case GST_EVENT_SEGMENT: {
        const GstSegment *seg;
        gst_event_parse_segment(event, &seg);
        g_mutex_lock(&self->lock);
        if (seg->format == GST_FORMAT_TIME)
            gst_segment_copy_into(seg, &self->low_segment);
        else
            gst_segment_init(&self->low_segment, GST_FORMAT_TIME);
        g_mutex_unlock(&self->lock);
        gst_event_unref(event);
        return TRUE;
    }
    case GST_EVENT_EOS:
        g_mutex_lock(&self->lock);
        self->low_eos = TRUE;
        GST_DEBUG_OBJECT(self, "low stream ended after %" G_GINT64_FORMAT " samples", self->low_pos);
        g_cond_broadcast(&self->cond);
        g_mutex_unlock(&self->lock);
        gst_event_unref(event);
        return TRUE;
    case GST_EVENT_FLUSH_START:
        g_mutex_lock(&self->lock);
        self->low_flushing = TRUE;
        g_cond_broadcast(&self->cond);
        g_mutex_unlock(&self->lock);
        gst_event_unref(event);
        return TRUE;
    case GST_EVENT_FLUSH_STOP:
        g_mutex_lock(&self->lock);
        self->low_flushing = FALSE;
        self->low_eos = FALSE;
        g_mutex_unlock(&self->lock);
        gst_event_unref(event);
        return TRUE;
    case GST_EVENT_STREAM_START:
        g_mutex_lock(&self->lock);
        self->low_eos = FALSE;
        g_mutex_unlock(&self->lock);
        gst_event_unref(event);
        return TRUE;
    default:
        return gst_pad_event_default(pad, parent, event);
    }
}

static GstPad *gst_lily_train_sink_request_new_pad(GstElement *element, GstPadTemplate *templ,
                                                   const gchar *name, const GstCaps *caps)
{
    (void)name;
    (void)caps;
    GstLilyTrainSink *self = GST_LILY_TRAIN_SINK(element);
    g_mutex_lock(&self->lock);
    if (self->lowpad) {
        g_mutex_unlock(&self->lock);
        GST_WARNING_OBJECT(self, "the low pad is already requested");
        return NULL;
    }
    GstPad *pad = gst_pad_new_from_template(templ, "low");
    gst_pad_set_chain_function(pad, GST_DEBUG_FUNCPTR(low_chain));
    gst_pad_set_event_function(pad, GST_DEBUG_FUNCPTR(low_event));
    GST_PAD_SET_PROXY_ALLOCATION(pad);
    self->lowpad = pad;
    self->low_eos = FALSE;
    self->low_flushing = FALSE;
    gst_segment_init(&self->low_segment, GST_FORMAT_TIME);
    g_mutex_unlock(&self->lock);
    if (GST_STATE(element) > GST_STATE_READY) gst_pad_set_active(pad, TRUE);
    gst_element_add_pad(element, pad);
    GST_INFO_OBJECT(self, "low pad requested: the low side comes from a stream");
    return pad;
}

static void gst_lily_train_sink_release_pad(GstElement *element, GstPad *pad)
{
    GstLilyTrainSink *self = GST_LILY_TRAIN_SINK(element);
    g_mutex_lock(&self->lock);
    if (pad == self->lowpad) self->lowpad = NULL;
    g_cond_broadcast(&self->cond);
    g_mutex_unlock(&self->lock);
    gst_pad_set_active(pad, FALSE);
    gst_element_remove_pad(element, pad);
}

static GstStateChangeReturn gst_lily_train_sink_change_state(GstElement *element,
                                                             GstStateChange transition)
{
    GstLilyTrainSink *self = GST_LILY_TRAIN_SINK(element);
    GstStateChangeReturn ret =
        GST_ELEMENT_CLASS(gst_lily_train_sink_parent_class)->change_state(element, transition);
    if (transition == GST_STATE_CHANGE_READY_TO_NULL) {
        gboolean ok = engine_close(self);
        g_mutex_lock(&self->lock);
        lily_context_free(self->ctx);
        self->ctx = NULL;
        g_mutex_unlock(&self->lock);
        if (!ok) ret = GST_STATE_CHANGE_FAILURE;
    }
    return ret;
}

/* ---- properties ------------------------------------------------------------------------- */

static void gst_lily_train_sink_set_property(GObject *object, guint id, const GValue *value,
                                             GParamSpec *pspec)
{
    GstLilyTrainSink *self = GST_LILY_TRAIN_SINK(object);
    Settings *s = &self->settings;
    GST_OBJECT_LOCK(self);
    switch (id) {
    case PROP_LOCATION: g_free(s->location); s->location = g_value_dup_string(value); break;
    case PROP_CONFIG: g_free(s->config); s->config = g_value_dup_string(value); break;
    case PROP_SEGMENT_DURATION: s->segment_duration = g_value_get_uint64(value); break;
    case PROP_HOP_DURATION: s->hop_duration = g_value_get_uint64(value); break;
    case PROP_SEED: s->seed = g_value_get_uint64(value); s->seed_set = TRUE; break;
    case PROP_SOURCE_URI: g_free(s->source_uri); s->source_uri = g_value_dup_string(value); break;
    case PROP_SHARD_SEGMENTS: s->shard_segments = g_value_get_int(value); break;
    case PROP_FILTERS: g_free(s->filters); s->filters = g_value_dup_string(value); break;
    case PROP_ORDER_MIN: s->order_min = g_value_get_int(value); break;
    case PROP_ORDER_MAX: s->order_max = g_value_get_int(value); break;
    case PROP_CUTOFF_MIN: s->cutoff_min = g_value_get_double(value); break;
    case PROP_CUTOFF_MAX: s->cutoff_max = g_value_get_double(value); break;
    case PROP_LOW_DESCRIPTION:
        g_free(s->low_description);
        s->low_description = g_value_dup_string(value);
        break;
    case PROP_LOW_MAX_DELAY: s->low_max_delay = g_value_get_uint64(value); break;
    case PROP_FLUSH_ON_EOS: s->flush_on_eos = g_value_get_boolean(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_lily_train_sink_get_property(GObject *object, guint id, GValue *value,
                                             GParamSpec *pspec)
{
    GstLilyTrainSink *self = GST_LILY_TRAIN_SINK(object);
    Settings *s = &self->settings;
    if (id == PROP_SEGMENTS || id == PROP_SKIPPED || id == PROP_SHARDS) {
        LilyDatasetCounts c = {0};
        g_mutex_lock(&self->lock);
        if (self->writer) lily_dataset_writer_counts(self->writer, &c);
        g_mutex_unlock(&self->lock);
        g_value_set_uint64(value, id == PROP_SEGMENTS  ? c.segments_run
                                  : id == PROP_SHARDS ? c.shards_run
                                                      : c.silent + c.clipped);
        return;
    }
    GST_OBJECT_LOCK(self);
    switch (id) {
    case PROP_LOCATION: g_value_set_string(value, s->location); break;
    case PROP_CONFIG: g_value_set_string(value, s->config); break;
    case PROP_SEGMENT_DURATION: g_value_set_uint64(value, s->segment_duration); break;
    case PROP_HOP_DURATION: g_value_set_uint64(value, s->hop_duration); break;
    case PROP_SEED: g_value_set_uint64(value, s->seed); break;
    case PROP_SOURCE_URI: g_value_set_string(value, s->source_uri); break;
    case PROP_SHARD_SEGMENTS: g_value_set_int(value, s->shard_segments); break;
    case PROP_FILTERS: g_value_set_string(value, s->filters); break;
    case PROP_ORDER_MIN: g_value_set_int(value, s->order_min); break;
    case PROP_ORDER_MAX: g_value_set_int(value, s->order_max); break;
    case PROP_CUTOFF_MIN: g_value_set_double(value, s->cutoff_min); break;
    case PROP_CUTOFF_MAX: g_value_set_double(value, s->cutoff_max); break;
    case PROP_LOW_DESCRIPTION: g_value_set_string(value, s->low_description); break;
    case PROP_LOW_MAX_DELAY: g_value_set_uint64(value, s->low_max_delay); break;
    case PROP_FLUSH_ON_EOS: g_value_set_boolean(value, s->flush_on_eos); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_lily_train_sink_finalize(GObject *object)
{
    GstLilyTrainSink *self = GST_LILY_TRAIN_SINK(object);
    if (self->writer) lily_dataset_writer_abandon(self->writer);
    lily_context_free(self->ctx);
    Settings *s = &self->settings;
    g_free(s->location);
    g_free(s->config);
    g_free(s->source_uri);
    g_free(s->filters);
    g_free(s->low_description);
    g_free(self->writer_location);
    g_free(self->tag_uri);
    g_free(self->stream_id);
    g_free(self->current_uri);
    g_free(self->scratch);
    GstBuffer *b;
    while ((b = g_queue_pop_head(&self->low_queue)) != NULL) gst_buffer_unref(b);
    g_mutex_clear(&self->lock);
    g_cond_clear(&self->cond);
    G_OBJECT_CLASS(gst_lily_train_sink_parent_class)->finalize(object);
}

static void gst_lily_train_sink_init(GstLilyTrainSink *self)
{
    g_mutex_init(&self->lock);
    g_cond_init(&self->cond);
    g_queue_init(&self->low_queue);
    self->settings.low_max_delay = DEFAULT_LOW_MAX_DELAY;
    self->settings.seed = 1234;
    self->settings.flush_on_eos = TRUE;
    self->main_t0 = GST_CLOCK_TIME_NONE;
    gst_segment_init(&self->low_segment, GST_FORMAT_TIME);
    /* Writing a dataset is not playback: as fast as the data comes, no clock. */
    gst_base_sink_set_sync(GST_BASE_SINK(self), FALSE);
    gst_base_sink_set_last_sample_enabled(GST_BASE_SINK(self), FALSE);
}

#define RW_READY (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)

static void gst_lily_train_sink_class_init(GstLilyTrainSinkClass *klass)
{
    GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
    GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
    GstBaseSinkClass *sink_class = GST_BASE_SINK_CLASS(klass);

    gobject_class->set_property = gst_lily_train_sink_set_property;
    gobject_class->get_property = gst_lily_train_sink_get_property;
    gobject_class->finalize = gst_lily_train_sink_finalize;

    g_object_class_install_property(gobject_class, PROP_LOCATION,
        g_param_spec_string("location", "Location", "Dataset folder (created if missing; "
                            "default: data.dir of config)", NULL, RW_READY));
    g_object_class_install_property(gobject_class, PROP_CONFIG,
        g_param_spec_string("config", "Config", "Lily config.yaml whose data section gives the "
                            "defaults (properties set explicitly override it)", NULL, RW_READY));
    g_object_class_install_property(gobject_class, PROP_SEGMENT_DURATION,
        g_param_spec_uint64("segment-duration", "Segment duration", "Segment length in ns, a "
                            "multiple of 0.64 s (0 = data.segment_seconds, 5.12 s)", 0,
                            3600 * GST_SECOND, 0, RW_READY));
    g_object_class_install_property(gobject_class, PROP_HOP_DURATION,
        g_param_spec_uint64("hop-duration", "Hop duration", "Distance between segment starts "
                            "in ns (0 = data.hop_seconds, scaled with segment-duration when that "
                            "is set: the config's overlap ratio is kept)", 0, 3600 * GST_SECOND,
                            0, RW_READY));
    g_object_class_install_property(gobject_class, PROP_SEED,
        g_param_spec_uint64("seed", "Seed", "Seed of the degradation draws and the split "
                            "(default: data.seed, 1234)", 0, G_MAXUINT64, 1234, RW_READY));
    g_object_class_install_property(gobject_class, PROP_SOURCE_URI,
        g_param_spec_string("source-uri", "Source URI", "Name of the source in the index "
                            "(default: the upstream URI query, a location tag, the stream id)",
                            NULL, RW_READY));
    g_object_class_install_property(gobject_class, PROP_SHARD_SEGMENTS,
        g_param_spec_int("shard-segments", "Shard segments", "Segments per shard file "
                         "(0 = data.shard_segments, 256)", 0, 1000000, 0, RW_READY));
    g_object_class_install_property(gobject_class, PROP_FILTERS,
        g_param_spec_string("filters", "Filters", "Filter families to draw from, e.g. "
                            "\"ellip,butter\" (default: data.degradation.filters, all four)",
                            NULL, RW_READY));
    g_object_class_install_property(gobject_class, PROP_ORDER_MIN,
        g_param_spec_int("order-min", "Minimum order", "Lowest filter order drawn (0 = config, 2)",
                         0, 12, 0, RW_READY));
    g_object_class_install_property(gobject_class, PROP_ORDER_MAX,
        g_param_spec_int("order-max", "Maximum order", "Highest filter order drawn (0 = config, 10)",
                         0, 12, 0, RW_READY));
    g_object_class_install_property(gobject_class, PROP_CUTOFF_MIN,
        g_param_spec_double("cutoff-min", "Minimum cutoff", "Lowest cutoff drawn, Hz "
                            "(log-uniform; 0 = config, 2000)", 0, 23999, 0, RW_READY));
    g_object_class_install_property(gobject_class, PROP_CUTOFF_MAX,
        g_param_spec_double("cutoff-max", "Maximum cutoff", "Highest cutoff drawn, Hz "
                            "(0 = config, 16000)", 0, 23999, 0, RW_READY));
    g_object_class_install_property(gobject_class, PROP_LOW_DESCRIPTION,
        g_param_spec_string("low-description", "Low-side description", "What made the stream on "
                            "the low pad (recorded per segment), e.g. \"mp3 64 kbit/s\"", NULL,
                            RW_READY));
    g_object_class_install_property(gobject_class, PROP_LOW_MAX_DELAY,
        g_param_spec_uint64("low-max-delay", "Low-side maximum delay", "The low stream's delay "
                            "is estimated within +- this many ns and removed (0 = trust the "
                            "timestamps)", 0, GST_SECOND, DEFAULT_LOW_MAX_DELAY, RW_READY));
    g_object_class_install_property(gobject_class, PROP_FLUSH_ON_EOS,
        g_param_spec_boolean("flush-on-eos", "Flush on EOS", "Write pending segments as a last "
                             "shard at end of stream (else at READY->NULL)", TRUE, RW_READY));
    g_object_class_install_property(gobject_class, PROP_SEGMENTS,
        g_param_spec_uint64("segments", "Segments", "Segments kept by this element so far", 0,
                            G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
    g_object_class_install_property(gobject_class, PROP_SKIPPED,
        g_param_spec_uint64("skipped", "Skipped", "Silent and clipped segments skipped (whole "
                            "dataset)", 0, G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
    g_object_class_install_property(gobject_class, PROP_SHARDS,
        g_param_spec_uint64("shards", "Shards", "Shard files written by this element", 0,
                            G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

    gst_element_class_add_static_pad_template(element_class, &sink_template);
    gst_element_class_add_static_pad_template(element_class, &low_template);
    gst_element_class_set_static_metadata(element_class, "Lily training-data sink",
        "Sink/Audio", "Writes AudioSR-style (low, high) training pairs with log-mels into "
        "safetensors dataset shards", "Lily");

    element_class->change_state = GST_DEBUG_FUNCPTR(gst_lily_train_sink_change_state);
    element_class->request_new_pad = GST_DEBUG_FUNCPTR(gst_lily_train_sink_request_new_pad);
    element_class->release_pad = GST_DEBUG_FUNCPTR(gst_lily_train_sink_release_pad);
    sink_class->set_caps = GST_DEBUG_FUNCPTR(gst_lily_train_sink_set_caps);
    sink_class->render = GST_DEBUG_FUNCPTR(gst_lily_train_sink_render);
    sink_class->event = GST_DEBUG_FUNCPTR(gst_lily_train_sink_event);
    sink_class->start = GST_DEBUG_FUNCPTR(gst_lily_train_sink_start);
    sink_class->stop = GST_DEBUG_FUNCPTR(gst_lily_train_sink_stop);
    sink_class->unlock = GST_DEBUG_FUNCPTR(gst_lily_train_sink_unlock);
    sink_class->unlock_stop = GST_DEBUG_FUNCPTR(gst_lily_train_sink_unlock_stop);
}
