/* kernels/cuda/norm.cu - GroupNorm (+ SiLU) and LayerNorm, forward and backward (see norm.h).
 *
 * GroupNorm groups are long (C/G channels times all positions: 10^4 to 10^6 elements) and few
 * (N * 32), so each group's statistics are split over several blocks: partial sums per chunk,
 * then partial squared deviations from the mean those sums give, then one thread per group
 * combines the partials in chunk order. That keeps the two-pass double statistics of the CPU
 * and a fixed summation order (deterministic), and fills the GPU even with N = 1. The
 * normalisation itself is one elementwise pass over kernels/common/norm.h.
 *
 * The backward pass recomputes the statistics, reduces per (sample, channel) sums of the
 * SiLU-corrected gradient g and of g * xhat (one block per channel row), combines them per
 * group into the two means of lily_norm_dx, and reduces dgamma/dbeta over the batch, all in
 * the order kernels/cpu/norm.c uses, in double.
 *
 * LayerNorm rows are short (the UNet's token width), one block per row. */
#include <math.h>

#include "common/norm.h"
#include "cuda/handle-impl.cuh"
#include "cuda/norm.h"

/* Elements per block of the group statistics. */
#define GN_CHUNK 16384
#define GN_MAX_CHUNKS 1024

typedef struct GnStat {
    double mean, rstd;
} GnStat;

/* Chunk k of group g: [k * cl, min((k + 1) * cl, L)). Blocks are numbered g * nch + k. */
__global__ static void gn_partial_sum(const float *x, int64_t L, int nch, int64_t cl,
                                      double *psum)
{
    __shared__ double sh[32];
    int64_t g = blockIdx.x / nch, k = blockIdx.x % nch;
    const float *p = x + g * L;
    int64_t i0 = k * cl, i1 = i0 + cl < L ? i0 + cl : L;
    double s = 0.0;
    for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) s += (double)p[i];
    s = lily_block_sum(s, sh);
    if (threadIdx.x == 0) psum[blockIdx.x] = s;
}

__global__ static void gn_partial_sq(const float *x, int64_t L, int nch, int64_t cl,
                                     const double *psum, double *psq)
{
    __shared__ double sh[32];
    int64_t g = blockIdx.x / nch, k = blockIdx.x % nch;
    double tot = 0.0;
    for (int j = 0; j < nch; j++) tot += psum[g * nch + j]; /* same order in every thread */
    double m = tot / (double)L;
    const float *p = x + g * L;
    int64_t i0 = k * cl, i1 = i0 + cl < L ? i0 + cl : L;
    double v = 0.0;
    for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
        double d = (double)p[i] - m;
        v += d * d;
    }
    v = lily_block_sum(v, sh);
    if (threadIdx.x == 0) psq[blockIdx.x] = v;
}

__global__ static void gn_finalize(int64_t NG, int64_t L, int nch, const double *psum,
                                   const double *psq, double eps, GnStat *st)
{
    LILY_CUDA_LOOP(g, NG)
    {
        double s = 0.0, v = 0.0;
        for (int j = 0; j < nch; j++) s += psum[g * nch + j];
        for (int j = 0; j < nch; j++) v += psq[g * nch + j];
        st[g].mean = s / (double)L;
        st[g].rstd = 1.0 / sqrt(v / (double)L + eps);
    }
}

__global__ static void gn_apply(int64_t n, int64_t C, int64_t S, int64_t G, const float *x,
                                const float *gamma, const float *beta, const GnStat *st, int silu,
                                float *y)
{
    int64_t cg = C / G;
    LILY_CUDA_LOOP(i, n)
    {
        int64_t ch = (i / S) % C, b = i / (C * S);
        GnStat s = st[b * G + ch / cg];
        float a = (float)((gamma ? (double)gamma[ch] : 1.0) * s.rstd);
        float bb = beta ? beta[ch] : 0.0f;
        y[i] = lily_norm_apply(x[i], (float)s.mean, a, bb, silu);
    }
}

