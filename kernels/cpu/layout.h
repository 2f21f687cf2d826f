/* kernels/cpu/layout.h - data movement on the CPU: nearest x2 upsampling, channel concat and
 * split, 4-D transposes and row-block copies.
 *
 * upsample2x matches torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest") on
 * NCHW; concat/split match torch.cat / torch.split along dim 1. */
#ifndef LILY_KERNELS_CPU_LAYOUT_H
#define LILY_KERNELS_CPU_LAYOUT_H

#include <stdint.h>

/* x [NC, H, W] -> y [NC, 2H, 2W]. */
void lily_cpu_upsample2x_forward(int n_threads, int64_t NC, int64_t H, int64_t W, const float *x,
                                 float *y);
/* dx [NC, H, W] = sum of the four dy [NC, 2H, 2W] elements each x element was copied to. */
void lily_cpu_upsample2x_backward(int n_threads, int64_t NC, int64_t H, int64_t W, const float *dy,
                                  float *dx);

/* y [N, Ca + Cb, inner] <-> a [N, Ca, inner], b [N, Cb, inner]. In split, a (first Ca
 * channels) or b (last Cb channels) may be NULL. */
void lily_cpu_concat(int n_threads, int64_t N, int64_t Ca, int64_t Cb, int64_t inner,
                     const float *a, const float *b, float *y);
void lily_cpu_split(int n_threads, int64_t N, int64_t Ca, int64_t Cb, int64_t inner,
                    const float *y, float *a, float *b);

/* x viewed as [P, A, B, Q] -> y [P, B, A, Q] (y must not overlap x). */
void lily_cpu_transpose(int n_threads, int64_t P, int64_t A, int64_t B, int64_t Q, const float *x,
                        float *y);

/* dst[a, dst_row0 + r, :] = src[a, src_row0 + r, :] for a < A, r < rows, with src viewed as
 * [A, src_rows, B] and dst as [A, dst_rows, B] (memmove semantics per row block). */
void lily_cpu_copy_rows(int n_threads, const float *src, int64_t src_rows, int64_t src_row0,
                        float *dst, int64_t dst_rows, int64_t dst_row0, int64_t A, int64_t rows,
                        int64_t B);

#endif /* LILY_KERNELS_CPU_LAYOUT_H */
