/* gstlilyvocoder.c - GstLilyVocoder (`lilyvocoder`): the last stage of AudioSR over a stream.
 * One LilyVocoderStream per channel runs AudioSR's 48 kHz HiFi-GAN (spec.md stage 9) on chunks
 * of vocoder-duration with context on both sides, puts the condition's low band back
 * (audiosr/pipeline.py postprocessing, spec.md stage 10) and restores the input's level; it
 * emits only real samples, so the output is exactly as long as the input. The streaming side
 * (sections, flush, latency, timestamps) is GstLilyChunker's.
 */

/**
 * SECTION:element-lilyvocoder
 * @title: lilyvocoder
 * @short_description: AudioSR mel frames to 48 kHz audio (HiFi-GAN and low-band restore)
 *
 * lilyvocoder turns mel frames into 48 kHz audio, per channel. Behind lilydiffuse it finishes
 * AudioSR's enhancement: HiFi-GAN on the enhanced frames, then the band below the input's
 * cutoff taken back from the condition waveform lilydiffuse attaches (GstLilyMelMeta
 * `condition`), at the input's level. Behind lilymel alone (no condition in the meta) it
 * resynthesises the input's mel with HiFi-GAN and restores the low band from the source
 * samples themselves: a quick check of the vocoder, not an enhancement.
 *
 * Output: `audio/x-raw, format=F32LE, rate=48000, layout=interleaved`, as many channels as the
 * input (a fallback channel-mask above two channels). Only real samples come out: the end
 * padding of lilymel and of the diffusion (the meta's n_valid says what is real) is cut, so at
 * EOS a section gives exactly as many samples as went into lilymel. Timestamps come from a
 * sample counter: PTS = T0 + n * 1 s / 48000, T0 the section's first input PTS.
 *
 * Latency: the vocoder waits for two chunks plus 0.32 s of context before it runs the first
 * chunk (2 x vocoder-duration + 0.32 s; 10.56 s by default), so that the last chunk of a
 * stream is never shorter than one chunk; the LATENCY query adds that to upstream's figure.
 * EOS, DISCONT, a timestamp jump, GAP and SEGMENT drain (vocode the rest, push, restart);
 * FLUSH_START cancels, FLUSH_STOP drops the state and keeps the model.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 filesrc location=in.flac ! decodebin ! audioconvert ! audioresample ! \
 *     lilymel ! lilydiffuse model=model.safetensors ! lilyvocoder model=model.safetensors ! \
 *     audioconvert ! wavenc ! filesink location=out.wav
 * ]| Enhancement, spelled out (lilyenhance wraps it).
 * |[
 * gst-launch-1.0 filesrc location=in.wav ! decodebin ! audioconvert ! audioresample ! \
 *     lilymel ! lilyvocoder model=model.safetensors ! wavenc ! filesink location=resynth.wav
 * ]| HiFi-GAN resynthesis of the input's mel (no diffusion).
 */
#include <string.h>

#include <gst/audio/audio.h>

#include "gstlily.h"
#include "gstlilyfilter.h"
#include "gstlilyvocoder.h"

GST_DEBUG_CATEGORY_STATIC(gst_lily_vocoder_debug);
#define GST_CAT_DEFAULT gst_lily_vocoder_debug

enum {
    PROP_0,
    PROP_VOCODER_DURATION,
};
/* AudioSR vocodes 5.12 s segments (lily_enhance_params_init). */
#define DEFAULT_VOCODER_DURATION (5120 * GST_MSECOND)

struct _GstLilyVocoder {
    GstLilyChunker parent;
    guint64 vocoder_duration; /* object lock */

    /* Streaming thread. */
    gfloat *scratch;  /* one channel's pulled samples */
    gsize scratch_len;
};

G_DEFINE_TYPE_WITH_CODE(GstLilyVocoder, gst_lily_vocoder, GST_TYPE_LILY_CHUNKER,
                        GST_DEBUG_CATEGORY_INIT(gst_lily_vocoder_debug, "lilyvocoder", 0,
                                                "Lily vocoder");
                        gst_lily_debug_init());
GST_ELEMENT_REGISTER_DEFINE(lilyvocoder, "lilyvocoder", GST_RANK_NONE, GST_TYPE_LILY_VOCODER);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_LILY_FILTER_MEL_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format = (string) F32LE, rate = (int) 48000, "
                    "channels = (int) [ 1, MAX ], layout = (string) interleaved"));

/* ---------------------------------------------------------------------------------------- */
/* Engine streams                                                                            */
/* ---------------------------------------------------------------------------------------- */

