/* tools/lily-convert.c - AudioSR checkpoints (.bin/.ckpt, PyTorch zip or legacy) and Lily files
 * to a Lily model file: one .safetensors holding the weights and, in its metadata key
 * "lily.config", the model config as YAML.
 *
 *   lily-convert pytorch_model.bin audiosr-basic.safetensors
 *   lily-convert tiny-a.bin tiny-a.safetensors --config tiny-a.yaml --dtype bf16
 *   lily-convert --random 42 basic random-basic.safetensors
 *
 * The config comes from --config, else from the input's own metadata, else AudioSR's basic
 * config, and is checked against the tensors' shapes before anything is written. The file
 * keeps what super-resolution reads (UNet, condition encoder + quant_conv, decoder +
 * post_quant_conv, vocoder, scale_factor) and the first-stage encoder (training); the EMA copy,
 * CLAP, the condition VAE's decoder and vocoder and the DDPM schedule buffers are dropped
 * unless --keep-unused, and every dropped tensor is accounted for by component. --random
 * writes a model of the given config with deterministic random values instead (Philox; see
 * engine/weights/random-init.c). Built from this tree: it uses engine-internal headers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lily/lily.h>

#include "args.h"
#include "config/model-config.h"
#include "core/context.h"
#include "progress.h"
#include "weights/arch.h"
#include "weights/weights.h"

typedef struct Options {
    const char *config;
    const char *dtype;
    int keep_unused;
    const char *random_text;
    uint64_t random_seed;
    int random;
    int quiet;
} Options;

typedef struct Stats {
    int tensors;
    uint64_t params, bytes;
} Stats;

typedef struct Plan {
    Stats kept[LILY_COMP_COUNT], dropped[LILY_COMP_COUNT];
    Stats kept_total;
} Plan;

static const char *why_dropped(LilyComponent c)
{
    switch (c) {
    case LILY_COMP_UNET_EMA: return "EMA copy of the UNet; AudioSR's inference uses model.*";
    case LILY_COMP_CLAP: return "CLAP audio/text model; super-resolution never calls it";
    case LILY_COMP_COND_VAE_DECODER: return "condition VAE decoder; only its encoder runs";
    case LILY_COMP_COND_VAE_QUANT: return "condition VAE post_quant_conv; only the encoder side runs";
    case LILY_COMP_COND_VAE_VOCODER: return "condition VAE's vocoder copy; never runs";
    case LILY_COMP_DDPM_BUFFERS: return "DDPM schedule buffers; recomputed from the config";
    case LILY_COMP_UNKNOWN: return "names no AudioSR module has";
    default: return "";
    }
}

static void add_stats(Stats *s, int64_t numel, uint64_t bytes)
{
    s->tensors++;
    s->params += (uint64_t)numel;
    s->bytes += bytes;
}

static void print_plan(const Plan *p, const char *dtype_desc, int keep_unused)
{
    char a[32], b[32];
    printf("\n%-18s %8s %16s %11s\n", "component", "tensors", "parameters", "bytes");
    for (int c = 0; c < LILY_COMP_COUNT; c++) {
        const Stats *s = &p->kept[c];
        if (!s->tensors) continue;
        printf("%-18s %8d %16s %11s\n", lily_component_name((LilyComponent)c), s->tensors,
               lily_cli_format_count(a, sizeof a, s->params), lily_cli_format_bytes(b, sizeof b, s->bytes));
    }
    printf("%-18s %8d %16s %11s  (%s)\n", "total", p->kept_total.tensors,
           lily_cli_format_count(a, sizeof a, p->kept_total.params),
           lily_cli_format_bytes(b, sizeof b, p->kept_total.bytes), dtype_desc);
    int any = 0;
    for (int c = 0; c < LILY_COMP_COUNT; c++) {
        const Stats *s = &p->dropped[c];
        if (!s->tensors) continue;
        if (!any) printf("\ndropped (kept with --keep-unused):\n");
        any = 1;
        printf("  %-18s %6d tensors %16s parameters  %s\n", lily_component_name((LilyComponent)c),
               s->tensors, lily_cli_format_count(a, sizeof a, s->params), why_dropped((LilyComponent)c));
    }
    if (!any) printf("\ndropped: nothing%s\n", keep_unused ? " (--keep-unused)" : "");
}

static void on_progress(uint64_t done, uint64_t total, void *user)
{
    (void)total;
    lily_cli_progress_update(user, done);
}

static int fail(LilyContext *ctx, const char *what)
{
    fprintf(stderr, "lily-convert: %s%s%s\n", what ? what : "", what ? ": " : "",
            ctx ? lily_context_error(ctx) : "");
    return 1;
}

/* Output dtype of a float tensor: --dtype applies to matrices and kernels (2+ dimensions);
 * vectors and scalars (norms, biases, scale_factor) are kept in f32, which costs nothing and
 * keeps the numbers the model normalises with exact. */
