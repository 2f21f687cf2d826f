/* gstlilymelmeta.c - GstLilyMelMeta registration, init/free and the copy transform.
 *
 * The meta owns its sample block, so a copied buffer gets its own copy: the buffers it rides on
 * can be made writable (gst_buffer_make_writable), queued or teed without the samples going
 * away. A copy of part of a mel buffer drops the meta, because a byte range of the
 * channel-major payload is not a frame range the samples could be cut to. */
#include <string.h>

#include "gstlilymelmeta.h"

GType gst_lily_mel_meta_api_get_type(void)
{
    static gsize type = 0;
    static const gchar *tags[] = {NULL};
    if (g_once_init_enter(&type)) {
        GType t = gst_meta_api_type_register("GstLilyMelMetaAPI", tags);
        g_once_init_leave(&type, t);
    }
    return (GType)type;
}

static gboolean lily_mel_meta_init(GstMeta *meta, gpointer params, GstBuffer *buffer)
{
    (void)params;
    (void)buffer;
    GstLilyMelMeta *m = (GstLilyMelMeta *)meta;
    m->n_channels = 0;
    m->n_samples = 0;
    m->offset = 0;
    m->n_valid = 0;
    m->samples = NULL;
    m->condition = NULL;
    return TRUE;
}

static void lily_mel_meta_free(GstMeta *meta, GstBuffer *buffer)
{
    (void)buffer;
    GstLilyMelMeta *m = (GstLilyMelMeta *)meta;
    g_free(m->samples);
    g_free(m->condition);
    m->samples = NULL;
    m->condition = NULL;
}

static gboolean lily_mel_meta_transform(GstBuffer *dest, GstMeta *meta, GstBuffer *buffer,
                                        GQuark type, gpointer data)
{
    GstLilyMelMeta *src = (GstLilyMelMeta *)meta;
    if (!GST_META_TRANSFORM_IS_COPY(type)) return FALSE;
    GstMetaTransformCopy *copy = data;
    if (copy->region) {
        gsize whole = gst_buffer_get_size(buffer);
        gboolean all = copy->offset == 0 && (copy->size == (gsize)-1 || copy->size == whole);
        if (!all) return TRUE; /* partial copy: see the file comment */
    }
    GstLilyMelMeta *dst = gst_buffer_add_lily_mel_meta(dest, src->n_channels, src->n_samples,
                                                       src->offset, src->n_valid);
    if (!dst) return FALSE;
    if (src->samples && src->n_channels && src->n_samples)
        memcpy(dst->samples, src->samples,
               sizeof(gfloat) * (gsize)src->n_channels * src->n_samples);
    if (src->condition)
        memcpy(gst_lily_mel_meta_add_condition(dst), src->condition,
               sizeof(gfloat) * (gsize)src->n_channels * src->n_samples);
    return TRUE;
}

const GstMetaInfo *gst_lily_mel_meta_get_info(void)
{
    static const GstMetaInfo *info = NULL;
    static gsize once = 0;
    if (g_once_init_enter(&once)) {
        info = gst_meta_register(GST_LILY_MEL_META_API_TYPE, "GstLilyMelMeta",
                                 sizeof(GstLilyMelMeta), lily_mel_meta_init, lily_mel_meta_free,
                                 lily_mel_meta_transform);
        g_once_init_leave(&once, 1);
    }
    return info;
}

GstLilyMelMeta *gst_buffer_add_lily_mel_meta(GstBuffer *buffer, guint n_channels,
                                             gsize n_samples, guint64 offset, gsize n_valid)
{
    g_return_val_if_fail(GST_IS_BUFFER(buffer), NULL);
    g_return_val_if_fail(n_valid <= n_samples, NULL);
    GstLilyMelMeta *m =
        (GstLilyMelMeta *)gst_buffer_add_meta(buffer, GST_LILY_MEL_META_INFO, NULL);
    if (!m) return NULL;
    m->n_channels = n_channels;
    m->n_samples = n_samples;
    m->offset = offset;
    m->n_valid = n_valid;
    m->samples = g_new(gfloat, (gsize)n_channels * n_samples + 1);
    return m;
}

gfloat *gst_lily_mel_meta_add_condition(GstLilyMelMeta *meta)
{
    g_return_val_if_fail(meta != NULL, NULL);
    if (!meta->condition)
        meta->condition = g_new(gfloat, (gsize)meta->n_channels * meta->n_samples + 1);
    return meta->condition;
}

GstLilyMelMeta *gst_buffer_get_lily_mel_meta(GstBuffer *buffer)
{
    return (GstLilyMelMeta *)gst_buffer_get_meta(buffer, GST_LILY_MEL_META_API_TYPE);
}
