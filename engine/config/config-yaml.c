/* config/config-yaml.c - AudioSR's YAML model config, read (libyaml) and written.
 *
 * The layout is AudioSR's own (audiosr/utils.py get_basic_config; shared/audiosr/tiny-a.yaml):
 *   preprocessing.{audio.sampling_rate, stft.{filter_length, hop_length}, mel.{n_mel_channels,
 *                  mel_fmin, mel_fmax}}
 *   model.params.{timesteps, beta_schedule, parameterization, linear_start, linear_end,
 *                 unconditional_prob_cfg, channels, scale_factor}
 *   model.params.unet_config.params.*                      (openaimodel.py UNetModel arguments)
 *   model.params.first_stage_config.params.{embed_dim, ddconfig.*}
 *   model.params.cond_stage_config.concat_lowpass_cond.params.first_stage_config.params.*
 *   vocoder_48k.*              (hard-coded in audiosr/utilities/model.py; tiny-a.yaml has it)
 *   lily.unconditional_value   (Lily's only addition: AudioSR hard-codes -11.4981)
 * Unknown keys are ignored (AudioSR's files carry many training settings); a missing section
 * keeps the basic defaults. Type errors name the key path and file:line:column. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/model-config.h"
#include "core/status.h"

typedef struct Y {
    LilyContext *ctx;
    const char *origin;
    yaml_document_t doc;
} Y;

static LilyStatus at(Y *y, const yaml_node_t *n, const char *path, const char *what, ...)
    LILY_PRINTF(4, 5);
static LilyStatus at(Y *y, const yaml_node_t *n, const char *path, const char *what, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, what);
    vsnprintf(msg, sizeof msg, what, ap);
    va_end(ap);
    return lily_error(y->ctx, LILY_ERR_INVALID_ARGUMENT, "%s:%zu:%zu: %s: %s", y->origin,
                      n ? n->start_mark.line + 1 : 0, n ? n->start_mark.column + 1 : 0, path, msg);
}

static yaml_node_t *get(Y *y, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    yaml_node_t *found = NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&y->doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            found = yaml_document_get_node(&y->doc, p->value);
    }
    return found;
}

/* A sub-mapping; a present key of another type is an error, an absent one gives NULL. */
static LilyStatus section(Y *y, yaml_node_t *map, const char *key, const char *path, yaml_node_t **out)
{
    *out = get(y, map, key);
    if (*out && (*out)->type == YAML_SCALAR_NODE &&
        (strcmp((const char *)(*out)->data.scalar.value, "") == 0 ||
         strcmp((const char *)(*out)->data.scalar.value, "null") == 0 ||
         strcmp((const char *)(*out)->data.scalar.value, "~") == 0)) {
        *out = NULL;
        return LILY_OK;
    }
    if (*out && (*out)->type != YAML_MAPPING_NODE)
        return at(y, *out, path, "expected a mapping (key: value lines)");
    return LILY_OK;
}

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static int is_null(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (strcmp(scalar(n), "null") == 0 || strcmp(scalar(n), "~") == 0 || scalar(n)[0] == '\0' ||
            strcmp(scalar(n), "None") == 0);
}

static LilyStatus parse_int(Y *y, const yaml_node_t *n, const char *path, int *out)
{
    if (n->type != YAML_SCALAR_NODE) return at(y, n, path, "expected an integer");
    const char *s = scalar(n);
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < -1000000000L || v > 1000000000L)
        return at(y, n, path, "expected an integer, found '%.40s'", s);
    *out = (int)v;
    return LILY_OK;
}

static LilyStatus get_int(Y *y, yaml_node_t *map, const char *key, const char *base, int *out)
{
    yaml_node_t *n = get(y, map, key);
    if (!n) return LILY_OK;
    char path[256];
    snprintf(path, sizeof path, "%s.%s", base, key);
    return parse_int(y, n, path, out);
}