static LilyDType out_dtype(LilyDType src, int ndim, int have_dtype, LilyDType want)
{
    int is_float = src == LILY_DTYPE_F32 || src == LILY_DTYPE_BF16 || src == LILY_DTYPE_F16;
    if (!is_float || !have_dtype) return src;
    return ndim >= 2 ? want : LILY_DTYPE_F32;
}

typedef struct Gen {
    const LilyArchTensor *t;
    const LilyModelConfig *cfg;
    uint64_t seed;
} Gen;

static LilyStatus gen_fill(void *user, uint64_t first, size_t count, float *out)
{
    const Gen *g = user;
    lily_arch_random_values(g->t, g->cfg, g->seed, first, count, out);
    return LILY_OK;
}

static int write_file(LilyContext *ctx, LilySafetensorsWriter *wr, const char *out, const Plan *plan,
                      const Options *o)
{
    LilyCliProgress *bar = lily_cli_progress_new("writing", plan->kept_total.bytes,
                                                 LILY_CLI_PROGRESS_BYTES |
                                                     (o->quiet ? LILY_CLI_PROGRESS_QUIET : 0));
    LilyStatus st = lily_safetensors_writer_write(wr, out, on_progress, bar);
    lily_cli_progress_finish(bar);
    if (st != LILY_OK) return fail(ctx, NULL);
    return 0;
}

static int set_metadata(LilyContext *ctx, LilySafetensorsWriter *wr, const LilyModelConfig *cfg,
                        const char *source, const char *dtype_desc, int keep_unused)
{
    char *yaml = NULL;
    if (lily_model_config_to_yaml(ctx, cfg, &yaml) != LILY_OK) return fail(ctx, NULL);
    const char *base = strrchr(source, '/');
    LilyStatus st = lily_safetensors_writer_set_metadata(wr, "lily.config", yaml);
    if (st == LILY_OK) st = lily_safetensors_writer_set_metadata(wr, "lily.format", "1");
    if (st == LILY_OK) st = lily_safetensors_writer_set_metadata(wr, "lily.source", base ? base + 1 : source);
    if (st == LILY_OK) st = lily_safetensors_writer_set_metadata(wr, "lily.dtype", dtype_desc);
    if (st == LILY_OK)
        st = lily_safetensors_writer_set_metadata(wr, "lily.contents", keep_unused ? "all" : "sr+train");
    if (st == LILY_OK)
        st = lily_safetensors_writer_set_metadata(wr, "lily.converter", "lily-convert " LILY_VERSION_STRING);
    free(yaml);
    return st == LILY_OK ? 0 : fail(ctx, NULL);
}

