/* gstlilychunker.c - GstLilyChunker, the streaming machinery lilydiffuse and lilyvocoder share
 * (see gstlilychunker.h for the list). The model is GStreamer's streaming-element contract as
 * gst-plugins-good's audiofxbasefirfilter.c (latency query, drain, timestamps from counters,
 * discontinuity test) and gst-plugins-bad's audiobuffersplit.c (sink_event discipline) keep it;
 * the chunk planning itself is the engine's (engine/models/stream.c).
 *
 * Threads: the chain function, serialized events and the stream array belong to the streaming
 * thread; FLUSH_START arrives on another thread and only raises the abort flag, which the
 * engine polls at least once per sampler step, so a running chunk stops within one UNet
 * evaluation; settings are guarded by the object lock. */
#include <string.h>

#include <gst/audio/audio.h>

#include "gstlily.h"
#include "gstlilychunker.h"
#include "gstlilyenums.h"
#include "gstlilyfilter.h"
#include "gstlilymodelcache.h"

GST_DEBUG_CATEGORY_STATIC(gst_lily_chunker_debug);
#define GST_CAT_DEFAULT gst_lily_chunker_debug

/* Audio that must have been processed before the real-time factor is judged (one minimal
 * chunk: before that, a one-time warm-up would look like a slow stream). */
#define RTF_MIN_SAMPLES (64 * LILY_HOP)

enum {
    PROP_0,
    PROP_MODEL,
    PROP_CONFIG,
    PROP_DEVICE,
    PROP_PRECISION,
    PROP_REAL_TIME_FACTOR,
};
#define DEFAULT_MODEL NULL
#define DEFAULT_CONFIG NULL
#define DEFAULT_DEVICE GST_LILY_CHUNKER_DEFAULT_DEVICE
#define DEFAULT_PRECISION GST_LILY_CHUNKER_DEFAULT_PRECISION

G_DEFINE_ABSTRACT_TYPE_WITH_CODE(GstLilyChunker, gst_lily_chunker, GST_TYPE_ELEMENT,
                                 GST_DEBUG_CATEGORY_INIT(gst_lily_chunker_debug, "lilychunker",
                                                         0, "Lily streaming base class");
                                 gst_lily_debug_init());

/* ---------------------------------------------------------------------------------------- */
/* Streams and sections                                                                      */
/* ---------------------------------------------------------------------------------------- */

static void streams_free(GstLilyChunker *self)
{
    GstLilyChunkerClass *klass = GST_LILY_CHUNKER_GET_CLASS(self);
    if (self->streams)
        for (guint c = 0; c < self->channels; c++)
            if (self->streams[c]) klass->stream_free(self->streams[c]);
    g_free(self->streams);
    self->streams = NULL;
    self->channels = 0;
}

static void section_reset(GstLilyChunker *self)
{
    self->started = FALSE;
    self->origin = GST_CLOCK_TIME_NONE;
    self->frames_in = 0;
    self->samples_in = 0;
    self->units_out = 0;
    self->discont_out = TRUE;
}

static void streams_reset(GstLilyChunker *self)
{
    GstLilyChunkerClass *klass = GST_LILY_CHUNKER_GET_CLASS(self);
    for (guint c = 0; c < self->channels; c++) klass->stream_reset(self->streams[c]);
    section_reset(self);
}

/* Ends the section: the subclass finishes its streams and pushes the rest, then everything
 * restarts from zero. */
static GstFlowReturn drain(GstLilyChunker *self, const gchar *why)
{
    if (!self->started || !self->streams) return GST_FLOW_OK;
    GST_INFO_OBJECT(self, "drain (%s): %" G_GUINT64_FORMAT " frames in, %" G_GUINT64_FORMAT
                          " units out so far", why, self->frames_in, self->units_out);
    GstFlowReturn ret = GST_LILY_CHUNKER_GET_CLASS(self)->drain(self);
    GST_DEBUG_OBJECT(self, "drained (%s): %" G_GUINT64_FORMAT " units out, %s", why,
                     self->units_out, gst_flow_get_name(ret));
    streams_reset(self);
    return ret;
}

