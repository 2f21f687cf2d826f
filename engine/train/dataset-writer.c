/* train/dataset-writer.c - writes training pairs into a dataset folder (docs/datasets.md).
 *
 * A source's samples stream in; every hop a segment of segment_samples is cut. A segment whose
 * RMS is below min_rms_db (silent) or with more than max_clipped_fraction of its samples at
 * full scale (clipped) is counted and skipped. Otherwise its low side is made with AudioSR's
 * randomized low-pass (train/degrade.c) or taken from a second stream, the log-mel of both
 * sides is computed (lily_mel_compute, AudioSR's mel_spectrogram_train), and the segment waits
 * in memory until shard_segments are pending; then one safetensors shard is written atomically
 * (weights/safetensors.c: temporary file, fsync, rename, fsync of the folder) and index.json
 * is rewritten the same way.
 *
 * Crash safety follows from three rules: a shard is never modified once renamed into place;
 * the index only lists shards that are completely on disk; a source is marked complete only
 * when all its segments are in listed shards. A restarted writer therefore removes temporary
 * and unlisted shard files, marks the segments of partial sources as dropped (the shards keep
 * the bytes, the index stops serving them) and redoes those sources from their start. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/context.h"
#include "core/status.h"
#include "train/dataset.h"
#include "weights/json.h"    /* LilyStrBuf */
#include "weights/weights.h" /* LilySafetensorsWriter */

/* Samples [base, base + len) of one side of the current source. */
typedef struct Buf {
    float *x;
    int64_t len, cap, base;
} Buf;

typedef struct Pending {
    float *data; /* high [L] | low [L] | mel_high [F][256] | mel_low [F][256] */
    char *meta;  /* the segment's JSON object */
    int source;
} Pending;

struct LilyDatasetWriter {
    LilyContext *ctx;
    char *dir;
    int lock_fd;
    LilyDatasetParams params;
    int64_t L, hop, frames;
    LilyDsIndex idx;
    unsigned char *ended; /* per source: ended during this run (segments may still be pending) */
    int cap_ended;
    LilyMel *mel;
    float *scratch;       /* 2 L: a zero-padded tail segment */
    Pending *pend;
    int n_pend, cap_pend;
    LilyStatus failed;    /* once a write failed, every call returns this */

    /* The current source (cur < 0: none). */
    int cur;
    int skip;             /* complete already: ignore its samples */
    int stream;           /* low side from push_low */
    char *low_desc;
    int align_max, aligned, low_delay;
    double align_peak;
    Buf hi, lo;
    int64_t n_high;       /* high samples received */
    int64_t n_low;        /* low samples in source coordinates (after alignment) */
    int64_t low_raw;      /* low samples received */
    int64_t next_seg;     /* index of the next segment to cut */

    uint64_t segments_run, shards_run, sources_skipped;
    double old_seconds, run_seconds;
};

/* ---- small helpers --------------------------------------------------------------------- */

static LilyStatus buf_reserve(LilyContext *ctx, Buf *b, int64_t n)
{
    if (n <= b->cap) return LILY_OK;
    int64_t cap = b->cap ? b->cap : 65536;
    while (cap < n) cap *= 2;
    float *x = realloc(b->x, (size_t)cap * sizeof *x);
    if (!x) return lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory buffering %" PRId64
                              " samples", n);
    b->x = x;
    b->cap = cap;
    return LILY_OK;
}

/* Appends n samples whose first one has coordinate `start`; samples before b->base (already
 * passed over by a hop longer than the segment) are discarded. zeros: append zeros instead. */
static LilyStatus buf_append(LilyContext *ctx, Buf *b, const float *x, int64_t n, int64_t start)
{
    int64_t end = b->base + b->len;
    if (start < end) { /* cannot happen with contiguous input; keep the buffer consistent */
        int64_t k = end - start < n ? end - start : n;
        if (x) x += k;
        n -= k;
        start += k;
    }
    if (b->len == 0 && start < b->base) {
        int64_t k = b->base - start < n ? b->base - start : n;
        if (x) x += k;
        n -= k;
    }
    if (n <= 0) return LILY_OK;
    LILY_TRY(buf_reserve(ctx, b, b->len + n));
    if (x)
        memcpy(b->x + b->len, x, (size_t)n * sizeof *x);
    else
        memset(b->x + b->len, 0, (size_t)n * sizeof *b->x);
    b->len += n;
    return LILY_OK;
}

/* Forgets samples before coordinate `base`. */
static void buf_advance(Buf *b, int64_t base)
{
    if (base <= b->base) return;
    int64_t k = base - b->base;
    if (k >= b->len) {
        b->len = 0;
    } else {
        memmove(b->x, b->x + k, (size_t)(b->len - k) * sizeof *b->x);
        b->len -= k;
    }
    b->base = base;
}