static int convert_random(LilyContext *ctx, const char *in, const char *out, const Options *o,
                          int have_dtype, LilyDType want)
{
    LilyModelConfig cfg;
    bool preset = lily_model_config_preset(in, &cfg) == LILY_OK;
    if (!preset && lily_model_config_load(ctx, in, &cfg) != LILY_OK) return fail(ctx, NULL);
    if (lily_model_config_validate(ctx, &cfg) != LILY_OK) return fail(ctx, in);
    LilyArch arch;
    if (lily_arch_build(ctx, &cfg, 0, &arch) != LILY_OK) return fail(ctx, NULL);
    Gen *gens = calloc((size_t)arch.n, sizeof *gens);
    static const int32_t zero_i32 = 0;
    LilySafetensorsWriter *wr = NULL;
    int rc = 1;
    if (!gens || lily_safetensors_writer_new(ctx, &wr) != LILY_OK) {
        fprintf(stderr, "lily-convert: out of memory\n");
        goto done;
    }
    Plan plan;
    memset(&plan, 0, sizeof plan);
    for (int i = 0; i < arch.n; i++) {
        const LilyArchTensor *t = &arch.t[i];
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= t->shape[d];
        if (t->use == LILY_USE_UNUSED && !o->keep_unused) {
            add_stats(&plan.dropped[t->comp], numel, 0);
            continue;
        }
        LilyStatus st;
        LilyDType dt = out_dtype(t->dtype, t->ndim, have_dtype, want);
        if (t->dtype == LILY_DTYPE_I32) {
            st = lily_safetensors_writer_add(wr, t->name, LILY_DTYPE_I32, LILY_DTYPE_I32, t->ndim,
                                             t->shape, &zero_i32);
        } else {
            gens[i] = (Gen){.t = t, .cfg = &cfg, .seed = o->random_seed};
            st = lily_safetensors_writer_add_generated(wr, t->name, dt, t->ndim, t->shape, gen_fill,
                                                       &gens[i]);
        }
        if (st != LILY_OK) {
            fail(ctx, NULL);
            goto done;
        }
        uint64_t bytes = (uint64_t)numel * lily_dtype_size(dt);
        add_stats(&plan.kept[t->comp], numel, bytes);
        add_stats(&plan.kept_total, numel, bytes);
    }
    char desc[96];
    snprintf(desc, sizeof desc, "random seed %llu, %s", (unsigned long long)o->random_seed,
             have_dtype ? lily_dtype_name(want) : "f32");
    char origin[160];
    snprintf(origin, sizeof origin, "built-in '%s' architecture", in);
    if (set_metadata(ctx, wr, &cfg, preset ? origin : in,
                     have_dtype ? lily_dtype_name(want) : "f32", o->keep_unused))
        goto done;
    char seed_text[32];
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)o->random_seed);
    if (lily_safetensors_writer_set_metadata(wr, "lily.random_seed", seed_text) != LILY_OK) {
        fail(ctx, NULL);
        goto done;
    }
    if (!o->quiet)
        printf("lily-convert: random weights for %s (seed %llu) -> %s\n", in,
               (unsigned long long)o->random_seed, out);
    if (write_file(ctx, wr, out, &plan, o)) goto done;
    if (!o->quiet) print_plan(&plan, desc, o->keep_unused);
    rc = 0;
done:
    lily_safetensors_writer_free(wr);
    free(gens);
    lily_arch_free(&arch);
    return rc;
}

typedef struct Report {
    int shown, limit;
} Report;

static void on_check(const LilyCheckItem *it, void *user)
{
    Report *r = user;
    if (it->kind == LILY_CHECK_COMPONENT_ABSENT || it->kind == LILY_CHECK_UNEXPECTED) return;
    if (r->shown++ >= r->limit) return;
    char a[96] = "", b[96] = "";
    if (it->expected) lily_dims_str(it->expected->shape, it->expected->ndim, a, sizeof a);
    if (it->found) lily_dims_str(it->found->shape, it->found->ndim, b, sizeof b);
    if (it->kind == LILY_CHECK_MISSING)
        fprintf(stderr, "  missing%s: %s (%s)\n", it->required ? "" : " (optional)", it->name, a);
    else if (it->kind == LILY_CHECK_SHAPE)
        fprintf(stderr, "  wrong shape: %s is %s, the config expects %s\n", it->name, b, a);
    else if (it->kind == LILY_CHECK_DTYPE)
        fprintf(stderr, "  wrong dtype: %s is %s\n", it->name, lily_dtype_name(it->found->dtype));
}

