/* backend/backend.h - the op table every backend fills, and the memory table beside it.
 *
 * Model code is written once, against the lily_op_* dispatchers declared at the end of this
 * file. A dispatcher checks shapes, dtypes and devices (so backends need not), then calls the
 * backend's function from ctx->backend->ops. Backends: backend-cpu.c (oneDNN, FFTW3, plain C
 * loops over kernels/common arithmetic) and backend-cuda.c (cuDNN, cuBLAS, cuFFT and
 * kernels/cuda). The split follows ggml's backend vtables: memory (alloc/free/copies) apart
 * from execution (ops).
 *
 * Conventions shared by every op:
 * - Tensors are dense row-major (core/tensor.h); activations are f32. A weight tensor of
 *   dtype bf16 or f16 asks for that precision in the matrix product: the op converts its f32
 *   input to the weight's dtype, accumulates in f32 and writes f32.
 * - Outputs are preallocated by the caller with the right shape and never alias an input
 *   unless the op says it may (elementwise ops allow y == x).
 * - Backward ops overwrite input gradients (dx) and ACCUMULATE parameter gradients
 *   (dw += ..., db += ...), as llm.c does, so gradient accumulation over micro-batches and
 *   parameters shared by several calls need no extra code. Any gradient pointer may be NULL
 *   when that gradient is not wanted.
 * - Every op returns LILY_OK or a status with the context's message set.
 */
#ifndef LILY_BACKEND_BACKEND_H
#define LILY_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lily/lily.h>

#include "core/tensor.h"

/* 2-D convolution geometry (1-D convolutions use index [1] only; [0] must be the identity:
 * stride 1, pads 0, dilation 1). Padding may be asymmetric (AudioSR's VAE downsampling pads
 * (0, 1, 0, 1) then convolves with stride 2 and no padding). */
typedef struct LilyConvParams {
    int stride[2];
    int pad_begin[2]; /* top, left */
    int pad_end[2];   /* bottom, right */
    int dilation[2];  /* 1 = dense */
} LilyConvParams;

/* Constructors for the common cases. */
LilyConvParams lily_conv2d_params(int stride, int pad);
LilyConvParams lily_conv1d_params(int stride, int pad, int dilation);

typedef enum LilyUnaryOp {
    LILY_UNARY_IDENTITY = 0,
    LILY_UNARY_SILU,       /* x * sigmoid(x) */
    LILY_UNARY_GELU,       /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
    LILY_UNARY_LEAKY_RELU, /* alpha = negative slope */
    LILY_UNARY_TANH,
    LILY_UNARY_EXP,
    LILY_UNARY_SCALE,      /* alpha * x */
    LILY_UNARY_ADD_SCALAR, /* x + alpha */
    LILY_UNARY_SQUARE,
    LILY_UNARY_ABS,
    LILY_UNARY_MIN,        /* min(x, alpha) */
    LILY_UNARY_MAX,        /* max(x, alpha) */
    LILY_UNARY_SIGMOID,
    LILY_UNARY_COUNT
} LilyUnaryOp;

typedef enum LilyBinaryOp {
    LILY_BINARY_ADD = 0,
    LILY_BINARY_SUB,
    LILY_BINARY_MUL,
    LILY_BINARY_COUNT
} LilyBinaryOp;

typedef struct LilyContext LilyContext;
typedef struct LilyBackend LilyBackend;

