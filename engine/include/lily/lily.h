/* lily.h - the public C API of liblily, the Lily audio super-resolution engine.
 *
 * Lily implements AudioSR (Liu et al., "AudioSR: Versatile Audio Super-resolution at Scale")
 * natively: a 48 kHz log-mel front end, a KL-VAE, a latent-diffusion UNet sampled with DDIM and
 * classifier-free guidance, a 48 kHz HiFi-GAN vocoder and AudioSR's low-band restore.
 *
 * Usage (whole-buffer enhancement, error handling shortened):
 *
 *     LilyContextParams cp;
 *     lily_context_params_init(&cp);               // CPU, all cores, fp32
 *     LilyContext *ctx;
 *     char err[512];
 *     if (lily_context_new(&cp, &ctx, err, sizeof err) != LILY_OK) { puts(err); return 1; }
 *     LilyModel *model;
 *     if (lily_model_load(ctx, "tiny.safetensors", NULL, &model) != LILY_OK)
 *         puts(lily_context_error(ctx));
 *     LilyEnhanceParams ep;
 *     lily_enhance_params_init(&ep);               // 50 steps, guidance 3.5, seed 42
 *     float *out; size_t n_out;
 *     lily_enhance(ctx, model, &ep, samples, n_samples, 16000, &out, &n_out);  // out is 48 kHz
 *     ...
 *     lily_free(out);
 *     lily_model_unref(model);
 *     lily_context_free(ctx);
 *
 * Return values: every call that can fail returns a LilyStatus; LILY_OK is 0. On failure the
 * context keeps a message that names the file, tensor or parameter at fault and what to do
 * about it (lily_context_error()). Nothing reachable from a file, a stream or a parameter
 * calls exit() or abort().
 *
 * Thread safety: a LilyContext is used by one thread at a time (it owns scratch memory, the
 * random generator and the last error). A LilyModel is immutable once loaded and may be shared,
 * by reference counting, between any number of contexts on the same device, used from any
 * thread. lily_context_set_abort() installs a callback that long calls poll (at least once per
 * sampler step) and that may be triggered from another thread.
 */
#ifndef LILY_LILY_H
#define LILY_LILY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LILY_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------------------------------- */
/* Fixed front-end numbers (AudioSR, spec.md section 1).                                     */
/* ---------------------------------------------------------------------------------------- */
#define LILY_SAMPLE_RATE 48000   /* every model stage runs at 48 kHz */
#define LILY_N_FFT 2048          /* mel STFT size and window length */
#define LILY_HOP 480             /* mel hop: 100 frames per second */
#define LILY_N_MELS 256          /* Slaney mel bins, 20 Hz to 24 kHz */
#define LILY_MEL_FMIN 20.0
#define LILY_MEL_FMAX 24000.0
#define LILY_SEGMENT_SAMPLES 245760 /* AudioSR pads inputs to multiples of 5.12 s */
#define LILY_LOG_MEL_FLOOR 1e-5  /* log_mel = ln(max(mel, 1e-5)) */

/* ---------------------------------------------------------------------------------------- */
/* Status codes.                                                                             */
/* ---------------------------------------------------------------------------------------- */
typedef enum LilyStatus {
    LILY_OK = 0,
    LILY_ERR_INVALID_ARGUMENT, /* a parameter is out of range or a name is unknown */
    LILY_ERR_IO,               /* a file could not be opened, read or written */
    LILY_ERR_FORMAT,           /* a file is not what it claims: bad magic, truncated, corrupt */
    LILY_ERR_SHAPE,            /* a tensor's shape disagrees with the model config */
    LILY_ERR_UNSUPPORTED,      /* well-formed but not handled (dtype, opcode, device feature) */
    LILY_ERR_NO_MEMORY,        /* a host or device allocation failed */
    LILY_ERR_DEVICE,           /* the device is missing or failed */
    LILY_ERR_NUMERIC,          /* NaN or infinity where finite values are required */
    LILY_ERR_CANCELLED,        /* the abort callback asked to stop */
    LILY_ERR_DISK_FULL,        /* no space left while writing */
    LILY_ERR_INTERNAL,         /* a bug in Lily: please report it */
} LilyStatus;

/* "ok", "invalid-argument", ...: a short stable name. */
const char *lily_status_name(LilyStatus status);

/* ---------------------------------------------------------------------------------------- */
/* Names shared by YAML, the command line and GStreamer enum nicks.                          */
/* ---------------------------------------------------------------------------------------- */
typedef enum LilyDeviceKind {
    LILY_DEVICE_CPU = 0,
    LILY_DEVICE_CUDA = 1,
} LilyDeviceKind;

