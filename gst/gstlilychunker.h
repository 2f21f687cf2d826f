/* gstlilychunker.h - GstLilyChunker: the abstract base of lilydiffuse and lilyvocoder.
 *
 * Both elements take audio/x-lily-mel buffers with a GstLilyMelMeta and feed one engine stream
 * per channel (LilyDiffuser, LilyVocoderStream). The engine streams plan the chunks (cutting,
 * overlap, cross-fade, padding: engine/models/stream.c), so their output depends only on the
 * sample sequence. This class owns the GStreamer side both share, the role gst-plugins-good's
 * audiofxbasefirfilter plays for its FIR filters:
 *
 * - the model (from the process-wide cache, held from READY->PAUSED until READY->NULL) and a
 *   LilyContext per element (READY->PAUSED to PAUSED->READY) on the element's device, the
 *   engine log routed to `lilyengine`;
 * - the per-channel stream array, rebuilt at a caps change after draining the old format;
 * - sections: DISCONT, a timestamp jump over 5 ms, a new lilymel section (meta offset 0), GAP,
 *   SEGMENT and EOS drain the streams (finish, push the rest) and restart them;
 * - timestamps from counters: PTS = origin + scale(units out), origin = the section's first
 *   input PTS (the segment start when it has none);
 * - the LATENCY answer: upstream + the stream's latency in samples, converted once with
 *   gst_util_uint64_scale_int_round; a LATENCY message when the figure changes;
 * - FLUSH_START and PAUSED->READY raise the engine's abort flag (polled every sampler step),
 *   FLUSH_STOP resets the streams and keeps the model;
 * - the real-time factor, and one warning when processing falls behind a live source.
 *
 * Subclasses fill the class vfuncs; they run in the streaming thread (stream_new also at
 * READY->PAUSED, for the latency figure). */
#ifndef LILY_GST_GSTLILYCHUNKER_H
#define LILY_GST_GSTLILYCHUNKER_H

#include <gst/gst.h>
#include <lily/lily.h>

#include "gstlilymelmeta.h"
#include "gstlilymodelcache.h"

G_BEGIN_DECLS

/* The example-launch metadata of both subclasses: the chain they form behind lilymel. */
#define GST_LILY_CHUNKER_EXAMPLE_LAUNCH                                                          \
    "gst-launch-1.0 filesrc location=in.flac ! decodebin ! audioconvert ! audioresample ! "      \
    "lilymel ! lilydiffuse model=model.safetensors ! lilyvocoder model=model.safetensors ! "     \
    "audioconvert ! wavenc ! filesink location=out.wav"

#define GST_TYPE_LILY_CHUNKER (gst_lily_chunker_get_type())
#define GST_LILY_CHUNKER(obj)                                                                    \
    (G_TYPE_CHECK_INSTANCE_CAST((obj), GST_TYPE_LILY_CHUNKER, GstLilyChunker))
#define GST_LILY_CHUNKER_CLASS(klass)                                                            \
    (G_TYPE_CHECK_CLASS_CAST((klass), GST_TYPE_LILY_CHUNKER, GstLilyChunkerClass))
#define GST_LILY_CHUNKER_GET_CLASS(obj)                                                          \
    (G_TYPE_INSTANCE_GET_CLASS((obj), GST_TYPE_LILY_CHUNKER, GstLilyChunkerClass))
#define GST_IS_LILY_CHUNKER(obj) (G_TYPE_CHECK_INSTANCE_TYPE((obj), GST_TYPE_LILY_CHUNKER))

typedef struct _GstLilyChunker GstLilyChunker;
typedef struct _GstLilyChunkerClass GstLilyChunkerClass;

#define GST_LILY_CHUNKER_DEFAULT_DEVICE "cpu"
#define GST_LILY_CHUNKER_DEFAULT_PRECISION LILY_PRECISION_F32

struct _GstLilyChunker {
    GstElement parent;
    GstPad *sinkpad;
    GstPad *srcpad;

    /* Settings (object lock). */
    gchar *model_path;
    gchar *config_path;
    gchar *device; /* as set: "cpu", "cuda" or "cuda:N" (already parsed into the next two) */
    LilyDeviceKind device_kind;
    gint device_index;
    LilyPrecision precision;

