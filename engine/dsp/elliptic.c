/* dsp/elliptic.c - elliptic integrals and functions (see elliptic.h).
 *
 * K comes from the arithmetic-geometric mean, K(m) = pi / (2 AGM(1, sqrt(1 - m))), which is
 * exact to rounding for every m in [0, 1), including the m -> 1 end that ellipkm1 serves (its
 * second AGM argument is sqrt(p) directly, with no cancellation in 1 - m). scipy evaluates
 * both with cephes' polynomial fits; the two agree to ~1e-16 relative.
 * sn/cn/dn use the AGM with descending Landen transformations (Abramowitz & Stegun 16.4), the
 * method of cephes' ellpj, with A&S's small-m (16.13) and m-near-1 (16.15) expansions at the
 * same thresholds. _arc_jac_sn follows Orfanidis, "Lecture Notes on Elliptic Filter Design",
 * eq. (56), as scipy.signal._filter_design does. */
#include <math.h>

#include "dsp/elliptic.h"

#define AGM_MAX_ITER 64

static double agm(double a, double b)
{
    for (int i = 0; i < AGM_MAX_ITER && fabs(a - b) > 1e-17 * a; i++) {
        double an = 0.5 * (a + b);
        b = sqrt(a * b);
        a = an;
    }
    return 0.5 * (a + b);
}

double lily_ellipk(double m)
{
    if (m > 1.0 || isnan(m)) return NAN;
    if (m == 1.0) return INFINITY;
    return M_PI / (2.0 * agm(1.0, sqrt(1.0 - m)));
}

double lily_ellipkm1(double p)
{
    if (p < 0.0 || isnan(p)) return NAN;
    if (p == 0.0) return INFINITY;
    return M_PI / (2.0 * agm(1.0, sqrt(p)));
}

void lily_ellipj(double u, double m, double *sn, double *cn, double *dn)
{
    if (m < 0.0 || m > 1.0 || isnan(m)) {
        *sn = *cn = *dn = NAN;
        return;
    }
    if (m < 1e-9) { /* A&S 16.13: first order in m */
        double s = sin(u), c = cos(u);
        double ai = 0.25 * m * (u - s * c);
        *sn = s - ai * c;
        *cn = c + ai * s;
        *dn = 1.0 - 0.5 * m * s * s;
        return;
    }
    if (m >= 0.9999999999) { /* A&S 16.15: first order in 1 - m */
        double ai = 0.25 * (1.0 - m);
        double b = cosh(u), t = tanh(u), sech = 1.0 / b;
        double twon = b * sinh(u);
        *sn = t + ai * (twon - u) / (b * b);
        ai *= t * sech;
        *cn = sech - ai * (twon - u);
        *dn = sech + ai * (twon + u);
        return;
    }
    /* AGM sequence a_i, c_i down to c_N / a_N below the rounding, then phi_N = 2^N a_N u and
     * back up: phi_{i-1} = (phi_i + asin(c_i sin(phi_i) / a_i)) / 2. */
    enum { MAX_STEPS = 9 };
    double a[MAX_STEPS], c[MAX_STEPS];
    double b = sqrt(1.0 - m), twon = 1.0;
    int i = 0;
    a[0] = 1.0;
    c[0] = sqrt(m);
    while (fabs(c[i] / a[i]) > 1.11022302462515654042e-16 && i < MAX_STEPS - 1) {
        double ai = a[i];
        i++;
        c[i] = 0.5 * (ai - b);
        double t = sqrt(ai * b);
        a[i] = 0.5 * (ai + b);
        b = t;
        twon *= 2.0;
    }
    double phi = twon * a[i] * u, prev = phi;
    for (; i > 0; i--) {
        double t = c[i] * sin(phi) / a[i];
        prev = phi;
        phi = 0.5 * (asin(t) + phi);
    }
    *sn = sin(phi);
    *cn = cos(phi);
    *dn = *cn / cos(phi - prev);
}

/* sqrt(1 - k^2) written so that it stays accurate for small k */
static double complex complement(double complex k)
{
    return csqrt((1.0 - k) * (1.0 + k));
}

double complex lily_arc_jac_sn(double complex w, double m)
{
    enum { MAX_ITER = 10 };
    const double k = sqrt(m);
    if (k > 1.0 || isnan(k)) return NAN;
    if (k == 1.0) return catanh(w);
    /* descending Landen moduli k_0 = k, k_{n+1} = (1 - k_n') / (1 + k_n') down to 0 */
    double ks[MAX_ITER + 2];
    int nk = 1;
    ks[0] = k;
    while (ks[nk - 1] != 0.0) {
        if (nk > MAX_ITER) return NAN; /* not converging (scipy raises) */
        double kp = creal(complement(ks[nk - 1]));
        ks[nk] = (1.0 - kp) / (1.0 + kp);
        nk++;
    }
    double kk = 1.0;
    for (int i = 1; i < nk; i++) kk *= 1.0 + ks[i];
    kk *= M_PI / 2.0;
    double complex wn = w;
    for (int i = 0; i + 1 < nk; i++)
        wn = 2.0 * wn / ((1.0 + ks[i + 1]) * (1.0 + complement(ks[i] * wn)));
    return kk * (2.0 / M_PI * casin(wn));
}
