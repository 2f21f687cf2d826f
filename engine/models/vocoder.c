/* models/vocoder.c - AudioSR's 48 kHz HiFi-GAN generator, forward.
 *
 * Mirrors audiosr/hifigan/models.py Generator with resblock "1" and the config AudioSR
 * hard-codes in audiosr/utilities/model.py get_vocoder_config_48k (spec.md section 4.3):
 * conv_pre (k7) -> per stage: leaky_relu(0.1), ConvTranspose1d(k, stride u, pad (k-u)/2),
 * the mean of the stage's ResBlock1s -> leaky_relu (slope 0.01, PyTorch's default) ->
 * conv_post (k7) -> tanh. Weight norm was removed when AudioSR built the model, so the
 * weights are plain. ResBlock1: for each dilation d: x += conv2(lrelu(conv1_d(lrelu(x)))). */
#include "models/blocks.h"

#define LRELU_SLOPE 0.1f

static int get_padding(int k, int d) { return (k * d - d) / 2; }

int64_t lily_vocoder_out_len(const LilyModelConfig *cfg, int64_t frames)
{
    int64_t len = frames; /* conv_pre keeps the length (k7, pad 3) */
    for (int i = 0; i < cfg->vocoder.n_upsamples; i++) {
        int u = cfg->vocoder.upsample_rates[i], k = cfg->vocoder.upsample_kernel_sizes[i];
        len = (len - 1) * u - 2 * ((k - u) / 2) + k;
    }
    return len;
}

/* x <- x + sum over dilations of conv2(lrelu(conv1(lrelu(x)))): the ResBlock1 forward, with
 * its result accumulated into acc (acc += block(x)). x itself is not modified. */
static LilyStatus resblock1_accumulate(LilyContext *ctx, const LilyVocResBlock *rb,
                                       const LilyTensor *x, LilyTensor *acc, bool first)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor cur, t1, t2, t3;
    LILY_TRY(lily_nn_like(ctx, x, &cur));
    LILY_TRY(lily_tensor_copy(ctx, x, &cur));
    LILY_TRY(lily_nn_like(ctx, x, &t1));
    for (int j = 0; j < rb->n_convs; j++) {
        LilyArenaMark mj = lily_arena_mark(&ctx->arena);
        LILY_TRY(lily_op_unary(ctx, LILY_UNARY_LEAKY_RELU, LRELU_SLOPE, &cur, &t1));
        LILY_TRY(lily_nn_conv1d(ctx, &rb->convs1[j], &t1, 1, get_padding(rb->kernel, rb->dilation[j]),
                                rb->dilation[j], &t2));
        LILY_TRY(lily_op_unary(ctx, LILY_UNARY_LEAKY_RELU, LRELU_SLOPE, &t2, &t2));
        LILY_TRY(lily_nn_conv1d(ctx, &rb->convs2[j], &t2, 1, get_padding(rb->kernel, 1), 1, &t3));
        LILY_TRY(lily_nn_add(ctx, &cur, &t3, &cur));
        lily_arena_reset(&ctx->arena, mj);
    }
    if (first) LILY_TRY(lily_tensor_copy(ctx, &cur, acc));
    else LILY_TRY(lily_nn_add(ctx, acc, &cur, acc));
    lily_arena_reset(&ctx->arena, m);
    return LILY_OK;
}

LilyStatus lily_vocoder_forward(LilyContext *ctx, const LilyModel *m, const LilyTensor *mel,
                                LilyTensor *wave)
{
    const LilyVocoder *v = &m->vocoder;
    const LilyVocoderConfig *cfg = &m->cfg.vocoder;
    if (!v->present) return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "this model file has no vocoder");
    if (mel->ndim != 3 || mel->shape[1] != cfg->num_mels)
        return lily_error(ctx, LILY_ERR_SHAPE, "vocoder: expects mel [N, %d, frames]", cfg->num_mels);
    int64_t n = mel->shape[0];
    LILY_TRY(lily_tensor_alloc(ctx, wave, LILY_DTYPE_F32,
                               LILY_SHAPE(n, 1, lily_vocoder_out_len(&m->cfg, mel->shape[2]))));
    LilyArenaMark m0 = lily_arena_mark(&ctx->arena);
    LilyTensor x;
    LILY_TRY(lily_nn_conv1d(ctx, &v->conv_pre, mel, 1, 3, 1, &x));
    for (int i = 0; i < v->n_ups; i++) {
        int u = cfg->upsample_rates[i], k = cfg->upsample_kernel_sizes[i];
        LilyTensor up, acc;
        LILY_TRY(lily_op_unary(ctx, LILY_UNARY_LEAKY_RELU, LRELU_SLOPE, &x, &x));
        LILY_TRY(lily_nn_conv_transpose1d(ctx, &v->ups[i], &x, u, (k - u) / 2, &up));
        LILY_TRY(lily_nn_like(ctx, &up, &acc));
        for (int j = 0; j < v->n_kernels; j++)
            LILY_TRY(resblock1_accumulate(ctx, &v->resblocks[i * v->n_kernels + j], &up, &acc, j == 0));
        LILY_TRY(lily_op_unary(ctx, LILY_UNARY_SCALE, 1.0f / (float)v->n_kernels, &acc, &acc));
        lily_nn_keep(ctx, m0, &acc); /* [x][up][acc] -> [acc] */
        x = acc;
        lily_log(ctx, LILY_LOG_TRACE, "vocoder: stage %d done (%lld samples)", i, (long long)x.shape[2]);
    }
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_LEAKY_RELU, 0.01f, &x, &x));
    LilyConvParams p = lily_conv1d_params(1, 3, 1);
    LILY_TRY(lily_op_conv1d(ctx, &x, v->conv_post.w, v->conv_post.b, &p, wave));
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_TANH, 0.0f, wave, wave));
    lily_arena_reset(&ctx->arena, m0);
    return LILY_OK;
}
