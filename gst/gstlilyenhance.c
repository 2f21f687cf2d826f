/* gstlilyenhance.c - GstLilyEnhance (`lilyenhance`): a GstBin holding
 * audioconvert ! audioresample ! lilymel ! lilydiffuse ! lilyvocoder behind ghost pads, with
 * the settings that matter proxied to the Lily elements. The proxies are copies of the
 * children's own GParamSpecs (name, blurb, range, default, flags), so the two can never
 * disagree; the model settings go to both lilydiffuse and lilyvocoder, which then share one
 * copy of the weights through the model cache.
 */

/**
 * SECTION:element-lilyenhance
 * @title: lilyenhance
 * @short_description: AudioSR audio super-resolution of any audio stream, to 48 kHz
 *
 * lilyenhance enhances audio the way AudioSR does, as a stream: any raw audio in (any format,
 * rate and channel count; audioconvert and audioresample bring it to 48 kHz float), 48 kHz F32
 * interleaved out with the same channel count, each channel enhanced on its own, exactly as many
 * samples as the input had at 48 kHz. Inside: audioconvert ! audioresample ! lilymel !
 * lilydiffuse ! lilyvocoder (their pages describe each stage). The same settings give the same
 * audio as `lily-enhance`, which drives the same engine streams.
 *
 * Latency: 16.3 ms (lilymel) + chunk-duration (lilydiffuse) + 2 x vocoder-duration + 0.32 s
 * (lilyvocoder): 20.82 s with the defaults, 2.88 s with chunk-duration=0.64 s and
 * vocoder-duration=0.64 s. Live sources work when the engine keeps up (see the
 * real-time-factor property of the children and the warning they post when it does not).
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 filesrc location=in.mp3 ! decodebin ! lilyenhance model=model.safetensors ! \
 *     wavenc ! filesink location=out.wav
 * ]| Any decodable file to a 48 kHz WAV.
 * |[
 * gst-launch-1.0 filesrc location=in.flac ! decodebin ! lilyenhance model=model.safetensors \
 *     steps=20 chunk-duration=5120000000 ! audioconvert ! flacenc ! filesink location=out.flac
 * ]| Fewer steps, shorter chunks, FLAC out.
 * |[
 * gst-launch-1.0 pulsesrc ! lilyenhance model=model.safetensors steps=10 \
 *     chunk-duration=2560000000 ! audioconvert ! autoaudiosink
 * ]| A live capture (needs an engine faster than real time at these settings).
 */
#include "gstlily.h"
#include "gstlilydiffuse.h"
#include "gstlilyenhance.h"
#include "gstlilyvocoder.h"

GST_DEBUG_CATEGORY_STATIC(gst_lily_enhance_debug);
#define GST_CAT_DEFAULT gst_lily_enhance_debug

/* Which child a proxied property goes to. */
enum { TO_DIFFUSE = 1, TO_VOCODER = 2, TO_BOTH = 3 };

typedef struct Proxy {
    const gchar *name;
    guint to;
} Proxy;

/* Property ids are the table index + 1. */
static const Proxy proxies[] = {
    {"model", TO_BOTH},
    {"config", TO_BOTH},
    {"device", TO_BOTH},
    {"precision", TO_BOTH},
    {"steps", TO_DIFFUSE},
    {"guidance-scale", TO_DIFFUSE},
    {"seed", TO_DIFFUSE},
    {"chunk-duration", TO_DIFFUSE},
    {"overlap-duration", TO_DIFFUSE},
    {"cutoff", TO_DIFFUSE},
    {"vocoder-duration", TO_VOCODER},
};

struct _GstLilyEnhance {
    GstBin parent;
    GstElement *convert, *resample, *mel, *diffuse, *vocoder;
    const gchar *missing; /* factory that could not be made, or NULL */
};

G_DEFINE_TYPE_WITH_CODE(GstLilyEnhance, gst_lily_enhance, GST_TYPE_BIN,
                        GST_DEBUG_CATEGORY_INIT(gst_lily_enhance_debug, "lilyenhance", 0,
                                                "Lily enhancement bin");
                        gst_lily_debug_init());