static void buf_free(Buf *b)
{
    free(b->x);
    memset(b, 0, sizeof *b);
}

static LilyStatus fail(LilyDatasetWriter *w, LilyStatus st)
{
    if (st != LILY_OK && w->failed == LILY_OK) w->failed = st;
    return st;
}

static LilyStatus ensure_ended(LilyDatasetWriter *w)
{
    if (w->idx.n_sources <= w->cap_ended) return LILY_OK;
    int cap = w->cap_ended ? w->cap_ended : 16;
    while (cap < w->idx.n_sources) cap *= 2;
    unsigned char *e = realloc(w->ended, (size_t)cap);
    if (!e) return lily_error(w->ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
    memset(e + w->cap_ended, 0, (size_t)(cap - w->cap_ended));
    w->ended = e;
    w->cap_ended = cap;
    return LILY_OK;
}

static int pending_of(const LilyDatasetWriter *w, int source)
{
    int n = 0;
    for (int i = 0; i < w->n_pend; i++) n += w->pend[i].source == source;
    return n;
}

static void free_pending(LilyDatasetWriter *w)
{
    for (int i = 0; i < w->n_pend; i++) {
        free(w->pend[i].data);
        free(w->pend[i].meta);
    }
    w->n_pend = 0;
}

/* ---- shards ---------------------------------------------------------------------------- */

static LilyStatus write_shard(LilyDatasetWriter *w)
{
    LilyContext *ctx = w->ctx;
    if (w->n_pend == 0) return LILY_OK;
    char name[64], path[4200];
    snprintf(name, sizeof name, "shard-%05d.safetensors", w->idx.n_shards);
    snprintf(path, sizeof path, "%s/%s", w->dir, name);
    const int64_t L = w->L, F = w->frames;
    LilySafetensorsWriter *sw = NULL;
    LilyStrBuf meta = {0};
    int *sources = malloc((size_t)w->n_pend * sizeof *sources);
    LilyStatus st = sources ? LILY_OK : lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
    if (st == LILY_OK) st = lily_safetensors_writer_new(ctx, &sw);
    lily_strbuf_puts(&meta, "[");
    for (int i = 0; i < w->n_pend && st == LILY_OK; i++) {
        const Pending *p = &w->pend[i];
        const int64_t wave[1] = {L}, mel[2] = {F, LILY_N_MELS};
        char tn[64];
        sources[i] = p->source;
        snprintf(tn, sizeof tn, "seg.%d.high", i);
        st = lily_safetensors_writer_add(sw, tn, LILY_DTYPE_F32, LILY_DTYPE_F32, 1, wave, p->data);
        snprintf(tn, sizeof tn, "seg.%d.low", i);
        if (st == LILY_OK)
            st = lily_safetensors_writer_add(sw, tn, LILY_DTYPE_F32, LILY_DTYPE_F32, 1, wave,
                                             p->data + L);
        snprintf(tn, sizeof tn, "seg.%d.mel_high", i);
        if (st == LILY_OK)
            st = lily_safetensors_writer_add(sw, tn, LILY_DTYPE_F32, LILY_DTYPE_F32, 2, mel,
                                             p->data + 2 * L);
        snprintf(tn, sizeof tn, "seg.%d.mel_low", i);
        if (st == LILY_OK)
            st = lily_safetensors_writer_add(sw, tn, LILY_DTYPE_F32, LILY_DTYPE_F32, 2, mel,
                                             p->data + 2 * L + F * LILY_N_MELS);
        lily_strbuf_printf(&meta, "%s\n%s", i ? "," : "", p->meta);
    }
    lily_strbuf_puts(&meta, "\n]");
    if (st == LILY_OK && meta.failed) st = lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
    if (st == LILY_OK) st = lily_safetensors_writer_set_metadata(sw, "lily.format", LILY_DATASET_SHARD_FORMAT);
    if (st == LILY_OK) st = lily_safetensors_writer_set_metadata(sw, "lily.segments", meta.s);
    if (st == LILY_OK) {
        lily_log(ctx, LILY_LOG_DEBUG, "dataset: writing %s (%d segments)", path, w->n_pend);
        st = lily_safetensors_writer_write(sw, path, NULL, NULL);
        if (st != LILY_OK)
            lily_error_prefix(ctx, st, "dataset %s: shard %s not written (earlier shards and the "
                              "index are intact): ", w->dir, name);
    }
    lily_safetensors_writer_free(sw);
    lily_strbuf_free(&meta);
    if (st == LILY_OK) st = lily_ds_index_add_shard(ctx, &w->idx, name, w->n_pend, sources);
    free(sources);
    if (st != LILY_OK) return fail(w, st);
    const int n = w->n_pend;
    free_pending(w);
    /* Every source that ended now has all its segments in listed shards. */
    for (int i = 0; i < w->idx.n_sources && i < w->cap_ended; i++)
        if (w->ended[i]) w->idx.sources[i].state = LILY_DS_SOURCE_COMPLETE;
    st = lily_ds_index_write(ctx, w->dir, &w->idx);
    if (st != LILY_OK) {
        lily_error_prefix(ctx, st, "dataset %s: %s is written but the index could not be updated "
                          "(the shard will be redone by the next run): ", w->dir, name);
        return fail(w, st);
    }
    w->shards_run++;
    lily_log(ctx, LILY_LOG_INFO, "dataset: %s written: %d segments; the index lists %d shards",
             name, n, w->idx.n_shards);
    return LILY_OK;
}

/* ---- segments -------------------------------------------------------------------------- */

static LilyStatus push_pending(LilyDatasetWriter *w, Pending p)
{
    if (w->n_pend == w->cap_pend) {
        int cap = w->cap_pend ? w->cap_pend * 2 : 16;
        Pending *np = realloc(w->pend, (size_t)cap * sizeof *np);
        if (!np) return lily_error(w->ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
        w->pend = np;
        w->cap_pend = cap;
    }
    w->pend[w->n_pend++] = p;
    return LILY_OK;
}

/* One segment: high and (stream mode) low hold L samples from coordinate `start`, of which
 * `valid` are real. */
static LilyStatus emit(LilyDatasetWriter *w, int64_t start, int64_t valid, const float *high,
                       const float *low)
{
    LilyContext *ctx = w->ctx;
    LilyDsSource *src = &w->idx.sources[w->cur];
    const int64_t L = w->L, F = w->frames;
    const int64_t k = w->next_seg;
    float rms, peak;
    size_t clipped, bad;
    lily_ds_levels(high, (size_t)valid, &rms, &peak, &clipped, &bad);
    if (bad) {
        src->clipped++;
        lily_log(ctx, LILY_LOG_WARNING, "dataset: %s segment %" PRId64 " holds %zu non-finite "
                 "samples: skipped and counted as clipped", src->uri, k, bad);
        return LILY_OK;
    }
    if (rms < w->params.min_rms_db) {
        src->silent++;
        lily_log(ctx, LILY_LOG_DEBUG, "dataset: %s segment %" PRId64 " at %" PRId64 ": silent "
                 "(%.1f dB < %.1f dB), skipped", src->uri, k, start, rms, w->params.min_rms_db);
        return LILY_OK;
    }
    if ((double)clipped > w->params.max_clipped_fraction * (double)valid) {
        src->clipped++;
        lily_log(ctx, LILY_LOG_DEBUG, "dataset: %s segment %" PRId64 " at %" PRId64 ": %zu clipped "
                 "samples, skipped", src->uri, k, start, clipped);
        return LILY_OK;
    }
    Pending p = {0};
    p.source = w->cur;
    p.data = malloc((size_t)(2 * L + 2 * F * LILY_N_MELS) * sizeof(float));
    if (!p.data) return lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory for a segment");
    float *h = p.data, *l = h + L, *mh = l + L, *ml = mh + F * LILY_N_MELS;
    memcpy(h, high, (size_t)L * sizeof *h);
    LilyDegradation d = {0};
    LilyStatus st = LILY_OK;
    if (w->stream) {
        memcpy(l, low, (size_t)L * sizeof *l);
    } else {
        lily_degradation_draw(&w->params.degradation, w->params.seed, src->hash, (uint64_t)k, &d);
        st = lily_degradation_apply(ctx, &d, h, (size_t)L, l);
    }
    /* Padding stays silence on both sides (the filters ring a little into it). */
    if (valid < L) memset(l + valid, 0, (size_t)(L - valid) * sizeof *l);
    if (st == LILY_OK) st = lily_mel_compute(w->mel, h, (size_t)L, mh, NULL);
    if (st == LILY_OK) st = lily_mel_compute(w->mel, l, (size_t)L, ml, NULL);
    if (st != LILY_OK) {
        free(p.data);
        return lily_error_prefix(ctx, st, "dataset: %s segment %" PRId64 ": ", src->uri, k);
    }
    float lrms, lpeak;
    lily_ds_levels(l, (size_t)valid, &lrms, &lpeak, NULL, NULL);
    LilyStrBuf m = {0};
    lily_strbuf_printf(&m, "{\"source\": %d, \"uri\": ", w->cur);
    lily_strbuf_json_string(&m, src->uri);
    lily_strbuf_printf(&m, ", \"offset\": %" PRId64 ", \"index\": %" PRId64 ", \"valid\": %" PRId64
                       ", \"low\": ", start, k, valid);
    if (w->stream) {
        lily_strbuf_puts(&m, "{\"kind\": \"stream\", \"description\": ");
        lily_strbuf_json_string(&m, w->low_desc);
        lily_strbuf_printf(&m, ", \"delay\": %d}", w->low_delay);
    } else {
        lily_strbuf_printf(&m, "{\"kind\": \"lowpass\", \"filter\": \"%s\", \"order\": %d, "
                           "\"cutoff_hz\": %.0f, \"seed\": \"%" PRIu64 "\"}",
                           lily_filter_name(d.filter), d.order, d.cutoff_hz, w->params.seed);
    }
    lily_strbuf_printf(&m, ", \"high_rms_db\": %.3f, \"high_peak\": %.6f, \"low_rms_db\": %.3f, "
                       "\"low_peak\": %.6f}", rms, peak, lrms, lpeak);
    if (m.failed) {
        free(p.data);
        lily_strbuf_free(&m);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
    }
    p.meta = m.s;
    st = push_pending(w, p);
    if (st != LILY_OK) {
        free(p.data);
        free(p.meta);
        return st;
    }
    src->segments++;
    w->segments_run++;
    w->run_seconds += (double)valid / LILY_SAMPLE_RATE;
    if (w->stream)
        lily_log(ctx, LILY_LOG_DEBUG, "dataset: %s segment %" PRId64 " at %" PRId64 ": low side "
                 "'%s' (delay %d), %.1f dB", src->uri, k, start, w->low_desc, w->low_delay, rms);
    else
        lily_log(ctx, LILY_LOG_DEBUG, "dataset: %s segment %" PRId64 " at %" PRId64 ": %s order %d "
                 "cutoff %.0f Hz, %.1f dB, peak %.3f", src->uri, k, start,
                 lily_filter_name(d.filter), d.order, d.cutoff_hz, rms, peak);
    if (w->n_pend >= w->params.shard_segments) LILY_TRY(write_shard(w));
    return LILY_OK;
}

/* Estimates and removes the low stream's delay (once per source). */
static LilyStatus align(LilyDatasetWriter *w, int at_end)
{
    if (w->aligned) return LILY_OK;
    int64_t want = w->L + w->align_max;
    if (!at_end && (w->n_high < w->L || w->low_raw < want)) return LILY_OK;
    int64_t n = w->L;
    if (w->n_high < n) n = w->n_high;
    if (w->low_raw < n) n = w->low_raw;
    int lag = 0;
    double peak = 0;
    int max_lag = w->align_max;
    if (max_lag > n / 4) max_lag = (int)(n / 4);
    if (max_lag > 0) {
        /* Both buffers still start at coordinate 0: nothing was cut yet. */
        LILY_TRY(lily_dataset_estimate_delay(w->ctx, w->hi.x, w->lo.x, (size_t)n, max_lag, &lag,
                                             &peak));
        if (peak < 0.1) {
            lily_log(w->ctx, LILY_LOG_WARNING, "dataset: %s: the low stream barely correlates "
                     "with the source (%.3f at lag %d): taking it as aligned",
                     w->idx.sources[w->cur].uri, peak, lag);
            lag = 0;
        }
    }
    if (lag > 0) {
        buf_advance(&w->lo, lag);
        w->lo.base = 0;
        w->n_low = w->low_raw - lag;
        if (w->n_low < 0) w->n_low = 0;
    } else if (lag < 0) {
        Buf nb = {0};
        LILY_TRY(buf_reserve(w->ctx, &nb, w->lo.len - lag));
        memset(nb.x, 0, (size_t)(-lag) * sizeof *nb.x);
        memcpy(nb.x - lag, w->lo.x, (size_t)w->lo.len * sizeof *nb.x);
        nb.len = w->lo.len - lag;
        buf_free(&w->lo);
        w->lo = nb;
        w->n_low = w->low_raw - lag;
    } else {
        w->n_low = w->low_raw;
    }
    w->low_delay = lag;
    w->align_peak = peak;
    w->aligned = 1;
    lily_log(w->ctx, LILY_LOG_INFO, "dataset: %s: low stream delay %d samples (correlation %.3f)",
             w->idx.sources[w->cur].uri, lag, peak);
    return LILY_OK;
}

/* Cuts every complete segment. */
static LilyStatus cut(LilyDatasetWriter *w)
{
    for (;;) {
        if (w->stream) {
            LILY_TRY(align(w, 0));
            if (!w->aligned) return LILY_OK;
        }
        const int64_t start = w->next_seg * w->hop, end = start + w->L;
        if (w->n_high < end || (w->stream && w->n_low < end)) return LILY_OK;
        LILY_TRY(emit(w, start, w->L, w->hi.x + (start - w->hi.base),
                      w->stream ? w->lo.x + (start - w->lo.base) : NULL));
        w->next_seg++;
        buf_advance(&w->hi, w->next_seg * w->hop);
        if (w->stream) buf_advance(&w->lo, w->next_seg * w->hop);
    }
}

/* ---- the public calls ------------------------------------------------------------------ */

static LilyStatus mkdir_p(LilyContext *ctx, const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "dataset: folder name too long");
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return lily_error(ctx, LILY_ERR_IO, "dataset: cannot create folder %s: %s", path,
                              strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return lily_error(ctx, errno == ENOSPC ? LILY_ERR_DISK_FULL : LILY_ERR_IO,
                          "dataset: cannot create folder %s: %s", path, strerror(errno));
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return lily_error(ctx, LILY_ERR_IO, "dataset: %s is not a folder", path);
    return LILY_OK;
}

/* Removes temporary files and shards the index does not list; checks listed shards exist. */
static LilyStatus clean_folder(LilyDatasetWriter *w, int *changed)
{
    DIR *d = opendir(w->dir);
    if (!d) return lily_error(w->ctx, LILY_ERR_IO, "dataset: cannot list %s: %s", w->dir,
                              strerror(errno));
    struct dirent *e;
    LilyStatus st = LILY_OK;
    while ((e = readdir(d)) != NULL && st == LILY_OK) {
        int num = lily_ds_shard_number(e->d_name);
        int stale = lily_ds_is_temp_name(e->d_name) || (num >= w->idx.n_shards);
        if (!stale) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", w->dir, e->d_name);
        if (unlink(path) != 0 && errno != ENOENT)
            st = lily_error(w->ctx, LILY_ERR_IO, "dataset: cannot remove the leftover %s: %s",
                            path, strerror(errno));
        else
            lily_log(w->ctx, LILY_LOG_INFO, "dataset: removed %s, left by an interrupted run",
                     path);
        *changed = 1;
    }
    closedir(d);
    for (int i = 0; i < w->idx.n_shards && st == LILY_OK; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", w->dir, w->idx.shards[i].file);
        if (access(path, R_OK) != 0)
            st = lily_error(w->ctx, LILY_ERR_FORMAT, "dataset %s: the index lists %s but it cannot "
                            "be read (%s): the dataset is damaged; restore the file or start a "
                            "new folder", w->dir, w->idx.shards[i].file, strerror(errno));
    }
    return st;
}

LilyStatus lily_dataset_writer_open(LilyContext *ctx, const char *dir,
                                    const LilyDatasetParams *params, LilyDatasetWriter **out)
{
    *out = NULL;
    if (!dir || !dir[0])
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "dataset: no folder given (location)");
    LILY_TRY(lily_dataset_params_validate(ctx, params));
    LILY_TRY(mkdir_p(ctx, dir));
    LilyDatasetWriter *w = calloc(1, sizeof *w);
    if (!w) return lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
    w->ctx = ctx;
    w->lock_fd = -1;
    w->cur = -1;
    w->params = *params;
    w->L = lily_dataset_segment_samples(params);
    w->hop = lily_dataset_hop_samples(params);
    w->frames = w->L / LILY_HOP;
    LilyStatus st = LILY_OK;
    char lock[4200];
    w->dir = strdup(dir);
    w->scratch = malloc((size_t)(2 * w->L) * sizeof *w->scratch);
    if (!w->dir || !w->scratch) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
        goto fail;
    }
    snprintf(lock, sizeof lock, "%s/%s", dir, LILY_DS_LOCK_NAME);
    w->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (w->lock_fd < 0) {
        st = lily_error(ctx, errno == ENOSPC ? LILY_ERR_DISK_FULL : LILY_ERR_IO, "dataset: cannot "
                        "write in %s (%s): check the folder's permissions", dir, strerror(errno));
        goto fail;
    }
    if (flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        st = lily_error(ctx, LILY_ERR_IO, "dataset: another job is writing to %s (it holds %s); "
                        "wait for it or use another folder", dir, lock);
        goto fail;
    }
    int exists = 0;
    LILY_CHECK(st, lily_ds_index_read(ctx, dir, &w->idx, &exists), fail);
    if (exists) {
        LILY_CHECK(st, lily_ds_params_check_same(ctx, dir, &w->idx, params), fail);
        w->idx.params.shard_segments = params->shard_segments;
    } else {
        lily_ds_index_init(&w->idx, params);
    }
    int changed = 0;
    LILY_CHECK(st, clean_folder(w, &changed), fail);
    /* Sources a previous run left partial: their segments stop being served and the source is
     * redone when it comes again. */
    for (int s = 0; s < w->idx.n_shards; s++) {
        LilyDsShard *sh = &w->idx.shards[s];
        for (int k = 0; k < sh->segments; k++)
            if (!sh->dropped[k] && w->idx.sources[sh->sources[k]].state != LILY_DS_SOURCE_COMPLETE) {
                sh->dropped[k] = 1;
                changed = 1;
            }
    }
    for (int i = 0; i < w->idx.n_sources; i++) {
        LilyDsSource *src = &w->idx.sources[i];
        if (src->state == LILY_DS_SOURCE_COMPLETE) {
            w->old_seconds += (double)src->segments * (double)w->L / LILY_SAMPLE_RATE;
            continue;
        }
        if (src->segments) {
            lily_log(ctx, LILY_LOG_INFO, "dataset: %s was left partial by an earlier run: its %"
                     PRId64 " segments are dropped and it will be redone", src->uri, src->segments);
            changed = 1;
        }
        src->segments = src->silent = src->clipped = src->short_tails = src->samples = 0;
    }
    LILY_CHECK(st, ensure_ended(w), fail);
    if (changed || !exists) LILY_CHECK(st, lily_ds_index_write(ctx, dir, &w->idx), fail);
    LILY_CHECK(st, lily_mel_new(ctx, &w->mel), fail);
    lily_log(ctx, LILY_LOG_INFO, "dataset: %s open for appending: %d shards, %d sources; segment "
             "%" PRId64 " samples, hop %" PRId64 ", %d segments per shard", dir, w->idx.n_shards,
             w->idx.n_sources, w->L, w->hop, params->shard_segments);
    *out = w;
    return LILY_OK;
fail:
    lily_dataset_writer_abandon(w);
    return st;
}

