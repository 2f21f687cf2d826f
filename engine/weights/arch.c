/* weights/arch.c - the state dict of AudioSR's LatentDiffusion for a config, tensor by tensor.
 *
 * Each function mirrors one AudioSR constructor, in the order it registers its modules (which
 * is the order of the state dict):
 *   unet()      audiosr/latent_diffusion/modules/diffusionmodules/openaimodel.py UNetModel,
 *               with AudioSR's extra_sa_layer (a second SpatialTransformer per attention point)
 *   encoder(), decoder()
 *               audiosr/latent_diffusion/modules/diffusionmodules/model.py Encoder, Decoder
 *   autoencoder()
 *               audiosr/latent_encoder/autoencoder.py AutoencoderKL (+ its HiFi-GAN)
 *   vocoder()   audiosr/hifigan/models.py Generator with weight norm removed (so each conv
 *               lists bias before weight: remove_weight_norm re-registers the weight last)
 *   ema()       audiosr/latent_diffusion/modules/ema.py LitEma (names without dots)
 * and keys-basic.tsv (the real model's 3743 keys) is the test of all of it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "weights/arch-impl.h"

void lily_arch_add(LilyArchBuilder *b, const char *name, LilyDType dtype, LilyInit init,
                   int64_t fan_in, int ndim, const int64_t *shape)
{
    if (b->st != LILY_OK) return;
    LilyArch *a = b->arch;
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 1024;
        LilyArchTensor *t = realloc(a->t, (size_t)cap * sizeof *t);
        if (!t) {
            b->st = lily_error(b->ctx, LILY_ERR_NO_MEMORY, "arch: out of memory");
            return;
        }
        a->t = t;
        a->cap = cap;
    }
    LilyArchTensor *t = &a->t[a->n];
    memset(t, 0, sizeof *t);
    int len = snprintf(t->name, sizeof t->name, "%s%s", b->prefix, name);
    if (len < 0 || (size_t)len >= sizeof t->name) {
        b->st = lily_error(b->ctx, LILY_ERR_INTERNAL, "arch: tensor name '%s%s' is too long",
                           b->prefix, name);
        return;
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->dtype = dtype;
    t->comp = b->comp;
    t->use = b->use;
    t->init = init;
    t->fan_in = fan_in;
    a->n++;
}

static void addf(LilyArchBuilder *b, LilyInit init, int64_t fan_in, int ndim, const int64_t *shape,
                 const char *fmt, ...) LILY_PRINTF(6, 7);
static void addf(LilyArchBuilder *b, LilyInit init, int64_t fan_in, int ndim, const int64_t *shape,
                 const char *fmt, ...)
{
    char name[LILY_ARCH_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    lily_arch_add(b, name, LILY_DTYPE_F32, init, fan_in, ndim, shape);
}

void lily_arch_linear(LilyArchBuilder *b, const char *name, int64_t out, int64_t in, int bias)
{
    addf(b, LILY_INIT_FAN_IN, in, LILY_SHAPE(out, in), "%s.weight", name);
    if (bias) addf(b, LILY_INIT_FAN_IN, in, LILY_SHAPE(out), "%s.bias", name);
}

void lily_arch_conv2d(LilyArchBuilder *b, const char *name, int64_t out, int64_t in, int64_t k)
{
    addf(b, LILY_INIT_FAN_IN, in * k * k, LILY_SHAPE(out, in, k, k), "%s.weight", name);
    addf(b, LILY_INIT_FAN_IN, in * k * k, LILY_SHAPE(out), "%s.bias", name);
}

void lily_arch_norm(LilyArchBuilder *b, const char *name, int64_t ch)
{
    addf(b, LILY_INIT_ONES, 0, LILY_SHAPE(ch), "%s.weight", name);
    addf(b, LILY_INIT_ZEROS, 0, LILY_SHAPE(ch), "%s.bias", name);
}

/* ---- UNet ---------------------------------------------------------------------------- */

