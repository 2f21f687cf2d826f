/* models/unet.c - AudioSR's latent-diffusion UNet, forward.
 *
 * Mirrors audiosr/latent_diffusion/modules/diffusionmodules/openaimodel.py (UNetModel,
 * ResBlock, Downsample, Upsample, timestep_embedding) and .../modules/attention.py
 * (SpatialTransformer, BasicTransformerBlock, CrossAttention, FeedForward with GEGLU), as
 * spec.md section 4.1 describes them: no context (both transformers at an attention point are
 * self-attention), GroupNorm 32 groups eps 1e-5 in ResBlocks and eps 1e-6 in transformers,
 * LayerNorm eps 1e-5, exact GELU, tokens time-major, skip concatenation [h, skip]. */
#include <math.h>
#include <stdlib.h>

#include "models/blocks.h"

#define UNET_GROUPS 32
#define RES_EPS 1e-5f
#define ST_EPS 1e-6f
#define LN_EPS 1e-5f

void lily_timestep_embedding(const int *t, int n, int dim, float *out)
{
    /* timestep_embedding(): half = dim // 2, freqs = exp(-ln(10000) * k / half),
     * emb = [cos(t * freqs), sin(t * freqs)] (+ a zero column when dim is odd).
     * PyTorch computes it in float32: freqs and args are rounded to float as there. */
    int half = dim / 2;
    for (int b = 0; b < n; b++) {
        float *o = out + (size_t)b * (size_t)dim;
        for (int k = 0; k < half; k++) {
            float freq = expf(-logf(10000.0f) * (float)k / (float)half);
            float arg = (float)t[b] * freq;
            o[k] = cosf(arg);
            o[half + k] = sinf(arg);
        }
        if (dim % 2) o[dim - 1] = 0.0f;
    }
}

/* ResBlock: skip(x) + out_conv(silu(gn(in_conv(silu(gn(x))) + emb_layers(emb)))).
 * `emb_silu` is SiLU(emb) [N, E], shared by every block. Replaces x (at mark mx). */
static LilyStatus resblock(LilyContext *ctx, const LilyUResBlock *rb, const LilyTensor *emb_silu,
                           LilyArenaMark mx, LilyTensor *x)
{
    LilyTensor h, h2, e, y;
    LILY_TRY(lily_nn_group_norm(ctx, &rb->in_norm, x, UNET_GROUPS, RES_EPS, 1, &h));
    LILY_TRY(lily_nn_conv2d(ctx, &rb->in_conv, &h, 1, 1, &h2));
    LILY_TRY(lily_nn_linear(ctx, &rb->emb, emb_silu, &e));               /* [N, c_out] */
    LILY_TRY(lily_op_binary(ctx, LILY_BINARY_ADD, &h2, &e, &h2));        /* broadcast over H, W */
    LILY_TRY(lily_op_group_norm(ctx, &h2, rb->out_norm.g, rb->out_norm.b, UNET_GROUPS, RES_EPS, 1, &h2));
    LILY_TRY(lily_nn_conv2d(ctx, &rb->out_conv, &h2, 1, 1, &y));
    if (rb->skip.w) {
        LilyTensor s;
        LILY_TRY(lily_nn_conv2d(ctx, &rb->skip, x, 1, 0, &s));
        LILY_TRY(lily_nn_add(ctx, &y, &s, &y));
    } else {
        LILY_TRY(lily_nn_add(ctx, &y, x, &y));
    }
    lily_nn_keep(ctx, mx, &y);
    *x = y;
    return LILY_OK;
}

