/* train/dataset-reader.c - reads a dataset folder for training (docs/datasets.md): the index,
 * memory-mapped shards (weights/weights.c), per-segment metadata, the train/validation split,
 * per-epoch shuffles, batch assembly and the full consistency check behind `lily-dataset
 * verify`.
 *
 * Only what the index vouches for is served: the first `segments` slots of each listed shard,
 * minus dropped slots, minus segments of sources that are not complete. That is what makes a
 * folder left by a killed job readable as it stands. */
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/philox.h"
#include "core/status.h"
#include "train/dataset.h"
#include "weights/json.h"
#include "weights/weights.h"

#define SHUFFLE_TAG 0x53485546u /* "SHUF": Philox stream of the epoch shuffles */

typedef struct RSeg {
    int shard, slot, source;
    int64_t offset, index, valid;
    LilyLowKind kind;
    LilyDegradation deg;
    int desc; /* index into ds->descs (stream kind) */
    int delay;
    float hr, hp, lr, lp;
    const float *h, *l, *mh, *ml;
} RSeg;

struct LilyDataset {
    LilyContext *ctx;
    char *dir;
    LilyDsIndex idx;
    LilyWeights **shards;
    RSeg *segs;
    size_t n_segs;
    size_t *list[2]; /* segment numbers of the train and validation splits */
    size_t n_list[2];
    char **descs;
    int n_descs;
    double seconds;
};

static LilyStatus shard_bad(LilyDataset *ds, int s, const char *what)
{
    return lily_error(ds->ctx, LILY_ERR_FORMAT, "dataset %s: %s: %s; run lily-dataset verify",
                      ds->dir, ds->idx.shards[s].file, what);
}

static const float *tensor(LilyDataset *ds, int s, int slot, const char *part, int ndim,
                           int64_t d0, int64_t d1, LilyStatus *st)
{
    char name[64];
    snprintf(name, sizeof name, "seg.%d.%s", slot, part);
    const LilyWeight *t = lily_weights_find(ds->shards[s], name);
    if (!t || t->dtype != LILY_DTYPE_F32 || t->ndim != ndim || t->shape[0] != d0 ||
        (ndim == 2 && t->shape[1] != d1)) {
        char msg[160];
        snprintf(msg, sizeof msg, "tensor %s is missing or not f32 [%" PRId64 "%s]", name, d0,
                 ndim == 2 ? ", 256" : "");
        *st = shard_bad(ds, s, msg);
        return NULL;
    }
    return t->data;
}

static int intern_desc(LilyDataset *ds, const char *s)
{
    for (int i = 0; i < ds->n_descs; i++)
        if (strcmp(ds->descs[i], s) == 0) return i;
    char **nd = realloc(ds->descs, (size_t)(ds->n_descs + 1) * sizeof *nd);
    if (!nd) return -1;
    ds->descs = nd;
    ds->descs[ds->n_descs] = strdup(s);
    if (!ds->descs[ds->n_descs]) return -1;
    return ds->n_descs++;
}

static double num_or(const LilyJson *o, const char *key, double dflt)
{
    const LilyJson *v = lily_json_get(o, key);
    return v && v->type == LILY_JSON_NUMBER ? v->number : dflt;
}

