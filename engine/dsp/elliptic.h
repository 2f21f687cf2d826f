/* dsp/elliptic.h - complete elliptic integrals and Jacobi elliptic functions for the
 * elliptic (Cauer) filter prototype (iir-design.c), with scipy.special's conventions:
 * the parameter m = k^2, not the modulus k. */
#ifndef LILY_DSP_ELLIPTIC_H
#define LILY_DSP_ELLIPTIC_H

#include <complex.h>

/* K(m), scipy.special.ellipk. */
double lily_ellipk(double m);
/* K(1 - p), scipy.special.ellipkm1: accurate for tiny p. */
double lily_ellipkm1(double p);
/* sn, cn, dn of (u | m), scipy.special.ellipj (phi is not needed). */
void lily_ellipj(double u, double m, double *sn, double *cn, double *dn);
/* Inverse of sn for a complex argument: z with sn(z | m) = w (scipy.signal's _arc_jac_sn,
 * descending Landen transformations). Returns NAN when m > 1. */
double complex lily_arc_jac_sn(double complex w, double m);

#endif /* LILY_DSP_ELLIPTIC_H */
