/* gstlilymel.c - GstLilyMel (`lilymel`): the streaming front end of Lily. It turns 48 kHz F32
 * audio into the log-mel frames AudioSR computes in audiosr/utils.py mel_spectrogram_train
 * (spec.md section 1, stage 3a: reflect pad 784, periodic Hann 2048, hop 480, |STFT|, Slaney
 * mel 256 bins 20-24000 Hz, ln(max(mel, 1e-5))), frame for frame, while the audio streams.
 * The arithmetic is the engine's (lily_mel_frames); this file owns the streaming: padding at
 * both ends, timestamps, latency, drain, flush and the source-sample meta.
 */

/**
 * SECTION:element-lilymel
 * @title: lilymel
 * @short_description: 48 kHz audio to AudioSR log-mel frames
 *
 * lilymel computes, per channel, the 256-bin log-mel spectrogram AudioSR feeds its VAE and
 * vocoder: frame f covers the input samples [480 f - 784, 480 f + 1264) (a 2048-sample
 * periodic Hann window every 480 samples, 100 frames per second), magnitude STFT, Slaney mel
 * filterbank 20 Hz-24 kHz, then ln(max(mel, 1e-5)). At the start of a stream the signal is
 * reflect-padded by 784 samples (sample -k mirrors sample k), exactly as AudioSR pads a file,
 * so the frames equal AudioSR's for the same samples. Silence is ordinary input: its frames
 * are ln(1e-5) = -11.5129 in every bin.
 *
 * Input: `audio/x-raw, format=F32LE, rate=48000`, any number of channels, interleaved or
 * non-interleaved. Other formats and rates are refused (not-negotiated): put `audioconvert !
 * audioresample !` in front for other inputs. Channels are processed independently.
 *
 * Output: `audio/x-lily-mel, rate=48000, hop=480, n-mels=256, channels=N, n-fft=2048,
 * format=F32LE, layout=planar`. A buffer holds F whole frames (F varies with the input buffer
 * sizes) as little-endian float32 in channel-major order, [channel][frame][mel]: all F frames
 * of channel 0 (256 values each), then all F frames of channel 1, and so on; its size is
 * N * F * 256 * 4 bytes. A `filesink` dump of a mono stream is therefore a plain [frames, 256]
 * float32 array (numpy: np.fromfile(path, "<f4").reshape(-1, 256)); with N channels dump one
 * file per buffer (multifilesink) and reshape each to [N, -1, 256] (docs/elements.md).
 *
 * Timestamps come from counters, never from summed durations: the first buffer's timestamp
 * is the stream's time origin T0 and frame f gets PTS = T0 + round(480 f * 1 s / 48000),
 * duration = PTS(next frame) - PTS(f), offset = f and offset-end = f + F. Each buffer carries
 * a GstLilyMelMeta (gstlilymelmeta.h) with the 48 kHz source samples of its frames' hop spans
 * [480 f0, 480 (f0 + F)), their stream offset and how many of them are real input.
 *
 * Latency: a frame can be computed once the last sample of its window has arrived, 784
 * samples (16.333 ms) after the end of its hop span; the LATENCY query adds 16333333 ns to
 * the upstream minimum, and to the maximum unless that is unbounded.
 *
 * End of stream: the tail is padded as AudioSR pads a file: zeros up to a multiple of 245760
 * samples (5.12 s, AudioSR's segment), then a 784-sample reflect pad, and the remaining frames
 * are emitted, so a stream of n samples gives ceil(n / 245760) * 512 frames in total (1 s ->
 * 512 frames, 5.12 s -> 512, 5.13 s -> 1024). The meta's n_valid tells which samples of the
 * padded tail were real. The padded frames' timestamps run on past the real end (to the next
 * multiple of 5.12 s), which a synchronising sink waits for.
 *
 * Sections: a DISCONT buffer, a timestamp jump of more than 5 ms, a GAP event, a new SEGMENT
 * or a change of channel count ends the current section the same way (drained and padded as
 * at EOS) and restarts the frame counter at 0 with the next buffer's timestamp as the new
 * origin. A flush drops every pending sample and the counters without output.
 *
 * Non-finite input (NaN, +-inf) is replaced by 0 before the STFT; the first occurrence posts
 * one element warning and every replaced sample is counted in the `sanitized-samples`
 * property.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 audiotestsrc num-buffers=100 ! audio/x-raw,rate=48000 ! lilymel ! fakesink
 * ]| 100 buffers of a 440 Hz sine (audiotestsrc negotiates F32LE with lilymel) to 512 frames.
 * |[
 * gst-launch-1.0 filesrc location=in.flac ! decodebin ! audioconvert ! audioresample ! \
 *     lilymel ! filesink location=mel.f32
 * ]| Any decodable file to a float32 mel dump.
 */
