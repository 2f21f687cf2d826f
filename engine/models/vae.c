/* models/vae.c - AudioSR's KL-VAE on log-mel spectrograms, forward.
 *
 * Mirrors audiosr/latent_diffusion/modules/diffusionmodules/model.py (Encoder, Decoder,
 * ResnetBlock, AttnBlock, Downsample, Upsample) and latent_encoder/autoencoder.py
 * (AutoencoderKL.encode/decode, DiagonalGaussianDistribution): spec.md section 4.2.
 * The mel is an image [N, 1, frames, 256] (time rows, mel columns); the encoder shrinks both
 * 8x to [N, 2 z, frames/8, 32]. GroupNorm has 32 groups and eps 1e-6 everywhere here,
 * nonlinearity is swish (SiLU). Attention is single-head over all h*w positions in time-major
 * order with scale c^-0.5. */
#include <math.h>

#include "models/blocks.h"

#define VAE_GROUPS 32
#define VAE_EPS 1e-6f

/* ResnetBlock(temb_channels=0): x + conv2(swish(gn2(conv1(swish(gn1(x)))))), the skip through
 * nin_shortcut (1x1) when the width changes. Dropout is a no-op at inference. */
/* Every step below replaces the running tensor x, which starts at arena mark mx, by its result
 * and frees x and the temporaries: [x][temps][y] -> [y]. */
static LilyStatus resblock(LilyContext *ctx, const LilyVaeResBlock *rb, LilyArenaMark mx,
                           LilyTensor *x)
{
    LilyTensor h, h2, y;
    LILY_TRY(lily_nn_group_norm(ctx, &rb->norm1, x, VAE_GROUPS, VAE_EPS, 1, &h));
    LILY_TRY(lily_nn_conv2d(ctx, &rb->conv1, &h, 1, 1, &h2));
    LILY_TRY(lily_op_group_norm(ctx, &h2, rb->norm2.g, rb->norm2.b, VAE_GROUPS, VAE_EPS, 1, &h2));
    LILY_TRY(lily_nn_conv2d(ctx, &rb->conv2, &h2, 1, 1, &y));
    if (rb->nin_shortcut.w) {
        LilyTensor s;
        LILY_TRY(lily_nn_conv2d(ctx, &rb->nin_shortcut, x, 1, 0, &s));
        LILY_TRY(lily_nn_add(ctx, &y, &s, &y));
    } else {
        LILY_TRY(lily_nn_add(ctx, &y, x, &y));
    }
    lily_nn_keep(ctx, mx, &y);
    *x = y;
    return LILY_OK;
}

/* AttnBlock: x + proj_out(attention(q(gn(x)), k(gn(x)), v(gn(x)))) over h*w tokens. The 1x1
 * convolutions are applied as linear layers on the token layout, which is the same
 * arithmetic with fewer transposes. */
static LilyStatus attnblock(LilyContext *ctx, const LilyVaeAttn *at, LilyArenaMark mx,
                            LilyTensor *x)
{
    LilyTensor h, tok, q, k, v, o, p, y;
    LilyTensor wq, wk, wv, wp;
    LilyLinear lq = lily_nn_conv1x1_as_linear(&at->q, &wq);
    LilyLinear lk = lily_nn_conv1x1_as_linear(&at->k, &wk);
    LilyLinear lv = lily_nn_conv1x1_as_linear(&at->v, &wv);
    LilyLinear lp = lily_nn_conv1x1_as_linear(&at->proj_out, &wp);
    LILY_TRY(lily_nn_group_norm(ctx, &at->norm, x, VAE_GROUPS, VAE_EPS, 0, &h));
    LILY_TRY(lily_nn_to_tokens(ctx, &h, &tok));
    LILY_TRY(lily_nn_linear(ctx, &lq, &tok, &q));
    LILY_TRY(lily_nn_linear(ctx, &lk, &tok, &k));
    LILY_TRY(lily_nn_linear(ctx, &lv, &tok, &v));
    LILY_TRY(lily_nn_like(ctx, &q, &o));
    LILY_TRY(lily_op_attention(ctx, &q, &k, &v, 1.0f / sqrtf((float)at->c), &o));
    LILY_TRY(lily_nn_linear(ctx, &lp, &o, &p));
    LILY_TRY(lily_nn_from_tokens(ctx, &p, x, &y));
    LILY_TRY(lily_nn_add(ctx, &y, x, &y));
    lily_nn_keep(ctx, mx, &y);
    *x = y;
    return LILY_OK;
}

