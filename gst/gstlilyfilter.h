/* gstlilyfilter.h - the pad side that lily's filter elements share: lilymel and GstLilyChunker
 * (the base of lilydiffuse and lilyvocoder) each have one always sink pad and one always source
 * pad, work in sections that start at a time origin and end in a drain, and add a fixed number
 * of 48 kHz samples to the latency. The helpers below are that contract written once:
 *
 * - the audio/x-lily-mel caps and their template string;
 * - samples <-> time (rounded, from counters), the discontinuity test and a section's origin;
 * - the sink event function (CAPS, SEGMENT, GAP, EOS, FLUSH_*) and the pad query function
 *   (CAPS with the channel count carried across, LATENCY), driven by a GstLilyFilterFuncs;
 * - a mapped output buffer, and the read-only counter properties.
 *
 * Everything logs against the element's object in the element's own debug category (passed
 * in), so GST_DEBUG=lily*:5 reads as if each element logged it itself. */
#ifndef LILY_GST_GSTLILYFILTER_H
#define LILY_GST_GSTLILYFILTER_H

#include <gst/gst.h>
#include <lily/lily.h>

G_BEGIN_DECLS

/* The caps of mel frames (lilymel's source, lilydiffuse's pads, lilyvocoder's sink), for
 * static pad templates; gst_lily_filter_mel_caps() gives the fixed form. */
#define GST_LILY_FILTER_MEL_CAPS                                                                 \
    "audio/x-lily-mel, rate = (int) 48000, hop = (int) 480, n-mels = (int) 256, "                \
    "channels = (int) [ 1, MAX ], n-fft = (int) 2048, format = (string) F32LE, "                 \
    "layout = (string) planar"

/* audio/x-lily-mel caps for `channels` channels. */
GstCaps *gst_lily_filter_mel_caps(guint channels);

/* `samples` 48 kHz samples as a duration, rounded to the nearest ns. Timestamps are always
 * origin + gst_lily_filter_samples_to_time(counter), never summed durations. */
GstClockTime gst_lily_filter_samples_to_time(guint64 samples);

/* Whether a buffer stamped `pts` breaks a section that started at `origin` and has received
 * `samples` samples since: more than 5 ms (audiofxbasefirfilter's tolerance) off where it
 * should be. An invalid pts never does. Logs the jump (INFO) against `obj` in `cat`. */
gboolean gst_lily_filter_timestamp_jumped(GstObject *obj, GstDebugCategory *cat,
                                          GstClockTime origin, guint64 samples, GstClockTime pts);

/* The time origin of a section whose first buffer is stamped `pts`: the pts, else the start of
 * a TIME segment, else 0. Logs the start of the section (DEBUG) against `obj` in `cat`. */
GstClockTime gst_lily_filter_section_origin(GstObject *obj, GstDebugCategory *cat,
                                            GstClockTime pts, const GstSegment *segment);

/* Sends `caps` (taken) downstream as the source pad's caps; logs (WARNING, against `obj` in
 * `cat`) when downstream refuses them. Returns whether it accepted them. */
gboolean gst_lily_filter_push_caps(GstObject *obj, GstDebugCategory *cat, GstPad *srcpad,
                                   GstCaps *caps);

/* What an element tells the shared pad functions. Each receives the element (the pads'
 * parent); they run where the event or query arrives (the streaming thread for all but
 * FLUSH_START and the queries). */
typedef struct {
    /* The element's debug category: a pointer to its variable, which GST_DEBUG_CATEGORY_INIT
     * fills at type registration (after this table is initialised). */
    GstDebugCategory **category;
    /* The sink caps changed (the CAPS event; it is consumed): TRUE to accept them. */
    gboolean (*set_caps)(GstElement *element, GstCaps *caps);
    /* End the section: push what it holds, restart the counters; `why` is for the log. The
     * events ignore the flow it returns (the event goes on regardless), the chain does not. */
    GstFlowReturn (*drain)(GstElement *element, const gchar *why);
    /* FLUSH_START (not serialized; may be NULL) and FLUSH_STOP (drop the section without
     * output; the segment is reset to TIME afterwards). Both events then go downstream. */
    void (*flush_start)(GstElement *element);
    void (*flush_stop)(GstElement *element);
    /* The element's latency in 48 kHz samples (<= 0: none), asked at each LATENCY query. */
    gint64 (*latency_samples)(GstElement *element);
} GstLilyFilterFuncs;

/* Ends the running section before `buffer` when `why` (the element's reason that `buffer`
 * breaks it, NULL when it does not) is set. Returns the drain's flow; when that is not OK the
 * buffer has been dropped and the chain function returns the flow as it is. */
GstFlowReturn gst_lily_filter_break_section(GstElement *element, const GstLilyFilterFuncs *funcs,
                                            const gchar *why, GstBuffer *buffer);

/* The sink pad's event function, for an element whose section state lives in `segment`:
 * SEGMENT, GAP and EOS drain first (SEGMENT then stores the new segment); everything but CAPS
 * goes on with gst_pad_event_default. */
gboolean gst_lily_filter_sink_event(GstPad *pad, GstObject *parent, GstEvent *event,
                                    GstSegment *segment, const GstLilyFilterFuncs *funcs);

/* Both pads' query function: CAPS from the templates with the channel count of the other pad's
 * peer carried over (the source pad keeps its current caps once negotiated); LATENCY on the
 * source pad adds the element's latency to upstream's figure; the rest goes to
 * gst_pad_query_default. */
gboolean gst_lily_filter_query(GstPad *pad, GstObject *parent, GstQuery *query, GstPad *sinkpad,
                               GstPad *srcpad, const GstLilyFilterFuncs *funcs);

/* A new buffer of `size` bytes mapped for writing into `map`; on failure posts a RESOURCE
 * error on `element` and returns NULL. */
GstBuffer *gst_lily_filter_buffer_new_mapped(GstElement *element, gsize size, GstMapInfo *map);

/* Installs a read-only guint64 counter property (0..G_MAXUINT64, default 0); `name`, `nick`
 * and `blurb` must be static strings. */
void gst_lily_filter_install_counter(GObjectClass *klass, guint prop_id, const gchar *name,
                                     const gchar *nick, const gchar *blurb);

G_END_DECLS

#endif /* LILY_GST_GSTLILYFILTER_H */