static LilyStatus get_double(Y *y, yaml_node_t *map, const char *key, const char *base, double *out)
{
    yaml_node_t *n = get(y, map, key);
    if (!n) return LILY_OK;
    char path[256];
    snprintf(path, sizeof path, "%s.%s", base, key);
    if (n->type != YAML_SCALAR_NODE) return at(y, n, path, "expected a number");
    const char *s = scalar(n);
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v)) return at(y, n, path, "expected a number, found '%.40s'", s);
    *out = v;
    return LILY_OK;
}

static LilyStatus get_float(Y *y, yaml_node_t *map, const char *key, const char *base, float *out)
{
    double v = *out;
    LILY_TRY(get_double(y, map, key, base, &v));
    *out = (float)v;
    return LILY_OK;
}

static LilyStatus get_bool(Y *y, yaml_node_t *map, const char *key, const char *base, int *out)
{
    yaml_node_t *n = get(y, map, key);
    if (!n) return LILY_OK;
    char path[256];
    snprintf(path, sizeof path, "%s.%s", base, key);
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "1"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "off", "0"};
    if (n->type == YAML_SCALAR_NODE) {
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
            if (strcmp(scalar(n), yes[i]) == 0) {
                *out = 1;
                return LILY_OK;
            }
            if (strcmp(scalar(n), no[i]) == 0) {
                *out = 0;
                return LILY_OK;
            }
        }
    }
    return at(y, n, path, "expected true or false");
}

static LilyStatus get_string(Y *y, yaml_node_t *map, const char *key, const char *base, char *out,
                             size_t cap)
{
    yaml_node_t *n = get(y, map, key);
    if (!n) return LILY_OK;
    char path[256];
    snprintf(path, sizeof path, "%s.%s", base, key);
    if (n->type != YAML_SCALAR_NODE || strlen(scalar(n)) >= cap)
        return at(y, n, path, "expected a short string");
    snprintf(out, cap, "%s", scalar(n));
    return LILY_OK;
}

static LilyStatus get_int_list(Y *y, yaml_node_t *map, const char *key, const char *base, int *out,
                               int *count, int max)
{
    yaml_node_t *n = get(y, map, key);
    if (!n) return LILY_OK;
    char path[256];
    snprintf(path, sizeof path, "%s.%s", base, key);
    if (n->type != YAML_SEQUENCE_NODE) return at(y, n, path, "expected a list of integers");
    int k = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        yaml_node_t *e = yaml_document_get_node(&y->doc, *it);
        if (k == max) return at(y, n, path, "more than %d entries", max);
        LILY_TRY(parse_int(y, e, path, &out[k]));
        k++;
    }
    *count = k;
    return LILY_OK;
}

static LilyStatus parse_vae(Y *y, yaml_node_t *params, const char *base, LilyVaeConfig *v)
{
    if (!params) return LILY_OK;
    LILY_TRY(get_int(y, params, "embed_dim", base, &v->embed_dim));
    char dd_path[256];
    snprintf(dd_path, sizeof dd_path, "%s.ddconfig", base);
    yaml_node_t *dd;
    LILY_TRY(section(y, params, "ddconfig", dd_path, &dd));
    if (!dd) return LILY_OK;
    LILY_TRY(get_bool(y, dd, "double_z", dd_path, &v->double_z));
    LILY_TRY(get_int(y, dd, "z_channels", dd_path, &v->z_channels));
    LILY_TRY(get_int(y, dd, "resolution", dd_path, &v->resolution));
    LILY_TRY(get_int(y, dd, "mel_bins", dd_path, &v->mel_bins));
    LILY_TRY(get_bool(y, dd, "downsample_time", dd_path, &v->downsample_time));
    LILY_TRY(get_int(y, dd, "in_channels", dd_path, &v->in_channels));
    LILY_TRY(get_int(y, dd, "out_ch", dd_path, &v->out_ch));
    LILY_TRY(get_int(y, dd, "ch", dd_path, &v->ch));
    LILY_TRY(get_int_list(y, dd, "ch_mult", dd_path, v->ch_mult, &v->n_levels, LILY_CFG_MAX_LEVELS));
    LILY_TRY(get_int(y, dd, "num_res_blocks", dd_path, &v->num_res_blocks));
    LILY_TRY(get_int_list(y, dd, "attn_resolutions", dd_path, v->attn_resolutions,
                          &v->n_attn_resolutions, LILY_CFG_MAX_LEVELS));
    return LILY_OK;
}

