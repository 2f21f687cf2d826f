/* dsp/zpk2sos.c - scipy.signal.zpk2sos for digital filters, pairing='nearest' (scipy 1.10):
 * _cplxreal keeps one member of each conjugate pair (sorted by real part, then |imag|), the
 * pole nearest the unit circle is taken first and paired with its nearest zero, and the
 * sections are filled from the last row up, so the sections closest to instability come
 * last; the gain goes into the first row's numerator. Ties resolve to the lowest index, as
 * numpy's argmin and (for these small arrays, insertion-sorted) argsort do. */
#include <math.h>
#include <string.h>

#include "core/status.h"
#include "dsp/iir.h"

#define CPLX_TOL (100 * 2.220446049250313e-16) /* 100 * finfo(float64).eps */

typedef struct Roots {
    int n;
    double complex v[LILY_ZPK_MAX];
} Roots;

static int is_real(double complex v)
{
    return cimag(v) == 0.0;
}

static void roots_delete(Roots *r, int i)
{
    memmove(&r->v[i], &r->v[i + 1], (size_t)(r->n - i - 1) * sizeof r->v[0]);
    r->n--;
}

/* lexsort by (real part, |imag|), stable */
static void sort_real_absimag(double complex *v, int n)
{
    for (int i = 1; i < n; i++) {
        double complex t = v[i];
        int j = i - 1;
        while (j >= 0 && (creal(v[j]) > creal(t) ||
                          (creal(v[j]) == creal(t) && fabs(cimag(v[j])) > fabs(cimag(t))))) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = t;
    }
}

static void sort_absimag(double complex *v, int n)
{
    for (int i = 1; i < n; i++) {
        double complex t = v[i];
        int j = i - 1;
        while (j >= 0 && fabs(cimag(v[j])) > fabs(cimag(t))) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = t;
    }
}

/* _cplxreal: out = [one of each conjugate pair (positive imag, averaged), then the reals] */
static LilyStatus cplxreal(LilyContext *ctx, const double complex *in, int n, Roots *out)
{
    double complex z[LILY_ZPK_MAX], zp[LILY_ZPK_MAX], zn[LILY_ZPK_MAX], zr[LILY_ZPK_MAX];
    int npos = 0, nneg = 0, nr = 0;
    memcpy(z, in, (size_t)n * sizeof z[0]);
    sort_real_absimag(z, n);
    for (int i = 0; i < n; i++) {
        if (fabs(cimag(z[i])) <= CPLX_TOL * cabs(z[i])) zr[nr++] = creal(z[i]);
        else if (cimag(z[i]) > 0) zp[npos++] = z[i];
        else zn[nneg++] = z[i];
    }
    if (npos != nneg)
        return lily_error(ctx, LILY_ERR_INTERNAL, "zpk2sos: a complex root has no conjugate");
    /* runs of (nearly) equal real part are ordered by |imag| */
    for (int s = 0; s < npos;) {
        int e = s + 1;
        while (e < npos && creal(zp[e]) - creal(zp[e - 1]) <= CPLX_TOL * cabs(zp[e - 1])) e++;
        sort_absimag(zp + s, e - s);
        sort_absimag(zn + s, e - s);
        s = e;
    }
    out->n = 0;
    for (int i = 0; i < npos; i++) {
        if (cabs(zp[i] - conj(zn[i])) > CPLX_TOL * cabs(zn[i]))
            return lily_error(ctx, LILY_ERR_INTERNAL, "zpk2sos: a complex root has no conjugate");
        out->v[out->n++] = (zp[i] + conj(zn[i])) / 2.0;
    }
    for (int i = 0; i < nr; i++) out->v[out->n++] = zr[i];
    return LILY_OK;
}

/* argmin |1 - |p|| over the entries of r that pass `only_real` (all when 0) */
static int idx_worst(const Roots *r, int only_real)
{
    int best = -1;
    double bd = 0;
    for (int i = 0; i < r->n; i++) {
        if (only_real && !is_real(r->v[i])) continue;
        double d = fabs(1.0 - cabs(r->v[i]));
        if (best < 0 || d < bd) {
            best = i;
            bd = d;
        }
    }
    return best;
}

enum { PICK_ANY, PICK_REAL, PICK_COMPLEX };

/* _nearest_real_complex_idx: nearest entry to `to` of the wanted kind, or -1 */
static int nearest(const Roots *r, double complex to, int which)
{
    int best = -1;
    double bd = 0;
    for (int i = 0; i < r->n; i++) {
        if (which == PICK_REAL && !is_real(r->v[i])) continue;
        if (which == PICK_COMPLEX && is_real(r->v[i])) continue;
        double d = cabs(r->v[i] - to);
        if (best < 0 || d < bd) {
            best = i;
            bd = d;
        }
    }
    return best;
}

static int count_real(const Roots *r)
{
    int c = 0;
    for (int i = 0; i < r->n; i++) c += is_real(r->v[i]);
    return c;
}

