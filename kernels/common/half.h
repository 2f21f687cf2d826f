/* kernels/common/half.h - element types of the kernels and bf16/f16 <-> f32 per element.
 *
 * Round to nearest even, NaN kept quiet, the same results as core/tensor.c's host conversions
 * and as PyTorch's Tensor.to(torch.bfloat16 / torch.float16). Written with integer arithmetic
 * only (no branches the vectoriser cannot turn into selects) so CPU loops over these functions
 * vectorise and the CUDA kernels can call them unchanged. */
#ifndef LILY_KERNELS_COMMON_HALF_H
#define LILY_KERNELS_COMMON_HALF_H

#include <stdint.h>

#include "hd.h"

/* The kernels' element types (the engine's LilyDType values for the same three types). */
typedef enum LilyKDType {
    LILY_KDT_F32 = 0,
    LILY_KDT_BF16 = 1,
    LILY_KDT_F16 = 2,
} LilyKDType;

LILY_HD uint32_t lily_f32_bits(float f)
{
    union {
        float f;
        uint32_t u;
    } v;
    v.f = f;
    return v.u;
}

LILY_HD float lily_bits_f32(uint32_t u)
{
    union {
        float f;
        uint32_t u;
    } v;
    v.u = u;
    return v.f;
}

LILY_HD uint16_t lily_f32_to_bf16_rne(float f)
{
    uint32_t u = lily_f32_bits(f);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t nan = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

LILY_HD float lily_bf16_bits_to_f32(uint16_t h)
{
    return lily_bits_f32((uint32_t)h << 16);
}

/* f32 -> f16, round to nearest even, overflow to inf, subnormals kept. */
LILY_HD uint16_t lily_f32_to_f16_rne(float f)
{
    uint32_t x = lily_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    uint32_t out;
    if (ax >= 0x7f800000u) {
        out = 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u);
    } else if (ax >= 0x477ff000u) {
        out = 0x7c00u;
    } else if (ax < 0x38800000u) {
        /* subnormal: adding 0.5 (as a float) aligns the f16 subnormal unit with the float's
         * last mantissa bit, and the float addition rounds to nearest even for us */
        out = lily_f32_bits(lily_bits_f32(ax) + 0.5f) - 0x3f000000u;
    } else {
        uint32_t mant = ax & 0x7fffffu;
        uint32_t h = ((ax >> 23) - 112u) << 10 | (mant >> 13);
        uint32_t rem = mant & 0x1fffu;
        out = h + ((rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ? 1u : 0u);
    }
    return (uint16_t)(sign | out);
}

LILY_HD float lily_f16_bits_to_f32(uint16_t h)
{
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t exp = ((uint32_t)h >> 10) & 0x1fu;
    uint32_t mant = (uint32_t)h & 0x3ffu;
    float sub = (float)mant * (1.0f / 16777216.0f);
    uint32_t u;
    if (exp == 0)
        u = lily_f32_bits(sub) | sign;
    else if (exp == 31)
        u = sign | 0x7f800000u | (mant << 13);
    else
        u = sign | ((exp + 112u) << 23) | (mant << 13);
    return lily_bits_f32(u);
}

#endif /* LILY_KERNELS_COMMON_HALF_H */