static LilyStatus parse_unet(Y *y, yaml_node_t *p, LilyUNetConfig *u)
{
    const char *base = "model.params.unet_config.params";
    if (!p) return LILY_OK;
    LILY_TRY(get_int(y, p, "in_channels", base, &u->in_channels));
    LILY_TRY(get_int(y, p, "out_channels", base, &u->out_channels));
    LILY_TRY(get_int(y, p, "model_channels", base, &u->model_channels));
    LILY_TRY(get_int_list(y, p, "channel_mult", base, u->channel_mult, &u->n_levels,
                          LILY_CFG_MAX_LEVELS));
    LILY_TRY(get_int(y, p, "num_res_blocks", base, &u->num_res_blocks));
    LILY_TRY(get_int_list(y, p, "attention_resolutions", base, u->attention_resolutions,
                          &u->n_attention_resolutions, LILY_CFG_MAX_LEVELS));
    /* num_head_channels given alone means num_heads is derived (UNetModel's defaults are -1). */
    yaml_node_t *nhc = get(y, p, "num_head_channels"), *nh = get(y, p, "num_heads");
    if (nhc && !nh) u->num_heads = -1;
    if (nh && !nhc) u->num_head_channels = -1;
    LILY_TRY(get_int(y, p, "num_head_channels", base, &u->num_head_channels));
    LILY_TRY(get_int(y, p, "num_heads", base, &u->num_heads));
    LILY_TRY(get_int(y, p, "transformer_depth", base, &u->transformer_depth));
    LILY_TRY(get_bool(y, p, "extra_sa_layer", base, &u->extra_sa_layer));
    LILY_TRY(get_bool(y, p, "use_scale_shift_norm", base, &u->use_scale_shift_norm));
    LILY_TRY(get_bool(y, p, "resblock_updown", base, &u->resblock_updown));
    LILY_TRY(get_bool(y, p, "conv_resample", base, &u->conv_resample));
    yaml_node_t *cd = get(y, p, "context_dim");
    if (cd && is_null(cd)) u->context_dim = 0;
    else if (cd && cd->type == YAML_SEQUENCE_NODE) {
        /* AudioSR allows a list of context dims; the SR model has none. */
        if (cd->data.sequence.items.top != cd->data.sequence.items.start)
            return at(y, cd, "model.params.unet_config.params.context_dim", "cross-attention "
                      "contexts are not supported (the SR model has none)");
        u->context_dim = 0;
    } else {
        LILY_TRY(get_int(y, p, "context_dim", base, &u->context_dim));
    }
    int spatial = 1, dims = 2;
    LILY_TRY(get_bool(y, p, "use_spatial_transformer", base, &spatial));
    LILY_TRY(get_int(y, p, "dims", base, &dims));
    if (!spatial)
        return at(y, get(y, p, "use_spatial_transformer"), "model.params.unet_config.params."
                  "use_spatial_transformer", "must be true (AudioSR's UNet)");
    if (dims != 2)
        return at(y, get(y, p, "dims"), "model.params.unet_config.params.dims", "must be 2");
    u->time_embed_dim = 4 * u->model_channels;
    return LILY_OK;
}