typedef struct LilyBackendOps {
    const char *name; /* "cpu", "cuda" */

    /* ---- memory ---- */
    LilyStatus (*alloc)(LilyBackend *be, size_t bytes, void **ptr); /* 256-byte aligned */
    /* Must work on a copy of the backend whose impl is NULL (a model frees its weights that
     * way after the loading context is gone): use only kind and index. */
    void (*free)(LilyBackend *be, void *ptr);
    /* Copies between host memory and the backend's memory (plain memcpy on CPU). */
    LilyStatus (*upload)(LilyContext *ctx, void *dst_dev, const void *src_host, size_t bytes);
    LilyStatus (*download)(LilyContext *ctx, void *dst_host, const void *src_dev, size_t bytes);
    /* Device-to-device copy; the ranges may overlap (memmove semantics). */
    LilyStatus (*copy)(LilyContext *ctx, void *dst_dev, const void *src_dev, size_t bytes);
    LilyStatus (*synchronize)(LilyContext *ctx);
    /* Free and total device memory in bytes (host RAM for the CPU). */
    LilyStatus (*mem_info)(LilyBackend *be, size_t *free_bytes, size_t *total_bytes);
    void (*destroy)(LilyBackend *be);

    /* ---- dense products ---- */
    /* y[N,O,Ho,Wo] = conv(x[N,C,H,W], w[O,C,KH,KW]) + b[O] (b may be NULL). */
    LilyStatus (*conv2d)(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                         const LilyTensor *b, const LilyConvParams *p, LilyTensor *y);
    LilyStatus (*conv2d_backward)(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                  const LilyConvParams *p, const LilyTensor *dy, LilyTensor *dx,
                                  LilyTensor *dw, LilyTensor *db);
    /* y[N,O,Lo] = conv(x[N,C,L], w[O,C,K]) + b[O]. */
    LilyStatus (*conv1d)(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                         const LilyTensor *b, const LilyConvParams *p, LilyTensor *y);
    LilyStatus (*conv1d_backward)(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                  const LilyConvParams *p, const LilyTensor *dy, LilyTensor *dx,
                                  LilyTensor *dw, LilyTensor *db);
    /* PyTorch ConvTranspose1d: y[N,O,Lo] with w[C,O,K], Lo = (L-1)*stride - 2*pad + K. */
    LilyStatus (*conv_transpose1d)(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                   const LilyTensor *b, int stride, int pad, LilyTensor *y);
    LilyStatus (*conv_transpose1d_backward)(LilyContext *ctx, const LilyTensor *x,
                                            const LilyTensor *w, int stride, int pad,
                                            const LilyTensor *dy, LilyTensor *dx, LilyTensor *dw,
                                            LilyTensor *db);
    /* y[M,N] = x[M,K] w[N,K]^T + b[N] (PyTorch Linear; x may have leading dims, flattened). */
    LilyStatus (*linear)(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                         const LilyTensor *b, LilyTensor *y);
    LilyStatus (*linear_backward)(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                  const LilyTensor *dy, LilyTensor *dx, LilyTensor *dw,
                                  LilyTensor *db);
    /* Batched c[B,M,N] = alpha * op(a) op(b) + beta * c, op = transpose when trans_* is set;
     * a is [B,M,K] (or [B,K,M] transposed), b is [B,K,N] (or [B,N,K]). */
    LilyStatus (*matmul)(LilyContext *ctx, const LilyTensor *a, bool trans_a, const LilyTensor *b,
                         bool trans_b, float alpha, float beta, LilyTensor *c);
    /* out[B,T,D] = softmax(q[B,T,D] k[B,S,D]^T * scale) v[B,S,D]; softmax over S. */
    LilyStatus (*attention)(LilyContext *ctx, const LilyTensor *q, const LilyTensor *k,
                            const LilyTensor *v, float scale, LilyTensor *out);
    LilyStatus (*attention_backward)(LilyContext *ctx, const LilyTensor *q, const LilyTensor *k,
                                     const LilyTensor *v, float scale, const LilyTensor *dout,
                                     LilyTensor *dq, LilyTensor *dk, LilyTensor *dv);

    /* ---- normalisation ---- */
    /* GroupNorm over x[N,C,*] with `groups` groups, statistics in f32 (two-pass),
     * affine gamma/beta [C], optional SiLU after (silu != 0). */
    LilyStatus (*group_norm)(LilyContext *ctx, const LilyTensor *x, const LilyTensor *gamma,
                             const LilyTensor *beta, int groups, float eps, int silu,
                             LilyTensor *y);
    LilyStatus (*group_norm_backward)(LilyContext *ctx, const LilyTensor *x,
                                      const LilyTensor *gamma, const LilyTensor *beta, int groups,
                                      float eps, int silu, const LilyTensor *dy, LilyTensor *dx,
                                      LilyTensor *dgamma, LilyTensor *dbeta);
    /* LayerNorm over the last dimension of x[M,D]. */
    LilyStatus (*layer_norm)(LilyContext *ctx, const LilyTensor *x, const LilyTensor *gamma,
                             const LilyTensor *beta, float eps, LilyTensor *y);
    LilyStatus (*layer_norm_backward)(LilyContext *ctx, const LilyTensor *x,
                                      const LilyTensor *gamma, float eps, const LilyTensor *dy,
                                      LilyTensor *dx, LilyTensor *dgamma, LilyTensor *dbeta);
    /* Softmax over the last dimension of x[M,D], after multiplying by scale. */
    LilyStatus (*softmax)(LilyContext *ctx, const LilyTensor *x, float scale, LilyTensor *y);
    LilyStatus (*softmax_backward)(LilyContext *ctx, const LilyTensor *y, float scale,
                                   const LilyTensor *dy, LilyTensor *dx);

    /* ---- elementwise ---- */
    LilyStatus (*unary)(LilyContext *ctx, LilyUnaryOp op, float alpha, const LilyTensor *x,
                        LilyTensor *y); /* y may equal x */
    /* dx = dy * d op(x)/dx (dx may equal dy). */
    LilyStatus (*unary_backward)(LilyContext *ctx, LilyUnaryOp op, float alpha,
                                 const LilyTensor *x, const LilyTensor *dy, LilyTensor *dx);
    /* y = a op b, where b's shape is a prefix of a's shape (b broadcast over a's trailing
     * dims: same shape, per-channel [N,C] over [N,C,H,W], or a single element). y may be a. */
    LilyStatus (*binary)(LilyContext *ctx, LilyBinaryOp op, const LilyTensor *a,
                         const LilyTensor *b, LilyTensor *y);
    /* y = alpha * x + beta * y (same shapes). */
    LilyStatus (*axpby)(LilyContext *ctx, float alpha, const LilyTensor *x, float beta,
                        LilyTensor *y);
    /* GEGLU: x[M, 2D] -> y[M, D] = x[:, :D] * gelu(x[:, D:]) (diffusers/AudioSR order). */
    LilyStatus (*geglu)(LilyContext *ctx, const LilyTensor *x, LilyTensor *y);
    LilyStatus (*geglu_backward)(LilyContext *ctx, const LilyTensor *x, const LilyTensor *dy,
                                 LilyTensor *dx);
    LilyStatus (*fill)(LilyContext *ctx, LilyTensor *y, float value);
    /* Converts between f32, bf16 and f16 (same shape; dtypes may be equal: a copy). */
    LilyStatus (*cast)(LilyContext *ctx, const LilyTensor *x, LilyTensor *y);
    /* Sum of all elements, and sum of squares, into host doubles (either may be NULL). */
    LilyStatus (*reduce)(LilyContext *ctx, const LilyTensor *x, double *sum, double *sum_sq,
                         double *max_abs);

    /* ---- layout ---- */
    /* Nearest-neighbour x2 upsampling of x[N,C,H,W] -> y[N,C,2H,2W]. */
    LilyStatus (*upsample2x)(LilyContext *ctx, const LilyTensor *x, LilyTensor *y);
    LilyStatus (*upsample2x_backward)(LilyContext *ctx, const LilyTensor *dy, LilyTensor *dx);
    /* y[N, Ca+Cb, *] = cat(a[N,Ca,*], b[N,Cb,*]) along dim 1; split is its inverse (either
     * output may be NULL). */
    LilyStatus (*concat)(LilyContext *ctx, const LilyTensor *a, const LilyTensor *b,
                         LilyTensor *y);
    LilyStatus (*split)(LilyContext *ctx, const LilyTensor *y, LilyTensor *a, LilyTensor *b);
    /* x viewed as [P, A, B, Q] -> y [P, B, A, Q] (NCHW <-> NHWC with Q=1, head split with P=1). */
    LilyStatus (*transpose)(LilyContext *ctx, const LilyTensor *x, int64_t P, int64_t A,
                            int64_t B, int64_t Q, LilyTensor *y);
    /* y[:, :, rows r0..r0+R) of a [A, Rtot, B] view <- x[A, R, B] (and the reverse). Used to
     * cut chunks and tokens out of longer tensors. */
    LilyStatus (*copy_rows)(LilyContext *ctx, const LilyTensor *src, int64_t src_row0,
                            LilyTensor *dst, int64_t dst_row0, int64_t A, int64_t rows,
                            int64_t B);

    /* ---- randomness and sampler ---- */
    /* Standard normal draws: y viewed as [A, R, B]; element (a, r, b) takes Philox index
     * ((r + row0) * A + a) * B + b of stream `stream` under `seed` (kernels/common/philox.h). */
    LilyStatus (*randn)(LilyContext *ctx, LilyTensor *y, int64_t A, int64_t B, int64_t row0,
                        uint64_t seed, uint64_t stream);
    /* One DDIM step with v-prediction and classifier-free guidance (kernels/common/ddim.h):
     * v = vu + g (vc - vu); x0 = sa x - s1a v; eps = sa v + s1a x;
     * x <- sqrt(ap) x0 + sqrt(1 - ap - sigma^2) eps + sigma noise. vu may be NULL (no CFG).
     * x0_out may be NULL. noise may be NULL when sigma == 0. */
    LilyStatus (*ddim_step)(LilyContext *ctx, LilyTensor *x, const LilyTensor *vc,
                            const LilyTensor *vu, const LilyTensor *noise, float guidance,
                            double alpha, double alpha_prev, double sigma, LilyTensor *x0_out);

    /* ---- spectral (kernels/common/stft.h; FFTW3f on the CPU, cuFFT on CUDA) ---- */
    /* Short-time Fourier transform, torch.stft(normalized=False, onesided=True, center=False):
     * x [B, L], window [n_fft] -> y [B, F, n_fft/2+1, 2] (real, imaginary interleaved),
     * F = (L - n_fft) / hop + 1 (L >= n_fft: padding, e.g. AudioSR's reflect padding, is the
     * caller's), y[b,f,k] = sum_n x[b, f hop + n] window[n] exp(-2 pi i k n / n_fft),
     * unnormalised. Flops: 2.5 n_fft log2(n_fft) per frame (windowing not counted), as for
     * istft and stft_backward. */
    LilyStatus (*stft)(LilyContext *ctx, const LilyTensor *x, const LilyTensor *window, int n_fft,
                       int hop, LilyTensor *y);
    /* Inverse, torch.istft(center=False) without the trimming: spec [B, F, n_fft/2+1, 2] ->
     * y [B, L], L = (F - 1) hop + n_fft. Each frame's inverse real FFT (scaled by 1/n_fft; the
     * imaginary parts of bin 0 and bin n_fft/2 are ignored, as irfft does) is multiplied by the
     * window and overlap-added, then divided by the overlap-added squared window where that
     * envelope is > 1e-11 (0 elsewhere). istft(stft(x)) == x wherever the envelope is > 1e-11.
     * Deterministic: each output sample sums its covering frames in frame order. */
    LilyStatus (*istft)(LilyContext *ctx, const LilyTensor *spec, const LilyTensor *window,
                        int n_fft, int hop, LilyTensor *y);
    /* The adjoint of stft with respect to x: dy [B, F, n_fft/2+1, 2] -> dx [B, L] of the
     * forward's x (overwritten; F must be (L - n_fft) / hop + 1, samples no frame covers get 0):
     * dx[b, t] = sum over the frames f covering t, n = t - f hop, of window[n] *
     * sum_{k=0}^{n_fft/2} (dyr[b,f,k] cos(2 pi k n / n_fft) - dyi[b,f,k] sin(2 pi k n / n_fft)),
     * so <stft(x), dy> == <x, stft_backward(dy)>. */
    LilyStatus (*stft_backward)(LilyContext *ctx, const LilyTensor *window, int n_fft, int hop,
                                const LilyTensor *dy, LilyTensor *dx);
} LilyBackendOps;