    /* Engine: the context from READY->PAUSED to PAUSED->READY; the model (from the cache) from
     * READY->PAUSED to READY->NULL, so a restart through READY does not reload it. */
    LilyContext *ctx;
    LilyModel *model;
    GstLilyModelKey model_key; /* what `model` was acquired for (strings owned) */

    /* One engine stream per channel, built at a CAPS event (streaming thread). */
    gpointer *streams;
    guint channels;

    /* The current section (streaming thread). */
    GstSegment segment;
    gboolean started;
    GstClockTime origin;
    guint64 frames_in; /* mel frames received in the section */
    guint64 samples_in; /* real source samples (the metas' n_valid) received in the section */
    guint64 units_out; /* frames (lilydiffuse) or samples (lilyvocoder) pushed in the section */
    gboolean discont_out;

    /*< private >*/
    gint flushing;           /* atomic: the engine's abort flag */
    gint64 latency_samples;  /* object lock; -1 until known */
    gboolean live;           /* upstream is live (from the latency query) */
    gboolean live_checked;
    gint64 busy_us;          /* engine time in the streams */
    guint64 audio_samples;   /* 48 kHz samples of audio that time was spent on */
    gdouble rtf;             /* object lock */
    gboolean warned_slow;
};

struct _GstLilyChunkerClass {
    GstElementClass parent_class;

    /* Called once ctx and model are ready (READY->PAUSED); may fail with an element error. */
    gboolean (*start)(GstLilyChunker *self);
    /* A new engine stream with the current settings; the message is in self->ctx on failure. */
    LilyStatus (*stream_new)(GstLilyChunker *self, gpointer *stream);
    void (*stream_free)(gpointer stream);
    void (*stream_reset)(gpointer stream);
    /* Samples of 48 kHz input the stream holds before its output (the element's latency). */
    gint64 (*stream_latency)(gpointer stream);
    /* The source pad's caps for `channels` channels. */
    GstCaps *(*src_caps)(GstLilyChunker *self, guint channels);
    /* Feeds one input buffer of `frames` mel frames to the streams and pushes what is ready. */
    GstFlowReturn (*process)(GstLilyChunker *self, GstBuffer *buffer, const GstLilyMelMeta *meta,
                             gsize frames);
    /* End of section: finish the streams and push the rest (reset happens afterwards). */
    GstFlowReturn (*drain)(GstLilyChunker *self);
};

GType gst_lily_chunker_get_type(void);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GstLilyChunker, gst_object_unref)

/* Makes the sink and src pads from the subclass's pad templates. Subclasses call it from
 * their instance init: during the base's own init GObject presents the base class, which has
 * no templates. */
void gst_lily_chunker_add_pads(GstLilyChunker *self);

/* Stamps `buffer` as the next `units` units of output (a unit is samples_per_unit samples at
 * 48 kHz: 480 for mel frames, 1 for audio), PTS from the section origin and the counter, offsets
 * in units, DISCONT on the first of a section; pushes it. */
GstFlowReturn gst_lily_chunker_push(GstLilyChunker *self, GstBuffer *buffer, guint64 units,
                                    guint samples_per_unit);

/* A failed engine call: cancellation becomes GST_FLOW_FLUSHING (no error), anything else a
 * STREAM error naming `what` with the engine's message, and GST_FLOW_ERROR. */
GstFlowReturn gst_lily_chunker_engine_error(GstLilyChunker *self, LilyStatus st,
                                            const gchar *what);

/* Records `busy_us` of engine time spent on `samples` of 48 kHz audio: updates the
 * real-time factor and warns once when a live source is outpaced. */
void gst_lily_chunker_account(GstLilyChunker *self, gint64 busy_us, guint64 samples);

/* Whether a GST_PARAM_MUTABLE_READY property may change now; warns (g_warning) if not. */
gboolean gst_lily_chunker_may_reconfigure(GstElement *element, GParamSpec *pspec);

/* A setting that decides the latency changed (subclasses' set_property): posts a LATENCY
 * message so a pipeline asks again; the figure itself is recomputed from a fresh stream at the
 * next READY->PAUSED (the settings are GST_PARAM_MUTABLE_READY), which posts another message
 * if it differs from the one answered before. */
void gst_lily_chunker_latency_changed(GstLilyChunker *self);

G_END_DECLS

#endif /* LILY_GST_GSTLILYCHUNKER_H */
