/* gstlilymodelcache.h - the process-wide model cache of the `lily` plugin.
 *
 * Elements ask the cache for a model instead of loading it, so every element of a process that
 * names the same file, config, device and precision holds one LilyModel (one weights
 * allocation: lily_model_weights_id() is equal), the way whisper.cpp shares a context between
 * states. An entry lives while an element holds it and is dropped when the last one releases
 * it. Thread-safe: one mutex guards the table and is held during a load, so two elements
 * starting at once still load a file once. */
#ifndef LILY_GST_GSTLILYMODELCACHE_H
#define LILY_GST_GSTLILYMODELCACHE_H

#include <glib.h>
#include <lily/lily.h>

G_BEGIN_DECLS

typedef struct GstLilyModelKey {
    const gchar *path;   /* model file */
    const gchar *config; /* AudioSR YAML for a .bin/.ckpt without embedded config, or NULL */
    LilyDeviceKind device;
    gint device_index;
    LilyPrecision precision;
} GstLilyModelKey;

/* Returns a reference to the model for `key` in *model, loading it with ctx (which must be on
 * key->device) if no element holds it yet; *loaded tells whether this call read the file.
 * On failure returns the engine's status with its message in ctx (lily_context_error()). */
LilyStatus gst_lily_model_cache_acquire(LilyContext *ctx, const GstLilyModelKey *key,
                                        LilyModel **model, gboolean *loaded);
/* Gives back a reference obtained from acquire; the last release frees the model. */
void gst_lily_model_cache_release(LilyModel *model);
/* Models currently held (for tests and debug output). */
guint gst_lily_model_cache_size(void);

G_END_DECLS

#endif /* LILY_GST_GSTLILYMODELCACHE_H */
