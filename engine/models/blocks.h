/* models/blocks.h - layer calls shared by the VAE, the UNet and the vocoder.
 *
 * Each call allocates its output in the context's arena with the shape the layer implies and
 * runs the op. Model code then reads like the PyTorch forward it mirrors, and a caller frees a
 * whole block's temporaries by resetting the arena to a mark taken before the block. */
#ifndef LILY_MODELS_BLOCKS_H
#define LILY_MODELS_BLOCKS_H

#include "backend/backend.h"
#include "core/arena.h"
#include "core/context.h"
#include "models/model.h"

/* Conv2d with square stride/padding (PyTorch nn.Conv2d(..., stride, padding)). */
LilyStatus lily_nn_conv2d(LilyContext *ctx, const LilyConv *c, const LilyTensor *x, int stride,
                          int pad, LilyTensor *y);
/* Conv2d with explicit geometry (asymmetric padding). */
LilyStatus lily_nn_conv2d_p(LilyContext *ctx, const LilyConv *c, const LilyTensor *x,
                            const LilyConvParams *p, LilyTensor *y);
LilyStatus lily_nn_conv1d(LilyContext *ctx, const LilyConv *c, const LilyTensor *x, int stride,
                          int pad, int dilation, LilyTensor *y);
LilyStatus lily_nn_conv_transpose1d(LilyContext *ctx, const LilyConv *c, const LilyTensor *x,
                                    int stride, int pad, LilyTensor *y);
/* y[..., O] = x[..., I] W^T + b. */
LilyStatus lily_nn_linear(LilyContext *ctx, const LilyLinear *l, const LilyTensor *x,
                          LilyTensor *y);
LilyStatus lily_nn_group_norm(LilyContext *ctx, const LilyNorm *n, const LilyTensor *x,
                              int groups, float eps, int silu, LilyTensor *y);
LilyStatus lily_nn_layer_norm(LilyContext *ctx, const LilyNorm *n, const LilyTensor *x,
                              float eps, LilyTensor *y);
/* A new f32 tensor with x's shape. */
LilyStatus lily_nn_like(LilyContext *ctx, const LilyTensor *x, LilyTensor *y);
/* y = a + b (same shapes), in place into a when y == a. */
LilyStatus lily_nn_add(LilyContext *ctx, const LilyTensor *a, const LilyTensor *b, LilyTensor *y);

/* Keeps y and frees every allocation made since m (y must be the last allocation):
 * [x][temps][y] -> [y]. */
void lily_nn_keep(LilyContext *ctx, LilyArenaMark m, LilyTensor *y);
/* A view of a 1x1 convolution weight [O, C, 1, 1] as a linear layer [O, C]. */
LilyLinear lily_nn_conv1x1_as_linear(const LilyConv *c, LilyTensor *w_view);
/* NCHW [N, C, H*W] <-> tokens [N, H*W, C]. Allocates y. */
LilyStatus lily_nn_to_tokens(LilyContext *ctx, const LilyTensor *x, LilyTensor *y);
LilyStatus lily_nn_from_tokens(LilyContext *ctx, const LilyTensor *t, const LilyTensor *like,
                               LilyTensor *y);

#endif /* LILY_MODELS_BLOCKS_H */