/* Statistics of every group into *st (a scratch slot of its own). */
static int gn_stats(LilyCudaHandle *h, int64_t NG, int64_t L, const float *x, float eps,
                    GnStat **st)
{
    int64_t nch64 = (L + GN_CHUNK - 1) / GN_CHUNK;
    int nch = (int)(nch64 < 1 ? 1 : (nch64 > GN_MAX_CHUNKS ? GN_MAX_CHUNKS : nch64));
    int64_t cl = (L + nch - 1) / nch;
    int64_t blocks = NG * nch;
    if (blocks > 0x7fffffff)
        return lily_cuda_fail(h, LILY_CUDA_ERR_UNSUPPORTED, "group norm: %lld groups",
                              (long long)NG);
    void *red = NULL, *aux = NULL;
    LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_RED, (size_t)(2 * blocks) * sizeof(double), &red));
    LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_AUX, (size_t)NG * sizeof(GnStat), &aux));
    double *psum = (double *)red, *psq = psum + blocks;
    gn_partial_sum<<<(unsigned)blocks, LILY_CUDA_THREADS, 0, h->stream>>>(x, L, nch, cl, psum);
    LILY_CUDA_LAUNCHED(h);
    gn_partial_sq<<<(unsigned)blocks, LILY_CUDA_THREADS, 0, h->stream>>>(x, L, nch, cl, psum, psq);
    LILY_CUDA_LAUNCHED(h);
    gn_finalize<<<lily_cuda_grid(NG), LILY_CUDA_THREADS, 0, h->stream>>>(NG, L, nch, psum, psq,
                                                                         (double)eps, (GnStat *)aux);
    LILY_CUDA_LAUNCHED(h);
    *st = (GnStat *)aux;
    return LILY_CUDA_OK;
}

