/* train/losses.c - losses and their gradients (see losses.h). Written with the op table so
 * they run where the activations are: torch.nn.functional.mse_loss / l1_loss (reduction
 * 'mean'), HiFi-GAN's discriminator_loss / generator_loss / feature_loss, LDM's
 * DiagonalGaussianDistribution.kl. */
#include "core/context.h"
#include "train/losses.h"

static double numel_d(const LilyTensor *t) { return (double)lily_tensor_numel(t); }

LilyStatus lily_loss_mse(LilyContext *ctx, const LilyTensor *x, const LilyTensor *target,
                         double scale, double *loss, LilyTensor *dx)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    if (dx) LILY_TRY(lily_nn_like(ctx, x, dx));
    LilyArenaMark m1 = lily_arena_mark(&ctx->arena);
    LilyTensor d;
    LILY_TRY(lily_nn_like(ctx, x, &d));
    LILY_TRY(lily_op_binary(ctx, LILY_BINARY_SUB, x, target, &d));
    double sq = 0.0;
    LILY_TRY(lily_op_reduce(ctx, &d, NULL, &sq, NULL));
    *loss = scale * sq / numel_d(x);
    if (dx) LILY_TRY(lily_op_unary(ctx, LILY_UNARY_SCALE, (float)(2.0 * scale / numel_d(x)), &d, dx));
    lily_arena_reset(&ctx->arena, dx ? m1 : m);
    return LILY_OK;
}

LilyStatus lily_loss_l1(LilyContext *ctx, const LilyTensor *x, const LilyTensor *target,
                        double scale, double *loss, LilyTensor *dx)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    if (dx) LILY_TRY(lily_nn_like(ctx, x, dx));
    LilyArenaMark m1 = lily_arena_mark(&ctx->arena);
    LilyTensor d, a;
    LILY_TRY(lily_nn_like(ctx, x, &d));
    LILY_TRY(lily_nn_like(ctx, x, &a));
    LILY_TRY(lily_op_binary(ctx, LILY_BINARY_SUB, x, target, &d));
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_ABS, 0.0f, &d, &a));
    double s = 0.0;
    LILY_TRY(lily_op_reduce(ctx, &a, &s, NULL, NULL));
    *loss = scale * s / numel_d(x);
    if (dx) {
        /* d|d|/dd = sign(d): the ABS backward of a constant upstream gradient */
        LILY_TRY(lily_op_fill(ctx, &a, (float)(scale / numel_d(x))));
        LILY_TRY(lily_op_unary_backward(ctx, LILY_UNARY_ABS, 0.0f, &d, &a, dx));
    }
    lily_arena_reset(&ctx->arena, dx ? m1 : m);
    return LILY_OK;
}

LilyStatus lily_loss_ls(LilyContext *ctx, const LilyTensor *x, float c, double scale, double *loss,
                        LilyTensor *dx)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    if (dx) LILY_TRY(lily_nn_like(ctx, x, dx));
    LilyArenaMark m1 = lily_arena_mark(&ctx->arena);
    LilyTensor d;
    LILY_TRY(lily_nn_like(ctx, x, &d));
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_ADD_SCALAR, -c, x, &d));
    double sq = 0.0;
    LILY_TRY(lily_op_reduce(ctx, &d, NULL, &sq, NULL));
    *loss = scale * sq / numel_d(x);
    if (dx) LILY_TRY(lily_op_unary(ctx, LILY_UNARY_SCALE, (float)(2.0 * scale / numel_d(x)), &d, dx));
    lily_arena_reset(&ctx->arena, dx ? m1 : m);
    return LILY_OK;
}

LilyStatus lily_loss_kl(LilyContext *ctx, const LilyTensor *mean, const LilyTensor *logvar,
                        double scale, double *loss, LilyTensor *dmean, LilyTensor *dlogvar)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    if (dmean) LILY_TRY(lily_nn_like(ctx, mean, dmean));
    if (dlogvar) LILY_TRY(lily_nn_like(ctx, logvar, dlogvar));
    LilyArenaMark m1 = lily_arena_mark(&ctx->arena);
    LilyTensor ev;
    LILY_TRY(lily_nn_like(ctx, logvar, &ev));
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_EXP, 0.0f, logvar, &ev));
    double sum_m2 = 0.0, sum_ev = 0.0, sum_lv = 0.0;
    LILY_TRY(lily_op_reduce(ctx, mean, NULL, &sum_m2, NULL));
    LILY_TRY(lily_op_reduce(ctx, &ev, &sum_ev, NULL, NULL));
    LILY_TRY(lily_op_reduce(ctx, logvar, &sum_lv, NULL, NULL));
    *loss = scale * 0.5 * (sum_m2 + sum_ev - numel_d(logvar) - sum_lv);
    if (dmean) LILY_TRY(lily_op_unary(ctx, LILY_UNARY_SCALE, (float)scale, mean, dmean));
    if (dlogvar) {
        /* 0.5 scale (exp(lv) - 1) */
        LILY_TRY(lily_op_unary(ctx, LILY_UNARY_ADD_SCALAR, -1.0f, &ev, &ev));
        LILY_TRY(lily_op_unary(ctx, LILY_UNARY_SCALE, (float)(0.5 * scale), &ev, dlogvar));
    }
    lily_arena_reset(&ctx->arena, (dmean || dlogvar) ? m1 : m);
    return LILY_OK;
}