#include <math.h>
#include <string.h>

#include "gstlily.h"
#include "gstlilyfilter.h"
#include "gstlilymel.h"
#include "gstlilymelmeta.h"

GST_DEBUG_CATEGORY_STATIC(gst_lily_mel_debug);
#define GST_CAT_DEFAULT gst_lily_mel_debug

enum {
    PROP_0,
    PROP_FRAMES,
    PROP_SANITIZED_SAMPLES,
};

struct _GstLilyMel {
    GstElement parent;
    GstPad *sinkpad;
    GstPad *srcpad;

    LilyContext *ctx; /* READY->PAUSED .. PAUSED->READY */
    LilyMel *mel;

    GstAudioInfo info;
    gboolean have_info;
    guint channels; /* channel count the sample store is laid out for */
    GstSegment segment;

    /* The current section: samples since the time origin, counted from 0. */
    gboolean started;
    GstClockTime origin;
    guint64 n_in;       /* real samples received */
    guint64 next_frame; /* first frame not yet emitted */
    gboolean head_filled;
    gboolean discont_out;

    /* Sample store, one array per channel: the padded signal from stream index buf_start
     * (-784 until samples can be dropped) for buf_len samples. Before 785 samples have
     * arrived, positions of indices -784..-1 are placeholders for the reflect pad. */
    gfloat **buf;
    gint64 buf_start;
    gsize buf_len;
    gsize buf_cap;

    gboolean warned_nonfinite;

    /* Object lock: read by the property getters from any thread. */
    guint64 frames_total;
    guint64 sanitized_total;
};

G_DEFINE_TYPE_WITH_CODE(GstLilyMel, gst_lily_mel, GST_TYPE_ELEMENT,
                        GST_DEBUG_CATEGORY_INIT(gst_lily_mel_debug, "lilymel", 0,
                                                "Lily mel front end");
                        gst_lily_debug_init());
GST_ELEMENT_REGISTER_DEFINE(lilymel, "lilymel", GST_RANK_NONE, GST_TYPE_LILY_MEL);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format = (string) F32LE, rate = (int) 48000, "
                    "channels = (int) [ 1, MAX ], "
                    "layout = (string) { interleaved, non-interleaved }"));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_LILY_FILTER_MEL_CAPS));

static GstClockTime latency_ns(void)
{
    return gst_lily_filter_samples_to_time(GST_LILY_MEL_CONTEXT);
}

static GstClockTime frame_time(const GstLilyMel *self, guint64 frame)
{
    return self->origin + gst_lily_filter_samples_to_time(frame * LILY_HOP);
}

/* ---------------------------------------------------------------------------------------- */
/* Sample store                                                                              */
/* ---------------------------------------------------------------------------------------- */

static void store_free(GstLilyMel *self)
{
    if (self->buf) {
        for (guint c = 0; c < self->channels; c++) g_free(self->buf[c]);
        g_free(self->buf);
    }
    self->buf = NULL;
    self->buf_cap = 0;
    self->buf_len = 0;
    self->channels = 0;
}