int lily_cuda_group_norm_forward(LilyCudaHandle *h, int64_t N, int64_t C, int64_t S, int64_t G,
                                 const float *x, const float *gamma, const float *beta, float eps,
                                 int silu, float *y)
{
    int64_t n = N * C * S;
    if (n == 0) return LILY_CUDA_OK;
    GnStat *st = NULL;
    LILY_CUDA_TRY(gn_stats(h, N * G, (C / G) * S, x, eps, &st));
    gn_apply<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(n, C, S, G, x, gamma, beta, st,
                                                                      silu, y);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

/* Per (sample, channel) row: sum of g * xhat and of g, g = dL/dz. */
__global__ static void gn_row_sums(int64_t C, int64_t S, int64_t G, const float *x,
                                   const float *gamma, const float *beta, const GnStat *st,
                                   int silu, const float *dy, double *rows)
{
    __shared__ double sh[32];
    int64_t row = blockIdx.x; /* b * C + ch */
    int64_t ch = row % C, b = row / C;
    GnStat s = st[b * G + ch / (C / G)];
    float mf = (float)s.mean, rf = (float)s.rstd;
    float gm = gamma ? gamma[ch] : 1.0f;
    float a = (float)((double)gm * s.rstd);
    float bb = beta ? beta[ch] : 0.0f;
    const float *xr = x + row * S, *dyr = dy + row * S;
    double s_gx = 0.0, s_g = 0.0;
    for (int64_t i = threadIdx.x; i < S; i += blockDim.x) {
        float gz = lily_norm_dz(xr[i], mf, a, bb, silu, dyr[i]);
        float xh = (xr[i] - mf) * rf;
        s_gx += (double)gz * xh;
        s_g += gz;
    }
    s_gx = lily_block_sum(s_gx, sh);
    s_g = lily_block_sum(s_g, sh);
    if (threadIdx.x == 0) {
        rows[row * 2] = s_gx;
        rows[row * 2 + 1] = s_g;
    }
}

/* Per group: the means m1 = mean(g gamma), m2 = mean(g gamma xhat) of lily_norm_dx. */
__global__ static void gn_group_means(int64_t NG, int64_t C, int64_t G, int64_t S,
                                      const float *gamma, const double *rows, float2 *means)
{
    int64_t cg = C / G;
    LILY_CUDA_LOOP(t, NG)
    {
        int64_t b = t / G, g = t % G;
        double sg = 0.0, sgx = 0.0;
        for (int64_t c = 0; c < cg; c++) {
            int64_t ch = g * cg + c;
            double gm = gamma ? (double)gamma[ch] : 1.0;
            sg += rows[(b * C + ch) * 2 + 1] * gm;
            sgx += rows[(b * C + ch) * 2] * gm;
        }
        double len = (double)(cg * S);
        means[t] = make_float2((float)(sg / len), (float)(sgx / len));
    }
}

__global__ static void gn_dx(int64_t n, int64_t C, int64_t S, int64_t G, const float *x,
                             const float *gamma, const float *beta, const GnStat *st,
                             const float2 *means, int silu, const float *dy, float *dx)
{
    int64_t cg = C / G;
    LILY_CUDA_LOOP(i, n)
    {
        int64_t ch = (i / S) % C, b = i / (C * S);
        int64_t grp = b * G + ch / cg;
        GnStat s = st[grp];
        float mf = (float)s.mean, rf = (float)s.rstd;
        float gm = gamma ? gamma[ch] : 1.0f;
        float a = (float)((double)gm * s.rstd);
        float bb = beta ? beta[ch] : 0.0f;
        float xv = x[i];
        float gz = lily_norm_dz(xv, mf, a, bb, silu, dy[i]);
        float2 m = means[grp];
        dx[i] = lily_norm_dx(gz * gm, (xv - mf) * rf, rf, m.x, m.y);
    }
}

__global__ static void gn_param_grads(int64_t N, int64_t C, const double *rows, float *dgamma,
                                      float *dbeta)
{
    LILY_CUDA_LOOP(ch, C)
    {
        double a = 0.0, b = 0.0;
        for (int64_t n = 0; n < N; n++) {
            a += rows[(n * C + ch) * 2];
            b += rows[(n * C + ch) * 2 + 1];
        }
        if (dgamma) dgamma[ch] += (float)a;
        if (dbeta) dbeta[ch] += (float)b;
    }
}

int lily_cuda_group_norm_backward(LilyCudaHandle *h, int64_t N, int64_t C, int64_t S, int64_t G,
                                  const float *x, const float *gamma, const float *beta,
                                  float eps, int silu, const float *dy, float *dx, float *dgamma,
                                  float *dbeta)
{
    int64_t n = N * C * S;
    if (n == 0) return LILY_CUDA_OK;
    if (N * C > 0x7fffffff)
        return lily_cuda_fail(h, LILY_CUDA_ERR_UNSUPPORTED, "group norm backward: %lld rows",
                              (long long)(N * C));
    GnStat *st = NULL;
    LILY_CUDA_TRY(gn_stats(h, N * G, (C / G) * S, x, eps, &st));
    void *rbuf = NULL, *mbuf = NULL;
    LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_AUX2, (size_t)(N * C * 2) * sizeof(double), &rbuf));
    LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_DST, (size_t)(N * G) * sizeof(float2), &mbuf));
    double *rows = (double *)rbuf;
    gn_row_sums<<<(unsigned)(N * C), LILY_CUDA_THREADS, 0, h->stream>>>(C, S, G, x, gamma, beta, st,
                                                                       silu, dy, rows);
    LILY_CUDA_LAUNCHED(h);
    if (dx) {
        gn_group_means<<<lily_cuda_grid(N * G), LILY_CUDA_THREADS, 0, h->stream>>>(
            N * G, C, G, S, gamma, rows, (float2 *)mbuf);
        LILY_CUDA_LAUNCHED(h);
        gn_dx<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(
            n, C, S, G, x, gamma, beta, st, (const float2 *)mbuf, silu, dy, dx);
        LILY_CUDA_LAUNCHED(h);
    }
    if (dgamma || dbeta) {
        gn_param_grads<<<lily_cuda_grid(C), LILY_CUDA_THREADS, 0, h->stream>>>(N, C, rows, dgamma,
                                                                               dbeta);
        LILY_CUDA_LAUNCHED(h);
    }
    return LILY_CUDA_OK;
}

/* ---- LayerNorm: one block per row (grid-stride over rows) ---- */

__device__ static void ln_row_stats(const float *xr, int64_t D, float eps, double *sh, float *mf,
                                    float *rf)
{
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) s += (double)xr[j];
    s = lily_block_sum(s, sh);
    double m = s / (double)D;
    double v = 0.0;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
        double d = (double)xr[j] - m;
        v += d * d;
    }
    v = lily_block_sum(v, sh);
    *mf = (float)m;
    *rf = (float)(1.0 / sqrt(v / (double)D + (double)eps));
}

__global__ static void ln_fwd(int64_t M, int64_t D, const float *x, const float *gamma,
                              const float *beta, float eps, float *y)
{
    __shared__ double sh[32];
    for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
        const float *xr = x + r * D;
        float *yr = y + r * D;
        float mf, rf;
        ln_row_stats(xr, D, eps, sh, &mf, &rf);
        for (int64_t j = threadIdx.x; j < D; j += blockDim.x)
            yr[j] = lily_norm_apply(xr[j], mf, rf * (gamma ? gamma[j] : 1.0f),
                                    beta ? beta[j] : 0.0f, 0);
    }
}