static int convert_file(LilyContext *ctx, const char *in, const char *out, const Options *o,
                        int have_dtype, LilyDType want)
{
    LilyWeights *w = NULL;
    if (lily_weights_open(ctx, in, &w) != LILY_OK) return fail(ctx, NULL);
    LilyModelConfig cfg;
    const char *source = NULL;
    LilyArch arch = {0};
    LilySafetensorsWriter *wr = NULL;
    int rc = 1;
    if (lily_weights_resolve_config(ctx, w, o->config, &cfg, &source) != LILY_OK ||
        lily_model_config_validate(ctx, &cfg) != LILY_OK) {
        fail(ctx, o->config);
        goto done;
    }
    if (!o->quiet) {
        char sz[32];
        printf("lily-convert: %s (%s, %d tensors, %s) -> %s\n", in,
               lily_weights_format_name(lily_weights_format(w)), lily_weights_count(w),
               lily_cli_format_bytes(sz, sizeof sz, lily_weights_file_size(w)), out);
        printf("config: %s%s%s, scale_factor %g\n", source, o->config ? " " : "",
               o->config ? o->config : "", (double)cfg.diffusion.scale_factor);
    }
    Report rep = {0, 20};
    if (lily_weights_check(ctx, w, &cfg, 0, on_check, &rep) != LILY_OK) {
        if (rep.shown > rep.limit) fprintf(stderr, "  ... and %d more\n", rep.shown - rep.limit);
        if (!o->config && strcmp(source, "AudioSR basic defaults") == 0)
            fprintf(stderr, "lily-convert: %s does not match AudioSR's basic config: %s\n"
                    "lily-convert: pass the checkpoint's own YAML with --config FILE\n", in,
                    lily_context_error(ctx));
        else
            fail(ctx, "the config does not fit the weights");
        goto done;
    }
    if (lily_arch_build(ctx, &cfg, LILY_ARCH_CLAP, &arch) != LILY_OK ||
        lily_safetensors_writer_new(ctx, &wr) != LILY_OK) {
        fail(ctx, NULL);
        goto done;
    }
    Plan plan;
    memset(&plan, 0, sizeof plan);
    int n = lily_weights_count(w);
    for (int i = 0; i < n; i++) {
        const LilyWeight *t = lily_weights_at(w, i);
        int k = lily_arch_find(&arch, t->name);
        LilyComponent comp = k >= 0 ? arch.t[k].comp : lily_component_of_name(t->name);
        LilyUse use = k >= 0 ? arch.t[k].use : LILY_USE_UNUSED;
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) numel *= t->shape[d];
        if (use == LILY_USE_UNUSED && !o->keep_unused) {
            add_stats(&plan.dropped[k >= 0 ? comp : LILY_COMP_UNKNOWN], numel, t->nbytes);
            continue;
        }
        double bad_value = 0;
        int64_t bad = lily_weight_first_nonfinite(t, &bad_value);
        if (bad >= 0) {
            fprintf(stderr, "lily-convert: %s: tensor '%s' holds %g at element %lld (file offset "
                    "%llu): the checkpoint is damaged; nothing was written\n", in, t->name, bad_value,
                    (long long)bad, (unsigned long long)(t->file_offset + (uint64_t)bad * lily_dtype_size(t->dtype)));
            goto done;
        }
        LilyDType dt = out_dtype(t->dtype, t->ndim, have_dtype, want);
        if (lily_safetensors_writer_add(wr, t->name, dt, t->dtype, t->ndim, t->shape, t->data) != LILY_OK) {
            fail(ctx, NULL);
            goto done;
        }
        uint64_t bytes = (uint64_t)numel * lily_dtype_size(dt);
        add_stats(&plan.kept[comp], numel, bytes);
        add_stats(&plan.kept_total, numel, bytes);
    }
    const char *dtype_desc = have_dtype ? lily_dtype_name(want) : "as stored";
    if (set_metadata(ctx, wr, &cfg, in, dtype_desc, o->keep_unused)) goto done;
    if (write_file(ctx, wr, out, &plan, o)) goto done;
    if (!o->quiet) print_plan(&plan, dtype_desc, o->keep_unused);
    rc = 0;
