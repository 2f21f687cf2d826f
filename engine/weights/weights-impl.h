/* weights/weights-impl.h - what a LilyWeights holds, for the container readers only.
 *
 * The readers (torch-zip.c, torch-legacy.c, safetensors.c) fill one LilyWeights through the
 * functions below: tensors are pushed in file order and indexed by name in an open-addressing
 * hash table, metadata is pushed as key/value strings, and any buffer a reader had to
 * materialise (a strided tensor made contiguous, a deflated storage) is handed over so that it
 * lives exactly as long as the LilyWeights. Nothing here is visible outside engine/weights/. */
#ifndef LILY_WEIGHTS_WEIGHTS_IMPL_H
#define LILY_WEIGHTS_WEIGHTS_IMPL_H

#include "weights/weights.h"

struct LilyWeights {
    LilyWeightsFormat format;
    char *path;
    const uint8_t *map; /* the whole file, read-only */
    size_t map_size;
    LilyWeight *tensors;
    int n, cap;
    int *slots;         /* hash slots: tensor index + 1, 0 = empty */
    size_t n_slots;     /* power of two, >= 2 * n */
    char **meta_keys, **meta_values;
    int n_meta, cap_meta;
    void **owned;
    int n_owned, cap_owned;
};

/* Appends a tensor (name is copied). Fails on a duplicate name or an empty name. */
LilyStatus lily_weights_push(LilyContext *ctx, LilyWeights *w, const char *name, LilyDType dtype,
                             int ndim, const int64_t *shape, const void *data, size_t nbytes,
                             int storage, uint64_t file_offset);
/* Sets (or replaces) a metadata entry; both strings are copied. */
LilyStatus lily_weights_push_metadata(LilyContext *ctx, LilyWeights *w, const char *key,
                                      const char *value);
/* Hands a malloc'ed buffer to w, freed by lily_weights_close(). On failure buf is freed. */
LilyStatus lily_weights_own(LilyContext *ctx, LilyWeights *w, void *buf);

/* Container readers: fill w from w->map / w->map_size. */
LilyStatus lily_torch_zip_read(LilyContext *ctx, LilyWeights *w);
LilyStatus lily_torch_legacy_read(LilyContext *ctx, LilyWeights *w);
LilyStatus lily_safetensors_read(LilyContext *ctx, LilyWeights *w);

/* Element count of a shape, or -1 when it overflows int64 or a dimension is negative. */
int64_t lily_weights_numel(int ndim, const int64_t *shape);

#endif /* LILY_WEIGHTS_WEIGHTS_IMPL_H */