static LilyStatus parse_vocoder(Y *y, yaml_node_t *v, LilyVocoderConfig *c)
{
    const char *base = "vocoder_48k";
    if (!v) return LILY_OK;
    LILY_TRY(get_int(y, v, "num_mels", base, &c->num_mels));
    int n_rates = c->n_upsamples, n_kernels = c->n_upsamples;
    LILY_TRY(get_int_list(y, v, "upsample_rates", base, c->upsample_rates, &n_rates, LILY_CFG_MAX_LEVELS));
    LILY_TRY(get_int_list(y, v, "upsample_kernel_sizes", base, c->upsample_kernel_sizes, &n_kernels,
                          LILY_CFG_MAX_LEVELS));
    if (n_rates != n_kernels)
        return at(y, get(y, v, "upsample_kernel_sizes"), "vocoder_48k.upsample_kernel_sizes",
                  "has %d entries but upsample_rates has %d", n_kernels, n_rates);
    c->n_upsamples = n_rates;
    LILY_TRY(get_int(y, v, "upsample_initial_channel", base, &c->upsample_initial_channel));
    LILY_TRY(get_int(y, v, "sampling_rate", base, &c->sampling_rate));
    yaml_node_t *rb = get(y, v, "resblock");
    if (rb) LILY_TRY(parse_int(y, rb, "vocoder_48k.resblock", &c->resblock_type));
    int n_res = c->n_resblocks;
    LILY_TRY(get_int_list(y, v, "resblock_kernel_sizes", base, c->resblock_kernel_sizes, &n_res,
                          LILY_CFG_MAX_LEVELS));
    yaml_node_t *dl = get(y, v, "resblock_dilation_sizes");
    const char *dpath = "vocoder_48k.resblock_dilation_sizes";
    if (dl) {
        if (dl->type != YAML_SEQUENCE_NODE) return at(y, dl, dpath, "expected a list of lists");
        int j = 0, per = -1;
        for (yaml_node_item_t *it = dl->data.sequence.items.start; it < dl->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(&y->doc, *it);
            if (j == LILY_CFG_MAX_LEVELS) return at(y, dl, dpath, "too many entries");
            if (e->type != YAML_SEQUENCE_NODE) return at(y, e, dpath, "expected a list of integers");
            int k = 0;
            for (yaml_node_item_t *d = e->data.sequence.items.start; d < e->data.sequence.items.top; d++) {
                if (k == 4) return at(y, e, dpath, "more than 4 dilations in one block");
                LILY_TRY(parse_int(y, yaml_document_get_node(&y->doc, *d), dpath,
                                   &c->resblock_dilation_sizes[j][k]));
                k++;
            }
            if (per >= 0 && k != per) return at(y, e, dpath, "every block needs as many dilations");
            per = k;
            j++;
        }
        if (j != n_res)
            return at(y, dl, dpath, "has %d entries but resblock_kernel_sizes has %d", j, n_res);
        c->n_dilations = per < 0 ? 0 : per;
    } else if (n_res != c->n_resblocks) {
        return at(y, get(y, v, "resblock_kernel_sizes"), "vocoder_48k.resblock_kernel_sizes",
                  "changes the number of blocks; give resblock_dilation_sizes too");
    }
    c->n_resblocks = n_res;
    return LILY_OK;
}