static void reset_source(LilyDatasetWriter *w)
{
    w->cur = -1;
    w->skip = 0;
    w->stream = 0;
    free(w->low_desc);
    w->low_desc = NULL;
    w->align_max = w->aligned = w->low_delay = 0;
    w->align_peak = 0;
    w->hi.len = w->lo.len = 0;
    w->hi.base = w->lo.base = 0;
    w->n_high = w->n_low = w->low_raw = 0;
    w->next_seg = 0;
}

LilyStatus lily_dataset_writer_begin_source(LilyDatasetWriter *w, const char *uri,
                                            const LilyLowStream *low, int *already_complete)
{
    if (already_complete) *already_complete = 0;
    if (w->failed) return w->failed;
    LilyContext *ctx = w->ctx;
    if (!uri || !uri[0])
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "dataset: a source needs a URI");
    if (w->cur >= 0)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "dataset: source %s begins while %s is "
                          "still open: end it first", uri, w->idx.sources[w->cur].uri);
    int id = lily_ds_index_find(&w->idx, uri);
    if (id >= 0 && (w->idx.sources[id].state == LILY_DS_SOURCE_COMPLETE ||
                    (id < w->cap_ended && w->ended[id]))) {
        w->cur = id;
        w->skip = 1;
        w->sources_skipped++;
        if (already_complete) *already_complete = 1;
        lily_log(ctx, LILY_LOG_INFO, "dataset: %s is already complete in %s: skipped", uri, w->dir);
        return LILY_OK;
    }
    const char *desc = low ? (low->description && low->description[0] ? low->description : "stream")
                           : "lowpass";
    if (id < 0) {
        LILY_TRY(lily_ds_index_add_source(ctx, &w->idx, uri, desc, &id));
        LILY_TRY(ensure_ended(w));
    } else {
        LilyDsSource *s = &w->idx.sources[id];
        char *d = strdup(desc);
        if (!d) return lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
        free(s->low);
        s->low = d;
        s->segments = s->silent = s->clipped = s->short_tails = s->samples = 0;
    }
    w->cur = id;
    if (low) {
        w->stream = 1;
        w->low_desc = strdup(desc);
        if (!w->low_desc) return lily_error(ctx, LILY_ERR_NO_MEMORY, "dataset: out of memory");
        w->align_max = low->align_max_lag > 0 ? low->align_max_lag : 0;
        w->aligned = w->align_max == 0;
    }
    lily_log(ctx, LILY_LOG_INFO, "dataset: source %s (id %d, %s split, low side: %s)", uri, id,
             w->idx.sources[id].split == LILY_SPLIT_VALIDATION ? "validation" : "train", desc);
    return LILY_OK;
}

