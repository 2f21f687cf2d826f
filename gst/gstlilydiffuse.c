/* gstlilydiffuse.c - GstLilyDiffuse (`lilydiffuse`): AudioSR's latent diffusion over a stream.
 * One LilyDiffuser per channel does the work (audiosr/pipeline.py super_resolution up to the
 * mel: normalisation, cutoff detection, the condition's re-low-pass, VAE encode, DDIM with
 * classifier-free guidance, VAE decode, the mel copy below the cutoff; spec.md stages 2-8),
 * chunked with overlap and a raised-cosine cross-fade by the engine (engine/models/stream.c).
 * The shared streaming side (sections, flush, latency, timestamps) is GstLilyChunker's.
 */

/**
 * SECTION:element-lilydiffuse
 * @title: lilydiffuse
 * @short_description: AudioSR latent diffusion on a stream of mel frames
 *
 * lilydiffuse turns the mel frames of lilymel into AudioSR's enhanced mel frames, one engine
 * stream per channel. The incoming frames decide the framing and the timestamps (output frame
 * f has the PTS input frame f had); the source samples in their GstLilyMelMeta drive the
 * model, because AudioSR computes its condition from the waveform (a re-low-pass of the input,
 * then its mel), not from the mel. Only the real samples of the meta are used (n_valid), so
 * lilymel's end padding does not enter the model; the engine pads the stream its own way.
 *
 * Chunks: the stream is cut into chunks of chunk-duration (rounded to 0.64 s, the UNet's
 * granularity) that overlap by overlap-duration (rounded to 0.08 s); each is normalised as
 * AudioSR normalises a file, enhanced and returned at the input's level, and the overlaps are
 * cross-faded. A stream shorter than one chunk is processed as AudioSR processes a file
 * (padded to a multiple of 5.12 s). The result depends only on the samples, not on how they
 * were cut into buffers, so `lily-enhance` and a pipeline with the same settings agree.
 *
 * Output: the input caps (audio/x-lily-mel), frames laid out as lilymel's ([channel][frame]
 * [mel], float32, log-mel at the input's level). One buffer per batch of frames the engine
 * releases: nothing until the first chunk is complete, then the frames up to the next
 * overlap. Each buffer's GstLilyMelMeta holds the frames' source samples, the condition
 * waveform AudioSR's low-band restore uses (`condition`) and the count of real samples.
 *
 * Latency: one chunk (chunk-duration rounded as above), e.g. 10.24 s by default; the LATENCY
 * query adds it to upstream's figure. steps and guidance-scale may change while playing and
 * apply from the next chunk; model, config, device, precision, seed, chunk and overlap only
 * in READY. DISCONT, a timestamp jump, GAP, SEGMENT and EOS drain (the last partial chunk is
 * run) and restart; FLUSH_START cancels a running chunk within one sampler step and
 * FLUSH_STOP drops the stream state but keeps the model.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 filesrc location=in.flac ! decodebin ! audioconvert ! audioresample ! \
 *     lilymel ! lilydiffuse model=model.safetensors steps=50 ! lilyvocoder \
 *     model=model.safetensors ! audioconvert ! wavenc ! filesink location=out.wav
 * ]| The chain lilyenhance wraps, spelled out.
 * |[
 * gst-launch-1.0 audiotestsrc num-buffers=200 ! audio/x-raw,rate=48000 ! lilymel ! \
 *     lilydiffuse model=model.safetensors chunk-duration=2560000000 steps=10 ! fakesink
 * ]| Shorter chunks (2.56 s) and 10 steps: less latency and memory, more seams.
 */
#include <string.h>

#include "gstlily.h"
#include "gstlilydiffuse.h"
#include "gstlilyfilter.h"

GST_DEBUG_CATEGORY_STATIC(gst_lily_diffuse_debug);
#define GST_CAT_DEFAULT gst_lily_diffuse_debug