static LilyStatus parse_root(Y *y, LilyModelConfig *cfg)
{
    yaml_node_t *root = yaml_document_get_root_node(&y->doc);
    if (!root)
        return lily_error(y->ctx, LILY_ERR_INVALID_ARGUMENT, "%s: the model config is empty", y->origin);
    if (root->type != YAML_MAPPING_NODE) return at(y, root, "(top level)", "expected a mapping");
    yaml_node_t *pre, *s, *model, *mp, *sub, *sub2, *sub3;
    LILY_TRY(section(y, root, "preprocessing", "preprocessing", &pre));
    LILY_TRY(section(y, pre, "audio", "preprocessing.audio", &s));
    LILY_TRY(get_int(y, s, "sampling_rate", "preprocessing.audio", &cfg->sample_rate));
    LILY_TRY(section(y, pre, "stft", "preprocessing.stft", &s));
    LILY_TRY(get_int(y, s, "filter_length", "preprocessing.stft", &cfg->n_fft));
    LILY_TRY(get_int(y, s, "hop_length", "preprocessing.stft", &cfg->hop));
    LILY_TRY(section(y, pre, "mel", "preprocessing.mel", &s));
    LILY_TRY(get_int(y, s, "n_mel_channels", "preprocessing.mel", &cfg->n_mels));
    LILY_TRY(get_double(y, s, "mel_fmin", "preprocessing.mel", &cfg->fmin));
    LILY_TRY(get_double(y, s, "mel_fmax", "preprocessing.mel", &cfg->fmax));

    LILY_TRY(section(y, root, "model", "model", &model));
    LILY_TRY(section(y, model, "params", "model.params", &mp));
    const char *b = "model.params";
    LilyDiffusionConfig *d = &cfg->diffusion;
    LILY_TRY(get_int(y, mp, "timesteps", b, &d->timesteps));
    LILY_TRY(get_string(y, mp, "beta_schedule", b, d->beta_schedule, sizeof d->beta_schedule));
    LILY_TRY(get_string(y, mp, "parameterization", b, d->parameterization, sizeof d->parameterization));
    LILY_TRY(get_double(y, mp, "linear_start", b, &d->linear_start));
    LILY_TRY(get_double(y, mp, "linear_end", b, &d->linear_end));
    LILY_TRY(get_double(y, mp, "unconditional_prob_cfg", b, &d->unconditional_prob_cfg));
    LILY_TRY(get_int(y, mp, "channels", b, &d->latent_channels));
    LILY_TRY(get_float(y, mp, "scale_factor", b, &d->scale_factor));

    LILY_TRY(section(y, mp, "unet_config", "model.params.unet_config", &sub));
    LILY_TRY(section(y, sub, "params", "model.params.unet_config.params", &sub2));
    LILY_TRY(parse_unet(y, sub2, &cfg->unet));

    LILY_TRY(section(y, mp, "first_stage_config", "model.params.first_stage_config", &sub));
    LILY_TRY(section(y, sub, "params", "model.params.first_stage_config.params", &sub2));
    LILY_TRY(parse_vae(y, sub2, "model.params.first_stage_config.params", &cfg->vae));
    /* The condition VAE is built from its own config; without one it is the first stage's. */
    cfg->cond_vae = cfg->vae;
    const char *cb = "model.params.cond_stage_config.concat_lowpass_cond.params.first_stage_config.params";
    LILY_TRY(section(y, mp, "cond_stage_config", "model.params.cond_stage_config", &sub));
    LILY_TRY(section(y, sub, "concat_lowpass_cond", "model.params.cond_stage_config.concat_lowpass_cond",
                     &sub2));
    LILY_TRY(section(y, sub2, "params", "model.params.cond_stage_config.concat_lowpass_cond.params",
                     &sub3));
    LILY_TRY(section(y, sub3, "first_stage_config", "model.params.cond_stage_config."
                     "concat_lowpass_cond.params.first_stage_config", &sub));
    LILY_TRY(section(y, sub, "params", cb, &sub2));
    LILY_TRY(parse_vae(y, sub2, cb, &cfg->cond_vae));

    LILY_TRY(section(y, root, "vocoder_48k", "vocoder_48k", &s));
    LILY_TRY(parse_vocoder(y, s, &cfg->vocoder));
    LILY_TRY(section(y, root, "lily", "lily", &s));
    LILY_TRY(get_float(y, s, "unconditional_value", "lily", &d->unconditional_value));
    return LILY_OK;
}

LilyStatus lily_model_config_parse(LilyContext *ctx, const char *yaml_text, size_t len,
                                   const char *origin, LilyModelConfig *cfg)
{
    lily_model_config_basic(cfg);
    if (!origin) origin = "model config";
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "%s: cannot start the YAML parser", origin);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml_text, len);
    Y y = {.ctx = ctx, .origin = origin};
    LilyStatus st;
    if (!yaml_parser_load(&parser, &y.doc)) {
        st = lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "%s:%zu:%zu: YAML syntax error: %s%s%s",
                        origin, parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                        parser.problem ? parser.problem : "unreadable",
                        parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return st;
    }
    st = parse_root(&y, cfg);
    yaml_document_delete(&y.doc);
    yaml_parser_delete(&parser);
    return st;
}

