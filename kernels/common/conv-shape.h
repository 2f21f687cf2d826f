/* kernels/common/conv-shape.h - the geometry of one convolution, as the conv kernels take it.
 *
 * One struct for kernels/cpu/conv.h (oneDNN) and kernels/cuda/conv.h (cuDNN), so that the
 * engine's backends build it from tensors with the same code (backend/kernel-args.c). Plain C
 * with no functions: nvcc compiles it as C++ unchanged. */
#ifndef LILY_KERNELS_COMMON_CONV_SHAPE_H
#define LILY_KERNELS_COMMON_CONV_SHAPE_H

#include <stdint.h>

typedef struct LilyConvShape {
    int nd;              /* spatial dims: 1 or 2 */
    int transposed;      /* 1: ConvTranspose (nd 1 only), weights [C, O, K] */
    int64_t n, c, o;     /* batch, input channels, output channels */
    int64_t in[2];       /* input spatial size (H, W); for nd 1 only [1] is used */
    int64_t k[2];        /* kernel size */
    int64_t out[2];      /* output spatial size */
    int stride[2], pad_begin[2], pad_end[2], dilation[2]; /* dilation 1 = dense */
} LilyConvShape;

#endif /* LILY_KERNELS_COMMON_CONV_SHAPE_H */