/* Forgets the section: no output, no samples, counters at 0, origin re-armed. */
static void section_reset(GstLilyMel *self)
{
    self->started = FALSE;
    self->origin = GST_CLOCK_TIME_NONE;
    self->n_in = 0;
    self->next_frame = 0;
    self->head_filled = FALSE;
    self->discont_out = TRUE;
    self->buf_start = -GST_LILY_MEL_CONTEXT;
    self->buf_len = GST_LILY_MEL_CONTEXT; /* placeholders for the reflect pad */
    if (self->buf)
        for (guint c = 0; c < self->channels; c++)
            memset(self->buf[c], 0, sizeof(gfloat) * GST_LILY_MEL_CONTEXT);
}

static void store_reserve(GstLilyMel *self, gsize need)
{
    if (need <= self->buf_cap) return;
    gsize cap = MAX(need, self->buf_cap * 2);
    cap = MAX(cap, (gsize)LILY_N_FFT * 4);
    for (guint c = 0; c < self->channels; c++) self->buf[c] = g_renew(gfloat, self->buf[c], cap);
    self->buf_cap = cap;
}

static void store_setup(GstLilyMel *self, guint channels)
{
    store_free(self);
    self->channels = channels;
    self->buf = g_new0(gfloat *, channels);
    store_reserve(self, (gsize)LILY_N_FFT * 4);
    section_reset(self);
}

/* Position in the store of stream sample `index`. */
static gsize store_pos(const GstLilyMel *self, gint64 index)
{
    g_assert(index >= self->buf_start);
    return (gsize)(index - self->buf_start);
}

/* torch 'reflect' at the start: sample -k is sample k (k = 1..784), sample 0 not repeated. */
static void fill_head(GstLilyMel *self)
{
    g_assert(self->buf_start == -GST_LILY_MEL_CONTEXT);
    for (guint c = 0; c < self->channels; c++) {
        gfloat *x = self->buf[c];
        for (gint k = 1; k <= GST_LILY_MEL_CONTEXT; k++)
            x[GST_LILY_MEL_CONTEXT - k] = x[GST_LILY_MEL_CONTEXT + k];
    }
    self->head_filled = TRUE;
}

/* Drops samples no future frame or meta needs (everything before frame next_frame's window). */
static void store_compact(GstLilyMel *self)
{
    gint64 keep = (gint64)self->next_frame * LILY_HOP - GST_LILY_MEL_CONTEXT;
    if (keep <= self->buf_start) return;
    gsize drop = store_pos(self, keep);
    g_assert(drop <= self->buf_len);
    for (guint c = 0; c < self->channels; c++)
        memmove(self->buf[c], self->buf[c] + drop, sizeof(gfloat) * (self->buf_len - drop));
    self->buf_len -= drop;
    self->buf_start = keep;
}

/* Appends the samples of a mapped input buffer, replacing non-finite ones by 0.
 * Returns the number replaced. */
static guint64 store_append(GstLilyMel *self, const GstAudioBuffer *abuf)
{
    gsize n = abuf->n_samples;
    guint ch = self->channels;
    guint64 bad = 0;
    store_reserve(self, self->buf_len + n);
    gboolean interleaved = GST_AUDIO_INFO_LAYOUT(&abuf->info) == GST_AUDIO_LAYOUT_INTERLEAVED;
    for (guint c = 0; c < ch; c++) {
        gfloat *dst = self->buf[c] + self->buf_len;
        const gfloat *src = interleaved ? (const gfloat *)abuf->planes[0] + c
                                        : (const gfloat *)abuf->planes[c];
        gsize stride = interleaved ? ch : 1;
        for (gsize i = 0; i < n; i++) {
            gfloat v = src[i * stride];
            if (G_UNLIKELY(!isfinite(v))) {
                v = 0.0f;
                bad++;
            }
            dst[i] = v;
        }
    }
    self->buf_len += n;
    return bad;
}

static void store_append_zeros(GstLilyMel *self, gsize n)
{
    store_reserve(self, self->buf_len + n);
    for (guint c = 0; c < self->channels; c++)
        memset(self->buf[c] + self->buf_len, 0, sizeof(gfloat) * n);
    self->buf_len += n;
}

