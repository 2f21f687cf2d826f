/* train/dataset-index.c - index.json of a dataset folder (docs/datasets.md), read and
 * written atomically, plus the atomic file write both the index and the folder clean-up use.
 *
 * The index is the authority on what a dataset holds: a shard's segments beyond the count the
 * index gives, and shard files the index does not list, are leftovers of a crash and never
 * served. It is rewritten (temporary file, fsync, rename, fsync of the folder) after every
 * shard, so it always describes shards that are completely on disk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "train/dataset.h"
#include "weights/json.h" /* lily_json_parse, LilyStrBuf */

void lily_ds_index_init(LilyDsIndex *idx, const LilyDatasetParams *params)
{
    memset(idx, 0, sizeof *idx);
    idx->params = *params;
    idx->segment_samples = lily_dataset_segment_samples(params);
    idx->hop_samples = lily_dataset_hop_samples(params);
    idx->frames = idx->segment_samples / LILY_HOP;
}

void lily_ds_index_free(LilyDsIndex *idx)
{
    for (int i = 0; i < idx->n_sources; i++) {
        free(idx->sources[i].uri);
        free(idx->sources[i].low);
    }
    for (int i = 0; i < idx->n_shards; i++) {
        free(idx->shards[i].file);
        free(idx->shards[i].sources);
        free(idx->shards[i].dropped);
    }
    free(idx->sources);
    free(idx->shards);
    memset(idx, 0, sizeof *idx);
}

int lily_ds_index_find(const LilyDsIndex *idx, const char *uri)
{
    for (int i = 0; i < idx->n_sources; i++)
        if (strcmp(idx->sources[i].uri, uri) == 0) return i;
    return -1;
}

LilyStatus lily_ds_index_add_source(LilyContext *ctx, LilyDsIndex *idx, const char *uri,
                                    const char *low, int *id)
{
    if (idx->n_sources == idx->cap_sources) {
        int cap = idx->cap_sources ? idx->cap_sources * 2 : 16;
        LilyDsSource *s = realloc(idx->sources, (size_t)cap * sizeof *s);
        if (!s) return lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset index: out of memory");
        idx->sources = s;
        idx->cap_sources = cap;
    }
    LilyDsSource *s = &idx->sources[idx->n_sources];
    memset(s, 0, sizeof *s);
    s->uri = strdup(uri);
    s->low = strdup(low ? low : "lowpass");
    if (!s->uri || !s->low) {
        free(s->uri);
        free(s->low);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset index: out of memory");
    }
    s->hash = lily_dataset_source_hash(uri);
    s->split = lily_dataset_source_is_validation(idx->params.seed, s->hash,
                                                 idx->params.validation_fraction)
                   ? LILY_SPLIT_VALIDATION
                   : LILY_SPLIT_TRAIN;
    s->state = LILY_DS_SOURCE_PARTIAL;
    *id = idx->n_sources++;
    return LILY_OK;
}

LilyStatus lily_ds_index_add_shard(LilyContext *ctx, LilyDsIndex *idx, const char *file,
                                   int segments, const int *sources)
{
    if (idx->n_shards == idx->cap_shards) {
        int cap = idx->cap_shards ? idx->cap_shards * 2 : 16;
        LilyDsShard *s = realloc(idx->shards, (size_t)cap * sizeof *s);
        if (!s) return lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset index: out of memory");
        idx->shards = s;
        idx->cap_shards = cap;
    }
    LilyDsShard *s = &idx->shards[idx->n_shards];
    memset(s, 0, sizeof *s);
    s->file = strdup(file);
    s->segments = segments;
    s->sources = malloc((size_t)(segments ? segments : 1) * sizeof *s->sources);
    s->dropped = calloc((size_t)(segments ? segments : 1), 1);
    if (!s->file || !s->sources || !s->dropped) {
        free(s->file);
        free(s->sources);
        free(s->dropped);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset index: out of memory");
    }
    if (segments) memcpy(s->sources, sources, (size_t)segments * sizeof *s->sources);
    idx->n_shards++;
    return LILY_OK;
}

void lily_ds_index_counts(const LilyDsIndex *idx, LilyDatasetCounts *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < idx->n_sources; i++) {
        const LilyDsSource *s = &idx->sources[i];
        if (s->state != LILY_DS_SOURCE_COMPLETE) continue;
        c->sources++;
        c->segments += (uint64_t)s->segments;
        c->silent += (uint64_t)s->silent;
        c->clipped += (uint64_t)s->clipped;
        c->short_tails += (uint64_t)s->short_tails;
    }
    c->shards = (uint64_t)idx->n_shards;
}

