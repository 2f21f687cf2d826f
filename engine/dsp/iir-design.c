/* dsp/iir-design.c - IIR low-pass design, step for step as scipy.signal.iirfilter (scipy
 * 1.10, signal/_filter_design.py) with btype='low', output='sos':
 *   analog prototype (buttap, cheb1ap, ellipap, besselap norm='phase'),
 *   pre-warp warped = 2 fs tan(pi wn / fs) with fs = 2, lp2lp_zpk, bilinear_zpk (fs = 2),
 *   zpk2sos (zpk2sos.c).
 * Everything is double (complex double for roots), so the sections equal scipy's to ~1e-12
 * relative; the tests hold them to 1e-6 against scipy-made vectors (tests/data/dsp).
 * Where scipy's numbers come from a different algorithm (cephes' elliptic fits, kve-based
 * Bessel roots) the result is the same mathematical value to rounding: see elliptic.c and
 * bessel_roots() below. */
#include <math.h>
#include <string.h>

#include "core/status.h"
#include "dsp/elliptic.h"
#include "dsp/iir.h"

#define EPSILON 2e-16 /* scipy's threshold for "this zero/pole is real" in ellipap */

static void buttap(int n, LilyZpk *a)
{
    a->nz = 0;
    a->np = n;
    for (int i = 0; i < n; i++) {
        const int m = -n + 1 + 2 * i;
        const double th = M_PI * m / (2.0 * n);
        a->p[i] = -(cos(th) + I * sin(th));
    }
    a->k = 1.0;
}

static void cheb1ap(int n, double rp, LilyZpk *a)
{
    const double eps = sqrt(pow(10.0, 0.1 * rp) - 1.0);
    const double mu = 1.0 / n * asinh(1.0 / eps);
    a->nz = 0;
    a->np = n;
    double complex prod = 1.0;
    for (int i = 0; i < n; i++) {
        const int m = -n + 1 + 2 * i;
        const double th = M_PI * m / (2.0 * n);
        a->p[i] = -csinh(mu + I * th);
        prod *= -a->p[i];
    }
    a->k = creal(prod);
    if (n % 2 == 0) a->k /= sqrt(1.0 + eps * eps);
}

static double pow10m1(double x)
{
    return expm1(log(10.0) * x);
}

/* Solve n K(m)/K'(m) = K(m1)/K'(m1) for m through the nome (Orfanidis eq. 49). */
static double ellipdeg(int n, double m1)
{
    enum { MMAX = 7 };
    const double k1 = lily_ellipk(m1), k1p = lily_ellipkm1(m1);
    const double q1 = exp(-M_PI * k1p / k1);
    const double q = pow(q1, 1.0 / n);
    double num = 0, den = 0;
    for (int i = 0; i <= MMAX; i++) num += pow(q, (double)(i * (i + 1)));
    for (int i = 1; i <= MMAX + 1; i++) den += pow(q, (double)(i * i));
    den = 1.0 + 2.0 * den;
    const double r = num / den;
    return 16.0 * q * (r * r * r * r);
}

