/* dsp/prepare.c - AudioSR's level and length conventions (see prepare.h).
 *
 * Reference: audiosr/utils.py read_wav_file -> normalize_wav, pad_wav (spec.md 1 stage 2)
 * and the end of LatentDiffusion.generate_batch (stage 11). AudioSR works in float32 numpy;
 * these use double accumulators and one rounding per sample, which agrees with it to ~1e-7
 * relative (tests/dsp/test-restore.c compares with ref-a). */
#include <math.h>

#include "core/status.h"
#include "dsp/mel.h"
#include "dsp/prepare.h"

LilyStatus lily_audiosr_normalize(LilyContext *ctx, float *x, size_t n, double *mean_out,
                                  double *gain_out)
{
    const size_t bad = lily_first_nonfinite(x, n);
    if (bad < n)
        return lily_error(ctx, LILY_ERR_NUMERIC,
                          "normalise: input sample %zu is not finite: check the decoder", bad);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    const double mean = n ? s / (double)n : 0.0;
    double peak = 0;
    for (size_t i = 0; i < n; i++) {
        const double a = fabs((double)(float)((double)x[i] - mean));
        if (a > peak) peak = a;
    }
    const double gain = 0.5 / (peak + 1e-8);
    for (size_t i = 0; i < n; i++) x[i] = (float)(((double)x[i] - mean) * gain);
    if (mean_out) *mean_out = mean;
    if (gain_out) *gain_out = gain;
    return LILY_OK;
}

uint64_t lily_audiosr_segments(uint64_t n, int rate)
{
    if (rate <= 0) return 0;
    /* 5.12 s = 512 / 100 s: segments = ceil(n * 100 / (512 * rate)) */
    const uint64_t den = 512ULL * (uint64_t)rate;
    const uint64_t q = n / den, r = n % den; /* split so 100 n cannot overflow */
    return q * 100 + (r * 100 + den - 1) / den;
}

size_t lily_audiosr_padded_length(size_t n)
{
    return (size_t)lily_audiosr_segments(n, LILY_SAMPLE_RATE) * LILY_SEGMENT_SAMPLES;
}

double lily_audiosr_output_normalize(float *x, size_t n)
{
    double peak = 0;
    for (size_t i = 0; i < n; i++) {
        const double a = fabs((double)x[i]);
        if (a > peak) peak = a;
    }
    if (!(peak > 0) || !isfinite(peak)) return 0.0;
    const double gain = 0.5 / peak;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)(float)(x[i] * gain);
    const double mean = s / (double)n;
    for (size_t i = 0; i < n; i++) x[i] = (float)((double)(float)(x[i] * gain) - mean);
    return gain;
}