/* ---- atomic files ---------------------------------------------------------------------- */

int lily_ds_is_temp_name(const char *name)
{
    return name[0] == '.' && strstr(name, ".tmp-") != NULL;
}

int lily_ds_shard_number(const char *name)
{
    int num = -1, end = 0;
    if (sscanf(name, "shard-%d.safetensors%n", &num, &end) != 1 || name[end] != '\0' || num < 0)
        return -1;
    char canon[64];
    snprintf(canon, sizeof canon, "shard-%05d.safetensors", num);
    return strcmp(canon, name) == 0 ? num : -1;
}

static LilyStatus io_error(LilyContext *ctx, int e, const char *what, const char *path)
{
    if (e == ENOSPC || e == EDQUOT)
        return lily_error(ctx, LILY_ERR_DISK_FULL, "%s %s: no space left on the device; free "
                          "some space (earlier shards are intact) and run again to append",
                          what, path);
    return lily_error(ctx, LILY_ERR_IO, "%s %s: %s", what, path, strerror(e));
}

LilyStatus lily_ds_atomic_write(LilyContext *ctx, const char *dir, const char *name,
                                const void *data, size_t len)
{
    char tmp[4096], dst[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.%s.tmp-XXXXXX", dir, name) >= sizeof tmp ||
        (size_t)snprintf(dst, sizeof dst, "%s/%s", dir, name) >= sizeof dst)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "dataset: path %s/%s is too long", dir,
                          name);
    int fd = mkstemp(tmp);
    if (fd < 0) return io_error(ctx, errno, "cannot create a temporary file for", dst);
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t k = write(fd, p, left);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = k < 0 ? errno : EIO;
            close(fd);
            unlink(tmp);
            return io_error(ctx, e, "writing", dst);
        }
        p += k;
        left -= (size_t)k;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return io_error(ctx, e, "flushing", dst);
    }
    /* mkstemp makes 0600; a dataset is ordinary data. */
    (void)fchmod(fd, 0644);
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return io_error(ctx, e, "closing", dst);
    }
    if (rename(tmp, dst) != 0) {
        int e = errno;
        unlink(tmp);
        return io_error(ctx, e, "renaming a temporary file to", dst);
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return LILY_OK;
}

/* ---- writing the index ----------------------------------------------------------------- */

static const char *state_name(LilyDsSourceState s)
{
    return s == LILY_DS_SOURCE_COMPLETE ? "complete" : "partial";
}

static void put_params(LilyStrBuf *b, const LilyDatasetParams *p)
{
    lily_strbuf_printf(b, "{\"segment_seconds\": %.17g, \"hop_seconds\": %.17g, "
                       "\"shard_segments\": %d, \"validation_fraction\": %.17g, "
                       "\"seed\": \"%" PRIu64 "\", \"min_rms_db\": %.17g, "
                       "\"max_clipped_fraction\": %.17g,\n    \"degradation\": {\"filters\": [",
                       p->segment_seconds, p->hop_seconds, p->shard_segments,
                       p->validation_fraction, p->seed, p->min_rms_db, p->max_clipped_fraction);
    int first = 1;
    for (int f = 0; f < LILY_FILTER_COUNT; f++)
        if (p->degradation.filters & (1u << f)) {
            lily_strbuf_printf(b, "%s\"%s\"", first ? "" : ", ", lily_filter_name((LilyFilterType)f));
            first = 0;
        }
    lily_strbuf_printf(b, "], \"order_min\": %d, \"order_max\": %d, \"cutoff_min_hz\": %.17g, "
                       "\"cutoff_max_hz\": %.17g, \"cutoff_distribution\": \"log-uniform\"}}",
                       p->degradation.order_min, p->degradation.order_max,
                       p->degradation.cutoff_min_hz, p->degradation.cutoff_max_hz);
}