/* drain() as GstLilyFilterFuncs.drain: the shared event function ends sections through it. */
static GstFlowReturn filter_drain(GstElement *element, const gchar *why)
{
    return drain(GST_LILY_CHUNKER(element), why);
}

static void post_latency_message(GstLilyChunker *self)
{
    gst_element_post_message(GST_ELEMENT(self),
                             gst_message_new_latency(GST_OBJECT_CAST(self)));
}

/* Builds `channels` streams; on failure posts an error and leaves none. */
static gboolean streams_build(GstLilyChunker *self, guint channels)
{
    GstLilyChunkerClass *klass = GST_LILY_CHUNKER_GET_CLASS(self);
    streams_free(self);
    self->streams = g_new0(gpointer, channels);
    self->channels = channels;
    for (guint c = 0; c < channels; c++) {
        LilyStatus st = klass->stream_new(self, &self->streams[c]);
        if (st != LILY_OK) {
            GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                              ("Could not set up the Lily stream for channel %u", c),
                              ("%s: %s", lily_status_name(st), lily_context_error(self->ctx)));
            streams_free(self);
            return FALSE;
        }
    }
    gint64 lat = klass->stream_latency(self->streams[0]);
    GST_OBJECT_LOCK(self);
    gboolean changed = self->latency_samples >= 0 && self->latency_samples != lat;
    self->latency_samples = lat;
    GST_OBJECT_UNLOCK(self);
    GST_INFO_OBJECT(self, "%u stream(s), latency %" G_GINT64_FORMAT " samples (%" GST_TIME_FORMAT
                          ")", channels, lat,
                    GST_TIME_ARGS(gst_lily_filter_samples_to_time((guint64)lat)));
    if (changed) post_latency_message(self);
    section_reset(self);
    return TRUE;
}

/* ---------------------------------------------------------------------------------------- */
/* Output helpers for subclasses                                                             */
/* ---------------------------------------------------------------------------------------- */

GstFlowReturn gst_lily_chunker_push(GstLilyChunker *self, GstBuffer *buffer, guint64 units,
                                    guint samples_per_unit)
{
    guint64 u0 = self->units_out, u1 = u0 + units;
    GstClockTime pts = self->origin + gst_lily_filter_samples_to_time(u0 * samples_per_unit);
    GstClockTime end = self->origin + gst_lily_filter_samples_to_time(u1 * samples_per_unit);
    GST_BUFFER_PTS(buffer) = pts;
    GST_BUFFER_DTS(buffer) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_DURATION(buffer) = end - pts;
    GST_BUFFER_OFFSET(buffer) = u0;
    GST_BUFFER_OFFSET_END(buffer) = u1;
    if (self->discont_out) {
        GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);
        self->discont_out = FALSE;
    }
    self->units_out = u1;
    GST_DEBUG_OBJECT(self, "push units %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT " pts %"
                           GST_TIME_FORMAT " dur %" GST_TIME_FORMAT, u0, u1, GST_TIME_ARGS(pts),
                     GST_TIME_ARGS(end - pts));
    return gst_pad_push(self->srcpad, buffer);
}

GstFlowReturn gst_lily_chunker_engine_error(GstLilyChunker *self, LilyStatus st,
                                            const gchar *what)
{
    if (st == LILY_ERR_CANCELLED || g_atomic_int_get(&self->flushing)) {
        GST_INFO_OBJECT(self, "%s cancelled (flush or stop): %s", what,
                        lily_context_error(self->ctx));
        return GST_FLOW_FLUSHING;
    }
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Lily %s failed", what),
                      ("%s: %s", lily_status_name(st), lily_context_error(self->ctx)));
    return GST_FLOW_ERROR;
}