/* torch 'reflect' at the end of a stream of `end` samples: sample end-1+k is sample end-1-k. */
static void store_append_reflect_tail(GstLilyMel *self, guint64 end)
{
    store_reserve(self, self->buf_len + GST_LILY_MEL_CONTEXT);
    gsize last = store_pos(self, (gint64)end - 1);
    g_assert(last + 1 == self->buf_len && last >= (gsize)GST_LILY_MEL_CONTEXT);
    for (guint c = 0; c < self->channels; c++) {
        gfloat *x = self->buf[c];
        for (gsize k = 1; k <= GST_LILY_MEL_CONTEXT; k++) x[last + k] = x[last - k];
    }
    self->buf_len += GST_LILY_MEL_CONTEXT;
}

/* ---------------------------------------------------------------------------------------- */
/* Output                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* Computes frames [next_frame, end) and pushes them as one buffer. */
static GstFlowReturn emit_frames(GstLilyMel *self, guint64 end)
{
    if (end <= self->next_frame) return GST_FLOW_OK;
    guint64 f0 = self->next_frame;
    gsize nf = (gsize)(end - f0);
    guint ch = self->channels;
    gsize per_ch = nf * LILY_N_MELS;
    gsize hop_samples = nf * LILY_HOP;

    gsize win = store_pos(self, (gint64)f0 * LILY_HOP - GST_LILY_MEL_CONTEXT);
    g_assert(win + hop_samples + 2 * GST_LILY_MEL_CONTEXT <= self->buf_len);

    GstMapInfo map;
    GstBuffer *out =
        gst_lily_filter_buffer_new_mapped(GST_ELEMENT(self), sizeof(gfloat) * ch * per_ch, &map);
    if (!out) return GST_FLOW_ERROR;
    gfloat *dst = (gfloat *)map.data;
    for (guint c = 0; c < ch; c++) {
        LilyStatus st = lily_mel_frames(self->mel, self->buf[c] + win, nf, dst + c * per_ch);
        if (st != LILY_OK) {
            gst_buffer_unmap(out, &map);
            gst_buffer_unref(out);
            GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Mel computation failed"),
                              ("lily_mel_frames (channel %u, frames %" G_GUINT64_FORMAT
                               "..%" G_GUINT64_FORMAT "): %s: %s",
                               c, f0, end, lily_status_name(st), lily_context_error(self->ctx)));
            return GST_FLOW_ERROR;
        }
    }
    gst_buffer_unmap(out, &map);

    guint64 first_sample = f0 * LILY_HOP;
    gsize valid = 0;
    if (self->n_in > first_sample) valid = (gsize)MIN(self->n_in - first_sample, hop_samples);
    GstLilyMelMeta *meta = gst_buffer_add_lily_mel_meta(out, ch, hop_samples, first_sample, valid);
    gsize hop0 = store_pos(self, (gint64)first_sample);
    for (guint c = 0; c < ch; c++)
        memcpy(meta->samples + c * hop_samples, self->buf[c] + hop0,
               sizeof(gfloat) * hop_samples);

    GstClockTime pts = frame_time(self, f0);
    GST_BUFFER_PTS(out) = pts;
    GST_BUFFER_DTS(out) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_DURATION(out) = frame_time(self, end) - pts;
    GST_BUFFER_OFFSET(out) = f0;
    GST_BUFFER_OFFSET_END(out) = end;
    if (self->discont_out) {
        GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DISCONT);
        self->discont_out = FALSE;
    }

    GST_DEBUG_OBJECT(self,
                   "frames %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT " (%" G_GSIZE_FORMAT
                   ") pts %" GST_TIME_FORMAT " dur %" GST_TIME_FORMAT ", %" G_GSIZE_FORMAT
                   " of %" G_GSIZE_FORMAT " source samples real",
                   f0, end, nf, GST_TIME_ARGS(pts), GST_TIME_ARGS(GST_BUFFER_DURATION(out)),
                   valid, hop_samples);

    self->next_frame = end;
    GST_OBJECT_LOCK(self);
    self->frames_total += nf;
    GST_OBJECT_UNLOCK(self);
    store_compact(self);
    return gst_pad_push(self->srcpad, out);
}