static void resblock(LilyArchBuilder *b, const char *p, int ch, int out, const LilyUNetConfig *c)
{
    char n[LILY_ARCH_NAME_MAX];
    snprintf(n, sizeof n, "%s.in_layers.0", p);
    lily_arch_norm(b, n, ch);
    snprintf(n, sizeof n, "%s.in_layers.2", p);
    lily_arch_conv2d(b, n, out, ch, 3);
    snprintf(n, sizeof n, "%s.emb_layers.1", p);
    lily_arch_linear(b, n, c->use_scale_shift_norm ? 2 * out : out, c->time_embed_dim, 1);
    snprintf(n, sizeof n, "%s.out_layers.0", p);
    lily_arch_norm(b, n, out);
    snprintf(n, sizeof n, "%s.out_layers.3", p);
    lily_arch_conv2d(b, n, out, out, 3);
    if (out != ch) {
        snprintf(n, sizeof n, "%s.skip_connection", p);
        lily_arch_conv2d(b, n, out, ch, 1);
    }
}

/* attention.py SpatialTransformer -> BasicTransformerBlock (attn1, ff, attn2, norm1-3). */
static void spatial_transformer(LilyArchBuilder *b, const char *p, int ch, int heads, int dim_head,
                                int depth, int context_dim)
{
    char n[LILY_ARCH_NAME_MAX];
    int inner = heads * dim_head;
    snprintf(n, sizeof n, "%s.norm", p);
    lily_arch_norm(b, n, ch);
    snprintf(n, sizeof n, "%s.proj_in", p);
    lily_arch_conv2d(b, n, inner, ch, 1);
    for (int d = 0; d < depth; d++) {
        char t[LILY_ARCH_NAME_MAX];
        snprintf(t, sizeof t, "%s.transformer_blocks.%d", p, d);
        for (int a = 1; a <= 2; a++) {
            int kv_in = (a == 2 && context_dim > 0) ? context_dim : inner;
            if (a == 2) {
                snprintf(n, sizeof n, "%s.ff.net.0.proj", t);
                lily_arch_linear(b, n, inner * 4 * 2, inner, 1);
                snprintf(n, sizeof n, "%s.ff.net.2", t);
                lily_arch_linear(b, n, inner, inner * 4, 1);
            }
            snprintf(n, sizeof n, "%s.attn%d.to_q", t, a);
            lily_arch_linear(b, n, inner, inner, 0);
            snprintf(n, sizeof n, "%s.attn%d.to_k", t, a);
            lily_arch_linear(b, n, inner, kv_in, 0);
            snprintf(n, sizeof n, "%s.attn%d.to_v", t, a);
            lily_arch_linear(b, n, inner, kv_in, 0);
            snprintf(n, sizeof n, "%s.attn%d.to_out.0", t, a);
            lily_arch_linear(b, n, inner, inner, 1);
        }
        for (int k = 1; k <= 3; k++) {
            snprintf(n, sizeof n, "%s.norm%d", t, k);
            lily_arch_norm(b, n, inner);
        }
    }
    snprintf(n, sizeof n, "%s.proj_out", p);
    lily_arch_conv2d(b, n, ch, inner, 1);
}

static void heads_for(const LilyUNetConfig *c, int ch, int *heads, int *dim_head)
{
    if (c->num_head_channels > 0) {
        *heads = ch / c->num_head_channels;
        *dim_head = c->num_head_channels;
    } else {
        *heads = c->num_heads;
        *dim_head = c->num_heads > 0 ? ch / c->num_heads : 0;
    }
}

static int attends(const LilyUNetConfig *c, int ds)
{
    for (int i = 0; i < c->n_attention_resolutions; i++)
        if (c->attention_resolutions[i] == ds) return 1;
    return 0;
}

