/* kernels/cpu/activation.c - activation loops over kernels/common/activation.h.
 *
 * Flat loops are cut into LILY_CPU_CHUNK pieces spread over the threads; each piece runs in a
 * LILY_CPU_CLONES function (AVX-512 where the CPU has it). The switch on the op sits outside
 * the element loops so each loop body is one inline function the compiler vectorises. */
#include "cpu/activation.h"
#include "cpu/simd.h"

#define PAR_MIN 32768

/* One loop per op; BODY computes y[i] from v = x[i]. */
#define ACT_LOOP(BODY)                                                                         \
    do {                                                                                       \
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++)                                    \
        {                                                                                      \
            float v = x[i];                                                                    \
            y[i] = (BODY);                                                                     \
        }                                                                                      \
    } while (0)

LILY_CPU_CLONES
static void act_piece(LilyActOp op, float alpha, const float *x, float *y, int64_t n)
{
    switch (op) {
    case LILY_ACT_SILU: ACT_LOOP(lily_siluf(v)); break;
    case LILY_ACT_GELU: ACT_LOOP(lily_geluf(v)); break;
    case LILY_ACT_LEAKY_RELU: ACT_LOOP(lily_leaky_reluf(v, alpha)); break;
    case LILY_ACT_TANH: ACT_LOOP(tanhf(v)); break;
    case LILY_ACT_EXP: ACT_LOOP(lily_expf(v)); break;
    case LILY_ACT_SCALE: ACT_LOOP(alpha * v); break;
    case LILY_ACT_ADD_SCALAR: ACT_LOOP(v + alpha); break;
    case LILY_ACT_SQUARE: ACT_LOOP(v * v); break;
    case LILY_ACT_ABS: ACT_LOOP(fabsf(v)); break;
    case LILY_ACT_MIN: ACT_LOOP(v < alpha ? v : alpha); break;
    case LILY_ACT_MAX: ACT_LOOP(v > alpha ? v : alpha); break;
    case LILY_ACT_SIGMOID: ACT_LOOP(lily_sigmoidf(v)); break;
    default: ACT_LOOP(v); break;
    }
}

#define GRAD_LOOP(BODY)                                                                        \
    do {                                                                                       \
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++)                                    \
        {                                                                                      \
            float v = x[i];                                                                    \
            dx[i] = dy[i] * (BODY);                                                            \
            (void)v;                                                                           \
        }                                                                                      \
    } while (0)

LILY_CPU_CLONES
static void grad_piece(LilyActOp op, float alpha, const float *x, const float *dy, float *dx, int64_t n)
{
    switch (op) {
    case LILY_ACT_SILU: GRAD_LOOP(lily_silu_gradf(v)); break;
    case LILY_ACT_GELU: GRAD_LOOP(lily_gelu_gradf(v)); break;
    case LILY_ACT_LEAKY_RELU: GRAD_LOOP(lily_leaky_relu_gradf(v, alpha)); break;
    case LILY_ACT_EXP: GRAD_LOOP(lily_expf(v)); break;
    case LILY_ACT_SCALE: GRAD_LOOP(alpha); break;
    case LILY_ACT_SQUARE: GRAD_LOOP(2.0f * v); break;
    default: GRAD_LOOP(lily_act_grad(op, alpha, v)); break;
    }
}

void lily_cpu_unary_forward(int n_threads, LilyActOp op, float alpha, const float *x, float *y,
                            int64_t n)
{
    int64_t pieces = (n + LILY_CPU_CHUNK - 1) / LILY_CPU_CHUNK;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n > PAR_MIN)
    for (int64_t p = 0; p < pieces; p++) {
        int64_t i0 = p * LILY_CPU_CHUNK, len = n - i0 < LILY_CPU_CHUNK ? n - i0 : LILY_CPU_CHUNK;
        act_piece(op, alpha, x + i0, y + i0, len);
    }
}

void lily_cpu_unary_backward(int n_threads, LilyActOp op, float alpha, const float *x,
                             const float *dy, float *dx, int64_t n)
{
    int64_t pieces = (n + LILY_CPU_CHUNK - 1) / LILY_CPU_CHUNK;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n > PAR_MIN)
    for (int64_t p = 0; p < pieces; p++) {
        int64_t i0 = p * LILY_CPU_CHUNK, len = n - i0 < LILY_CPU_CHUNK ? n - i0 : LILY_CPU_CHUNK;
        grad_piece(op, alpha, x + i0, dy + i0, dx + i0, len);
    }
}

LILY_CPU_CLONES
static void geglu_rows(int64_t rows, int64_t D, const float *x, float *y)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *a = x + r * 2 * D, *g = a + D;
        float *yr = y + r * D;
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yr[j] = lily_geglu(a[j], g[j]);
    }
}

LILY_CPU_CLONES
static void geglu_grad_rows(int64_t rows, int64_t D, const float *x, const float *dy, float *dx)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *a = x + r * 2 * D, *g = a + D, *dyr = dy + r * D;
        float *da = dx + r * 2 * D, *dg = da + D;
#pragma omp simd
        for (int64_t j = 0; j < D; j++) {
            float va, vg;
            lily_geglu_grad(a[j], g[j], dyr[j], &va, &vg);
            da[j] = va;
            dg[j] = vg;
        }
    }
}

/* Rows per task: about one chunk of output elements. */
static int64_t rows_per_task(int64_t D)
{
    int64_t r = LILY_CPU_CHUNK / (D > 0 ? D : 1);
    return r > 0 ? r : 1;
}

void lily_cpu_geglu_forward(int n_threads, int64_t M, int64_t D, const float *x, float *y)
{
    int64_t rt = rows_per_task(D), tasks = (M + rt - 1) / rt;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (M * D > PAR_MIN)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t r0 = t * rt, rows = M - r0 < rt ? M - r0 : rt;
        geglu_rows(rows, D, x + r0 * 2 * D, y + r0 * D);
    }
}

void lily_cpu_geglu_backward(int n_threads, int64_t M, int64_t D, const float *x, const float *dy,
                             float *dx)
{
    int64_t rt = rows_per_task(D), tasks = (M + rt - 1) / rt;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (M * D > PAR_MIN)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t r0 = t * rt, rows = M - r0 < rt ? M - r0 : rt;
        geglu_grad_rows(rows, D, x + r0 * 2 * D, dy + r0 * D, dx + r0 * 2 * D);
    }
}