void gst_lily_chunker_account(GstLilyChunker *self, gint64 busy_us, guint64 samples)
{
    self->busy_us += busy_us;
    self->audio_samples += samples;
    if (self->audio_samples == 0) return;
    gdouble audio_s = (gdouble)self->audio_samples / LILY_SAMPLE_RATE;
    gdouble rtf = (gdouble)self->busy_us / 1e6 / audio_s;
    GST_OBJECT_LOCK(self);
    self->rtf = rtf;
    GST_OBJECT_UNLOCK(self);
    GST_LOG_OBJECT(self, "engine %.3f s for %.3f s of audio so far: real-time factor %.3f",
                   self->busy_us / 1e6, audio_s, rtf);
    if (self->live && !self->warned_slow && rtf > 1.0 && self->audio_samples >= RTF_MIN_SAMPLES) {
        self->warned_slow = TRUE;
        GST_ELEMENT_WARNING(self, STREAM, FAILED,
                            ("Processing is slower than the live source (real-time factor %.2f)",
                             rtf),
                            ("%.2f s of computation for %.2f s of audio: the output falls "
                             "further behind the source, and a synchronised sink drops what "
                             "arrives late. Lower steps, shorten chunk-duration, use "
                             "precision=bf16 or device=cuda. Reported once.",
                             self->busy_us / 1e6, audio_s));
    }
}

gboolean gst_lily_chunker_may_reconfigure(GstElement *element, GParamSpec *pspec)
{
    if (!(pspec->flags & GST_PARAM_MUTABLE_READY)) return TRUE;
    GST_OBJECT_LOCK(element);
    GstState state = GST_STATE(element);
    GST_OBJECT_UNLOCK(element);
    if (state <= GST_STATE_READY) return TRUE;
    g_warning("%s: property '%s' can only be changed in the NULL or READY state; the change is "
              "ignored", GST_ELEMENT_NAME(element), pspec->name);
    return FALSE;
}

void gst_lily_chunker_latency_changed(GstLilyChunker *self)
{
    GST_DEBUG_OBJECT(self, "a setting changed the latency: posting a LATENCY message");
    post_latency_message(self);
}

/* ---------------------------------------------------------------------------------------- */
/* Engine start and stop                                                                     */
/* ---------------------------------------------------------------------------------------- */

static int abort_requested(void *user_data)
{
    GstLilyChunker *self = user_data;
    return g_atomic_int_get(&self->flushing);
}

/* Engine messages are formatted only when the `lilyengine` category would show them. */
static LilyLogLevel engine_log_level(void)
{
    GstDebugLevel t = gst_debug_category_get_threshold(gst_lily_engine_debug);
    if (t >= GST_LEVEL_TRACE) return LILY_LOG_TRACE;
    if (t >= GST_LEVEL_DEBUG) return LILY_LOG_DEBUG;
    if (t >= GST_LEVEL_INFO) return LILY_LOG_INFO;
    if (t >= GST_LEVEL_WARNING) return LILY_LOG_WARNING;
    return LILY_LOG_ERROR;
}

static void post_model_message(GstLilyChunker *self, const gchar *path, gboolean loaded)
{
    GstStructure *s = gst_structure_new(
        "lily-model", "path", G_TYPE_STRING, path, "device", G_TYPE_STRING,
        lily_device_name(self->device_kind), "precision", G_TYPE_STRING,
        lily_precision_name(self->precision), "weights-id", G_TYPE_UINT64,
        (guint64)(guintptr)lily_model_weights_id(self->model), "weight-bytes", G_TYPE_UINT64,
        (guint64)lily_model_weight_bytes(self->model), "loaded", G_TYPE_BOOLEAN, loaded, NULL);
    gst_element_post_message(GST_ELEMENT(self),
                             gst_message_new_element(GST_OBJECT_CAST(self), s));
}

static gboolean model_key_equal(const GstLilyModelKey *a, const GstLilyModelKey *b)
{
    return g_strcmp0(a->path, b->path) == 0 && g_strcmp0(a->config, b->config) == 0 &&
           a->device == b->device && a->device_index == b->device_index &&
           a->precision == b->precision;
}

static void model_key_set(GstLilyModelKey *dst, const GstLilyModelKey *src)
{
    g_free((gchar *)dst->path);
    g_free((gchar *)dst->config);
    *dst = *src;
    dst->path = g_strdup(src->path);
    dst->config = g_strdup(src->config);
}

/* The model goes back to the cache at READY->NULL (or when the settings name another one), not
 * at PAUSED->READY: a pipeline restarted through READY keeps its weights, and the cache frees
 * them when the last holder lets go. */
static void model_release(GstLilyChunker *self)
{
    if (!self->model) return;
    GST_DEBUG_OBJECT(self, "model %s back to the cache", self->model_key.path);
    gst_lily_model_cache_release(self->model);
    self->model = NULL;
    model_key_set(&self->model_key, &(GstLilyModelKey){0});
}

