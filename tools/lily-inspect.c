/* tools/lily-inspect.c - what a model file holds: format, metadata, the model config, parameter
 * counts per component, dtypes, the module tree, and the compatibility report (every tensor
 * the config's model needs, present with its shape; optionally no NaN/Inf).
 *
 *   lily-inspect pytorch_model.bin
 *   lily-inspect tiny-a.bin --config tiny-a.yaml --tensors
 *   lily-inspect tiny-a.safetensors --check
 *
 * Reads AudioSR checkpoints (.bin/.ckpt) and Lily .safetensors alike, so inspecting a
 * checkpoint and its conversion shows the same tensors. Exits 1 when the file cannot serve
 * super-resolution (missing or wrongly shaped tensors, NaN/Inf with --check). Built from this
 * tree: it uses engine-internal headers. */
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

#define MAX_DEPTH 12

typedef struct Options {
    const char *config;
    int tensors, check, yaml, depth, all;
} Options;

typedef struct Node {
    int depth;       /* 1.. for modules; leaves (tensors) carry their parent's depth + 1 */
    int is_tensor;
    char label[160];
    int tensors;
    uint64_t params;
    const LilyWeight *t;
} Node;

typedef struct Tree {
    Node *n;
    int count, cap;
} Tree;

static Node *tree_add(Tree *tr)
{
    if (tr->count == tr->cap) {
        int cap = tr->cap ? tr->cap * 2 : 256;
        Node *n = realloc(tr->n, (size_t)cap * sizeof *n);
        if (!n) return NULL;
        tr->n = n;
        tr->cap = cap;
    }
    Node *n = &tr->n[tr->count++];
    memset(n, 0, sizeof *n);
    return n;
}

