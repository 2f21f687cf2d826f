/* kernels/common/activation.h - activations and their derivatives, per element.
 *
 * Matches PyTorch's torch.nn.functional silu, gelu (approximate='none', the erf form),
 * leaky_relu, tanh, sigmoid, and diffusers' GEGLU (value * gelu(gate), value first), which is
 * what AudioSR's UNet uses. Derivatives follow the PyTorch autograd formulas, including the
 * choice at kinks: leaky_relu takes the negative slope at 0, clamp passes the gradient where
 * x equals the bound, abs has gradient 0 at 0.
 *
 * exp and erfc are our own branch-free float versions so that CPU loops over them vectorise
 * (glibc's expf/erff are calls, one element at a time) and so CPU and CUDA run the same
 * arithmetic. lily_expf: Cody-Waite reduction by ln 2 and the degree-6 minimax polynomial of
 * Cephes' expf, within 2 ulp of expf on [-87, 88]. lily_erfcf: the Chebyshev fit of Numerical
 * Recipes (erfcc), relative error below 1.2e-7 for x >= 0, so gelu keeps full relative
 * precision in both tails. */
#ifndef LILY_KERNELS_COMMON_ACTIVATION_H
#define LILY_KERNELS_COMMON_ACTIVATION_H

#include <math.h>
#include <stdint.h>

#include "half.h"
#include "hd.h"

/* The same values as the engine's LilyUnaryOp (backend/kernel-args.c maps one to the
 * other). */
typedef enum LilyActOp {
    LILY_ACT_IDENTITY = 0,
    LILY_ACT_SILU,
    LILY_ACT_GELU,
    LILY_ACT_LEAKY_RELU,
    LILY_ACT_TANH,
    LILY_ACT_EXP,
    LILY_ACT_SCALE,
    LILY_ACT_ADD_SCALAR,
    LILY_ACT_SQUARE,
    LILY_ACT_ABS,
    LILY_ACT_MIN,
    LILY_ACT_MAX,
    LILY_ACT_SIGMOID,
    LILY_ACT_COUNT
} LilyActOp;

/* Branch-free helpers. GCC 12 vectorises none of float compares, float selects or even some
 * integer selects on bit patterns in these loops (without -fno-trapping-math), but it does
 * vectorise integer compares turned into masks, so the range tests below are written that way.
 * cond is 0 or 1. */
LILY_HD float lily_select(uint32_t cond, float a, float b)
{
    uint32_t m = 0u - cond;
    return lily_bits_f32((lily_f32_bits(a) & m) | (lily_f32_bits(b) & ~m));
}

LILY_HD uint32_t lily_signbitf(float x)
{
    return lily_f32_bits(x) >> 31;
}

LILY_HD uint32_t lily_positivef(float x) /* x > 0, false for NaN */
{
    int32_t b = (int32_t)lily_f32_bits(x);
    return (uint32_t)((b > 0) & (b <= 0x7f800000));
}

/* e^x; 0 below -87.5 (where expf is subnormal), +inf above 88.72, NaN kept. */
LILY_HD float lily_expf(float x)
{
    const int32_t lo = (int32_t)0xc2af0000u; /* -87.5f */
    const int32_t hi = 0x42b170a4;           /* 88.72f */
    uint32_t bx = lily_f32_bits(x);
    int32_t sx = (int32_t)bx;
    /* clamp: a signed min caps positive values, an unsigned min caps negative ones */
    int32_t c1 = sx > hi ? hi : sx;
    uint32_t c = (uint32_t)c1 > (uint32_t)lo ? (uint32_t)lo : (uint32_t)c1;
    float xc = lily_bits_f32(c);
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick (exact in float arithmetic) */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * r * r + r + 1.0f;
    /* 2^n split in two factors so that n = 128 (x near 88.7) does not overflow the exponent */
    int32_t ni = (int32_t)n;
    int32_t n1 = ni >> 1;
    float s1 = lily_bits_f32((uint32_t)(n1 + 127) << 23);
    float s2 = lily_bits_f32((uint32_t)(ni - n1 + 127) << 23);
    uint32_t y = lily_f32_bits(e * s1 * s2);
    uint32_t under = (uint32_t)((sx < 0) & (sx > lo));
    uint32_t over = (uint32_t)(sx > hi);
    uint32_t nan = (uint32_t)((int32_t)(bx & 0x7fffffffu) > 0x7f800000);
    y &= under - 1u;
    y = (y & (over - 1u)) | (0x7f800000u & (0u - over));
    y = (y & (nan - 1u)) | (bx & (0u - nan));
    return lily_bits_f32(y);
}