static gboolean engine_start(GstLilyChunker *self)
{
    GST_OBJECT_LOCK(self);
    gchar *path = g_strdup(self->model_path);
    gchar *config = g_strdup(self->config_path);
    GstLilyModelKey key = {NULL, NULL, self->device_kind, self->device_index, self->precision};
    GST_OBJECT_UNLOCK(self);
    key.path = path;
    key.config = config;
    gboolean ok = FALSE;

    LilyContextParams cp;
    lily_context_params_init(&cp);
    cp.device = key.device;
    cp.device_index = key.device_index;
    cp.log = gst_lily_engine_log;
    cp.log_user_data = self;
    cp.log_level = engine_log_level();
    char err[512] = "";
    LilyStatus st = lily_context_new(&cp, &self->ctx, err, sizeof err);
    if (st != LILY_OK) {
        GST_ELEMENT_ERROR(self, RESOURCE, FAILED,
                          ("Could not start the Lily engine on device %s:%d",
                           lily_device_name(key.device), key.device_index),
                          ("lily_context_new: %s: %s", lily_status_name(st), err));
        goto out;
    }
    lily_context_set_abort(self->ctx, abort_requested, self);

    if (!path || !path[0]) {
        /* No model property: $LILY_MODEL, else the bundled demonstration model, so that
         * `decodebin ! lilyenhance ! ...` runs as it stands; the latter is said loudly. */
        char found[4096];
        LilyDefaultModel dm = lily_default_model_path(found, sizeof found);
        if (dm == LILY_DEFAULT_MODEL_NONE) {
            GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("No model: set the model property"),
                              ("model is unset, LILY_MODEL too, and no bundled model is installed; "
                               "give a Lily .safetensors file (lily-convert makes one) or an "
                               "AudioSR checkpoint with config=<its YAML>"));
            goto out;
        }
        g_free(path);
        path = g_strdup(found);
        key.path = path;
        if (dm == LILY_DEFAULT_MODEL_BUNDLED)
            GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                                ("No model set: using the bundled demonstration model, whose "
                                 "weights are random (the output shows the pipeline, not an "
                                 "enhancement)"),
                                ("model=%s; set the model property to a converted AudioSR "
                                 "checkpoint or a trained model", path));
        else
            GST_INFO_OBJECT(self, "no model property: using LILY_MODEL=%s", path);
    }
    /* A model kept from the last run (READY keeps it, see model_release) is reused when the
     * settings still name it; otherwise it goes back to the cache first. */
    if (self->model && !model_key_equal(&self->model_key, &key)) model_release(self);
    gboolean loaded = FALSE;
    gint64 t0 = g_get_monotonic_time();
    if (self->model) {
        GST_DEBUG_OBJECT(self, "keeping the model of the last run");
        st = LILY_OK;
    } else {
        st = gst_lily_model_cache_acquire(self->ctx, &key, &self->model, &loaded);
        if (st == LILY_OK) model_key_set(&self->model_key, &key);
    }
    if (st != LILY_OK) {
        const gchar *msg = lily_context_error(self->ctx);
        if (!g_file_test(path, G_FILE_TEST_EXISTS))
            GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("Model file \"%s\" not found", path),
                              ("%s: %s", lily_status_name(st), msg));
        else if (config && !g_file_test(config, G_FILE_TEST_EXISTS))
            GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("Model config \"%s\" not found", config),
                              ("%s: %s", lily_status_name(st), msg));
        else if (st == LILY_ERR_IO)
            GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
                              ("Could not read the model file \"%s\"", path),
                              ("%s: %s", lily_status_name(st), msg));
        else
            GST_ELEMENT_ERROR(self, RESOURCE, READ,
                              ("Could not load the model file \"%s\": %s", path, msg),
                              ("%s: %s (device %s, precision %s%s%s)", lily_status_name(st), msg,
                               lily_device_name(key.device), lily_precision_name(key.precision),
                               config ? ", config " : "", config ? config : ""));
        goto out;
    }
    GST_INFO_OBJECT(self, "model %s: %s (%.1f MiB of weights, id %p) in %.3f s", path,
                    loaded ? "loaded" : "shared with another element",
                    lily_model_weight_bytes(self->model) / 1048576.0,
                    lily_model_weights_id(self->model), (g_get_monotonic_time() - t0) / 1e6);
    post_model_message(self, path, loaded);

    GstLilyChunkerClass *klass = GST_LILY_CHUNKER_GET_CLASS(self);
    if (klass->start && !klass->start(self)) goto out;

    /* The latency figure must be known before caps (a live pipeline asks for it on its way to
     * PLAYING, before any data flows): a throw-away stream with the current settings gives it,
     * and refuses bad settings now rather than at the first buffer. */
    gpointer probe = NULL;
    st = klass->stream_new(self, &probe);
    if (st != LILY_OK) {
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Invalid Lily settings: %s",
                                                     lily_context_error(self->ctx)),
                          ("%s: %s", lily_status_name(st), lily_context_error(self->ctx)));
        goto out;
    }
    gint64 lat = klass->stream_latency(probe);
    klass->stream_free(probe);
    GST_OBJECT_LOCK(self);
    gboolean changed = self->latency_samples >= 0 && self->latency_samples != lat;
    self->latency_samples = lat;
    GST_OBJECT_UNLOCK(self);
    GST_INFO_OBJECT(self, "latency %" G_GINT64_FORMAT " samples = %" GST_TIME_FORMAT, lat,
                    GST_TIME_ARGS(gst_lily_filter_samples_to_time((guint64)lat)));
    if (changed) post_latency_message(self);
    ok = TRUE;