struct LilyBackend {
    const LilyBackendOps *ops;
    LilyDeviceKind kind;
    int index;
    void *impl; /* backend-private state: primitive caches, handles, streams */
};

/* Backend constructors (registry.c picks one). The CUDA constructor exists only when the
 * CUDA backend is built, and fails with LILY_ERR_DEVICE when no device answers. */
LilyStatus lily_backend_cpu_new(LilyContext *ctx, int n_threads, LilyBackend **out);
LilyStatus lily_backend_cuda_new(LilyContext *ctx, int device_index, LilyBackend **out);
LilyStatus lily_backend_new(LilyContext *ctx, LilyDeviceKind kind, int index, int n_threads,
                            LilyBackend **out);

/* ---------------------------------------------------------------------------------------- */
/* Dispatchers: check, then call ctx's backend. Model code calls only these.                 */
/* ---------------------------------------------------------------------------------------- */
LilyStatus lily_op_conv2d(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                          const LilyTensor *b, const LilyConvParams *p, LilyTensor *y);
LilyStatus lily_op_conv2d_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                   const LilyConvParams *p, const LilyTensor *dy, LilyTensor *dx,
                                   LilyTensor *dw, LilyTensor *db);
LilyStatus lily_op_conv1d(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                          const LilyTensor *b, const LilyConvParams *p, LilyTensor *y);
LilyStatus lily_op_conv1d_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                   const LilyConvParams *p, const LilyTensor *dy, LilyTensor *dx,
                                   LilyTensor *dw, LilyTensor *db);
