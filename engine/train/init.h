/* train/init.h - a model file with deterministic random weights for a config: what lily-train
 * starts from when model.init is empty, and what the training tests build their tiny models
 * from. The values are those of `lily-convert --random SEED` (weights/random-init.c: PyTorch's
 * default initialisation, Philox-keyed by seed and tensor name), so a run can be reproduced
 * with either tool. */
#ifndef LILY_TRAIN_INIT_H
#define LILY_TRAIN_INIT_H

#include <stdint.h>

#include "config/model-config.h"

/* Writes the tensors super-resolution and training use (UNet, both encoders, decoder,
 * vocoder, scale_factor) with the config as metadata, atomically, to path. */
LilyStatus lily_train_write_random_model(LilyContext *ctx, const LilyModelConfig *cfg,
                                         uint64_t seed, const char *path);

#endif /* LILY_TRAIN_INIT_H */