/* Fills seg's metadata from the shard's JSON entry. */
static LilyStatus read_meta(LilyDataset *ds, int s, int slot, const LilyJson *o, RSeg *seg)
{
    if (!o || o->type != LILY_JSON_OBJECT) return shard_bad(ds, s, "a segment entry is not an object");
    const LilyJson *low = lily_json_get(o, "low");
    const LilyJson *kind = low ? lily_json_get(low, "kind") : NULL;
    if ((int64_t)num_or(o, "source", -1) != ds->idx.shards[s].sources[slot])
        return shard_bad(ds, s, "a segment's source disagrees with the index");
    seg->offset = (int64_t)num_or(o, "offset", -1);
    seg->index = (int64_t)num_or(o, "index", -1);
    seg->valid = (int64_t)num_or(o, "valid", -1);
    if (seg->offset < 0 || seg->index < 0 || seg->valid < 1 || seg->valid > ds->idx.segment_samples ||
        !kind || kind->type != LILY_JSON_STRING)
        return shard_bad(ds, s, "a segment entry lacks offset, index, valid or low.kind");
    if (strcmp(kind->str, "lowpass") == 0) {
        const LilyJson *f = lily_json_get(low, "filter");
        seg->kind = LILY_LOW_LOWPASS;
        if (!f || f->type != LILY_JSON_STRING || lily_filter_from_name(f->str, &seg->deg.filter) != LILY_OK)
            return shard_bad(ds, s, "a segment's low.filter is not a filter family");
        seg->deg.order = (int)num_or(low, "order", 0);
        seg->deg.cutoff_hz = num_or(low, "cutoff_hz", 0);
        seg->desc = -1;
    } else {
        const LilyJson *d = lily_json_get(low, "description");
        seg->kind = LILY_LOW_STREAM;
        seg->desc = intern_desc(ds, d && d->type == LILY_JSON_STRING ? d->str : "stream");
        if (seg->desc < 0) return lily_error(ds->ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
        seg->delay = (int)num_or(low, "delay", 0);
    }
    seg->hr = (float)num_or(o, "high_rms_db", 0);
    seg->hp = (float)num_or(o, "high_peak", 0);
    seg->lr = (float)num_or(o, "low_rms_db", 0);
    seg->lp = (float)num_or(o, "low_peak", 0);
    return LILY_OK;
}

static LilyStatus open_shard(LilyDataset *ds, int s)
{
    LilyDsShard *sh = &ds->idx.shards[s];
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", ds->dir, sh->file);
    LILY_TRY(lily_weights_open(ds->ctx, path, &ds->shards[s]));
    LilyWeights *w = ds->shards[s];
    const char *fmt = lily_weights_metadata(w, "lily.format");
    const char *meta = lily_weights_metadata(w, "lily.segments");
    if (!fmt || strcmp(fmt, LILY_DATASET_SHARD_FORMAT) != 0 || !meta)
        return shard_bad(ds, s, "not a Lily dataset shard (metadata lily.format/lily.segments)");
    LilyJson *arr = NULL;
    LILY_TRY(lily_json_parse(ds->ctx, path, meta, strlen(meta), &arr));
    LilyStatus st = LILY_OK;
    if (arr->type != LILY_JSON_ARRAY || arr->n < sh->segments) {
        st = shard_bad(ds, s, "lily.segments holds fewer entries than the index counts");
        goto done;
    }
    const int64_t L = ds->idx.segment_samples, F = ds->idx.frames;
    for (int k = 0; k < sh->segments && st == LILY_OK; k++) {
        if (sh->dropped[k]) continue;
        int src = sh->sources[k];
        if (ds->idx.sources[src].state != LILY_DS_SOURCE_COMPLETE) continue;
        RSeg *seg = &ds->segs[ds->n_segs];
        memset(seg, 0, sizeof *seg);
        seg->shard = s;
        seg->slot = k;
        seg->source = src;
        st = read_meta(ds, s, k, arr->items[k], seg);
        if (st == LILY_OK) seg->h = tensor(ds, s, k, "high", 1, L, 0, &st);
        if (st == LILY_OK) seg->l = tensor(ds, s, k, "low", 1, L, 0, &st);
        if (st == LILY_OK) seg->mh = tensor(ds, s, k, "mel_high", 2, F, LILY_N_MELS, &st);
        if (st == LILY_OK) seg->ml = tensor(ds, s, k, "mel_low", 2, F, LILY_N_MELS, &st);
        if (st == LILY_OK) {
            ds->seconds += (double)seg->valid / LILY_SAMPLE_RATE;
            ds->n_segs++;
        }
    }
done:
    lily_json_free(arr);
    return st;
}

LilyStatus lily_dataset_open(LilyContext *ctx, const char *dir, LilyDataset **out)
{
    *out = NULL;
    LilyDataset *ds = calloc(1, sizeof *ds);
    if (!ds) return lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
    ds->ctx = ctx;
    ds->dir = strdup(dir);
    LilyStatus st = ds->dir ? LILY_OK : lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
    int exists = 0;
    if (st == LILY_OK) st = lily_ds_index_read(ctx, dir, &ds->idx, &exists);
    if (st == LILY_OK && !exists)
        st = lily_error(ctx, LILY_ERR_IO, "dataset %s: no index.json: not a Lily dataset folder "
                        "(make one with lily-dataset make or lilytrainsink)", dir);
    if (st != LILY_OK) goto fail;
    size_t total = 0;
    for (int s = 0; s < ds->idx.n_shards; s++) total += (size_t)ds->idx.shards[s].segments;
    ds->shards = calloc(ds->idx.n_shards > 0 ? (size_t)ds->idx.n_shards : 1, sizeof *ds->shards);
    ds->segs = malloc((total ? total : 1) * sizeof *ds->segs);
    if (!ds->shards || !ds->segs) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
        goto fail;
    }
    for (int s = 0; s < ds->idx.n_shards; s++) LILY_CHECK(st, open_shard(ds, s), fail);
    for (int sp = 0; sp < 2; sp++) {
        ds->list[sp] = malloc((ds->n_segs ? ds->n_segs : 1) * sizeof *ds->list[sp]);
        if (!ds->list[sp]) {
            st = lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
            goto fail;
        }
    }
    for (size_t i = 0; i < ds->n_segs; i++) {
        int sp = ds->idx.sources[ds->segs[i].source].split == LILY_SPLIT_VALIDATION;
        ds->list[sp][ds->n_list[sp]++] = i;
    }
    *out = ds;
    return LILY_OK;
fail:
    lily_dataset_close(ds);
    return st;
}

