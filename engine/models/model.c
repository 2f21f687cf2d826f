/* models/model.c - builds a LilyModel from a config and a weights file.
 *
 * Walks the architecture exactly as AudioSR's constructors do (UNetModel.__init__, Encoder,
 * Decoder, Generator) and looks every parameter up by its AudioSR key, checking its shape, so
 * an official checkpoint maps one to one. All parameters then live in one device allocation
 * (llm.c's "one allocation, many pointers"); conv and linear weights are converted to the
 * compute precision once, norms and biases stay f32. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "core/context.h"
#include "models/model.h"
#include "weights/arch.h"
#include "weights/weights.h"

/* Where a parameter's values come from: a tensor of a file, or the deterministic random
 * initialisation of an architecture tensor (lily_model_new_random). */
typedef struct Source {
    const LilyWeight *w;
    const LilyArchTensor *a;
} Source;

typedef struct Builder {
    LilyContext *ctx;
    LilyModel *m;
    const LilyWeights *w;   /* NULL: random weights from `arch` */
    const LilyArch *arch;
    uint64_t seed;
    LilyPrecision precision;
    char prefix[256];
    LilyStatus st;
    Source *src;            /* parallel to m->params */
} Builder;

static void set_prefix(Builder *b, const char *fmt, ...) LILY_PRINTF(2, 3);
static void set_prefix(Builder *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->prefix, sizeof b->prefix, fmt, ap);
    va_end(ap);
}

static LilyTensor *add_param(Builder *b, const char *full, bool matrix, int ndim,
                             const int64_t *shape, Source src);

/* Looks up prefix + name, checks its shape, registers it. NULL (and b->st set) on failure;
 * once an error is recorded every later call returns NULL at once. */
static LilyTensor *param(Builder *b, const char *name, bool matrix, int ndim, const int64_t *shape)
{
    if (b->st != LILY_OK) return NULL;
    char full[512];
    snprintf(full, sizeof full, "%s%s", b->prefix, name);
    char want[96], got[96];
    lily_dims_str(shape, ndim, want, sizeof want);
    if (!b->w) {
        int ai = lily_arch_find(b->arch, full);
        const LilyArchTensor *at = ai >= 0 ? &b->arch->t[ai] : NULL;
        bool same = at && at->ndim == ndim;
        for (int i = 0; same && i < ndim; i++) same = at->shape[i] == shape[i];
        if (!same) {
            b->st = lily_error(b->ctx, LILY_ERR_INTERNAL, "model: '%s' (%s) disagrees with the "
                               "architecture enumeration", full, want);
            return NULL;
        }
        return add_param(b, full, matrix, ndim, shape, (Source){NULL, at});
    }
    const LilyWeight *wt = lily_weights_find(b->w, full);
    if (!wt) {
        b->st = lily_error(b->ctx, LILY_ERR_SHAPE,
                           "%s: tensor '%s' (%s) is missing: the file does not hold this model "
                           "part, or its config disagrees with the weights (check the config's "
                           "widths)",
                           lily_weights_path(b->w), full, want);
        return NULL;
    }
    bool same = wt->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = wt->shape[i] == shape[i];
    if (!same) {
        lily_dims_str(wt->shape, wt->ndim, got, sizeof got);
        b->st = lily_error(b->ctx, LILY_ERR_SHAPE,
                           "%s: tensor '%s' is %s, the config expects %s: the config does not "
                           "describe this checkpoint (pass the matching --config / model YAML)",
                           lily_weights_path(b->w), full, got, want);
        return NULL;
    }
    if (wt->dtype != LILY_DTYPE_F32 && wt->dtype != LILY_DTYPE_BF16 && wt->dtype != LILY_DTYPE_F16) {
        b->st = lily_error(b->ctx, LILY_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; weights "
                           "must be f32, bf16 or f16", lily_weights_path(b->w), full,
                           lily_dtype_name(wt->dtype));
        return NULL;
    }
    return add_param(b, full, matrix, ndim, shape, (Source){wt, NULL});
}

