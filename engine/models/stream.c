/* models/stream.c - the chunk planners: LilyDiffuser, LilyVocoderStream, LilyEnhancer.
 *
 * The one place that decides how a stream is cut (the role of GStreamer's
 * audiofxbasefirfilter and stable-diffusion.cpp's tile planner, in 1-D). Both the GStreamer
 * elements and lily_enhance feed these objects, so the cutting, the cross-fades and the
 * random draws are the same whichever front end drives them, and they depend only on the
 * sequence of samples, never on how it arrived in buffers:
 *
 * Diffuser: chunk k covers mel frames [k S, k S + C) with S = C - O (C a multiple of 64
 * frames, O of 8). A chunk runs as soon as its C frames are in. At the end of the stream the
 * frames past the last chunk's coverage get one more chunk starting on the grid, its length
 * rounded up to 64 frames. A stream shorter than C frames is a single chunk padded to a
 * multiple of 5.12 s, as AudioSR pads a file. Overlaps are cross-faded with a raised cosine.
 *
 * Vocoder: chunks of V frames with K frames of context on each side, run once 2V + K frames
 * are available past the chunk's start; at the end the rest (at most 2V frames) is one chunk,
 * so a short stream is vocoded whole, as AudioSR does. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "models/pipeline.h"

#define NM LILY_N_MELS
#define HOP LILY_HOP
#define VOC_CONTEXT 32 /* frames of context on each side of a vocoder chunk (0.32 s) */

void lily_enhance_params_init(LilyEnhanceParams *p)
{
    memset(p, 0, sizeof *p);
    p->steps = 50;
    p->guidance_scale = 3.5f;
    p->eta = 1.0f;
    p->seed = 42;
    p->cutoff_hz = 0;
    p->filter_type = -1;
    p->chunk_seconds = 10.24;
    p->overlap_seconds = 1.28;
    p->vocoder_seconds = 5.12;
}

static LilyStatus check_params(LilyContext *ctx, const LilyEnhanceParams *p)
{
    if (p->steps < 1 || p->steps > 1000)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "steps must be 1..1000, got %d", p->steps);
    if (!isfinite(p->guidance_scale) || p->guidance_scale < 0 || p->guidance_scale > 100)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "guidance scale must be 0..100, got %g",
                          (double)p->guidance_scale);
    if (!(p->chunk_seconds >= 0.64) || p->chunk_seconds > 600)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                          "chunk length must be 0.64 s .. 600 s, got %g s", p->chunk_seconds);
    if (!(p->overlap_seconds >= 0) || p->overlap_seconds > p->chunk_seconds / 2)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                          "overlap must be 0 .. half the chunk (%g s), got %g s",
                          p->chunk_seconds / 2, p->overlap_seconds);
    if (!(p->vocoder_seconds >= 0.64) || p->vocoder_seconds > 600)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                          "vocoder chunk must be 0.64 s .. 600 s, got %g s", p->vocoder_seconds);
    if (p->cutoff_hz < 0 || p->cutoff_hz > LILY_SAMPLE_RATE / 2 || !isfinite(p->cutoff_hz))
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "cutoff must be 0 (auto) .. 24000 Hz, got %g",
                          p->cutoff_hz);
    return LILY_OK;
}

static int64_t round_frames(double seconds, int multiple)
{
    int64_t f = (int64_t)llround(seconds * LILY_SAMPLE_RATE / HOP / multiple) * multiple;
    return f < multiple ? multiple : f;
}

/* A growable float array with a consumed prefix (a simple FIFO). */
typedef struct Fifo {
    float *data;
    size_t head, len, cap; /* valid elements: data[head .. head + len) */
} Fifo;

static bool fifo_reserve(Fifo *f, size_t extra)
{
    if (f->head + f->len + extra <= f->cap) return true;
    if (f->head > 0) {
        memmove(f->data, f->data + f->head, f->len * sizeof(float));
        f->head = 0;
        if (f->len + extra <= f->cap) return true;
    }
    size_t cap = f->cap ? f->cap : 4096;
    while (cap < f->len + extra) cap *= 2;
    float *d = realloc(f->data, cap * sizeof(float));
    if (!d) return false;
    f->data = d;
    f->cap = cap;
    return true;
}

