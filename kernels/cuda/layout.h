/* kernels/cuda/layout.h - data movement on the GPU: nearest x2 upsampling, channel concat and
 * split, 4-D transposes, row-block copies and the padding/cropping window of the
 * convolutions.
 *
 * Same semantics as kernels/cpu/layout.h: upsample2x matches
 * torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest") on NCHW; concat/split
 * match torch.cat / torch.split along dim 1. */
#ifndef LILY_KERNELS_CUDA_LAYOUT_H
#define LILY_KERNELS_CUDA_LAYOUT_H

#include <stdint.h>

#include "cuda/handle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x [NC, H, W] -> y [NC, 2H, 2W]. */
int lily_cuda_upsample2x_forward(LilyCudaHandle *h, int64_t NC, int64_t H, int64_t W,
                                 const float *x, float *y);
/* dx [NC, H, W] = sum of the four dy [NC, 2H, 2W] elements each x element was copied to. */
int lily_cuda_upsample2x_backward(LilyCudaHandle *h, int64_t NC, int64_t H, int64_t W,
                                  const float *dy, float *dx);

/* y [N, Ca + Cb, inner] <-> a [N, Ca, inner], b [N, Cb, inner]; in split a or b may be NULL. */
int lily_cuda_concat(LilyCudaHandle *h, int64_t N, int64_t Ca, int64_t Cb, int64_t inner,
                     const float *a, const float *b, float *y);
int lily_cuda_split(LilyCudaHandle *h, int64_t N, int64_t Ca, int64_t Cb, int64_t inner,
                    const float *y, float *a, float *b);

/* x viewed as [P, A, B, Q] -> y [P, B, A, Q] (y must not overlap x). */
int lily_cuda_transpose(LilyCudaHandle *h, int64_t P, int64_t A, int64_t B, int64_t Q,
                        const float *x, float *y);

/* dst[a, dst_row0 + r, :] = src[a, src_row0 + r, :] for a < A, r < rows, src viewed as
 * [A, src_rows, B] and dst as [A, dst_rows, B]; src and dst may overlap (memmove). */
int lily_cuda_copy_rows(LilyCudaHandle *h, const float *src, int64_t src_rows, int64_t src_row0,
                        float *dst, int64_t dst_rows, int64_t dst_row0, int64_t A, int64_t rows,
                        int64_t B);

/* y[c, i, j] = x[c, i - top, j - left] where that lies inside x [NC, Hi, Wi], else 0, for y
 * [NC, Ho, Wo] of LilyKDType ydt: zero padding (top, left >= 0) or cropping (<= 0), with the
 * conversion of the 16-bit convolutions fused in. */
int lily_cuda_window(LilyCudaHandle *h, int64_t NC, int64_t Hi, int64_t Wi, const float *x,
                     int64_t Ho, int64_t Wo, int64_t top, int64_t left, void *y, int ydt);

#ifdef __cplusplus
}
#endif

#endif /* LILY_KERNELS_CUDA_LAYOUT_H */
