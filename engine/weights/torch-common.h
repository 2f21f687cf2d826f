/* weights/torch-common.h - what the two PyTorch containers (zip and legacy) share: finding the
 * state dict inside the unpickled object, and turning each rebuilt tensor (a view of a storage:
 * offset, size, stride) into a LilyWeight, in place when it is contiguous. */
#ifndef LILY_WEIGHTS_TORCH_COMMON_H
#define LILY_WEIGHTS_TORCH_COMMON_H

#include "weights/pickle.h"
#include "weights/weights-impl.h"

/* Where a storage's bytes are. */
typedef struct LilyTorchStorage {
    const uint8_t *data;
    uint64_t nbytes;
    uint64_t file_offset; /* of data[0], for messages */
    int index;            /* storage number shared by every tensor that views it */
    const char *desc;     /* "archive/data/17" */
} LilyTorchStorage;

/* Finds the storage of a STORAGE object; returns a status (and message) when it is missing. */
typedef LilyStatus (*LilyTorchResolveFn)(LilyContext *ctx, void *user, const LilyPkObj *storage,
                                         LilyTorchStorage *out);

/* Locates the state dict in `root` (a dict with "state_dict", or a dict of tensors itself, or
 * under "model"/"module"), records the other top-level scalars as "torch.<key>" metadata, and
 * pushes every tensor entry. `origin` names the pickle in messages. */
LilyStatus lily_torch_load_state_dict(LilyContext *ctx, LilyWeights *w, const char *origin,
                                      const LilyPkObj *root, LilyTorchResolveFn resolve, void *user);

#endif /* LILY_WEIGHTS_TORCH_COMMON_H */