/* ---- writing ---------------------------------------------------------------------------- */

typedef struct Out {
    char *s;
    size_t len, cap;
    int failed;
} Out;

static void put(Out *o, const char *fmt, ...) LILY_PRINTF(2, 3);
static void put(Out *o, const char *fmt, ...)
{
    if (o->failed) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->failed = 1;
        return;
    }
    if (o->len + (size_t)n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + (size_t)n + 1) cap *= 2;
        char *s = realloc(o->s, cap);
        if (!s) {
            o->failed = 1;
            return;
        }
        o->s = s;
        o->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(o->s + o->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
}

/* Shortest text that reads back to the same double. */
static const char *dbl(char *buf, size_t len, double v)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

static const char *flt(char *buf, size_t len, float v)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, len, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return buf;
}

static void int_list(Out *o, const int *v, int n)
{
    put(o, "[");
    for (int i = 0; i < n; i++) put(o, "%s%d", i ? ", " : "", v[i]);
    put(o, "]\n");
}

static void vae_yaml(Out *o, const LilyVaeConfig *v, const char *ind)
{
    put(o, "%starget: audiosr.latent_encoder.autoencoder.AutoencoderKL\n", ind);
    put(o, "%sparams:\n", ind);
    put(o, "%s  embed_dim: %d\n", ind, v->embed_dim);
    put(o, "%s  ddconfig:\n", ind);
    put(o, "%s    double_z: %s\n", ind, v->double_z ? "true" : "false");
    put(o, "%s    z_channels: %d\n", ind, v->z_channels);
    put(o, "%s    resolution: %d\n", ind, v->resolution);
    put(o, "%s    mel_bins: %d\n", ind, v->mel_bins);
    put(o, "%s    downsample_time: %s\n", ind, v->downsample_time ? "true" : "false");
    put(o, "%s    in_channels: %d\n", ind, v->in_channels);
    put(o, "%s    out_ch: %d\n", ind, v->out_ch);
    put(o, "%s    ch: %d\n", ind, v->ch);
    put(o, "%s    ch_mult: ", ind);
    int_list(o, v->ch_mult, v->n_levels);
    put(o, "%s    num_res_blocks: %d\n", ind, v->num_res_blocks);
    put(o, "%s    attn_resolutions: ", ind);
    int_list(o, v->attn_resolutions, v->n_attn_resolutions);
}