/* The transformers at one attention point, numbered from `first` inside block p. */
static int attention_point(LilyArchBuilder *b, const char *p, int first, int ch,
                           const LilyUNetConfig *c)
{
    int heads, dim_head;
    heads_for(c, ch, &heads, &dim_head);
    char n[LILY_ARCH_NAME_MAX];
    int k = first;
    if (c->extra_sa_layer) {
        snprintf(n, sizeof n, "%s.%d", p, k++);
        spatial_transformer(b, n, ch, heads, dim_head, c->transformer_depth, 0);
    }
    snprintf(n, sizeof n, "%s.%d", p, k++);
    spatial_transformer(b, n, ch, heads, dim_head, c->transformer_depth, c->context_dim);
    return k;
}

static void unet(LilyArchBuilder *b, const LilyUNetConfig *c)
{
    int mc = c->model_channels, ted = c->time_embed_dim;
    char p[LILY_ARCH_NAME_MAX], n[LILY_ARCH_NAME_MAX];
    lily_arch_linear(b, "time_embed.0", ted, mc, 1);
    lily_arch_linear(b, "time_embed.2", ted, ted, 1);
    lily_arch_conv2d(b, "input_blocks.0.0", mc, c->in_channels, 3);
    int chans[LILY_CFG_MAX_LEVELS * 17 + 1], n_chans = 0;
    chans[n_chans++] = mc;
    int ch = mc, ds = 1, idx = 1;
    for (int level = 0; level < c->n_levels; level++) {
        for (int r = 0; r < c->num_res_blocks; r++) {
            snprintf(p, sizeof p, "input_blocks.%d", idx++);
            snprintf(n, sizeof n, "%s.0", p);
            int out = c->channel_mult[level] * mc;
            resblock(b, n, ch, out, c);
            ch = out;
            if (attends(c, ds)) attention_point(b, p, 1, ch, c);
            chans[n_chans++] = ch;
        }
        if (level != c->n_levels - 1) {
            snprintf(p, sizeof p, "input_blocks.%d.0", idx++);
            if (c->resblock_updown) {
                resblock(b, p, ch, ch, c);
            } else if (c->conv_resample) {
                snprintf(n, sizeof n, "%s.op", p);
                lily_arch_conv2d(b, n, ch, ch, 3);
            }
            chans[n_chans++] = ch;
            ds *= 2;
        }
    }
    resblock(b, "middle_block.0", ch, ch, c);
    int k = attention_point(b, "middle_block", 1, ch, c);
    snprintf(n, sizeof n, "middle_block.%d", k);
    resblock(b, n, ch, ch, c);
    idx = 0;
    for (int level = c->n_levels - 1; level >= 0; level--) {
        for (int r = 0; r <= c->num_res_blocks; r++) {
            int ich = chans[--n_chans];
            snprintf(p, sizeof p, "output_blocks.%d", idx++);
            snprintf(n, sizeof n, "%s.0", p);
            int out = mc * c->channel_mult[level];
            resblock(b, n, ch + ich, out, c);
            ch = out;
            k = 1;
            if (attends(c, ds)) k = attention_point(b, p, 1, ch, c);
            if (level && r == c->num_res_blocks) {
                snprintf(n, sizeof n, "%s.%d", p, k);
                if (c->resblock_updown) {
                    resblock(b, n, ch, ch, c);
                } else if (c->conv_resample) {
                    char cn[LILY_ARCH_NAME_MAX];
                    snprintf(cn, sizeof cn, "%s.conv", n);
                    lily_arch_conv2d(b, cn, ch, ch, 3);
                }
                ds /= 2;
            }
        }
    }
    lily_arch_norm(b, "out.0", ch);
    lily_arch_conv2d(b, "out.2", c->out_channels, mc, 3);
}

/* model_ema: LitEma over the DiffusionWrapper, so 'model.diffusion_model.a.0.b' is stored as
 * 'model_ema.diffusion_modela0b'. */
