/* lily/dataset.h - training datasets: (low, high) pairs made AudioSR's way, stored as
 * safetensors shards with an index, written atomically and read memory-mapped.
 *
 * AudioSR trains on 48 kHz audio paired with a copy low-passed by a randomly drawn IIR filter
 * (audiosr/lowpass.py: butter, cheby1, ellip or bessel, a random order and cutoff, applied
 * zero-phase with a resample_poly round trip; spec.md 3c). A Lily dataset holds such pairs cut
 * into fixed-length segments, together with the log-mel of both sides (spec.md 3a) so that
 * training never recomputes them. The layout is documented in docs/datasets.md:
 *
 *     DIR/index.json                  shards, sources, the train/validation split, counts
 *     DIR/shard-00000.safetensors     seg.<i>.high, seg.<i>.low       f32 [samples]
 *                                     seg.<i>.mel_high, seg.<i>.mel_low f32 [frames, 256]
 *                                     __metadata__ "lily.segments": per-segment JSON
 *
 * Writing (lily_dataset_writer_*): one writer per dataset folder at a time (a lock file says
 * so). Sources (files, streams) are pushed one after the other; segments are cut every hop,
 * silent and clipped ones are skipped and counted, the low side is made by
 * lily_degradation_apply() with parameters drawn from (seed, source, segment index) or taken
 * from a second stream (codec round trips made upstream). Every file is written to a
 * temporary name in the folder, fsync'ed and renamed, and the folder is fsync'ed, so a crash
 * or a full disk never leaves a corrupt shard or harms earlier ones. A restarted job skips
 * sources the index lists as complete and redoes partial ones from their start.
 *
 * Reading (lily_dataset_open and friends): shards are memory-mapped; segments are addressed
 * by index within a split (train or validation; the split is by source file, never by
 * segment), visited in a shuffled order that depends only on (seed, epoch).
 *
 * Thread safety: a writer or a reader is used by one thread at a time; separate readers of one
 * folder may live in separate threads or processes. */
#ifndef LILY_DATASET_H
#define LILY_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include <lily/lily.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LILY_DATASET_FORMAT "lily-dataset/1"      /* index.json "format" */
#define LILY_DATASET_SHARD_FORMAT "lily-shard/1"  /* shard metadata "lily.format" */
/* Segment lengths are whole multiples of this (0.64 s): 64 mel frames, what the UNet's three
 * down-samplings of the VAE's 8x latent need. */
#define LILY_DATASET_SEGMENT_QUANTUM 30720
/* A sample counts as clipped when its magnitude reaches this (within 1 LSB of 16-bit full
 * scale). */
#define LILY_DATASET_CLIP_LEVEL 0.9999f

/* ---------------------------------------------------------------------------------------- */
/* Parameters (config.yaml `data` section).                                                  */
/* ---------------------------------------------------------------------------------------- */
typedef struct LilyDegradeParams {
    unsigned filters;     /* bit (1u << LilyFilterType) per family to draw from; default all 4 */
    int order_min;        /* 2 */
    int order_max;        /* 10 */
    double cutoff_min_hz; /* 2000; drawn log-uniformly in [min, max], then truncated to whole Hz */
    double cutoff_max_hz; /* 16000 */
} LilyDegradeParams;

typedef struct LilyDatasetParams {
    double segment_seconds;      /* 5.12: a multiple of 0.64 s */
    double hop_seconds;          /* 5.12: distance between segment starts (> 0) */
    int shard_segments;          /* 256 segments per shard file */
    double validation_fraction;  /* 0.05 of the SOURCES go to validation */
    uint64_t seed;               /* 1234: degradation draws and the split */
    double min_rms_db;           /* -60: quieter segments are skipped as silent */
    double max_clipped_fraction; /* 0.001: segments with more clipped samples are skipped */
    LilyDegradeParams degradation;
} LilyDatasetParams;

/* The defaults above (the bundled config.yaml's values). */
void lily_dataset_params_init(LilyDatasetParams *p);
/* Checks ranges; the message names the parameter and the accepted range. */
LilyStatus lily_dataset_params_validate(LilyContext *ctx, const LilyDatasetParams *p);
/* Reads the `data` section of a Lily config.yaml (the other sections are validated too; an
 * error names file:line:column). dir (may be NULL) receives data.dir resolved against the
 * config file's folder. */
