/* gstlilyenhance.h - GstLilyEnhance (`lilyenhance`): the whole AudioSR enhancement as one bin,
 * audioconvert ! audioresample ! lilymel ! lilydiffuse ! lilyvocoder, for any audio input.
 * Behaviour and properties: the SECTION:element-lilyenhance block in gstlilyenhance.c and
 * docs/elements.md. */
#ifndef LILY_GST_GSTLILYENHANCE_H
#define LILY_GST_GSTLILYENHANCE_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_LILY_ENHANCE (gst_lily_enhance_get_type())
G_DECLARE_FINAL_TYPE(GstLilyEnhance, gst_lily_enhance, GST, LILY_ENHANCE, GstBin)

GST_ELEMENT_REGISTER_DECLARE(lilyenhance);

G_END_DECLS

#endif /* LILY_GST_GSTLILYENHANCE_H */