static void ema(LilyArchBuilder *b, LilyArch *a, int unet_first, int unet_end)
{
    lily_arch_add(b, "decay", LILY_DTYPE_F32, LILY_INIT_CONST, 0, 0, NULL);
    if (b->st == LILY_OK) a->t[a->n - 1].init_value = 0.9999;
    lily_arch_add(b, "num_updates", LILY_DTYPE_I32, LILY_INIT_ZEROS, 0, 0, NULL);
    for (int i = unet_first; i < unet_end && b->st == LILY_OK; i++) {
        char n[LILY_ARCH_NAME_MAX];
        const LilyArchTensor *t = &a->t[i];
        size_t k = 0;
        for (const char *s = t->name + strlen("model."); *s && k + 1 < sizeof n; s++)
            if (*s != '.') n[k++] = *s;
        n[k] = '\0';
        LilyArchTensor copy = *t; /* a->t may move while adding */
        lily_arch_add(b, n, copy.dtype, copy.init, copy.fan_in, copy.ndim, copy.shape);
    }
}

/* ---- VAE ------------------------------------------------------------------------------ */

static void resnet(LilyArchBuilder *b, const char *p, int in, int out)
{
    char n[LILY_ARCH_NAME_MAX];
    snprintf(n, sizeof n, "%s.norm1", p);
    lily_arch_norm(b, n, in);
    snprintf(n, sizeof n, "%s.conv1", p);
    lily_arch_conv2d(b, n, out, in, 3);
    snprintf(n, sizeof n, "%s.norm2", p);
    lily_arch_norm(b, n, out);
    snprintf(n, sizeof n, "%s.conv2", p);
    lily_arch_conv2d(b, n, out, out, 3);
    if (in != out) {
        snprintf(n, sizeof n, "%s.nin_shortcut", p);
        lily_arch_conv2d(b, n, out, in, 1);
    }
}

static void attn_block(LilyArchBuilder *b, const char *p, int ch)
{
    static const char *const parts[] = {"q", "k", "v", "proj_out"};
    char n[LILY_ARCH_NAME_MAX];
    snprintf(n, sizeof n, "%s.norm", p);
    lily_arch_norm(b, n, ch);
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "%s.%s", p, parts[i]);
        lily_arch_conv2d(b, n, ch, ch, 1);
    }
}

static int vae_attends(const LilyVaeConfig *c, int res)
{
    for (int i = 0; i < c->n_attn_resolutions; i++)
        if (c->attn_resolutions[i] == res) return 1;
    return 0;
}

static void encoder(LilyArchBuilder *b, const LilyVaeConfig *c)
{
    char p[LILY_ARCH_NAME_MAX];
    lily_arch_conv2d(b, "conv_in", c->ch, c->in_channels, 3);
    int res = c->resolution, block_in = c->ch;
    for (int i = 0; i < c->n_levels; i++) {
        block_in = c->ch * (i ? c->ch_mult[i - 1] : 1);
        int block_out = c->ch * c->ch_mult[i];
        for (int j = 0; j < c->num_res_blocks; j++) {
            snprintf(p, sizeof p, "down.%d.block.%d", i, j);
            resnet(b, p, block_in, block_out);
            block_in = block_out;
        }
        if (vae_attends(c, res))
            for (int j = 0; j < c->num_res_blocks; j++) {
                snprintf(p, sizeof p, "down.%d.attn.%d", i, j);
                attn_block(b, p, block_in);
            }
        if (i != c->n_levels - 1) {
            snprintf(p, sizeof p, "down.%d.downsample.conv", i);
            lily_arch_conv2d(b, p, block_in, block_in, 3);
            res /= 2;
        }
    }
    resnet(b, "mid.block_1", block_in, block_in);
    attn_block(b, "mid.attn_1", block_in);
    resnet(b, "mid.block_2", block_in, block_in);
    lily_arch_norm(b, "norm_out", block_in);
    lily_arch_conv2d(b, "conv_out", c->double_z ? 2 * c->z_channels : c->z_channels, block_in, 3);
}