out:
    g_free(path);
    g_free(config);
    return ok;
}

/* Frees the streams and the context; the model stays (model_release). */
static void engine_stop(GstLilyChunker *self)
{
    streams_free(self);
    if (self->ctx) lily_context_free(self->ctx);
    self->ctx = NULL;
}

static void stream_state_reset(GstLilyChunker *self)
{
    section_reset(self);
    gst_segment_init(&self->segment, GST_FORMAT_TIME);
    self->live = FALSE;
    self->live_checked = FALSE;
    self->busy_us = 0;
    self->audio_samples = 0;
    self->warned_slow = FALSE;
    GST_OBJECT_LOCK(self);
    self->rtf = 0;
    GST_OBJECT_UNLOCK(self);
}

static GstStateChangeReturn gst_lily_chunker_change_state(GstElement *element,
                                                          GstStateChange transition)
{
    GstLilyChunker *self = GST_LILY_CHUNKER(element);
    switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
        g_atomic_int_set(&self->flushing, 0);
        stream_state_reset(self);
        if (!engine_start(self)) {
            engine_stop(self);
            model_release(self);
            return GST_STATE_CHANGE_FAILURE;
        }
        break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
        /* Stop a running chunk before the pad deactivation waits for the streaming thread. */
        g_atomic_int_set(&self->flushing, 1);
        break;
    default:
        break;
    }
    GstStateChangeReturn ret =
        GST_ELEMENT_CLASS(gst_lily_chunker_parent_class)->change_state(element, transition);
    if (transition == GST_STATE_CHANGE_PAUSED_TO_READY ||
        (transition == GST_STATE_CHANGE_READY_TO_PAUSED && ret == GST_STATE_CHANGE_FAILURE)) {
        engine_stop(self);
        stream_state_reset(self);
    }
    if (transition == GST_STATE_CHANGE_READY_TO_NULL) model_release(self);
    return ret;
}

/* ---------------------------------------------------------------------------------------- */
/* Data flow                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* Asks upstream once per run whether it is live: the falling-behind warning only applies to
 * live sources (a file is simply processed as fast as it goes). */
static void check_live(GstLilyChunker *self)
{
    if (self->live_checked) return;
    self->live_checked = TRUE;
    GstQuery *q = gst_query_new_latency();
    if (gst_pad_peer_query(self->sinkpad, q)) {
        gst_query_parse_latency(q, &self->live, NULL, NULL);
        GST_DEBUG_OBJECT(self, "upstream is %slive", self->live ? "" : "not ");
    }
    gst_query_unref(q);
}

