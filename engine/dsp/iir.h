/* dsp/iir.h - IIR low-pass design as scipy.signal does it (butter, cheby1, ellip, bessel with
 * output='sos'), and zero-phase filtering (sosfiltfilt). Engine-internal. */
#ifndef LILY_DSP_IIR_H
#define LILY_DSP_IIR_H

#include <complex.h>
#include <stddef.h>

#include <lily/lily.h>

#define LILY_IIR_MAX_ORDER 12
#define LILY_IIR_MAX_SECTIONS ((LILY_IIR_MAX_ORDER + 1) / 2)
/* poles or zeros of a digital design, plus zpk2sos's padding to an even count */
#define LILY_ZPK_MAX (LILY_IIR_MAX_ORDER + 2)

/* Second-order sections, scipy's layout: each row b0 b1 b2 a0 a1 a2 (a0 = 1). */
typedef struct LilySos {
    int n;
    double s[LILY_IIR_MAX_SECTIONS][6];
} LilySos;

typedef struct LilyZpk {
    int nz, np;
    double complex z[LILY_ZPK_MAX];
    double complex p[LILY_ZPK_MAX];
    double k;
} LilyZpk;

/* scipy.signal.<butter|cheby1|ellip|bessel>(order, wn, btype='low', output='sos') with
 * rp dB of passband ripple (cheby1, ellip) and rs dB of stopband attenuation (ellip); bessel
 * uses norm='phase'. wn is the cutoff over Nyquist, 0 < wn < 1; order 1..12. */
LilyStatus lily_iir_lowpass(LilyContext *ctx, LilyFilterType type, int order, double wn,
                            double rp, double rs, LilySos *sos);

/* The same design as zeros, poles and gain (output='zpk'), before the sections are formed. */
LilyStatus lily_iir_lowpass_zpk(LilyContext *ctx, LilyFilterType type, int order, double wn,
                                double rp, double rs, LilyZpk *zpk);

/* scipy.signal.zpk2sos(z, p, k) for a digital filter, pairing='nearest' (zpk2sos.c). */
LilyStatus lily_zpk2sos(LilyContext *ctx, const LilyZpk *zpk, LilySos *sos);

/* scipy.signal.sosfiltfilt(sos, x) with padtype 'odd' and the default pad length
 * (lily_sosfiltfilt_padlen). scipy refuses signals not longer than the pad; here the pad is
 * shortened to n - 1 instead. y may equal x. */
LilyStatus lily_sosfiltfilt(LilyContext *ctx, const LilySos *sos, const double *x, size_t n,
                            double *y);
/* 3 * (2 * sections + 1 - min(#(b2 == 0), #(a2 == 0))), scipy's default padlen. */
size_t lily_sosfiltfilt_padlen(const LilySos *sos);
/* scipy.signal.sosfilt_zi: the steady state of each section for a unit step. */
void lily_sosfilt_zi(const LilySos *sos, double zi[][2]);
/* scipy.signal.sosfilt in place with state zi (updated), direct form II transposed. */
void lily_sosfilt(const LilySos *sos, double *x, size_t n, double zi[][2]);

#endif /* LILY_DSP_IIR_H */
