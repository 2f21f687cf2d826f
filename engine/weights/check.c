/* weights/check.c - the compatibility report: a weights file against the tensors its config
 * describes (arch.h), plus a scan for NaN and infinity.
 *
 * The tensors of one use (sr, train, unused) within a component that are all absent are one
 * finding (a converted Lily file has no EMA and no schedule buffers); when only some of them
 * are absent every missing name is listed. Only problems in tensors super-resolution reads make the check fail; the rest
 * is reported so nothing is dropped or ignored silently. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "weights/arch.h"

LilyStatus lily_weights_resolve_config(LilyContext *ctx, const LilyWeights *w,
                                       const char *config_path, LilyModelConfig *cfg,
                                       const char **source)
{
    const char *yaml = lily_weights_metadata(w, "lily.config");
    const char *src;
    if (config_path) {
        LILY_TRY(lily_model_config_load(ctx, config_path, cfg));
        src = "config file";
    } else if (yaml) {
        char origin[600];
        snprintf(origin, sizeof origin, "%s (metadata lily.config)", lily_weights_path(w));
        LILY_TRY(lily_model_config_parse(ctx, yaml, strlen(yaml), origin, cfg));
        src = "embedded";
    } else {
        lily_model_config_basic(cfg);
        src = "AudioSR basic defaults";
    }
    const LilyWeight *sf = lily_weights_find(w, "scale_factor");
    if (sf && sf->ndim == 0 && sf->dtype == LILY_DTYPE_F32 && sf->nbytes == 4)
        memcpy(&cfg->diffusion.scale_factor, sf->data, 4);
    else if (sf && sf->ndim == 0 && (sf->dtype == LILY_DTYPE_BF16 || sf->dtype == LILY_DTYPE_F16) &&
             sf->nbytes == 2) {
        uint16_t h;
        memcpy(&h, sf->data, 2);
        cfg->diffusion.scale_factor = sf->dtype == LILY_DTYPE_BF16 ? lily_bf16_to_f32(h) : lily_f16_to_f32(h);
    }
    if (source) *source = src;
    return LILY_OK;
}

int64_t lily_weight_first_nonfinite(const LilyWeight *t, double *value)
{
    size_t n = t->nbytes / (t->dtype == LILY_DTYPE_F32 ? 4 : 2);
    if (t->dtype == LILY_DTYPE_F32) {
        const uint8_t *p = t->data;
        for (size_t i = 0; i < n; i++) {
            uint32_t b;
            memcpy(&b, p + 4 * i, 4);
            if ((b & 0x7f800000u) == 0x7f800000u) {
                float f;
                memcpy(&f, &b, 4);
                *value = f;
                return (int64_t)i;
            }
        }
    } else if (t->dtype == LILY_DTYPE_BF16 || t->dtype == LILY_DTYPE_F16) {
        uint16_t mask = t->dtype == LILY_DTYPE_BF16 ? 0x7f80u : 0x7c00u;
        const uint8_t *p = t->data;
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            if ((h & mask) == mask) {
                *value = t->dtype == LILY_DTYPE_BF16 ? lily_bf16_to_f32(h) : lily_f16_to_f32(h);
                return (int64_t)i;
            }
        }
    }
    return -1;
}

static int is_float(LilyDType t)
{
    return t == LILY_DTYPE_F32 || t == LILY_DTYPE_BF16 || t == LILY_DTYPE_F16;
}

typedef struct Index {
    int *slots;
    size_t mask;
} Index;

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int index_build(Index *ix, const LilyArch *a)
{
    size_t n = 64;
    while (n < 2 * (size_t)a->n) n *= 2;
    ix->slots = calloc(n, sizeof *ix->slots);
    if (!ix->slots) return 0;
    ix->mask = n - 1;
    for (int i = 0; i < a->n; i++) {
        size_t s = hash(a->t[i].name) & ix->mask;
        while (ix->slots[s]) s = (s + 1) & ix->mask;
        ix->slots[s] = i + 1;
    }
    return 1;
}

static int index_find(const Index *ix, const LilyArch *a, const char *name)
{
    size_t s = hash(name) & ix->mask;
    while (ix->slots[s]) {
        if (strcmp(a->t[ix->slots[s] - 1].name, name) == 0) return ix->slots[s] - 1;
        s = (s + 1) & ix->mask;
    }
    return -1;
}

typedef struct Tally {
    int missing, absent, unexpected, shape, dtype, nonfinite, required;
    char first[768];
    LilyStatus first_status;
} Tally;

static void note(Tally *t, const LilyCheckItem *it, LilyCheckReportFn report, void *user)
{
    switch (it->kind) {
    case LILY_CHECK_MISSING: t->missing++; break;
    case LILY_CHECK_COMPONENT_ABSENT: t->absent++; break;
    case LILY_CHECK_UNEXPECTED: t->unexpected++; break;
    case LILY_CHECK_SHAPE: t->shape++; break;
    case LILY_CHECK_DTYPE: t->dtype++; break;
    case LILY_CHECK_NONFINITE: t->nonfinite++; break;
    }
    if (it->required && t->required++ == 0) {
        char a[96] = "", b[96] = "";
        if (it->expected) lily_dims_str(it->expected->shape, it->expected->ndim, a, sizeof a);
        if (it->found) lily_dims_str(it->found->shape, it->found->ndim, b, sizeof b);
        switch (it->kind) {
        case LILY_CHECK_MISSING:
            snprintf(t->first, sizeof t->first, "tensor '%s' (%s) is missing", it->name, a);
            t->first_status = LILY_ERR_SHAPE;
            break;
        case LILY_CHECK_COMPONENT_ABSENT:
            snprintf(t->first, sizeof t->first, "the %s (%d tensors) is absent", it->name, it->count);
            if (it->comp == LILY_COMP_DDPM_BUFFERS)
                snprintf(t->first, sizeof t->first, "tensor 'scale_factor' is missing");
            t->first_status = LILY_ERR_SHAPE;
            break;
        case LILY_CHECK_SHAPE:
            snprintf(t->first, sizeof t->first, "tensor '%s' is %s, the config expects %s", it->name,
                     b, a);
            t->first_status = LILY_ERR_SHAPE;
            break;
        case LILY_CHECK_DTYPE:
            snprintf(t->first, sizeof t->first, "tensor '%s' has dtype %s, the model needs %s",
                     it->name, lily_dtype_name(it->found->dtype), lily_dtype_name(it->expected->dtype));
            t->first_status = LILY_ERR_SHAPE;
            break;
        case LILY_CHECK_NONFINITE:
            snprintf(t->first, sizeof t->first, "tensor '%s' holds %g at element %lld (file offset "
                     "%llu)", it->name, it->bad_value, (long long)it->bad_index,
                     (unsigned long long)(it->found->file_offset +
                                          (uint64_t)it->bad_index * lily_dtype_size(it->found->dtype)));
            t->first_status = LILY_ERR_NUMERIC;
            break;
        default: break;
        }
    }
    if (report) report(it, user);
}

LilyStatus lily_weights_check(LilyContext *ctx, const LilyWeights *w, const LilyModelConfig *cfg,
                              unsigned flags, LilyCheckReportFn report, void *user)
{
    LilyArch arch;
    LILY_TRY(lily_arch_build(ctx, cfg, (flags & LILY_CHECK_CLAP) ? LILY_ARCH_CLAP : 0, &arch));
    Index ix = {0};
    const LilyWeight **found = calloc((size_t)arch.n + 1, sizeof *found);
    if (!found || !index_build(&ix, &arch)) {
        free(found);
        free(ix.slots);
        lily_arch_free(&arch);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "weights check: out of memory");
    }
    enum { N_USE = 3 };
    int present[LILY_COMP_COUNT][N_USE] = {{0}}, total[LILY_COMP_COUNT][N_USE] = {{0}};
    for (int i = 0; i < arch.n; i++) {
        const LilyArchTensor *t = &arch.t[i];
        found[i] = lily_weights_find(w, t->name);
        if (t->optional) continue;
        total[t->comp][t->use]++;
        if (found[i]) present[t->comp][t->use]++;
    }
    Tally tally = {0};
    for (int c = 0; c < LILY_COMP_COUNT; c++) {
        for (int u = 0; u < N_USE; u++) {
            if (!total[c][u] || present[c][u]) continue;
            LilyCheckItem it = {.kind = LILY_CHECK_COMPONENT_ABSENT, .name = lily_component_name(c),
                                .comp = (LilyComponent)c, .use = (LilyUse)u,
                                .required = u == LILY_USE_SR, .count = total[c][u], .bad_index = -1};
            note(&tally, &it, report, user);
        }
    }
    for (int i = 0; i < arch.n; i++) {
        const LilyArchTensor *t = &arch.t[i];
        const LilyWeight *f = found[i];
        LilyCheckItem it = {.name = t->name, .comp = t->comp, .use = t->use,
                            .required = t->use == LILY_USE_SR, .expected = t, .found = f,
                            .bad_index = -1};
        if (!f) {
            if (t->optional || !present[t->comp][t->use]) continue;
            it.kind = LILY_CHECK_MISSING;
            note(&tally, &it, report, user);
            continue;
        }
        int same = f->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = f->shape[d] == t->shape[d];
        if (!same) {
            it.kind = LILY_CHECK_SHAPE;
            note(&tally, &it, report, user);
        } else if (is_float(f->dtype) != is_float(t->dtype)) {
            it.kind = LILY_CHECK_DTYPE;
            note(&tally, &it, report, user);
        }
    }
    for (int i = 0; i < lily_weights_count(w); i++) {
        const LilyWeight *f = lily_weights_at(w, i);
        int k = index_find(&ix, &arch, f->name);
        if (k < 0 && !(strncmp(f->name, "clap.", 5) == 0 && !(flags & LILY_CHECK_CLAP))) {
            LilyCheckItem it = {.kind = LILY_CHECK_UNEXPECTED, .name = f->name,
                                .comp = lily_component_of_name(f->name), .use = LILY_USE_UNUSED,
                                .found = f, .bad_index = -1};
            note(&tally, &it, report, user);
        }
        if ((flags & LILY_CHECK_VALUES) && is_float(f->dtype)) {
            double v = 0;
            int64_t bad = lily_weight_first_nonfinite(f, &v);
            if (bad >= 0) {
                LilyCheckItem it = {.kind = LILY_CHECK_NONFINITE, .name = f->name,
                                    .comp = k >= 0 ? arch.t[k].comp : lily_component_of_name(f->name),
                                    .use = k >= 0 ? arch.t[k].use : LILY_USE_UNUSED,
                                    .required = k >= 0 && arch.t[k].use == LILY_USE_SR,
                                    .expected = k >= 0 ? &arch.t[k] : NULL, .found = f,
                                    .bad_index = bad, .bad_value = v};
                note(&tally, &it, report, user);
            }
        }
    }
    free(found);
    free(ix.slots);
    lily_arch_free(&arch);
    if (!tally.required) return LILY_OK;
    const char *hint = tally.first_status == LILY_ERR_NUMERIC
                           ? "the file's values are damaged; convert the checkpoint again"
                           : "the config does not describe this file: pass the checkpoint's own "
                             "YAML (--config) or check the model config's widths";
    return lily_error(ctx, tally.first_status, "%s: %s (%d of the findings stop super-resolution; "
                      "in all %d missing, %d absent groups, %d wrong shapes, %d wrong dtypes, %d "
                      "with NaN/Inf); %s", lily_weights_path(w), tally.first, tally.required, tally.missing,
                      tally.absent, tally.shape, tally.dtype, tally.nonfinite, hint);
}
