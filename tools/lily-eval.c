/* tools/lily-eval.c - log-spectral distance (LSD) between an enhanced file and a reference, the
 * metric AudioSR reports (engine/train/lsd.h gives the exact definition).
 *
 *   lily-eval enhanced.wav reference.flac
 *   lily-eval enhanced.wav reference.flac --low input.mp3 --cutoff 4000 --json
 *
 * Both files are decoded with GStreamer (any format decodebin reads), downmixed to mono and
 * resampled to 48 kHz, and compared over the length of the shorter one. --low adds the LSD of
 * the unprocessed input against the same reference (what enhancement should improve on);
 * --cutoff adds the LSD over the STFT bins above that frequency only (LSD-HF). Lower is
 * better; 0 means identical spectra. Built from this tree: it uses engine-internal headers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include <lily/lily.h>

#include "args.h"
#include "gst-decode.h"
#include "train/lsd.h"

/* Decodes path to 48 kHz mono float samples (malloc'ed). */
static float *decode(const char *path, size_t *n)
{
    *n = 0;
    GstAppSink *sink = NULL;
    GstElement *p = lily_tool_decoder("lily-eval", path, 1, &sink);
    if (!p) return NULL;
    float *out = NULL;
    size_t cap = 0;
    int failed = 0;
    if (gst_element_set_state(p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) failed = 1;
    while (!failed) {
        GstSample *s = gst_app_sink_pull_sample(sink);
        if (!s) break; /* EOS or error */
        GstBuffer *b = gst_sample_get_buffer(s);
        GstMapInfo mi;
        if (b && gst_buffer_map(b, &mi, GST_MAP_READ)) {
            size_t k = mi.size / sizeof(float);
            if (*n + k > cap) {
                size_t nc = cap ? cap * 2 : 1 << 20;
                while (nc < *n + k) nc *= 2;
                float *t = realloc(out, nc * sizeof(float));
                if (!t) failed = 1;
                else out = t, cap = nc;
            }
            if (!failed) memcpy(out + *n, mi.data, k * sizeof(float)), *n += k;
            gst_buffer_unmap(b, &mi);
        }
        gst_sample_unref(s);
    }
    /* an error on the bus means the file could not be decoded */
    if (lily_tool_bus_error(p, "lily-eval", path)) failed = 1;
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(p);
    if (failed || !*n) {
        if (!failed) fprintf(stderr, "lily-eval: %s: no audio decoded\n", path);
        free(out);
        return NULL;
    }
    return out;
}

int main(int argc, char **argv)
{
    const char *low = NULL;
    double cutoff = 0;
    int json = 0;
    const LilyCliOption opts[] = {
        {"low", 'l', LILY_CLI_STRING, &low, "FILE", "also measure this unprocessed input against the reference"},
        {"cutoff", 'c', LILY_CLI_DOUBLE, &cutoff, "HZ", "also measure the band above HZ only (LSD-HF)"},
        {"json", 0, LILY_CLI_FLAG, &json, NULL, "print one JSON object instead of text"},
    };
    const LilyCliSpec spec = {
        .prog = "lily-eval",
        .usage = "ENHANCED REFERENCE [--low INPUT] [--cutoff HZ] [--json]",
        .summary = "Log-spectral distance between an enhanced file and its reference (AudioSR's metric:\n"
                   "STFT 2048/512, Hann, log10 power, RMS over frequency, mean over frames). Lower is better.",
        .options = opts,
        .n_options = (int)(sizeof opts / sizeof *opts),
        .min_positional = 2,
        .max_positional = 2,
        .epilog = "example:\n  lily-eval enhanced.wav original.flac --low degraded.mp3 --cutoff 4000\n",
    };
    const char *pos[2];
    int n_pos = 0;
    int pr = lily_cli_parse(&spec, argc, argv, pos, &n_pos);
    if (pr == LILY_CLI_EXIT) return 0;
    if (pr == LILY_CLI_ERROR) return 2;
    if (cutoff < 0 || cutoff >= 24000) {
        fprintf(stderr, "lily-eval: --cutoff must be between 0 and 24000 Hz\n");
        return 2;
    }
    gst_init(NULL, NULL);
    LilyContext *ctx = NULL;
    char err[512];
    if (lily_context_new(NULL, &ctx, err, sizeof err) != LILY_OK) {
        fprintf(stderr, "lily-eval: %s\n", err);
        return 1;
    }
    const char *paths[3] = {pos[0], pos[1], low};
    float *x[3] = {NULL, NULL, NULL};
    size_t n[3] = {0, 0, 0};
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++)
        if (paths[i] && !(x[i] = decode(paths[i], &n[i]))) rc = 1;
    double v[4] = {NAN, NAN, NAN, NAN}; /* lsd, lsd_hf, low lsd, low lsd_hf */
    size_t len = n[0] < n[1] ? n[0] : n[1];
    if (!rc && low && n[2] < len) len = n[2];
    int bin = (int)ceil(cutoff / 24000.0 * (LILY_LSD_N_FFT / 2));
    for (int k = 0; k < (low ? 2 : 1) && !rc; k++) {
        const float *est = x[k ? 2 : 0];
        if (lily_lsd(ctx, est, x[1], len, &v[2 * k]) != LILY_OK ||
            (cutoff > 0 && lily_lsd_band(ctx, est, x[1], len, bin, LILY_LSD_N_FFT / 2 + 1, &v[2 * k + 1]) != LILY_OK)) {
            fprintf(stderr, "lily-eval: %s\n", lily_context_error(ctx));
            rc = 1;
        }
    }
    if (!rc) {
        if (n[0] != n[1]) fprintf(stderr, "lily-eval: note: lengths differ (%zu and %zu samples at 48 kHz); "
                                          "compared the first %zu\n", n[0], n[1], len);
        if (json) {
            printf("{\"lsd\": %.6f", v[0]);
            if (cutoff > 0) printf(", \"lsd_hf\": %.6f, \"cutoff_hz\": %g", v[1], cutoff);
            if (low) printf(", \"lsd_low\": %.6f", v[2]);
            if (low && cutoff > 0) printf(", \"lsd_hf_low\": %.6f", v[3]);
            printf(", \"seconds\": %.3f}\n", (double)len / LILY_SAMPLE_RATE);
        } else {
            printf("LSD %.4f", v[0]);
            if (cutoff > 0) printf("   LSD above %g Hz %.4f", cutoff, v[1]);
            printf("   (%s vs %s, %.2f s)\n", pos[0], pos[1], (double)len / LILY_SAMPLE_RATE);
            if (low) {
                printf("LSD %.4f", v[2]);
                if (cutoff > 0) printf("   LSD above %g Hz %.4f", cutoff, v[3]);
                printf("   (%s vs %s: the unprocessed input)\n", low, pos[1]);
            }
        }
    }
    for (int i = 0; i < 3; i++) free(x[i]);
    lily_context_free(ctx);
    gst_deinit();
    return rc;
}
