/* gstlilyfilter.c - the pad side lilymel and GstLilyChunker share (see gstlilyfilter.h). The
 * contract is GStreamer's streaming-element one as gst-plugins-good's audiofxbasefirfilter.c
 * (latency query, timestamps from counters, discontinuity test) and gst-plugins-bad's
 * audiobuffersplit.c (sink_event discipline) keep it. Nothing here has state of its own: the
 * elements own their sections, these functions only read and log them. */
#include "gstlilyfilter.h"

/* Timestamp tolerance before a jump counts as a discontinuity (audiofxbasefirfilter's 5 ms). */
#define DISCONT_TOLERANCE (5 * GST_MSECOND)

GstCaps *gst_lily_filter_mel_caps(guint channels)
{
    return gst_caps_new_simple("audio/x-lily-mel", "rate", G_TYPE_INT, LILY_SAMPLE_RATE, "hop",
                               G_TYPE_INT, LILY_HOP, "n-mels", G_TYPE_INT, LILY_N_MELS,
                               "channels", G_TYPE_INT, (gint)channels, "n-fft", G_TYPE_INT,
                               LILY_N_FFT, "format", G_TYPE_STRING, "F32LE", "layout",
                               G_TYPE_STRING, "planar", NULL);
}

GstClockTime gst_lily_filter_samples_to_time(guint64 samples)
{
    return gst_util_uint64_scale_int_round(samples, GST_SECOND, LILY_SAMPLE_RATE);
}

gboolean gst_lily_filter_timestamp_jumped(GstObject *obj, GstDebugCategory *cat,
                                          GstClockTime origin, guint64 samples, GstClockTime pts)
{
    if (!GST_CLOCK_TIME_IS_VALID(pts)) return FALSE;
    GstClockTime expected = origin + gst_lily_filter_samples_to_time(samples);
    GstClockTimeDiff d = GST_CLOCK_DIFF(expected, pts);
    if (ABS(d) <= (GstClockTimeDiff)DISCONT_TOLERANCE) return FALSE;
    GST_CAT_INFO_OBJECT(cat, obj, "timestamp jump: expected %" GST_TIME_FORMAT ", got %"
                        GST_TIME_FORMAT, GST_TIME_ARGS(expected), GST_TIME_ARGS(pts));
    return TRUE;
}

GstClockTime gst_lily_filter_section_origin(GstObject *obj, GstDebugCategory *cat,
                                            GstClockTime pts, const GstSegment *segment)
{
    GstClockTime origin;
    if (GST_CLOCK_TIME_IS_VALID(pts))
        origin = pts;
    else if (segment->format == GST_FORMAT_TIME && GST_CLOCK_TIME_IS_VALID(segment->start))
        origin = segment->start;
    else
        origin = 0;
    GST_CAT_DEBUG_OBJECT(cat, obj, "section starts, time origin %" GST_TIME_FORMAT,
                         GST_TIME_ARGS(origin));
    return origin;
}

gboolean gst_lily_filter_push_caps(GstObject *obj, GstDebugCategory *cat, GstPad *srcpad,
                                   GstCaps *caps)
{
    gboolean ok = gst_pad_push_event(srcpad, gst_event_new_caps(caps));
    if (!ok)
        GST_CAT_WARNING_OBJECT(cat, obj, "downstream refused the output caps %" GST_PTR_FORMAT,
                               caps);
    gst_caps_unref(caps);
    return ok;
}

GstFlowReturn gst_lily_filter_break_section(GstElement *element, const GstLilyFilterFuncs *funcs,
                                            const gchar *why, GstBuffer *buffer)
{
    if (!why) return GST_FLOW_OK;
    GstFlowReturn ret = funcs->drain(element, why);
    if (ret != GST_FLOW_OK) gst_buffer_unref(buffer);
    return ret;
}

/* ---------------------------------------------------------------------------------------- */
/* Pad functions                                                                             */
/* ---------------------------------------------------------------------------------------- */

gboolean gst_lily_filter_sink_event(GstPad *pad, GstObject *parent, GstEvent *event,
                                    GstSegment *segment, const GstLilyFilterFuncs *funcs)
{
    GstElement *element = GST_ELEMENT(parent);
    GstDebugCategory *cat = *funcs->category;
    GST_CAT_LOG_OBJECT(cat, parent, "event %" GST_PTR_FORMAT, event);
    switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
        GstCaps *caps;
        gst_event_parse_caps(event, &caps);
        gboolean ok = funcs->set_caps(element, caps);
        gst_event_unref(event);
        return ok;
    }
    case GST_EVENT_SEGMENT:
        /* Output of the old segment first; the new one goes downstream (sticky) before any
         * output made under it. */
        funcs->drain(element, "new segment");
        gst_event_copy_segment(event, segment);
        GST_CAT_DEBUG_OBJECT(cat, parent, "segment %" GST_SEGMENT_FORMAT, segment);
        break;
    case GST_EVENT_GAP:
        funcs->drain(element, "gap");
        break;
    case GST_EVENT_EOS:
        funcs->drain(element, "EOS");
        break;
    case GST_EVENT_FLUSH_START:
        if (funcs->flush_start) funcs->flush_start(element);
        break;
    case GST_EVENT_FLUSH_STOP:
        funcs->flush_stop(element);
        gst_segment_init(segment, GST_FORMAT_TIME);
        break;
    default:
        break;
    }
    return gst_pad_event_default(pad, parent, event);
}