LilyStatus lily_op_conv_transpose1d(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                    const LilyTensor *b, int stride, int pad, LilyTensor *y);
LilyStatus lily_op_conv_transpose1d_backward(LilyContext *ctx, const LilyTensor *x,
                                             const LilyTensor *w, int stride, int pad,
                                             const LilyTensor *dy, LilyTensor *dx,
                                             LilyTensor *dw, LilyTensor *db);
LilyStatus lily_op_linear(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                          const LilyTensor *b, LilyTensor *y);
LilyStatus lily_op_linear_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *w,
                                   const LilyTensor *dy, LilyTensor *dx, LilyTensor *dw,
                                   LilyTensor *db);
LilyStatus lily_op_matmul(LilyContext *ctx, const LilyTensor *a, bool trans_a,
                          const LilyTensor *b, bool trans_b, float alpha, float beta,
                          LilyTensor *c);
LilyStatus lily_op_attention(LilyContext *ctx, const LilyTensor *q, const LilyTensor *k,
                             const LilyTensor *v, float scale, LilyTensor *out);
LilyStatus lily_op_attention_backward(LilyContext *ctx, const LilyTensor *q, const LilyTensor *k,
                                      const LilyTensor *v, float scale, const LilyTensor *dout,
                                      LilyTensor *dq, LilyTensor *dk, LilyTensor *dv);