/* AudioSR's command-line defaults (lily_enhance_params_init; a test checks they agree). */
enum {
    PROP_0,
    PROP_STEPS,
    PROP_GUIDANCE_SCALE,
    PROP_SEED,
    PROP_CHUNK_DURATION,
    PROP_OVERLAP_DURATION,
    PROP_CUTOFF,
    PROP_SAMPLER_STEPS,
    PROP_CHUNKS,
};
#define DEFAULT_STEPS 50
#define DEFAULT_GUIDANCE_SCALE 3.5
#define DEFAULT_SEED 42
#define DEFAULT_CHUNK_DURATION (10240 * GST_MSECOND)
#define DEFAULT_OVERLAP_DURATION (1280 * GST_MSECOND)
#define DEFAULT_CUTOFF 0.0

struct _GstLilyDiffuse {
    GstLilyChunker parent;

    /* Settings (object lock). */
    gint steps;
    gdouble guidance_scale;
    guint64 seed;
    guint64 chunk_duration;
    guint64 overlap_duration;
    gdouble cutoff;
    gboolean sampling_changed; /* steps or guidance changed: apply at the next chunk */

    /* Counters (object lock). */
    guint64 sampler_steps;
    guint64 chunks;
};

G_DEFINE_TYPE_WITH_CODE(GstLilyDiffuse, gst_lily_diffuse, GST_TYPE_LILY_CHUNKER,
                        GST_DEBUG_CATEGORY_INIT(gst_lily_diffuse_debug, "lilydiffuse", 0,
                                                "Lily latent diffusion");
                        gst_lily_debug_init());
GST_ELEMENT_REGISTER_DEFINE(lilydiffuse, "lilydiffuse", GST_RANK_NONE, GST_TYPE_LILY_DIFFUSE);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_LILY_FILTER_MEL_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_LILY_FILTER_MEL_CAPS));

static void diffuse_params(GstLilyDiffuse *self, LilyEnhanceParams *p)
{
    lily_enhance_params_init(p);
    GST_OBJECT_LOCK(self);
    p->steps = self->steps;
    p->guidance_scale = (float)self->guidance_scale;
    p->seed = self->seed;
    p->cutoff_hz = self->cutoff;
    p->chunk_seconds = (double)self->chunk_duration / GST_SECOND;
    p->overlap_seconds = (double)self->overlap_duration / GST_SECOND;
    GST_OBJECT_UNLOCK(self);
}

/* ---------------------------------------------------------------------------------------- */
/* Engine streams                                                                            */
/* ---------------------------------------------------------------------------------------- */

static LilyStatus diffuse_stream_new(GstLilyChunker *base, gpointer *stream)
{
    LilyEnhanceParams p;
    diffuse_params(GST_LILY_DIFFUSE(base), &p);
    LilyDiffuser *d = NULL;
    LilyStatus st = lily_diffuser_new(base->ctx, base->model, &p, &d);
    *stream = d;
    return st;
}

static void diffuse_stream_free(gpointer stream) { lily_diffuser_free(stream); }
static void diffuse_stream_reset(gpointer stream) { lily_diffuser_reset(stream); }
static gint64 diffuse_stream_latency(gpointer stream) { return lily_diffuser_latency(stream); }

static GstCaps *diffuse_src_caps(GstLilyChunker *base, guint channels)
{
    (void)base;
    return gst_lily_filter_mel_caps(channels);
}