GST_ELEMENT_REGISTER_DEFINE(lilyenhance, "lilyenhance", GST_RANK_NONE, GST_TYPE_LILY_ENHANCE);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("audio/x-raw"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("audio/x-raw, format = (string) F32LE, rate = (int) 48000, "
                    "channels = (int) [ 1, MAX ], layout = (string) interleaved"));

/* A pspec equal to `src` (a child's), for the bin. The child classes stay referenced, so their
 * static strings outlive ours. */
static GParamSpec *proxy_pspec(GParamSpec *src)
{
    const GParamFlags keep = G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY |
                             GST_PARAM_MUTABLE_PAUSED | GST_PARAM_MUTABLE_PLAYING |
                             GST_PARAM_CONTROLLABLE;
    GParamFlags flags = (src->flags & keep) | G_PARAM_STATIC_STRINGS;
    const gchar *name = g_param_spec_get_name(src), *nick = g_param_spec_get_nick(src),
                *blurb = g_param_spec_get_blurb(src);
    if (G_IS_PARAM_SPEC_STRING(src))
        return g_param_spec_string(name, nick, blurb, G_PARAM_SPEC_STRING(src)->default_value,
                                   flags);
    if (G_IS_PARAM_SPEC_INT(src)) {
        GParamSpecInt *p = G_PARAM_SPEC_INT(src);
        return g_param_spec_int(name, nick, blurb, p->minimum, p->maximum, p->default_value,
                                flags);
    }
    if (G_IS_PARAM_SPEC_UINT64(src)) {
        GParamSpecUInt64 *p = G_PARAM_SPEC_UINT64(src);
        return g_param_spec_uint64(name, nick, blurb, p->minimum, p->maximum, p->default_value,
                                   flags);
    }
    if (G_IS_PARAM_SPEC_DOUBLE(src)) {
        GParamSpecDouble *p = G_PARAM_SPEC_DOUBLE(src);
        return g_param_spec_double(name, nick, blurb, p->minimum, p->maximum, p->default_value,
                                   flags);
    }
    if (G_IS_PARAM_SPEC_ENUM(src))
        return g_param_spec_enum(name, nick, blurb, G_PARAM_SPEC_VALUE_TYPE(src),
                                 G_PARAM_SPEC_ENUM(src)->default_value, flags);
    g_error("lilyenhance: no proxy for property '%s' of type %s", name,
            g_type_name(G_PARAM_SPEC_VALUE_TYPE(src)));
    return NULL;
}

static void gst_lily_enhance_set_property(GObject *object, guint prop_id, const GValue *value,
                                          GParamSpec *pspec)
{
    GstLilyEnhance *self = GST_LILY_ENHANCE(object);
    if (prop_id == 0 || prop_id > G_N_ELEMENTS(proxies)) {
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        return;
    }
    const Proxy *p = &proxies[prop_id - 1];
    if ((p->to & TO_DIFFUSE) && self->diffuse)
        g_object_set_property(G_OBJECT(self->diffuse), p->name, value);
    if ((p->to & TO_VOCODER) && self->vocoder)
        g_object_set_property(G_OBJECT(self->vocoder), p->name, value);
}

static void gst_lily_enhance_get_property(GObject *object, guint prop_id, GValue *value,
                                          GParamSpec *pspec)
{
    GstLilyEnhance *self = GST_LILY_ENHANCE(object);
    if (prop_id == 0 || prop_id > G_N_ELEMENTS(proxies)) {
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        return;
    }
    const Proxy *p = &proxies[prop_id - 1];
    GstElement *child = (p->to & TO_DIFFUSE) ? self->diffuse : self->vocoder;
    if (child) g_object_get_property(G_OBJECT(child), p->name, value);
}

static GstStateChangeReturn gst_lily_enhance_change_state(GstElement *element,
                                                          GstStateChange transition)
{
    GstLilyEnhance *self = GST_LILY_ENHANCE(element);
    if (transition == GST_STATE_CHANGE_NULL_TO_READY && self->missing) {
        GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN,
                          ("lilyenhance needs the element '%s'", self->missing),
                          ("install the GStreamer plugin that provides it (audioconvert and "
                           "audioresample are in gst-plugins-base)"));
        return GST_STATE_CHANGE_FAILURE;
    }
    return GST_ELEMENT_CLASS(gst_lily_enhance_parent_class)->change_state(element, transition);
}