/* Frames whose window [480 f - 784, 480 f + 1264) lies inside the real samples received. */
static guint64 frames_ready(const GstLilyMel *self)
{
    guint64 need = LILY_HOP + GST_LILY_MEL_CONTEXT; /* 1264: frame 0's last sample + 1 */
    if (self->n_in < need) return 0;
    return (self->n_in - need) / LILY_HOP + 1;
}

/* Ends the section as AudioSR ends a file: zeros to a multiple of 245760 samples, a 784-sample
 * reflect pad, the remaining frames out; then a fresh section. */
static GstFlowReturn drain(GstLilyMel *self, const char *why)
{
    GstFlowReturn ret = GST_FLOW_OK;
    if (!self->started || self->n_in == 0 || !self->buf) {
        if (self->buf) section_reset(self);
        return ret;
    }
    guint64 seg = LILY_SEGMENT_SAMPLES;
    guint64 padded = (self->n_in + seg - 1) / seg * seg;
    guint64 total = padded / LILY_HOP;
    GST_INFO_OBJECT(self,
                    "drain (%s): %" G_GUINT64_FORMAT " real samples, zero-padded to %"
                    G_GUINT64_FORMAT " (+%" G_GUINT64_FORMAT "), frames %" G_GUINT64_FORMAT
                    "..%" G_GUINT64_FORMAT,
                    why, self->n_in, padded, padded - self->n_in, self->next_frame, total);
    store_append_zeros(self, (gsize)(padded - self->n_in));
    if (!self->head_filled) fill_head(self);
    store_append_reflect_tail(self, padded);
    ret = emit_frames(self, total);
    section_reset(self);
    return ret;
}

/* drain() with the signature of GstLilyFilterFuncs.drain, for the shared event function. */
static GstFlowReturn filter_drain(GstElement *element, const gchar *why)
{
    return drain(GST_LILY_MEL(element), why);
}

/* ---------------------------------------------------------------------------------------- */
/* Streaming                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* gst_audio_info_from_caps() wants a channel-mask beyond 2 channels; lilymel treats channels
 * independently, so caps without one are taken as unpositioned channels. */
static gboolean info_from_caps(GstAudioInfo *info, GstCaps *caps)
{
    if (gst_audio_info_from_caps(info, caps)) return TRUE;
    GstStructure *s = gst_caps_get_structure(caps, 0);
    const gchar *fmt = gst_structure_get_string(s, "format");
    const gchar *layout = gst_structure_get_string(s, "layout");
    gint rate, ch;
    if (!fmt || !layout || !gst_structure_get_int(s, "rate", &rate) ||
        !gst_structure_get_int(s, "channels", &ch) || ch < 1 ||
        gst_structure_has_field(s, "channel-mask"))
        return FALSE;
    GstAudioChannelPosition pos[64];
    for (guint i = 0; i < G_N_ELEMENTS(pos); i++) pos[i] = GST_AUDIO_CHANNEL_POSITION_NONE;
    gst_audio_info_set_format(info, gst_audio_format_from_string(fmt), rate, ch,
                              ch <= 64 ? pos : NULL);
    if (g_str_equal(layout, "interleaved"))
        info->layout = GST_AUDIO_LAYOUT_INTERLEAVED;
    else if (g_str_equal(layout, "non-interleaved"))
        info->layout = GST_AUDIO_LAYOUT_NON_INTERLEAVED;
    else
        return FALSE;
    return TRUE;
}

/* The CAPS event (GstLilyFilterFuncs.set_caps): a new channel count drains the section and
 * lays the sample store out anew. */