void lily_dataset_close(LilyDataset *ds)
{
    if (!ds) return;
    for (int s = 0; ds->shards && s < ds->idx.n_shards; s++) lily_weights_close(ds->shards[s]);
    for (int i = 0; i < ds->n_descs; i++) free(ds->descs[i]);
    free(ds->descs);
    free(ds->shards);
    free(ds->segs);
    free(ds->list[0]);
    free(ds->list[1]);
    lily_ds_index_free(&ds->idx);
    free(ds->dir);
    free(ds);
}

size_t lily_dataset_count(const LilyDataset *ds, LilyDatasetSplit split)
{
    return split == LILY_SPLIT_ALL ? ds->n_segs : ds->n_list[split == LILY_SPLIT_VALIDATION];
}

int64_t lily_dataset_samples(const LilyDataset *ds) { return ds->idx.segment_samples; }
int64_t lily_dataset_frames(const LilyDataset *ds) { return ds->idx.frames; }
const LilyDatasetParams *lily_dataset_params(const LilyDataset *ds) { return &ds->idx.params; }
int lily_dataset_source_count(const LilyDataset *ds) { return ds->idx.n_sources; }
int lily_dataset_shard_count(const LilyDataset *ds) { return ds->idx.n_shards; }

const char *lily_dataset_source_uri(const LilyDataset *ds, int source)
{
    return source >= 0 && source < ds->idx.n_sources ? ds->idx.sources[source].uri : NULL;
}

LilyDatasetSplit lily_dataset_source_split(const LilyDataset *ds, int source)
{
    return source >= 0 && source < ds->idx.n_sources ? ds->idx.sources[source].split
                                                     : LILY_SPLIT_TRAIN;
}

void lily_dataset_counts(const LilyDataset *ds, LilyDatasetCounts *c)
{
    lily_ds_index_counts(&ds->idx, c);
    c->seconds = ds->seconds;
}

static LilyStatus resolve(const LilyDataset *ds, LilyDatasetSplit split, size_t index,
                          const RSeg **seg)
{
    size_t n = lily_dataset_count(ds, split);
    if (index >= n)
        return lily_error(ds->ctx, LILY_ERR_INVALID_ARGUMENT, "dataset %s: segment %zu of the %s "
                          "split does not exist (it holds %zu)", ds->dir, index,
                          split == LILY_SPLIT_ALL ? "whole" : split == LILY_SPLIT_TRAIN ? "train"
                                                                                        : "validation",
                          n);
    *seg = &ds->segs[split == LILY_SPLIT_ALL ? index : ds->list[split == LILY_SPLIT_VALIDATION][index]];
    return LILY_OK;
}

