/* weights/torch-legacy.c - PyTorch checkpoints in the pre-1.6 format (torch.save with
 * _use_new_zipfile_serialization=False; torch/serialization.py _legacy_save / _legacy_load).
 *
 * The file is five pickles in a row, then the raw storages:
 *   1. the magic number 0x1950a86a20f9469cfc6c (a LONG1 of 10 bytes)
 *   2. the protocol version 1001
 *   3. sys_info {'protocol_version', 'little_endian', 'type_sizes'}
 *   4. the object; storages are persistent ids ('storage', type, key, location, numel, None)
 *   5. the list of storage keys, sorted
 * then, for each key of that list in order, an int64 element count and the elements. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "weights/torch-common.h"

typedef struct LegacyStorage {
    const char *key;
    int esize;
    const uint8_t *data;
    uint64_t nbytes, file_offset;
    int found;
} LegacyStorage;

typedef struct LegacyCtx {
    LilyWeights *w;
    LegacyStorage *s;
    size_t n;
} LegacyCtx;

static int cmp_storage(const void *a, const void *b)
{
    return strcmp(((const LegacyStorage *)a)->key, ((const LegacyStorage *)b)->key);
}

static LegacyStorage *find(LegacyCtx *c, const char *key)
{
    LegacyStorage probe = {.key = key};
    return bsearch(&probe, c->s, c->n, sizeof *c->s, cmp_storage);
}

static LilyStatus resolve(LilyContext *ctx, void *user, const LilyPkObj *s, LilyTorchStorage *out)
{
    LegacyCtx *c = user;
    LegacyStorage *ls = find(c, s->u.storage.key);
    if (!ls || !ls->found)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: storage '%s' has no data after the pickles: "
                          "the file is truncated or damaged", c->w->path, s->u.storage.key);
    out->data = ls->data;
    out->nbytes = ls->nbytes;
    out->file_offset = ls->file_offset;
    out->index = (int)(ls - c->s);
    out->desc = ls->key;
    return LILY_OK;
}

static const uint8_t magic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

LilyStatus lily_torch_legacy_read(LilyContext *ctx, LilyWeights *w)
{
    const uint8_t *d = w->map;
    size_t size = w->map_size, pos = 0, used = 0;
    LilyPickle *pk[5] = {NULL};
    LegacyCtx c = {.w = w};
    char origin[600];
    LilyStatus st = LILY_OK;
    if (size < 2 + sizeof magic || memcmp(d + 2, magic, sizeof magic) != 0)
        return lily_error(ctx, LILY_ERR_UNSUPPORTED, "%s: a Python pickle that is not a PyTorch "
                          "checkpoint (no torch magic number); Lily reads torch.save files and "
                          "safetensors", w->path);
    static const char *const what[] = {"magic number", "protocol version", "sys_info", "object",
                                       "storage keys"};
    for (int i = 0; i < 5; i++) {
        snprintf(origin, sizeof origin, "%s (legacy torch file, pickle %d: %s at byte %zu)",
                 w->path, i + 1, what[i], pos);
        LILY_CHECK(st, lily_pickle_load(ctx, origin, d + pos, size - pos, &pk[i], &used), done);
        pos += used;
    }
    const LilyPkObj *version = lily_pickle_root(pk[1]);
    if (version->type != LILY_PK_INT || version->u.i != 1001) {
        st = lily_error(ctx, LILY_ERR_UNSUPPORTED, "%s: legacy torch file of protocol version %lld; "
                        "Lily reads version 1001", w->path,
                        version->type == LILY_PK_INT ? (long long)version->u.i : -1LL);
        goto done;
    }
    const LilyPkObj *le = lily_pk_dict_get(lily_pickle_root(pk[2]), "little_endian");
    if (le && le->type == LILY_PK_BOOL && !le->u.i) {
        st = lily_error(ctx, LILY_ERR_UNSUPPORTED, "%s: saved on a big-endian machine", w->path);
        goto done;
    }
    /* Element sizes come from the storage references in the object pickle. */
    size_t n_obj = lily_pickle_n_objects(pk[3]);
    c.s = calloc(n_obj + 1, sizeof *c.s);
    if (!c.s) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_obj; i++) {
        const LilyPkObj *o = lily_pickle_object(pk[3], i);
        if (o->type != LILY_PK_STORAGE) continue;
        c.s[c.n].key = o->u.storage.key;
        c.s[c.n].esize = o->u.storage.cls->u.global.elem_size;
        c.n++;
    }
    qsort(c.s, c.n, sizeof *c.s, cmp_storage);
    size_t uniq = 0; /* a storage viewed by several tensors is referenced several times */
    for (size_t i = 0; i < c.n; i++)
        if (uniq == 0 || strcmp(c.s[uniq - 1].key, c.s[i].key) != 0) c.s[uniq++] = c.s[i];
    c.n = uniq;
    const LilyPkObj *keys = lily_pickle_root(pk[4]);
    if (keys->type != LILY_PK_LIST) {
        st = lily_error(ctx, LILY_ERR_FORMAT, "%s: the storage key list is a %s, not a list",
                        w->path, lily_pk_type_name(keys->type));
        goto done;
    }
    for (int k = 0; k < keys->u.seq.n; k++) {
        const LilyPkObj *key = keys->u.seq.items[k];
        LegacyStorage *ls = key->type == LILY_PK_STR ? find(&c, key->u.str.s) : NULL;
        if (!ls) {
            st = lily_error(ctx, LILY_ERR_FORMAT, "%s: storage key %d of the key list is not "
                            "referenced by the object", w->path, k);
            goto done;
        }
        if (size - pos < 8) {
            st = lily_error(ctx, LILY_ERR_FORMAT, "%s: the file ends at byte %zu inside the storage "
                            "data (storage '%s'): truncated", w->path, size, ls->key);
            goto done;
        }
        uint64_t numel = 0;
        for (int b = 7; b >= 0; b--) numel = (numel << 8) | d[pos + (size_t)b];
        pos += 8;
        if (numel > (size - pos) / (uint64_t)ls->esize) {
            st = lily_error(ctx, LILY_ERR_FORMAT, "%s: storage '%s' (%llu elements of %d bytes at "
                            "byte %zu) runs past the end of the file (%zu bytes): truncated",
                            w->path, ls->key, (unsigned long long)numel, ls->esize, pos, size);
            goto done;
        }
        ls->data = d + pos;
        ls->nbytes = numel * (uint64_t)ls->esize;
        ls->file_offset = pos;
        ls->found = 1;
        pos += (size_t)ls->nbytes;
    }
    snprintf(origin, sizeof origin, "%s (legacy torch file)", w->path);
    st = lily_torch_load_state_dict(ctx, w, origin, lily_pickle_root(pk[3]), resolve, &c);
done:
    for (int i = 0; i < 5; i++) lily_pickle_free(pk[i]);
    free(c.s);
    return st;
}