LilyStatus lily_dataset_writer_push(LilyDatasetWriter *w, const float *x, size_t n)
{
    if (w->failed) return w->failed;
    if (w->cur < 0)
        return lily_error(w->ctx, LILY_ERR_INVALID_ARGUMENT, "dataset: samples pushed outside a "
                          "source: call lily_dataset_writer_begin_source first");
    if (w->skip || n == 0) return LILY_OK;
    LILY_TRY(fail(w, buf_append(w->ctx, &w->hi, x, (int64_t)n, w->n_high)));
    w->n_high += (int64_t)n;
    return fail(w, cut(w));
}

LilyStatus lily_dataset_writer_push_low(LilyDatasetWriter *w, const float *x, size_t n)
{
    if (w->failed) return w->failed;
    if (w->cur < 0 || (!w->skip && !w->stream))
        return lily_error(w->ctx, LILY_ERR_INVALID_ARGUMENT, "dataset: low-side samples pushed "
                          "for a source that was begun without a low stream");
    if (w->skip || n == 0) return LILY_OK;
    if (!w->aligned) {
        LILY_TRY(fail(w, buf_append(w->ctx, &w->lo, x, (int64_t)n, w->low_raw)));
        w->low_raw += (int64_t)n;
    } else {
        LILY_TRY(fail(w, buf_append(w->ctx, &w->lo, x, (int64_t)n, w->n_low)));
        w->n_low += (int64_t)n;
        w->low_raw += (int64_t)n;
    }
    return fail(w, cut(w));
}

