/* weights/torch-zip.c - PyTorch zip checkpoints (torch.save since 1.6; AudioSR's
 * pytorch_model.bin), read without Python.
 *
 * Layout (torch/serialization.py _save, caffe2/serialize/inline_container.cc):
 *   <root>/data.pkl        the pickled object; tensors refer to storages by key
 *   <root>/data/<key>      one entry per storage, raw little-endian elements, stored
 *   <root>/version         "3"
 *   <root>/byteorder       "little" (newer torch only)
 * <root> is the archive name given at save time ("archive", the file stem, "tiny-a"...), so
 * data.pkl is found by its suffix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "weights/torch-common.h"
#include "weights/zip.h"

typedef struct ZipCtx {
    LilyWeights *w;
    LilyZip *zip;
    char *prefix;      /* "<root>/" */
    const uint8_t **inflated; /* per entry: the inflated copy of a deflated storage */
    char name[512];    /* scratch for entry names */
    char desc[512];
} ZipCtx;

static LilyStatus resolve_storage(LilyContext *ctx, void *user, const LilyPkObj *s,
                                  LilyTorchStorage *out)
{
    ZipCtx *z = user;
    snprintf(z->name, sizeof z->name, "%sdata/%s", z->prefix, s->u.storage.key);
    int i = lily_zip_find(z->zip, z->name);
    if (i < 0)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: storage '%s' named in data.pkl is not in the "
                          "archive: the checkpoint is incomplete or damaged", z->w->path, z->name);
    const LilyZipEntry *e = lily_zip_entry(z->zip, i);
    const uint8_t *data = z->inflated[i];
    if (!data) {
        void *owned;
        LILY_TRY(lily_zip_read(ctx, z->zip, i, 0, &data, &owned));
        if (owned) {
            /* A deflated storage (a re-packed archive): inflate it once for all its views. */
            LILY_TRY(lily_weights_own(ctx, z->w, owned));
            z->inflated[i] = data;
        }
    }
    uint64_t off = 0;
    LILY_TRY(lily_zip_data_offset(ctx, z->zip, i, &off));
    snprintf(z->desc, sizeof z->desc, "%s", e->name);
    out->data = data;
    out->nbytes = e->size;
    out->file_offset = off;
    out->index = i;
    out->desc = z->desc;
    return LILY_OK;
}

static int find_pickle(const LilyZip *zip)
{
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; i < lily_zip_count(zip); i++) {
        const char *n = lily_zip_entry(zip, i)->name;
        size_t len = strlen(n);
        if (len < 8 || strcmp(n + len - 8, "data.pkl") != 0) continue;
        if (len > 8 && n[len - 9] != '/') continue;
        if (best < 0 || len < best_len) {
            best = i;
            best_len = len;
        }
    }
    return best;
}

LilyStatus lily_torch_zip_read(LilyContext *ctx, LilyWeights *w)
{
    ZipCtx z = {.w = w};
    LilyPickle *pk = NULL;
    void *pkl_owned = NULL;
    char origin[600];
    LilyStatus st;
    LILY_CHECK(st, lily_zip_open(ctx, w->path, w->map, w->map_size, &z.zip), done);
    z.inflated = calloc((size_t)lily_zip_count(z.zip) + 1, sizeof *z.inflated);
    if (!z.inflated) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    int ipkl = find_pickle(z.zip);
    if (ipkl < 0) {
        const LilyZipEntry *e0 = lily_zip_entry(z.zip, 0);
        st = lily_error(ctx, LILY_ERR_FORMAT, "%s: a zip archive without data.pkl (%d entries%s%s): "
                        "not a PyTorch checkpoint", w->path, lily_zip_count(z.zip),
                        e0 ? ", first " : "", e0 ? e0->name : "");
        goto done;
    }
    const char *pkl_name = lily_zip_entry(z.zip, ipkl)->name;
    size_t plen = strlen(pkl_name) - 8;
    z.prefix = malloc(plen + 1);
    if (!z.prefix) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    memcpy(z.prefix, pkl_name, plen);
    z.prefix[plen] = '\0';
    snprintf(origin, sizeof origin, "%s:%s", w->path, pkl_name);

    snprintf(z.name, sizeof z.name, "%sbyteorder", z.prefix);
    int ibo = lily_zip_find(z.zip, z.name);
    if (ibo >= 0) {
        const uint8_t *bo;
        void *bo_owned;
        LILY_CHECK(st, lily_zip_read(ctx, z.zip, ibo, 0, &bo, &bo_owned), done);
        uint64_t n = lily_zip_entry(z.zip, ibo)->size;
        int big = n >= 3 && memcmp(bo, "big", 3) == 0;
        free(bo_owned);
        if (big) {
            st = lily_error(ctx, LILY_ERR_UNSUPPORTED, "%s: saved on a big-endian machine; Lily "
                            "reads little-endian checkpoints only", w->path);
            goto done;
        }
    }

    const uint8_t *pkl;
    /* data.pkl is small next to the storages: check its CRC, so a damaged archive is caught
     * before its pickle is interpreted. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    const int verify_crc = 0; /* let mutations reach the pickle interpreter */
#else
    const int verify_crc = 1;
#endif
    LILY_CHECK(st, lily_zip_read(ctx, z.zip, ipkl, verify_crc, &pkl, &pkl_owned), done);
    LILY_CHECK(st, lily_pickle_load(ctx, origin, pkl, lily_zip_entry(z.zip, ipkl)->size, &pk, NULL),
               done);
    LILY_CHECK(st, lily_torch_load_state_dict(ctx, w, origin, lily_pickle_root(pk), resolve_storage,
                                              &z), done);
    st = LILY_OK;
done:
    lily_pickle_free(pk);
    free(pkl_owned);
    free(z.prefix);
    free(z.inflated);
    lily_zip_close(z.zip);
    return st;
}
