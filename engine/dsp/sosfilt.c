/* dsp/sosfilt.c - scipy.signal.sosfilt, sosfilt_zi and sosfiltfilt (scipy 1.10,
 * signal/_signaltools.py) in double precision.
 *
 * sosfiltfilt: odd extension of `edge` samples at both ends (2 x[0] - x[edge..1], and the
 * mirror at the end), a forward pass started from sosfilt_zi scaled by the first extended
 * sample, a backward pass started from sosfilt_zi scaled by the last forward output, and the
 * extension cut off again. Each section runs in direct form II transposed, as scipy's
 * _sosfilt does. */
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "dsp/iir.h"

void lily_sosfilt(const LilySos *sos, double *x, size_t n, double zi[][2])
{
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        for (int s = 0; s < sos->n; s++) {
            const double *c = sos->s[s];
            const double y = c[0] * v + zi[s][0];
            zi[s][0] = c[1] * v - c[4] * y + zi[s][1];
            zi[s][1] = c[2] * v - c[5] * y;
            v = y;
        }
        x[i] = v;
    }
}

void lily_sosfilt_zi(const LilySos *sos, double zi[][2])
{
    /* lfilter_zi per section: solve (I - A) zi = B for the companion matrix of a (a0 = 1):
     * [[1 + a1, -1], [a2, 1]] zi = [b1 - a1 b0, b2 - a2 b0]; then scale by the DC gain of the
     * sections before it, so a unit step passes through in steady state. */
    double scale = 1.0;
    for (int s = 0; s < sos->n; s++) {
        const double *c = sos->s[s];
        double b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[4], a2 = c[5];
        if (c[3] != 1.0) { /* normalise, as lfilter_zi does */
            b0 /= c[3], b1 /= c[3], b2 /= c[3], a1 /= c[3], a2 /= c[3];
        }
        const double r0 = b1 - a1 * b0, r1 = b2 - a2 * b0;
        const double z0 = (r0 + r1) / (1.0 + a1 + a2);
        const double z1 = r1 - a2 * z0;
        zi[s][0] = scale * z0;
        zi[s][1] = scale * z1;
        scale *= (c[0] + c[1] + c[2]) / (c[3] + c[4] + c[5]);
    }
}

size_t lily_sosfiltfilt_padlen(const LilySos *sos)
{
    int zb = 0, za = 0;
    for (int s = 0; s < sos->n; s++) {
        zb += sos->s[s][2] == 0.0;
        za += sos->s[s][5] == 0.0;
    }
    const int ntaps = 2 * sos->n + 1 - (zb < za ? zb : za);
    return (size_t)(3 * ntaps);
}

LilyStatus lily_sosfiltfilt(LilyContext *ctx, const LilySos *sos, const double *x, size_t n,
                            double *y)
{
    if (n == 0) return LILY_OK;
    size_t edge = lily_sosfiltfilt_padlen(sos);
    if (edge >= n) edge = n - 1; /* scipy raises here; a shorter odd extension still works */
    const size_t len = n + 2 * edge;
    double *ext = malloc(len * sizeof *ext);
    if (!ext)
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "sosfiltfilt: out of memory for %zu samples",
                          n);
    for (size_t i = 0; i < edge; i++) {
        ext[i] = 2.0 * x[0] - x[edge - i];
        ext[edge + n + i] = 2.0 * x[n - 1] - x[n - 2 - i];
    }
    memcpy(ext + edge, x, n * sizeof *x);

    double zi0[LILY_IIR_MAX_SECTIONS][2], zi[LILY_IIR_MAX_SECTIONS][2];
    lily_sosfilt_zi(sos, zi0);
    for (int s = 0; s < sos->n; s++) zi[s][0] = zi0[s][0] * ext[0], zi[s][1] = zi0[s][1] * ext[0];
    lily_sosfilt(sos, ext, len, zi);
    /* backward pass on the reversed signal */
    for (size_t i = 0; i < len / 2; i++) {
        double t = ext[i];
        ext[i] = ext[len - 1 - i];
        ext[len - 1 - i] = t;
    }
    for (int s = 0; s < sos->n; s++) zi[s][0] = zi0[s][0] * ext[0], zi[s][1] = zi0[s][1] * ext[0];
    lily_sosfilt(sos, ext, len, zi);
    for (size_t i = 0; i < n; i++) y[i] = ext[len - 1 - edge - i];
    free(ext);
    return LILY_OK;
}