/* Counts DDIM steps (the engine reports each one) and completed chunks per channel. */
static void diffuse_progress(const char *stage, int64_t done, int64_t total, void *user_data)
{
    GstLilyDiffuse *self = user_data;
    if (g_strcmp0(stage, "diffusion") != 0) return;
    GST_OBJECT_LOCK(self);
    self->sampler_steps++;
    if (done == total) self->chunks++;
    GST_OBJECT_UNLOCK(self);
    GST_LOG_OBJECT(self, "sampler step %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT, done, total);
}

static gboolean diffuse_start(GstLilyChunker *base)
{
    GstLilyDiffuse *self = GST_LILY_DIFFUSE(base);
    GST_OBJECT_LOCK(self);
    self->sampler_steps = 0;
    self->chunks = 0;
    self->sampling_changed = FALSE;
    GST_OBJECT_UNLOCK(self);
    lily_context_set_progress(base->ctx, diffuse_progress, self);
    return TRUE;
}

/* ---------------------------------------------------------------------------------------- */
/* Data: mel frames in, enhanced mel frames out                                              */
/* ---------------------------------------------------------------------------------------- */

/* Pushes every frame all channels have released, as one buffer. */
static GstFlowReturn push_ready(GstLilyDiffuse *self)
{
    GstLilyChunker *base = GST_LILY_CHUNKER(self);
    guint ch = base->channels;
    gsize ready = G_MAXSIZE;
    for (guint c = 0; c < ch; c++) ready = MIN(ready, lily_diffuser_ready(base->streams[c]));
    if (ready == 0) return GST_FLOW_OK;

    gsize per_ch = ready * LILY_N_MELS, samples = ready * LILY_HOP;
    GstMapInfo map;
    GstBuffer *out =
        gst_lily_filter_buffer_new_mapped(GST_ELEMENT(self), sizeof(gfloat) * ch * per_ch, &map);
    if (!out) return GST_FLOW_ERROR;
    GstLilyMelMeta *meta = gst_buffer_add_lily_mel_meta(out, ch, samples,
                                                        base->units_out * LILY_HOP, 0);
    gfloat *cond = gst_lily_mel_meta_add_condition(meta);
    gfloat *mel = (gfloat *)map.data;
    gsize valid0 = 0;
    for (guint c = 0; c < ch; c++) {
        gsize valid = 0;
        gsize got = lily_diffuser_pull(base->streams[c], mel + c * per_ch, cond + c * samples,
                                       meta->samples + c * samples, ready, &valid);
        g_assert(got == ready);
        if (c == 0) valid0 = valid;
        else g_assert(valid == valid0); /* the channels see the same sample counts */
    }
    gst_buffer_unmap(out, &map);
    meta->n_valid = valid0;
    GST_LOG_OBJECT(self, "%" G_GSIZE_FORMAT " frames released (%" G_GSIZE_FORMAT
                         " real samples)", ready, valid0);
    return gst_lily_chunker_push(base, out, ready, LILY_HOP);
}

static GstFlowReturn diffuse_process(GstLilyChunker *base, GstBuffer *buffer,
                                     const GstLilyMelMeta *meta, gsize frames)
{
    (void)buffer;
    (void)frames;
    GstLilyDiffuse *self = GST_LILY_DIFFUSE(base);

    GST_OBJECT_LOCK(self);
    gboolean changed = self->sampling_changed;
    gint steps = self->steps;
    gfloat guidance = (gfloat)self->guidance_scale;
    self->sampling_changed = FALSE;
    GST_OBJECT_UNLOCK(self);
    if (changed) {
        GST_INFO_OBJECT(self, "from the next chunk on: %d steps, guidance %.3f", steps,
                        (double)guidance);
        for (guint c = 0; c < base->channels; c++) {
            LilyStatus st = lily_diffuser_set_sampling(base->streams[c], steps, guidance);
            if (st != LILY_OK) return gst_lily_chunker_engine_error(base, st, "sampling change");
        }
    }

    gsize n = meta->n_valid; /* lilymel's end padding stays out of the model */
    if (n > 0) {
        gint64 t0 = g_get_monotonic_time();
        for (guint c = 0; c < base->channels; c++) {
            const gfloat *x = meta->samples + c * meta->n_samples;
            LilyStatus st = lily_diffuser_push(base->streams[c], x, n);
            if (st != LILY_OK) return gst_lily_chunker_engine_error(base, st, "diffusion");
        }
        gst_lily_chunker_account(base, g_get_monotonic_time() - t0, n);
    }
    return push_ready(self);
}

static GstFlowReturn diffuse_drain(GstLilyChunker *base)
{
    GstLilyDiffuse *self = GST_LILY_DIFFUSE(base);
    gint64 t0 = g_get_monotonic_time();
    for (guint c = 0; c < base->channels; c++) {
        LilyStatus st = lily_diffuser_finish(base->streams[c]);
        if (st != LILY_OK) return gst_lily_chunker_engine_error(base, st, "diffusion (last chunk)");
    }
    gst_lily_chunker_account(base, g_get_monotonic_time() - t0, 0);
    return push_ready(self);
}

/* ---------------------------------------------------------------------------------------- */
/* GObject: the sampling settings and counters                                               */
/* ---------------------------------------------------------------------------------------- */

static void gst_lily_diffuse_set_property(GObject *object, guint prop_id, const GValue *value,
                                          GParamSpec *pspec)
{
    GstLilyDiffuse *self = GST_LILY_DIFFUSE(object);
    if (!gst_lily_chunker_may_reconfigure(GST_ELEMENT(self), pspec)) return;
    gboolean latency = FALSE;
    GST_OBJECT_LOCK(self);
    switch (prop_id) {
    case PROP_STEPS:
        self->steps = g_value_get_int(value);
        self->sampling_changed = TRUE;
        break;
    case PROP_GUIDANCE_SCALE:
        self->guidance_scale = g_value_get_double(value);
        self->sampling_changed = TRUE;
        break;
    case PROP_SEED: self->seed = g_value_get_uint64(value); break;
    case PROP_CHUNK_DURATION:
        latency = self->chunk_duration != g_value_get_uint64(value);
        self->chunk_duration = g_value_get_uint64(value);
        break;
    case PROP_OVERLAP_DURATION: self->overlap_duration = g_value_get_uint64(value); break;
    case PROP_CUTOFF: self->cutoff = g_value_get_double(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
    GST_OBJECT_UNLOCK(self);
    if (latency) gst_lily_chunker_latency_changed(GST_LILY_CHUNKER(self));
}

static void gst_lily_diffuse_get_property(GObject *object, guint prop_id, GValue *value,
                                          GParamSpec *pspec)
{
    GstLilyDiffuse *self = GST_LILY_DIFFUSE(object);
    GST_OBJECT_LOCK(self);
    switch (prop_id) {
    case PROP_STEPS: g_value_set_int(value, self->steps); break;
    case PROP_GUIDANCE_SCALE: g_value_set_double(value, self->guidance_scale); break;
    case PROP_SEED: g_value_set_uint64(value, self->seed); break;
    case PROP_CHUNK_DURATION: g_value_set_uint64(value, self->chunk_duration); break;
    case PROP_OVERLAP_DURATION: g_value_set_uint64(value, self->overlap_duration); break;
    case PROP_CUTOFF: g_value_set_double(value, self->cutoff); break;
    case PROP_SAMPLER_STEPS: g_value_set_uint64(value, self->sampler_steps); break;
    case PROP_CHUNKS: g_value_set_uint64(value, self->chunks); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec); break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_lily_diffuse_class_init(GstLilyDiffuseClass *klass)
{
    GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
    GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
    GstLilyChunkerClass *chunker_class = GST_LILY_CHUNKER_CLASS(klass);
    gobject_class->set_property = gst_lily_diffuse_set_property;
    gobject_class->get_property = gst_lily_diffuse_get_property;

    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
    const GParamFlags rw_playing = rw | GST_PARAM_MUTABLE_PLAYING;
    const GParamFlags rw_ready = rw | GST_PARAM_MUTABLE_READY;
    g_object_class_install_property(
        gobject_class, PROP_STEPS,
        g_param_spec_int("steps", "Steps",
                         "DDIM sampling steps per chunk (count); a change while playing applies "
                         "from the next chunk",
                         1, 1000, DEFAULT_STEPS, rw_playing));
    g_object_class_install_property(
        gobject_class, PROP_GUIDANCE_SCALE,
        g_param_spec_double("guidance-scale", "Guidance scale",
                            "Classifier-free guidance scale (factor; 1 = no guidance); a change "
                            "while playing applies from the next chunk",
                            0.0, 100.0, DEFAULT_GUIDANCE_SCALE, rw_playing));
    g_object_class_install_property(
        gobject_class, PROP_SEED,
        g_param_spec_uint64("seed", "Seed",
                            "Random seed (integer) of the noise and of the condition filter "
                            "draw; the same seed gives the same output",
                            0, G_MAXUINT64, DEFAULT_SEED, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_CHUNK_DURATION,
        g_param_spec_uint64("chunk-duration", "Chunk duration",
                            "Length of the chunks the model runs on (ns), rounded to a multiple "
                            "of 0.64 s; it is the element's latency. Longer chunks need more "
                            "memory, shorter ones give more seams",
                            640 * GST_MSECOND, 600 * GST_SECOND, DEFAULT_CHUNK_DURATION,
                            rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_OVERLAP_DURATION,
        g_param_spec_uint64("overlap-duration", "Overlap duration",
                            "Overlap of consecutive chunks, cross-faded (ns), rounded to a "
                            "multiple of 0.08 s; at most half the chunk",
                            0, 300 * GST_SECOND, DEFAULT_OVERLAP_DURATION, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_CUTOFF,
        g_param_spec_double("cutoff", "Cutoff",
                            "Bandwidth of the input (Hz): 0 detects it per chunk as AudioSR "
                            "does (0.985 of the spectral energy)",
                            0.0, 24000.0, DEFAULT_CUTOFF, rw_ready));
    gst_lily_filter_install_counter(gobject_class, PROP_SAMPLER_STEPS, "sampler-steps",
                                    "Sampler steps",
                                    "DDIM steps run since PAUSED, all channels and chunks "
                                    "(count)");
    gst_lily_filter_install_counter(gobject_class, PROP_CHUNKS, "chunks", "Chunks",
                                    "Chunks sampled since PAUSED, counted once per channel "
                                    "(count; silent chunks are skipped and not counted)");

    gst_element_class_add_static_pad_template(element_class, &sink_template);
    gst_element_class_add_static_pad_template(element_class, &src_template);
    gst_element_class_set_static_metadata(
        element_class, "Lily latent diffusion", "Filter/Effect/Audio",
        "AudioSR's latent diffusion on lilymel's frames, per channel: chunks of chunk-duration "
        "(latency) overlapping by overlap-duration, cross-faded; the source samples of the "
        "GstLilyMelMeta drive the condition. Output: enhanced mel frames with the source and "
        "the condition waveform attached, for lilyvocoder. See docs/elements.md",
        "The Lily authors");
    gst_element_class_add_static_metadata(element_class, "example-launch",
                                          GST_LILY_CHUNKER_EXAMPLE_LAUNCH);

    chunker_class->start = diffuse_start;
    chunker_class->stream_new = diffuse_stream_new;
    chunker_class->stream_free = diffuse_stream_free;
    chunker_class->stream_reset = diffuse_stream_reset;
    chunker_class->stream_latency = diffuse_stream_latency;
    chunker_class->src_caps = diffuse_src_caps;
    chunker_class->process = diffuse_process;
    chunker_class->drain = diffuse_drain;
}

static void gst_lily_diffuse_init(GstLilyDiffuse *self)
{
    gst_lily_chunker_add_pads(GST_LILY_CHUNKER(self));
    self->steps = DEFAULT_STEPS;
    self->guidance_scale = DEFAULT_GUIDANCE_SCALE;
    self->seed = DEFAULT_SEED;
    self->chunk_duration = DEFAULT_CHUNK_DURATION;
    self->overlap_duration = DEFAULT_OVERLAP_DURATION;
    self->cutoff = DEFAULT_CUTOFF;
}
