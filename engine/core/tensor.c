/* core/tensor.c - tensor headers, shape strings and half-precision conversions. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/tensor.h"

int64_t lily_tensor_numel(const LilyTensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t lily_tensor_nbytes(const LilyTensor *t)
{
    return (size_t)lily_tensor_numel(t) * lily_dtype_size(t->dtype);
}

LilyTensor lily_tensor_make(void *data, LilyDType dtype, LilyDeviceKind device, int ndim,
                            const int64_t *shape)
{
    LilyTensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.device = device;
    t.ndim = ndim < 0 ? 0 : (ndim > LILY_MAX_DIMS ? LILY_MAX_DIMS : ndim);
    for (int i = 0; i < t.ndim; i++) t.shape[i] = shape[i];
    return t;
}

LilyTensor lily_tensor_f32(float *data, int ndim, const int64_t *shape)
{
    return lily_tensor_make(data, LILY_DTYPE_F32, LILY_DEVICE_CPU, ndim, shape);
}

bool lily_tensor_reshape(LilyTensor *t, int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > LILY_MAX_DIMS) return false;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if (n != lily_tensor_numel(t)) return false;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    for (int i = ndim; i < LILY_MAX_DIMS; i++) t->shape[i] = 0;
    return true;
}

bool lily_tensor_same_shape(const LilyTensor *a, const LilyTensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *lily_dims_str(const int64_t *shape, int ndim, char *buf, size_t len)
{
    size_t off = 0;
    if (len == 0) return buf;
    buf[0] = '\0';
    if (ndim == 0) {
        snprintf(buf, len, "scalar");
        return buf;
    }
    for (int i = 0; i < ndim && off < len; i++) {
        int w = snprintf(buf + off, len - off, i ? "x%lld" : "%lld", (long long)shape[i]);
        if (w < 0) break;
        off += (size_t)w;
    }
    return buf;
}

const char *lily_shape_str(const LilyTensor *t, char *buf, size_t len)
{
    return lily_dims_str(t->shape, t->ndim, buf, len);
}

uint16_t lily_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float lily_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t lily_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* overflow to inf */
    if (ax < 0x38800000u) {                                    /* subnormal or zero */
        float af;
        memcpy(&af, &ax, 4);
        /* scale so that the f16 subnormal unit (2^-24) becomes 1, round to nearest even */
        float r = nearbyintf(af * 16777216.0f);
        return (uint16_t)(sign | (uint32_t)r);
    }
    uint32_t mant = ax & 0x7fffffu;
    int32_t exp = (int32_t)(ax >> 23) - 127 + 15;
    uint32_t h = ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

float lily_f16_to_f32(uint16_t h)
{
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        float f = (float)mant * (1.0f / 16777216.0f);
        memcpy(&u, &f, 4);
        u |= sign;
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (mant << 13);
    } else {
        u = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}