/* Caps on `pad` given what the peer of the other pad allows: the channel count carries over,
 * everything else is fixed by the templates. */
static GstCaps *transform_caps(GstPad *pad, GstPad *sinkpad, GstPad *srcpad, GstCaps *filter)
{
    if (pad == srcpad) {
        /* Once negotiated the output caps only change when the input's channel count does. */
        GstCaps *cur = gst_pad_get_current_caps(pad);
        if (cur) {
            if (!filter) return cur;
            GstCaps *t = gst_caps_intersect_full(filter, cur, GST_CAPS_INTERSECT_FIRST);
            gst_caps_unref(cur);
            return t;
        }
    }
    GstPad *other = pad == sinkpad ? srcpad : sinkpad;
    GstCaps *tmpl = gst_pad_get_pad_template_caps(pad);
    GstCaps *other_tmpl = gst_pad_get_pad_template_caps(other);
    GstCaps *peer = gst_pad_peer_query_caps(other, other_tmpl);
    GstCaps *res;
    if (gst_caps_is_any(peer)) {
        res = gst_caps_ref(tmpl);
    } else {
        res = gst_caps_new_empty();
        for (guint i = 0; i < gst_caps_get_size(peer); i++) {
            const GValue *ch =
                gst_structure_get_value(gst_caps_get_structure(peer, i), "channels");
            GstCaps *c = gst_caps_copy(tmpl);
            if (ch)
                for (guint j = 0; j < gst_caps_get_size(c); j++)
                    gst_structure_set_value(gst_caps_get_structure(c, j), "channels", ch);
            res = gst_caps_merge(res, c);
        }
        GstCaps *t = gst_caps_intersect(res, tmpl);
        gst_caps_unref(res);
        res = t;
    }
    if (filter) {
        GstCaps *t = gst_caps_intersect_full(filter, res, GST_CAPS_INTERSECT_FIRST);
        gst_caps_unref(res);
        res = t;
    }
    gst_caps_unref(peer);
    gst_caps_unref(other_tmpl);
    gst_caps_unref(tmpl);
    return res;
}

/* Upstream's figure plus ours: the element holds its latency_samples before its output. */
static gboolean query_latency(GstObject *parent, GstPad *sinkpad, GstQuery *query,
                              const GstLilyFilterFuncs *funcs)
{
    if (!gst_pad_peer_query(sinkpad, query)) return FALSE;
    gboolean live;
    GstClockTime min, max;
    gst_query_parse_latency(query, &live, &min, &max);
    gint64 samples = funcs->latency_samples(GST_ELEMENT(parent));
    GstClockTime ours = samples > 0 ? gst_lily_filter_samples_to_time((guint64)samples) : 0;
    GST_CAT_DEBUG_OBJECT(*funcs->category, parent,
                         "latency: upstream min %" GST_TIME_FORMAT " max %" GST_TIME_FORMAT
                         " live %d, adding %" GST_TIME_FORMAT " (%" G_GINT64_FORMAT " samples)",
                         GST_TIME_ARGS(min), GST_TIME_ARGS(max), live, GST_TIME_ARGS(ours),
                         samples);
    min += ours;
    if (GST_CLOCK_TIME_IS_VALID(max)) max += ours;
    gst_query_set_latency(query, live, min, max);
    return TRUE;
}

gboolean gst_lily_filter_query(GstPad *pad, GstObject *parent, GstQuery *query, GstPad *sinkpad,
                               GstPad *srcpad, const GstLilyFilterFuncs *funcs)
{
    switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_CAPS: {
        GstCaps *filter;
        gst_query_parse_caps(query, &filter);
        GstCaps *caps = transform_caps(pad, sinkpad, srcpad, filter);
        gst_query_set_caps_result(query, caps);
        gst_caps_unref(caps);
        return TRUE;
    }
    case GST_QUERY_LATENCY:
        if (pad == srcpad) return query_latency(parent, sinkpad, query, funcs);
        break;
    default:
        break;
    }
    return gst_pad_query_default(pad, parent, query);
}

/* ---------------------------------------------------------------------------------------- */
/* Buffers and properties                                                                    */
/* ---------------------------------------------------------------------------------------- */

GstBuffer *gst_lily_filter_buffer_new_mapped(GstElement *element, gsize size, GstMapInfo *map)
{
    GstBuffer *out = gst_buffer_new_allocate(NULL, size, NULL);
    if (!gst_buffer_map(out, map, GST_MAP_WRITE)) {
        gst_buffer_unref(out);
        GST_ELEMENT_ERROR(element, RESOURCE, FAILED, ("Could not map an output buffer"), (NULL));
        return NULL;
    }
    return out;
}

void gst_lily_filter_install_counter(GObjectClass *klass, guint prop_id, const gchar *name,
                                     const gchar *nick, const gchar *blurb)
{
    g_object_class_install_property(
        klass, prop_id,
        g_param_spec_uint64(name, nick, blurb, 0, G_MAXUINT64, 0,
                            G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
}
