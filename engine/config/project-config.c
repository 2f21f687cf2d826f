/* config/project-config.c - config.yaml (Lily's data/model/train/inference settings) read with
 * libyaml into LilyProjectConfig (project-config.h).
 *
 * Each section is a table of keys with a type, a target and a range, so that what is
 * accepted, its default and its check sit on one line. The whole document is loaded first
 * (yaml_parser_load) so every node keeps its position for messages. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/project-config.h"
#include "core/status.h"

static const char *const stage_names[] = {"unet", "vae", "vocoder"};
static const char *const decay_names[] = {"cosine", "constant", "linear"};

const char *lily_train_stage_name(LilyTrainStage s)
{
    return (s >= 0 && (int)s < 3) ? stage_names[s] : "unknown";
}

LilyStatus lily_train_stage_from_name(const char *name, LilyTrainStage *s)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, stage_names[i]) == 0) {
            *s = (LilyTrainStage)i;
            return LILY_OK;
        }
    return LILY_ERR_INVALID_ARGUMENT;
}

const char *lily_lr_decay_name(LilyLrDecay d)
{
    return (d >= 0 && (int)d < 3) ? decay_names[d] : "unknown";
}

LilyStatus lily_lr_decay_from_name(const char *name, LilyLrDecay *d)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, decay_names[i]) == 0) {
            *d = (LilyLrDecay)i;
            return LILY_OK;
        }
    return LILY_ERR_INVALID_ARGUMENT;
}

void lily_project_config_defaults(LilyProjectConfig *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->data.sample_rate = LILY_SAMPLE_RATE;
    lily_dataset_params_init(&cfg->data.params);
    snprintf(cfg->data.dir, sizeof cfg->data.dir, "data/shards");

    snprintf(cfg->model.architecture, sizeof cfg->model.architecture, "tiny");

    LilyTrainConfig *t = &cfg->train;
    t->stage = LILY_TRAIN_STAGE_UNET;
    snprintf(t->out_dir, sizeof t->out_dir, "runs/default");
    t->batch_size = 4;
    t->grad_accum = 1;
    t->max_steps = 2000;
    t->learning_rate = 1.0e-4;
    t->warmup_steps = 100;
    t->decay = LILY_LR_DECAY_COSINE;
    t->min_learning_rate = 1.0e-6;
    t->weight_decay = 0.0;
    t->adam_beta1 = 0.9;
    t->adam_beta2 = 0.999;
    t->adam_eps = 1.0e-8;
    t->grad_clip = 1.0;
    t->ema_decay = 0.9999;
    t->precision = LILY_PRECISION_F32;
    t->unconditional_prob = 0.1;
    t->log_every = 10;
    t->validate_every = 200;
    t->checkpoint_every = 500;
    t->seed = 1234;
    t->validation_batches = 2;
    t->validation_steps = 10;
    t->kl_weight = 1.0e-6;
    t->disc_width = 1.0;
    t->scale_by_std = 0;

    LilyInferenceConfig *in = &cfg->inference;
    in->device = LILY_DEVICE_CPU;
    in->precision = LILY_PRECISION_F32;
    in->steps = 50;
    in->guidance_scale = 3.5;
    in->seed = 42;
    in->chunk_seconds = 10.24;
    in->overlap_seconds = 1.28;
}

/* ---- the parser ---------------------------------------------------------------------- */

typedef struct P {
    LilyContext *ctx;
    const char *origin;
    const char *base_dir;
    yaml_document_t doc;
} P;

static LilyStatus at(P *p, const yaml_node_t *n, const char *key, const char *fmt, ...)
    LILY_PRINTF(4, 5);
static LilyStatus at(P *p, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lily_error(p->ctx, LILY_ERR_INVALID_ARGUMENT, "%s:%zu:%zu: %s: %s", p->origin,
                      n ? n->start_mark.line + 1 : 0, n ? n->start_mark.column + 1 : 0, key, msg);
}

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = scalar(n);
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

