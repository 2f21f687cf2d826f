/* lily-enhance - enhance an audio file from the command line.
 *
 *   lily-enhance IN OUT [--model FILE] [--config YAML] [--steps N] [--guidance G] [--seed S]
 *                [--precision f32|bf16|f16] [--device cpu|cuda[:N]] [--threads N]
 *                [--chunk SEC] [--overlap SEC] [--cutoff HZ] [--filter NAME]
 *                [--noise DIR] [--dump-dir DIR] [--audiosr-level] [--quiet]
 *
 * IN is anything GStreamer can decode (decodebin), at any rate and channel count; it is
 * converted to 48 kHz float by audioconvert ! audioresample (the same elements the lilyenhance
 * bin uses), each channel is enhanced on its own by a LilyEnhancer (the engine's streaming
 * path, also behind the GStreamer elements), and written as 48 kHz WAV (float) or FLAC (24 bit)
 * by OUT's extension, with exactly as many samples as the resampled input. Memory stays that of
 * one chunk per channel whatever the file's length. Defaults follow AudioSR's CLI: 50 steps,
 * guidance 3.5, seed 42. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#include <lily/lily.h>

#include "args.h"
#include "gst-decode.h"
#include "progress.h"

typedef struct Options {
    const char *in, *out, *model, *config, *noise, *dump, *device, *precision_name, *filter;
    LilyEnhanceParams ep;
    LilyPrecision precision;
    int threads, steps, quiet, audiosr_level;
    double guidance, chunk, overlap, cutoff;
    uint64_t seed;
    char default_model[4096];
} Options;

static int parse_args(int argc, char **argv, Options *o)
{
    memset(o, 0, sizeof *o);
    lily_enhance_params_init(&o->ep);
    o->device = "cpu";
    o->precision_name = "f32";
    o->steps = o->ep.steps;
    o->guidance = o->ep.guidance_scale;
    o->seed = o->ep.seed;
    o->chunk = o->ep.chunk_seconds;
    o->overlap = o->ep.overlap_seconds;
    const LilyCliOption opts[] = {
        {"model", 'm', LILY_CLI_STRING, &o->model, "FILE",
         "Lily .safetensors or AudioSR .bin/.ckpt (default: $LILY_MODEL, else the bundled "
         "demonstration model)"},
        {"config", 0, LILY_CLI_STRING, &o->config, "YAML",
         "AudioSR config for a .bin/.ckpt without an embedded one"},
        {"steps", 's', LILY_CLI_INT, &o->steps, "N", "DDIM steps (default 50)"},
        {"guidance", 'g', LILY_CLI_DOUBLE, &o->guidance, "G", "classifier-free guidance (default 3.5)"},
        {"seed", 0, LILY_CLI_U64, &o->seed, "S", "random seed (default 42)"},
        {"precision", 'p', LILY_CLI_STRING, &o->precision_name, "f32|bf16|f16", "compute precision"},
        {"device", 'd', LILY_CLI_STRING, &o->device, "cpu|cuda|cuda:N", "device (default cpu)"},
        {"threads", 't', LILY_CLI_INT, &o->threads, "N", "CPU threads (default: all cores)"},
        {"chunk", 0, LILY_CLI_DOUBLE, &o->chunk, "SEC", "chunk length (default 10.24, multiple of 0.64)"},
        {"overlap", 0, LILY_CLI_DOUBLE, &o->overlap, "SEC", "cross-faded overlap (default 1.28)"},
        {"cutoff", 0, LILY_CLI_DOUBLE, &o->cutoff, "HZ", "force the input's cutoff (default: detect)"},
        {"filter", 0, LILY_CLI_STRING, &o->filter, "butter|cheby1|ellip|bessel",
         "force the condition's filter family (default: drawn from the seed)"},
        {"noise", 0, LILY_CLI_STRING, &o->noise, "DIR",
         "inject recorded random draws (AudioSR reference names)"},
        {"dump-dir", 0, LILY_CLI_STRING, &o->dump, "DIR", "write every stage as .npy"},
        {"audiosr-level", 0, LILY_CLI_FLAG, &o->audiosr_level, NULL,
         "end with AudioSR's peak-0.5 normalisation instead of the input's level"},
        {"quiet", 'q', LILY_CLI_FLAG, &o->quiet, NULL, "no progress output"},
    };
    const LilyCliSpec spec = {
        "lily-enhance", "IN OUT [options]",
        "Enhances IN (anything GStreamer decodes, any rate and channel count; each channel on\n"
        "its own) into OUT, 48 kHz, WAV (float) or FLAC (24 bit) by extension.",
        opts, (int)(sizeof opts / sizeof opts[0]), 2, 2,
        "Example: lily-enhance --model tiny.safetensors --steps 50 speech-8k.mp3 speech-48k.wav"};
    const char *pos[2];
    int n_pos = 0;
    int r = lily_cli_parse(&spec, argc, argv, pos, &n_pos);
    if (r == LILY_CLI_EXIT) exit(0);
    if (r != LILY_CLI_OK) return 2;
    o->in = pos[0];
    o->out = pos[1];
    if (lily_precision_from_name(o->precision_name, &o->precision) != LILY_OK) {
        fprintf(stderr, "lily-enhance: --precision must be f32, bf16 or f16, got '%s'\n", o->precision_name);
        return 2;
    }
    if (o->filter) {
        LilyFilterType ft;
        if (lily_filter_from_name(o->filter, &ft) != LILY_OK) {
            fprintf(stderr, "lily-enhance: --filter must be butter, cheby1, ellip or bessel\n");
            return 2;
        }
        o->ep.filter_type = ft;
    }
    if (o->cutoff < 0) {
        fprintf(stderr, "lily-enhance: --cutoff must be positive\n");
        return 2;
    }
    if (o->steps < 1 || o->steps > 1000) {
        fprintf(stderr, "lily-enhance: --steps must be 1..1000 (AudioSR's schedule has 1000), got %d\n", o->steps);
        return 2;
    }
    if (!isfinite(o->guidance) || o->guidance < 0) {
        fprintf(stderr, "lily-enhance: --guidance must be a finite number >= 0 (1 = no guidance), got %g\n",
                o->guidance);
        return 2;
    }
    if (!o->model) {
        LilyDefaultModel dm = lily_default_model_path(o->default_model, sizeof o->default_model);
        if (dm == LILY_DEFAULT_MODEL_NONE) {
            fprintf(stderr, "lily-enhance: no model: pass --model FILE or set LILY_MODEL (lily-convert "
                            "turns AudioSR's checkpoint into one)\n");
            return 2;
        }
        o->model = o->default_model;
        if (dm == LILY_DEFAULT_MODEL_BUNDLED)
            fprintf(stderr, "lily-enhance: warning: no --model given: using the bundled demonstration model %s, "
                            "whose weights are random: the output shows the pipeline, not an enhancement\n",
                    o->model);
    }
    o->ep.steps = o->steps;
    o->ep.guidance_scale = (float)o->guidance;
    o->ep.seed = o->seed;
    o->ep.chunk_seconds = o->chunk;
    o->ep.overlap_seconds = o->overlap;
    o->ep.cutoff_hz = o->cutoff;
    o->ep.audiosr_level = o->audiosr_level;
    return 0;
}

/* ---- GStreamer decode and encode ---- */
static GstElement *make_encoder(const char *path, int channels, GstAppSrc **src)
{
    const char *ext = strrchr(path, '.');
    const char *enc = NULL;
    if (ext && g_ascii_strcasecmp(ext, ".wav") == 0) enc = "wavenc";
    else if (ext && g_ascii_strcasecmp(ext, ".flac") == 0) enc = "audio/x-raw,format=S24LE ! flacenc";
    if (!enc) {
        fprintf(stderr, "lily-enhance: %s: the output must end in .wav or .flac\n", path);
        return NULL;
    }
    gchar *loc = g_strescape(path, NULL);
    gchar *desc = g_strdup_printf("appsrc name=src format=time caps=audio/x-raw,format=F32LE,"
                                  "rate=48000,channels=%d,layout=interleaved ! audioconvert ! "
                                  "%s ! filesink location=\"%s\"",
                                  channels, enc, loc);
    GError *err = NULL;
    GstElement *p = gst_parse_launch(desc, &err);
    g_free(desc);
    g_free(loc);
    if (!p) {
        fprintf(stderr, "lily-enhance: cannot build the encoder: %s\n", err ? err->message : "?");
        g_clear_error(&err);
        return NULL;
    }
    *src = GST_APP_SRC(gst_bin_get_by_name(GST_BIN(p), "src"));
    return p;
}