static gboolean set_sink_caps(GstElement *element, GstCaps *caps)
{
    GstLilyMel *self = GST_LILY_MEL(element);
    GstAudioInfo info;
    if (!info_from_caps(&info, caps) ||
        GST_AUDIO_INFO_FORMAT(&info) != GST_AUDIO_FORMAT_F32LE ||
        GST_AUDIO_INFO_RATE(&info) != LILY_SAMPLE_RATE) {
        GST_WARNING_OBJECT(self, "refusing caps %" GST_PTR_FORMAT, caps);
        return FALSE;
    }
    guint ch = (guint)GST_AUDIO_INFO_CHANNELS(&info);
    GST_INFO_OBJECT(self, "input caps %" GST_PTR_FORMAT, caps);
    if (self->have_info && ch == self->channels) {
        self->info = info; /* a layout change needs no drain: the store is planar */
        return TRUE;
    }
    if (self->have_info) drain(self, "channel count changes");
    self->info = info;
    self->have_info = TRUE;
    store_setup(self, ch);

    GstCaps *out = gst_lily_filter_mel_caps(ch);
    GST_INFO_OBJECT(self, "output caps %" GST_PTR_FORMAT ", latency %" GST_TIME_FORMAT
                          " (%d samples)",
                    out, GST_TIME_ARGS(latency_ns()), GST_LILY_MEL_CONTEXT);
    if (!gst_lily_filter_push_caps(GST_OBJECT(self), GST_CAT_DEFAULT, self->srcpad, out)) {
        self->have_info = FALSE;
        return FALSE;
    }
    return TRUE;
}

static void filter_flush_stop(GstElement *element)
{
    GstLilyMel *self = GST_LILY_MEL(element);
    GST_INFO_OBJECT(self, "flush: dropping %" G_GUINT64_FORMAT " pending samples, frame "
                          "counter %" G_GUINT64_FORMAT " -> 0",
                    self->n_in - MIN(self->n_in, self->next_frame * LILY_HOP), self->next_frame);
    if (self->buf) section_reset(self);
}

static gint64 filter_latency_samples(GstElement *element)
{
    (void)element;
    return GST_LILY_MEL_CONTEXT;
}

static const GstLilyFilterFuncs filter_funcs = {
    .category = &gst_lily_mel_debug,
    .set_caps = set_sink_caps,
    .drain = filter_drain,
    .flush_start = NULL, /* nothing runs long enough to need stopping */
    .flush_stop = filter_flush_stop,
    .latency_samples = filter_latency_samples,
};

static GstFlowReturn gst_lily_mel_chain(GstPad *pad, GstObject *parent, GstBuffer *buffer)
{
    (void)pad;
    GstLilyMel *self = GST_LILY_MEL(parent);
    GstFlowReturn ret = GST_FLOW_OK;

    if (G_UNLIKELY(!self->have_info || !self->mel)) {
        gst_buffer_unref(buffer);
        GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (NULL), ("received a buffer before caps"));
        return GST_FLOW_NOT_NEGOTIATED;
    }

    GstClockTime pts = GST_BUFFER_PTS(buffer);
    if (self->started) {
        const char *why = NULL;
        if (GST_BUFFER_IS_DISCONT(buffer)) why = "DISCONT buffer";
        /* Checked even after DISCONT, so a jump is named (and logged) as such. */
        if (gst_lily_filter_timestamp_jumped(GST_OBJECT(self), GST_CAT_DEFAULT, self->origin,
                                             self->n_in, pts))
            why = "timestamp jump";
        ret = gst_lily_filter_break_section(GST_ELEMENT(self), &filter_funcs, why, buffer);
        if (ret != GST_FLOW_OK) return ret;
    }
    if (!self->started) {
        self->origin = gst_lily_filter_section_origin(GST_OBJECT(self), GST_CAT_DEFAULT, pts,
                                                      &self->segment);
        self->started = TRUE;
        self->discont_out = TRUE;
    }

    GstAudioBuffer abuf;
    if (!gst_audio_buffer_map(&abuf, &self->info, buffer, GST_MAP_READ)) {
        gst_buffer_unref(buffer);
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, (NULL), ("could not map an input buffer"));
        return GST_FLOW_ERROR;
    }
    gsize n = abuf.n_samples;
    guint64 bad = store_append(self, &abuf);
    gst_audio_buffer_unmap(&abuf);
    gst_buffer_unref(buffer);

    if (G_UNLIKELY(bad)) {
        GST_OBJECT_LOCK(self);
        self->sanitized_total += bad;
        GST_OBJECT_UNLOCK(self);
        GST_DEBUG_OBJECT(self, "replaced %" G_GUINT64_FORMAT " non-finite samples by 0", bad);
        if (!self->warned_nonfinite) {
            self->warned_nonfinite = TRUE;
            GST_ELEMENT_WARNING(self, STREAM, FORMAT,
                                ("Input contains non-finite samples (NaN or infinity)"),
                                ("%" G_GUINT64_FORMAT " samples of the buffer at sample %"
                                 G_GUINT64_FORMAT " were replaced by 0; this is reported once, "
                                 "the property sanitized-samples counts every replacement",
                                 bad, self->n_in));
        }
    }
    self->n_in += n;
    if (!self->head_filled && self->n_in > GST_LILY_MEL_CONTEXT) fill_head(self);
    return emit_frames(self, frames_ready(self));
}