void lily_dataset_writer_buffered(const LilyDatasetWriter *w, int64_t *high_ahead,
                                  int64_t *low_ahead)
{
    int64_t lo = w->aligned ? w->n_low : w->low_raw;
    *high_ahead = w->stream && w->n_high > lo ? w->n_high - lo : 0;
    *low_ahead = w->stream && lo > w->n_high ? lo - w->n_high : 0;
}

LilyStatus lily_dataset_writer_end_source(LilyDatasetWriter *w)
{
    if (w->failed) return w->failed;
    if (w->cur < 0) return LILY_OK;
    if (w->skip) {
        reset_source(w);
        return LILY_OK;
    }
    LilyContext *ctx = w->ctx;
    LilyDsSource *src = &w->idx.sources[w->cur];
    LilyStatus st = LILY_OK;
    if (w->stream) {
        LILY_CHECK(st, align(w, 1), out);
        if (w->n_low < w->n_high) {
            lily_log(ctx, LILY_LOG_DEBUG, "dataset: %s: low stream ends %" PRId64 " samples early; "
                     "zero-padded", src->uri, w->n_high - w->n_low);
            LILY_CHECK(st, buf_append(ctx, &w->lo, NULL, w->n_high - w->n_low, w->n_low), out);
            w->n_low = w->n_high;
        }
    }
    LILY_CHECK(st, cut(w), out);
    const int64_t start = w->next_seg * w->hop;
    const int64_t last_end = w->next_seg > 0 ? (w->next_seg - 1) * w->hop + w->L : 0;
    const int64_t tail = w->n_high - start, uncovered = w->n_high - last_end;
    if (tail > 0 && uncovered > 0 && 2 * (tail < uncovered ? tail : uncovered) >= w->L) {
        float *h = w->scratch, *l = w->scratch + w->L;
        memset(w->scratch, 0, (size_t)(2 * w->L) * sizeof *w->scratch);
        memcpy(h, w->hi.x + (start - w->hi.base), (size_t)tail * sizeof *h);
        if (w->stream) memcpy(l, w->lo.x + (start - w->lo.base), (size_t)tail * sizeof *l);
        LILY_CHECK(st, emit(w, start, tail, h, w->stream ? l : NULL), out);
        w->next_seg++;
    } else if (uncovered > 0 && tail > 0) {
        src = &w->idx.sources[w->cur];
        src->short_tails++;
        lily_log(ctx, LILY_LOG_DEBUG, "dataset: %s: last %" PRId64 " samples are less than half a "
                 "segment: dropped", src->uri, tail);
    }
    src = &w->idx.sources[w->cur];
    src->samples = w->n_high;
    w->ended[w->cur] = 1;
    if (pending_of(w, w->cur) == 0) {
        /* Nothing of it waits for a shard: record it now, so a crash before the next shard
         * does not redo it. */
        src->state = LILY_DS_SOURCE_COMPLETE;
        st = lily_ds_index_write(ctx, w->dir, &w->idx);
    }
    lily_log(ctx, LILY_LOG_INFO, "dataset: %s done: %.2f s, %" PRId64 " segments kept, %" PRId64
             " silent, %" PRId64 " clipped, %" PRId64 " short tail", src->uri,
             (double)w->n_high / LILY_SAMPLE_RATE, src->segments, src->silent, src->clipped,
             src->short_tails);
out:
    reset_source(w);
    return fail(w, st);
}

