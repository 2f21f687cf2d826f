/* config/config.c - AudioSR's basic model config as numbers, validation, comparison, loading.
 *
 * The numbers are audiosr/utils.py get_basic_config (UNet, VAE, diffusion) and
 * audiosr/utilities/model.py get_vocoder_config_48k (HiFi-GAN), as spec.md section 4 lists
 * them; the speech model uses the same config. The YAML reader and writer are in
 * config-yaml.c. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/model-config.h"
#include "core/status.h"

static void vae_basic(LilyVaeConfig *v)
{
    v->ch = 128;
    v->n_levels = 4;
    static const int mult[] = {1, 2, 4, 8};
    for (int i = 0; i < 4; i++) v->ch_mult[i] = mult[i];
    v->num_res_blocks = 2;
    v->z_channels = 16;
    v->embed_dim = 16;
    v->double_z = 1;
    v->in_channels = 1;
    v->out_ch = 1;
    v->mel_bins = 256;
    v->resolution = 256;
    v->n_attn_resolutions = 0;
    v->downsample_time = 0;
}

void lily_model_config_basic(LilyModelConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    LilyUNetConfig *u = &cfg->unet;
    u->in_channels = 32;
    u->out_channels = 16;
    u->model_channels = 128;
    u->n_levels = 4;
    static const int mult[] = {1, 2, 3, 5};
    for (int i = 0; i < 4; i++) u->channel_mult[i] = mult[i];
    u->num_res_blocks = 2;
    u->n_attention_resolutions = 3;
    u->attention_resolutions[0] = 8;
    u->attention_resolutions[1] = 4;
    u->attention_resolutions[2] = 2;
    u->num_head_channels = 32;
    u->num_heads = -1;
    u->transformer_depth = 1;
    u->extra_sa_layer = 1;
    u->context_dim = 0;
    u->use_scale_shift_norm = 0;
    u->resblock_updown = 0;
    u->conv_resample = 1;
    u->time_embed_dim = 4 * u->model_channels;
    vae_basic(&cfg->vae);
    vae_basic(&cfg->cond_vae);
    LilyVocoderConfig *v = &cfg->vocoder;
    v->num_mels = 256;
    v->n_upsamples = 5;
    static const int rates[] = {6, 5, 4, 2, 2}, kernels[] = {12, 10, 8, 4, 4};
    for (int i = 0; i < 5; i++) {
        v->upsample_rates[i] = rates[i];
        v->upsample_kernel_sizes[i] = kernels[i];
    }
    v->upsample_initial_channel = 1536;
    v->n_resblocks = 4;
    static const int rk[] = {3, 7, 11, 15};
    v->n_dilations = 3;
    for (int i = 0; i < 4; i++) {
        v->resblock_kernel_sizes[i] = rk[i];
        v->resblock_dilation_sizes[i][0] = 1;
        v->resblock_dilation_sizes[i][1] = 3;
        v->resblock_dilation_sizes[i][2] = 5;
    }
    v->resblock_type = 1;
    v->sampling_rate = 48000;
    LilyDiffusionConfig *d = &cfg->diffusion;
    d->timesteps = 1000;
    snprintf(d->beta_schedule, sizeof d->beta_schedule, "cosine");
    snprintf(d->parameterization, sizeof d->parameterization, "v");
    d->linear_start = 0.0015;
    d->linear_end = 0.0195;
    d->scale_factor = 1.0f;
    d->unconditional_value = -11.4981f;
    d->unconditional_prob_cfg = 0.1;
    d->latent_channels = 16;
    cfg->sample_rate = LILY_SAMPLE_RATE;
    cfg->n_fft = LILY_N_FFT;
    cfg->hop = LILY_HOP;
    cfg->n_mels = LILY_N_MELS;
    cfg->fmin = LILY_MEL_FMIN;
    cfg->fmax = LILY_MEL_FMAX;
}

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "model config: " __VA_ARGS__); \
    } while (0)

static LilyStatus validate_vae(LilyContext *ctx, const LilyVaeConfig *v, const char *where,
                               const LilyModelConfig *cfg)
{
    CHECK(v->n_levels >= 1 && v->n_levels <= LILY_CFG_MAX_LEVELS,
          "%s.ddconfig.ch_mult has %d entries (1 to %d)", where, v->n_levels, LILY_CFG_MAX_LEVELS);
    CHECK(v->ch >= 1 && v->ch <= 4096, "%s.ddconfig.ch = %d is out of range", where, v->ch);
    for (int i = 0; i < v->n_levels; i++)
        CHECK(v->ch_mult[i] >= 1 && v->ch_mult[i] <= 64 && (v->ch * v->ch_mult[i]) % 32 == 0,
              "%s.ddconfig: width ch * ch_mult[%d] = %d must be a positive multiple of 32 (GroupNorm "
              "has 32 groups)", where, i, v->ch * v->ch_mult[i]);
    CHECK(v->num_res_blocks >= 1 && v->num_res_blocks <= 16, "%s.ddconfig.num_res_blocks = %d is "
          "out of range (1 to 16)", where, v->num_res_blocks);
    CHECK(v->z_channels >= 1 && v->z_channels <= 1024, "%s.ddconfig.z_channels = %d is out of range",
          where, v->z_channels);
    CHECK(v->embed_dim >= 1 && v->embed_dim <= 1024, "%s.embed_dim = %d is out of range", where,
          v->embed_dim);
    CHECK(v->double_z == 1, "%s.ddconfig.double_z must be true (AutoencoderKL requires it)", where);
    CHECK(v->in_channels == 1 && v->out_ch == 1, "%s.ddconfig: in_channels and out_ch must be 1 "
          "(one log-mel channel)", where);
    CHECK(v->mel_bins == cfg->n_mels, "%s.ddconfig.mel_bins = %d but the mel has %d bins", where,
          v->mel_bins, cfg->n_mels);
    CHECK(v->resolution >= 1 && v->resolution <= 65536, "%s.ddconfig.resolution = %d is out of range",
          where, v->resolution);
    CHECK(v->mel_bins % (1 << (v->n_levels - 1)) == 0, "%s.ddconfig: %d mel bins cannot be halved "
          "%d times", where, v->mel_bins, v->n_levels - 1);
    CHECK(v->n_attn_resolutions >= 0 && v->n_attn_resolutions <= LILY_CFG_MAX_LEVELS,
          "%s.ddconfig.attn_resolutions has too many entries", where);
    CHECK(!v->downsample_time, "%s.ddconfig.downsample_time is not supported", where);
    return LILY_OK;
}

LilyStatus lily_model_config_preset(const char *name, LilyModelConfig *cfg)
{
    if (!name) return LILY_ERR_INVALID_ARGUMENT;
    if (strcmp(name, "basic") == 0 || strcmp(name, "speech") == 0) {
        lily_model_config_basic(cfg);
        return LILY_OK;
    }
    if (strcmp(name, "tiny") == 0) {
        lily_model_config_basic(cfg);
        static const int mult[] = {1, 1, 1, 2};
        cfg->unet.model_channels = 32;
        cfg->unet.time_embed_dim = 4 * 32;
        for (int i = 0; i < 4; i++) {
            cfg->unet.channel_mult[i] = mult[i];
            cfg->vae.ch_mult[i] = mult[i];
            cfg->cond_vae.ch_mult[i] = mult[i];
        }
        cfg->vae.ch = 32;
        cfg->cond_vae.ch = 32;
        cfg->vocoder.upsample_initial_channel = 64;
        cfg->diffusion.scale_factor = 0.7f;
        return LILY_OK;
    }
    return LILY_ERR_INVALID_ARGUMENT;
}

LilyStatus lily_model_config_validate(LilyContext *ctx, const LilyModelConfig *cfg)
{
    CHECK(cfg->sample_rate == LILY_SAMPLE_RATE && cfg->n_fft == LILY_N_FFT && cfg->hop == LILY_HOP &&
          cfg->n_mels == LILY_N_MELS,
          "preprocessing is %d Hz, n_fft %d, hop %d, %d mels; Lily's front end is fixed at AudioSR's "
          "%d Hz, %d, %d, %d", cfg->sample_rate, cfg->n_fft, cfg->hop, cfg->n_mels, LILY_SAMPLE_RATE,
          LILY_N_FFT, LILY_HOP, LILY_N_MELS);
    const LilyUNetConfig *u = &cfg->unet;
    const char *up = "model.params.unet_config.params";
    CHECK(u->n_levels >= 1 && u->n_levels <= LILY_CFG_MAX_LEVELS, "%s.channel_mult has %d entries "
          "(1 to %d)", up, u->n_levels, LILY_CFG_MAX_LEVELS);
    CHECK(u->model_channels >= 32 && u->model_channels <= 4096, "%s.model_channels = %d is out of "
          "range", up, u->model_channels);
    CHECK(u->num_res_blocks >= 1 && u->num_res_blocks <= 16, "%s.num_res_blocks = %d is out of "
          "range (1 to 16)", up, u->num_res_blocks);
    CHECK(u->time_embed_dim == 4 * u->model_channels, "time_embed_dim must be 4 * model_channels");
    CHECK(u->transformer_depth >= 1 && u->transformer_depth <= 16, "%s.transformer_depth = %d is out "
          "of range", up, u->transformer_depth);
    CHECK(u->context_dim >= 0 && u->context_dim <= 65536, "%s.context_dim = %d is out of range", up,
          u->context_dim);
    CHECK(u->num_head_channels > 0 || u->num_heads > 0, "%s: set num_head_channels or num_heads", up);
    CHECK(!u->use_scale_shift_norm, "%s.use_scale_shift_norm is not supported", up);
    CHECK(!u->resblock_updown, "%s.resblock_updown is not supported", up);
    CHECK(u->conv_resample, "%s.conv_resample must be true", up);
    for (int i = 0; i < u->n_levels; i++) {
        int w = u->model_channels * u->channel_mult[i];
        CHECK(u->channel_mult[i] >= 1 && u->channel_mult[i] <= 64 && w % 32 == 0,
              "%s: width model_channels * channel_mult[%d] = %d must be a positive multiple of 32 "
              "(GroupNorm has 32 groups)", up, i, w);
        int heads = u->num_head_channels > 0 ? w / u->num_head_channels : u->num_heads;
        CHECK(heads > 0 && w % heads == 0 && (u->num_head_channels <= 0 || w % u->num_head_channels == 0),
              "%s: width %d at level %d does not split into heads of %d channels", up, w, i,
              u->num_head_channels);
    }
    for (int i = 0; i < u->n_attention_resolutions; i++)
        CHECK(u->attention_resolutions[i] >= 1, "%s.attention_resolutions[%d] must be positive", up, i);
    const LilyDiffusionConfig *d = &cfg->diffusion;
    CHECK(d->latent_channels >= 1, "model.params.channels = %d must be positive", d->latent_channels);
    CHECK(u->out_channels == d->latent_channels && cfg->vae.embed_dim == d->latent_channels,
          "%s.out_channels (%d), first_stage embed_dim (%d) and model.params.channels (%d) must "
          "agree", up, u->out_channels, cfg->vae.embed_dim, d->latent_channels);
    CHECK(u->in_channels == d->latent_channels + cfg->cond_vae.embed_dim,
          "%s.in_channels = %d must be the latent (%d) plus the concatenated condition latent (%d)",
          up, u->in_channels, d->latent_channels, cfg->cond_vae.embed_dim);
    LILY_TRY(validate_vae(ctx, &cfg->vae, "model.params.first_stage_config.params", cfg));
    LILY_TRY(validate_vae(ctx, &cfg->cond_vae, "model.params.cond_stage_config.concat_lowpass_cond."
                          "params.first_stage_config.params", cfg));
    CHECK(cfg->vae.n_levels == u->n_levels, "the VAE downsamples %d times and the UNet %d times; "
          "AudioSR's latent layout needs them equal", cfg->vae.n_levels - 1, u->n_levels - 1);
    const LilyVocoderConfig *v = &cfg->vocoder;
    CHECK(v->num_mels == cfg->n_mels, "vocoder_48k.num_mels = %d but the mel has %d bins",
          v->num_mels, cfg->n_mels);
    CHECK(v->n_upsamples >= 1 && v->n_upsamples <= LILY_CFG_MAX_LEVELS, "vocoder_48k.upsample_rates "
          "has %d entries (1 to %d)", v->n_upsamples, LILY_CFG_MAX_LEVELS);
    int64_t prod = 1;
    for (int i = 0; i < v->n_upsamples; i++) {
        CHECK(v->upsample_rates[i] >= 1 && v->upsample_rates[i] <= 64, "vocoder_48k.upsample_rates[%d] "
              "= %d is out of range", i, v->upsample_rates[i]);
        CHECK(v->upsample_kernel_sizes[i] >= v->upsample_rates[i] && v->upsample_kernel_sizes[i] <= 128,
              "vocoder_48k.upsample_kernel_sizes[%d] = %d must be at least the rate %d", i,
              v->upsample_kernel_sizes[i], v->upsample_rates[i]);
        prod *= v->upsample_rates[i];
    }
    CHECK(prod == cfg->hop, "vocoder_48k.upsample_rates multiply to %lld, not the hop %d",
          (long long)prod, cfg->hop);
    CHECK(v->upsample_initial_channel >= 1 && v->upsample_initial_channel <= 65536 &&
          (v->upsample_initial_channel >> v->n_upsamples) >= 1,
          "vocoder_48k.upsample_initial_channel = %d cannot be halved %d times",
          v->upsample_initial_channel, v->n_upsamples);
    CHECK(v->resblock_type == 1, "vocoder_48k.resblock must be '1' (AudioSR's HiFi-GAN)");
    CHECK(v->n_resblocks >= 1 && v->n_resblocks <= LILY_CFG_MAX_LEVELS, "vocoder_48k."
          "resblock_kernel_sizes has %d entries (1 to %d)", v->n_resblocks, LILY_CFG_MAX_LEVELS);
    CHECK(v->n_dilations == 3, "vocoder_48k.resblock_dilation_sizes: resblock '1' takes 3 "
          "dilations per block, not %d", v->n_dilations);
    for (int j = 0; j < v->n_resblocks; j++) {
        CHECK(v->resblock_kernel_sizes[j] >= 1 && v->resblock_kernel_sizes[j] <= 63 &&
              v->resblock_kernel_sizes[j] % 2 == 1, "vocoder_48k.resblock_kernel_sizes[%d] = %d "
              "must be odd (1 to 63)", j, v->resblock_kernel_sizes[j]);
        for (int k = 0; k < v->n_dilations; k++)
            CHECK(v->resblock_dilation_sizes[j][k] >= 1 && v->resblock_dilation_sizes[j][k] <= 64,
                  "vocoder_48k.resblock_dilation_sizes[%d][%d] is out of range", j, k);
    }
    CHECK(v->sampling_rate == LILY_SAMPLE_RATE, "vocoder_48k.sampling_rate = %d; Lily runs at %d Hz",
          v->sampling_rate, LILY_SAMPLE_RATE);
    CHECK(d->timesteps >= 1 && d->timesteps <= 100000, "model.params.timesteps = %d is out of range",
          d->timesteps);
    CHECK(strcmp(d->beta_schedule, "cosine") == 0 || strcmp(d->beta_schedule, "linear") == 0,
          "model.params.beta_schedule '%s' is not 'cosine' or 'linear'", d->beta_schedule);
    CHECK(strcmp(d->parameterization, "v") == 0 || strcmp(d->parameterization, "eps") == 0,
          "model.params.parameterization '%s' is not 'v' or 'eps'", d->parameterization);
    CHECK(isfinite(d->scale_factor) && d->scale_factor > 0, "model.params.scale_factor = %g must be "
          "positive", (double)d->scale_factor);
    CHECK(isfinite(d->unconditional_value), "lily.unconditional_value must be finite");
    CHECK(d->unconditional_prob_cfg >= 0 && d->unconditional_prob_cfg <= 1,
          "model.params.unconditional_prob_cfg = %g must be in [0, 1]", d->unconditional_prob_cfg);
    CHECK(d->linear_start > 0 && d->linear_end > 0 && isfinite(d->linear_start) &&
          isfinite(d->linear_end), "model.params.linear_start and linear_end must be positive");
    return LILY_OK;
}

static int vae_equal(const LilyVaeConfig *a, const LilyVaeConfig *b)
{
    if (a->ch != b->ch || a->n_levels != b->n_levels || a->num_res_blocks != b->num_res_blocks ||
        a->z_channels != b->z_channels || a->embed_dim != b->embed_dim || a->double_z != b->double_z ||
        a->in_channels != b->in_channels || a->out_ch != b->out_ch || a->mel_bins != b->mel_bins ||
        a->resolution != b->resolution || a->n_attn_resolutions != b->n_attn_resolutions ||
        a->downsample_time != b->downsample_time)
        return 0;
    for (int i = 0; i < a->n_levels; i++)
        if (a->ch_mult[i] != b->ch_mult[i]) return 0;
    for (int i = 0; i < a->n_attn_resolutions; i++)
        if (a->attn_resolutions[i] != b->attn_resolutions[i]) return 0;
    return 1;
}

int lily_model_config_equal(const LilyModelConfig *a, const LilyModelConfig *b)
{
    const LilyUNetConfig *u = &a->unet, *w = &b->unet;
    if (u->in_channels != w->in_channels || u->out_channels != w->out_channels ||
        u->model_channels != w->model_channels || u->n_levels != w->n_levels ||
        u->num_res_blocks != w->num_res_blocks ||
        u->n_attention_resolutions != w->n_attention_resolutions ||
        u->num_head_channels != w->num_head_channels || u->num_heads != w->num_heads ||
        u->transformer_depth != w->transformer_depth || u->extra_sa_layer != w->extra_sa_layer ||
        u->context_dim != w->context_dim || u->use_scale_shift_norm != w->use_scale_shift_norm ||
        u->resblock_updown != w->resblock_updown || u->conv_resample != w->conv_resample ||
        u->time_embed_dim != w->time_embed_dim)
        return 0;
    for (int i = 0; i < u->n_levels; i++)
        if (u->channel_mult[i] != w->channel_mult[i]) return 0;
    for (int i = 0; i < u->n_attention_resolutions; i++)
        if (u->attention_resolutions[i] != w->attention_resolutions[i]) return 0;
    if (!vae_equal(&a->vae, &b->vae) || !vae_equal(&a->cond_vae, &b->cond_vae)) return 0;
    const LilyVocoderConfig *v = &a->vocoder, *x = &b->vocoder;
    if (v->num_mels != x->num_mels || v->n_upsamples != x->n_upsamples ||
        v->upsample_initial_channel != x->upsample_initial_channel ||
        v->n_resblocks != x->n_resblocks || v->n_dilations != x->n_dilations ||
        v->resblock_type != x->resblock_type || v->sampling_rate != x->sampling_rate)
        return 0;
    for (int i = 0; i < v->n_upsamples; i++)
        if (v->upsample_rates[i] != x->upsample_rates[i] ||
            v->upsample_kernel_sizes[i] != x->upsample_kernel_sizes[i])
            return 0;
    for (int j = 0; j < v->n_resblocks; j++) {
        if (v->resblock_kernel_sizes[j] != x->resblock_kernel_sizes[j]) return 0;
        for (int k = 0; k < v->n_dilations; k++)
            if (v->resblock_dilation_sizes[j][k] != x->resblock_dilation_sizes[j][k]) return 0;
    }
    const LilyDiffusionConfig *d = &a->diffusion, *e = &b->diffusion;
    if (d->timesteps != e->timesteps || strcmp(d->beta_schedule, e->beta_schedule) != 0 ||
        strcmp(d->parameterization, e->parameterization) != 0 || d->linear_start != e->linear_start ||
        d->linear_end != e->linear_end || d->scale_factor != e->scale_factor ||
        d->unconditional_value != e->unconditional_value ||
        d->unconditional_prob_cfg != e->unconditional_prob_cfg ||
        d->latent_channels != e->latent_channels)
        return 0;
    return a->sample_rate == b->sample_rate && a->n_fft == b->n_fft && a->hop == b->hop &&
           a->n_mels == b->n_mels && a->fmin == b->fmin && a->fmax == b->fmax;
}

LilyStatus lily_model_config_load(LilyContext *ctx, const char *path, LilyModelConfig *cfg)
{
    FILE *f = fopen(path, "rb");
    if (!f) return lily_error(ctx, LILY_ERR_IO, "cannot open model config '%s': %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    LilyStatus st = LILY_OK;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 65536 * 2;
            if (cap > (64u << 20)) {
                st = lily_error(ctx, LILY_ERR_FORMAT, "model config '%s' is larger than 64 MB: not "
                                "a config file", path);
                break;
            }
            char *t = realloc(text, cap);
            if (!t) {
                st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory reading '%s'", path);
                break;
            }
            text = t;
        }
        size_t n = fread(text + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) st = lily_error(ctx, LILY_ERR_IO, "cannot read '%s'", path);
            break;
        }
    }
    fclose(f);
    if (st == LILY_OK) st = lily_model_config_parse(ctx, text, len, path, cfg);
    free(text);
    return st;
}
