/* kernels/cpu/elementwise.h - binary ops with trailing broadcast, axpby, fill, dtype casts and
 * whole-tensor reductions on the CPU.
 *
 * binary matches PyTorch's a + b, a - b, a * b where b's shape is a prefix of a's (b is
 * broadcast over a's trailing dims: b viewed as [nb], a as [nb, inner]). Casts round to
 * nearest even (Tensor.to). */
#ifndef LILY_KERNELS_CPU_ELEMENTWISE_H
#define LILY_KERNELS_CPU_ELEMENTWISE_H

#include <stdint.h>

typedef enum LilyBinOp { LILY_BIN_ADD = 0, LILY_BIN_SUB, LILY_BIN_MUL } LilyBinOp;

/* y[i * inner + j] = a[i * inner + j] op b[i] for i < nb, j < inner; y may equal a, and may
 * equal b when inner == 1. */
void lily_cpu_binary(int n_threads, LilyBinOp op, const float *a, const float *b, float *y,
                     int64_t nb, int64_t inner);
/* y = alpha x + beta y; beta == 0 ignores y's previous content (NaN included). */
void lily_cpu_axpby(int n_threads, float alpha, const float *x, float beta, float *y, int64_t n);
void lily_cpu_fill(int n_threads, float *y, float value, int64_t n);
/* Converts n elements between LilyKDType types (equal types: a copy). */
void lily_cpu_cast(int n_threads, const void *x, int xdt, void *y, int ydt, int64_t n);
/* Sum, sum of squares and max |x| in double (any output may be NULL). */
void lily_cpu_reduce(int n_threads, const float *x, int64_t n, double *sum, double *sum_sq,
                     double *max_abs);

#endif /* LILY_KERNELS_CPU_ELEMENTWISE_H */