/* numpy.poly of up to two roots, real part (the callers pass real or conjugate pairs) */
static int poly2(const double complex *roots, int n, double out[3])
{
    double complex c[3] = {1.0, 0, 0};
    for (int i = 0; i < n; i++) {
        /* convolve with [1, -root] */
        double complex nc[3] = {c[0], c[1] - roots[i] * c[0], c[2] - roots[i] * c[1]};
        memcpy(c, nc, sizeof c);
    }
    for (int i = 0; i <= n; i++) out[i] = creal(c[i]);
    return n + 1;
}

/* _single_zpksos: b and a right-aligned in their three slots */
static void single_section(double row[6], const double complex *z, int nz, const double complex *p,
                           int np)
{
    double b[3], a[3];
    int lb = poly2(z, nz, b), la = poly2(p, np, a);
    memset(row, 0, 6 * sizeof row[0]);
    for (int i = 0; i < lb; i++) row[3 - lb + i] = b[i];
    for (int i = 0; i < la; i++) row[6 - la + i] = a[i];
}

LilyStatus lily_zpk2sos(LilyContext *ctx, const LilyZpk *zpk, LilySos *sos)
{
    memset(sos, 0, sizeof *sos);
    if (zpk->nz == 0 && zpk->np == 0) {
        sos->n = 1;
        sos->s[0][0] = zpk->k;
        sos->s[0][3] = 1.0;
        return LILY_OK;
    }
    if (zpk->nz > LILY_ZPK_MAX - 2 || zpk->np > LILY_ZPK_MAX - 2)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "zpk2sos: more than %d roots",
                          LILY_ZPK_MAX - 2);
    /* equal counts, padded with roots at the origin, plus one more each for an odd count */
    double complex z[LILY_ZPK_MAX] = {0}, p[LILY_ZPK_MAX] = {0};
    int n = zpk->nz > zpk->np ? zpk->nz : zpk->np;
    memcpy(z, zpk->z, (size_t)zpk->nz * sizeof z[0]);
    memcpy(p, zpk->p, (size_t)zpk->np * sizeof p[0]);
    const int n_sections = (n + 1) / 2;
    if (n % 2) n++;
    if (n_sections > LILY_IIR_MAX_SECTIONS)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "zpk2sos: %d sections is too many",
                          n_sections);
    Roots zr, pr;
    LILY_TRY(cplxreal(ctx, z, n, &zr));
    LILY_TRY(cplxreal(ctx, p, n, &pr));
    sos->n = n_sections;

    for (int si = n_sections - 1; si >= 0; si--) {
        int i1 = idx_worst(&pr, 0);
        const double complex p1 = pr.v[i1];
        roots_delete(&pr, i1);
        double *row = sos->s[si];
        if (is_real(p1) && count_real(&pr) == 0) {
            /* special case 1: the last real pole goes with the nearest real zero */
            int iz = nearest(&zr, p1, PICK_REAL);
            if (iz < 0) return lily_error(ctx, LILY_ERR_INTERNAL, "zpk2sos: no real zero left");
            double complex zz[2] = {zr.v[iz], 0}, pp[2] = {p1, 0};
            roots_delete(&zr, iz);
            single_section(row, zz, 2, pp, 2);
        } else if (pr.n + 1 == zr.n && !is_real(p1) && count_real(&pr) == 1 &&
                   count_real(&zr) == 1) {
            /* special case 2: keep the last real pole and real zero together */
            int iz = nearest(&zr, p1, PICK_COMPLEX);
            if (iz < 0) return lily_error(ctx, LILY_ERR_INTERNAL, "zpk2sos: no complex zero left");
            double complex zz[2] = {zr.v[iz], conj(zr.v[iz])}, pp[2] = {p1, conj(p1)};
            roots_delete(&zr, iz);
            single_section(row, zz, 2, pp, 2);
        } else {
            double complex p2;
            if (is_real(p1)) {
                int i2 = idx_worst(&pr, 1);
                p2 = pr.v[i2];
                roots_delete(&pr, i2);
            } else {
                p2 = conj(p1);
            }
            double complex pp[2] = {p1, p2};
            if (zr.n > 0) {
                int iz = nearest(&zr, p1, PICK_ANY);
                const double complex z1 = zr.v[iz];
                roots_delete(&zr, iz);
                if (!is_real(z1)) {
                    double complex zz[2] = {z1, conj(z1)};
                    single_section(row, zz, 2, pp, 2);
                } else if (zr.n > 0) {
                    int iz2 = nearest(&zr, p1, PICK_REAL);
                    if (iz2 < 0)
                        return lily_error(ctx, LILY_ERR_INTERNAL, "zpk2sos: no real zero left");
                    double complex zz[2] = {z1, zr.v[iz2]};
                    roots_delete(&zr, iz2);
                    single_section(row, zz, 2, pp, 2);
                } else {
                    single_section(row, &z1, 1, pp, 2);
                }
            } else {
                single_section(row, NULL, 0, pp, 2);
            }
        }
    }
    if (pr.n || zr.n)
        return lily_error(ctx, LILY_ERR_INTERNAL, "zpk2sos: %d poles and %d zeros left over",
                          pr.n, zr.n);
    for (int i = 0; i < 3; i++) sos->s[0][i] *= zpk->k;
    return LILY_OK;
}
