/* gstlilydiffuse.h - GstLilyDiffuse (`lilydiffuse`): mel frames with their source samples ->
 * AudioSR-enhanced mel frames (plus the condition waveform, for lilyvocoder). Behaviour,
 * latency and properties: the SECTION:element-lilydiffuse block in gstlilydiffuse.c and
 * docs/elements.md. */
#ifndef LILY_GST_GSTLILYDIFFUSE_H
#define LILY_GST_GSTLILYDIFFUSE_H

#include "gstlilychunker.h"

G_BEGIN_DECLS

#define GST_TYPE_LILY_DIFFUSE (gst_lily_diffuse_get_type())
G_DECLARE_FINAL_TYPE(GstLilyDiffuse, gst_lily_diffuse, GST, LILY_DIFFUSE, GstLilyChunker)

GST_ELEMENT_REGISTER_DECLARE(lilydiffuse);

G_END_DECLS

#endif /* LILY_GST_GSTLILYDIFFUSE_H */