typedef enum LilyPrecision {
    LILY_PRECISION_F32 = 0,
    LILY_PRECISION_BF16 = 1, /* bf16 matrix products with fp32 accumulation and fp32 norms */
    LILY_PRECISION_F16 = 2,  /* CUDA only */
} LilyPrecision;

typedef enum LilyDType {
    LILY_DTYPE_F32 = 0,
    LILY_DTYPE_BF16,
    LILY_DTYPE_F16,
    LILY_DTYPE_I64,
    LILY_DTYPE_I32,
    LILY_DTYPE_U8,
    LILY_DTYPE_COUNT
} LilyDType;

/* AudioSR's four IIR families for the condition's re-low-pass (spec.md 3c). */
typedef enum LilyFilterType {
    LILY_FILTER_BUTTER = 0,
    LILY_FILTER_CHEBY1,
    LILY_FILTER_ELLIP,
    LILY_FILTER_BESSEL,
    LILY_FILTER_COUNT
} LilyFilterType;

const char *lily_device_name(LilyDeviceKind kind);           /* "cpu", "cuda" */
/* Parses "cpu", "cuda" or "cuda:N" (index defaults to 0). */
LilyStatus lily_device_parse(const char *text, LilyDeviceKind *kind, int *index);
const char *lily_precision_name(LilyPrecision p);            /* "f32", "bf16", "f16" */
LilyStatus lily_precision_from_name(const char *name, LilyPrecision *p);
const char *lily_dtype_name(LilyDType t);                    /* "f32", "bf16", ... */
LilyStatus lily_dtype_from_name(const char *name, LilyDType *t);
size_t lily_dtype_size(LilyDType t);
const char *lily_filter_name(LilyFilterType f);              /* "butter", "cheby1", ... */
LilyStatus lily_filter_from_name(const char *name, LilyFilterType *f);

/* Whether a device kind can be used in this process. On failure `why` says why (not built,
 * no driver, no device, index out of range). */
LilyStatus lily_device_probe(LilyDeviceKind kind, int index, char *why, size_t why_len);

/* ---------------------------------------------------------------------------------------- */
/* Logging, progress and cancellation.                                                       */
/* ---------------------------------------------------------------------------------------- */
typedef enum LilyLogLevel {
    LILY_LOG_ERROR = 1,
    LILY_LOG_WARNING = 2,
    LILY_LOG_INFO = 3,
    LILY_LOG_DEBUG = 4,
    LILY_LOG_TRACE = 5,
} LilyLogLevel;

typedef void (*LilyLogFn)(LilyLogLevel level, const char *message, void *user_data);
/* Called with done <= total in units of work (sampler steps, chunks) and a stage name. */
typedef void (*LilyProgressFn)(const char *stage, int64_t done, int64_t total, void *user_data);
/* Returns nonzero to ask the running call to stop with LILY_ERR_CANCELLED. */
typedef int (*LilyAbortFn)(void *user_data);

/* ---------------------------------------------------------------------------------------- */
/* Context.                                                                                  */
/* ---------------------------------------------------------------------------------------- */
typedef struct LilyContext LilyContext;

typedef struct LilyContextParams {
    LilyDeviceKind device; /* default LILY_DEVICE_CPU */
    int device_index;      /* CUDA device ordinal; default 0 */
    int n_threads;         /* CPU threads; 0 = all online cores */
    LilyLogFn log;         /* NULL: messages at WARNING and above go to stderr */
    void *log_user_data;
    LilyLogLevel log_level; /* default LILY_LOG_WARNING */
} LilyContextParams;

void lily_context_params_init(LilyContextParams *params);
/* On failure *ctx is NULL and err (if not NULL) holds the reason. */
LilyStatus lily_context_new(const LilyContextParams *params, LilyContext **ctx, char *err,
                            size_t err_len);
void lily_context_free(LilyContext *ctx);
/* The message of the last failed call on this context ("" if none). */
const char *lily_context_error(const LilyContext *ctx);
void lily_context_set_abort(LilyContext *ctx, LilyAbortFn fn, void *user_data);
void lily_context_set_progress(LilyContext *ctx, LilyProgressFn fn, void *user_data);
LilyDeviceKind lily_context_device(const LilyContext *ctx);
/* Peak bytes of scratch memory this context has held (its arena), and current bytes. */
size_t lily_context_peak_scratch(const LilyContext *ctx);

/* Floating-point operations issued by the dense ops (convolutions, matrix products,
 * attention) on this context since it was created or last reset: for benchmarks. */
double lily_context_flops(const LilyContext *ctx);
void lily_context_reset_flops(LilyContext *ctx);