/* The CAPS event (GstLilyFilterFuncs.set_caps): rebuilds the streams for a new channel count
 * after draining the old ones, and announces the output caps. */
static gboolean set_sink_caps(GstElement *element, GstCaps *caps)
{
    GstLilyChunker *self = GST_LILY_CHUNKER(element);
    GstStructure *s = gst_caps_get_structure(caps, 0);
    gint ch = 0;
    if (!gst_structure_get_int(s, "channels", &ch) || ch < 1) {
        GST_WARNING_OBJECT(self, "refusing caps %" GST_PTR_FORMAT, caps);
        return FALSE;
    }
    GST_INFO_OBJECT(self, "input caps %" GST_PTR_FORMAT, caps);
    if (self->streams && (guint)ch == self->channels) return TRUE;
    if (self->streams) drain(self, "caps change");
    if (!streams_build(self, (guint)ch)) return FALSE;
    GstCaps *out = GST_LILY_CHUNKER_GET_CLASS(self)->src_caps(self, (guint)ch);
    GST_INFO_OBJECT(self, "output caps %" GST_PTR_FORMAT, out);
    if (!gst_lily_filter_push_caps(GST_OBJECT(self), GST_CAT_DEFAULT, self->srcpad, out)) {
        streams_free(self);
        return FALSE;
    }
    return TRUE;
}

static void filter_flush_start(GstElement *element)
{
    GstLilyChunker *self = GST_LILY_CHUNKER(element);
    /* Not serialized: a chunk may be running in the streaming thread. */
    GST_INFO_OBJECT(self, "flush start: asking the engine to stop");
    g_atomic_int_set(&self->flushing, 1);
}

static void filter_flush_stop(GstElement *element)
{
    GstLilyChunker *self = GST_LILY_CHUNKER(element);
    GST_INFO_OBJECT(self, "flush stop: dropping the streams' state (%" G_GUINT64_FORMAT
                          " frames in, %" G_GUINT64_FORMAT " units out); model kept",
                    self->frames_in, self->units_out);
    if (self->streams) streams_reset(self);
    else section_reset(self);
    g_atomic_int_set(&self->flushing, 0);
}

static gint64 filter_latency_samples(GstElement *element)
{
    GstLilyChunker *self = GST_LILY_CHUNKER(element);
    GST_OBJECT_LOCK(self);
    gint64 samples = self->latency_samples;
    GST_OBJECT_UNLOCK(self);
    return samples;
}

static const GstLilyFilterFuncs filter_funcs = {
    .category = &gst_lily_chunker_debug,
    .set_caps = set_sink_caps,
    .drain = filter_drain,
    .flush_start = filter_flush_start,
    .flush_stop = filter_flush_stop,
    .latency_samples = filter_latency_samples,
};

static GstFlowReturn gst_lily_chunker_chain(GstPad *pad, GstObject *parent, GstBuffer *buffer)
{
    (void)pad;
    GstLilyChunker *self = GST_LILY_CHUNKER(parent);
    GstFlowReturn ret = GST_FLOW_OK;

    if (G_UNLIKELY(!self->streams)) {
        gst_buffer_unref(buffer);
        GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (NULL), ("received a buffer before caps"));
        return GST_FLOW_NOT_NEGOTIATED;
    }
    GstLilyMelMeta *meta = gst_buffer_get_lily_mel_meta(buffer);
    gsize size = gst_buffer_get_size(buffer);
    gsize per_frame = (gsize)self->channels * LILY_N_MELS * sizeof(gfloat);
    gsize frames = size / per_frame;
    if (G_UNLIKELY(!meta || size % per_frame || meta->n_channels != self->channels ||
                   meta->n_samples != frames * LILY_HOP || !meta->samples)) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT,
                          ("Mel buffers must carry their source samples (GstLilyMelMeta): put "
                           "lilymel upstream"),
                          ("buffer of %" G_GSIZE_FORMAT " bytes for %u channels, meta %s "
                           "(%u channels, %" G_GSIZE_FORMAT " samples)",
                           size, self->channels, meta ? "present" : "missing",
                           meta ? meta->n_channels : 0, meta ? meta->n_samples : 0));
        gst_buffer_unref(buffer);
        return GST_FLOW_ERROR;
    }

    GstClockTime pts = GST_BUFFER_PTS(buffer);
    if (self->started) {
        const gchar *why = NULL;
        if (GST_BUFFER_IS_DISCONT(buffer)) why = "DISCONT buffer";
        else if (meta->offset == 0 && self->frames_in > 0) why = "new mel section";
        else if (gst_lily_filter_timestamp_jumped(GST_OBJECT(self), GST_CAT_DEFAULT, self->origin,
                                                  self->frames_in * LILY_HOP, pts))
            why = "timestamp jump";
        ret = gst_lily_filter_break_section(GST_ELEMENT(self), &filter_funcs, why, buffer);
        if (ret != GST_FLOW_OK) return ret;
    }
    if (!self->started) {
        check_live(self);
        self->origin = gst_lily_filter_section_origin(GST_OBJECT(self), GST_CAT_DEFAULT, pts,
                                                      &self->segment);
        self->started = TRUE;
        self->discont_out = TRUE;
    }
    self->frames_in += frames;
    self->samples_in += meta->n_valid;
    ret = GST_LILY_CHUNKER_GET_CLASS(self)->process(self, buffer, meta, frames);
    gst_buffer_unref(buffer);
    return ret;
}