static bool fifo_push(Fifo *f, const float *x, size_t n)
{
    if (!fifo_reserve(f, n)) return false;
    if (x) memcpy(f->data + f->head + f->len, x, n * sizeof(float));
    else memset(f->data + f->head + f->len, 0, n * sizeof(float));
    f->len += n;
    return true;
}

static float *fifo_at(Fifo *f, size_t i) { return f->data + f->head + i; }

static void fifo_drop(Fifo *f, size_t n)
{
    if (n > f->len) n = f->len;
    f->head += n;
    f->len -= n;
    if (f->len == 0) f->head = 0;
}

static void fifo_free(Fifo *f)
{
    free(f->data);
    memset(f, 0, sizeof *f);
}

/* ======================================================================================== */
/* Diffuser                                                                                 */
/* ======================================================================================== */
struct LilyDiffuser {
    LilyContext *ctx;
    LilyModel *model;
    LilyEnhanceParams params;
    LilyMel *mel;
    int64_t C, O, S;     /* chunk, overlap, step (frames) */
    /* input: source samples from absolute sample in_start */
    Fifo in;
    int64_t in_start;    /* absolute sample index of in[0] */
    int64_t total;       /* real samples pushed */
    int64_t next_chunk;  /* absolute frame of the next chunk on the grid */
    int chunks_run;
    /* output: frames from absolute frame out_start; the first out_final are final */
    Fifo omel, ocond, osrc;
    int64_t out_start, out_frames, out_final;
    int64_t cover_end;   /* frames covered by chunks so far */
    bool finished;
    LilyChunkInfo last;
    float *buf_mel, *buf_cond; /* one chunk's results */
    size_t buf_frames;
};

LilyStatus lily_diffuser_new(LilyContext *ctx, LilyModel *model, const LilyEnhanceParams *params,
                             LilyDiffuser **out)
{
    *out = NULL;
    LilyEnhanceParams def;
    if (!params) {
        lily_enhance_params_init(&def);
        params = &def;
    }
    LILY_TRY(check_params(ctx, params));
    LilyDiffuser *d = calloc(1, sizeof *d);
    if (!d) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
    d->ctx = ctx;
    d->model = lily_model_ref(model);
    d->params = *params;
    d->C = round_frames(params->chunk_seconds, 64);
    d->O = params->overlap_seconds > 0 ? round_frames(params->overlap_seconds, 8) : 0;
    if (d->O > d->C / 2) d->O = d->C / 2 / 8 * 8;
    d->S = d->C - d->O;
    LilyStatus st = lily_mel_new(ctx, &d->mel);
    if (st != LILY_OK) {
        lily_diffuser_free(d);
        return st;
    }
    lily_log(ctx, LILY_LOG_DEBUG, "diffuser: chunk %lld frames, overlap %lld, step %lld",
             (long long)d->C, (long long)d->O, (long long)d->S);
    *out = d;
    return LILY_OK;
}

void lily_diffuser_free(LilyDiffuser *d)
{
    if (!d) return;
    lily_mel_free(d->mel);
    fifo_free(&d->in);
    fifo_free(&d->omel);
    fifo_free(&d->ocond);
    fifo_free(&d->osrc);
    free(d->buf_mel);
    free(d->buf_cond);
    lily_model_unref(d->model);
    free(d);
}

void lily_diffuser_reset(LilyDiffuser *d)
{
    fifo_drop(&d->in, d->in.len);
    fifo_drop(&d->omel, d->omel.len);
    fifo_drop(&d->ocond, d->ocond.len);
    fifo_drop(&d->osrc, d->osrc.len);
    d->in_start = d->total = d->next_chunk = 0;
    d->out_start = d->out_frames = d->out_final = d->cover_end = 0;
    d->chunks_run = 0;
    d->finished = false;
    memset(&d->last, 0, sizeof d->last);
}

LilyStatus lily_diffuser_set_sampling(LilyDiffuser *d, int steps, float guidance_scale)
{
    LilyEnhanceParams p = d->params;
    p.steps = steps;
    p.guidance_scale = guidance_scale;
    LILY_TRY(check_params(d->ctx, &p));
    d->params = p;
    return LILY_OK;
}

const LilyChunkInfo *lily_diffuser_last_chunk(const LilyDiffuser *d)
{
    return d->chunks_run ? &d->last : NULL;
}

int64_t lily_diffuser_latency(const LilyDiffuser *d)
{
    return lily_diffuser_latency_for(&d->params);
}

