/* weights/pickle.h - a pickle reader that builds values and executes nothing.
 *
 * PyTorch's torch.save pickles a dict of tensors; each tensor is written as a call
 * torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks) whose
 * storage is a persistent id ('storage', torch.FloatStorage, key, location, numel). This
 * interpreter understands the opcodes such a file uses (protocols 2-4; pickletools names), turns
 * the few callables it knows (the tensor and parameter rebuilders, collections.OrderedDict, the
 * storage classes) into values, and turns any other global into an inert placeholder that
 * remembers its name: no Python code is ever run and nothing is imported. Any other opcode is
 * an error naming the opcode and its byte offset. Stacks, memo and marks are bounded by the
 * input's length. Values live until lily_pickle_free(). */
#ifndef LILY_WEIGHTS_PICKLE_H
#define LILY_WEIGHTS_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include <lily/lily.h>

#include "core/tensor.h"

typedef enum LilyPkType {
    LILY_PK_NONE = 0,
    LILY_PK_BOOL,
    LILY_PK_INT,
    LILY_PK_FLOAT,
    LILY_PK_STR,
    LILY_PK_BYTES,
    LILY_PK_TUPLE,
    LILY_PK_LIST,
    LILY_PK_DICT,    /* items[2k] = key, items[2k+1] = value, in insertion order */
    LILY_PK_SET,
    LILY_PK_GLOBAL,  /* a module.name reference */
    LILY_PK_STORAGE, /* a persistent id ('storage', cls, key, location, numel) */
    LILY_PK_TENSOR,  /* a rebuilt tensor (view of a storage) */
    LILY_PK_OPAQUE,  /* the result of calling a callable Lily does not run */
} LilyPkType;

/* What a GLOBAL refers to, when Lily knows it. */
typedef enum LilyPkGlobal {
    LILY_PKG_OTHER = 0,
    LILY_PKG_REBUILD_TENSOR_V2, /* torch._utils._rebuild_tensor_v2 */
    LILY_PKG_REBUILD_TENSOR,    /* torch._utils._rebuild_tensor */
    LILY_PKG_REBUILD_PARAMETER, /* torch._utils._rebuild_parameter(_with_state) */
    LILY_PKG_ORDERED_DICT,      /* collections.OrderedDict */
    LILY_PKG_STORAGE_TYPE,      /* torch.FloatStorage, ... */
} LilyPkGlobal;

typedef struct LilyPkObj LilyPkObj;

struct LilyPkObj {
    LilyPkType type;
    uint64_t offset; /* byte offset (in the pickle) of the opcode that made it */
    union {
        int64_t i;          /* BOOL, INT */
        double f;           /* FLOAT */
        struct {            /* STR, BYTES: NUL-terminated copy */
            char *s;
            size_t len;
        } str;
        struct {            /* TUPLE, LIST, DICT, SET */
            LilyPkObj **items;
            int n, cap;
        } seq;
        struct {            /* GLOBAL, OPAQUE (the callable's name) */
            char *module, *name;
            LilyPkGlobal kind;
            int dtype_known; /* STORAGE_TYPE: whether Lily reads this element type */
            LilyDType dtype;
            int elem_size;
        } global;
        struct {            /* STORAGE */
            char *key;
            LilyPkObj *cls;  /* the storage class GLOBAL */
            int64_t numel;
        } storage;
        struct {            /* TENSOR */
            LilyPkObj *storage;
            int64_t offset;  /* elements */
            int ndim;
            int64_t shape[LILY_MAX_DIMS];
            int64_t stride[LILY_MAX_DIMS];
        } tensor;
    } u;
};

typedef struct LilyPickle LilyPickle;

/* Runs the pickle in data[0..len) up to its STOP opcode. *consumed (may be NULL) receives the
 * number of bytes read including STOP (a legacy torch file holds several pickles in a row).
 * `origin` names the source in messages ("model.bin:archive/data.pkl"). */
LilyStatus lily_pickle_load(LilyContext *ctx, const char *origin, const uint8_t *data, size_t len,
                            LilyPickle **out, size_t *consumed);
void lily_pickle_free(LilyPickle *p);
const LilyPkObj *lily_pickle_root(const LilyPickle *p);
/* Every value the pickle made, in creation order (to find all storage references). */
size_t lily_pickle_n_objects(const LilyPickle *p);
const LilyPkObj *lily_pickle_object(const LilyPickle *p, size_t i);

/* The value stored under a string key of a DICT, or NULL. */
const LilyPkObj *lily_pk_dict_get(const LilyPkObj *dict, const char *key);
const char *lily_pk_type_name(LilyPkType t);

#endif /* LILY_WEIGHTS_PICKLE_H */
