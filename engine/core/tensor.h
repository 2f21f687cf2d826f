/* core/tensor.h - tensors: shape, dtype, device and data.
 *
 * Tensors are dense and row-major (the last dimension varies fastest), like a contiguous
 * PyTorch tensor, so AudioSR's NCHW activations and [out, in, kh, kw] weights keep their
 * layout. A LilyTensor does not own its data: weights belong to a LilyModel, activations to
 * the context's arena. Shape letters used across the engine: N batch, C channels, H time rows
 * (mel frames or latent frames), W frequency columns (mel bins or latent bins), L samples,
 * T tokens, D feature width. */
#ifndef LILY_CORE_TENSOR_H
#define LILY_CORE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lily/lily.h>

#define LILY_MAX_DIMS 6

typedef struct LilyTensor {
    void *data;
    int64_t shape[LILY_MAX_DIMS];
    int ndim;
    LilyDType dtype;
    LilyDeviceKind device;
    /* Nonzero: the content never changes while this stamp lives (model weights at inference),
     * so a backend may cache derived forms (reordered or converted weights) keyed on it.
     * Zero: mutable (activations, parameters being trained): never cached. */
    uint64_t stamp;
} LilyTensor;

int64_t lily_tensor_numel(const LilyTensor *t);
size_t lily_tensor_nbytes(const LilyTensor *t);
/* A tensor header over existing memory. */
LilyTensor lily_tensor_make(void *data, LilyDType dtype, LilyDeviceKind device, int ndim,
                            const int64_t *shape);
LilyTensor lily_tensor_f32(float *data, int ndim, const int64_t *shape); /* host f32 */
/* The same data with another shape of equal element count (false if the counts differ). */
bool lily_tensor_reshape(LilyTensor *t, int ndim, const int64_t *shape);
bool lily_tensor_same_shape(const LilyTensor *a, const LilyTensor *b);
/* "16x64x32" into buf; returns buf. */
const char *lily_shape_str(const LilyTensor *t, char *buf, size_t len);
const char *lily_dims_str(const int64_t *shape, int ndim, char *buf, size_t len);

/* Shorthand for the (ndim, shape) argument pair: f(ctx, &t, dtype, LILY_SHAPE(1, 16, 64, 32)). */
#define LILY_SHAPE(...)                                                                        \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), ((const int64_t[]){__VA_ARGS__})

/* bf16/f16 conversions (round to nearest even), host side. */
uint16_t lily_f32_to_bf16(float f);
float lily_bf16_to_f32(uint16_t h);
uint16_t lily_f32_to_f16(float f);
float lily_f16_to_f32(uint16_t h);

#endif /* LILY_CORE_TENSOR_H */