LilyStatus lily_dataset_params_load(LilyContext *ctx, const char *config_path,
                                    LilyDatasetParams *p, char *dir, size_t dir_len);
/* Parses "butter,ellip" into a filter mask (also "all"). */
LilyStatus lily_dataset_filters_parse(LilyContext *ctx, const char *list, unsigned *mask);
/* Samples per segment and per hop at 48 kHz (rounded to whole samples). */
int64_t lily_dataset_segment_samples(const LilyDatasetParams *p);
int64_t lily_dataset_hop_samples(const LilyDatasetParams *p);

/* ---------------------------------------------------------------------------------------- */
/* Degradation: AudioSR's randomized low-pass.                                               */
/* ---------------------------------------------------------------------------------------- */
typedef struct LilyDegradation {
    LilyFilterType filter;
    int order;
    double cutoff_hz; /* whole Hz */
} LilyDegradation;

/* 64-bit FNV-1a of a source URI: names a source in draws and in the split. */
uint64_t lily_dataset_source_hash(const char *uri);
/* The draw for segment `segment` (its index within its source) of the source with hash
 * `source_hash`: Philox4x32-10 keyed by `seed` at counter (segment, 0, hash low, hash high)
 * gives four words: the family (uniform over the allowed ones), the order (uniform integer in
 * [order_min, order_max]) and the cutoff (log-uniform in [cutoff_min, cutoff_max], truncated
 * to whole Hz). The same inputs give the same draw on every machine. */
void lily_degradation_draw(const LilyDegradeParams *p, uint64_t seed, uint64_t source_hash,
                           uint64_t segment, LilyDegradation *out);
/* Applies the draw with lily_lowpass (zero-phase IIR, resample_poly to 2 x cutoff and back,
 * zero-phase IIR again) to 48 kHz samples x[0..n) into y (y may equal x). */
LilyStatus lily_degradation_apply(LilyContext *ctx, const LilyDegradation *d, const float *x,
                                  size_t n, float *y);
/* Whether a source goes to validation: a Philox uniform keyed by (seed, source hash) below
 * `fraction`. Adding sources never moves existing ones between splits. */
int lily_dataset_source_is_validation(uint64_t seed, uint64_t source_hash, double fraction);
/* Delay of x relative to ref, in samples (x[i + lag] ~ ref[i]), searched in [-max_lag,
 * max_lag] by FFT cross-correlation; *peak (may be NULL) receives the normalised correlation
 * at that lag (1 = identical shape). Used to align a codec round trip (an MP3 encoder and
 * decoder add about 1105 samples that the timestamps do not show). */
LilyStatus lily_dataset_estimate_delay(LilyContext *ctx, const float *ref, const float *x,
                                       size_t n, int max_lag, int *lag, double *peak);

/* ---------------------------------------------------------------------------------------- */
/* Writer.                                                                                   */
/* ---------------------------------------------------------------------------------------- */
typedef struct LilyDatasetWriter LilyDatasetWriter;

typedef struct LilyDatasetCounts {
    uint64_t segments;        /* kept segments, in shards or pending (this folder, all runs) */
    uint64_t segments_run;    /* kept segments produced by this writer */
    uint64_t silent;          /* segments skipped because RMS < min_rms_db */
    uint64_t clipped;         /* segments skipped because of clipping */
    uint64_t short_tails;     /* source ends shorter than half a segment, dropped */
    uint64_t shards;          /* shard files listed in the index */
    uint64_t shards_run;      /* shard files written by this writer */
    uint64_t sources;         /* complete sources */
    uint64_t sources_skipped; /* sources this writer skipped because they were complete */
    uint64_t pending;         /* segments waiting for the next shard */
    double seconds;           /* audio in kept segments (real samples, not padding) */
} LilyDatasetCounts;

/* Opens DIR (created if missing) for appending: reads index.json if there is one (its
 * parameters must equal `params` except shard_segments, or the call fails saying which
 * differs), removes temporary files and shard files the index does not list (left by a
 * crash), and drops the segments of sources a previous run left partial. Fails with
 * LILY_ERR_IO if another writer holds the folder. */
LilyStatus lily_dataset_writer_open(LilyContext *ctx, const char *dir,
                                    const LilyDatasetParams *params, LilyDatasetWriter **out);

