/* train/dataset.h - Lily training datasets inside the engine.
 *
 * The API (parameters, degradation draws, writer, reader, epoch iteration, batches) is public,
 * in <lily/dataset.h>, because the lilytrainsink element and lily-dataset reach it through
 * liblily; lily-train includes this header. What follows is what the writer, the reader and
 * the index code share: the in-memory form of index.json (docs/datasets.md) and the atomic
 * file write. */
#ifndef LILY_TRAIN_DATASET_H
#define LILY_TRAIN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include <lily/dataset.h>
#include <lily/lily.h>

#define LILY_DS_INDEX_NAME "index.json"
#define LILY_DS_LOCK_NAME ".lock"

typedef enum LilyDsSourceState {
    LILY_DS_SOURCE_ABSENT = 0,
    LILY_DS_SOURCE_PARTIAL = 1,  /* some segments may be in shards; redo from the start */
    LILY_DS_SOURCE_COMPLETE = 2, /* every segment is in a shard listed by the index */
} LilyDsSourceState;

typedef struct LilyDsSource {
    char *uri;
    uint64_t hash;             /* lily_dataset_source_hash(uri) */
    LilyDatasetSplit split;
    LilyDsSourceState state;
    int64_t segments, silent, clipped, short_tails;
    int64_t samples;           /* source length seen, 48 kHz samples */
    char *low;                 /* "lowpass" or the low stream's description */
} LilyDsSource;

typedef struct LilyDsShard {
    char *file;                /* "shard-00000.safetensors" */
    int segments;              /* segments the index vouches for (slots 0 .. segments-1) */
    int *sources;              /* source index per slot */
    unsigned char *dropped;    /* 1: slot belongs to a source redone later; not served */
} LilyDsShard;

typedef struct LilyDsIndex {
    LilyDatasetParams params;
    int64_t segment_samples, hop_samples, frames;
    LilyDsSource *sources;
    int n_sources, cap_sources;
    LilyDsShard *shards;
    int n_shards, cap_shards;
} LilyDsIndex;

/* An empty index for params. */
void lily_ds_index_init(LilyDsIndex *idx, const LilyDatasetParams *params);
void lily_ds_index_free(LilyDsIndex *idx);
/* Reads DIR/index.json; *exists = 0 (and idx untouched) when there is none. */
LilyStatus lily_ds_index_read(LilyContext *ctx, const char *dir, LilyDsIndex *idx, int *exists);
/* Writes DIR/index.json atomically (lily_ds_atomic_write). */
LilyStatus lily_ds_index_write(LilyContext *ctx, const char *dir, const LilyDsIndex *idx);
/* Index of the source with this URI, or -1. */
int lily_ds_index_find(const LilyDsIndex *idx, const char *uri);
/* Appends a source (state partial, counters zero); *id receives its index. */
LilyStatus lily_ds_index_add_source(LilyContext *ctx, LilyDsIndex *idx, const char *uri,
                                    const char *low, int *id);
/* Appends a shard entry taking ownership of nothing (sources is copied). */
LilyStatus lily_ds_index_add_shard(LilyContext *ctx, LilyDsIndex *idx, const char *file,
                                   int segments, const int *sources);
/* Fails naming the first parameter in which an existing dataset (idx) differs from p. */
LilyStatus lily_ds_params_check_same(LilyContext *ctx, const char *dir, const LilyDsIndex *idx,
                                     const LilyDatasetParams *p);
/* Totals over sources and shards. */
void lily_ds_index_counts(const LilyDsIndex *idx, LilyDatasetCounts *c);

/* Writes len bytes to DIR/name atomically: a temporary file ".<name>.tmp-XXXXXX" in DIR,
 * fsync, rename over name, fsync DIR. A full disk is LILY_ERR_DISK_FULL; on any failure the
 * temporary file is removed and the old file (if any) is untouched. */
LilyStatus lily_ds_atomic_write(LilyContext *ctx, const char *dir, const char *name,
                                const void *data, size_t len);
/* Whether a folder entry is a temporary file left by an atomic write. */
int lily_ds_is_temp_name(const char *name);
/* Parses "shard-NNNNN.safetensors" into its number (-1 if it is not such a name). */
int lily_ds_shard_number(const char *name);

/* RMS in dB (20 log10; -inf -> -400), peak |x| and the number of clipped samples. */
void lily_ds_levels(const float *x, size_t n, float *rms_db, float *peak, size_t *clipped,
                    size_t *nonfinite);

#endif /* LILY_TRAIN_DATASET_H */