LilyStatus lily_ds_index_write(LilyContext *ctx, const char *dir, const LilyDsIndex *idx)
{
    LilyStrBuf b = {0};
    LilyDatasetCounts c;
    lily_ds_index_counts(idx, &c);
    int64_t train = 0, val = 0, samples = 0;
    for (int i = 0; i < idx->n_sources; i++) {
        const LilyDsSource *s = &idx->sources[i];
        if (s->state != LILY_DS_SOURCE_COMPLETE) continue;
        if (s->split == LILY_SPLIT_VALIDATION)
            val += s->segments;
        else
            train += s->segments;
        samples += s->samples;
    }
    lily_strbuf_printf(&b, "{\n  \"format\": \"%s\",\n  \"sample_rate\": %d,\n"
                       "  \"segment_samples\": %" PRId64 ",\n  \"hop_samples\": %" PRId64 ",\n"
                       "  \"mel_frames\": %" PRId64 ",\n  \"n_mels\": %d,\n  \"params\": ",
                       LILY_DATASET_FORMAT, LILY_SAMPLE_RATE, idx->segment_samples,
                       idx->hop_samples, idx->frames, LILY_N_MELS);
    put_params(&b, &idx->params);
    lily_strbuf_printf(&b, ",\n  \"totals\": {\"sources\": %" PRIu64 ", \"shards\": %d, "
                       "\"segments\": %" PRIu64 ", \"train_segments\": %" PRId64 ", "
                       "\"validation_segments\": %" PRId64 ", \"silent\": %" PRIu64 ", "
                       "\"clipped\": %" PRIu64 ", \"short_tails\": %" PRIu64 ", "
                       "\"source_hours\": %.6f},\n  \"shards\": [",
                       c.sources, idx->n_shards, c.segments, train, val, c.silent, c.clipped,
                       c.short_tails, (double)samples / LILY_SAMPLE_RATE / 3600.0);
    for (int i = 0; i < idx->n_shards; i++) {
        const LilyDsShard *s = &idx->shards[i];
        lily_strbuf_printf(&b, "%s\n    {\"file\": ", i ? "," : "");
        lily_strbuf_json_string(&b, s->file);
        lily_strbuf_printf(&b, ", \"segments\": %d, \"sources\": [", s->segments);
        for (int k = 0; k < s->segments; k++)
            lily_strbuf_printf(&b, "%s%d", k ? "," : "", s->sources[k]);
        lily_strbuf_puts(&b, "], \"dropped\": [");
        int first = 1;
        for (int k = 0; k < s->segments; k++)
            if (s->dropped[k]) {
                lily_strbuf_printf(&b, "%s%d", first ? "" : ",", k);
                first = 0;
            }
        lily_strbuf_puts(&b, "]}");
    }
    lily_strbuf_puts(&b, "\n  ],\n  \"sources\": [");
    for (int i = 0; i < idx->n_sources; i++) {
        const LilyDsSource *s = &idx->sources[i];
        lily_strbuf_printf(&b, "%s\n    {\"id\": %d, \"uri\": ", i ? "," : "", i);
        lily_strbuf_json_string(&b, s->uri);
        lily_strbuf_printf(&b, ", \"hash\": \"%016" PRIx64 "\", \"split\": \"%s\", "
                           "\"state\": \"%s\", \"segments\": %" PRId64 ", \"silent\": %" PRId64
                           ", \"clipped\": %" PRId64 ", \"short_tails\": %" PRId64
                           ", \"samples\": %" PRId64 ", \"low\": ",
                           s->hash, s->split == LILY_SPLIT_VALIDATION ? "validation" : "train",
                           state_name(s->state), s->segments, s->silent, s->clipped,
                           s->short_tails, s->samples);
        lily_strbuf_json_string(&b, s->low);
        lily_strbuf_puts(&b, "}");
    }
    lily_strbuf_puts(&b, "\n  ]\n}\n");
    if (b.failed) {
        lily_strbuf_free(&b);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset index: out of memory");
    }
    LilyStatus st = lily_ds_atomic_write(ctx, dir, LILY_DS_INDEX_NAME, b.s, b.len);
    lily_strbuf_free(&b);
    return st;
}

/* ---- reading the index ----------------------------------------------------------------- */

typedef struct R {
    LilyContext *ctx;
    const char *path;
} R;

static LilyStatus bad(R *r, const char *what)
{
    return lily_error(r->ctx, LILY_ERR_FORMAT, "%s: %s; the index is damaged (lily-dataset verify "
                      "says more)", r->path, what);
}