int64_t lily_diffuser_latency_for(const LilyEnhanceParams *p)
{
    LilyEnhanceParams def;
    if (!p) {
        lily_enhance_params_init(&def);
        p = &def;
    }
    return round_frames(p->chunk_seconds, 64) * HOP;
}

int64_t lily_vocoder_latency_for(const LilyEnhanceParams *p)
{
    LilyEnhanceParams def;
    if (!p) {
        lily_enhance_params_init(&def);
        p = &def;
    }
    return (2 * round_frames(p->vocoder_seconds, 8) + VOC_CONTEXT) * HOP;
}

/* Runs the chunk [start, start + len) frames and merges it into the output. */
static LilyStatus run_chunk(LilyDiffuser *d, int64_t start, int64_t len, bool final)
{
    LilyContext *ctx = d->ctx;
    size_t n = (size_t)(len * HOP);
    if ((size_t)len > d->buf_frames) {
        free(d->buf_mel);
        free(d->buf_cond);
        d->buf_mel = malloc((size_t)len * NM * sizeof(float));
        d->buf_cond = malloc(n * sizeof(float));
        d->buf_frames = d->buf_mel && d->buf_cond ? (size_t)len : 0;
        if (!d->buf_frames) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
    }
    /* the chunk's source samples: real ones from the input FIFO, zeros past the end */
    int64_t s0 = start * HOP;
    if (s0 < d->in_start) return lily_error(ctx, LILY_ERR_INTERNAL, "diffuser: chunk before input");
    int64_t have = d->in_start + (int64_t)d->in.len - s0;
    if (have < 0) have = 0;
    if (have < (int64_t)n && !fifo_reserve(&d->in, n - (size_t)have))
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
    float *src = fifo_at(&d->in, (size_t)(s0 - d->in_start));
    if (have < (int64_t)n) memset(src + have, 0, (n - (size_t)have) * sizeof(float));
    size_t n_valid = (size_t)(have < (int64_t)n ? have : (int64_t)n);
    LilyChunkWork w = {d->mel, &d->params};
    LILY_TRY(lily_diffuse_run(ctx, d->model, &w, src, (size_t)len, n_valid, start, d->buf_mel,
                              d->buf_cond, &d->last));
    d->chunks_run++;
    /* merge: [start, cover_end) is the overlap with what is held, cross-faded */
    int64_t ov = d->cover_end - start;
    if (ov < 0) ov = 0;
    if (ov > len) ov = len;
    int64_t held0 = start - d->out_start; /* index of `start` in the output FIFOs */
    for (int64_t j = 0; j < ov; j++) {
        float wn = (float)(0.5 - 0.5 * cos(M_PI * ((double)j + 0.5) / (double)ov));
        float wp = 1.0f - wn;
        float *om = fifo_at(&d->omel, (size_t)((held0 + j) * NM));
        const float *nmx = d->buf_mel + j * NM;
        for (int b = 0; b < NM; b++) om[b] = wp * om[b] + wn * nmx[b];
        float *oc = fifo_at(&d->ocond, (size_t)((held0 + j) * HOP));
        const float *nc = d->buf_cond + j * HOP;
        for (int i = 0; i < HOP; i++) oc[i] = wp * oc[i] + wn * nc[i];
    }
    int64_t add = len - ov;
    if (!fifo_push(&d->omel, d->buf_mel + ov * NM, (size_t)(add * NM)) ||
        !fifo_push(&d->ocond, d->buf_cond + ov * HOP, (size_t)(add * HOP)) ||
        !fifo_push(&d->osrc, src + ov * HOP, (size_t)(add * HOP)))
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
    d->out_frames += add;
    d->cover_end = start + len;
    /* final up to where the next chunk will start overlapping */
    int64_t final_end = final ? d->cover_end : start + len - d->O;
    if (final_end - d->out_start > d->out_final) d->out_final = final_end - d->out_start;
    /* input before the next chunk's start is no longer needed */
    int64_t keep_from = (start + d->S) * HOP;
    if (!final && keep_from > d->in_start) {
        size_t drop = (size_t)(keep_from - d->in_start);
        if (drop > d->in.len) drop = d->in.len;
        fifo_drop(&d->in, drop);
        d->in_start += (int64_t)drop;
    }
    lily_log(ctx, LILY_LOG_DEBUG, "diffuser: ran chunk [%lld, %lld) frames, %lld final",
             (long long)start, (long long)(start + len), (long long)(d->out_start + d->out_final));
    return LILY_OK;
}