static LilyStatus conv_keep(LilyContext *ctx, const LilyConv *c, const LilyConvParams *p,
                            LilyArenaMark mx, LilyTensor *x)
{
    LilyTensor y;
    LILY_TRY(lily_nn_conv2d_p(ctx, c, x, p, &y));
    lily_nn_keep(ctx, mx, &y);
    *x = y;
    return LILY_OK;
}

LilyStatus lily_vae_encode(LilyContext *ctx, const LilyModel *model, const LilyVaeEncoder *enc,
                           const LilyTensor *mel, LilyTensor *mean, LilyTensor *logvar)
{
    const LilyVaeConfig *cfg = enc == &model->cond_encoder ? &model->cfg.cond_vae : &model->cfg.vae;
    if (!enc->present)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                          "this model file has no %s encoder (converted without it?)",
                          enc == &model->cond_encoder ? "condition" : "first-stage");
    if (mel->ndim != 4 || mel->shape[1] != cfg->in_channels)
        return lily_error(ctx, LILY_ERR_SHAPE, "vae encode: expects mel [N, %d, frames, bins]",
                          cfg->in_channels);
    int64_t n = mel->shape[0], embed = cfg->embed_dim;
    int64_t hh = mel->shape[2], ww = mel->shape[3];
    for (int i = 0; i < cfg->n_levels - 1; i++) {
        hh = (hh + 1 - 3) / 2 + 1; /* pad (0,1) then k3 s2 */
        ww = (ww + 1 - 3) / 2 + 1;
    }
    LILY_TRY(lily_tensor_alloc(ctx, mean, LILY_DTYPE_F32, LILY_SHAPE(n, embed, hh, ww)));
    LILY_TRY(lily_tensor_alloc(ctx, logvar, LILY_DTYPE_F32, LILY_SHAPE(n, embed, hh, ww)));
    LilyArenaMark m = lily_arena_mark(&ctx->arena); /* the running tensor h lives here */
    LilyConvParams same = lily_conv2d_params(1, 1);
    /* Downsample(with_conv): F.pad(x, (0, 1, 0, 1)) then conv 3x3 stride 2, no padding */
    LilyConvParams down = {{2, 2}, {0, 0}, {1, 1}, {1, 1}};
    LilyTensor h;
    LILY_TRY(lily_nn_conv2d(ctx, &enc->conv_in, mel, 1, 1, &h));
    for (int i = 0; i < cfg->n_levels; i++) {
        const LilyVaeLevel *lv = &enc->down[i];
        for (int j = 0; j < lv->n_blocks; j++) LILY_TRY(resblock(ctx, &lv->block[j], m, &h));
        if (lv->resample.w) LILY_TRY(conv_keep(ctx, &lv->resample, &down, m, &h));
        lily_log(ctx, LILY_LOG_TRACE, "vae encode: level %d done", i);
    }
    LILY_TRY(resblock(ctx, &enc->mid_block_1, m, &h));
    LILY_TRY(attnblock(ctx, &enc->mid_attn_1, m, &h));
    LILY_TRY(resblock(ctx, &enc->mid_block_2, m, &h));
    LILY_TRY(lily_op_group_norm(ctx, &h, enc->norm_out.g, enc->norm_out.b, VAE_GROUPS, VAE_EPS, 1, &h));
    LILY_TRY(conv_keep(ctx, &enc->conv_out, &same, m, &h));
    LilyTensor moments;
    LILY_TRY(lily_nn_conv2d(ctx, &enc->quant_conv, &h, 1, 0, &moments));
    if (moments.shape[1] != 2 * embed || moments.shape[2] != hh || moments.shape[3] != ww)
        return lily_error(ctx, LILY_ERR_SHAPE, "vae encode: moments shape disagrees with the config");
    /* DiagonalGaussianDistribution: mean, logvar = chunk(2, dim=1); logvar.clamp(-30, 20) */
    LILY_TRY(lily_op_split(ctx, &moments, mean, logvar));
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_MAX, -30.0f, logvar, logvar));
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_MIN, 20.0f, logvar, logvar));
    lily_arena_reset(&ctx->arena, m);
    return LILY_OK;
}

