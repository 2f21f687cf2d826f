/* dsp/cutoff.c - AudioSR's 0.985 energy rule and the input cutoff it detects.
 *
 * Reference: audiosr/utils.py _locate_cutoff_freq / _find_cutoff (spec.md 3b), the same rule
 * in LatentDiffusion.mel_replace_ops (8, over mel bins) and _get_cutoff_index_np (10, over
 * STFT rows). AudioSR sums and accumulates in float32; this does it in double, so a bin whose
 * cumulative energy sits within float32 rounding of the 0.985 threshold could land one bin
 * apart from AudioSR's. The reference runs (ref-a: 332, 170, 303) agree exactly. */
#include "core/status.h"
#include "dsp/mel.h"

#define CUTOFF_FRACTION 0.985
#define CUTOFF_MIN_HZ 1000.0 /* below this AudioSR gives up and uses the full band */

int lily_cutoff_index(const double *energy, int n)
{
    /* _find_cutoff scans x[-i] for i = 1 .. n-1 (indices n-1 down to 1) and returns the first
     * index whose cumulative sum is under the threshold: the largest such index. Index 0 is
     * never a hit, and 0 doubles as "not found". Two forward passes give the same prefix sums
     * as the cumsum, in the same order, without storing them. */
    if (n <= 1) return 0;
    double total = 0;
    for (int i = 0; i < n; i++) total += energy[i];
    const double thr = total * CUTOFF_FRACTION;
    int found = 0;
    double c = 0;
    for (int i = 0; i < n; i++) {
        c += energy[i];
        if (i >= 1 && c < thr) found = i;
    }
    return found;
}

LilyStatus lily_detect_cutoff(LilyMel *mel, const float *x, size_t n, double *cutoff_hz)
{
    double energy[LILY_MEL_MAG_BINS];
    LILY_TRY(lily_mel_stft_energy(mel, x, n, energy));
    const int bin = lily_cutoff_index(energy, LILY_MEL_MAG_BINS);
    double hz = ((double)bin / (double)LILY_MEL_MAG_BINS) * (LILY_SAMPLE_RATE / 2.0);
    if (hz < CUTOFF_MIN_HZ) hz = LILY_SAMPLE_RATE / 2.0;
    *cutoff_hz = hz;
    return LILY_OK;
}
