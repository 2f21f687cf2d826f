/* gstlilyenums.h - GEnum types of the Lily elements, built from the engine's name tables so the
 * nicks are the strings YAML and the command line use (lily_precision_name()). */
#ifndef LILY_GST_GSTLILYENUMS_H
#define LILY_GST_GSTLILYENUMS_H

#include <glib-object.h>

G_BEGIN_DECLS

/* LilyPrecision as a GEnum: values LILY_PRECISION_*, nicks "f32", "bf16", "f16". */
#define GST_TYPE_LILY_PRECISION (gst_lily_precision_get_type())
GType gst_lily_precision_get_type(void);

G_END_DECLS

#endif /* LILY_GST_GSTLILYENUMS_H */
