/* gstlily.h - what the elements of the `lily` plugin share: the plugin-wide debug categories
 * and the bridge that routes engine log messages (LilyLogFn) into GStreamer's debug log. */
#ifndef LILY_GST_GSTLILY_H
#define LILY_GST_GSTLILY_H

#include <gst/gst.h>
#include <lily/lily.h>

G_BEGIN_DECLS

/* `lily`: plugin loading, device probing. */
GST_DEBUG_CATEGORY_EXTERN(gst_lily_debug);
/* `lilyengine`: messages the engine emits through its log callback. */
GST_DEBUG_CATEGORY_EXTERN(gst_lily_engine_debug);

/* A LilyLogFn: user_data is the GstObject the message is logged against (may be NULL). */
void gst_lily_engine_log(LilyLogLevel level, const char *message, void *user_data);

/* lily_context_new() for `element`, posting a RESOURCE error with the engine's reason when it
 * fails; returns whether *ctx was made. */
gboolean gst_lily_context_new(GstElement *element, const LilyContextParams *cp,
                              LilyContext **ctx);

/* Registers the plugin-wide debug categories; safe to call more than once. */
void gst_lily_debug_init(void);

G_END_DECLS

#endif /* LILY_GST_GSTLILY_H */