static LilyStatus get_num(R *r, const LilyJson *o, const char *key, double *out)
{
    const LilyJson *v = lily_json_get(o, key);
    if (!v || v->type != LILY_JSON_NUMBER) {
        char msg[128];
        snprintf(msg, sizeof msg, "'%s' is missing or not a number", key);
        return bad(r, msg);
    }
    *out = v->number;
    return LILY_OK;
}

static LilyStatus get_i64(R *r, const LilyJson *o, const char *key, int64_t *out)
{
    const LilyJson *v = lily_json_get(o, key);
    if (!v || v->type != LILY_JSON_NUMBER || !v->is_int) {
        char msg[128];
        snprintf(msg, sizeof msg, "'%s' is missing or not an integer", key);
        return bad(r, msg);
    }
    *out = v->integer;
    return LILY_OK;
}

static LilyStatus get_str(R *r, const LilyJson *o, const char *key, const char **out)
{
    const LilyJson *v = lily_json_get(o, key);
    if (!v || v->type != LILY_JSON_STRING) {
        char msg[128];
        snprintf(msg, sizeof msg, "'%s' is missing or not a string", key);
        return bad(r, msg);
    }
    *out = v->str;
    return LILY_OK;
}

static LilyStatus read_params(R *r, const LilyJson *p, LilyDatasetParams *out)
{
    if (!p || p->type != LILY_JSON_OBJECT) return bad(r, "'params' is missing");
    int64_t i64;
    const char *s;
    LILY_TRY(get_num(r, p, "segment_seconds", &out->segment_seconds));
    LILY_TRY(get_num(r, p, "hop_seconds", &out->hop_seconds));
    LILY_TRY(get_i64(r, p, "shard_segments", &i64));
    out->shard_segments = (int)i64;
    LILY_TRY(get_num(r, p, "validation_fraction", &out->validation_fraction));
    LILY_TRY(get_str(r, p, "seed", &s));
    char *end = NULL;
    out->seed = strtoull(s, &end, 10);
    if (end == s || *end) return bad(r, "'seed' is not a decimal integer");
    LILY_TRY(get_num(r, p, "min_rms_db", &out->min_rms_db));
    LILY_TRY(get_num(r, p, "max_clipped_fraction", &out->max_clipped_fraction));
    const LilyJson *d = lily_json_get(p, "degradation");
    if (!d || d->type != LILY_JSON_OBJECT) return bad(r, "'params.degradation' is missing");
    const LilyJson *f = lily_json_get(d, "filters");
    if (!f || f->type != LILY_JSON_ARRAY) return bad(r, "'degradation.filters' is missing");
    out->degradation.filters = 0;
    for (int i = 0; i < f->n; i++) {
        LilyFilterType t;
        if (f->items[i]->type != LILY_JSON_STRING ||
            lily_filter_from_name(f->items[i]->str, &t) != LILY_OK)
            return bad(r, "'degradation.filters' names an unknown family");
        out->degradation.filters |= 1u << t;
    }
    LILY_TRY(get_i64(r, d, "order_min", &i64));
    out->degradation.order_min = (int)i64;
    LILY_TRY(get_i64(r, d, "order_max", &i64));
    out->degradation.order_max = (int)i64;
    LILY_TRY(get_num(r, d, "cutoff_min_hz", &out->degradation.cutoff_min_hz));
    LILY_TRY(get_num(r, d, "cutoff_max_hz", &out->degradation.cutoff_max_hz));
    return LILY_OK;
}

static LilyStatus read_shards(R *r, const LilyJson *a, LilyDsIndex *idx)
{
    if (!a || a->type != LILY_JSON_ARRAY) return bad(r, "'shards' is missing");
    for (int i = 0; i < a->n; i++) {
        const LilyJson *o = a->items[i];
        if (o->type != LILY_JSON_OBJECT) return bad(r, "a shard entry is not an object");
        const char *file;
        int64_t n;
        LILY_TRY(get_str(r, o, "file", &file));
        LILY_TRY(get_i64(r, o, "segments", &n));
        const LilyJson *src = lily_json_get(o, "sources");
        const LilyJson *drop = lily_json_get(o, "dropped");
        if (lily_ds_shard_number(file) < 0 || n < 0 || n > 10000000 || !src ||
            src->type != LILY_JSON_ARRAY || src->n != n || !drop || drop->type != LILY_JSON_ARRAY)
            return bad(r, "a shard entry has a bad file name, count, 'sources' or 'dropped'");
        int *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
        if (!ids) return lily_error(r->ctx, LILY_ERR_NO_MEMORY, "dataset index: out of memory");
        for (int k = 0; k < n; k++) {
            const LilyJson *v = src->items[k];
            if (v->type != LILY_JSON_NUMBER || !v->is_int || v->integer < 0 || v->integer > INT32_MAX) {
                free(ids);
                return bad(r, "a shard's 'sources' holds a bad source id");
            }
            ids[k] = (int)v->integer;
        }
        LilyStatus st = lily_ds_index_add_shard(r->ctx, idx, file, (int)n, ids);
        free(ids);
        LILY_TRY(st);
        LilyDsShard *s = &idx->shards[idx->n_shards - 1];
        for (int k = 0; k < drop->n; k++) {
            const LilyJson *v = drop->items[k];
            if (v->type != LILY_JSON_NUMBER || !v->is_int || v->integer < 0 || v->integer >= n)
                return bad(r, "a shard's 'dropped' holds a bad slot");
            s->dropped[v->integer] = 1;
        }
    }
    return LILY_OK;
}