LilyStatus lily_diffuser_push(LilyDiffuser *d, const float *x, size_t n)
{
    if (d->finished)
        return lily_error(d->ctx, LILY_ERR_INVALID_ARGUMENT, "diffuser: push after finish (reset first)");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return lily_error(d->ctx, LILY_ERR_NUMERIC, "diffuser: sample %lld is not finite",
                              (long long)(d->total + (int64_t)i));
    if (!fifo_push(&d->in, x, n)) return lily_error(d->ctx, LILY_ERR_NO_MEMORY, "out of memory");
    d->total += (int64_t)n;
    while ((d->next_chunk + d->C) * HOP <= d->total) {
        LILY_TRY(run_chunk(d, d->next_chunk, d->C, false));
        d->next_chunk += d->S;
    }
    return LILY_OK;
}

LilyStatus lily_diffuser_finish(LilyDiffuser *d)
{
    if (d->finished) return LILY_OK;
    d->finished = true;
    int64_t frames = (d->total + HOP - 1) / HOP;
    if (d->chunks_run == 0) {
        if (d->total > 0) {
            int64_t len = (int64_t)lily_audiosr_padded_frames((size_t)d->total);
            LILY_TRY(run_chunk(d, 0, len, true));
        }
    } else if (frames > d->cover_end) {
        int64_t len = (frames - d->next_chunk + 63) / 64 * 64;
        LILY_TRY(run_chunk(d, d->next_chunk, len, true));
    }
    d->out_final = d->out_frames;
    return LILY_OK;
}

size_t lily_diffuser_ready(const LilyDiffuser *d)
{
    return (size_t)d->out_final;
}

size_t lily_diffuser_pull(LilyDiffuser *d, float *mel, float *cond, float *src, size_t max_frames,
                          size_t *n_valid)
{
    size_t f = (size_t)d->out_final < max_frames ? (size_t)d->out_final : max_frames;
    if (f > 0 && mel) memcpy(mel, fifo_at(&d->omel, 0), f * NM * sizeof(float));
    if (f > 0 && cond) memcpy(cond, fifo_at(&d->ocond, 0), f * HOP * sizeof(float));
    if (f > 0 && src) memcpy(src, fifo_at(&d->osrc, 0), f * HOP * sizeof(float));
    if (n_valid) {
        int64_t v = d->total - d->out_start * HOP;
        if (v < 0) v = 0;
        if (v > (int64_t)(f * HOP)) v = (int64_t)(f * HOP);
        *n_valid = (size_t)v;
    }
    fifo_drop(&d->omel, f * NM);
    fifo_drop(&d->ocond, f * HOP);
    fifo_drop(&d->osrc, f * HOP);
    d->out_start += (int64_t)f;
    d->out_frames -= (int64_t)f;
    d->out_final -= (int64_t)f;
    return f;
}

/* ======================================================================================== */
/* Vocoder stream                                                                           */
/* ======================================================================================== */
struct LilyVocoderStream {
    LilyContext *ctx;
    LilyModel *model;
    LilyEnhanceParams params;
    LilyMel *mel;
    int64_t V, K;
    Fifo qmel, qcond, qsrc; /* frames from absolute frame q_start */
    int64_t q_start, q_frames;
    int64_t valid;          /* real samples among everything pushed */
    int64_t pos;            /* next frame to vocode */
    Fifo out;
    int64_t out_emitted;    /* samples already placed in `out` (absolute) */
    bool finished;
    float *buf;
    size_t buf_len;
};

LilyStatus lily_vocoder_stream_new(LilyContext *ctx, LilyModel *model,
                                   const LilyEnhanceParams *params, LilyVocoderStream **out)
{
    *out = NULL;
    LilyEnhanceParams def;
    if (!params) {
        lily_enhance_params_init(&def);
        params = &def;
    }
    LILY_TRY(check_params(ctx, params));
    LilyVocoderStream *v = calloc(1, sizeof *v);
    if (!v) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
    v->ctx = ctx;
    v->model = lily_model_ref(model);
    v->params = *params;
    v->V = round_frames(params->vocoder_seconds, 8);
    v->K = VOC_CONTEXT;
    LilyStatus st = lily_mel_new(ctx, &v->mel);
    if (st != LILY_OK) {
        lily_vocoder_stream_free(v);
        return st;
    }
    *out = v;
    return LILY_OK;
}