static void decoder(LilyArchBuilder *b, const LilyVaeConfig *c)
{
    char p[LILY_ARCH_NAME_MAX];
    int last = c->n_levels - 1;
    int top = c->ch * c->ch_mult[last];
    lily_arch_conv2d(b, "conv_in", top, c->z_channels, 3);
    resnet(b, "mid.block_1", top, top);
    attn_block(b, "mid.attn_1", top);
    resnet(b, "mid.block_2", top, top);
    /* Built from the top level down, but `up` is indexed (and saved) from level 0 up. */
    for (int i = 0; i < c->n_levels; i++) {
        int block_in = c->ch * c->ch_mult[i < last ? i + 1 : last];
        int block_out = c->ch * c->ch_mult[i];
        int res = c->resolution >> i;
        for (int j = 0; j <= c->num_res_blocks; j++) {
            snprintf(p, sizeof p, "up.%d.block.%d", i, j);
            resnet(b, p, block_in, block_out);
            block_in = block_out;
        }
        if (vae_attends(c, res))
            for (int j = 0; j <= c->num_res_blocks; j++) {
                snprintf(p, sizeof p, "up.%d.attn.%d", i, j);
                attn_block(b, p, block_out);
            }
        if (i != 0) {
            snprintf(p, sizeof p, "up.%d.upsample.conv", i);
            lily_arch_conv2d(b, p, block_out, block_out, 3);
        }
    }
    lily_arch_norm(b, "norm_out", c->ch * c->ch_mult[0]);
    lily_arch_conv2d(b, "conv_out", c->out_ch, c->ch * c->ch_mult[0], 3);
}

/* Conv1d with weight norm removed: bias, then weight. ConvTranspose1d weights are
 * [in, out, k] and PyTorch takes their fan-in from dimension 1. */
static void conv1d_bw(LilyArchBuilder *b, const char *name, int64_t d0, int64_t d1, int64_t k,
                      int64_t bias_len)
{
    addf(b, LILY_INIT_FAN_IN, d1 * k, LILY_SHAPE(bias_len), "%s.bias", name);
    addf(b, LILY_INIT_FAN_IN, d1 * k, LILY_SHAPE(d0, d1, k), "%s.weight", name);
}

static void vocoder(LilyArchBuilder *b, const LilyVocoderConfig *c)
{
    char n[LILY_ARCH_NAME_MAX];
    int uic = c->upsample_initial_channel;
    conv1d_bw(b, "conv_pre", uic, c->num_mels, 7, uic);
    for (int i = 0; i < c->n_upsamples; i++) {
        snprintf(n, sizeof n, "ups.%d", i);
        int in = uic >> i, out = uic >> (i + 1);
        conv1d_bw(b, n, in, out, c->upsample_kernel_sizes[i], out);
    }
    for (int i = 0; i < c->n_upsamples; i++) {
        int ch = uic >> (i + 1);
        for (int j = 0; j < c->n_resblocks; j++) {
            int k = c->resblock_kernel_sizes[j];
            for (int s = 1; s <= 2; s++)
                for (int d = 0; d < c->n_dilations; d++) {
                    snprintf(n, sizeof n, "resblocks.%d.convs%d.%d", i * c->n_resblocks + j, s, d);
                    conv1d_bw(b, n, ch, ch, k, ch);
                }
        }
    }
    conv1d_bw(b, "conv_post", 1, uic >> c->n_upsamples, 7, 1);
}

static void set_part(LilyArchBuilder *b, const char *prefix, LilyComponent comp, LilyUse use)
{
    snprintf(b->prefix, sizeof b->prefix, "%s", prefix);
    b->comp = comp;
    b->use = use;
}

/* One AutoencoderKL with its vocoder. `cond`: the condition VAE, of which only the encoder
 * and quant_conv run. */
