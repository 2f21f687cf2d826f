/* train/losses.h - the training losses, each with its gradient.
 *
 * What AudioSR's training recipes use (spec.md, docs/training.md):
 *   - the diffusion loss: LDM's p_losses with loss_type l2 ("simple"): mean squared error
 *     between the UNet's v-prediction and the v target, averaged over every element;
 *   - the VAE: L1 reconstruction of the log-mel and the KL divergence of the posterior from
 *     N(0, I) (LDM's LPIPSWithDiscriminator terms without the perceptual one);
 *   - HiFi-GAN: mel L1, least-squares GAN losses and feature matching (L1 between the
 *     discriminators' feature maps of real and generated audio).
 * Every call returns the loss value (host double, including `scale`) and, when the gradient
 * pointer is not NULL, allocates it in the arena: d(scale * loss)/d(input). */
#ifndef LILY_TRAIN_LOSSES_H
#define LILY_TRAIN_LOSSES_H

#include "models/layers-train.h"

/* scale * mean((x - target)^2). */
LilyStatus lily_loss_mse(LilyContext *ctx, const LilyTensor *x, const LilyTensor *target,
                         double scale, double *loss, LilyTensor *dx);
/* scale * mean(|x - target|) (the subgradient 0 at equality, as torch.sign gives). */
LilyStatus lily_loss_l1(LilyContext *ctx, const LilyTensor *x, const LilyTensor *target,
                        double scale, double *loss, LilyTensor *dx);
/* scale * mean((x - c)^2) for a constant c: LSGAN's terms (c = 1 real, 0 fake). */
LilyStatus lily_loss_ls(LilyContext *ctx, const LilyTensor *x, float c, double scale, double *loss,
                        LilyTensor *dx);
/* scale * 0.5 * sum(mean^2 + exp(logvar) - 1 - logvar): KL(N(mean, exp(logvar)) || N(0, 1))
 * summed over elements (LDM's DiagonalGaussianDistribution.kl before its batch mean). */
LilyStatus lily_loss_kl(LilyContext *ctx, const LilyTensor *mean, const LilyTensor *logvar,
                        double scale, double *loss, LilyTensor *dmean, LilyTensor *dlogvar);

#endif /* LILY_TRAIN_LOSSES_H */