static int64_t numel_of(const LilyWeight *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

/* Groups tensors by their dotted module path, in file order (a state dict lists each module's
 * tensors together), down to max_depth levels. */
static int build_tree(const LilyWeights *w, int max_depth, int with_tensors, Tree *tr)
{
    char cur[MAX_DEPTH + 1][256];
    int node_at[MAX_DEPTH + 1];
    int cur_depth = 0;
    for (int i = 0; i < lily_weights_count(w); i++) {
        const LilyWeight *t = lily_weights_at(w, i);
        char parts[MAX_DEPTH + 1][160];
        int np = 0;
        const char *s = t->name;
        while (np < MAX_DEPTH) {
            const char *dot = strchr(s, '.');
            size_t len = dot ? (size_t)(dot - s) : strlen(s);
            snprintf(parts[np++], sizeof parts[0], "%.*s", (int)len, s);
            if (!dot) break;
            s = dot + 1;
        }
        int groups = np - 1; /* the last part names the tensor */
        if (groups == 0) {
            snprintf(parts[1], sizeof parts[1], "%s", parts[0]);
            snprintf(parts[0], sizeof parts[0], "(top-level buffers)");
            groups = 1;
        }
        if (groups > max_depth) groups = max_depth;
        char prefix[256] = "";
        int d;
        for (d = 1; d <= groups; d++) {
            size_t used = strlen(prefix);
            snprintf(prefix + used, sizeof prefix - used, "%s%s", d > 1 ? "." : "", parts[d - 1]);
            if (d > cur_depth || strcmp(cur[d], prefix) != 0) {
                Node *n = tree_add(tr);
                if (!n) return 0;
                n->depth = d;
                snprintf(n->label, sizeof n->label, "%s", parts[d - 1]);
                snprintf(cur[d], sizeof cur[d], "%s", prefix);
                node_at[d] = tr->count - 1;
                cur_depth = d;
            }
            tr->n[node_at[d]].tensors++;
            tr->n[node_at[d]].params += (uint64_t)numel_of(t);
        }
        cur_depth = groups;
        if (with_tensors) {
            Node *n = tree_add(tr);
            if (!n) return 0;
            n->depth = groups + 1;
            n->is_tensor = 1;
            n->t = t;
            /* The rest of the name below the deepest group. */
            const char *rest = t->name;
            for (int k = 0; k < groups && strchr(rest, '.'); k++) rest = strchr(rest, '.') + 1;
            if (strcmp(parts[0], "(top-level buffers)") == 0) rest = t->name;
            snprintf(n->label, sizeof n->label, "%s", rest);
        }
    }
    return 1;
}

static void print_tree(const Tree *tr)
{
    char a[32], sh[96];
    for (int i = 0; i < tr->count; i++) {
        const Node *n = &tr->n[i];
        int indent = 2 * n->depth;
        if (n->is_tensor)
            printf("%*s%-*s %-18s %s\n", indent, "", 56 - indent > 8 ? 56 - indent : 8, n->label,
                   lily_dims_str(n->t->shape, n->t->ndim, sh, sizeof sh),
                   lily_dtype_name(n->t->dtype));
        else
            printf("%*s%-*s %6d tensors %14s params\n", indent, "", 56 - indent > 8 ? 56 - indent : 8,
                   n->label, n->tensors, lily_cli_format_count(a, sizeof a, n->params));
    }
}

static void list_ints(char *buf, size_t len, const int *v, int n)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < n && k < len; i++) k += (size_t)snprintf(buf + k, len - k, "%s%d", i ? ", " : "", v[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

static void print_vae(const char *label, const LilyVaeConfig *v)
{
    char m[64];
    list_ints(m, sizeof m, v->ch_mult, v->n_levels);
    printf("  %-10s ch %d, ch_mult %s, %d res blocks, z %d, embed %d\n", label, v->ch, m,
           v->num_res_blocks, v->z_channels, v->embed_dim);
}

static void print_config(const LilyModelConfig *c, const char *source)
{
    char a[64], b[64], k[64];
    printf("\nconfig (%s):\n", source);
    const LilyUNetConfig *u = &c->unet;
    list_ints(a, sizeof a, u->channel_mult, u->n_levels);
    list_ints(b, sizeof b, u->attention_resolutions, u->n_attention_resolutions);
    printf("  %-10s in %d, out %d, model_channels %d, channel_mult %s, %d res blocks, attention at "
           "%s, head channels %d%s\n", "unet", u->in_channels, u->out_channels, u->model_channels, a,
           u->num_res_blocks, b, u->num_head_channels, u->extra_sa_layer ? ", extra_sa_layer" : "");
    print_vae("vae", &c->vae);
    print_vae("cond vae", &c->cond_vae);
    const LilyVocoderConfig *v = &c->vocoder;
    list_ints(a, sizeof a, v->upsample_rates, v->n_upsamples);
    list_ints(b, sizeof b, v->upsample_kernel_sizes, v->n_upsamples);
    list_ints(k, sizeof k, v->resblock_kernel_sizes, v->n_resblocks);
    printf("  %-10s %d mels, upsample %s (kernels %s), initial channel %d, resblock kernels %s\n",
           "vocoder", v->num_mels, a, b, v->upsample_initial_channel, k);
    const LilyDiffusionConfig *d = &c->diffusion;
    printf("  %-10s %d timesteps, %s schedule, %s-prediction, scale_factor %g, latent %d channels\n",
           "diffusion", d->timesteps, d->beta_schedule, d->parameterization, (double)d->scale_factor,
           d->latent_channels);
}

typedef struct Report {
    const Options *o;
    int lines[8];
    int printed;
} Report;

static void on_item(const LilyCheckItem *it, void *user)
{
    Report *r = user;
    char a[96] = "", b[96] = "";
    if (it->expected) lily_dims_str(it->expected->shape, it->expected->ndim, a, sizeof a);
    if (it->found) lily_dims_str(it->found->shape, it->found->ndim, b, sizeof b);
    int limit = r->o->all ? 1 << 30 : 25;
    if (r->lines[it->kind]++ >= limit) return;
    r->printed++;
    const char *use = lily_use_name(it->use);
    switch (it->kind) {
    case LILY_CHECK_COMPONENT_ABSENT:
        printf("  %-9s %s: %s%d %s tensor%s absent%s\n", it->required ? "MISSING" : "absent", it->name,
               it->count > 1 ? "all " : "", it->count, lily_use_name(it->use), it->count > 1 ? "s" : "",
               it->required ? " (needed for super-resolution)"
               : it->use == LILY_USE_TRAIN ? " (training only)" : " (not used by super-resolution)");
        break;
    case LILY_CHECK_MISSING:
        printf("  %-9s %s (%s) [%s, %s]\n", it->required ? "MISSING" : "missing", it->name, a,
               lily_component_name(it->comp), use);
        break;
    case LILY_CHECK_UNEXPECTED:
        printf("  %-9s %s (%s) [%s]\n", "extra", it->name, b, lily_component_name(it->comp));
        break;
    case LILY_CHECK_SHAPE:
        printf("  %-9s %s is %s, the config expects %s [%s]\n", it->required ? "SHAPE" : "shape",
               it->name, b, a, use);
        break;
    case LILY_CHECK_DTYPE:
        printf("  %-9s %s is %s, expected %s\n", "DTYPE", it->name, lily_dtype_name(it->found->dtype),
               lily_dtype_name(it->expected->dtype));
        break;
    case LILY_CHECK_NONFINITE:
        printf("  %-9s %s holds %g at element %lld [%s]\n", it->required ? "NAN/INF" : "nan/inf",
               it->name, it->bad_value, (long long)it->bad_index, lily_component_name(it->comp));
        break;
    }
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    Options o = {.depth = 3};
    const LilyCliOption opts[] = {
        {"config", 'c', LILY_CLI_STRING, &o.config, "FILE",
         "AudioSR model YAML to check against (default: embedded, else AudioSR basic)"},
        {"tensors", 't', LILY_CLI_FLAG, &o.tensors, NULL, "list every tensor with its shape and dtype"},
        {"depth", 0, LILY_CLI_INT, &o.depth, "N", "module tree depth (default 3)"},
        {"check", 0, LILY_CLI_FLAG, &o.check, NULL, "also scan every value for NaN and infinity"},
        {"yaml", 0, LILY_CLI_FLAG, &o.yaml, NULL, "print the whole model config as YAML"},
        {"all", 0, LILY_CLI_FLAG, &o.all, NULL, "print every finding (default: 25 of each kind)"},
    };
    const LilyCliSpec spec = {
        .prog = "lily-inspect",
        .usage = "FILE [options]",
        .summary = "Shows what a model file (.bin/.ckpt AudioSR checkpoint or Lily .safetensors)\n"
                   "holds and whether it fits the model its config describes.",
        .options = opts,
        .n_options = (int)(sizeof opts / sizeof opts[0]),
        .min_positional = 1,
        .max_positional = 1,
        .epilog = "Exit status: 0 when every tensor super-resolution reads is present with its\n"
                  "shape (and, with --check, finite); 1 otherwise; 2 on a usage error.",
    };
    const char *pos[1];
    int n_pos;
    int r = lily_cli_parse(&spec, argc, argv, pos, &n_pos);
    if (r == LILY_CLI_EXIT) return 0;
    if (r == LILY_CLI_ERROR) return 2;
    if (o.depth < 1 || o.depth > MAX_DEPTH) {
        fprintf(stderr, "lily-inspect: --depth must be 1 to %d\n", MAX_DEPTH);
        return 2;
    }
    char err[512];
    LilyContext *ctx = NULL;
    if (lily_context_new(NULL, &ctx, err, sizeof err) != LILY_OK) {
        fprintf(stderr, "lily-inspect: %s\n", err);
        return 1;
    }
    LilyWeights *w = NULL;
    int rc = 1;
    Tree tree = {0};
    if (lily_weights_open(ctx, pos[0], &w) != LILY_OK) {
        fprintf(stderr, "lily-inspect: %s\n", lily_context_error(ctx));
        goto done;
    }
    int n = lily_weights_count(w);
    int *storages = malloc((size_t)(n ? n : 1) * sizeof *storages);
    int n_storage = 0, dtype_count[LILY_DTYPE_COUNT] = {0};
    uint64_t dtype_bytes[LILY_DTYPE_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        const LilyWeight *t = lily_weights_at(w, i);
        if (storages) storages[i] = t->storage;
        if (t->dtype >= 0 && t->dtype < LILY_DTYPE_COUNT) {
            dtype_count[t->dtype]++;
            dtype_bytes[t->dtype] += t->nbytes;
        }
    }
    if (storages) {
        qsort(storages, (size_t)n, sizeof *storages, cmp_int);
        for (int i = 0; i < n; i++) n_storage += (i == 0 || storages[i] != storages[i - 1]);
        free(storages);
    }
    char a[32], b[32];
    printf("file:     %s\n", pos[0]);
    printf("format:   %s, %s, %d tensors in %d storages%s\n",
           lily_weights_format_name(lily_weights_format(w)),
           lily_cli_format_bytes(a, sizeof a, lily_weights_file_size(w)), n, n_storage,
           n_storage < n ? " (some tensors share storage)" : "");
    printf("dtypes:  ");
    for (int d = 0; d < LILY_DTYPE_COUNT; d++)
        if (dtype_count[d])
            printf(" %s %d (%s)", lily_dtype_name((LilyDType)d), dtype_count[d],
                   lily_cli_format_bytes(a, sizeof a, dtype_bytes[d]));
    printf("\n");
    for (int i = 0; i < lily_weights_metadata_count(w); i++) {
        const char *k, *v;
        lily_weights_metadata_at(w, i, &k, &v);
        if (strcmp(k, "lily.config") == 0) continue;
        int len = (int)strcspn(v, "\n");
        printf("metadata: %s = %.*s%s\n", k, len > 100 ? 100 : len, v, (len > 100 || v[len]) ? " ..." : "");
    }
    LilyModelConfig cfg;
    const char *source = NULL;
    if (lily_weights_resolve_config(ctx, w, o.config, &cfg, &source) != LILY_OK) {
        fprintf(stderr, "lily-inspect: %s\n", lily_context_error(ctx));
        goto done;
    }
    print_config(&cfg, source);
    if (lily_model_config_validate(ctx, &cfg) != LILY_OK) {
        fprintf(stderr, "lily-inspect: %s\n", lily_context_error(ctx));
        goto done;
    }
    if (o.yaml) {
        char *y = NULL;
        if (lily_model_config_to_yaml(ctx, &cfg, &y) == LILY_OK) printf("\n%s", y);
        free(y);
    }

    /* Parameters per component, by the config's architecture (unknown names by prefix). */
    LilyArch arch;
    if (lily_arch_build(ctx, &cfg, LILY_ARCH_CLAP, &arch) != LILY_OK) {
        fprintf(stderr, "lily-inspect: %s\n", lily_context_error(ctx));
        goto done;
    }
    int ct[LILY_COMP_COUNT] = {0}, best_use[LILY_COMP_COUNT];
    for (int c = 0; c < LILY_COMP_COUNT; c++) best_use[c] = LILY_USE_UNUSED;
    uint64_t cp[LILY_COMP_COUNT] = {0}, cb[LILY_COMP_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        const LilyWeight *t = lily_weights_at(w, i);
        int k = lily_arch_find(&arch, t->name);
        LilyComponent c = k >= 0 ? arch.t[k].comp : lily_component_of_name(t->name);
        if (k < 0 && c != LILY_COMP_CLAP) c = LILY_COMP_UNKNOWN;
        if (k >= 0 && (int)arch.t[k].use < best_use[c]) best_use[c] = (int)arch.t[k].use;
        ct[c]++;
        cp[c] += (uint64_t)numel_of(t);
        cb[c] += t->nbytes;
    }
    lily_arch_free(&arch);
    printf("\n%-18s %-7s %8s %16s %11s\n", "component", "use", "tensors", "parameters", "bytes");
    uint64_t tp = 0, tb = 0;
    for (int c = 0; c < LILY_COMP_COUNT; c++) {
        if (!ct[c]) continue;
        printf("%-18s %-7s %8d %16s %11s\n", lily_component_name((LilyComponent)c),
               lily_use_name((LilyUse)best_use[c]), ct[c],
               lily_cli_format_count(a, sizeof a, cp[c]), lily_cli_format_bytes(b, sizeof b, cb[c]));
        tp += cp[c];
        tb += cb[c];
    }
    printf("%-18s %-7s %8d %16s %11s\n", "total", "", n, lily_cli_format_count(a, sizeof a, tp),
           lily_cli_format_bytes(b, sizeof b, tb));

    printf("\nmodules%s:\n", o.tensors ? " and tensors" : "");
    if (!build_tree(w, o.depth, o.tensors, &tree)) {
        fprintf(stderr, "lily-inspect: out of memory\n");
        goto done;
    }
    print_tree(&tree);

    printf("\ncompatibility with the config's model%s:\n", o.check ? " (values scanned)" : "");
    Report rep = {.o = &o};
    LilyStatus st = lily_weights_check(ctx, w, &cfg, o.check ? LILY_CHECK_VALUES : 0, on_item, &rep);
    for (int k = 0; k < 8; k++)
        if (rep.lines[k] > 25 && !o.all) printf("  ... %d more of this kind (--all shows them)\n", rep.lines[k] - 25);
    if (st == LILY_OK) {
        printf("  OK: every tensor super-resolution reads is present with the expected shape%s\n",
               o.check ? " and finite" : "");
        rc = 0;
    } else {
        printf("  NOT COMPATIBLE: %s\n", lily_context_error(ctx));
    }
done:
    free(tree.n);
    lily_weights_close(w);
    lily_context_free(ctx);
    return rc;
}
