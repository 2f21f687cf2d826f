/* gstlilytrainsink.h - GstLilyTrainSink (`lilytrainsink`): writes AudioSR-style training pairs
 * from a 48 kHz stream into a Lily dataset folder (docs/datasets.md). */
#ifndef LILY_GST_GSTLILYTRAINSINK_H
#define LILY_GST_GSTLILYTRAINSINK_H

#include <gst/base/gstbasesink.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_LILY_TRAIN_SINK (gst_lily_train_sink_get_type())
G_DECLARE_FINAL_TYPE(GstLilyTrainSink, gst_lily_train_sink, GST, LILY_TRAIN_SINK, GstBaseSink)

GST_ELEMENT_REGISTER_DECLARE(lilytrainsink);

G_END_DECLS

#endif /* LILY_GST_GSTLILYTRAINSINK_H */