/* The low side of a source given as a second stream (already degraded, 48 kHz). */
typedef struct LilyLowStream {
    const char *description; /* recorded per segment: "mp3 64 kbit/s (lamemp3enc)" */
    int align_max_lag;       /* > 0: estimate the low stream's delay within +-this many samples
                              * on the first segment and compensate it; 0: take it as aligned */
} LilyLowStream;

/* Starts a source. uri names it in the index (and keys its draws and split). low is NULL for
 * the built-in randomized low-pass. *already_complete (may be NULL) is set to 1 when the
 * index lists the source as complete: the source is then skipped (pushes are ignored, end
 * does nothing). A source the index lists as partial is redone from its start. */
LilyStatus lily_dataset_writer_begin_source(LilyDatasetWriter *w, const char *uri,
                                            const LilyLowStream *low, int *already_complete);
/* Appends high-side samples (mono, 48 kHz) and cuts, checks, degrades and stores every
 * segment that is complete; writes a shard whenever shard_segments are pending. */
LilyStatus lily_dataset_writer_push(LilyDatasetWriter *w, const float *x, size_t n);
/* Appends low-side samples of a source begun with a LilyLowStream. */
LilyStatus lily_dataset_writer_push_low(LilyDatasetWriter *w, const float *x, size_t n);
/* Samples buffered for the current source on each side beyond what both sides cover (for
 * back-pressure between two streams). */
void lily_dataset_writer_buffered(const LilyDatasetWriter *w, int64_t *high_ahead,
                                  int64_t *low_ahead);
/* Ends the current source: a last partial segment is zero-padded and kept when at least half
 * a segment of audio would otherwise be lost (its metadata says how many samples are real),
 * otherwise counted as a short tail. A short low stream is zero-padded to the high side. */
LilyStatus lily_dataset_writer_end_source(LilyDatasetWriter *w);
/* Abandons the current source (a stream stopped before its end): its pending segments are
 * discarded, those already in shards stop being served, and it stays partial, so a later
 * begin of the same URI (in this job or the next) redoes it. */
LilyStatus lily_dataset_writer_abort_source(LilyDatasetWriter *w);
/* Whether a source is open (begun and not yet ended or aborted). */
int lily_dataset_writer_in_source(const LilyDatasetWriter *w);
/* Writes the pending segments as a (possibly short) shard and rewrites the index. */
LilyStatus lily_dataset_writer_flush(LilyDatasetWriter *w);
void lily_dataset_writer_counts(const LilyDatasetWriter *w, LilyDatasetCounts *c);
/* Aborts a source still open (lily_dataset_writer_abort_source), flushes and frees. The
 * writer is freed even when the flush fails (the status says so). */
LilyStatus lily_dataset_writer_close(LilyDatasetWriter *w);
/* Frees without writing anything more (after an error). What is on disk stays valid. */
void lily_dataset_writer_abandon(LilyDatasetWriter *w);

/* The state of a source in DIR's index without opening a writer: 0 absent (or no dataset),
 * 1 partial, 2 complete. */
LilyStatus lily_dataset_source_state(LilyContext *ctx, const char *dir, const char *uri,
                                     int *state);

/* ---------------------------------------------------------------------------------------- */
/* Reader.                                                                                   */
/* ---------------------------------------------------------------------------------------- */
typedef struct LilyDataset LilyDataset;

typedef enum LilyDatasetSplit {
    LILY_SPLIT_TRAIN = 0,
    LILY_SPLIT_VALIDATION = 1,
    LILY_SPLIT_ALL = 2,
} LilyDatasetSplit;

typedef enum LilyLowKind {
    LILY_LOW_LOWPASS = 0, /* made by lily_degradation_apply */
    LILY_LOW_STREAM = 1,  /* taken from a second stream (a codec round trip) */
} LilyLowKind;