/* Multi-head self-attention on tokens a [N, T, C]: to_out(attn(to_q a, to_k a, to_v a)). */
static LilyStatus self_attention(LilyContext *ctx, const LilyAttnWeights *w, int heads,
                                 int dim_head, const LilyTensor *a, LilyTensor *out)
{
    int64_t n = a->shape[0], t = a->shape[1], inner = (int64_t)heads * dim_head;
    LilyTensor q, k, v, qh, kh, vh, oh, o;
    LILY_TRY(lily_nn_linear(ctx, &w->q, a, &q));
    LILY_TRY(lily_nn_linear(ctx, &w->k, a, &k));
    LILY_TRY(lily_nn_linear(ctx, &w->v, a, &v));
    if (q.shape[2] != inner)
        return lily_error(ctx, LILY_ERR_SHAPE, "attention: to_q gives %lld features, heads*dim_head is %lld",
                          (long long)q.shape[2], (long long)inner);
    /* 'b n (h d) -> (b h) n d' */
    LILY_TRY(lily_tensor_alloc(ctx, &qh, LILY_DTYPE_F32, LILY_SHAPE(n * heads, t, dim_head)));
    LILY_TRY(lily_tensor_alloc(ctx, &kh, LILY_DTYPE_F32, LILY_SHAPE(n * heads, t, dim_head)));
    LILY_TRY(lily_tensor_alloc(ctx, &vh, LILY_DTYPE_F32, LILY_SHAPE(n * heads, t, dim_head)));
    LILY_TRY(lily_op_transpose(ctx, &q, n, t, heads, dim_head, &qh));
    LILY_TRY(lily_op_transpose(ctx, &k, n, t, heads, dim_head, &kh));
    LILY_TRY(lily_op_transpose(ctx, &v, n, t, heads, dim_head, &vh));
    LILY_TRY(lily_nn_like(ctx, &qh, &oh));
    LILY_TRY(lily_op_attention(ctx, &qh, &kh, &vh, 1.0f / sqrtf((float)dim_head), &oh));
    /* '(b h) n d -> b n (h d)' */
    LILY_TRY(lily_tensor_alloc(ctx, &o, LILY_DTYPE_F32, LILY_SHAPE(n, t, inner)));
    LILY_TRY(lily_op_transpose(ctx, &oh, n, heads, t, dim_head, &o));
    return lily_nn_linear(ctx, &w->out, &o, out);
}

/* BasicTransformerBlock on tokens h [N, T, D], in place:
 * h += attn1(ln1 h); h += attn2(ln2 h) (self-attention: no context); h += ff(ln3 h). */
static LilyStatus transformer_block(LilyContext *ctx, const LilyTransformerBlock *tb, int heads,
                                    int dim_head, LilyTensor *h)
{
    LilyArenaMark m = lily_arena_mark(&ctx->arena);
    LilyTensor a, o;
    LILY_TRY(lily_nn_layer_norm(ctx, &tb->norm1, h, LN_EPS, &a));
    LILY_TRY(self_attention(ctx, &tb->attn1, heads, dim_head, &a, &o));
    LILY_TRY(lily_nn_add(ctx, h, &o, h));
    lily_arena_reset(&ctx->arena, m);
    LILY_TRY(lily_nn_layer_norm(ctx, &tb->norm2, h, LN_EPS, &a));
    LILY_TRY(self_attention(ctx, &tb->attn2, heads, dim_head, &a, &o));
    LILY_TRY(lily_nn_add(ctx, h, &o, h));
    lily_arena_reset(&ctx->arena, m);
    LilyTensor p, g;
    LILY_TRY(lily_nn_layer_norm(ctx, &tb->norm3, h, LN_EPS, &a));
    LILY_TRY(lily_nn_linear(ctx, &tb->ff_proj, &a, &p)); /* [N, T, 2 * 4D] */
    int64_t inner = p.shape[2] / 2;
    LILY_TRY(lily_tensor_alloc(ctx, &g, LILY_DTYPE_F32, LILY_SHAPE(p.shape[0], p.shape[1], inner)));
    LILY_TRY(lily_op_geglu(ctx, &p, &g));
    LILY_TRY(lily_nn_linear(ctx, &tb->ff_out, &g, &o));
    LILY_TRY(lily_nn_add(ctx, h, &o, h));
    lily_arena_reset(&ctx->arena, m);
    return LILY_OK;
}