/* ---- progress: sampler steps of every chunk of every channel ---- */
typedef struct Run {
    Options *o;
    LilyCliProgress *bar;
    int channels;
    int64_t total_samples; /* estimated from the duration; 0 when unknown */
    int64_t units_done;    /* sampler steps finished */
    int64_t units_total;
} Run;

/* Counts sampler steps over every chunk of every channel against the estimate made from the
 * decoded duration (the last chunk's size is not known until the end). */
static void on_progress(const char *stage, int64_t done, int64_t total, void *user)
{
    Run *r = user;
    (void)done;
    (void)total;
    if (strcmp(stage, "diffusion") != 0) return;
    r->units_done++;
    if (r->units_done > r->units_total) r->units_total = r->units_done;
    lily_cli_progress_update(r->bar, (uint64_t)r->units_done);
}

static int64_t chunks_for(const LilyEnhanceParams *p, int64_t samples)
{
    int64_t frames = (samples + LILY_HOP - 1) / LILY_HOP;
    int64_t C = (int64_t)llround(p->chunk_seconds * 100 / 64) * 64;
    int64_t O = (int64_t)llround(p->overlap_seconds * 100 / 8) * 8;
    if (C < 64) C = 64;
    if (frames <= C) return 1;
    int64_t S = C - O;
    int64_t n = 1 + (frames - C + S - 1) / S;
    return n;
}