void lily_vocoder_stream_free(LilyVocoderStream *v)
{
    if (!v) return;
    lily_mel_free(v->mel);
    fifo_free(&v->qmel);
    fifo_free(&v->qcond);
    fifo_free(&v->qsrc);
    fifo_free(&v->out);
    free(v->buf);
    lily_model_unref(v->model);
    free(v);
}

void lily_vocoder_stream_reset(LilyVocoderStream *v)
{
    fifo_drop(&v->qmel, v->qmel.len);
    fifo_drop(&v->qcond, v->qcond.len);
    fifo_drop(&v->qsrc, v->qsrc.len);
    fifo_drop(&v->out, v->out.len);
    v->q_start = v->q_frames = v->valid = v->pos = v->out_emitted = 0;
    v->finished = false;
}

int64_t lily_vocoder_stream_latency(const LilyVocoderStream *v)
{
    return lily_vocoder_latency_for(&v->params);
}

/* Vocodes [pos, pos + len) with the context available (at most K each side). */
static LilyStatus vocode_chunk(LilyVocoderStream *v, int64_t len)
{
    LilyContext *ctx = v->ctx;
    int64_t end = v->q_start + v->q_frames;
    int64_t kl = v->pos - v->q_start < v->K ? v->pos - v->q_start : v->K;
    int64_t kr = end - (v->pos + len) < v->K ? end - (v->pos + len) : v->K;
    int64_t w0 = v->pos - kl, wl = kl + len + kr;
    size_t n = (size_t)(wl * HOP);
    if (n > v->buf_len) {
        free(v->buf);
        v->buf = malloc(n * sizeof(float));
        v->buf_len = v->buf ? n : 0;
        if (!v->buf) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
    }
    int64_t off = w0 - v->q_start;
    int64_t valid = v->valid - w0 * HOP;
    if (valid < 0) valid = 0;
    LilyChunkWork w = {v->mel, &v->params};
    LILY_TRY(lily_vocode_run(ctx, v->model, &w, fifo_at(&v->qmel, (size_t)(off * NM)),
                             fifo_at(&v->qcond, (size_t)(off * HOP)),
                             fifo_at(&v->qsrc, (size_t)(off * HOP)), (size_t)wl,
                             (size_t)valid, w0, v->buf));
    /* keep [pos, pos + len), real samples only */
    int64_t a = v->pos * HOP, b = (v->pos + len) * HOP;
    if (b > v->valid) b = v->valid;
    if (b > a && !fifo_push(&v->out, v->buf + kl * HOP, (size_t)(b - a)))
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
    lily_log(ctx, LILY_LOG_DEBUG, "vocoder: frames [%lld, %lld) with context %lld/%lld",
             (long long)v->pos, (long long)(v->pos + len), (long long)kl, (long long)kr);
    v->pos += len;
    /* frames before pos - K are no longer needed */
    int64_t drop = v->pos - v->K - v->q_start;
    if (drop > 0) {
        fifo_drop(&v->qmel, (size_t)(drop * NM));
        fifo_drop(&v->qcond, (size_t)(drop * HOP));
        fifo_drop(&v->qsrc, (size_t)(drop * HOP));
        v->q_start += drop;
        v->q_frames -= drop;
    }
    return LILY_OK;
}

static LilyStatus vocoder_process(LilyVocoderStream *v, bool eos)
{
    for (;;) {
        int64_t avail = v->q_start + v->q_frames - v->pos;
        if (avail <= 0) return LILY_OK;
        if (!eos) {
            if (avail < 2 * v->V + v->K) return LILY_OK;
            LILY_TRY(vocode_chunk(v, v->V));
        } else {
            LILY_TRY(vocode_chunk(v, avail <= 2 * v->V ? avail : v->V));
        }
    }
}