static gboolean gst_lily_mel_sink_event(GstPad *pad, GstObject *parent, GstEvent *event)
{
    return gst_lily_filter_sink_event(pad, parent, event, &GST_LILY_MEL(parent)->segment,
                                      &filter_funcs);
}

static gboolean gst_lily_mel_query(GstPad *pad, GstObject *parent, GstQuery *query)
{
    GstLilyMel *self = GST_LILY_MEL(parent);
    return gst_lily_filter_query(pad, parent, query, self->sinkpad, self->srcpad, &filter_funcs);
}

/* ---------------------------------------------------------------------------------------- */
/* GObject / GstElement                                                                      */
/* ---------------------------------------------------------------------------------------- */

static gboolean engine_start(GstLilyMel *self)
{
    LilyContextParams cp;
    lily_context_params_init(&cp);
    cp.device = LILY_DEVICE_CPU;
    /* A few FFTs per 10 ms of audio: one thread is plenty; the cores are for the models. */
    cp.n_threads = 1;
    cp.log = gst_lily_engine_log;
    cp.log_user_data = self;
    if (!gst_lily_context_new(GST_ELEMENT(self), &cp, &self->ctx)) return FALSE;
    LilyStatus st = lily_mel_new(self->ctx, &self->mel);
    if (st != LILY_OK) {
        GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Could not set up the mel front end"),
                          ("lily_mel_new: %s: %s", lily_status_name(st),
                           lily_context_error(self->ctx)));
        lily_context_free(self->ctx);
        self->ctx = NULL;
        return FALSE;
    }
    GST_DEBUG_OBJECT(self, "engine ready (CPU, 1 thread)");
    return TRUE;
}

static void engine_stop(GstLilyMel *self)
{
    if (self->mel) lily_mel_free(self->mel);
    self->mel = NULL;
    if (self->ctx) lily_context_free(self->ctx);
    self->ctx = NULL;
}

static void stream_reset(GstLilyMel *self)
{
    store_free(self);
    self->have_info = FALSE;
    self->started = FALSE;
    self->warned_nonfinite = FALSE;
    gst_segment_init(&self->segment, GST_FORMAT_TIME);
}

static GstStateChangeReturn gst_lily_mel_change_state(GstElement *element,
                                                      GstStateChange transition)
{
    GstLilyMel *self = GST_LILY_MEL(element);
    if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
        if (!engine_start(self)) return GST_STATE_CHANGE_FAILURE;
        stream_reset(self);
        GST_OBJECT_LOCK(self);
        self->frames_total = 0;
        self->sanitized_total = 0;
        GST_OBJECT_UNLOCK(self);
    }
    GstStateChangeReturn ret =
        GST_ELEMENT_CLASS(gst_lily_mel_parent_class)->change_state(element, transition);
    if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) {
        stream_reset(self);
        engine_stop(self);
    }
    return ret;
}