typedef enum KeyType {
    K_INT,     /* int, [min, max] */
    K_I64,     /* int64_t, [min, max] */
    K_U64,     /* uint64_t */
    K_DOUBLE,  /* double, [min, max] (min_open: > min) */
    K_STRING,  /* char[LILY_CONFIG_PATH_MAX], taken as written */
    K_PATH,    /* char[LILY_CONFIG_PATH_MAX], resolved against the config's folder */
    K_ARCH,    /* like K_PATH, but "basic"/"tiny" stay names */
    K_STAGE,
    K_DECAY,
    K_PRECISION,
    K_DEVICE,  /* target: LilyInferenceConfig */
    K_FILTERS, /* unsigned mask from a sequence (or "a,b" string) of family names */
    K_SECTION, /* a nested mapping handled by a sub-table */
} KeyType;

typedef struct Key {
    const char *name;
    KeyType type;
    void *target;
    double min, max;
    int min_open;
    const struct Key *sub; /* K_SECTION */
    int n_sub;
} Key;

static LilyStatus parse_number(P *p, const yaml_node_t *n, const char *key, double *out)
{
    if (n->type != YAML_SCALAR_NODE || is_null(n)) return at(p, n, key, "expected a number");
    const char *s = scalar(n);
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v))
        return at(p, n, key, "expected a number, found '%.60s'", s);
    *out = v;
    return LILY_OK;
}

static LilyStatus parse_integer(P *p, const yaml_node_t *n, const char *key, int is_unsigned,
                                long long *out, unsigned long long *uout)
{
    if (n->type != YAML_SCALAR_NODE || is_null(n)) return at(p, n, key, "expected an integer");
    const char *s = scalar(n);
    char *end = NULL;
    errno = 0;
    if (is_unsigned) {
        if (s[0] == '-') return at(p, n, key, "expected a non-negative integer, found '%.60s'", s);
        unsigned long long v = strtoull(s, &end, 0);
        if (end == s || *end || errno) return at(p, n, key, "expected an integer, found '%.60s'", s);
        *uout = v;
    } else {
        long long v = strtoll(s, &end, 10);
        if (end == s || *end || errno) return at(p, n, key, "expected an integer, found '%.60s'", s);
        *out = v;
    }
    return LILY_OK;
}

static LilyStatus range_error(P *p, const yaml_node_t *n, const char *key, const Key *k, double v)
{
    if (k->max >= 1e300) return at(p, n, key, "%g must be %s %g", v, k->min_open ? ">" : ">=", k->min);
    return at(p, n, key, "%g is outside the accepted range %s%g, %g]", v, k->min_open ? "(" : "[",
              k->min, k->max);
}

static LilyStatus set_path(P *p, const yaml_node_t *n, const char *key, const char *s, char *dst,
                           int resolve)
{
    char buf[LILY_CONFIG_PATH_MAX * 2];
    if (resolve && s[0] && s[0] != '/' && p->base_dir && p->base_dir[0])
        snprintf(buf, sizeof buf, "%s/%s", p->base_dir, s);
    else
        snprintf(buf, sizeof buf, "%s", s);
    if (strlen(buf) >= LILY_CONFIG_PATH_MAX)
        return at(p, n, key, "path is longer than %d bytes", LILY_CONFIG_PATH_MAX - 1);
    memcpy(dst, buf, strlen(buf) + 1);
    return LILY_OK;
}

static LilyStatus parse_filters(P *p, const yaml_node_t *n, const char *key, unsigned *mask)
{
    unsigned m = 0;
    if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            yaml_node_t *e = yaml_document_get_node(&p->doc, *it);
            LilyFilterType f;
            if (!e || e->type != YAML_SCALAR_NODE || lily_filter_from_name(scalar(e), &f) != LILY_OK)
                return at(p, e ? e : n, key, "'%.40s' is not a filter family (butter, cheby1, "
                          "ellip, bessel)", e && e->type == YAML_SCALAR_NODE ? scalar(e) : "?");
            m |= 1u << f;
        }
    } else if (n->type == YAML_SCALAR_NODE && !is_null(n)) {
        if (lily_dataset_filters_parse(NULL, scalar(n), &m) != LILY_OK)
            return at(p, n, key, "'%.60s' is not a list of filter families (butter, cheby1, "
                      "ellip, bessel)", scalar(n));
    } else {
        return at(p, n, key, "expected a list of filter families, e.g. [butter, ellip]");
    }
    if (!m) return at(p, n, key, "the list is empty: name at least one filter family");
    *mask = m;
    return LILY_OK;
}

