/* gstlilyvocoder.h - GstLilyVocoder (`lilyvocoder`): enhanced mel frames with their source (and
 * condition) samples -> 48 kHz F32 audio, AudioSR's HiFi-GAN plus its low-band restore.
 * Behaviour, latency and properties: the SECTION:element-lilyvocoder block in gstlilyvocoder.c
 * and docs/elements.md. */
#ifndef LILY_GST_GSTLILYVOCODER_H
#define LILY_GST_GSTLILYVOCODER_H

#include "gstlilychunker.h"

G_BEGIN_DECLS

#define GST_TYPE_LILY_VOCODER (gst_lily_vocoder_get_type())
G_DECLARE_FINAL_TYPE(GstLilyVocoder, gst_lily_vocoder, GST, LILY_VOCODER, GstLilyChunker)

GST_ELEMENT_REGISTER_DECLARE(lilyvocoder);

G_END_DECLS

#endif /* LILY_GST_GSTLILYVOCODER_H */