static void autoencoder(LilyArchBuilder *b, const char *prefix, const LilyVaeConfig *v,
                        const LilyVocoderConfig *voc, int cond)
{
    char p[LILY_ARCH_NAME_MAX];
    LilyComponent enc = cond ? LILY_COMP_COND_VAE_ENCODER : LILY_COMP_VAE_ENCODER;
    LilyComponent dec = cond ? LILY_COMP_COND_VAE_DECODER : LILY_COMP_VAE_DECODER;
    LilyComponent quant = cond ? LILY_COMP_COND_VAE_QUANT : LILY_COMP_VAE_QUANT;
    snprintf(p, sizeof p, "%sencoder.", prefix);
    set_part(b, p, enc, cond ? LILY_USE_SR : LILY_USE_TRAIN);
    encoder(b, v);
    snprintf(p, sizeof p, "%sdecoder.", prefix);
    set_part(b, p, dec, cond ? LILY_USE_UNUSED : LILY_USE_SR);
    decoder(b, v);
    set_part(b, prefix, quant, cond ? LILY_USE_SR : LILY_USE_TRAIN);
    lily_arch_conv2d(b, "quant_conv", 2 * v->embed_dim, 2 * v->z_channels, 1);
    set_part(b, prefix, quant, cond ? LILY_USE_UNUSED : LILY_USE_SR);
    lily_arch_conv2d(b, "post_quant_conv", v->z_channels, v->embed_dim, 1);
    snprintf(p, sizeof p, "%svocoder.", prefix);
    set_part(b, p, cond ? LILY_COMP_COND_VAE_VOCODER : LILY_COMP_VOCODER,
             cond ? LILY_USE_UNUSED : LILY_USE_SR);
    vocoder(b, voc);
}

static const char *const schedule_buffers[] = {
    "logvar", "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
    "posterior_mean_coef1", "posterior_mean_coef2",
};

LilyStatus lily_arch_build(LilyContext *ctx, const LilyModelConfig *cfg, unsigned flags,
                           LilyArch *arch)
{
    memset(arch, 0, sizeof *arch);
    /* The walk keeps a stack of skip widths: bound the sizes it is sized for. */
    if (cfg->unet.n_levels < 1 || cfg->unet.n_levels > LILY_CFG_MAX_LEVELS ||
        cfg->unet.num_res_blocks < 1 || cfg->unet.num_res_blocks > 16)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "model config: unet levels (%d) or "
                          "num_res_blocks (%d) out of range", cfg->unet.n_levels,
                          cfg->unet.num_res_blocks);
    LilyArchBuilder b = {.ctx = ctx, .arch = arch, .st = LILY_OK};
    set_part(&b, "", LILY_COMP_DDPM_BUFFERS, LILY_USE_UNUSED);
    for (size_t i = 0; i < sizeof schedule_buffers / sizeof schedule_buffers[0]; i++)
        lily_arch_add(&b, schedule_buffers[i], LILY_DTYPE_F32, LILY_INIT_SCHEDULE, 0,
                      LILY_SHAPE(cfg->diffusion.timesteps));
    set_part(&b, "", LILY_COMP_DDPM_BUFFERS, LILY_USE_SR);
    lily_arch_add(&b, "scale_factor", LILY_DTYPE_F32, LILY_INIT_CONST, 0, 0, NULL);
    if (b.st == LILY_OK) arch->t[arch->n - 1].init_value = cfg->diffusion.scale_factor;
    if (flags & LILY_ARCH_CLAP) {
        set_part(&b, "clap.", LILY_COMP_CLAP, LILY_USE_UNUSED);
        lily_arch_add_clap(&b);
    }
    set_part(&b, "model.diffusion_model.", LILY_COMP_UNET, LILY_USE_SR);
    int unet_first = arch->n;
    unet(&b, &cfg->unet);
    int unet_end = arch->n;
    set_part(&b, "model_ema.", LILY_COMP_UNET_EMA, LILY_USE_UNUSED);
    ema(&b, arch, unet_first, unet_end);
    autoencoder(&b, "first_stage_model.", &cfg->vae, &cfg->vocoder, 0);
    autoencoder(&b, "cond_stage_models.0.vae.", &cfg->cond_vae, &cfg->vocoder, 1);
    if (b.st != LILY_OK) lily_arch_free(arch);
    return b.st;
}

void lily_arch_free(LilyArch *arch)
{
    free(arch->t);
    memset(arch, 0, sizeof *arch);
}

int lily_arch_find(const LilyArch *arch, const char *name)
{
    for (int i = 0; i < arch->n; i++)
        if (strcmp(arch->t[i].name, name) == 0) return i;
    return -1;
}