LilyStatus lily_op_group_norm(LilyContext *ctx, const LilyTensor *x, const LilyTensor *gamma,
                              const LilyTensor *beta, int groups, float eps, int silu,
                              LilyTensor *y);
LilyStatus lily_op_group_norm_backward(LilyContext *ctx, const LilyTensor *x,
                                       const LilyTensor *gamma, const LilyTensor *beta,
                                       int groups, float eps, int silu, const LilyTensor *dy,
                                       LilyTensor *dx, LilyTensor *dgamma, LilyTensor *dbeta);
LilyStatus lily_op_layer_norm(LilyContext *ctx, const LilyTensor *x, const LilyTensor *gamma,
                              const LilyTensor *beta, float eps, LilyTensor *y);
LilyStatus lily_op_layer_norm_backward(LilyContext *ctx, const LilyTensor *x,
                                       const LilyTensor *gamma, float eps, const LilyTensor *dy,
                                       LilyTensor *dx, LilyTensor *dgamma, LilyTensor *dbeta);
LilyStatus lily_op_softmax(LilyContext *ctx, const LilyTensor *x, float scale, LilyTensor *y);
LilyStatus lily_op_softmax_backward(LilyContext *ctx, const LilyTensor *y, float scale,
                                    const LilyTensor *dy, LilyTensor *dx);