static LilyStatus ellipap(LilyContext *ctx, int n, double rp, double rs, LilyZpk *a)
{
    if (n == 1) {
        a->nz = 0;
        a->np = 1;
        a->p[0] = -sqrt(1.0 / pow10m1(0.1 * rp));
        a->k = -creal(a->p[0]);
        return LILY_OK;
    }
    const double eps_sq = pow10m1(0.1 * rp);
    const double eps = sqrt(eps_sq);
    const double ck1_sq = eps_sq / pow10m1(0.1 * rs);
    if (!(ck1_sq > 0))
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                          "ellip: cannot design with rp %g dB and rs %g dB", rp, rs);
    const double val0 = lily_ellipk(ck1_sq);
    const double m = ellipdeg(n, ck1_sq);
    const double capk = lily_ellipk(m);

    /* j = 1 - n%2, 3 - n%2, ... < n */
    double s[LILY_IIR_MAX_ORDER], c[LILY_IIR_MAX_ORDER], d[LILY_IIR_MAX_ORDER];
    int nj = 0;
    for (int j = 1 - n % 2; j < n; j += 2, nj++) lily_ellipj(j * capk / n, m, &s[nj], &c[nj], &d[nj]);

    int nz = 0;
    for (int i = 0; i < nj; i++)
        if (fabs(s[i]) > EPSILON) a->z[nz++] = I * (1.0 / (sqrt(m) * s[i]));
    for (int i = 0; i < nz; i++) a->z[nz + i] = conj(a->z[i]);
    a->nz = 2 * nz;

    /* r = _arc_jac_sc1(1/eps, ck1_sq): sc(z | 1-m) inverted through sn(i z | m) */
    const double complex zc = lily_arc_jac_sn(I * (1.0 / eps), ck1_sq);
    if (isnan(creal(zc)) || fabs(creal(zc)) > 1e-14)
        return lily_error(ctx, LILY_ERR_INTERNAL,
                          "ellip: the inverse elliptic function did not converge for rp %g, "
                          "rs %g", rp, rs);
    const double r = cimag(zc);
    const double v0 = capk * r / (n * val0);
    double sv, cv, dv;
    lily_ellipj(v0, 1.0 - m, &sv, &cv, &dv);

    double complex p[LILY_IIR_MAX_ORDER];
    double norm2 = 0;
    for (int i = 0; i < nj; i++) {
        const double den = 1.0 - (d[i] * sv) * (d[i] * sv);
        p[i] = -(c[i] * d[i] * sv * cv + I * (s[i] * dv)) / den;
        norm2 += creal(p[i] * conj(p[i]));
    }
    int np = 0;
    for (int i = 0; i < nj; i++) a->p[np++] = p[i];
    if (n % 2) {
        const double tol = EPSILON * sqrt(norm2);
        for (int i = 0; i < nj; i++)
            if (fabs(cimag(p[i])) > tol) a->p[np++] = conj(p[i]);
    } else {
        for (int i = 0; i < nj; i++) a->p[np++] = conj(p[i]);
    }
    a->np = np;

    double complex pp = 1.0, pz = 1.0;
    for (int i = 0; i < a->np; i++) pp *= -a->p[i];
    for (int i = 0; i < a->nz; i++) pz *= -a->z[i];
    a->k = creal(pp / pz);
    if (n % 2 == 0) a->k /= sqrt(1.0 + eps_sq);
    return LILY_OK;
}

/* Zeros of the ordinary Bessel polynomial y_n(x) = sum_k (n+k)! / ((n-k)! k! 2^k) x^k.
 * scipy finds them as zeros of exp(1/x) K_{n+1/2}(1/x) (Aberth, then Newton); here they are
 * found from the integer coefficients (exact in long double for n <= 12) by Aberth-Ehrlich
 * iteration and Newton polishing in long double, then conjugate pairs are averaged to be
 * exactly symmetric, as scipy does. */
static LilyStatus bessel_roots(LilyContext *ctx, int n, double complex *out)
{
    typedef long double complex lcx;
    long double a[LILY_IIR_MAX_ORDER + 1];
    a[0] = 1.0L;
    for (int k = 1; k <= n; k++) a[k] = a[k - 1] * (long double)((n + k) * (n - k + 1)) / (2.0L * k);
    lcx x[LILY_IIR_MAX_ORDER];
    /* start on a circle of the roots' geometric-mean radius, rotated off the real axis */
    const long double rad = powl(a[0] / a[n], 1.0L / n);
    for (int i = 0; i < n; i++) {
        long double th = 2.0L * (long double)M_PI * (i + 0.25L) / n + 0.4L;
        x[i] = rad * (cosl(th) + I * sinl(th));
    }
    /* Aberth converges cubically down to the rounding noise of the polynomial's value, which
     * for n = 12 sits near 4e-15 relative even in long double: iterate until the steps stop
     * mattering rather than to a fixed threshold, and fail only on real divergence. */
    long double max_step = 0;
    for (int it = 0; it < 100; it++) {
        max_step = 0;
        for (int i = 0; i < n; i++) {
            lcx f = a[n], fp = 0;
            for (int k = n - 1; k >= 0; k--) {
                fp = fp * x[i] + f;
                f = f * x[i] + a[k];
            }
            if (f == 0) continue;
            lcx ratio = f / fp, rep = 0;
            for (int j = 0; j < n; j++)
                if (j != i) rep += 1.0L / (x[i] - x[j]);
            lcx step = ratio / (1.0L - ratio * rep);
            x[i] -= step;
            long double rel = cabsl(step) / cabsl(x[i]);
            if (rel > max_step) max_step = rel;
        }
        if (max_step < 1e-18L) break;
    }
    const int converged = max_step < 1e-12L;
    for (int i = 0; i < n; i++) { /* Newton polish */
        for (int it = 0; it < 3; it++) {
            lcx f = a[n], fp = 0;
            for (int k = n - 1; k >= 0; k--) {
                fp = fp * x[i] + f;
                f = f * x[i] + a[k];
            }
            if (fp != 0) x[i] -= f / fp;
        }
    }
    if (!converged)
        return lily_error(ctx, LILY_ERR_INTERNAL, "bessel: the order-%d polynomial roots did not "
                          "converge", n);
    /* pair each complex root with the root nearest its conjugate and average the two */
    int used[LILY_IIR_MAX_ORDER] = {0};
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (used[i]) continue;
        int best = -1;
        long double bd = 0;
        for (int j = 0; j < n; j++) {
            if (j == i || used[j]) continue;
            long double dd = cabsl(x[j] - conjl(x[i]));
            if (best < 0 || dd < bd) {
                best = j;
                bd = dd;
            }
        }
        if (best >= 0 && bd < 1e-9L * cabsl(x[i]) && fabsl(cimagl(x[i])) > 1e-9L * cabsl(x[i])) {
            lcx avg = 0.5L * (x[i] + conjl(x[best]));
            used[i] = used[best] = 1;
            out[m++] = (double complex)avg;
            out[m++] = (double complex)conjl(avg);
        } else {
            used[i] = 1;
            out[m++] = (double)creall(x[i]);
        }
    }
    if (m != n)
        return lily_error(ctx, LILY_ERR_INTERNAL, "bessel: order-%d roots did not pair up", n);
    return LILY_OK;
}

