/* models/enhance.c - lily_enhance: one channel of any rate in, 48 kHz out.
 *
 * The input is brought to 48 kHz with scipy-style polyphase resampling (dsp/resample.h; AudioSR
 * uses torchaudio's sinc resampler, which no reference vector depends on), run through a
 * LilyEnhancer (models/stream.c) and checked for clipping: when the enhanced signal would
 * exceed full scale, the whole output is scaled by one gain, so there is never a gain step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "dsp/resample.h"
#include "models/pipeline.h"

#define FULL_SCALE 0.999

static int gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

LilyStatus lily_resample_to_48k(LilyContext *ctx, const float *x, size_t n, int rate, float **out,
                                size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (rate <= 0 || rate > 768000)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "sample rate %d Hz is out of range", rate);
    if (rate == LILY_SAMPLE_RATE) {
        float *y = malloc((n ? n : 1) * sizeof(float));
        if (!y) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory");
        memcpy(y, x, n * sizeof(float));
        *out = y;
        *n_out = n;
        return LILY_OK;
    }
    int g = gcd(LILY_SAMPLE_RATE, rate);
    LilyResampler r;
    LILY_TRY(lily_resampler_init(ctx, &r, LILY_SAMPLE_RATE / g, rate / g));
    size_t ny = lily_resampler_out_len(&r, n);
    double *xd = malloc((n ? n : 1) * sizeof(double));
    double *yd = malloc((ny ? ny : 1) * sizeof(double));
    float *y = malloc((ny ? ny : 1) * sizeof(float));
    if (!xd || !yd || !y) {
        free(xd);
        free(yd);
        free(y);
        lily_resampler_release(&r);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory resampling %zu samples", n);
    }
    for (size_t i = 0; i < n; i++) xd[i] = x[i];
    lily_resampler_run(&r, xd, n, yd);
    for (size_t i = 0; i < ny; i++) y[i] = (float)yd[i];
    free(xd);
    free(yd);
    lily_resampler_release(&r);
    *out = y;
    *n_out = ny;
    return LILY_OK;
}

LilyStatus lily_enhance(LilyContext *ctx, LilyModel *model, const LilyEnhanceParams *params,
                        const float *x, size_t n, int rate, float **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    float *x48 = NULL, *y = NULL;
    size_t n48 = 0;
    LilyEnhancer *e = NULL;
    LILY_TRY(lily_resample_to_48k(ctx, x, n, rate, &x48, &n48));
    LilyStatus st = lily_enhancer_new(ctx, model, params, &e);
    if (st != LILY_OK) goto done;
    y = malloc((n48 ? n48 : 1) * sizeof(float));
    if (!y) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of memory for %zu output samples", n48);
        goto done;
    }
    size_t got = 0;
    /* push in slices so memory held by the stages stays that of a chunk */
    const size_t slice = (size_t)LILY_SEGMENT_SAMPLES;
    for (size_t i = 0; i < n48 && st == LILY_OK; i += slice) {
        st = lily_enhancer_push(e, x48 + i, n48 - i < slice ? n48 - i : slice);
        if (st == LILY_OK) got += lily_enhancer_pull(e, y + got, n48 - got);
    }
    if (st == LILY_OK) st = lily_enhancer_finish(e);
    if (st == LILY_OK) got += lily_enhancer_pull(e, y + got, n48 - got);
    if (st == LILY_OK && got != n48)
        st = lily_error(ctx, LILY_ERR_INTERNAL, "enhance: %zu samples out for %zu in", got, n48);
    if (st != LILY_OK) goto done;
    if (!params || !params->audiosr_level) {
        double peak = 0;
        for (size_t i = 0; i < n48; i++) peak = fmax(peak, fabs((double)y[i]));
        if (peak > FULL_SCALE) {
            float g = (float)(FULL_SCALE / peak);
            for (size_t i = 0; i < n48; i++) y[i] *= g;
            lily_log(ctx, LILY_LOG_INFO, "enhance: output peak %.3f scaled down to avoid clipping", peak);
        }
    }
    *out = y;
    *n_out = n48;
    y = NULL;
done:
    lily_enhancer_free(e);
    free(x48);
    free(y);
    return st;
}
