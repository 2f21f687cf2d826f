/* kernels/cuda/elementwise.h - binary ops with trailing broadcast, axpby, fill, dtype casts,
 * whole-tensor reductions and the bias helpers of the dense ops, on the GPU.
 *
 * Same semantics as kernels/cpu/elementwise.h: binary is PyTorch's a + b, a - b, a * b with b
 * broadcast over a's trailing dims (b viewed as [nb], a as [nb, inner]); casts round to
 * nearest even with kernels/common/half.h, bit for bit as the CPU does. */
#ifndef LILY_KERNELS_CUDA_ELEMENTWISE_H
#define LILY_KERNELS_CUDA_ELEMENTWISE_H

#include <stdint.h>

#include "cuda/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The engine's LilyBinaryOp values. */
typedef enum LilyCudaBinOp {
    LILY_CUDA_BIN_ADD = 0,
    LILY_CUDA_BIN_SUB = 1,
    LILY_CUDA_BIN_MUL = 2,
} LilyCudaBinOp;

/* y[i * inner + j] = a[i * inner + j] op b[i]; y may equal a, and b when inner == 1. */
int lily_cuda_binary(LilyCudaHandle *h, int op, const float *a, const float *b, float *y,
                     int64_t nb, int64_t inner);
/* y = alpha x + beta y; beta == 0 ignores y's previous content (NaN included). */
int lily_cuda_axpby(LilyCudaHandle *h, float alpha, const float *x, float beta, float *y,
                    int64_t n);
int lily_cuda_fill(LilyCudaHandle *h, float *y, float value, int64_t n);
/* Converts n elements between LilyKDType types (equal types: a copy, memmove semantics). */
int lily_cuda_cast(LilyCudaHandle *h, const void *x, int xdt, void *y, int ydt, int64_t n);
/* Sum, sum of squares and max |x| in double into host variables (any may be NULL); max_abs is
 * NaN when x holds a NaN. Waits for the stream. */
int lily_cuda_reduce(LilyCudaHandle *h, const float *x, int64_t n, double *sum, double *sum_sq,
                     double *max_abs);

/* y[o, c, i] = (float)src[o, c, i] + b[c] for src of type sdt (a LilyKDType) viewed as
 * [outer, C, inner]; b may be NULL; src may equal y when sdt is f32. */
int lily_cuda_bias_cast(LilyCudaHandle *h, const void *src, int sdt, const float *b, float *y,
                        int64_t outer, int64_t C, int64_t inner);
/* db[c] += sum over o, i of x[o, c, i] (double accumulation, deterministic). */
int lily_cuda_channel_sum_add(LilyCudaHandle *h, const float *x, int64_t outer, int64_t C,
                              int64_t inner, float *db);

#ifdef __cplusplus
}
#endif

#endif /* LILY_KERNELS_CUDA_ELEMENTWISE_H */