static LilyStatus besselap(LilyContext *ctx, int n, LilyZpk *a)
{
    double complex x[LILY_IIR_MAX_ORDER];
    LILY_TRY(bessel_roots(ctx, n, x));
    /* a_last = (2n)! / (n! 2^n), exact in double for n <= 12 */
    double a_last = 1.0;
    for (int k = 1; k <= n; k++) a_last = a_last * (double)((n + k) * (n - k + 1)) / (2.0 * k);
    const double scale = pow(10.0, -log10(a_last) / n); /* 'phase': Butterworth asymptotes */
    a->nz = 0;
    a->np = n;
    for (int i = 0; i < n; i++) a->p[i] = (1.0 / x[i]) * scale;
    a->k = 1.0;
    return LILY_OK;
}

LilyStatus lily_iir_lowpass_zpk(LilyContext *ctx, LilyFilterType type, int order, double wn,
                                double rp, double rs, LilyZpk *zpk)
{
    if (order < 1 || order > LILY_IIR_MAX_ORDER)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                          "iir: filter order %d is outside 1..%d", order, LILY_IIR_MAX_ORDER);
    if (!(wn > 0.0 && wn < 1.0))
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                          "iir: digital cutoff %g (of Nyquist) must lie in (0, 1)", wn);
    memset(zpk, 0, sizeof *zpk);
    switch (type) {
    case LILY_FILTER_BUTTER: buttap(order, zpk); break;
    case LILY_FILTER_CHEBY1:
        if (!(rp > 0))
            return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "cheby1: ripple %g dB must be > 0",
                              rp);
        cheb1ap(order, rp, zpk);
        break;
    case LILY_FILTER_ELLIP:
        if (!(rp > 0) || !(rs > 0))
            return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT,
                              "ellip: ripple %g dB and attenuation %g dB must be > 0", rp, rs);
        LILY_TRY(ellipap(ctx, order, rp, rs, zpk));
        break;
    case LILY_FILTER_BESSEL: LILY_TRY(besselap(ctx, order, zpk)); break;
    default:
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "iir: unknown filter type %d",
                          (int)type);
    }
    /* pre-warp (fs = 2), lp2lp_zpk, bilinear_zpk */
    const double fs = 2.0, fs2 = 2.0 * fs;
    const double warped = 2 * fs * tan(M_PI * wn / fs);
    const int degree = zpk->np - zpk->nz;
    for (int i = 0; i < zpk->nz; i++) zpk->z[i] *= warped;
    for (int i = 0; i < zpk->np; i++) zpk->p[i] *= warped;
    zpk->k *= pow(warped, degree);

    double complex pz = 1.0, pp = 1.0;
    for (int i = 0; i < zpk->nz; i++) pz *= fs2 - zpk->z[i];
    for (int i = 0; i < zpk->np; i++) pp *= fs2 - zpk->p[i];
    for (int i = 0; i < zpk->nz; i++) zpk->z[i] = (fs2 + zpk->z[i]) / (fs2 - zpk->z[i]);
    for (int i = 0; i < zpk->np; i++) zpk->p[i] = (fs2 + zpk->p[i]) / (fs2 - zpk->p[i]);
    for (int i = 0; i < degree; i++) zpk->z[zpk->nz++] = -1.0;
    zpk->k *= creal(pz / pp);
    return LILY_OK;
}

LilyStatus lily_iir_lowpass(LilyContext *ctx, LilyFilterType type, int order, double wn,
                            double rp, double rs, LilySos *sos)
{
    LilyZpk zpk;
    LILY_TRY(lily_iir_lowpass_zpk(ctx, type, order, wn, rp, rs, &zpk));
    return lily_zpk2sos(ctx, &zpk, sos);
}