/* erfc(x) for any x (relative error < 1.2e-7 for x >= 0; for x < 0 it is 2 - erfc(-x)). */
LILY_HD float lily_erfcf(float x)
{
    float z = fabsf(x);
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    float r = t * lily_expf(p - z * z);
    return lily_select(lily_signbitf(x), 2.0f - r, r);
}

LILY_HD float lily_sigmoidf(float x)
{
    return 1.0f / (1.0f + lily_expf(-x));
}

LILY_HD float lily_siluf(float x)
{
    return x * lily_sigmoidf(x);
}

LILY_HD float lily_silu_gradf(float x)
{
    float s = lily_sigmoidf(x);
    return s * (1.0f + x * (1.0f - s));
}

/* 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2). */
LILY_HD float lily_geluf(float x)
{
    return 0.5f * x * lily_erfcf(-0.70710678118654752f * x);
}

/* d/dx gelu = Phi(x) + x phi(x). */
LILY_HD float lily_gelu_gradf(float x)
{
    float cdf = 0.5f * lily_erfcf(-0.70710678118654752f * x);
    float pdf = 0.39894228040143268f * lily_expf(-0.5f * x * x);
    return cdf + x * pdf;
}

LILY_HD float lily_leaky_reluf(float x, float slope)
{
    return lily_select(lily_positivef(x), x, x * slope);
}

LILY_HD float lily_leaky_relu_gradf(float x, float slope)
{
    return lily_select(lily_positivef(x), 1.0f, slope);
}

/* Forward of any op (loops should switch outside and call the specific function). */
LILY_HD float lily_act_forward(LilyActOp op, float alpha, float x)
{
    switch (op) {
    case LILY_ACT_SILU: return lily_siluf(x);
    case LILY_ACT_GELU: return lily_geluf(x);
    case LILY_ACT_LEAKY_RELU: return lily_leaky_reluf(x, alpha);
    case LILY_ACT_TANH: return tanhf(x);
    case LILY_ACT_EXP: return lily_expf(x);
    case LILY_ACT_SCALE: return alpha * x;
    case LILY_ACT_ADD_SCALAR: return x + alpha;
    case LILY_ACT_SQUARE: return x * x;
    case LILY_ACT_ABS: return fabsf(x);
    case LILY_ACT_MIN: return x < alpha ? x : alpha;
    case LILY_ACT_MAX: return x > alpha ? x : alpha;
    case LILY_ACT_SIGMOID: return lily_sigmoidf(x);
    default: return x;
    }
}

/* d op(x) / dx. */
LILY_HD float lily_act_grad(LilyActOp op, float alpha, float x)
{
    switch (op) {
    case LILY_ACT_SILU: return lily_silu_gradf(x);
    case LILY_ACT_GELU: return lily_gelu_gradf(x);
    case LILY_ACT_LEAKY_RELU: return lily_leaky_relu_gradf(x, alpha);
    case LILY_ACT_TANH: {
        float t = tanhf(x);
        return 1.0f - t * t;
    }
    case LILY_ACT_EXP: return lily_expf(x);
    case LILY_ACT_SCALE: return alpha;
    case LILY_ACT_SQUARE: return 2.0f * x;
    case LILY_ACT_ABS: return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
    case LILY_ACT_MIN: return x <= alpha ? 1.0f : 0.0f;
    case LILY_ACT_MAX: return x >= alpha ? 1.0f : 0.0f;
    case LILY_ACT_SIGMOID: {
        float s = lily_sigmoidf(x);
        return s * (1.0f - s);
    }
    default: return 1.0f; /* identity, add_scalar */
    }
}

/* GEGLU, one output element: value * gelu(gate). */
LILY_HD float lily_geglu(float value, float gate)
{
    return value * lily_geluf(gate);
}

/* GEGLU backward: gradients of value and gate for output gradient dy. */
LILY_HD void lily_geglu_grad(float value, float gate, float dy, float *dvalue, float *dgate)
{
    *dvalue = dy * lily_geluf(gate);
    *dgate = dy * value * lily_gelu_gradf(gate);
}

#endif /* LILY_KERNELS_COMMON_ACTIVATION_H */