typedef struct LilyDatasetSegment {
    const float *high;     /* [samples], memory-mapped, valid while the dataset is open */
    const float *low;      /* [samples] */
    const float *mel_high; /* [frames][256] */
    const float *mel_low;  /* [frames][256] */
    int64_t samples, frames;
    int64_t valid;         /* real samples (the rest is end-of-source zero padding) */
    int source;            /* index into lily_dataset_source_uri() */
    int64_t offset;        /* first sample within the source (48 kHz) */
    int64_t index;         /* segment index within its source (offset / hop) */
    LilyLowKind low_kind;
    LilyDegradation degradation; /* LILY_LOW_LOWPASS */
    const char *low_description; /* LILY_LOW_STREAM */
    int low_delay;         /* compensated delay of the low stream, samples */
    float high_rms_db, high_peak, low_rms_db, low_peak;
    int shard, slot;       /* where it is stored */
} LilyDatasetSegment;

/* Opens DIR: reads index.json and memory-maps every shard it lists, checking tensor names,
 * shapes and dtypes against the index. Segments of partial sources are not served. */
LilyStatus lily_dataset_open(LilyContext *ctx, const char *dir, LilyDataset **out);
void lily_dataset_close(LilyDataset *ds);

size_t lily_dataset_count(const LilyDataset *ds, LilyDatasetSplit split);
int64_t lily_dataset_samples(const LilyDataset *ds); /* per segment */
int64_t lily_dataset_frames(const LilyDataset *ds);  /* mel frames per segment */
const LilyDatasetParams *lily_dataset_params(const LilyDataset *ds);
int lily_dataset_source_count(const LilyDataset *ds);
const char *lily_dataset_source_uri(const LilyDataset *ds, int source);
LilyDatasetSplit lily_dataset_source_split(const LilyDataset *ds, int source);
/* Counts as recorded in the index (kept segments served, skipped ones counted). */
void lily_dataset_counts(const LilyDataset *ds, LilyDatasetCounts *c);
int lily_dataset_shard_count(const LilyDataset *ds);

/* Segment `index` (0 .. count-1) of a split, in storage order. */
LilyStatus lily_dataset_get(const LilyDataset *ds, LilyDatasetSplit split, size_t index,
                            LilyDatasetSegment *seg);
/* The visiting order of epoch `epoch`: a permutation of 0 .. count-1 of the split drawn by a
 * Fisher-Yates shuffle from Philox keyed by (seed, epoch). order holds count entries. */
LilyStatus lily_dataset_epoch_order(const LilyDataset *ds, LilyDatasetSplit split,
                                    uint64_t seed, uint64_t epoch, size_t *order);
/* Copies B segments (indices within the split) into contiguous batch buffers: high and low
 * [B][samples], mel_high and mel_low [B][frames][256]. Any output may be NULL. */
LilyStatus lily_dataset_batch(const LilyDataset *ds, LilyDatasetSplit split,
                              const size_t *indices, int batch, float *high, float *low,
                              float *mel_high, float *mel_low);

/* Endless iteration over epochs: every segment of the split exactly once per epoch, epochs
 * shuffled by (seed, epoch). The position is two integers, so training can resume exactly. */
typedef struct LilyDatasetIter {
    const LilyDataset *ds;
    LilyDatasetSplit split;
    uint64_t seed;
    uint64_t epoch;    /* current epoch */
    size_t position;   /* next entry of the epoch's order */
    size_t *order;     /* the current epoch's order (owned) */
    size_t count;
} LilyDatasetIter;

LilyStatus lily_dataset_iter_init(LilyDatasetIter *it, const LilyDataset *ds,
                                  LilyDatasetSplit split, uint64_t seed);
/* Moves to (epoch, position), e.g. from a checkpoint. */
LilyStatus lily_dataset_iter_seek(LilyDatasetIter *it, uint64_t epoch, size_t position);
/* The next `batch` split indices (crossing into the next epoch when one ends). */
LilyStatus lily_dataset_iter_next(LilyDatasetIter *it, int batch, size_t *indices);
void lily_dataset_iter_release(LilyDatasetIter *it);

/* Full check of a dataset folder: opens it, reads every value of every segment (all must be
 * finite), compares the index's counts with the shards and lists files the index does not
 * know. report receives one line per problem or note (may be NULL). Returns LILY_OK when the
 * dataset is consistent; *problems counts the problems found. */
typedef void (*LilyDatasetReportFn)(const char *line, void *user);
LilyStatus lily_dataset_verify(LilyContext *ctx, const char *dir, LilyDatasetReportFn report,
                               void *user, int *problems);

#ifdef __cplusplus
}
#endif

#endif /* LILY_DATASET_H */
