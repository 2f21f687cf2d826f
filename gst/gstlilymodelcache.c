/* gstlilymodelcache.c - (path, config, device, precision) -> LilyModel, shared by every Lily
 * element of the process (see gstlilymodelcache.h).
 *
 * Paths are compared after canonicalisation, so "model.safetensors" and "./model.safetensors"
 * are one entry. The cache holds one reference per entry plus one per acquisition handed out;
 * when the last acquisition is released the entry and the cache's reference go, so a model is
 * not kept alive by the cache itself (state changes NULL -> PLAYING -> NULL free it). A model
 * outlives the context that loaded it (LilyModel keeps its own way to free device memory). */
#include "gstlilymodelcache.h"

typedef struct CacheEntry {
    gchar *path;   /* canonical */
    gchar *config; /* canonical, or NULL */
    LilyDeviceKind device;
    gint device_index;
    LilyPrecision precision;
    LilyModel *model; /* the cache's own reference */
    guint users;      /* acquisitions not yet released */
} CacheEntry;

static GMutex cache_lock;
static GList *cache_entries; /* CacheEntry* */

static gchar *canonical(const gchar *path)
{
    return path ? g_canonicalize_filename(path, NULL) : NULL;
}

static gboolean entry_matches(const CacheEntry *e, const gchar *path, const gchar *config,
                              const GstLilyModelKey *key)
{
    return g_strcmp0(e->path, path) == 0 && g_strcmp0(e->config, config) == 0 &&
           e->device == key->device && e->device_index == key->device_index &&
           e->precision == key->precision;
}

LilyStatus gst_lily_model_cache_acquire(LilyContext *ctx, const GstLilyModelKey *key,
                                        LilyModel **model, gboolean *loaded)
{
    *model = NULL;
    *loaded = FALSE;
    gchar *path = canonical(key->path);
    gchar *config = key->config && key->config[0] ? canonical(key->config) : NULL;
    LilyStatus st = LILY_OK;

    g_mutex_lock(&cache_lock);
    for (GList *l = cache_entries; l; l = l->next) {
        CacheEntry *e = l->data;
        if (entry_matches(e, path, config, key)) {
            e->users++;
            *model = lily_model_ref(e->model);
            break;
        }
    }
    if (!*model) {
        LilyModelParams mp;
        lily_model_params_init(&mp);
        mp.precision = key->precision;
        mp.config_path = config;
        LilyModel *m = NULL;
        st = lily_model_load(ctx, path, &mp, &m);
        if (st == LILY_OK) {
            CacheEntry *e = g_new0(CacheEntry, 1);
            e->path = path;
            e->config = config;
            path = config = NULL; /* owned by the entry now */
            e->device = key->device;
            e->device_index = key->device_index;
            e->precision = key->precision;
            e->model = m;
            e->users = 1;
            cache_entries = g_list_prepend(cache_entries, e);
            *model = lily_model_ref(m);
            *loaded = TRUE;
        }
    }
    g_mutex_unlock(&cache_lock);
    g_free(path);
    g_free(config);
    return st;
}

void gst_lily_model_cache_release(LilyModel *model)
{
    if (!model) return;
    LilyModel *drop = NULL;
    g_mutex_lock(&cache_lock);
    for (GList *l = cache_entries; l; l = l->next) {
        CacheEntry *e = l->data;
        if (e->model == model) {
            if (--e->users == 0) {
                drop = e->model;
                cache_entries = g_list_delete_link(cache_entries, l);
                g_free(e->path);
                g_free(e->config);
                g_free(e);
            }
            break;
        }
    }
    g_mutex_unlock(&cache_lock);
    lily_model_unref(model);
    /* Freeing device memory can take a while: outside the lock. */
    lily_model_unref(drop);
}

guint gst_lily_model_cache_size(void)
{
    g_mutex_lock(&cache_lock);
    guint n = g_list_length(cache_entries);
    g_mutex_unlock(&cache_lock);
    return n;
}