static gboolean gst_lily_chunker_sink_event(GstPad *pad, GstObject *parent, GstEvent *event)
{
    return gst_lily_filter_sink_event(pad, parent, event, &GST_LILY_CHUNKER(parent)->segment,
                                      &filter_funcs);
}

static gboolean gst_lily_chunker_query(GstPad *pad, GstObject *parent, GstQuery *query)
{
    GstLilyChunker *self = GST_LILY_CHUNKER(parent);
    return gst_lily_filter_query(pad, parent, query, self->sinkpad, self->srcpad, &filter_funcs);
}

/* ---------------------------------------------------------------------------------------- */
/* GObject                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void gst_lily_chunker_set_property(GObject *object, guint prop_id, const GValue *value,
                                          GParamSpec *pspec)
{
    GstLilyChunker *self = GST_LILY_CHUNKER(object);
    if (!gst_lily_chunker_may_reconfigure(GST_ELEMENT(self), pspec)) return;
    switch (prop_id) {
    case PROP_MODEL:
        GST_OBJECT_LOCK(self);
        g_free(self->model_path);
        self->model_path = g_value_dup_string(value);
        GST_OBJECT_UNLOCK(self);
        break;
    case PROP_CONFIG:
        GST_OBJECT_LOCK(self);
        g_free(self->config_path);
        self->config_path = g_value_dup_string(value);
        GST_OBJECT_UNLOCK(self);
        break;
    case PROP_DEVICE: {
        const gchar *text = g_value_get_string(value);
        LilyDeviceKind kind;
        int index = 0;
        if (!text || lily_device_parse(text, &kind, &index) != LILY_OK) {
            GST_OBJECT_LOCK(self);
            gchar *kept = g_strdup(self->device);
            GST_OBJECT_UNLOCK(self);
            g_warning("%s: device \"%s\" is not one of \"cpu\", \"cuda\", \"cuda:N\"; keeping "
                      "\"%s\"", GST_ELEMENT_NAME(self), text ? text : "(null)", kept);
            g_free(kept);
            break;
        }
        GST_OBJECT_LOCK(self);
        g_free(self->device);
        self->device = g_strdup(text);
        self->device_kind = kind;
        self->device_index = index;
        GST_OBJECT_UNLOCK(self);
        break;
    }
    case PROP_PRECISION:
        GST_OBJECT_LOCK(self);
        self->precision = (LilyPrecision)g_value_get_enum(value);
        GST_OBJECT_UNLOCK(self);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
}

static void gst_lily_chunker_get_property(GObject *object, guint prop_id, GValue *value,
                                          GParamSpec *pspec)
{
    GstLilyChunker *self = GST_LILY_CHUNKER(object);
    GST_OBJECT_LOCK(self);
    switch (prop_id) {
    case PROP_MODEL: g_value_set_string(value, self->model_path); break;
    case PROP_CONFIG: g_value_set_string(value, self->config_path); break;
    case PROP_DEVICE: g_value_set_string(value, self->device); break;
    case PROP_PRECISION: g_value_set_enum(value, (gint)self->precision); break;
    case PROP_REAL_TIME_FACTOR: g_value_set_double(value, self->rtf); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_lily_chunker_finalize(GObject *object)
{
    GstLilyChunker *self = GST_LILY_CHUNKER(object);
    engine_stop(self);
    model_release(self);
    g_free(self->model_path);
    g_free(self->config_path);
    g_free(self->device);
    G_OBJECT_CLASS(gst_lily_chunker_parent_class)->finalize(object);
}

static void gst_lily_chunker_class_init(GstLilyChunkerClass *klass)
{
    GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
    GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
    gobject_class->set_property = gst_lily_chunker_set_property;
    gobject_class->get_property = gst_lily_chunker_get_property;
    gobject_class->finalize = gst_lily_chunker_finalize;
    element_class->change_state = GST_DEBUG_FUNCPTR(gst_lily_chunker_change_state);

    const GParamFlags rw_ready =
        G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;
    g_object_class_install_property(
        gobject_class, PROP_MODEL,
        g_param_spec_string("model", "Model",
                            "Model file (path): a Lily .safetensors file, or an AudioSR "
                            "checkpoint (.bin/.ckpt) together with config. Elements of one "
                            "process naming the same file, config, device and precision share "
                            "one copy of the weights. Unset: $LILY_MODEL, else the bundled "
                            "demonstration model (random weights; a warning says so)",
                            DEFAULT_MODEL, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_CONFIG,
        g_param_spec_string("config", "Model config",
                            "AudioSR YAML config (path) for a checkpoint without an embedded "
                            "one (AudioSR's .bin/.ckpt); unset for Lily .safetensors files",
                            DEFAULT_CONFIG, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_DEVICE,
        g_param_spec_string("device", "Device",
                            "Where the model runs: \"cpu\", \"cuda\" or \"cuda:N\" (device "
                            "index N); other values are refused when set",
                            DEFAULT_DEVICE, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_PRECISION,
        g_param_spec_enum("precision", "Precision",
                          "Arithmetic of the model: f32, bf16 (matrix products in bf16, f32 "
                          "accumulation) or f16 (CUDA only)",
                          GST_TYPE_LILY_PRECISION, DEFAULT_PRECISION, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_REAL_TIME_FACTOR,
        g_param_spec_double("real-time-factor", "Real-time factor",
                            "Engine time divided by the duration of the audio it processed "
                            "since PAUSED (ratio; above 1 is slower than real time)",
                            0, G_MAXDOUBLE, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
    gst_type_mark_as_plugin_api(GST_TYPE_LILY_CHUNKER, 0);
    gst_type_mark_as_plugin_api(GST_TYPE_LILY_PRECISION, 0);
}

void gst_lily_chunker_add_pads(GstLilyChunker *self)
{
    GstElementClass *ec = GST_ELEMENT_GET_CLASS(self);
    GstPadTemplate *sink_tmpl = gst_element_class_get_pad_template(ec, "sink");
    GstPadTemplate *src_tmpl = gst_element_class_get_pad_template(ec, "src");
    g_return_if_fail(sink_tmpl && src_tmpl);

    self->sinkpad = gst_pad_new_from_template(sink_tmpl, "sink");
    gst_pad_set_chain_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_lily_chunker_chain));
    gst_pad_set_event_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_lily_chunker_sink_event));
    gst_pad_set_query_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_lily_chunker_query));
    gst_element_add_pad(GST_ELEMENT(self), self->sinkpad);

    self->srcpad = gst_pad_new_from_template(src_tmpl, "src");
    gst_pad_set_query_function(self->srcpad, GST_DEBUG_FUNCPTR(gst_lily_chunker_query));
    gst_element_add_pad(GST_ELEMENT(self), self->srcpad);
}

static void gst_lily_chunker_init(GstLilyChunker *self)
{
    self->device = g_strdup(DEFAULT_DEVICE);
    self->device_kind = LILY_DEVICE_CPU;
    self->device_index = 0;
    self->precision = DEFAULT_PRECISION;
    self->latency_samples = -1;
    gst_segment_init(&self->segment, GST_FORMAT_TIME);
    section_reset(self);
}
