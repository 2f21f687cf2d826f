/* plugin.c - the `lily` GStreamer plugin: registers every Lily element.
 *
 * The plugin loads whether or not a CUDA device answers: elements fall back to (or are asked
 * for) the CPU, and the missing device is reported as a plugin status warning, the way
 * gst-plugins-bad's nvcodec reports a missing libcuda (gst-inspect-1.0 lily shows it; before
 * GStreamer 1.24, which has no plugin status API, it is a warning in the `lily` debug log). */
#include "gstlily.h"
#include "gstlilydiffuse.h"
#include "gstlilyenhance.h"
#include "gstlilymel.h"
#include "gstlilytrainsink.h"
#include "gstlilyvocoder.h"

#ifndef PACKAGE
#define PACKAGE "lily"
#endif
#define GST_LILY_LICENSE "MIT/X11"
#define GST_LILY_PACKAGE_NAME "Lily"
/* No public home yet: the origin is the source tree the plugin was built from. */
#define GST_LILY_ORIGIN "Lily source tree"

GST_DEBUG_CATEGORY(gst_lily_debug);
GST_DEBUG_CATEGORY(gst_lily_engine_debug);
#define GST_CAT_DEFAULT gst_lily_debug

void gst_lily_debug_init(void)
{
    static gsize once = 0;
    if (g_once_init_enter(&once)) {
        GST_DEBUG_CATEGORY_INIT(gst_lily_debug, "lily", 0, "Lily plugin");
        GST_DEBUG_CATEGORY_INIT(gst_lily_engine_debug, "lilyengine", 0,
                                "Lily engine (liblily log callback)");
        g_once_init_leave(&once, 1);
    }
}

void gst_lily_engine_log(LilyLogLevel level, const char *message, void *user_data)
{
    GstDebugLevel gl;
    switch (level) {
    case LILY_LOG_ERROR: gl = GST_LEVEL_ERROR; break;
    case LILY_LOG_WARNING: gl = GST_LEVEL_WARNING; break;
    case LILY_LOG_INFO: gl = GST_LEVEL_INFO; break;
    case LILY_LOG_DEBUG: gl = GST_LEVEL_DEBUG; break;
    default: gl = GST_LEVEL_TRACE; break;
    }
    GST_CAT_LEVEL_LOG(gst_lily_engine_debug, gl, user_data, "%s", message);
}

gboolean gst_lily_context_new(GstElement *element, const LilyContextParams *cp,
                              LilyContext **ctx)
{
    char err[512] = "";
    LilyStatus st = lily_context_new(cp, ctx, err, sizeof err);
    if (st == LILY_OK) return TRUE;
    GST_ELEMENT_ERROR(element, RESOURCE, FAILED, ("Could not create the Lily engine context"),
                      ("lily_context_new: %s: %s", lily_status_name(st), err));
    return FALSE;
}

static gboolean plugin_init(GstPlugin *plugin)
{
    gst_lily_debug_init();

    char why[256] = "";
    if (lily_device_probe(LILY_DEVICE_CUDA, 0, why, sizeof why) == LILY_OK) {
        GST_INFO("CUDA device 0 answers: device=cuda is available");
    } else {
        gchar *msg = g_strdup_printf("CUDA is unavailable (%s): only device=cpu works",
                                     why[0] ? why : "no reason given");
#if GST_CHECK_VERSION(1, 24, 0)
        gst_plugin_add_status_warning(plugin, msg);
#else
        /* Plugin status messages arrived in GStreamer 1.24; older ones get a debug warning. */
        GST_WARNING("%s", msg);
#endif
        g_free(msg);
    }

    gboolean ok = TRUE;
    ok &= GST_ELEMENT_REGISTER(lilymel, plugin);
    ok &= GST_ELEMENT_REGISTER(lilydiffuse, plugin);
    ok &= GST_ELEMENT_REGISTER(lilyvocoder, plugin);
    ok &= GST_ELEMENT_REGISTER(lilyenhance, plugin);
    ok &= GST_ELEMENT_REGISTER(lilytrainsink, plugin);
    return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, lily,
                  "Lily audio super-resolution (AudioSR in C): mel front end, diffusion, vocoder",
                  plugin_init, LILY_VERSION_STRING, GST_LILY_LICENSE, GST_LILY_PACKAGE_NAME,
                  GST_LILY_ORIGIN)