LilyStatus lily_vocoder_stream_push(LilyVocoderStream *v, const float *mel, const float *cond,
                                    const float *src, size_t frames, size_t n_valid)
{
    if (v->finished)
        return lily_error(v->ctx, LILY_ERR_INVALID_ARGUMENT, "vocoder: push after finish (reset first)");
    if (!fifo_push(&v->qmel, mel, frames * NM) || !fifo_push(&v->qcond, cond, frames * HOP) ||
        !fifo_push(&v->qsrc, src, frames * HOP))
        return lily_error(v->ctx, LILY_ERR_NO_MEMORY, "out of memory");
    v->q_frames += (int64_t)frames;
    v->valid += (int64_t)(n_valid < frames * HOP ? n_valid : frames * HOP);
    return vocoder_process(v, false);
}

LilyStatus lily_vocoder_stream_finish(LilyVocoderStream *v)
{
    if (v->finished) return LILY_OK;
    v->finished = true;
    return vocoder_process(v, true);
}

size_t lily_vocoder_stream_ready(const LilyVocoderStream *v)
{
    return v->out.len;
}

size_t lily_vocoder_stream_pull(LilyVocoderStream *v, float *out, size_t max_samples)
{
    size_t n = v->out.len < max_samples ? v->out.len : max_samples;
    if (n == 0) return 0;
    memcpy(out, fifo_at(&v->out, 0), n * sizeof(float));
    fifo_drop(&v->out, n);
    v->out_emitted += (int64_t)n;
    return n;
}

/* ======================================================================================== */
/* Enhancer: the two stages chained                                                          */
/* ======================================================================================== */
struct LilyEnhancer {
    LilyContext *ctx;
    LilyDiffuser *d;
    LilyVocoderStream *v;
    float *mel, *cond, *src;
    size_t cap;
};

LilyStatus lily_enhancer_new(LilyContext *ctx, LilyModel *model, const LilyEnhanceParams *params,
                             LilyEnhancer **out)
{
    *out = NULL;
    LilyEnhancer *e = calloc(1, sizeof *e);
    if (!e) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
    e->ctx = ctx;
    LilyStatus st = lily_diffuser_new(ctx, model, params, &e->d);
    if (st == LILY_OK) st = lily_vocoder_stream_new(ctx, model, params, &e->v);
    if (st != LILY_OK) {
        lily_enhancer_free(e);
        return st;
    }
    *out = e;
    return LILY_OK;
}

void lily_enhancer_free(LilyEnhancer *e)
{
    if (!e) return;
    lily_diffuser_free(e->d);
    lily_vocoder_stream_free(e->v);
    free(e->mel);
    free(e->cond);
    free(e->src);
    free(e);
}

/* Moves every final frame of the diffuser into the vocoder stream, in one push. */
static LilyStatus transfer(LilyEnhancer *e)
{
    size_t f = lily_diffuser_ready(e->d);
    if (f == 0) return LILY_OK;
    if (f > e->cap) {
        free(e->mel);
        free(e->cond);
        free(e->src);
        e->mel = malloc(f * NM * sizeof(float));
        e->cond = malloc(f * HOP * sizeof(float));
        e->src = malloc(f * HOP * sizeof(float));
        e->cap = e->mel && e->cond && e->src ? f : 0;
        if (!e->cap) return lily_error(e->ctx, LILY_ERR_NO_MEMORY, "out of memory");
    }
    size_t valid = 0;
    f = lily_diffuser_pull(e->d, e->mel, e->cond, e->src, f, &valid);
    return lily_vocoder_stream_push(e->v, e->mel, e->cond, e->src, f, valid);
}

LilyStatus lily_enhancer_push(LilyEnhancer *e, const float *x, size_t n)
{
    LILY_TRY(lily_diffuser_push(e->d, x, n));
    return transfer(e);
}

LilyStatus lily_enhancer_finish(LilyEnhancer *e)
{
    LILY_TRY(lily_diffuser_finish(e->d));
    LILY_TRY(transfer(e));
    return lily_vocoder_stream_finish(e->v);
}

size_t lily_enhancer_ready(const LilyEnhancer *e) { return lily_vocoder_stream_ready(e->v); }

size_t lily_enhancer_pull(LilyEnhancer *e, float *out, size_t max_samples)
{
    return lily_vocoder_stream_pull(e->v, out, max_samples);
}

int64_t lily_enhancer_latency(const LilyEnhancer *e)
{
    return lily_diffuser_latency(e->d) + lily_vocoder_stream_latency(e->v);
}

void lily_enhancer_reset(LilyEnhancer *e)
{
    lily_diffuser_reset(e->d);
    lily_vocoder_stream_reset(e->v);
}
