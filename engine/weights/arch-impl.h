/* weights/arch-impl.h - the tensor-list builder shared by the enumerators (arch.c, clap.c). */
#ifndef LILY_WEIGHTS_ARCH_IMPL_H
#define LILY_WEIGHTS_ARCH_IMPL_H

#include "weights/arch.h"

typedef struct LilyArchBuilder {
    LilyContext *ctx;
    LilyArch *arch;
    LilyComponent comp;
    LilyUse use;
    LilyStatus st;                  /* first failure; later additions are ignored */
    char prefix[LILY_ARCH_NAME_MAX];
} LilyArchBuilder;

/* Appends prefix + name. */
void lily_arch_add(LilyArchBuilder *b, const char *name, LilyDType dtype, LilyInit init,
                   int64_t fan_in, int ndim, const int64_t *shape);
/* name.weight [out, in] (+ name.bias [out]). */
void lily_arch_linear(LilyArchBuilder *b, const char *name, int64_t out, int64_t in, int bias);
/* name.weight [out, in, k, k] and name.bias [out]. */
void lily_arch_conv2d(LilyArchBuilder *b, const char *name, int64_t out, int64_t in, int64_t k);
/* name.weight = 1 and name.bias = 0, [ch] (GroupNorm, LayerNorm). */
void lily_arch_norm(LilyArchBuilder *b, const char *name, int64_t ch);
/* CLAP (HTSAT-base + RoBERTa-base), AudioSR's fixed audio-text model, under "clap.". */
void lily_arch_add_clap(LilyArchBuilder *b);

#endif /* LILY_WEIGHTS_ARCH_IMPL_H */