LilyStatus lily_dataset_writer_abort_source(LilyDatasetWriter *w)
{
    if (w->cur < 0) return LILY_OK;
    if (w->skip) {
        reset_source(w);
        return LILY_OK;
    }
    const int id = w->cur;
    LilyDsSource *src = &w->idx.sources[id];
    int kept = 0, dropped = 0;
    for (int i = 0; i < w->n_pend; i++) {
        if (w->pend[i].source == id) {
            free(w->pend[i].data);
            free(w->pend[i].meta);
            dropped++;
        } else {
            w->pend[kept++] = w->pend[i];
        }
    }
    w->n_pend = kept;
    int in_shards = 0;
    for (int s = 0; s < w->idx.n_shards; s++)
        for (int k = 0; k < w->idx.shards[s].segments; k++)
            if (w->idx.shards[s].sources[k] == id && !w->idx.shards[s].dropped[k]) {
                w->idx.shards[s].dropped[k] = 1;
                in_shards++;
            }
    lily_log(w->ctx, LILY_LOG_INFO, "dataset: %s stopped before its end: %d pending and %d stored "
             "segments dropped; it stays partial and is redone when it comes again", src->uri,
             dropped, in_shards);
    src->segments = src->silent = src->clipped = src->short_tails = src->samples = 0;
    src->state = LILY_DS_SOURCE_PARTIAL;
    w->ended[id] = 0;
    reset_source(w);
    if (in_shards && !w->failed) return fail(w, lily_ds_index_write(w->ctx, w->dir, &w->idx));
    return w->failed;
}