static LilyStatus parse_section(P *p, yaml_node_t *map, const char *base, const Key *keys, int n_keys);

static LilyStatus parse_value(P *p, yaml_node_t *v, const char *key, const Key *k)
{
    double d = 0;
    long long ll = 0;
    unsigned long long ull = 0;
    switch (k->type) {
    case K_INT:
    case K_I64:
        LILY_TRY(parse_integer(p, v, key, 0, &ll, NULL));
        if ((double)ll < k->min || (double)ll > k->max) return range_error(p, v, key, k, (double)ll);
        if (k->type == K_INT)
            *(int *)k->target = (int)ll;
        else
            *(int64_t *)k->target = (int64_t)ll;
        return LILY_OK;
    case K_U64:
        LILY_TRY(parse_integer(p, v, key, 1, NULL, &ull));
        *(uint64_t *)k->target = (uint64_t)ull;
        return LILY_OK;
    case K_DOUBLE:
        LILY_TRY(parse_number(p, v, key, &d));
        if ((k->min_open ? d <= k->min : d < k->min) || d > k->max) return range_error(p, v, key, k, d);
        *(double *)k->target = d;
        return LILY_OK;
    case K_STRING:
    case K_PATH:
    case K_ARCH: {
        if (v->type != YAML_SCALAR_NODE) return at(p, v, key, "expected a string");
        const char *s = is_null(v) ? "" : scalar(v);
        int resolve = k->type == K_PATH ||
                      (k->type == K_ARCH && strcmp(s, "basic") != 0 && strcmp(s, "tiny") != 0);
        return set_path(p, v, key, s, k->target, resolve);
    }
    case K_STAGE:
        if (v->type != YAML_SCALAR_NODE || lily_train_stage_from_name(scalar(v), k->target) != LILY_OK)
            return at(p, v, key, "expected unet, vae or vocoder");
        return LILY_OK;
    case K_DECAY:
        if (v->type != YAML_SCALAR_NODE || lily_lr_decay_from_name(scalar(v), k->target) != LILY_OK)
            return at(p, v, key, "expected cosine, constant or linear");
        return LILY_OK;
    case K_PRECISION:
        if (v->type != YAML_SCALAR_NODE || lily_precision_from_name(scalar(v), k->target) != LILY_OK)
            return at(p, v, key, "expected f32, bf16 or f16");
        return LILY_OK;
    case K_DEVICE: {
        LilyInferenceConfig *in = k->target;
        if (v->type != YAML_SCALAR_NODE ||
            lily_device_parse(scalar(v), &in->device, &in->device_index) != LILY_OK)
            return at(p, v, key, "expected cpu, cuda or cuda:N");
        return LILY_OK;
    }
    case K_FILTERS:
        return parse_filters(p, v, key, k->target);
    case K_SECTION:
        if (is_null(v)) return LILY_OK;
        if (v->type != YAML_MAPPING_NODE) return at(p, v, key, "expected a mapping (key: value lines)");
        return parse_section(p, v, key, k->sub, k->n_sub);
    }
    return LILY_OK;
}

static LilyStatus parse_section(P *p, yaml_node_t *map, const char *base, const Key *keys, int n_keys)
{
    unsigned long long seen = 0;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = yaml_document_get_node(&p->doc, pr->key);
        yaml_node_t *vn = yaml_document_get_node(&p->doc, pr->value);
        if (!kn || !vn || kn->type != YAML_SCALAR_NODE)
            return at(p, kn, base, "keys must be plain names");
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", base, base[0] ? "." : "", scalar(kn));
        int found = -1;
        for (int i = 0; i < n_keys; i++)
            if (strcmp(keys[i].name, scalar(kn)) == 0) found = i;
        if (found < 0) {
            char known[512] = "";
            for (int i = 0; i < n_keys; i++) {
                size_t len = strlen(known);
                snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", keys[i].name);
            }
            return at(p, kn, key, "unknown key (known in %s: %s)", base[0] ? base : "the file",
                      known);
        }
        if (seen & (1ull << found)) return at(p, kn, key, "given twice");
        seen |= 1ull << found;
        LILY_TRY(parse_value(p, vn, key, &keys[found]));
    }
    return LILY_OK;
}