static void gst_lily_mel_get_property(GObject *object, guint prop_id, GValue *value,
                                      GParamSpec *pspec)
{
    GstLilyMel *self = GST_LILY_MEL(object);
    GST_OBJECT_LOCK(self);
    switch (prop_id) {
    case PROP_FRAMES: g_value_set_uint64(value, self->frames_total); break;
    case PROP_SANITIZED_SAMPLES: g_value_set_uint64(value, self->sanitized_total); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_lily_mel_finalize(GObject *object)
{
    GstLilyMel *self = GST_LILY_MEL(object);
    store_free(self);
    engine_stop(self);
    G_OBJECT_CLASS(gst_lily_mel_parent_class)->finalize(object);
}

static void gst_lily_mel_class_init(GstLilyMelClass *klass)
{
    GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
    GstElementClass *element_class = GST_ELEMENT_CLASS(klass);

    gobject_class->get_property = gst_lily_mel_get_property;
    gobject_class->finalize = gst_lily_mel_finalize;

    gst_lily_filter_install_counter(gobject_class, PROP_FRAMES, "frames", "Frames",
                                    "Mel frames emitted since the element went to PAUSED (all "
                                    "channels count once per frame)");
    gst_lily_filter_install_counter(gobject_class, PROP_SANITIZED_SAMPLES, "sanitized-samples",
                                    "Sanitized samples",
                                    "Non-finite input samples (NaN, +-inf) replaced by 0 since "
                                    "the element went to PAUSED");

    gst_element_class_add_static_pad_template(element_class, &sink_template);
    gst_element_class_add_static_pad_template(element_class, &src_template);
    gst_element_class_set_static_metadata(
        element_class, "Lily mel front end", "Filter/Converter/Audio",
        "48 kHz F32 audio to AudioSR's log-mel, per channel: frame f = samples [480f-784, "
        "480f+1264), periodic Hann 2048, hop 480, 256 Slaney mels 20 Hz-24 kHz, "
        "ln(max(mel, 1e-5)); the stream start is reflect-padded by 784 as AudioSR does. Output "
        "buffers hold whole frames as float32 [channel][frame][mel] with the source samples "
        "attached (GstLilyMelMeta). Latency 784 samples (16.333 ms). EOS pads like AudioSR: "
        "zeros to a multiple of 5.12 s, so 1 s of input gives 512 frames. DISCONT or a jump "
        "over 5 ms drains and restarts; flush drops state; NaN/inf become 0 (one warning). "
        "See docs/elements.md",
        "The Lily authors");
    /* gst-inspect-1.0 prints every metadata key: these make its page show how to use it. */
    gst_element_class_add_static_metadata(
        element_class, "example-launch",
        "gst-launch-1.0 audiotestsrc num-buffers=100 ! audio/x-raw,rate=48000 ! lilymel ! "
        "fakesink");
    gst_element_class_add_static_metadata(
        element_class, "example-launch-file",
        "gst-launch-1.0 filesrc location=in.flac ! decodebin ! audioconvert ! audioresample ! "
        "lilymel ! filesink location=mel.f32   (numpy: np.fromfile('mel.f32', '<f4')"
        ".reshape(-1, 256) for mono)");
    element_class->change_state = GST_DEBUG_FUNCPTR(gst_lily_mel_change_state);
}

static void gst_lily_mel_init(GstLilyMel *self)
{
    self->sinkpad = gst_pad_new_from_static_template(&sink_template, "sink");
    gst_pad_set_chain_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_lily_mel_chain));
    gst_pad_set_event_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_lily_mel_sink_event));
    gst_pad_set_query_function(self->sinkpad, GST_DEBUG_FUNCPTR(gst_lily_mel_query));
    gst_element_add_pad(GST_ELEMENT(self), self->sinkpad);

    self->srcpad = gst_pad_new_from_static_template(&src_template, "src");
    gst_pad_set_query_function(self->srcpad, GST_DEBUG_FUNCPTR(gst_lily_mel_query));
    gst_element_add_pad(GST_ELEMENT(self), self->srcpad);

    gst_segment_init(&self->segment, GST_FORMAT_TIME);
    self->origin = GST_CLOCK_TIME_NONE;
}