/* SpatialTransformer: x + proj_out(blocks(proj_in(gn(x)) as tokens)). The 1x1 proj_in and
 * proj_out are applied as linear layers on tokens. Replaces x (at mark mx). */
static LilyStatus spatial_transformer(LilyContext *ctx, const LilySpatialTransformer *st,
                                      LilyArenaMark mx, LilyTensor *x)
{
    LilyTensor hn, tok, h, p, y;
    LilyTensor wi, wo;
    LilyLinear lin_in = lily_nn_conv1x1_as_linear(&st->proj_in, &wi);
    LilyLinear lin_out = lily_nn_conv1x1_as_linear(&st->proj_out, &wo);
    LILY_TRY(lily_nn_group_norm(ctx, &st->norm, x, UNET_GROUPS, ST_EPS, 0, &hn));
    LILY_TRY(lily_nn_to_tokens(ctx, &hn, &tok));
    LILY_TRY(lily_nn_linear(ctx, &lin_in, &tok, &h));
    for (int d = 0; d < st->depth; d++)
        LILY_TRY(transformer_block(ctx, &st->blocks[d], st->heads, st->dim_head, &h));
    LILY_TRY(lily_nn_linear(ctx, &lin_out, &h, &p));
    LILY_TRY(lily_nn_from_tokens(ctx, &p, x, &y));
    LILY_TRY(lily_nn_add(ctx, &y, x, &y));
    lily_nn_keep(ctx, mx, &y);
    *x = y;
    return LILY_OK;
}

static LilyStatus conv_keep(LilyContext *ctx, const LilyConv *c, int stride, LilyArenaMark mx,
                            LilyTensor *x)
{
    LilyTensor y;
    LILY_TRY(lily_nn_conv2d(ctx, c, x, stride, 1, &y));
    lily_nn_keep(ctx, mx, &y);
    *x = y;
    return LILY_OK;
}

/* One entry of input_blocks / middle_block / output_blocks on the running tensor h. */
static LilyStatus ublock(LilyContext *ctx, const LilyUBlock *b, const LilyTensor *emb_silu,
                         LilyArenaMark mh, LilyTensor *h)
{
    if (b->kind == 2) return conv_keep(ctx, &b->conv, 2, mh, h); /* Downsample */
    if (b->has_res) LILY_TRY(resblock(ctx, &b->res, emb_silu, mh, h));
    for (int i = 0; i < b->n_st; i++) LILY_TRY(spatial_transformer(ctx, &b->st[i], mh, h));
    if (b->has_res2) LILY_TRY(resblock(ctx, &b->res2, emb_silu, mh, h));
    if (b->has_up) {
        LilyTensor u;
        LILY_TRY(lily_tensor_alloc(ctx, &u, LILY_DTYPE_F32,
                                   LILY_SHAPE(h->shape[0], h->shape[1], 2 * h->shape[2], 2 * h->shape[3])));
        LILY_TRY(lily_op_upsample2x(ctx, h, &u));
        lily_nn_keep(ctx, mh, &u);
        *h = u;
        LILY_TRY(conv_keep(ctx, &b->up_conv, 1, mh, h));
    }
    return LILY_OK;
}