static LilyStatus vocoder_stream_new(GstLilyChunker *base, gpointer *stream)
{
    GstLilyVocoder *self = GST_LILY_VOCODER(base);
    LilyEnhanceParams p;
    lily_enhance_params_init(&p);
    GST_OBJECT_LOCK(self);
    p.vocoder_seconds = (double)self->vocoder_duration / GST_SECOND;
    GST_OBJECT_UNLOCK(self);
    LilyVocoderStream *v = NULL;
    LilyStatus st = lily_vocoder_stream_new(base->ctx, base->model, &p, &v);
    *stream = v;
    return st;
}

static void vocoder_stream_free(gpointer stream) { lily_vocoder_stream_free(stream); }
static void vocoder_stream_reset(gpointer stream) { lily_vocoder_stream_reset(stream); }
static gint64 vocoder_stream_latency(gpointer stream)
{
    return lily_vocoder_stream_latency(stream);
}

static GstCaps *vocoder_src_caps(GstLilyChunker *base, guint channels)
{
    (void)base;
    GstCaps *caps = gst_caps_new_simple("audio/x-raw", "format", G_TYPE_STRING, "F32LE", "rate",
                                        G_TYPE_INT, LILY_SAMPLE_RATE, "channels", G_TYPE_INT,
                                        (gint)channels, "layout", G_TYPE_STRING, "interleaved",
                                        NULL);
    /* Mono and stereo need no mask; beyond that audio caps must carry one. lilymel does not
     * keep the input's positions, so the standard layout for the count is assumed. */
    if (channels > 2)
        gst_caps_set_simple(caps, "channel-mask", GST_TYPE_BITMASK,
                            gst_audio_channel_get_fallback_mask((gint)channels), NULL);
    return caps;
}

/* ---------------------------------------------------------------------------------------- */
/* Data: mel frames in, 48 kHz samples out                                                   */
/* ---------------------------------------------------------------------------------------- */

static GstFlowReturn push_ready(GstLilyVocoder *self)
{
    GstLilyChunker *base = GST_LILY_CHUNKER(self);
    guint ch = base->channels;
    gsize ready = G_MAXSIZE;
    for (guint c = 0; c < ch; c++)
        ready = MIN(ready, lily_vocoder_stream_ready(base->streams[c]));
    /* Never past the real input (the streams keep to it; this makes it a guarantee). */
    guint64 real = base->samples_in, done = base->units_out;
    gsize left = done < real ? (gsize)(real - done) : 0;
    if (ready > left) {
        GST_WARNING_OBJECT(self, "streams hold %" G_GSIZE_FORMAT " samples, only %"
                                 G_GSIZE_FORMAT " are real: trimming", ready, left);
        ready = left;
    }
    if (ready == 0) return GST_FLOW_OK;

    if (ready > self->scratch_len) {
        g_free(self->scratch);
        self->scratch = g_new(gfloat, ready);
        self->scratch_len = ready;
    }
    GstMapInfo map;
    GstBuffer *out =
        gst_lily_filter_buffer_new_mapped(GST_ELEMENT(self), sizeof(gfloat) * ch * ready, &map);
    if (!out) return GST_FLOW_ERROR;
    gfloat *dst = (gfloat *)map.data;
    for (guint c = 0; c < ch; c++) {
        gsize got = lily_vocoder_stream_pull(base->streams[c], self->scratch, ready);
        g_assert(got == ready);
        for (gsize i = 0; i < ready; i++) dst[i * ch + c] = self->scratch[i];
    }
    gst_buffer_unmap(out, &map);
    return gst_lily_chunker_push(base, out, ready, 1);
}

static GstFlowReturn vocoder_process(GstLilyChunker *base, GstBuffer *buffer,
                                     const GstLilyMelMeta *meta, gsize frames)
{
    GstLilyVocoder *self = GST_LILY_VOCODER(base);
    GstMapInfo map;
    if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, (NULL), ("could not map an input buffer"));
        return GST_FLOW_ERROR;
    }
    const gfloat *mel = (const gfloat *)map.data;
    gsize ns = meta->n_samples;
    /* Without lilydiffuse's condition the source itself gives the low band back. */
    const gfloat *cond = meta->condition ? meta->condition : meta->samples;
    gint64 t0 = g_get_monotonic_time();
    for (guint c = 0; c < base->channels; c++) {
        LilyStatus st = lily_vocoder_stream_push(base->streams[c], mel + c * frames * LILY_N_MELS,
                                                 cond + c * ns, meta->samples + c * ns, frames,
                                                 meta->n_valid);
        if (st != LILY_OK) {
            gst_buffer_unmap(buffer, &map);
            return gst_lily_chunker_engine_error(base, st, "vocoder");
        }
    }
    gst_lily_chunker_account(base, g_get_monotonic_time() - t0, ns);
    gst_buffer_unmap(buffer, &map);
    return push_ready(self);
}