LilyStatus lily_dataset_writer_flush(LilyDatasetWriter *w)
{
    if (w->failed) return w->failed;
    if (w->n_pend) return write_shard(w);
    /* Sources that ended without a kept segment are complete: record them. */
    for (int i = 0; i < w->idx.n_sources && i < w->cap_ended; i++)
        if (w->ended[i]) w->idx.sources[i].state = LILY_DS_SOURCE_COMPLETE;
    return fail(w, lily_ds_index_write(w->ctx, w->dir, &w->idx));
}

int lily_dataset_writer_in_source(const LilyDatasetWriter *w)
{
    return w->cur >= 0;
}

void lily_dataset_writer_counts(const LilyDatasetWriter *w, LilyDatasetCounts *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < w->idx.n_sources; i++) {
        const LilyDsSource *s = &w->idx.sources[i];
        c->segments += (uint64_t)s->segments;
        c->silent += (uint64_t)s->silent;
        c->clipped += (uint64_t)s->clipped;
        c->short_tails += (uint64_t)s->short_tails;
        c->sources += s->state == LILY_DS_SOURCE_COMPLETE ||
                      (i < w->cap_ended && w->ended[i]);
    }
    c->segments_run = w->segments_run;
    c->shards = (uint64_t)w->idx.n_shards;
    c->shards_run = w->shards_run;
    c->sources_skipped = w->sources_skipped;
    c->pending = (uint64_t)w->n_pend;
    c->seconds = w->old_seconds + w->run_seconds;
}

LilyStatus lily_dataset_writer_close(LilyDatasetWriter *w)
{
    if (!w) return LILY_OK;
    LilyStatus st = w->failed;
    /* A source still open did not reach its end: it stays partial (redone by the next run),
     * so its pending segments are not worth a shard. */
    if (st == LILY_OK && w->cur >= 0) st = lily_dataset_writer_abort_source(w);
    if (st == LILY_OK) st = lily_dataset_writer_flush(w);
    lily_dataset_writer_abandon(w);
    return st;
}

void lily_dataset_writer_abandon(LilyDatasetWriter *w)
{
    if (!w) return;
    free_pending(w);
    free(w->pend);
    buf_free(&w->hi);
    buf_free(&w->lo);
    free(w->low_desc);
    free(w->ended);
    free(w->scratch);
    lily_mel_free(w->mel);
    lily_ds_index_free(&w->idx);
    if (w->lock_fd >= 0) close(w->lock_fd); /* releases the flock */
    free(w->dir);
    free(w);
}