LilyStatus lily_dataset_get(const LilyDataset *ds, LilyDatasetSplit split, size_t index,
                            LilyDatasetSegment *out)
{
    const RSeg *s;
    LILY_TRY(resolve(ds, split, index, &s));
    memset(out, 0, sizeof *out);
    out->high = s->h;
    out->low = s->l;
    out->mel_high = s->mh;
    out->mel_low = s->ml;
    out->samples = ds->idx.segment_samples;
    out->frames = ds->idx.frames;
    out->valid = s->valid;
    out->source = s->source;
    out->offset = s->offset;
    out->index = s->index;
    out->low_kind = s->kind;
    out->degradation = s->deg;
    out->low_description = s->kind == LILY_LOW_STREAM ? ds->descs[s->desc] : "lowpass";
    out->low_delay = s->delay;
    out->high_rms_db = s->hr;
    out->high_peak = s->hp;
    out->low_rms_db = s->lr;
    out->low_peak = s->lp;
    out->shard = s->shard;
    out->slot = s->slot;
    return LILY_OK;
}

LilyStatus lily_dataset_epoch_order(const LilyDataset *ds, LilyDatasetSplit split,
                                    uint64_t seed, uint64_t epoch, size_t *order)
{
    size_t n = lily_dataset_count(ds, split);
    for (size_t i = 0; i < n; i++) order[i] = i;
    /* Fisher-Yates from the top; the draw for position i is Philox at counter
     * (i, tag ^ split, epoch low, epoch high) under key seed. */
    for (size_t i = n; i > 1; i--) {
        uint64_t c = (uint64_t)(i - 1);
        LilyPhilox4 r = lily_philox4x32((uint32_t)c, SHUFFLE_TAG ^ (uint32_t)split ^ (uint32_t)(c >> 32),
                                        (uint32_t)epoch, (uint32_t)(epoch >> 32), (uint32_t)seed,
                                        (uint32_t)(seed >> 32));
        size_t j = (size_t)(lily_u32x2_to_uniform_f64(r.v[0], r.v[1]) * (double)i);
        if (j >= i) j = i - 1;
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    return LILY_OK;
}

LilyStatus lily_dataset_batch(const LilyDataset *ds, LilyDatasetSplit split,
                              const size_t *indices, int batch, float *high, float *low,
                              float *mel_high, float *mel_low)
{
    const size_t L = (size_t)ds->idx.segment_samples, M = (size_t)ds->idx.frames * LILY_N_MELS;
    for (int b = 0; b < batch; b++) {
        const RSeg *s;
        LILY_TRY(resolve(ds, split, indices[b], &s));
        if (high) memcpy(high + (size_t)b * L, s->h, L * sizeof(float));
        if (low) memcpy(low + (size_t)b * L, s->l, L * sizeof(float));
        if (mel_high) memcpy(mel_high + (size_t)b * M, s->mh, M * sizeof(float));
        if (mel_low) memcpy(mel_low + (size_t)b * M, s->ml, M * sizeof(float));
    }
    return LILY_OK;
}

/* ---- epochs ---------------------------------------------------------------------------- */

LilyStatus lily_dataset_iter_init(LilyDatasetIter *it, const LilyDataset *ds,
                                  LilyDatasetSplit split, uint64_t seed)
{
    memset(it, 0, sizeof *it);
    it->ds = ds;
    it->split = split;
    it->seed = seed;
    it->count = lily_dataset_count(ds, split);
    if (it->count == 0)
        return lily_error(ds->ctx, LILY_ERR_INVALID_ARGUMENT, "dataset %s: the %s split is empty: "
                          "add sources, or change data.validation_fraction", ds->dir,
                          split == LILY_SPLIT_VALIDATION ? "validation" : "train");
    it->order = malloc(it->count * sizeof *it->order);
    if (!it->order) return lily_error(ds->ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
    return lily_dataset_epoch_order(ds, split, seed, 0, it->order);
}

LilyStatus lily_dataset_iter_seek(LilyDatasetIter *it, uint64_t epoch, size_t position)
{
    if (position > it->count)
        return lily_error(it->ds->ctx, LILY_ERR_INVALID_ARGUMENT, "dataset: position %zu is past "
                          "the %zu segments of an epoch", position, it->count);
    if (epoch != it->epoch) LILY_TRY(lily_dataset_epoch_order(it->ds, it->split, it->seed, epoch, it->order));
    it->epoch = epoch;
    it->position = position;
    return LILY_OK;
}

LilyStatus lily_dataset_iter_next(LilyDatasetIter *it, int batch, size_t *indices)
{
    for (int b = 0; b < batch; b++) {
        if (it->position >= it->count) LILY_TRY(lily_dataset_iter_seek(it, it->epoch + 1, 0));
        indices[b] = it->order[it->position++];
    }
    return LILY_OK;
}

void lily_dataset_iter_release(LilyDatasetIter *it)
{
    free(it->order);
    it->order = NULL;
}

/* ---- verify ---------------------------------------------------------------------------- */

static void note(LilyDatasetReportFn report, void *user, int *problems, int is_problem,
                 const char *fmt, ...) LILY_PRINTF(5, 6);
static void note(LilyDatasetReportFn report, void *user, int *problems, int is_problem,
                 const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (is_problem) (*problems)++;
    if (report) report(line, user);
}

LilyStatus lily_dataset_verify(LilyContext *ctx, const char *dir, LilyDatasetReportFn report,
                               void *user, int *problems)
{
    *problems = 0;
    LilyDataset *ds = NULL;
    LilyStatus st = lily_dataset_open(ctx, dir, &ds);
    if (st != LILY_OK) {
        note(report, user, problems, 1, "cannot open: %s", lily_context_error(ctx));
        return st;
    }
    const size_t L = (size_t)ds->idx.segment_samples, M = (size_t)ds->idx.frames * LILY_N_MELS;
    size_t nonfinite = 0;
    for (size_t i = 0; i < ds->n_segs; i++) {
        const RSeg *s = &ds->segs[i];
        size_t bad = 0;
        for (size_t k = 0; k < L; k++) bad += !isfinite(s->h[k]) + !isfinite(s->l[k]);
        for (size_t k = 0; k < M; k++) bad += !isfinite(s->mh[k]) + !isfinite(s->ml[k]);
        if (bad) {
            nonfinite++;
            note(report, user, problems, 1, "%s slot %d: %zu non-finite values",
                 ds->idx.shards[s->shard].file, s->slot, bad);
        }
    }
    /* Counts: every complete source's segment count must equal what the shards serve. */
    int64_t *per = calloc((size_t)(ds->idx.n_sources ? ds->idx.n_sources : 1), sizeof *per);
    if (!per) {
        lily_dataset_close(ds);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
    }
    for (size_t i = 0; i < ds->n_segs; i++) per[ds->segs[i].source]++;
    int partial = 0;
    for (int i = 0; i < ds->idx.n_sources; i++) {
        const LilyDsSource *src = &ds->idx.sources[i];
        if (src->state != LILY_DS_SOURCE_COMPLETE) {
            partial++;
            note(report, user, problems, 0, "note: %s is partial (an interrupted run); a new run "
                 "redoes it", src->uri);
            continue;
        }
        if (per[i] != src->segments)
            note(report, user, problems, 1, "%s: the index counts %" PRId64 " segments, the shards "
                 "hold %" PRId64, src->uri, src->segments, per[i]);
        if (src->split != (lily_dataset_source_is_validation(ds->idx.params.seed, src->hash,
                                                             ds->idx.params.validation_fraction)
                               ? LILY_SPLIT_VALIDATION
                               : LILY_SPLIT_TRAIN))
            note(report, user, problems, 1, "%s: its split disagrees with (seed, URI hash)", src->uri);
    }
    free(per);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            int num = lily_ds_shard_number(e->d_name);
            if (lily_ds_is_temp_name(e->d_name) || num >= ds->idx.n_shards)
                note(report, user, problems, 0, "note: %s is not in the index (left by an "
                     "interrupted run; the next writer removes it)", e->d_name);
        }
        closedir(d);
    }
    note(report, user, problems, 0, "%d shards, %zu segments served (%zu train, %zu validation), "
         "%d sources (%d partial), %zu segments with non-finite values",
         ds->idx.n_shards, ds->n_segs, ds->n_list[0], ds->n_list[1], ds->idx.n_sources, partial,
         nonfinite);
    lily_dataset_close(ds);
    return LILY_OK;
}
