/* kernels/cuda/activation.cu - activation and GEGLU kernels over kernels/common/activation.h
 * (see activation.h). The op is uniform across a launch, so the switch inside
 * lily_act_forward / lily_act_grad costs no divergence. */
#include "common/activation.h"
#include "cuda/activation.h"
#include "cuda/handle-impl.cuh"

__global__ static void unary_fwd(LilyActOp op, float alpha, const float *x, float *y, int64_t n)
{
    LILY_CUDA_LOOP(i, n) y[i] = lily_act_forward(op, alpha, x[i]);
}

__global__ static void unary_bwd(LilyActOp op, float alpha, const float *x, const float *dy,
                                 float *dx, int64_t n)
{
    LILY_CUDA_LOOP(i, n) dx[i] = dy[i] * lily_act_grad(op, alpha, x[i]);
}

static int check_op(LilyCudaHandle *h, int op)
{
    if (op < 0 || op >= LILY_ACT_COUNT)
        return lily_cuda_fail(h, LILY_CUDA_ERR_UNSUPPORTED, "unknown activation %d", op);
    return LILY_CUDA_OK;
}

int lily_cuda_unary_forward(LilyCudaHandle *h, int op, float alpha, const float *x, float *y,
                            int64_t n)
{
    LILY_CUDA_TRY(check_op(h, op));
    if (n == 0) return LILY_CUDA_OK;
    unary_fwd<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>((LilyActOp)op, alpha, x, y, n);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

int lily_cuda_unary_backward(LilyCudaHandle *h, int op, float alpha, const float *x,
                             const float *dy, float *dx, int64_t n)
{
    LILY_CUDA_TRY(check_op(h, op));
    if (n == 0) return LILY_CUDA_OK;
    unary_bwd<<<lily_cuda_grid(n), LILY_CUDA_THREADS, 0, h->stream>>>((LilyActOp)op, alpha, x, dy,
                                                                      dx, n);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

__global__ static void geglu_fwd(int64_t M, int64_t D, const float *x, float *y)
{
    LILY_CUDA_LOOP(i, M * D)
    {
        int64_t r = i / D, j = i % D;
        const float *row = x + r * 2 * D;
        y[i] = lily_geglu(row[j], row[D + j]);
    }
}

__global__ static void geglu_bwd(int64_t M, int64_t D, const float *x, const float *dy, float *dx)
{
    LILY_CUDA_LOOP(i, M * D)
    {
        int64_t r = i / D, j = i % D;
        const float *row = x + r * 2 * D;
        float dv, dg;
        lily_geglu_grad(row[j], row[D + j], dy[i], &dv, &dg);
        dx[r * 2 * D + j] = dv;
        dx[r * 2 * D + D + j] = dg;
    }
}

int lily_cuda_geglu_forward(LilyCudaHandle *h, int64_t M, int64_t D, const float *x, float *y)
{
    if (M * D == 0) return LILY_CUDA_OK;
    geglu_fwd<<<lily_cuda_grid(M * D), LILY_CUDA_THREADS, 0, h->stream>>>(M, D, x, y);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}

int lily_cuda_geglu_backward(LilyCudaHandle *h, int64_t M, int64_t D, const float *x,
                             const float *dy, float *dx)
{
    if (M * D == 0) return LILY_CUDA_OK;
    geglu_bwd<<<lily_cuda_grid(M * D), LILY_CUDA_THREADS, 0, h->stream>>>(M, D, x, dy, dx);
    LILY_CUDA_LAUNCHED(h);
    return LILY_CUDA_OK;
}