done:
    lily_safetensors_writer_free(wr);
    lily_arch_free(&arch);
    lily_weights_close(w);
    return rc;
}

int main(int argc, char **argv)
{
    Options o = {0};
    const LilyCliOption opts[] = {
        {"config", 'c', LILY_CLI_STRING, &o.config, "FILE",
         "AudioSR model YAML (default: the input's embedded config, else AudioSR basic)"},
        {"dtype", 'd', LILY_CLI_STRING, &o.dtype, "f32|bf16|f16",
         "store weight matrices in this type (vectors stay f32; default: as stored)"},
        {"keep-unused", 0, LILY_CLI_FLAG, &o.keep_unused, NULL,
         "also keep EMA, CLAP, the condition decoder/vocoder and schedule buffers"},
        {"random", 0, LILY_CLI_STRING, &o.random_text, "SEED",
         "no input weights: IN is a config YAML, 'basic' or 'tiny'; write random weights"},
        {"quiet", 'q', LILY_CLI_FLAG, &o.quiet, NULL, "print only errors"},
    };
    const LilyCliSpec spec = {
        .prog = "lily-convert",
        .usage = "IN OUT [options]",
        .summary = "Converts an AudioSR checkpoint (.bin/.ckpt) or a Lily .safetensors file to a Lily\n"
                   "model file (.safetensors with the model config embedded), keeping what\n"
                   "super-resolution and training need and listing what it drops.",
        .options = opts,
        .n_options = (int)(sizeof opts / sizeof opts[0]),
        .min_positional = 2,
        .max_positional = 2,
        .epilog = "Examples:\n"
                  "  lily-convert pytorch_model.bin audiosr-basic.safetensors\n"
                  "  lily-convert tiny-a.bin tiny-a.safetensors --config tiny-a.yaml --dtype bf16\n"
                  "  lily-convert --random 42 basic random-basic.safetensors",
    };
    const char *pos[2];
    int n_pos = 0;
    int r = lily_cli_parse(&spec, argc, argv, pos, &n_pos);
    if (r == LILY_CLI_EXIT) return 0;
    if (r == LILY_CLI_ERROR) return 2;
    if (o.random_text) {
        char *end = NULL;
        o.random_seed = strtoull(o.random_text, &end, 0);
        if (!o.random_text[0] || *end || o.random_text[0] == '-') {
            fprintf(stderr, "lily-convert: --random expects a seed (a non-negative integer), not '%s'\n",
                    o.random_text);
            return 2;
        }
        o.random = 1;
    }
    LilyDType want = LILY_DTYPE_F32;
    int have_dtype = o.dtype != NULL;
    if (have_dtype && (lily_dtype_from_name(o.dtype, &want) != LILY_OK ||
                       (want != LILY_DTYPE_F32 && want != LILY_DTYPE_BF16 && want != LILY_DTYPE_F16))) {
        fprintf(stderr, "lily-convert: --dtype must be f32, bf16 or f16, not '%s'\n", o.dtype);
        return 2;
    }
    if (o.random && o.config) {
        fprintf(stderr, "lily-convert: with --random the config is IN; drop --config\n");
        return 2;
    }
    char err[512];
    LilyContext *ctx = NULL;
    if (lily_context_new(NULL, &ctx, err, sizeof err) != LILY_OK) {
        fprintf(stderr, "lily-convert: %s\n", err);
        return 1;
    }
    int rc = o.random ? convert_random(ctx, pos[0], pos[1], &o, have_dtype, want)
                      : convert_file(ctx, pos[0], pos[1], &o, have_dtype, want);
    lily_context_free(ctx);
    return rc;
}