LilyStatus lily_op_unary(LilyContext *ctx, LilyUnaryOp op, float alpha, const LilyTensor *x,
                         LilyTensor *y);
LilyStatus lily_op_unary_backward(LilyContext *ctx, LilyUnaryOp op, float alpha,
                                  const LilyTensor *x, const LilyTensor *dy, LilyTensor *dx);
LilyStatus lily_op_binary(LilyContext *ctx, LilyBinaryOp op, const LilyTensor *a,
                          const LilyTensor *b, LilyTensor *y);
LilyStatus lily_op_axpby(LilyContext *ctx, float alpha, const LilyTensor *x, float beta,
                         LilyTensor *y);
LilyStatus lily_op_geglu(LilyContext *ctx, const LilyTensor *x, LilyTensor *y);
LilyStatus lily_op_geglu_backward(LilyContext *ctx, const LilyTensor *x, const LilyTensor *dy,
                                  LilyTensor *dx);
LilyStatus lily_op_fill(LilyContext *ctx, LilyTensor *y, float value);
LilyStatus lily_op_cast(LilyContext *ctx, const LilyTensor *x, LilyTensor *y);
LilyStatus lily_op_reduce(LilyContext *ctx, const LilyTensor *x, double *sum, double *sum_sq,
                          double *max_abs);
LilyStatus lily_op_upsample2x(LilyContext *ctx, const LilyTensor *x, LilyTensor *y);
LilyStatus lily_op_upsample2x_backward(LilyContext *ctx, const LilyTensor *dy, LilyTensor *dx);
LilyStatus lily_op_concat(LilyContext *ctx, const LilyTensor *a, const LilyTensor *b,
                          LilyTensor *y);
LilyStatus lily_op_split(LilyContext *ctx, const LilyTensor *y, LilyTensor *a, LilyTensor *b);
LilyStatus lily_op_transpose(LilyContext *ctx, const LilyTensor *x, int64_t P, int64_t A,
                             int64_t B, int64_t Q, LilyTensor *y);
LilyStatus lily_op_copy_rows(LilyContext *ctx, const LilyTensor *src, int64_t src_row0,
                             LilyTensor *dst, int64_t dst_row0, int64_t A, int64_t rows,
                             int64_t B);
LilyStatus lily_op_randn(LilyContext *ctx, LilyTensor *y, int64_t A, int64_t B, int64_t row0,
                         uint64_t seed, uint64_t stream);
LilyStatus lily_op_ddim_step(LilyContext *ctx, LilyTensor *x, const LilyTensor *vc,
                             const LilyTensor *vu, const LilyTensor *noise, float guidance,
                             double alpha, double alpha_prev, double sigma, LilyTensor *x0_out);
LilyStatus lily_op_stft(LilyContext *ctx, const LilyTensor *x, const LilyTensor *window, int n_fft,
                        int hop, LilyTensor *y);
LilyStatus lily_op_istft(LilyContext *ctx, const LilyTensor *spec, const LilyTensor *window,
                         int n_fft, int hop, LilyTensor *y);
LilyStatus lily_op_stft_backward(LilyContext *ctx, const LilyTensor *window, int n_fft, int hop,
                                 const LilyTensor *dy, LilyTensor *dx);

/* Host <-> backend copies of whole tensors (shapes must agree). */
LilyStatus lily_tensor_upload(LilyContext *ctx, LilyTensor *dst, const void *host);
LilyStatus lily_tensor_download(LilyContext *ctx, const LilyTensor *src, void *host);
LilyStatus lily_tensor_copy(LilyContext *ctx, const LilyTensor *src, LilyTensor *dst);

#endif /* LILY_BACKEND_BACKEND_H */
