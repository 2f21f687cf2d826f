/* kernels/cuda/layout.cu - upsampling, concat/split, transposes, row copies and the padding
 * window (see layout.h). Pure data movement: the results equal the CPU's bit for bit (the
 * upsampling gradient adds its four terms in the CPU's order). */
#include "cuda/handle-impl.cuh"
#include "cuda/layout.h"

__global__ static void up2_fwd(int64_t NC, int64_t H, int64_t W, const float *x, float *y)
{
    int64_t W2 = 2 * W, H2 = 2 * H;
    LILY_CUDA_LOOP(i, NC * H2 * W2)
    {
        int64_t w2 = i % W2, h2 = (i / W2) % H2, nc = i / (H2 * W2);
        y[i] = x[(nc * H + (h2 >> 1)) * W + (w2 >> 1)];
    }
}

__global__ static void up2_bwd(int64_t NC, int64_t H, int64_t W, const float *dy, float *dx)
{
    LILY_CUDA_LOOP(i, NC * H * W)
    {
        int64_t w = i % W, r = i / W; /* r = nc * H + h */
        const float *d0 = dy + r * 4 * W, *d1 = d0 + 2 * W;
        dx[i] = (d0[2 * w] + d0[2 * w + 1]) + (d1[2 * w] + d1[2 * w + 1]);
    }
}

