/* dsp/stft.c - FFTW plans and the periodic Hann window (see stft.h).
 *
 * FFTW's planner keeps process-wide tables and is not re-entrant; executing a finished plan
 * is. Two LilyMel objects may be created from two threads (two GStreamer elements), so the
 * planner is made thread-safe once per process with fftw_make_planner_thread_safe() (from
 * libfftw3_threads) under pthread_once: a one-time library initialisation, the only kind of
 * process state the engine allows itself. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/status.h"
#include "dsp/stft.h"

static pthread_once_t planner_once = PTHREAD_ONCE_INIT;

static void planner_init(void)
{
    fftw_make_planner_thread_safe();
}

LilyStatus lily_rfft_init(LilyContext *ctx, LilyRfft *r, int n, int with_inverse)
{
    memset(r, 0, sizeof *r);
    if (n < 2 || n % 2)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                          "fft: size %d is not an even number >= 2", n);
    pthread_once(&planner_once, planner_init);
    r->n = n;
    r->in = fftw_alloc_real((size_t)n);
    r->spec = fftw_alloc_complex((size_t)n / 2 + 1);
    if (!r->in || !r->spec) {
        lily_rfft_release(r);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "fft: out of memory for a %d-point FFT", n);
    }
    /* FFTW_ESTIMATE: planning must not touch the buffers and must be cheap, since every
     * LilyMel (one per stream) plans its own. */
    r->fwd = fftw_plan_dft_r2c_1d(n, r->in, r->spec, FFTW_ESTIMATE);
    if (r->fwd && with_inverse) r->inv = fftw_plan_dft_c2r_1d(n, r->spec, r->in, FFTW_ESTIMATE);
    if (!r->fwd || (with_inverse && !r->inv)) {
        lily_rfft_release(r);
        return lily_error(ctx, LILY_ERR_INTERNAL, "fft: FFTW could not plan a %d-point real FFT",
                          n);
    }
    return LILY_OK;
}

void lily_rfft_release(LilyRfft *r)
{
    if (r->fwd) fftw_destroy_plan(r->fwd);
    if (r->inv) fftw_destroy_plan(r->inv);
    fftw_free(r->in);
    fftw_free(r->spec);
    memset(r, 0, sizeof *r);
}

void lily_hann_periodic(double *w, int n)
{
    for (int k = 0; k < n; k++) w[k] = 0.5 - 0.5 * cos(2.0 * M_PI * (double)k / (double)n);
}