/* Frees memory returned by Lily calls (buffers, strings). */
void lily_free(void *p);

/* ---------------------------------------------------------------------------------------- */
/* Mel front end (AudioSR's mel_spectrogram_train: spec.md 3a).                              */
/* ---------------------------------------------------------------------------------------- */
typedef struct LilyMel LilyMel;

LilyStatus lily_mel_new(LilyContext *ctx, LilyMel **mel);
void lily_mel_free(LilyMel *mel);
/* Log-mel frames of a 48 kHz signal exactly as AudioSR computes them for a whole padded
 * waveform x[0..n): reflect-pad 784 samples on each side, periodic Hann 2048, hop 480,
 * magnitude, Slaney mel 256 bins 20-24000 Hz, ln(max(mel, 1e-5)). Writes n/480 frames
 * (n must be a multiple of 480) as out[frame * 256 + bin]. If stft_mag is not NULL it
 * receives the magnitudes, [frames][1024] (the Nyquist bin dropped, as AudioSR does).
 * A NaN or infinite sample fails with LILY_ERR_NUMERIC and a message naming the index of the
 * first one ("mel: input sample 1234 is NaN: ..."); nothing is written then. */
LilyStatus lily_mel_compute(LilyMel *mel, const float *x, size_t n, float *out, float *stft_mag);
/* Frames [first, first + count) of a signal given as a window of samples: x points at the
 * sample of index first*480 - 784 of the (already padded) signal and must hold
 * count*480 + 1568 samples. Used by streaming front ends that pad the ends themselves.
 * Frame for frame it equals lily_mel_compute bit for bit. Non-finite samples: as above, the
 * index counted from x. */
LilyStatus lily_mel_frames(LilyMel *mel, const float *x, size_t count, float *out);
/* The filterbank, [256][1025] row-major (librosa.filters.mel, Slaney). */
const float *lily_mel_filterbank(const LilyMel *mel);

/* AudioSR's 0.985 energy rule (spec.md 3b, 8, 10): given per-bin energies e[0..n) (already
 * summed over time), returns the cutoff index: scanning from the top, the first i with
 * cumsum(e)[i] < 0.985 * total. Returns 0 when no bin qualifies. */
int lily_cutoff_index(const double *energy, int n);

/* ---------------------------------------------------------------------------------------- */
/* DSP used by the condition path and post-processing (spec.md 3c, 10).                      */
/* ---------------------------------------------------------------------------------------- */
/* AudioSR's re-low-pass (lowpass.py): order-`order` IIR of family `type` designed as scipy
 * does, zero-phase (sosfiltfilt), then resample_poly down to int(2*cutoff) Hz and back up,
 * then sosfiltfilt again. x and y are n samples at `rate` Hz; y may equal x. cutoff_hz is
 * truncated to an integer first, as AudioSR does. A cutoff at or above rate/2 copies x. */
LilyStatus lily_lowpass(LilyContext *ctx, const float *x, size_t n, int rate, double cutoff_hz,
                        LilyFilterType type, int order, float *y);

/* Cutoff frequency of a 48 kHz signal by AudioSR's rule on the mel STFT (spec.md 3b):
 * returns Hz; 24000 when the rule finds nothing below 1 kHz (silence, full band). */
LilyStatus lily_detect_cutoff(LilyMel *mel, const float *x, size_t n, double *cutoff_hz);

/* AudioSR's postprocessing (spec.md 10): the band under the cutoff of `cond` is put back into
 * `out` through a librosa-style STFT (n_fft 2048, hop 512, centre, zero padding); the row at
 * the cutoff sets a level ratio clamped to [0.8, 1.2]. In place on out[0..n). Where AudioSR
 * divides by zero (out silent at the cutoff row) the ratio is 1.2, or 1 if cond is silent
 * there too. cutoff_bin_out and ratio_out may be NULL. */
LilyStatus lily_restore_lowband(LilyContext *ctx, const float *cond, float *out, size_t n,
                                int *cutoff_bin_out, float *ratio_out);

/* ---------------------------------------------------------------------------------------- */
/* Models.                                                                                   */
/* ---------------------------------------------------------------------------------------- */
typedef struct LilyModel LilyModel;

typedef struct LilyModelParams {
    LilyPrecision precision; /* weights are converted once at load; default F32 */
    const char *config_path; /* AudioSR YAML for a .bin/.ckpt without embedded config; NULL ok */
    int keep_unused;         /* keep tensors the SR path never uses (EMA, CLAP, cond decoder) */
} LilyModelParams;