static GstFlowReturn vocoder_drain(GstLilyChunker *base)
{
    GstLilyVocoder *self = GST_LILY_VOCODER(base);
    gint64 t0 = g_get_monotonic_time();
    for (guint c = 0; c < base->channels; c++) {
        LilyStatus st = lily_vocoder_stream_finish(base->streams[c]);
        if (st != LILY_OK) return gst_lily_chunker_engine_error(base, st, "vocoder (last chunk)");
    }
    gst_lily_chunker_account(base, g_get_monotonic_time() - t0, 0);
    GstFlowReturn ret = push_ready(self);
    if (ret == GST_FLOW_OK && base->units_out != base->samples_in)
        GST_WARNING_OBJECT(self, "section ends with %" G_GUINT64_FORMAT " samples out for %"
                                 G_GUINT64_FORMAT " in", base->units_out, base->samples_in);
    else
        GST_DEBUG_OBJECT(self, "section ends: %" G_GUINT64_FORMAT " samples in and out",
                         base->samples_in);
    return ret;
}

/* ---------------------------------------------------------------------------------------- */
/* GObject: the vocoder-duration property                                                    */
/* ---------------------------------------------------------------------------------------- */

static void gst_lily_vocoder_set_property(GObject *object, guint prop_id, const GValue *value,
                                          GParamSpec *pspec)
{
    GstLilyVocoder *self = GST_LILY_VOCODER(object);
    if (!gst_lily_chunker_may_reconfigure(GST_ELEMENT(self), pspec)) return;
    switch (prop_id) {
    case PROP_VOCODER_DURATION: {
        guint64 v = g_value_get_uint64(value);
        GST_OBJECT_LOCK(self);
        gboolean changed = v != self->vocoder_duration;
        self->vocoder_duration = v;
        GST_OBJECT_UNLOCK(self);
        if (changed) gst_lily_chunker_latency_changed(GST_LILY_CHUNKER(self));
        break;
    }
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
}

static void gst_lily_vocoder_get_property(GObject *object, guint prop_id, GValue *value,
                                          GParamSpec *pspec)
{
    GstLilyVocoder *self = GST_LILY_VOCODER(object);
    GST_OBJECT_LOCK(self);
    switch (prop_id) {
    case PROP_VOCODER_DURATION: g_value_set_uint64(value, self->vocoder_duration); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_lily_vocoder_finalize(GObject *object)
{
    GstLilyVocoder *self = GST_LILY_VOCODER(object);
    g_free(self->scratch);
    G_OBJECT_CLASS(gst_lily_vocoder_parent_class)->finalize(object);
}

static void gst_lily_vocoder_class_init(GstLilyVocoderClass *klass)
{
    GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
    GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
    GstLilyChunkerClass *chunker_class = GST_LILY_CHUNKER_CLASS(klass);
    gobject_class->set_property = gst_lily_vocoder_set_property;
    gobject_class->get_property = gst_lily_vocoder_get_property;
    gobject_class->finalize = gst_lily_vocoder_finalize;

    g_object_class_install_property(
        gobject_class, PROP_VOCODER_DURATION,
        g_param_spec_uint64("vocoder-duration", "Vocoder duration",
                            "Length of the chunks HiFi-GAN runs on (ns), rounded to a multiple "
                            "of 0.08 s; the latency is twice this plus 0.32 s",
                            640 * GST_MSECOND, 600 * GST_SECOND, DEFAULT_VOCODER_DURATION,
                            G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                GST_PARAM_MUTABLE_READY));

    gst_element_class_add_static_pad_template(element_class, &sink_template);
    gst_element_class_add_static_pad_template(element_class, &src_template);
    gst_element_class_set_static_metadata(
        element_class, "Lily vocoder", "Filter/Converter/Audio",
        "AudioSR's 48 kHz HiFi-GAN on mel frames, per channel, then the low band restored from "
        "the condition (or the source) samples of the GstLilyMelMeta at the input's level. "
        "Output F32 48 kHz, exactly as many samples as the input had; latency 2 x "
        "vocoder-duration + 0.32 s. See docs/elements.md",
        "The Lily authors");
    gst_element_class_add_static_metadata(element_class, "example-launch",
                                          GST_LILY_CHUNKER_EXAMPLE_LAUNCH);

    chunker_class->stream_new = vocoder_stream_new;
    chunker_class->stream_free = vocoder_stream_free;
    chunker_class->stream_reset = vocoder_stream_reset;
    chunker_class->stream_latency = vocoder_stream_latency;
    chunker_class->src_caps = vocoder_src_caps;
    chunker_class->process = vocoder_process;
    chunker_class->drain = vocoder_drain;
}

static void gst_lily_vocoder_init(GstLilyVocoder *self)
{
    gst_lily_chunker_add_pads(GST_LILY_CHUNKER(self));
    self->vocoder_duration = DEFAULT_VOCODER_DURATION;
}