LilyStatus lily_vae_decode(LilyContext *ctx, const LilyModel *model, const LilyTensor *z,
                           LilyTensor *mel)
{
    const LilyVaeDecoder *dec = &model->decoder;
    const LilyVaeConfig *cfg = &model->cfg.vae;
    if (!dec->present)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "this model file has no VAE decoder");
    if (z->ndim != 4 || z->shape[1] != cfg->embed_dim)
        return lily_error(ctx, LILY_ERR_SHAPE, "vae decode: expects z [N, %d, h, w]", cfg->embed_dim);
    int up = 1 << (cfg->n_levels - 1);
    LILY_TRY(lily_tensor_alloc(ctx, mel, LILY_DTYPE_F32,
                               LILY_SHAPE(z->shape[0], cfg->out_ch, z->shape[2] * up, z->shape[3] * up)));
    LilyArenaMark m = lily_arena_mark(&ctx->arena); /* the running tensor h lives here */
    LilyConvParams same = lily_conv2d_params(1, 1);
    LilyTensor h;
    LILY_TRY(lily_nn_conv2d(ctx, &dec->post_quant_conv, z, 1, 0, &h));
    LILY_TRY(conv_keep(ctx, &dec->conv_in, &same, m, &h));
    LILY_TRY(resblock(ctx, &dec->mid_block_1, m, &h));
    LILY_TRY(attnblock(ctx, &dec->mid_attn_1, m, &h));
    LILY_TRY(resblock(ctx, &dec->mid_block_2, m, &h));
    for (int i = cfg->n_levels - 1; i >= 0; i--) {
        const LilyVaeLevel *lv = &dec->up[i];
        for (int j = 0; j < lv->n_blocks; j++) LILY_TRY(resblock(ctx, &lv->block[j], m, &h));
        if (lv->resample.w) {
            /* Upsample(with_conv): nearest x2 then conv 3x3 padding 1 */
            LilyTensor u;
            LILY_TRY(lily_tensor_alloc(ctx, &u, LILY_DTYPE_F32,
                                       LILY_SHAPE(h.shape[0], h.shape[1], 2 * h.shape[2], 2 * h.shape[3])));
            LILY_TRY(lily_op_upsample2x(ctx, &h, &u));
            lily_nn_keep(ctx, m, &u);
            h = u;
            LILY_TRY(conv_keep(ctx, &lv->resample, &same, m, &h));
        }
        lily_log(ctx, LILY_LOG_TRACE, "vae decode: level %d done", i);
    }
    LILY_TRY(lily_op_group_norm(ctx, &h, dec->norm_out.g, dec->norm_out.b, VAE_GROUPS, VAE_EPS, 1, &h));
    LilyConvParams p = lily_conv2d_params(1, 1);
    LILY_TRY(lily_op_conv2d(ctx, &h, dec->conv_out.w, dec->conv_out.b, &p, mel));
    lily_arena_reset(&ctx->arena, m);
    return LILY_OK;
}
