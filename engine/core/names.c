/* core/names.c - one string per enum value, shared by YAML, the command line and GEnum nicks. */
#include <stdlib.h>
#include <string.h>

#include <lily/lily.h>

static const char *const device_names[] = {"cpu", "cuda"};
static const char *const precision_names[] = {"f32", "bf16", "f16"};
static const char *const dtype_names[] = {"f32", "bf16", "f16", "i64", "i32", "u8"};
static const size_t dtype_sizes[] = {4, 2, 2, 8, 4, 1};
static const char *const filter_names[] = {"butter", "cheby1", "ellip", "bessel"};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int find_name(const char *const *names, int n, const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

const char *lily_device_name(LilyDeviceKind kind)
{
    return (kind >= 0 && (int)kind < N_OF(device_names)) ? device_names[kind] : "unknown";
}

LilyStatus lily_device_parse(const char *text, LilyDeviceKind *kind, int *index)
{
    if (!text) return LILY_ERR_INVALID_ARGUMENT;
    int idx = 0;
    const char *colon = strchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    if (colon) {
        char *end = NULL;
        long v = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end != '\0' || v < 0 || v > 1023) return LILY_ERR_INVALID_ARGUMENT;
        idx = (int)v;
    }
    for (int i = 0; i < N_OF(device_names); i++) {
        if (strlen(device_names[i]) == len && strncmp(device_names[i], text, len) == 0) {
            if (i == LILY_DEVICE_CPU && colon && idx != 0) return LILY_ERR_INVALID_ARGUMENT;
            *kind = (LilyDeviceKind)i;
            if (index) *index = idx;
            return LILY_OK;
        }
    }
    return LILY_ERR_INVALID_ARGUMENT;
}

const char *lily_precision_name(LilyPrecision p)
{
    return (p >= 0 && (int)p < N_OF(precision_names)) ? precision_names[p] : "unknown";
}

LilyStatus lily_precision_from_name(const char *name, LilyPrecision *p)
{
    int i = find_name(precision_names, N_OF(precision_names), name);
    if (i < 0 && name && strcmp(name, "fp32") == 0) i = LILY_PRECISION_F32;
    if (i < 0 && name && strcmp(name, "fp16") == 0) i = LILY_PRECISION_F16;
    if (i < 0) return LILY_ERR_INVALID_ARGUMENT;
    *p = (LilyPrecision)i;
    return LILY_OK;
}

const char *lily_dtype_name(LilyDType t)
{
    return (t >= 0 && (int)t < N_OF(dtype_names)) ? dtype_names[t] : "unknown";
}

LilyStatus lily_dtype_from_name(const char *name, LilyDType *t)
{
    int i = find_name(dtype_names, N_OF(dtype_names), name);
    if (i < 0) return LILY_ERR_INVALID_ARGUMENT;
    *t = (LilyDType)i;
    return LILY_OK;
}

size_t lily_dtype_size(LilyDType t)
{
    return (t >= 0 && (int)t < N_OF(dtype_sizes)) ? dtype_sizes[t] : 0;
}

const char *lily_filter_name(LilyFilterType f)
{
    return (f >= 0 && (int)f < N_OF(filter_names)) ? filter_names[f] : "unknown";
}

LilyStatus lily_filter_from_name(const char *name, LilyFilterType *f)
{
    int i = find_name(filter_names, N_OF(filter_names), name);
    if (i < 0) return LILY_ERR_INVALID_ARGUMENT;
    *f = (LilyFilterType)i;
    return LILY_OK;
}
