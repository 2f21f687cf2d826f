/* gstlilyenums.c - GEnum registration for LilyPrecision. Every value is listed in every build
 * (f16 too, which only CUDA runs: the model load refuses it on the CPU with a message), so a
 * pipeline description and the docs do not depend on how the plugin was built, the way
 * gst-plugins-bad's onnxinference always lists every execution provider. */
#include <lily/lily.h>

#include "gstlilyenums.h"

GType gst_lily_precision_get_type(void)
{
    static gsize type = 0;
    /* Filled once from the engine's names; the table must outlive the type. */
    static GEnumValue values[] = {
        {LILY_PRECISION_F32, "32-bit float weights and activations", NULL},
        {LILY_PRECISION_BF16, "bf16 matrix products with f32 accumulation and f32 norms", NULL},
        {LILY_PRECISION_F16, "f16 weights and matrix products (CUDA only)", NULL},
        {0, NULL, NULL},
    };
    if (g_once_init_enter(&type)) {
        for (guint i = 0; values[i].value_name; i++)
            values[i].value_nick = lily_precision_name((LilyPrecision)values[i].value);
        GType t = g_enum_register_static("GstLilyPrecision", values);
        g_once_init_leave(&type, t);
    }
    return (GType)type;
}
