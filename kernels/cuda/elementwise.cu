/* kernels/cuda/elementwise.cu - binary, axpby, fill, cast, reduce and the bias helpers (see
 * elementwise.h). Must match kernels/cpu/elementwise.c element for element; reductions
 * accumulate in double like the CPU's, in a fixed order. */
#include <math.h>

#include "cuda/elementwise.h"
#include "cuda/handle-impl.cuh"

__global__ static void binary_same(int op, const float *a, const float *b, float *y, int64_t n)
{
    LILY_CUDA_LOOP(i, n)
    {
        float u = a[i], v = b[i];
        y[i] = op == LILY_CUDA_BIN_ADD ? u + v : (op == LILY_CUDA_BIN_SUB ? u - v : u * v);
    }
}

__global__ static void binary_bcast(int op, const float *a, const float *b, float *y, int64_t nb,
                                    int64_t inner)
{
    LILY_CUDA_LOOP(i, nb * inner)
    {
        float u = a[i], v = b[i / inner];
        y[i] = op == LILY_CUDA_BIN_ADD ? u + v : (op == LILY_CUDA_BIN_SUB ? u - v : u * v);
    }
}

int lily_cuda_binary(LilyCudaHandle *h, int op, const float *a, const float *b, float *y,
                     int64_t nb, int64_t inner)
{
    int64_t n = nb * inner;
    if (n == 0) return LILY_CUDA_OK;
    if (inner == 1)
        binary_same<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(op, a, b, y, n);
    else
        binary_bcast<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(op, a, b, y, nb, inner);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

__global__ static void axpby_kernel(float alpha, const float *x, float beta, float *y, int64_t n)
{
    if (beta == 0.0f) {
        LILY_CUDA_LOOP(i, n) y[i] = alpha * x[i];
    } else {
        LILY_CUDA_LOOP(i, n) y[i] = alpha * x[i] + beta * y[i];
    }
}

int lily_cuda_axpby(LilyCudaHandle *h, float alpha, const float *x, float beta, float *y,
                    int64_t n)
{
    if (n == 0) return LILY_CUDA_OK;
    axpby_kernel<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(alpha, x, beta, y, n);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

__global__ static void fill_kernel(float *y, float v, int64_t n)
{
    LILY_CUDA_LOOP(i, n) y[i] = v;
}

int lily_cuda_fill(LilyCudaHandle *h, float *y, float value, int64_t n)
{
    if (n == 0) return LILY_CUDA_OK;
    fill_kernel<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(y, value, n);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

__global__ static void cast_kernel(const void *x, int xdt, void *y, int ydt, int64_t n)
{
    LILY_CUDA_LOOP(i, n) lily_store_kdt(y, ydt, i, lily_load_kdt(x, xdt, i));
}

int lily_cuda_cast(LilyCudaHandle *h, const void *x, int xdt, void *y, int ydt, int64_t n)
{
    if (n == 0) return LILY_CUDA_OK;
    if (xdt == ydt) return lily_cuda_copy(h, y, x, (size_t)n * lily_kdt_size(xdt));
    if (x == y)
        return lily_cuda_fail(h, LILY_CUDA_ERR_UNSUPPORTED,
                              "cast between different types cannot run in place");
    cast_kernel<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(x, xdt, y, ydt, n);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

/* ---- reduce: per-block partials, then one block combines them in block order ---- */

typedef struct RedPart {
    double sum, sum_sq, max_abs, nan;
} RedPart;

#define RED_BLOCKS 512

__global__ static void reduce_partial(const float *x, int64_t n, RedPart *part)
{
    __shared__ double sh[32];
    double s = 0.0, s2 = 0.0, m = 0.0, nan = 0.0;
    LILY_CUDA_LOOP(i, n)
    {
        float v = x[i];
        s += (double)v;
        s2 += (double)v * (double)v;
        double a = fabs((double)v);
        m = a > m ? a : m;
        nan += v != v ? 1.0 : 0.0;
    }
    s = lily_block_sum(s, sh);
    s2 = lily_block_sum(s2, sh);
    m = lily_block_max(m, sh, 0.0);
    nan = lily_block_sum(nan, sh);
    if (threadIdx.x == 0) {
        part[blockIdx.x].sum = s;
        part[blockIdx.x].sum_sq = s2;
        part[blockIdx.x].max_abs = m;
        part[blockIdx.x].nan = nan;
    }
}

__global__ static void reduce_final(const RedPart *part, int nparts, RedPart *out)
{
    __shared__ double sh[32];
    double s = 0.0, s2 = 0.0, m = 0.0, nan = 0.0;
    for (int i = threadIdx.x; i < nparts; i += blockDim.x) {
        s += part[i].sum;
        s2 += part[i].sum_sq;
        m = part[i].max_abs > m ? part[i].max_abs : m;
        nan += part[i].nan;
    }
    s = lily_block_sum(s, sh);
    s2 = lily_block_sum(s2, sh);
    m = lily_block_max(m, sh, 0.0);
    nan = lily_block_sum(nan, sh);
    if (threadIdx.x == 0) {
        out->sum = s;
        out->sum_sq = s2;
        out->max_abs = nan > 0.0 ? (double)NAN : m;
        out->nan = nan;
    }
}

int lily_cuda_reduce(LilyCudaHandle *h, const float *x, int64_t n, double *sum, double *sum_sq,
                     double *max_abs)
{
    RedPart res = {0.0, 0.0, 0.0, 0.0};
    if (n > 0) {
        int nb = (int)(lily_cuda_grid(n) < RED_BLOCKS ? lily_cuda_grid(n) : RED_BLOCKS);
        void *buf = NULL;
        LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_RED, (size_t)(nb + 1) * sizeof(RedPart), &buf));
        RedPart *part = (RedPart *)buf;
        reduce_partial<<<nb, LILY_CUDA_THREADS, 0, h->stream>>>(x, n, part);
        LILY_CUDA_LAUNCHED(h);
        reduce_final<<<1, LILY_CUDA_THREADS, 0, h->stream>>>(part, nb, part + nb);
        LILY_CUDA_LAUNCHED(h);
        LILY_CUDA_TRY(lily_cuda_download(h, &res, part + nb, sizeof res));
    }
    if (sum) *sum = res.sum;
    if (sum_sq) *sum_sq = res.sum_sq;
    if (max_abs) *max_abs = res.max_abs;
    return LILY_CUDA_OK;
}

/* ---- bias helpers ---- */

__global__ static void bias_cast_kernel(const void *src, int sdt, const float *b, float *y,
                                        int64_t C, int64_t inner, int64_t n)
{
    LILY_CUDA_LOOP(i, n)
    {
        float v = lily_load_kdt(src, sdt, i);
        y[i] = b ? v + b[(i / inner) % C] : v;
    }
}

int lily_cuda_bias_cast(LilyCudaHandle *h, const void *src, int sdt, const float *b, float *y,
                        int64_t outer, int64_t C, int64_t inner)
{
    int64_t n = outer * C * inner;
    if (n == 0 || (sdt == LILY_KDT_F32 && src == y && !b)) return LILY_CUDA_OK;
    bias_cast_kernel<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(src, sdt, b, y, C,
                                                                             inner, n);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

/* One block per channel when each channel has long contiguous runs (convolutions). */
__global__ static void channel_sum_rows(const float *x, int64_t outer, int64_t C, int64_t inner,
                                        float *db)
{
    __shared__ double sh[32];
    int64_t c = blockIdx.x;
    double s = 0.0;
    for (int64_t o = 0; o < outer; o++) {
        const float *p = x + (o * C + c) * inner;
        for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) s += (double)p[i];
    }
    s = lily_block_sum(s, sh);
    if (threadIdx.x == 0) db[c] += (float)s;
}

/* Column sums of an [outer, C] matrix (Linear's bias gradient): 32 columns per block, 32 row
 * lanes, the lanes combined in a fixed order. */
__global__ static void channel_sum_cols(const float *x, int64_t outer, int64_t C, float *db)
{
    __shared__ double sh[32][33];
    int64_t c = (int64_t)blockIdx.x * 32 + threadIdx.x;
    double s = 0.0;
    if (c < C)
        for (int64_t o = threadIdx.y; o < outer; o += 32) s += (double)x[o * C + c];
    sh[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        double t = 0.0;
        for (int k = 0; k < 32; k++) t += sh[k][threadIdx.x];
        db[c] += (float)t;
    }
}

int lily_cuda_channel_sum_add(LilyCudaHandle *h, const float *x, int64_t outer, int64_t C,
                              int64_t inner, float *db)
{
    if (C == 0) return LILY_CUDA_OK;
    if (outer * inner == 0) return LILY_CUDA_OK;
    if (inner == 1) {
        dim3 blk(32, 32);
        unsigned grid = (unsigned)((C + 31) / 32);
        channel_sum_cols<<<grid, blk, 0, h->stream>>>(x, outer, C, db);
    } else {
        if (C > 0x7fffffff)
            return lily_cuda_fail(h, LILY_CUDA_ERR_UNSUPPORTED, "channel sum: %lld channels",
                                  (long long)C);
        channel_sum_rows<<<(unsigned)C, LILY_CUDA_THREADS, 0, h->stream>>>(x, outer, C, inner, db);
    }
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}