LilyStatus lily_model_config_to_yaml(LilyContext *ctx, const LilyModelConfig *cfg, char **yaml)
{
    *yaml = NULL;
    Out o = {0};
    char a[40], b[40];
    const LilyDiffusionConfig *d = &cfg->diffusion;
    const LilyUNetConfig *u = &cfg->unet;
    const LilyVocoderConfig *v = &cfg->vocoder;
    put(&o, "# Lily model config: AudioSR's layout (audiosr/utils.py get_basic_config), the HiFi-GAN\n"
            "# settings AudioSR hard-codes (vocoder_48k) and Lily's own numbers (lily).\n");
    put(&o, "preprocessing:\n  audio:\n    sampling_rate: %d\n", cfg->sample_rate);
    put(&o, "  stft:\n    filter_length: %d\n    hop_length: %d\n    win_length: %d\n", cfg->n_fft,
        cfg->hop, cfg->n_fft);
    put(&o, "  mel:\n    n_mel_channels: %d\n    mel_fmin: %s\n    mel_fmax: %s\n", cfg->n_mels,
        dbl(a, sizeof a, cfg->fmin), dbl(b, sizeof b, cfg->fmax));
    put(&o, "model:\n  target: audiosr.latent_diffusion.models.ddpm.LatentDiffusion\n  params:\n");
    put(&o, "    timesteps: %d\n    beta_schedule: %s\n    parameterization: %s\n", d->timesteps,
        d->beta_schedule, d->parameterization);
    put(&o, "    linear_start: %s\n", dbl(a, sizeof a, d->linear_start));
    put(&o, "    linear_end: %s\n", dbl(a, sizeof a, d->linear_end));
    put(&o, "    unconditional_prob_cfg: %s\n", dbl(a, sizeof a, d->unconditional_prob_cfg));
    put(&o, "    channels: %d\n", d->latent_channels);
    put(&o, "    scale_factor: %s\n", flt(a, sizeof a, d->scale_factor));
    put(&o, "    first_stage_config:\n");
    vae_yaml(&o, &cfg->vae, "      ");
    put(&o, "    unet_config:\n");
    put(&o, "      target: audiosr.latent_diffusion.modules.diffusionmodules.openaimodel.UNetModel\n");
    put(&o, "      params:\n");
    put(&o, "        in_channels: %d\n        out_channels: %d\n        model_channels: %d\n",
        u->in_channels, u->out_channels, u->model_channels);
    put(&o, "        attention_resolutions: ");
    int_list(&o, u->attention_resolutions, u->n_attention_resolutions);
    put(&o, "        num_res_blocks: %d\n        channel_mult: ", u->num_res_blocks);
    int_list(&o, u->channel_mult, u->n_levels);
    put(&o, "        num_head_channels: %d\n        num_heads: %d\n", u->num_head_channels, u->num_heads);
    put(&o, "        extra_sa_layer: %s\n        use_spatial_transformer: true\n",
        u->extra_sa_layer ? "true" : "false");
    put(&o, "        transformer_depth: %d\n", u->transformer_depth);
    if (u->context_dim > 0) put(&o, "        context_dim: %d\n", u->context_dim);
    else put(&o, "        context_dim: null\n");
    put(&o, "        use_scale_shift_norm: %s\n        resblock_updown: %s\n        conv_resample: %s\n",
        u->use_scale_shift_norm ? "true" : "false", u->resblock_updown ? "true" : "false",
        u->conv_resample ? "true" : "false");
    put(&o, "    cond_stage_config:\n      concat_lowpass_cond:\n        cond_stage_key: lowpass_mel\n"
            "        conditioning_key: concat\n"
            "        target: audiosr.latent_diffusion.modules.encoders.modules.VAEFeatureExtract\n"
            "        params:\n          first_stage_config:\n");
    vae_yaml(&o, &cfg->cond_vae, "            ");
    put(&o, "vocoder_48k:\n  resblock: '%d'\n  num_mels: %d\n  upsample_rates: ", v->resblock_type,
        v->num_mels);
    int_list(&o, v->upsample_rates, v->n_upsamples);
    put(&o, "  upsample_kernel_sizes: ");
    int_list(&o, v->upsample_kernel_sizes, v->n_upsamples);
    put(&o, "  upsample_initial_channel: %d\n  resblock_kernel_sizes: ", v->upsample_initial_channel);
    int_list(&o, v->resblock_kernel_sizes, v->n_resblocks);
    put(&o, "  resblock_dilation_sizes: [");
    for (int j = 0; j < v->n_resblocks; j++) {
        put(&o, "%s[", j ? ", " : "");
        for (int k = 0; k < v->n_dilations; k++)
            put(&o, "%s%d", k ? ", " : "", v->resblock_dilation_sizes[j][k]);
        put(&o, "]");
    }
    put(&o, "]\n  sampling_rate: %d\n", v->sampling_rate);
    put(&o, "lily:\n  unconditional_value: %s\n", flt(a, sizeof a, d->unconditional_value));
    if (o.failed) {
        free(o.s);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "model config: out of memory writing YAML");
    }
    *yaml = o.s;
    return LILY_OK;
}