void lily_model_params_init(LilyModelParams *params);
/* Loads a Lily .safetensors model file or an AudioSR checkpoint (.bin/.ckpt, a PyTorch zip).
 * The format is detected from the content. */
LilyStatus lily_model_load(LilyContext *ctx, const char *path, const LilyModelParams *params,
                           LilyModel **model);
/* The model to use when the caller names none (tools without --model, elements without
 * model=): $LILY_MODEL when set, else the bundled demonstration model (installed, or in the
 * build tree the library comes from). Writes its path into `path` (size bytes) and says where
 * it came from; LILY_DEFAULT_MODEL_NONE when there is none (path is then ""). The bundled model
 * has random weights: tell the user their output is a demonstration, not an enhancement. */
typedef enum LilyDefaultModel {
    LILY_DEFAULT_MODEL_NONE = 0,
    LILY_DEFAULT_MODEL_ENV,     /* $LILY_MODEL */
    LILY_DEFAULT_MODEL_BUNDLED, /* lily-tiny.safetensors, untrained */
} LilyDefaultModel;
LilyDefaultModel lily_default_model_path(char *path, size_t size);
LilyModel *lily_model_ref(LilyModel *model);
void lily_model_unref(LilyModel *model);
/* Bytes of weights the model holds on its device (for sharing tests and benchmarks). */
size_t lily_model_weight_bytes(const LilyModel *model);
/* An opaque identity of the weight storage, equal for two references of one load. */
const void *lily_model_weights_id(const LilyModel *model);
LilyPrecision lily_model_precision(const LilyModel *model);
/* The model's scale_factor (checkpoint buffer; spec.md 3). */
float lily_model_scale_factor(const LilyModel *model);
/* Latent frames per mel frame is 1/8: chunk lengths in mel frames must be multiples of 8. */
#define LILY_LATENT_DOWNSAMPLE 8

/* ---------------------------------------------------------------------------------------- */
/* Enhancement.                                                                              */
/* ---------------------------------------------------------------------------------------- */
typedef struct LilyEnhanceParams {
    int steps;              /* DDIM steps; AudioSR CLI default 50 */
    float guidance_scale;   /* classifier-free guidance; default 3.5 */
    float eta;              /* DDIM eta; AudioSR uses 1.0 */
    uint64_t seed;          /* default 42 */
    double cutoff_hz;       /* 0 = detect as AudioSR does; otherwise forced */
    int filter_type;        /* -1 = draw from the seed; else a LilyFilterType (forced) */
    double chunk_seconds;   /* long inputs are cut in chunks of this length; default 10.24 */
    double overlap_seconds; /* cross-faded overlap between chunks; default 1.28 */
    double vocoder_seconds; /* vocoder chunk length; default 5.12 */
    const char *noise_dir;  /* inject recorded draws (ref-a manifest names); NULL = Philox */
    const char *dump_dir;   /* write every stage as .npy; NULL = none */
    int use_posterior_mean; /* deterministic condition: mean instead of .sample() */
    int audiosr_level;      /* 1: end with AudioSR's peak-0.5-then-mean-removal instead of
                             * restoring the input's level (parity runs) */
} LilyEnhanceParams;

void lily_enhance_params_init(LilyEnhanceParams *params);

/* Enhances one channel of audio at `rate` Hz into 48 kHz audio of the same duration
 * (round(n * 48000 / rate) samples), allocated in *out (free with lily_free). The output
 * level follows the input's. Silence in gives silence out. */
LilyStatus lily_enhance(LilyContext *ctx, LilyModel *model, const LilyEnhanceParams *params,
                        const float *x, size_t n, int rate, float **out, size_t *n_out);

/* ---------------------------------------------------------------------------------------- */
/* Streaming stages (lily_enhance, lily-enhance and the GStreamer elements all use these, so  */
/* a file enhanced by the tool and by a pipeline with the same settings gives the same audio). */
/* ---------------------------------------------------------------------------------------- */
/* Stage 1: 48 kHz source samples -> enhanced mel frames and the condition waveform.
 * Source samples are cut into chunks of chunk_seconds (rounded to 0.64 s: the UNet needs
 * multiples of 64 mel frames) overlapping by overlap_seconds (rounded to 0.08 s); each chunk
 * is normalised as AudioSR normalises a file (mean removed, peak 0.5), enhanced, and
 * returned at the input's level; overlaps are cross-faded (raised cosine). A stream that ends
 * before the first chunk fills is one chunk padded as AudioSR pads (multiples of 5.12 s), so
 * short files are processed exactly as AudioSR processes them. Random draws are keyed by the
 * seed and the absolute latent row, never by how the stream was cut. */
typedef struct LilyDiffuser LilyDiffuser;

