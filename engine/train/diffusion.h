/* train/diffusion.h - the diffusion loss of one batch, given its latents and draws.
 *
 * LDM's p_losses with AudioSR's settings (ddpm.py q_sample, get_v, apply_model with concat
 * conditioning; spec.md 3): x_t = sqrt(ac_t) x0 + sqrt(1 - ac_t) eps, v = sqrt(ac_t) eps -
 * sqrt(1 - ac_t) x0, v_pred = UNet(cat[x_t, cond], t), loss = mean((v_pred - v)^2). The
 * square roots are the float32 buffers register_schedule stores (the float64 schedule's
 * roots, rounded). Split out of stage-unet.c so tests/train can run one training step on
 * given tensors and compare it with PyTorch (tests/train/make-reference.py). */
#ifndef LILY_TRAIN_DIFFUSION_H
#define LILY_TRAIN_DIFFUSION_H

#include "models/layers-train.h"

/* x0, noise [N, 16, h, w]; cond [N, 16, h, w] already multiplied by scale_factor (as the UNet
 * wrapper does); t[N] integer timesteps. *loss = scale * mean squared error. With ps, the
 * UNet's gradient of that (scaled) loss is accumulated into ps; with ps NULL the inference
 * forward runs and nothing else. */
LilyStatus lily_diffusion_v_loss(LilyContext *ctx, const LilyModel *m, const LilyParamSet *ps,
                                 const LilyTensor *x0, const LilyTensor *cond,
                                 const LilyTensor *noise, const int *t, double scale,
                                 double *loss);

#endif /* LILY_TRAIN_DIFFUSION_H */