static LilyStatus read_sources(R *r, const LilyJson *a, LilyDsIndex *idx)
{
    if (!a || a->type != LILY_JSON_ARRAY) return bad(r, "'sources' is missing");
    for (int i = 0; i < a->n; i++) {
        const LilyJson *o = a->items[i];
        if (o->type != LILY_JSON_OBJECT) return bad(r, "a source entry is not an object");
        const char *uri, *split, *state, *low;
        LILY_TRY(get_str(r, o, "uri", &uri));
        LILY_TRY(get_str(r, o, "split", &split));
        LILY_TRY(get_str(r, o, "state", &state));
        LILY_TRY(get_str(r, o, "low", &low));
        int id;
        LILY_TRY(lily_ds_index_add_source(r->ctx, idx, uri, low, &id));
        LilyDsSource *s = &idx->sources[id];
        /* The split is stored, not recomputed: the index is the record of what was used. */
        s->split = strcmp(split, "validation") == 0 ? LILY_SPLIT_VALIDATION : LILY_SPLIT_TRAIN;
        s->state = strcmp(state, "complete") == 0 ? LILY_DS_SOURCE_COMPLETE : LILY_DS_SOURCE_PARTIAL;
        LILY_TRY(get_i64(r, o, "segments", &s->segments));
        LILY_TRY(get_i64(r, o, "silent", &s->silent));
        LILY_TRY(get_i64(r, o, "clipped", &s->clipped));
        LILY_TRY(get_i64(r, o, "short_tails", &s->short_tails));
        LILY_TRY(get_i64(r, o, "samples", &s->samples));
    }
    for (int i = 0; i < idx->n_shards; i++)
        for (int k = 0; k < idx->shards[i].segments; k++)
            if (idx->shards[i].sources[k] >= idx->n_sources)
                return bad(r, "a shard names a source the index does not list");
    return LILY_OK;
}

LilyStatus lily_ds_index_read(LilyContext *ctx, const char *dir, LilyDsIndex *idx, int *exists)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, LILY_DS_INDEX_NAME);
    *exists = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return LILY_OK;
        return lily_error(ctx, LILY_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || sb.st_size > ((off_t)1 << 30)) {
        fclose(f);
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: cannot size the file, or it is over 1 GB",
                          path);
    }
    size_t len = (size_t)sb.st_size;
    char *text = malloc(len + 1);
    if (!text) {
        fclose(f);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory reading %s", path);
    }
    size_t got = fread(text, 1, len, f);
    fclose(f);
    if (got != len) {
        free(text);
        return lily_error(ctx, LILY_ERR_IO, "short read of %s", path);
    }
    text[len] = '\0';
    LilyJson *root = NULL;
    LilyStatus st = lily_json_parse(ctx, path, text, len, &root);
    free(text);
    LILY_TRY(st);
    R r = {ctx, path};
    LilyDatasetParams params;
    lily_dataset_params_init(&params);
    const LilyJson *fmt = lily_json_get(root, "format");
    if (root->type != LILY_JSON_OBJECT || !fmt || fmt->type != LILY_JSON_STRING ||
        strcmp(fmt->str, LILY_DATASET_FORMAT) != 0) {
        st = bad(&r, "not a Lily dataset index (format is not \"" LILY_DATASET_FORMAT "\")");
        goto done;
    }
    LILY_CHECK(st, read_params(&r, lily_json_get(root, "params"), &params), done);
    LilyDsIndex tmp;
    lily_ds_index_init(&tmp, &params);
    int64_t seg = 0, hop = 0, frames = 0;
    LILY_CHECK(st, get_i64(&r, root, "segment_samples", &seg), fail);
    LILY_CHECK(st, get_i64(&r, root, "hop_samples", &hop), fail);
    LILY_CHECK(st, get_i64(&r, root, "mel_frames", &frames), fail);
    if (seg != tmp.segment_samples || hop != tmp.hop_samples || frames != tmp.frames) {
        st = bad(&r, "segment_samples, hop_samples or mel_frames disagree with params");
        goto fail;
    }
    LILY_CHECK(st, read_shards(&r, lily_json_get(root, "shards"), &tmp), fail);
    LILY_CHECK(st, read_sources(&r, lily_json_get(root, "sources"), &tmp), fail);
    *idx = tmp;
    *exists = 1;
    goto done;