typedef struct LilyChunkInfo {
    int64_t first_frame; /* absolute mel frame of the chunk's start */
    int64_t frames;
    double cutoff_hz;    /* cutoff used for the condition's re-low-pass */
    int filter_type;     /* LilyFilterType used */
    int cutoff_melbin;   /* mel bins [0, cutoff_melbin) copied from the condition */
    int silent;          /* the chunk was silent: skipped, silence out */
} LilyChunkInfo;

LilyStatus lily_diffuser_new(LilyContext *ctx, LilyModel *model, const LilyEnhanceParams *params,
                             LilyDiffuser **out);
void lily_diffuser_free(LilyDiffuser *d);
/* Appends n real source samples and runs every chunk that becomes complete. */
LilyStatus lily_diffuser_push(LilyDiffuser *d, const float *x, size_t n);
/* End of stream: pads as described above and runs the rest. */
LilyStatus lily_diffuser_finish(LilyDiffuser *d);
/* Frames that can be pulled now. */
size_t lily_diffuser_ready(const LilyDiffuser *d);
/* Pulls up to max_frames frames: mel [frames][256] (log-mel at the input's level), cond and
 * src [frames * 480] (condition and source waveforms); any pointer may be NULL. *n_valid
 * receives how many of the frames' samples are real input (the rest is end padding).
 * Returns the number of frames pulled. */
size_t lily_diffuser_pull(LilyDiffuser *d, float *mel, float *cond, float *src, size_t max_frames,
                          size_t *n_valid);
/* Samples of input the stage holds before its first output (chunk length). */
int64_t lily_diffuser_latency(const LilyDiffuser *d);
/* The same figures from parameters alone (no model needed): diffuser, vocoder stream. */
int64_t lily_diffuser_latency_for(const LilyEnhanceParams *params);
int64_t lily_vocoder_latency_for(const LilyEnhanceParams *params);
/* Drops every pending sample and frame (flush); keeps the model. */
void lily_diffuser_reset(LilyDiffuser *d);
/* Changes steps and guidance from the next chunk on (a running chunk keeps its settings). */
LilyStatus lily_diffuser_set_sampling(LilyDiffuser *d, int steps, float guidance_scale);
/* Information about the last chunk run (NULL before the first). */
const LilyChunkInfo *lily_diffuser_last_chunk(const LilyDiffuser *d);

/* Stage 2: enhanced mel + condition + source -> 48 kHz samples: HiFi-GAN on chunks of
 * vocoder frames with context on both sides, AudioSR's low-band restore from the condition,
 * the level of the input restored. Only real samples come out (end padding is dropped). */
typedef struct LilyVocoderStream LilyVocoderStream;

LilyStatus lily_vocoder_stream_new(LilyContext *ctx, LilyModel *model,
                                   const LilyEnhanceParams *params, LilyVocoderStream **out);
void lily_vocoder_stream_free(LilyVocoderStream *v);
/* Appends frames (as pulled from a LilyDiffuser) and runs the chunks that are ready. */
LilyStatus lily_vocoder_stream_push(LilyVocoderStream *v, const float *mel, const float *cond,
                                    const float *src, size_t frames, size_t n_valid);
LilyStatus lily_vocoder_stream_finish(LilyVocoderStream *v);
size_t lily_vocoder_stream_ready(const LilyVocoderStream *v);
size_t lily_vocoder_stream_pull(LilyVocoderStream *v, float *out, size_t max_samples);
int64_t lily_vocoder_stream_latency(const LilyVocoderStream *v);
void lily_vocoder_stream_reset(LilyVocoderStream *v);

/* After a call on a stream fails (LILY_ERR_CANCELLED from the abort callback included) the
 * stream's state is undefined: reset it before using it again. */

/* Both stages chained, one channel of 48 kHz audio in and out. */
typedef struct LilyEnhancer LilyEnhancer;

LilyStatus lily_enhancer_new(LilyContext *ctx, LilyModel *model, const LilyEnhanceParams *params,
                             LilyEnhancer **out);
void lily_enhancer_free(LilyEnhancer *e);
LilyStatus lily_enhancer_push(LilyEnhancer *e, const float *x, size_t n);
LilyStatus lily_enhancer_finish(LilyEnhancer *e);
size_t lily_enhancer_ready(const LilyEnhancer *e);
size_t lily_enhancer_pull(LilyEnhancer *e, float *out, size_t max_samples);
int64_t lily_enhancer_latency(const LilyEnhancer *e);
void lily_enhancer_reset(LilyEnhancer *e);

#ifdef __cplusplus
}
#endif

#endif /* LILY_LILY_H */
