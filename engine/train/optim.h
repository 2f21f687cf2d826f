/* train/optim.h - parameters under training and their optimizer: gradients, bf16 compute
 * copies, AdamW with warm-up and decay, global-norm gradient clipping and an EMA of weights.
 *
 * References: torch.optim.AdamW (PyTorch 1.13 _single_tensor_adamw: decoupled weight decay
 * w *= 1 - lr*wd, then w -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)), torch.nn.utils.
 * clip_grad_norm_ (coefficient max_norm / (norm + 1e-6), applied when below 1), and LDM's LitEma
 * (decay min(decay, (1 + n) / (10 + n)) after n updates, so an EMA is useful from the first
 * steps). Gradients live on the device (the backward ops accumulate into them); the Adam moments
 * and the EMA live in host memory, and the update runs on the host, in f32 as PyTorch does: on
 * the CPU backend that touches the weights in place, on CUDA it stages them through host
 * memory (a fused device update is future work). */
#ifndef LILY_TRAIN_OPTIM_H
#define LILY_TRAIN_OPTIM_H

#include <stdbool.h>
#include <stdint.h>

#include "models/layers-train.h"

typedef struct LilyTrainParams {
    LilyParamSet set;       /* params (masters), compute copies, gradients */
    bool *trainable;        /* [n] */
    int64_t *offset;        /* [n]: element offset in the flat optimizer arrays, -1 if frozen */
    int64_t numel;          /* trainable elements */
    int n_trainable;
    bool mixed;             /* bf16 compute copies of the matrices */
    LilyBackend *be;        /* owns grad_mem and shadow_mem */
    void *grad_mem, *shadow_mem;
    float *adam_m, *adam_v; /* host [numel] */
    float *ema;             /* host [numel], NULL without EMA */
    int64_t ema_updates;
} LilyTrainParams;

/* Sets up training of params[i] for which trainable[i] (trainable may be NULL: all). Trainable
 * masters must be f32; their stamps are cleared (they change at every step, so no backend may
 * cache them). precision BF16 adds bf16 compute copies of the matrix parameters. with_ema keeps
 * an EMA initialised to the current weights. */
LilyStatus lily_train_params_new(LilyContext *ctx, LilyParam *params, int n, const bool *trainable,
                                 LilyPrecision precision, bool with_ema, LilyTrainParams **out);
void lily_train_params_free(LilyTrainParams *tp);
/* Zeroes every gradient. */
LilyStatus lily_train_params_zero_grad(LilyContext *ctx, LilyTrainParams *tp);
/* Copies the masters into the bf16 compute copies (after loading or an update). */
LilyStatus lily_train_params_sync(LilyContext *ctx, LilyTrainParams *tp);

typedef struct LilyAdamW {
    double lr, beta1, beta2, eps, weight_decay;
    double grad_clip; /* max global norm; 0 = none */
    double ema_decay; /* used when the params have an EMA */
} LilyAdamW;

typedef struct LilyStepStats {
    double grad_norm;  /* global L2 norm before clipping */
    double clip_coef;  /* factor applied (1 when not clipped) */
} LilyStepStats;

/* One AdamW update with `step` counting from 1 (bias corrections), then the EMA update and the
 * compute-copy refresh. A non-finite gradient norm fails with LILY_ERR_NUMERIC and leaves the
 * weights unchanged. */
LilyStatus lily_adamw_step(LilyContext *ctx, LilyTrainParams *tp, const LilyAdamW *opt,
                           int64_t step, LilyStepStats *stats);
/* Global L2 norm of the gradients. */
LilyStatus lily_train_params_grad_norm(LilyContext *ctx, LilyTrainParams *tp, double *norm);

/* Learning rate at optimizer step `step` (0-based): linear warm-up from lr/warmup to lr over
 * `warmup` steps, then decay (cosine or linear) to min_lr at total_steps, or constant. */
typedef enum LilyLrShape { LILY_LR_COSINE = 0, LILY_LR_CONSTANT, LILY_LR_LINEAR } LilyLrShape;
double lily_lr_at(int64_t step, double lr, double min_lr, int64_t warmup, int64_t total_steps,
                  LilyLrShape shape);

/* Copies the EMA into the masters (and back: swap), for validating or exporting the EMA
 * weights. Calling it twice restores the training weights. */
LilyStatus lily_train_params_swap_ema(LilyContext *ctx, LilyTrainParams *tp);

/* Host pointer to a device tensor's f32 data: the data itself on the CPU backend, else a copy
 * in *staging (reallocated as needed; free it after use). */
LilyStatus lily_train_host_view(LilyContext *ctx, const LilyTensor *t, float **staging,
                                size_t *staging_cap, float **out);

#endif /* LILY_TRAIN_OPTIM_H */