fail:
    lily_ds_index_free(&tmp);
done:
    lily_json_free(root);
    return st;
}

LilyStatus lily_ds_params_check_same(LilyContext *ctx, const char *dir, const LilyDsIndex *idx,
                                     const LilyDatasetParams *p)
{
    const LilyDatasetParams *o = &idx->params;
    char have[128] = "", want[128] = "";
    const char *name = NULL;
    if (lily_dataset_segment_samples(p) != idx->segment_samples) {
        name = "segment length";
        snprintf(have, sizeof have, "%g s", o->segment_seconds);
        snprintf(want, sizeof want, "%g s", p->segment_seconds);
    } else if (lily_dataset_hop_samples(p) != idx->hop_samples) {
        name = "hop";
        snprintf(have, sizeof have, "%g s", o->hop_seconds);
        snprintf(want, sizeof want, "%g s", p->hop_seconds);
    } else if (p->seed != o->seed) {
        name = "seed";
        snprintf(have, sizeof have, "%" PRIu64, o->seed);
        snprintf(want, sizeof want, "%" PRIu64, p->seed);
    } else if (p->validation_fraction != o->validation_fraction) {
        name = "validation fraction";
        snprintf(have, sizeof have, "%g", o->validation_fraction);
        snprintf(want, sizeof want, "%g", p->validation_fraction);
    } else if (p->min_rms_db != o->min_rms_db || p->max_clipped_fraction != o->max_clipped_fraction) {
        name = "silence or clipping threshold";
        snprintf(have, sizeof have, "%g dB / %g", o->min_rms_db, o->max_clipped_fraction);
        snprintf(want, sizeof want, "%g dB / %g", p->min_rms_db, p->max_clipped_fraction);
    } else if (p->degradation.filters != o->degradation.filters ||
               p->degradation.order_min != o->degradation.order_min ||
               p->degradation.order_max != o->degradation.order_max ||
               p->degradation.cutoff_min_hz != o->degradation.cutoff_min_hz ||
               p->degradation.cutoff_max_hz != o->degradation.cutoff_max_hz) {
        name = "degradation ranges";
        snprintf(have, sizeof have, "filters 0x%x order %d..%d cutoff %g..%g Hz",
                 o->degradation.filters, o->degradation.order_min, o->degradation.order_max,
                 o->degradation.cutoff_min_hz, o->degradation.cutoff_max_hz);
        snprintf(want, sizeof want, "filters 0x%x order %d..%d cutoff %g..%g Hz",
                 p->degradation.filters, p->degradation.order_min, p->degradation.order_max,
                 p->degradation.cutoff_min_hz, p->degradation.cutoff_max_hz);
    }
    if (!name) return LILY_OK;
    return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "dataset %s was made with %s %s, this job "
                      "asks for %s: appending would mix two recipes; use the same settings or "
                      "another folder", dir, name, have, want);
}

LilyStatus lily_dataset_source_state(LilyContext *ctx, const char *dir, const char *uri,
                                     int *state)
{
    *state = LILY_DS_SOURCE_ABSENT;
    LilyDsIndex idx;
    int exists = 0;
    LILY_TRY(lily_ds_index_read(ctx, dir, &idx, &exists));
    if (!exists) return LILY_OK;
    int i = lily_ds_index_find(&idx, uri);
    if (i >= 0) *state = (int)idx.sources[i].state;
    lily_ds_index_free(&idx);
    return LILY_OK;
}