int lily_cuda_upsample2x_forward(LilyCudaHandle *h, int64_t NC, int64_t H, int64_t W,
                                 const float *x, float *y)
{
    int64_t n = NC * H * W * 4;
    if (n == 0) return LILY_CUDA_OK;
    up2_fwd<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(NC, H, W, x, y);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

int lily_cuda_upsample2x_backward(LilyCudaHandle *h, int64_t NC, int64_t H, int64_t W,
                                  const float *dy, float *dx)
{
    int64_t n = NC * H * W;
    if (n == 0) return LILY_CUDA_OK;
    up2_bwd<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(NC, H, W, dy, dx);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

/* A blocks of L contiguous floats: dst[a * ds + j] = src[a * ss + j]. */
__global__ static void block_copy(int64_t A, int64_t L, const float *src, int64_t ss, float *dst,
                                  int64_t ds)
{
    LILY_CUDA_LOOP(i, A * L)
    {
        int64_t a = i / L, j = i % L;
        dst[a * ds + j] = src[a * ss + j];
    }
}

static int copy_blocks(LilyCudaHandle *h, int64_t A, int64_t L, const float *src, int64_t ss,
                       float *dst, int64_t ds)
{
    if (A * L == 0) return LILY_CUDA_OK;
    block_copy<<<lily_cuda_grid(A * L), LILY_CUDA_THREADS, 0, h->stream>>>(A, L, src, ss, dst, ds);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

int lily_cuda_concat(LilyCudaHandle *h, int64_t N, int64_t Ca, int64_t Cb, int64_t inner,
                     const float *a, const float *b, float *y)
{
    int64_t C = Ca + Cb;
    LILY_CUDA_TRY(copy_blocks(h, N, Ca * inner, a, Ca * inner, y, C * inner));
    return copy_blocks(h, N, Cb * inner, b, Cb * inner, y + Ca * inner, C * inner);
}

int lily_cuda_split(LilyCudaHandle *h, int64_t N, int64_t Ca, int64_t Cb, int64_t inner,
                    const float *y, float *a, float *b)
{
    int64_t C = Ca + Cb;
    if (a) LILY_CUDA_TRY(copy_blocks(h, N, Ca * inner, y, C * inner, a, Ca * inner));
    if (b) LILY_CUDA_TRY(copy_blocks(h, N, Cb * inner, y + Ca * inner, C * inner, b, Cb * inner));
    return LILY_CUDA_OK;
}

/* Q == 1: 32x32 tiles through shared memory so reads and writes are both coalesced; the
 * extra column avoids bank conflicts. Tiles are taken in a grid-stride loop, so P, A and B
 * are not limited by the grid's y/z extents. */
#define TILE 32
__global__ static void transpose_tiled(int64_t P, int64_t A, int64_t B, const float *x, float *y)
{
    __shared__ float tile[TILE][TILE + 1];
    int64_t ta = (A + TILE - 1) / TILE, tb = (B + TILE - 1) / TILE;
    for (int64_t t = blockIdx.x; t < P * ta * tb; t += gridDim.x) {
        int64_t p = t / (ta * tb), r = t % (ta * tb);
        int64_t a0 = (r / tb) * TILE, b0 = (r % tb) * TILE;
        const float *xp = x + p * A * B;
        float *yp = y + p * A * B;
        for (int k = threadIdx.y; k < TILE; k += blockDim.y) {
            int64_t a = a0 + k, b = b0 + threadIdx.x;
            if (a < A && b < B) tile[k][threadIdx.x] = xp[a * B + b];
        }
        __syncthreads();
        for (int k = threadIdx.y; k < TILE; k += blockDim.y) {
            int64_t b = b0 + k, a = a0 + threadIdx.x;
            if (a < A && b < B) yp[b * A + a] = tile[threadIdx.x][k];
        }
        __syncthreads();
    }
}

__global__ static void transpose_rows(int64_t P, int64_t A, int64_t B, int64_t Q, const float *x,
                                      float *y)
{
    LILY_CUDA_LOOP(i, P * A * B * Q)
    {
        int64_t q = i % Q, rest = i / Q;
        int64_t a = rest % A;
        rest /= A;
        int64_t b = rest % B, p = rest / B;
        y[i] = x[((p * A + a) * B + b) * Q + q];
    }
}

int lily_cuda_transpose(LilyCudaHandle *h, int64_t P, int64_t A, int64_t B, int64_t Q,
                        const float *x, float *y)
{
    int64_t n = P * A * B * Q;
    if (n == 0) return LILY_CUDA_OK;
    if (Q == 1) {
        int64_t tiles = P * ((A + TILE - 1) / TILE) * ((B + TILE - 1) / TILE);
        unsigned grid = (unsigned)(tiles < 65536 ? tiles : 65536);
        transpose_tiled<<<grid, dim3(TILE, 8), 0, h->stream>>>(P, A, B, x, y);
    } else {
        transpose_rows<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(P, A, B, Q, x, y);
    }
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

int lily_cuda_copy_rows(LilyCudaHandle *h, const float *src, int64_t src_rows, int64_t src_row0,
                        float *dst, int64_t dst_rows, int64_t dst_row0, int64_t A, int64_t rows,
                        int64_t B)
{
    int64_t L = rows * B;
    if (A * L == 0) return LILY_CUDA_OK;
    const float *s = src + src_row0 * B;
    float *d = dst + dst_row0 * B;
    int64_t ss = src_rows * B, ds = dst_rows * B;
    /* the touched address ranges: overlapping ones go through a staging buffer, since the
     * threads of one kernel run in no particular order */
    const char *s0 = (const char *)s, *s1 = (const char *)(s + (A - 1) * ss + L);
    const char *d0 = (const char *)d, *d1 = (const char *)(d + (A - 1) * ds + L);
    if (s0 < d1 && d0 < s1) {
        void *tmp = NULL;
        LILY_CUDA_TRY(lily_cuda_scratch(h, LILY_CUDA_SCRATCH_DST, (size_t)(A * L) * sizeof(float), &tmp));
        LILY_CUDA_TRY(copy_blocks(h, A, L, s, ss, (float *)tmp, L));
        return copy_blocks(h, A, L, (const float *)tmp, L, d, ds);
    }
    return copy_blocks(h, A, L, s, ss, d, ds);
}

__global__ static void window_kernel(int64_t NC, int64_t Hi, int64_t Wi, const float *x,
                                     int64_t Ho, int64_t Wo, int64_t top, int64_t left, void *y,
                                     int ydt)
{
    LILY_CUDA_LOOP(i, NC * Ho * Wo)
    {
        int64_t j = i % Wo, r = (i / Wo) % Ho, c = i / (Ho * Wo);
        int64_t si = r - top, sj = j - left;
        float v = (si >= 0 && si < Hi && sj >= 0 && sj < Wi) ? x[(c * Hi + si) * Wi + sj] : 0.0f;
        lily_store_kdt(y, ydt, i, v);
    }
}

int lily_cuda_window(LilyCudaHandle *h, int64_t NC, int64_t Hi, int64_t Wi, const float *x,
                     int64_t Ho, int64_t Wo, int64_t top, int64_t left, void *y, int ydt)
{
    int64_t n = NC * Ho * Wo;
    if (n == 0) return LILY_CUDA_OK;
    window_kernel<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>(NC, Hi, Wi, x, Ho, Wo, top,
                                                                          left, y, ydt);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}