static LilyTensor *add_param(Builder *b, const char *full, bool matrix, int ndim,
                             const int64_t *shape, Source src)
{
    LilyModel *m = b->m;
    if (m->n_params == m->cap_params) {
        b->st = lily_error(b->ctx, LILY_ERR_INTERNAL, "model: parameter table full at '%s'", full);
        return NULL;
    }
    LilyParam *p = &m->params[m->n_params];
    p->name = strdup(full);
    if (!p->name) {
        b->st = lily_error(b->ctx, LILY_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    LilyDType dt = LILY_DTYPE_F32;
    if (matrix && b->precision == LILY_PRECISION_BF16) dt = LILY_DTYPE_BF16;
    if (matrix && b->precision == LILY_PRECISION_F16) dt = LILY_DTYPE_F16;
    p->t = lily_tensor_make(NULL, dt, m->device, ndim, shape);
    p->matrix = matrix;
    b->src[m->n_params] = src;
    m->n_params++;
    return &p->t;
}

#define P(b, name, matrix, ...) param((b), (name), (matrix), LILY_SHAPE(__VA_ARGS__))

/* `name`.weight of the given shape and, when bias_len > 0, `name`.bias [bias_len] (never a
 * matrix: biases stay f32 whatever the precision). */
static void weight_bias(Builder *b, const char *name, bool matrix, int ndim, const int64_t *shape,
                        int64_t bias_len, LilyTensor **w, LilyTensor **bias)
{
    char n[160];
    snprintf(n, sizeof n, "%s.weight", name);
    *w = param(b, n, matrix, ndim, shape);
    *bias = NULL;
    if (bias_len > 0) {
        snprintf(n, sizeof n, "%s.bias", name);
        *bias = P(b, n, false, bias_len);
    }
}

static void conv2d(Builder *b, LilyConv *c, const char *name, int64_t o, int64_t i, int k)
{
    weight_bias(b, name, true, LILY_SHAPE(o, i, k, k), o, &c->w, &c->b);
}

static void conv1d(Builder *b, LilyConv *c, const char *name, int64_t o, int64_t i, int k)
{
    weight_bias(b, name, true, LILY_SHAPE(o, i, k), o, &c->w, &c->b);
}

static void convt1d(Builder *b, LilyConv *c, const char *name, int64_t i, int64_t o, int k)
{
    weight_bias(b, name, true, LILY_SHAPE(i, o, k), o, &c->w, &c->b);
}

static void linear(Builder *b, LilyLinear *l, const char *name, int64_t o, int64_t i, bool bias)
{
    weight_bias(b, name, true, LILY_SHAPE(o, i), bias ? o : 0, &l->w, &l->b);
}

static void norm(Builder *b, LilyNorm *nm, const char *name, int64_t c)
{
    weight_bias(b, name, false, LILY_SHAPE(c), c, &nm->g, &nm->b);
}

/* ---------------------------------------------------------------------------------------- */
/* VAE                                                                                      */
/* ---------------------------------------------------------------------------------------- */
static void vae_resblock(Builder *b, LilyVaeResBlock *rb, const char *name, int cin, int cout)
{
    char n[200];
    rb->c_in = cin;
    rb->c_out = cout;
    snprintf(n, sizeof n, "%s.norm1", name);
    norm(b, &rb->norm1, n, cin);
    snprintf(n, sizeof n, "%s.conv1", name);
    conv2d(b, &rb->conv1, n, cout, cin, 3);
    snprintf(n, sizeof n, "%s.norm2", name);
    norm(b, &rb->norm2, n, cout);
    snprintf(n, sizeof n, "%s.conv2", name);
    conv2d(b, &rb->conv2, n, cout, cout, 3);
    if (cin != cout) {
        snprintf(n, sizeof n, "%s.nin_shortcut", name);
        conv2d(b, &rb->nin_shortcut, n, cout, cin, 1);
    }
}

static void vae_attn(Builder *b, LilyVaeAttn *a, const char *name, int c)
{
    char n[200];
    a->c = c;
    snprintf(n, sizeof n, "%s.norm", name);
    norm(b, &a->norm, n, c);
    snprintf(n, sizeof n, "%s.q", name);
    conv2d(b, &a->q, n, c, c, 1);
    snprintf(n, sizeof n, "%s.k", name);
    conv2d(b, &a->k, n, c, c, 1);
    snprintf(n, sizeof n, "%s.v", name);
    conv2d(b, &a->v, n, c, c, 1);
    snprintf(n, sizeof n, "%s.proj_out", name);
    conv2d(b, &a->proj_out, n, c, c, 1);
}

/* Encoder at `root` ("first_stage_model." or "cond_stage_models.0.vae."). */
static void build_encoder(Builder *b, LilyVaeEncoder *e, const LilyVaeConfig *c, const char *root)
{
    char n[200];
    set_prefix(b, "%sencoder.", root);
    conv2d(b, &e->conv_in, "conv_in", c->ch, c->in_channels, 3);
    int block_in = c->ch;
    for (int i = 0; i < c->n_levels; i++) {
        int in_mult = i == 0 ? 1 : c->ch_mult[i - 1];
        block_in = c->ch * in_mult;
        int block_out = c->ch * c->ch_mult[i];
        e->down[i].n_blocks = c->num_res_blocks;
        for (int j = 0; j < c->num_res_blocks; j++) {
            snprintf(n, sizeof n, "down.%d.block.%d", i, j);
            vae_resblock(b, &e->down[i].block[j], n, block_in, block_out);
            block_in = block_out;
        }
        if (i != c->n_levels - 1) {
            snprintf(n, sizeof n, "down.%d.downsample.conv", i);
            conv2d(b, &e->down[i].resample, n, block_in, block_in, 3);
        }
    }
    vae_resblock(b, &e->mid_block_1, "mid.block_1", block_in, block_in);
    vae_attn(b, &e->mid_attn_1, "mid.attn_1", block_in);
    vae_resblock(b, &e->mid_block_2, "mid.block_2", block_in, block_in);
    norm(b, &e->norm_out, "norm_out", block_in);
    int zc = c->double_z ? 2 * c->z_channels : c->z_channels;
    conv2d(b, &e->conv_out, "conv_out", zc, block_in, 3);
    set_prefix(b, "%s", root);
    conv2d(b, &e->quant_conv, "quant_conv", 2 * c->embed_dim, zc, 1);
    e->present = b->st == LILY_OK;
}

static void build_decoder(Builder *b, LilyVaeDecoder *d, const LilyVaeConfig *c, const char *root)
{
    char n[200];
    set_prefix(b, "%s", root);
    conv2d(b, &d->post_quant_conv, "post_quant_conv", c->z_channels, c->embed_dim, 1);
    set_prefix(b, "%sdecoder.", root);
    int block_in = c->ch * c->ch_mult[c->n_levels - 1];
    conv2d(b, &d->conv_in, "conv_in", block_in, c->z_channels, 3);
    vae_resblock(b, &d->mid_block_1, "mid.block_1", block_in, block_in);
    vae_attn(b, &d->mid_attn_1, "mid.attn_1", block_in);
    vae_resblock(b, &d->mid_block_2, "mid.block_2", block_in, block_in);
    for (int i = c->n_levels - 1; i >= 0; i--) {
        int block_out = c->ch * c->ch_mult[i];
        d->up[i].n_blocks = c->num_res_blocks + 1;
        for (int j = 0; j < c->num_res_blocks + 1; j++) {
            snprintf(n, sizeof n, "up.%d.block.%d", i, j);
            vae_resblock(b, &d->up[i].block[j], n, block_in, block_out);
            block_in = block_out;
        }
        if (i != 0) {
            snprintf(n, sizeof n, "up.%d.upsample.conv", i);
            conv2d(b, &d->up[i].resample, n, block_in, block_in, 3);
        }
    }
    norm(b, &d->norm_out, "norm_out", block_in);
    conv2d(b, &d->conv_out, "conv_out", c->out_ch, block_in, 3);
    d->present = b->st == LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* UNet                                                                                     */
/* ---------------------------------------------------------------------------------------- */
static void unet_resblock(Builder *b, LilyUResBlock *rb, const char *name, int cin, int cout,
                          int emb)
{
    char n[200];
    rb->c_in = cin;
    rb->c_out = cout;
    snprintf(n, sizeof n, "%s.in_layers.0", name);
    norm(b, &rb->in_norm, n, cin);
    snprintf(n, sizeof n, "%s.in_layers.2", name);
    conv2d(b, &rb->in_conv, n, cout, cin, 3);
    snprintf(n, sizeof n, "%s.emb_layers.1", name);
    linear(b, &rb->emb, n, cout, emb, true);
    snprintf(n, sizeof n, "%s.out_layers.0", name);
    norm(b, &rb->out_norm, n, cout);
    snprintf(n, sizeof n, "%s.out_layers.3", name);
    conv2d(b, &rb->out_conv, n, cout, cout, 3);
    if (cin != cout) {
        snprintf(n, sizeof n, "%s.skip_connection", name);
        conv2d(b, &rb->skip, n, cout, cin, 1);
    }
}

static void attn_weights(Builder *b, LilyAttnWeights *a, const char *name, int dim, int inner)
{
    char n[220];
    snprintf(n, sizeof n, "%s.to_q", name);
    linear(b, &a->q, n, inner, dim, false);
    snprintf(n, sizeof n, "%s.to_k", name);
    linear(b, &a->k, n, inner, dim, false);
    snprintf(n, sizeof n, "%s.to_v", name);
    linear(b, &a->v, n, inner, dim, false);
    snprintf(n, sizeof n, "%s.to_out.0", name);
    linear(b, &a->out, n, dim, inner, true);
}

static void spatial_transformer(Builder *b, LilySpatialTransformer *st, const char *name, int c,
                                int heads, int dim_head, int depth)
{
    char n[200];
    int inner = heads * dim_head;
    st->c = c;
    st->heads = heads;
    st->dim_head = dim_head;
    st->depth = depth;
    snprintf(n, sizeof n, "%s.norm", name);
    norm(b, &st->norm, n, c);
    snprintf(n, sizeof n, "%s.proj_in", name);
    conv2d(b, &st->proj_in, n, inner, c, 1);
    for (int d = 0; d < depth; d++) {
        LilyTransformerBlock *tb = &st->blocks[d];
        char bn[200];
        snprintf(bn, sizeof bn, "%s.transformer_blocks.%d", name, d);
        snprintf(n, sizeof n, "%s.attn1", bn);
        attn_weights(b, &tb->attn1, n, inner, inner);
        snprintf(n, sizeof n, "%s.ff.net.0.proj", bn);
        linear(b, &tb->ff_proj, n, 2 * 4 * inner, inner, true);
        snprintf(n, sizeof n, "%s.ff.net.2", bn);
        linear(b, &tb->ff_out, n, inner, 4 * inner, true);
        snprintf(n, sizeof n, "%s.attn2", bn);
        attn_weights(b, &tb->attn2, n, inner, inner);
        snprintf(n, sizeof n, "%s.norm1", bn);
        norm(b, &tb->norm1, n, inner);
        snprintf(n, sizeof n, "%s.norm2", bn);
        norm(b, &tb->norm2, n, inner);
        snprintf(n, sizeof n, "%s.norm3", bn);
        norm(b, &tb->norm3, n, inner);
    }
    snprintf(n, sizeof n, "%s.proj_out", name);
    conv2d(b, &st->proj_out, n, c, inner, 1);
}

static bool has_attention(const LilyUNetConfig *c, int ds)
{
    for (int i = 0; i < c->n_attention_resolutions; i++)
        if (c->attention_resolutions[i] == ds) return true;
    return false;
}

static void heads_for(const LilyUNetConfig *c, int ch, int *heads, int *dim_head)
{
    if (c->num_head_channels > 0) {
        *dim_head = c->num_head_channels;
        *heads = ch / c->num_head_channels;
    } else {
        *heads = c->num_heads;
        *dim_head = ch / c->num_heads;
    }
}

/* The transformers at one attention point: the extra self-attention layer (extra_sa_layer),
 * then one per context dim; AudioSR has no context, so [None]: 2 in all, both
 * self-attention. */
static void attention_point(Builder *b, LilyUBlock *blk, const LilyUNetConfig *c, const char *base,
                            int first_index, int ch)
{
    int heads, dim_head;
    heads_for(c, ch, &heads, &dim_head);
    int n_st = (c->extra_sa_layer ? 1 : 0) + 1;
    char n[200];
    for (int s = 0; s < n_st; s++) {
        snprintf(n, sizeof n, "%s.%d", base, first_index + s);
        spatial_transformer(b, &blk->st[s], n, ch, heads, dim_head, c->transformer_depth);
    }
    blk->n_st = n_st;
}

static void build_unet(Builder *b, LilyUNet *u, const LilyUNetConfig *c)
{
    char n[200], base[64];
    int mc = c->model_channels, ted = c->time_embed_dim;
    set_prefix(b, "model.diffusion_model.");
    linear(b, &u->time_embed_0, "time_embed.0", ted, mc, true);
    linear(b, &u->time_embed_2, "time_embed.2", ted, ted, true);
    int chans[LILY_UNET_MAX_BLOCKS];
    int n_chans = 0;
    int idx = 0;
    u->input[0].kind = 0;
    conv2d(b, &u->input[0].conv, "input_blocks.0.0", mc, c->in_channels, 3);
    chans[n_chans++] = mc;
    idx = 1;
    int ch = mc, ds = 1;
    for (int level = 0; level < c->n_levels; level++) {
        for (int r = 0; r < c->num_res_blocks; r++) {
            if (idx >= LILY_UNET_MAX_BLOCKS - 1) break;
            LilyUBlock *blk = &u->input[idx];
            blk->kind = 1;
            blk->has_res = true;
            snprintf(base, sizeof base, "input_blocks.%d", idx);
            snprintf(n, sizeof n, "%s.0", base);
            unet_resblock(b, &blk->res, n, ch, c->channel_mult[level] * mc, ted);
            ch = c->channel_mult[level] * mc;
            if (has_attention(c, ds)) attention_point(b, blk, c, base, 1, ch);
            chans[n_chans++] = ch;
            idx++;
        }
        if (level != c->n_levels - 1 && idx < LILY_UNET_MAX_BLOCKS) {
            LilyUBlock *blk = &u->input[idx];
            blk->kind = 2;
            snprintf(n, sizeof n, "input_blocks.%d.0.op", idx);
            conv2d(b, &blk->conv, n, ch, ch, 3);
            chans[n_chans++] = ch;
            ds *= 2;
            idx++;
        }
    }
    u->n_input = idx;
    /* middle: ResBlock, transformers, ResBlock */
    u->middle.kind = 1;
    u->middle.has_res = true;
    unet_resblock(b, &u->middle.res, "middle_block.0", ch, ch, ted);
    attention_point(b, &u->middle, c, "middle_block", 1, ch);
    u->middle.has_res2 = true;
    snprintf(n, sizeof n, "middle_block.%d", 1 + u->middle.n_st);
    unet_resblock(b, &u->middle.res2, n, ch, ch, ted);
    /* output blocks */
    idx = 0;
    for (int level = c->n_levels - 1; level >= 0; level--) {
        for (int i = 0; i < c->num_res_blocks + 1; i++) {
            if (idx >= LILY_UNET_MAX_BLOCKS || n_chans == 0) break;
            LilyUBlock *blk = &u->output[idx];
            int ich = chans[--n_chans];
            blk->kind = 1;
            blk->has_res = true;
            snprintf(base, sizeof base, "output_blocks.%d", idx);
            snprintf(n, sizeof n, "%s.0", base);
            unet_resblock(b, &blk->res, n, ch + ich, mc * c->channel_mult[level], ted);
            ch = mc * c->channel_mult[level];
            int next = 1;
            if (has_attention(c, ds)) {
                attention_point(b, blk, c, base, 1, ch);
                next += blk->n_st;
            }
            if (level && i == c->num_res_blocks) {
                blk->has_up = true;
                snprintf(n, sizeof n, "%s.%d.conv", base, next);
                conv2d(b, &blk->up_conv, n, ch, ch, 3);
                ds /= 2;
            }
            idx++;
        }
    }
    u->n_output = idx;
    norm(b, &u->out_norm, "out.0", mc);
    conv2d(b, &u->out_conv, "out.2", c->out_channels, mc, 3);
    u->present = b->st == LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Vocoder                                                                                  */
/* ---------------------------------------------------------------------------------------- */
static void build_vocoder(Builder *b, LilyVocoder *v, const LilyVocoderConfig *c)
{
    char n[200];
    set_prefix(b, "first_stage_model.vocoder.");
    int ch = c->upsample_initial_channel;
    conv1d(b, &v->conv_pre, "conv_pre", ch, c->num_mels, 7);
    v->n_ups = c->n_upsamples;
    v->n_kernels = c->n_resblocks;
    for (int i = 0; i < c->n_upsamples; i++) {
        int cin = ch >> i, cout = ch >> (i + 1);
        snprintf(n, sizeof n, "ups.%d", i);
        convt1d(b, &v->ups[i], n, cin, cout, c->upsample_kernel_sizes[i]);
        for (int j = 0; j < c->n_resblocks; j++) {
            int r = i * c->n_resblocks + j;
            LilyVocResBlock *rb = &v->resblocks[r];
            rb->channels = cout;
            rb->kernel = c->resblock_kernel_sizes[j];
            rb->n_convs = c->n_dilations;
            for (int d = 0; d < c->n_dilations; d++) {
                rb->dilation[d] = c->resblock_dilation_sizes[j][d];
                snprintf(n, sizeof n, "resblocks.%d.convs1.%d", r, d);
                conv1d(b, &rb->convs1[d], n, cout, cout, rb->kernel);
                snprintf(n, sizeof n, "resblocks.%d.convs2.%d", r, d);
                conv1d(b, &rb->convs2[d], n, cout, cout, rb->kernel);
            }
        }
    }
    conv1d(b, &v->conv_post, "conv_post", 1, ch >> c->n_upsamples, 7);
    v->present = b->st == LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Schedule                                                                                 */
/* ---------------------------------------------------------------------------------------- */
/* make_beta_schedule (float64): cosine with s = 0.008, betas unclipped (the clip line is
 * commented out in AudioSR), or linear (sqrt-space, LDM's "linear"). */
static LilyStatus build_schedule(LilyContext *ctx, LilyModel *m)
{
    const LilyDiffusionConfig *d = &m->cfg.diffusion;
    int T = d->timesteps;
    m->alphas_cumprod = malloc(sizeof(double) * (size_t)T);
    if (!m->alphas_cumprod) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
    double prod = 1.0;
    if (strcmp(d->beta_schedule, "cosine") == 0) {
        const double s = 0.008;
        for (int i = 0; i < T; i++) {
            double t0 = (double)i / T + s, t1 = (double)(i + 1) / T + s;
            double a0 = cos(t0 / (1 + s) * M_PI / 2), a1 = cos(t1 / (1 + s) * M_PI / 2);
            double beta = 1.0 - (a1 * a1) / (a0 * a0);
            prod *= 1.0 - beta;
            m->alphas_cumprod[i] = prod;
        }
    } else if (strcmp(d->beta_schedule, "linear") == 0) {
        for (int i = 0; i < T; i++) {
            double sq = sqrt(d->linear_start) +
                        (sqrt(d->linear_end) - sqrt(d->linear_start)) * (T > 1 ? (double)i / (T - 1) : 0);
            prod *= 1.0 - sq * sq;
            m->alphas_cumprod[i] = prod;
        }
    } else {
        return lily_error(ctx, LILY_ERR_UNSUPPORTED, "beta_schedule '%s' is not supported "
                          "(cosine, linear)", d->beta_schedule);
    }
    return LILY_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Build, upload, lifetime                                                                  */
/* ---------------------------------------------------------------------------------------- */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static LilyStatus upload_params(LilyContext *ctx, LilyModel *m, const Source *src,
                                const LilyModelConfig *cfg, uint64_t seed)
{
    size_t total = 0;
    for (int i = 0; i < m->n_params; i++)
        total += (lily_tensor_nbytes(&m->params[i].t) + 255) / 256 * 256;
    LilyBackend *be = ctx->backend;
    if (be->ops->alloc(be, total ? total : 256, &m->memory) != LILY_OK) {
        size_t fr = 0, tot = 0;
        be->ops->mem_info(be, &fr, &tot);
        return lily_error(ctx, LILY_ERR_NO_MEMORY,
                          "loading %s: the weights need %.1f MiB of %s memory, %.1f MiB free; "
                          "try precision=bf16 or a smaller model",
                          m->path, total / 1048576.0, lily_device_name(be->kind), fr / 1048576.0);
    }
    m->mem_backend = *be;
    m->mem_backend.impl = NULL;
    m->memory_bytes = total;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t salt = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uintptr_t)m);
    size_t off = 0, staging_cap = 0;
    void *staging = NULL;
    LilyStatus st = LILY_OK;
    for (int i = 0; i < m->n_params && st == LILY_OK; i++) {
        LilyParam *p = &m->params[i];
        size_t n = (size_t)lily_tensor_numel(&p->t);
        size_t bytes = lily_tensor_nbytes(&p->t);
        p->t.data = (char *)m->memory + off;
        p->t.stamp = mix64(salt + (uint64_t)i + 1) | 1u;
        off += (bytes + 255) / 256 * 256;
        const void *host = NULL;
        LilyDType sdt = LILY_DTYPE_F32;
        if (src[i].w) {
            host = src[i].w->data;
            sdt = src[i].w->dtype;
        }
        if (!src[i].w || sdt != p->t.dtype) {
            if (bytes > staging_cap) {
                free(staging);
                staging = malloc(bytes);
                staging_cap = staging ? bytes : 0;
                if (!staging) {
                    st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory converting '%s'", p->name);
                    break;
                }
            }
            /* generate, or convert through f32 (random values are written as f32 first,
             * at the end of the staging buffer's f32 view, then narrowed in place) */
            if (!src[i].w) {
                if (p->t.dtype == LILY_DTYPE_F32) {
                    lily_arch_random_values(src[i].a, cfg, seed, 0, n, staging);
                    host = staging;
                    st = be->ops->upload(ctx, p->t.data, host, bytes);
                    continue;
                }
            }
            float *gen = NULL;
            if (!src[i].w) {
                gen = malloc(n * sizeof(float));
                if (!gen) {
                    st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory for '%s'", p->name);
                    break;
                }
                lily_arch_random_values(src[i].a, cfg, seed, 0, n, gen);
            }
            for (size_t k = 0; k < n; k++) {
                float f;
                if (gen) f = gen[k];
                else if (sdt == LILY_DTYPE_F32) memcpy(&f, (const char *)host + 4 * k, 4);
                else {
                    uint16_t h;
                    memcpy(&h, (const char *)host + 2 * k, 2);
                    f = sdt == LILY_DTYPE_BF16 ? lily_bf16_to_f32(h) : lily_f16_to_f32(h);
                }
                if (p->t.dtype == LILY_DTYPE_F32) memcpy((char *)staging + 4 * k, &f, 4);
                else {
                    uint16_t h = p->t.dtype == LILY_DTYPE_BF16 ? lily_f32_to_bf16(f) : lily_f32_to_f16(f);
                    memcpy((char *)staging + 2 * k, &h, 2);
                }
            }
            free(gen);
            host = staging;
        }
        st = be->ops->upload(ctx, p->t.data, host, bytes);
    }
    free(staging);
    return st;
}

static LilyStatus build(LilyContext *ctx, const char *path, const LilyModelConfig *cfg,
                        const LilyWeights *w, const LilyArch *arch, uint64_t seed,
                        LilyPrecision precision, LilyModel **out)
{
    *out = NULL;
    if (precision == LILY_PRECISION_F16 && ctx->backend->kind == LILY_DEVICE_CPU)
        return lily_error(ctx, LILY_ERR_UNSUPPORTED,
                          "precision f16 is for CUDA; on the CPU use f32 or bf16");
    LilyModel *m = calloc(1, sizeof *m);
    if (!m) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
    m->refcount = 1;
    m->cfg = *cfg;
    m->precision = precision;
    m->device = ctx->backend->kind;
    m->device_index = ctx->backend->index;
    m->path = strdup(path ? path : "");
    m->cap_params = (w ? lily_weights_count(w) : arch->n) + 1;
    m->params = calloc((size_t)m->cap_params, sizeof *m->params);
    Source *src = calloc((size_t)m->cap_params, sizeof *src);
    LilyStatus st = LILY_OK;
    if (!m->params || !src || !m->path) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
        goto fail;
    }
    Builder b = {.ctx = ctx, .m = m, .w = w, .arch = arch, .seed = seed, .precision = precision,
                 .st = LILY_OK, .src = src};
    /* Required for enhancement: UNet, condition encoder, decoder, vocoder. The first-stage
     * encoder is optional (training only): try it and roll back if absent. */
    build_unet(&b, &m->unet, &cfg->unet);
    build_encoder(&b, &m->cond_encoder, &cfg->cond_vae, "cond_stage_models.0.vae.");
    build_decoder(&b, &m->decoder, &cfg->vae, "first_stage_model.");
    build_vocoder(&b, &m->vocoder, &cfg->vocoder);
    if (b.st != LILY_OK) {
        st = b.st;
        goto fail;
    }
    int before = m->n_params;
    build_encoder(&b, &m->encoder, &cfg->vae, "first_stage_model.");
    if (b.st != LILY_OK) {
        for (int i = before; i < m->n_params; i++) free(m->params[i].name);
        m->n_params = before;
        memset(&m->encoder, 0, sizeof m->encoder);
        ctx->error[0] = '\0';
        lily_log(ctx, LILY_LOG_DEBUG, "%s: no first-stage encoder (fine for enhancement)", path);
    }
    if (w) {
        const LilyWeight *sf = lily_weights_find(w, "scale_factor");
        if (sf && sf->dtype == LILY_DTYPE_F32 && sf->nbytes == 4)
            memcpy(&m->cfg.diffusion.scale_factor, sf->data, 4);
    }
    LILY_CHECK(st, build_schedule(ctx, m), fail);
    LILY_CHECK(st, upload_params(ctx, m, src, cfg, seed), fail);
    free(src);
    lily_log(ctx, LILY_LOG_INFO, "model %s: %d tensors, %.1f MiB on %s, precision %s, scale_factor %g",
             path, m->n_params, m->memory_bytes / 1048576.0, lily_device_name(m->device),
             lily_precision_name(precision), (double)m->cfg.diffusion.scale_factor);
    *out = m;
    return LILY_OK;
fail:
    free(src);
    lily_model_unref(m);
    return st;
}

LilyStatus lily_model_build(LilyContext *ctx, const char *path, const LilyModelConfig *cfg,
                            const LilyWeights *w, LilyPrecision precision, LilyModel **out)
{
    return build(ctx, path, cfg, w, NULL, 0, precision, out);
}

LilyStatus lily_model_new_random(LilyContext *ctx, const LilyModelConfig *cfg, uint64_t seed,
                                 LilyPrecision precision, LilyModel **out)
{
    *out = NULL;
    LILY_TRY(lily_model_config_validate(ctx, cfg));
    LilyArch arch;
    LILY_TRY(lily_arch_build(ctx, cfg, 0, &arch));
    char name[64];
    snprintf(name, sizeof name, "random:%llu", (unsigned long long)seed);
    LilyStatus st = build(ctx, name, cfg, NULL, &arch, seed, precision, out);
    lily_arch_free(&arch);
    return st;
}

void lily_model_params_init(LilyModelParams *p)
{
    memset(p, 0, sizeof *p);
    p->precision = LILY_PRECISION_F32;
}

LilyStatus lily_model_load(LilyContext *ctx, const char *path, const LilyModelParams *params,
                           LilyModel **model)
{
    LilyModelParams defaults;
    if (!params) {
        lily_model_params_init(&defaults);
        params = &defaults;
    }
    *model = NULL;
    LilyWeights *w = NULL;
    LILY_TRY(lily_weights_open(ctx, path, &w));
    LilyModelConfig cfg;
    LilyStatus st = LILY_OK;
    const char *yaml = lily_weights_metadata(w, "lily.config");
    if (params->config_path) {
        st = lily_model_config_load(ctx, params->config_path, &cfg);
    } else if (yaml) {
        st = lily_model_config_parse(ctx, yaml, strlen(yaml), path, &cfg);
    } else {
        lily_model_config_basic(&cfg);
        lily_log(ctx, LILY_LOG_INFO, "%s: no embedded config; assuming AudioSR basic", path);
    }
    if (st == LILY_OK) st = lily_model_config_validate(ctx, &cfg);
    if (st == LILY_OK) st = lily_model_build(ctx, path, &cfg, w, params->precision, model);
    lily_weights_close(w);
    return st;
}

LilyModel *lily_model_ref(LilyModel *m)
{
    if (m) __atomic_add_fetch(&m->refcount, 1, __ATOMIC_ACQ_REL);
    return m;
}

void lily_model_unref(LilyModel *m)
{
    if (!m || __atomic_sub_fetch(&m->refcount, 1, __ATOMIC_ACQ_REL) > 0) return;
    if (m->memory && m->mem_backend.ops) m->mem_backend.ops->free(&m->mem_backend, m->memory);
    for (int i = 0; i < m->n_params; i++) free(m->params[i].name);
    free(m->params);
    free(m->alphas_cumprod);
    free(m->path);
    free(m);
}

size_t lily_model_weight_bytes(const LilyModel *m) { return m->memory_bytes; }
const void *lily_model_weights_id(const LilyModel *m) { return m->memory; }
LilyPrecision lily_model_precision(const LilyModel *m) { return m->precision; }
float lily_model_scale_factor(const LilyModel *m) { return m->cfg.diffusion.scale_factor; }
