/* weights/weights.h - named tensors read from a model file, on the host.
 *
 * One list of tensors whatever the container (stable-diffusion.cpp's TensorStorage idea):
 *   - Lily .safetensors: 8-byte header length, JSON header, raw data; memory-mapped.
 *     Metadata "lily.config" holds the model config as YAML (config/model-config.h).
 *   - AudioSR checkpoints (.bin / .ckpt): a PyTorch zip archive whose data.pkl is a pickled
 *     dict {"state_dict": {name: tensor}} and whose data/<key> entries are raw storages,
 *     stored uncompressed; memory-mapped, tensors point into the archive when contiguous.
 *   - Legacy PyTorch files (torch.save before 1.6): consecutive pickles, then the storages.
 * The format is detected from the content, not the file name. Tensor names are AudioSR's
 * state_dict keys (shared/audiosr/keys-basic.tsv). Which tensors a config expects, and the
 * compatibility check, are in weights/arch.h. */
#ifndef LILY_WEIGHTS_WEIGHTS_H
#define LILY_WEIGHTS_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lily/lily.h>

#include "core/tensor.h"

typedef enum LilyWeightsFormat {
    LILY_WEIGHTS_SAFETENSORS = 0,
    LILY_WEIGHTS_TORCH_ZIP,
    LILY_WEIGHTS_TORCH_LEGACY,
} LilyWeightsFormat;

typedef struct LilyWeight {
    char *name;
    LilyDType dtype;
    int ndim;
    int64_t shape[LILY_MAX_DIMS];
    const void *data;  /* host, contiguous, little-endian; valid while the LilyWeights lives */
    size_t nbytes;
    int storage;       /* index of the storage it views (tensors sharing storage share it) */
    uint64_t file_offset; /* where its bytes start in the file (for error messages) */
} LilyWeight;

typedef struct LilyWeights LilyWeights;

/* Opens and indexes a model file. Every structural problem (bad magic, truncation, a tensor
 * running past the end, an unsupported pickle opcode, a bad dtype) is a clear error naming
 * the file and the offset or tensor. */
LilyStatus lily_weights_open(LilyContext *ctx, const char *path, LilyWeights **out);
void lily_weights_close(LilyWeights *w);

LilyWeightsFormat lily_weights_format(const LilyWeights *w);
const char *lily_weights_format_name(LilyWeightsFormat f); /* "safetensors", "pytorch-zip", ... */
uint64_t lily_weights_file_size(const LilyWeights *w);
const char *lily_weights_path(const LilyWeights *w);
int lily_weights_count(const LilyWeights *w);
const LilyWeight *lily_weights_at(const LilyWeights *w, int i);
/* NULL if absent. Hash lookup. */
const LilyWeight *lily_weights_find(const LilyWeights *w, const char *name);
/* Metadata value (safetensors __metadata__), NULL if absent. */
const char *lily_weights_metadata(const LilyWeights *w, const char *key);
int lily_weights_metadata_count(const LilyWeights *w);
void lily_weights_metadata_at(const LilyWeights *w, int i, const char **key, const char **value);

/* A writer for Lily .safetensors files: tensors are added in order, then the file is written
 * atomically (temporary file in the same folder, fsync, rename). */
typedef struct LilySafetensorsWriter LilySafetensorsWriter;
LilyStatus lily_safetensors_writer_new(LilyContext *ctx, LilySafetensorsWriter **out);
/* data is host memory of `src_dtype`; it is converted to `dst_dtype` (f32/bf16/f16) when they
 * differ, while writing. The writer keeps only the pointer (no copy, so converting a 6 GB
 * checkpoint needs no 6 GB of memory): data must stay valid until write() returns. */
LilyStatus lily_safetensors_writer_add(LilySafetensorsWriter *wr, const char *name,
                                       LilyDType dst_dtype, LilyDType src_dtype, int ndim,
                                       const int64_t *shape, const void *data);
/* Produces values [first, first + count) of a tensor, as f32, into out (count <= 1 << 20). */
typedef LilyStatus (*LilyTensorFillFn)(void *user, uint64_t first, size_t count, float *out);
/* A tensor whose values are generated while writing (random initialisation of a large model
 * without holding it in memory). dst_dtype is f32, bf16 or f16. */
LilyStatus lily_safetensors_writer_add_generated(LilySafetensorsWriter *wr, const char *name,
                                                 LilyDType dst_dtype, int ndim,
                                                 const int64_t *shape, LilyTensorFillFn fill,
                                                 void *user);
LilyStatus lily_safetensors_writer_set_metadata(LilySafetensorsWriter *wr, const char *key,
                                                const char *value);
/* progress(done_bytes, total_bytes) may be NULL. */
LilyStatus lily_safetensors_writer_write(LilySafetensorsWriter *wr, const char *path,
                                         void (*progress)(uint64_t done, uint64_t total,
                                                          void *user),
                                         void *user);
void lily_safetensors_writer_free(LilySafetensorsWriter *wr);

#endif /* LILY_WEIGHTS_WEIGHTS_H */