/* A node to point cross-key messages at: the value of `name` in `map`, or the map itself. */
static const yaml_node_t *find_value(P *p, const yaml_node_t *map, const char *name)
{
    if (!map || map->type != YAML_MAPPING_NODE) return map;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = yaml_document_get_node(&p->doc, pr->key);
        if (kn && kn->type == YAML_SCALAR_NODE && strcmp(scalar(kn), name) == 0)
            return yaml_document_get_node(&p->doc, pr->value);
    }
    return map;
}

static const yaml_node_t *find_path(P *p, const yaml_node_t *root, const char *a, const char *b,
                                    const char *c)
{
    const yaml_node_t *n = find_value(p, root, a);
    if (b && n) n = find_value(p, n, b);
    if (c && n) n = find_value(p, n, c);
    return n;
}

/* Checks that involve two keys, or more than a range. */
static LilyStatus cross_checks(P *p, const yaml_node_t *root, LilyProjectConfig *cfg)
{
    const LilyDatasetParams *d = &cfg->data.params;
    if (cfg->data.sample_rate != LILY_SAMPLE_RATE)
        return at(p, find_path(p, root, "data", "sample_rate", NULL), "data.sample_rate",
                  "%d: Lily trains at 48000 Hz only (sources are resampled to it)",
                  cfg->data.sample_rate);
    double q = d->segment_seconds * LILY_SAMPLE_RATE / LILY_DATASET_SEGMENT_QUANTUM;
    if (fabs(q - floor(q + 0.5)) > 1e-6 || floor(q + 0.5) < 1)
        return at(p, find_path(p, root, "data", "segment_seconds", NULL), "data.segment_seconds",
                  "%g s is not a positive multiple of 0.64 s (64 mel frames, what the UNet needs)",
                  d->segment_seconds);
    if (d->degradation.order_min > d->degradation.order_max)
        return at(p, find_path(p, root, "data", "degradation", "order_max"),
                  "data.degradation.order_max", "%d is below order_min %d",
                  d->degradation.order_max, d->degradation.order_min);
    if (d->degradation.cutoff_min_hz > d->degradation.cutoff_max_hz)
        return at(p, find_path(p, root, "data", "degradation", "cutoff_max_hz"),
                  "data.degradation.cutoff_max_hz", "%g Hz is below cutoff_min_hz %g Hz",
                  d->degradation.cutoff_max_hz, d->degradation.cutoff_min_hz);
    if (cfg->train.min_learning_rate > cfg->train.learning_rate)
        return at(p, find_path(p, root, "train", "min_learning_rate", NULL),
                  "train.min_learning_rate", "%g is above learning_rate %g",
                  cfg->train.min_learning_rate, cfg->train.learning_rate);
    if (cfg->train.precision == LILY_PRECISION_F16)
        return at(p, find_path(p, root, "train", "precision", NULL), "train.precision",
                  "f16 training is not supported: use f32 or bf16");
    if (cfg->inference.overlap_seconds >= cfg->inference.chunk_seconds)
        return at(p, find_path(p, root, "inference", "overlap_seconds", NULL),
                  "inference.overlap_seconds", "%g s must be shorter than chunk_seconds %g s",
                  cfg->inference.overlap_seconds, cfg->inference.chunk_seconds);
    return LILY_OK;
}

#define BIG 1e308

