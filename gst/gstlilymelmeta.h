/* gstlilymelmeta.h - GstLilyMelMeta: the 48 kHz source samples a mel buffer was made from.
 *
 * lilymel attaches one to every audio/x-lily-mel buffer. The vocoder stage needs the source
 * samples for AudioSR's low-band restore (spec.md section 1, stage 10) and to trim its output
 * to the exact input length, so they travel with the frames instead of through a side channel.
 *
 * For a buffer holding frames [f0, f0 + F) the meta holds, per channel, the samples of the
 * frames' hop spans [480 f0, 480 (f0 + F)) of the stream as lilymel saw it after its end
 * padding (zeros up to a multiple of 5.12 s). Frame and sample indices count from the stream's
 * time origin (the first buffer after start, flush or a discontinuity).
 *
 * lilydiffuse's output carries the same meta for the frames it releases, plus the condition
 * waveform AudioSR's low-band restore takes its band from (the re-low-passed input, at the
 * input's level), in `condition`; lilymel's buffers have no condition (NULL). lilyvocoder uses
 * the condition when present, else the source samples themselves. */
#ifndef LILY_GST_GSTLILYMELMETA_H
#define LILY_GST_GSTLILYMELMETA_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_LILY_MEL_META_API_TYPE (gst_lily_mel_meta_api_get_type())
#define GST_LILY_MEL_META_INFO (gst_lily_mel_meta_get_info())

typedef struct _GstLilyMelMeta {
    GstMeta meta;
    guint n_channels;
    /* Samples per channel: 480 * frames in the buffer. */
    gsize n_samples;
    /* Stream sample index of samples[c * n_samples + 0] (= 480 * the buffer's first frame). */
    guint64 offset;
    /* How many of the n_samples are real input; the rest is end padding (zeros). */
    gsize n_valid;
    /* Planar float32, [channel][n_samples]; owned by the meta. */
    gfloat *samples;
    /* NULL, or the condition waveform, laid out as `samples`; owned by the meta. */
    gfloat *condition;
} GstLilyMelMeta;

GType gst_lily_mel_meta_api_get_type(void);
const GstMetaInfo *gst_lily_mel_meta_get_info(void);

/* Adds a meta with room for n_channels * n_samples samples (uninitialised: fill samples). */
GstLilyMelMeta *gst_buffer_add_lily_mel_meta(GstBuffer *buffer, guint n_channels,
                                             gsize n_samples, guint64 offset, gsize n_valid);
/* Gives the meta room for a condition waveform (uninitialised: fill it) and returns it. */
gfloat *gst_lily_mel_meta_add_condition(GstLilyMelMeta *meta);
/* The buffer's GstLilyMelMeta, or NULL. */
GstLilyMelMeta *gst_buffer_get_lily_mel_meta(GstBuffer *buffer);

G_END_DECLS

#endif /* LILY_GST_GSTLILYMELMETA_H */