__global__ static void ln_bwd(int64_t M, int64_t D, const float *x, const float *gamma,
                              float eps, const float *dy, float *dx, float2 *row_stats)
{
    __shared__ double sh[32];
    for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
        const float *xr = x + r * D, *dyr = dy + r * D;
        float mf, rf;
        ln_row_stats(xr, D, eps, sh, &mf, &rf);
        if (row_stats && threadIdx.x == 0) row_stats[r] = make_float2(mf, rf);
        if (!dx) continue;
        double s1 = 0.0, s2 = 0.0;
        for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
            float xh = (xr[j] - mf) * rf;
            float gg = dyr[j] * (gamma ? gamma[j] : 1.0f);
            s1 += gg;
            s2 += (double)gg * xh;
        }
        s1 = lily_block_sum(s1, sh);
        s2 = lily_block_sum(s2, sh);
        float m1 = (float)(s1 / (double)D), m2 = (float)(s2 / (double)D);
        float *dxr = dx + r * D;
        for (int64_t j = threadIdx.x; j < D; j += blockDim.x)
            dxr[j] = lily_norm_dx(dyr[j] * (gamma ? gamma[j] : 1.0f), (xr[j] - mf) * rf, rf, m1, m2);
    }
}

/* dgamma[j] += sum_r dy xhat, dbeta[j] += sum_r dy: 32 columns per block, 32 row lanes. */
__global__ static void ln_param_grads(int64_t M, int64_t D, const float *x, const float *dy,
                                      const float2 *row_stats, float *dgamma, float *dbeta)
{
    __shared__ double sa[32][33], sb[32][33];
    int64_t j = (int64_t)blockIdx.x * 32 + threadIdx.x;
    double a = 0.0, b = 0.0;
    if (j < D)
        for (int64_t r = threadIdx.y; r < M; r += 32) {
            float2 s = row_stats[r];
            float xh = (x[r * D + j] - s.x) * s.y;
            float d = dy[r * D + j];
            a += (double)d * xh;
            b += d;
        }
    sa[threadIdx.y][threadIdx.x] = a;
    sb[threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.y == 0 && j < D) {
        double ta = 0.0, tb = 0.0;
        for (int k = 0; k < 32; k++) {
            ta += sa[k][threadIdx.x];
            tb += sb[k][threadIdx.x];
        }
        if (dgamma) dgamma[j] += (float)ta;
        if (dbeta) dbeta[j] += (float)tb;
    }
}

static unsigned row_grid(int64_t M)
{
    return (unsigned)(M < 65536 ? (M > 0 ? M : 1) : 65536);
}

int lily_cuda_layer_norm_forward(LilyCudaHandle *h, int64_t M, int64_t D, const float *x,
                                 const float *gamma, const float *beta, float eps, float *y)
{
    if (M * D == 0) return LILY_CUDA_OK;
    ln_fwd<<<row_grid(M), LILY_CUDA_THREADS, 0, h->stream>>>(M, D, x, gamma, beta, eps, y);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

int lily_cuda_layer_norm_backward(LilyCudaHandle *h, int64_t M, int64_t D, const float *x,
                                  const float *gamma, float eps, const float *dy, float *dx,
                                  float *dgamma, float *dbeta)
{
    if (M * D == 0) return LILY_CUDA_OK;
    float2 *rs = NULL;
    if (dgamma || dbeta) {
        void *buf = NULL;
        LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_AUX, (size_t)M * sizeof(float2), &buf));
        rs = (float2 *)buf;
    }
    /* parameter gradients first: they read dy, which dx may overwrite */
    if (rs) {
        ln_bwd<<<row_grid(M), LILY_CUDA_THREADS, 0, h->stream>>>(M, D, x, gamma, eps, dy, NULL, rs);
        LILY_CUDA_LAUNCHED(h);
        unsigned grid = (unsigned)((D + 31) / 32);
        ln_param_grads<<<grid, dim3(32, 32), 0, h->stream>>>(M, D, x, dy, rs, dgamma, dbeta);
        LILY_CUDA_LAUNCHED(h);
    }
    if (dx) {
        ln_bwd<<<row_grid(M), LILY_CUDA_THREADS, 0, h->stream>>>(M, D, x, gamma, eps, dy, dx, NULL);
        LILY_CUDA_LAUNCHED(h);
    }
    return LILY_CUDA_OK;
}