static int write_frames(GstAppSrc *src, const float *inter, size_t frames, int channels,
                        uint64_t *written)
{
    size_t bytes = frames * (size_t)channels * sizeof(float);
    if (!bytes) return 0;
    GstBuffer *buf = gst_buffer_new_allocate(NULL, bytes, NULL);
    gst_buffer_fill(buf, 0, inter, bytes);
    GST_BUFFER_PTS(buf) = gst_util_uint64_scale_int(*written, GST_SECOND, LILY_SAMPLE_RATE);
    GST_BUFFER_DURATION(buf) =
        gst_util_uint64_scale_int(*written + frames, GST_SECOND, LILY_SAMPLE_RATE) - GST_BUFFER_PTS(buf);
    *written += frames;
    return gst_app_src_push_buffer(src, buf) == GST_FLOW_OK ? 0 : -1;
}

/* Pulls what every channel's enhancer has ready (the same count for all) and writes it. */
static int drain(LilyEnhancer **enh, int channels, GstAppSrc *src, float **tmp, size_t *tmp_cap,
                 uint64_t *written)
{
    size_t n = lily_enhancer_ready(enh[0]);
    for (int c = 1; c < channels; c++) {
        size_t nc = lily_enhancer_ready(enh[c]);
        if (nc < n) n = nc;
    }
    if (!n) return 0;
    if (n * (size_t)(channels + 1) > *tmp_cap) {
        free(*tmp);
        *tmp_cap = n * (size_t)(channels + 1);
        *tmp = malloc(*tmp_cap * sizeof(float));
        if (!*tmp) return -1;
    }
    float *inter = *tmp, *one = *tmp + n * (size_t)channels;
    for (int c = 0; c < channels; c++) {
        lily_enhancer_pull(enh[c], one, n);
        for (size_t i = 0; i < n; i++) inter[i * (size_t)channels + (size_t)c] = one[i];
    }
    return write_frames(src, inter, n, channels, written);
}