static void gst_lily_enhance_class_init(GstLilyEnhanceClass *klass)
{
    GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
    GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
    gobject_class->set_property = gst_lily_enhance_set_property;
    gobject_class->get_property = gst_lily_enhance_get_property;
    element_class->change_state = GST_DEBUG_FUNCPTR(gst_lily_enhance_change_state);

    /* Kept for the life of the process: the proxies point at their strings. */
    GObjectClass *diffuse_class = g_type_class_ref(GST_TYPE_LILY_DIFFUSE);
    GObjectClass *vocoder_class = g_type_class_ref(GST_TYPE_LILY_VOCODER);
    for (guint i = 0; i < G_N_ELEMENTS(proxies); i++) {
        GObjectClass *from = (proxies[i].to & TO_DIFFUSE) ? diffuse_class : vocoder_class;
        GParamSpec *src = g_object_class_find_property(from, proxies[i].name);
        g_assert(src != NULL);
        g_object_class_install_property(gobject_class, i + 1, proxy_pspec(src));
    }

    gst_element_class_add_static_pad_template(element_class, &sink_template);
    gst_element_class_add_static_pad_template(element_class, &src_template);
    gst_element_class_set_static_metadata(
        element_class, "Lily enhance", "Filter/Effect/Audio",
        "AudioSR audio super-resolution of any audio to 48 kHz, per channel: audioconvert ! "
        "audioresample ! lilymel ! lilydiffuse ! lilyvocoder with the settings proxied. Output "
        "F32 48 kHz, as long as the input. See docs/elements.md",
        "The Lily authors");
    gst_element_class_add_static_metadata(
        element_class, "example-launch",
        "gst-launch-1.0 filesrc location=in.mp3 ! decodebin ! lilyenhance "
        "model=model.safetensors ! wavenc ! filesink location=out.wav");
}

static GstElement *make(GstLilyEnhance *self, const gchar *factory, const gchar *name)
{
    GstElement *e = gst_element_factory_make(factory, name);
    if (!e) {
        GST_ERROR_OBJECT(self, "could not make a '%s' element", factory);
        if (!self->missing) self->missing = factory;
        return NULL;
    }
    gst_bin_add(GST_BIN(self), e);
    return e;
}

static void gst_lily_enhance_init(GstLilyEnhance *self)
{
    /* The ghost pads exist even when the chain cannot be built, so a pipeline still links and
     * the missing element is reported at NULL->READY. */
    GstElementClass *ec = GST_ELEMENT_GET_CLASS(self);
    GstPad *gsink = gst_ghost_pad_new_no_target_from_template(
        "sink", gst_element_class_get_pad_template(ec, "sink"));
    GstPad *gsrc = gst_ghost_pad_new_no_target_from_template(
        "src", gst_element_class_get_pad_template(ec, "src"));
    gst_element_add_pad(GST_ELEMENT(self), gsink);
    gst_element_add_pad(GST_ELEMENT(self), gsrc);

    self->convert = make(self, "audioconvert", "convert");
    self->resample = make(self, "audioresample", "resample");
    self->mel = make(self, "lilymel", "mel");
    self->diffuse = make(self, "lilydiffuse", "diffuse");
    self->vocoder = make(self, "lilyvocoder", "vocoder");
    if (self->missing) return;
    if (!gst_element_link_many(self->convert, self->resample, self->mel, self->diffuse,
                               self->vocoder, NULL)) {
        /* Cannot happen with these templates; reported like a missing element if it does. */
        GST_ERROR_OBJECT(self, "could not link the chain");
        self->missing = "lilymel";
        return;
    }
    GstPad *sink = gst_element_get_static_pad(self->convert, "sink");
    GstPad *src = gst_element_get_static_pad(self->vocoder, "src");
    gst_ghost_pad_set_target(GST_GHOST_PAD(gsink), sink);
    gst_ghost_pad_set_target(GST_GHOST_PAD(gsrc), src);
    gst_object_unref(sink);
    gst_object_unref(src);
}
