/* tests/gst/lily-gst-test.h - helpers shared by the element tests (tests/gst) and the pipeline
 * tests (tests/pipelines): the test model, a private GStreamer registry, raw-audio buffers,
 * collecting a harness's output, and the reference the elements must equal: the engine's
 * LilyEnhancer run on the same 48 kHz samples, channel by channel (engine/models/stream.c is
 * shared by both, so they must agree sample for sample). */
#ifndef LILY_TESTS_GST_LILY_GST_TEST_H
#define LILY_TESTS_GST_LILY_GST_TEST_H

#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <lily/lily.h>

/* Settings every model test uses so that a test runs in seconds on 2 cores with the tiny
 * model: 0.64 s chunks with 0.16 s of overlap, 0.64 s vocoder chunks, 2 DDIM steps. */
#define LGT_CHUNK_NS (640 * GST_MSECOND)
#define LGT_OVERLAP_NS (160 * GST_MSECOND)
#define LGT_VOCODER_NS (640 * GST_MSECOND)
#define LGT_STEPS 2

/* The tiny test model (meson: tiny-a.safetensors made by lily-convert, or tiny-a.bin with its
 * YAML) and its config ("" when the file embeds it). */
const char *lgt_model(void);
const char *lgt_config(void);

/* Sets a registry private to this test binary; with `system_plugins` FALSE only the build
 * tree's plugin is scanned. Call before gst_init. */
void lgt_private_registry(gboolean system_plugins);

/* Sets model, config and the fast settings above on an element or bin that has them (the
 * properties an element lacks are skipped: lilymel has none, lilyvocoder no steps). */
void lgt_configure(GstElement *element);
/* The same on every element of a harness's bin (or its single element). */
void lgt_configure_harness(GstHarness *h);

/* A harness around a chain of elements (a launch line without caps filters, e.g. "lilymel !
 * lilydiffuse"), every element configured with lgt_configure, fed F32 48 kHz interleaved audio
 * of `channels` channels. */
GstHarness *lgt_chain_harness(const char *launch, guint channels);
/* The element made by `factory` inside a harness's bin (unref it). */
GstElement *lgt_child(GstHarness *h, const char *factory);

/* Engine parameters equal to what lgt_configure sets. */
void lgt_enhance_params(LilyEnhanceParams *p);

/* A buffer of n frames of `channels` interleaved float samples with the given PTS. */
GstBuffer *lgt_audio_buffer(const float *x, gsize n, guint channels, GstClockTime pts);
/* Pushes x (n interleaved frames) in buffers of odd sizes (cycled), PTS from `origin`; returns
 * the last flow return. */
GstFlowReturn lgt_push_audio(GstHarness *h, const float *x, gsize n, guint channels,
                             GstClockTime origin);
GstClockTime lgt_sample_time(guint64 n);

/* Output of a harness whose src caps are F32 interleaved audio. */
typedef struct LgtAudio {
    guint channels;
    GArray *samples;    /* float, interleaved */
    GPtrArray *buffers; /* the output buffers, in order */
} LgtAudio;
void lgt_audio_init(LgtAudio *a, guint channels);
void lgt_audio_clear(LgtAudio *a);
/* Pulls every buffer the harness holds (without blocking). */
void lgt_audio_collect(GstHarness *h, LgtAudio *a);
gsize lgt_audio_frames(const LgtAudio *a);
/* One channel of an interleaved signal (g_free it). */
float *lgt_channel(const float *x, gsize frames, guint channels, guint c);

/* The reference: a LilyEnhancer (model loaded once per process) over x, one channel, pushed in
 * one go then finished; returns n samples (g_free). */
float *lgt_reference(const float *x, gsize n, const LilyEnhanceParams *p);

/* Test signals: a chirp-like mix with a band limit (what AudioSR is for), and a deterministic
 * noise burst, both at moderate level. */
void lgt_signal(float *x, gsize frames, guint channels, guint seed);

/* Asserts two float arrays are equal within `tol` (absolute, relative to b's peak when
 * relative is TRUE) and prints the largest difference. */
void lgt_assert_equal(const char *what, const float *a, const float *b, gsize n, double tol);

/* The buffer's GstLilyMelMeta (gst/gstlilymelmeta.h), looked up by its API type's name: the
 * meta's functions live in the plugin, which the tests load rather than link. */
struct _GstLilyMelMeta *lgt_mel_meta(GstBuffer *b);

/* Runs a pipeline until EOS or error (with a timeout in seconds); returns the error message
 * posted (g_free), or NULL on EOS. */
gchar *lgt_run_pipeline(GstElement *pipeline, guint timeout_s);

#endif /* LILY_TESTS_GST_LILY_GST_TEST_H */