LilyStatus lily_project_config_parse(LilyContext *ctx, const char *text, size_t len,
                                     const char *origin, const char *base_dir,
                                     LilyProjectConfig *cfg)
{
    lily_project_config_defaults(cfg);
    LilyDataConfig *da = &cfg->data;
    LilyDatasetParams *dp = &da->params;
    LilyDegradeParams *dg = &dp->degradation;
    LilyTrainConfig *t = &cfg->train;
    LilyInferenceConfig *in = &cfg->inference;

    const Key degradation_keys[] = {
        {"filters", K_FILTERS, &dg->filters, 0, 0, 0, NULL, 0},
        {"order_min", K_INT, &dg->order_min, 1, 12, 0, NULL, 0},
        {"order_max", K_INT, &dg->order_max, 1, 12, 0, NULL, 0},
        {"cutoff_min_hz", K_DOUBLE, &dg->cutoff_min_hz, 100, 23999, 0, NULL, 0},
        {"cutoff_max_hz", K_DOUBLE, &dg->cutoff_max_hz, 100, 23999, 0, NULL, 0},
    };
    const Key data_keys[] = {
        {"sample_rate", K_INT, &da->sample_rate, 1, 1e9, 0, NULL, 0},
        {"segment_seconds", K_DOUBLE, &dp->segment_seconds, 0, 3600, 1, NULL, 0},
        {"hop_seconds", K_DOUBLE, &dp->hop_seconds, 0, 3600, 1, NULL, 0},
        {"shard_segments", K_INT, &dp->shard_segments, 1, 1000000, 0, NULL, 0},
        {"dir", K_PATH, da->dir, 0, 0, 0, NULL, 0},
        {"validation_fraction", K_DOUBLE, &dp->validation_fraction, 0, 1, 0, NULL, 0},
        {"seed", K_U64, &dp->seed, 0, 0, 0, NULL, 0},
        {"min_rms_db", K_DOUBLE, &dp->min_rms_db, -400, 0, 0, NULL, 0},
        {"max_clipped_fraction", K_DOUBLE, &dp->max_clipped_fraction, 0, 1, 0, NULL, 0},
        {"degradation", K_SECTION, NULL, 0, 0, 0, degradation_keys, 5},
    };
    const Key model_keys[] = {
        {"architecture", K_ARCH, cfg->model.architecture, 0, 0, 0, NULL, 0},
        {"init", K_PATH, cfg->model.init, 0, 0, 0, NULL, 0},
    };
    const Key train_keys[] = {
        {"stage", K_STAGE, &t->stage, 0, 0, 0, NULL, 0},
        {"out_dir", K_PATH, t->out_dir, 0, 0, 0, NULL, 0},
        {"batch_size", K_INT, &t->batch_size, 1, 65536, 0, NULL, 0},
        {"grad_accum", K_INT, &t->grad_accum, 1, 65536, 0, NULL, 0},
        {"max_steps", K_I64, &t->max_steps, 0, 1e15, 0, NULL, 0},
        {"learning_rate", K_DOUBLE, &t->learning_rate, 0, 10, 1, NULL, 0},
        {"warmup_steps", K_I64, &t->warmup_steps, 0, 1e15, 0, NULL, 0},
        {"decay", K_DECAY, &t->decay, 0, 0, 0, NULL, 0},
        {"min_learning_rate", K_DOUBLE, &t->min_learning_rate, 0, 10, 0, NULL, 0},
        {"weight_decay", K_DOUBLE, &t->weight_decay, 0, 10, 0, NULL, 0},
        {"adam_beta1", K_DOUBLE, &t->adam_beta1, 0, 0.999999999, 0, NULL, 0},
        {"adam_beta2", K_DOUBLE, &t->adam_beta2, 0, 0.999999999, 0, NULL, 0},
        {"adam_eps", K_DOUBLE, &t->adam_eps, 0, 1, 1, NULL, 0},
        {"grad_clip", K_DOUBLE, &t->grad_clip, 0, BIG, 0, NULL, 0},
        {"ema_decay", K_DOUBLE, &t->ema_decay, 0, 1, 0, NULL, 0},
        {"precision", K_PRECISION, &t->precision, 0, 0, 0, NULL, 0},
        {"unconditional_prob", K_DOUBLE, &t->unconditional_prob, 0, 1, 0, NULL, 0},
        {"log_every", K_I64, &t->log_every, 1, 1e15, 0, NULL, 0},
        {"validate_every", K_I64, &t->validate_every, 0, 1e15, 0, NULL, 0},
        {"checkpoint_every", K_I64, &t->checkpoint_every, 0, 1e15, 0, NULL, 0},
        {"seed", K_U64, &t->seed, 0, 0, 0, NULL, 0},
        {"validation_batches", K_INT, &t->validation_batches, 1, 1000000, 0, NULL, 0},
        {"validation_steps", K_INT, &t->validation_steps, 1, 1000, 0, NULL, 0},
        {"kl_weight", K_DOUBLE, &t->kl_weight, 0, 1e6, 0, NULL, 0},
        {"disc_width", K_DOUBLE, &t->disc_width, 0, 1, 1, NULL, 0},
        {"scale_by_std", K_INT, &t->scale_by_std, 0, 1, 0, NULL, 0},
    };
    const Key inference_keys[] = {
        {"model", K_PATH, in->model, 0, 0, 0, NULL, 0},
        {"device", K_DEVICE, in, 0, 0, 0, NULL, 0},
        {"precision", K_PRECISION, &in->precision, 0, 0, 0, NULL, 0},
        {"steps", K_INT, &in->steps, 1, 1000, 0, NULL, 0},
        {"guidance_scale", K_DOUBLE, &in->guidance_scale, 0, 100, 0, NULL, 0},
        {"seed", K_U64, &in->seed, 0, 0, 0, NULL, 0},
        {"chunk_seconds", K_DOUBLE, &in->chunk_seconds, 0, 3600, 1, NULL, 0},
        {"overlap_seconds", K_DOUBLE, &in->overlap_seconds, 0, 3600, 0, NULL, 0},
    };
    const Key top_keys[] = {
        {"data", K_SECTION, NULL, 0, 0, 0, data_keys, (int)(sizeof data_keys / sizeof *data_keys)},
        {"model", K_SECTION, NULL, 0, 0, 0, model_keys, 2},
        {"train", K_SECTION, NULL, 0, 0, 0, train_keys, (int)(sizeof train_keys / sizeof *train_keys)},
        {"inference", K_SECTION, NULL, 0, 0, 0, inference_keys,
         (int)(sizeof inference_keys / sizeof *inference_keys)},
    };

    P p = {.ctx = ctx, .origin = origin ? origin : "config", .base_dir = base_dir};
    /* Defaults that are paths are relative to the config file too. */
    LILY_TRY(set_path(&p, NULL, "data.dir", "data/shards", da->dir, 1));
    LILY_TRY(set_path(&p, NULL, "train.out_dir", "runs/default", t->out_dir, 1));
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "%s: cannot start the YAML parser", p.origin);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &p.doc)) {
        LilyStatus st = lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "%s:%zu:%zu: YAML syntax: %s%s%s",
                                   p.origin, parser.problem_mark.line + 1,
                                   parser.problem_mark.column + 1,
                                   parser.problem ? parser.problem : "error",
                                   parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return st;
    }
    yaml_parser_delete(&parser);
    LilyStatus st = LILY_OK;
    yaml_node_t *root = yaml_document_get_root_node(&p.doc);
    if (root && !is_null(root)) {
        if (root->type != YAML_MAPPING_NODE)
            st = at(&p, root, "config", "expected sections data:, model:, train:, inference:");
        else
            st = parse_section(&p, root, "", top_keys, 4);
    }
    if (st == LILY_OK) st = cross_checks(&p, root, cfg);
    yaml_document_delete(&p.doc);
    return st;
}

LilyStatus lily_project_config_load(LilyContext *ctx, const char *path, LilyProjectConfig *cfg)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return lily_error(ctx, LILY_ERR_IO, "cannot open config %s: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 16384;
            if (cap > ((size_t)64 << 20)) {
                free(text);
                fclose(f);
                return lily_error(ctx, LILY_ERR_FORMAT, "config %s is larger than 64 MB", path);
            }
            char *nt = realloc(text, cap);
            if (!nt) {
                free(text);
                fclose(f);
                return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory reading %s", path);
            }
            text = nt;
        }
        size_t k = fread(text + len, 1, cap - len, f);
        len += k;
        if (k == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(text);
        return lily_error(ctx, LILY_ERR_IO, "error reading config %s", path);
    }
    char base[LILY_CONFIG_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(base, sizeof base, "%.*s", (int)(slash - path), path);
    else
        snprintf(base, sizeof base, ".");
    if (slash == path) snprintf(base, sizeof base, "/");
    LilyStatus st = lily_project_config_parse(ctx, text ? text : "", len, path, base, cfg);
    free(text);
    return st;
}