LilyStatus lily_unet_forward(LilyContext *ctx, const LilyModel *m, const LilyTensor *x,
                             const int *t, LilyTensor *out)
{
    const LilyUNet *u = &m->unet;
    const LilyUNetConfig *cfg = &m->cfg.unet;
    if (!u->present) return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "this model file has no UNet");
    if (x->ndim != 4 || x->shape[1] != cfg->in_channels)
        return lily_error(ctx, LILY_ERR_SHAPE, "unet: expects x [N, %d, h, w]", cfg->in_channels);
    int down = 1 << (cfg->n_levels - 1);
    if (x->shape[2] % down || x->shape[3] % down)
        return lily_error(ctx, LILY_ERR_SHAPE,
                          "unet: latent %lldx%lld is not a multiple of %d in both dimensions "
                          "(mel frames must be a multiple of %d)",
                          (long long)x->shape[2], (long long)x->shape[3], down, down * 8);
    int64_t n = x->shape[0];
    LILY_TRY(lily_tensor_alloc(ctx, out, LILY_DTYPE_F32,
                               LILY_SHAPE(n, cfg->out_channels, x->shape[2], x->shape[3])));
    LilyArenaMark m0 = lily_arena_mark(&ctx->arena);

    /* time embedding: linear -> SiLU -> linear, then SiLU once for every ResBlock's emb_layers */
    LilyTensor temb_host, temb, e1, emb;
    LILY_TRY(lily_tensor_alloc_host(ctx, &temb_host, LILY_DTYPE_F32, LILY_SHAPE(n, cfg->model_channels)));
    lily_timestep_embedding(t, (int)n, cfg->model_channels, temb_host.data);
    LILY_TRY(lily_tensor_alloc(ctx, &temb, LILY_DTYPE_F32, LILY_SHAPE(n, cfg->model_channels)));
    LILY_TRY(lily_tensor_upload(ctx, &temb, temb_host.data));
    LILY_TRY(lily_nn_linear(ctx, &u->time_embed_0, &temb, &e1));
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_SILU, 0.0f, &e1, &e1));
    LILY_TRY(lily_nn_linear(ctx, &u->time_embed_2, &e1, &emb));
    LILY_TRY(lily_op_unary(ctx, LILY_UNARY_SILU, 0.0f, &emb, &emb));

    /* input blocks: every output is kept as a skip (hs) */
    LilyTensor hs[LILY_UNET_MAX_BLOCKS];
    for (int i = 0; i < u->n_input; i++) {
        LilyArenaMark mh = lily_arena_mark(&ctx->arena);
        LilyTensor h;
        if (i == 0) {
            LILY_TRY(lily_nn_conv2d(ctx, &u->input[0].conv, x, 1, 1, &h));
        } else {
            /* copy the previous skip so it stays intact */
            LILY_TRY(lily_nn_like(ctx, &hs[i - 1], &h));
            LILY_TRY(lily_tensor_copy(ctx, &hs[i - 1], &h));
            LILY_TRY(ublock(ctx, &u->input[i], &emb, mh, &h));
        }
        hs[i] = h;
    }
    /* middle block */
    LilyArenaMark mh = lily_arena_mark(&ctx->arena);
    LilyTensor h;
    LILY_TRY(lily_nn_like(ctx, &hs[u->n_input - 1], &h));
    LILY_TRY(lily_tensor_copy(ctx, &hs[u->n_input - 1], &h));
    LILY_TRY(ublock(ctx, &u->middle, &emb, mh, &h));
    /* output blocks: h = cat([h, hs.pop()]) then the block. The running tensor sits above the
     * remaining skips, so popping a skip does not free its memory until the end; the skips are
     * at most as large as the activations of one level. */
    for (int i = 0; i < u->n_output; i++) {
        const LilyTensor *skip = &hs[u->n_input - 1 - i];
        LilyTensor c;
        LILY_TRY(lily_tensor_alloc(ctx, &c, LILY_DTYPE_F32,
                                   LILY_SHAPE(n, h.shape[1] + skip->shape[1], h.shape[2], h.shape[3])));
        LILY_TRY(lily_op_concat(ctx, &h, skip, &c));
        lily_nn_keep(ctx, mh, &c);
        h = c;
        LILY_TRY(ublock(ctx, &u->output[i], &emb, mh, &h));
    }
    LILY_TRY(lily_op_group_norm(ctx, &h, u->out_norm.g, u->out_norm.b, UNET_GROUPS, RES_EPS, 1, &h));
    LilyConvParams p = lily_conv2d_params(1, 1);
    LILY_TRY(lily_op_conv2d(ctx, &h, u->out_conv.w, u->out_conv.b, &p, out));
    lily_arena_reset(&ctx->arena, m0);
    return LILY_OK;
}
