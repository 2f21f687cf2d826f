/* gstlilymel.h - GstLilyMel (`lilymel`): 48 kHz F32 audio -> AudioSR log-mel frames.
 * The element's behaviour, latency and payload layout are described in gstlilymel.c's
 * SECTION:element-lilymel block and in docs/elements.md. */
#ifndef LILY_GST_GSTLILYMEL_H
#define LILY_GST_GSTLILYMEL_H

#include <gst/audio/audio.h>
#include <gst/gst.h>
#include <lily/lily.h>

G_BEGIN_DECLS

#define GST_TYPE_LILY_MEL (gst_lily_mel_get_type())
G_DECLARE_FINAL_TYPE(GstLilyMel, gst_lily_mel, GST, LILY_MEL, GstElement)

/* Samples a frame needs beyond its own hop span: the STFT window (2048) reaches 784 samples
 * before and 784 after [480 f, 480 f + 480). This is also the element's latency. */
#define GST_LILY_MEL_CONTEXT ((LILY_N_FFT - LILY_HOP) / 2)

GST_ELEMENT_REGISTER_DECLARE(lilymel);

G_END_DECLS

#endif /* LILY_GST_GSTLILYMEL_H */