int main(int argc, char **argv)
{
    Options o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;
    gst_init(&argc, &argv);
    struct stat stt;
    if (stat(o.in, &stt) != 0) {
        fprintf(stderr, "lily-enhance: %s: %s\n", o.in, strerror(errno));
        return 1;
    }
    LilyContextParams cp;
    lily_context_params_init(&cp);
    cp.n_threads = o.threads;
    if (lily_device_parse(o.device, &cp.device, &cp.device_index) != LILY_OK) {
        fprintf(stderr, "lily-enhance: --device must be cpu, cuda or cuda:N, got '%s'\n", o.device);
        return 2;
    }
    LilyContext *ctx = NULL;
    char err[1024];
    if (lily_context_new(&cp, &ctx, err, sizeof err) != LILY_OK) {
        fprintf(stderr, "lily-enhance: %s\n", err);
        return 1;
    }
    LilyModelParams mp;
    lily_model_params_init(&mp);
    mp.precision = o.precision;
    mp.config_path = o.config;
    LilyModel *model = NULL;
    if (lily_model_load(ctx, o.model, &mp, &model) != LILY_OK) {
        fprintf(stderr, "lily-enhance: %s\n", lily_context_error(ctx));
        lily_context_free(ctx);
        return 1;
    }
    o.ep.noise_dir = o.noise;
    if (o.dump && mkdir(o.dump, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "lily-enhance: --dump-dir %s: %s\n", o.dump, strerror(errno));
        return 1;
    }

    GstAppSink *sink = NULL;
    GstElement *dec = lily_tool_decoder("lily-enhance", o.in, 0, &sink);
    if (!dec) return 1;
    gst_element_set_state(dec, GST_STATE_PAUSED);
    if (gst_element_get_state(dec, NULL, NULL, GST_CLOCK_TIME_NONE) == GST_STATE_CHANGE_FAILURE ||
        lily_tool_bus_error(dec, "lily-enhance", o.in)) {
        fprintf(stderr, "lily-enhance: %s: cannot decode this file\n", o.in);
        gst_element_set_state(dec, GST_STATE_NULL);
        return 1;
    }
    Run run = {&o, NULL, 0, 0, 0, 0};
    gint64 dur = 0;
    if (gst_element_query_duration(dec, GST_FORMAT_TIME, &dur) && dur > 0)
        run.total_samples = (int64_t)gst_util_uint64_scale_int((guint64)dur, LILY_SAMPLE_RATE, GST_SECOND);
    gst_element_set_state(dec, GST_STATE_PLAYING);

    LilyEnhancer **enh = NULL;
    char **dump_dirs = NULL;
    GstElement *encp = NULL;
    GstAppSrc *src = NULL;
    float *plane = NULL, *tmp = NULL;
    size_t plane_cap = 0, tmp_cap = 0;
    uint64_t written = 0, read = 0;
    int status = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        GstSample *s = gst_app_sink_pull_sample(sink);
        if (!s) break; /* EOS or error */
        GstCaps *caps = gst_sample_get_caps(s);
        GstBuffer *buf = gst_sample_get_buffer(s);
        if (!enh) {
            GstStructure *st = gst_caps_get_structure(caps, 0);
            gst_structure_get_int(st, "channels", &run.channels);
            if (run.channels < 1) {
                fprintf(stderr, "lily-enhance: %s: no audio channels\n", o.in);
                gst_sample_unref(s);
                status = 1;
                break;
            }
            enh = calloc((size_t)run.channels, sizeof *enh);
            dump_dirs = calloc((size_t)run.channels, sizeof *dump_dirs);
            for (int c = 0; c < run.channels && status == 0; c++) {
                LilyEnhanceParams ep = o.ep;
                char *dd = NULL;
                if (o.dump && run.channels > 1) {
                    dd = g_strdup_printf("%s/ch%d", o.dump, c);
                    mkdir(dd, 0777);
                    ep.dump_dir = dd;
                } else {
                    ep.dump_dir = o.dump;
                }
                if (lily_enhancer_new(ctx, model, &ep, &enh[c]) != LILY_OK) {
                    fprintf(stderr, "lily-enhance: %s\n", lily_context_error(ctx));
                    status = 1;
                }
                dump_dirs[c] = dd; /* the enhancer keeps a pointer to it: freed at the end */
            }
            if (status) {
                gst_sample_unref(s);
                break;
            }
            encp = make_encoder(o.out, run.channels, &src);
            if (!encp) {
                gst_sample_unref(s);
                status = 2;
                break;
            }
            gst_element_set_state(encp, GST_STATE_PLAYING);
            run.units_total = (int64_t)run.channels * o.ep.steps * chunks_for(&o.ep, run.total_samples);
            if (!o.quiet && run.units_total > 0)
                run.bar = lily_cli_progress_new("enhancing (sampler steps)", (uint64_t)run.units_total, 0);
            lily_context_set_progress(ctx, on_progress, &run);
        }
        GstMapInfo map;
        if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
            size_t frames = map.size / sizeof(float) / (size_t)run.channels;
            if (frames > plane_cap) {
                free(plane);
                plane_cap = frames;
                plane = malloc(frames * sizeof(float));
            }
            const float *in = (const float *)map.data;
            for (int c = 0; c < run.channels && status == 0; c++) {
                for (size_t i = 0; i < frames; i++) plane[i] = in[i * (size_t)run.channels + (size_t)c];
                if (lily_enhancer_push(enh[c], plane, frames) != LILY_OK) {
                    fprintf(stderr, "\nlily-enhance: %s\n", lily_context_error(ctx));
                    status = 1;
                }
            }
            read += frames;
            gst_buffer_unmap(buf, &map);
        }
        gst_sample_unref(s);
        if (status) break;
        if (drain(enh, run.channels, src, &tmp, &tmp_cap, &written) != 0) {
            lily_tool_bus_error(encp, "lily-enhance", o.out);
            status = 1;
            break;
        }
    }
    if (!status && lily_tool_bus_error(dec, "lily-enhance", o.in)) status = 1;
    if (!status && !enh) {
        fprintf(stderr, "lily-enhance: %s: no audio decoded\n", o.in);
        status = 1;
    }
    if (!status) {
        for (int c = 0; c < run.channels && !status; c++)
            if (lily_enhancer_finish(enh[c]) != LILY_OK) {
                fprintf(stderr, "\nlily-enhance: %s\n", lily_context_error(ctx));
                status = 1;
            }
        if (!status && drain(enh, run.channels, src, &tmp, &tmp_cap, &written) != 0) status = 1;
        if (!status && written != read) {
            fprintf(stderr, "lily-enhance: internal error: %llu samples out for %llu in\n",
                    (unsigned long long)written, (unsigned long long)read);
            status = 1;
        }
    }
    lily_cli_progress_finish(run.bar);
    if (src) {
        gst_app_src_end_of_stream(src);
        GstBus *bus = gst_element_get_bus(encp);
        GstMessage *msg = gst_bus_timed_pop_filtered(bus, GST_CLOCK_TIME_NONE,
                                                     GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
        if (msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
            GError *e = NULL;
            gst_message_parse_error(msg, &e, NULL);
            fprintf(stderr, "lily-enhance: %s: %s\n", o.out, e ? e->message : "write failed");
            g_clear_error(&e);
            status = 1;
        }
        if (msg) gst_message_unref(msg);
        gst_object_unref(bus);
        gst_element_set_state(encp, GST_STATE_NULL);
        gst_object_unref(src);
        gst_object_unref(encp);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (!status && !o.quiet)
        fprintf(stderr, "lily-enhance: %s -> %s: %.2f s of %d-channel audio in %.1f s (%.2fx real time)\n",
                o.in, o.out, (double)read / LILY_SAMPLE_RATE, run.channels, secs,
                secs > 0 ? ((double)read / LILY_SAMPLE_RATE) / secs : 0.0);
    gst_element_set_state(dec, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(dec);
    for (int c = 0; enh && c < run.channels; c++) {
        lily_enhancer_free(enh[c]);
        g_free(dump_dirs[c]);
    }
    free(enh);
    free(dump_dirs);
    free(plane);
    free(tmp);
    lily_model_unref(model);
    lily_context_free(ctx);
    if (status && unlink(o.out) == 0 && !o.quiet)
        fprintf(stderr, "lily-enhance: removed the incomplete %s\n", o.out);
    return status;
}
