/* backend/backend-cuda.c - the CUDA backend: device memory and the op table on kernels/cuda.
 *
 * Registered only when a device answers at run time (lily_device_probe). Built only when the
 * build found nvcc (LILY_HAVE_CUDA). */
#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime_api.h>

#include "backend/backend.h"
#include "core/context.h"

LilyStatus lily_device_probe(LilyDeviceKind kind, int index, char *why, size_t why_len)
{
    if (kind == LILY_DEVICE_CPU) return index == 0 ? LILY_OK : LILY_ERR_INVALID_ARGUMENT;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why) snprintf(why, why_len, "no usable CUDA device: %s", cudaGetErrorString(e));
        return LILY_ERR_DEVICE;
    }
    if (index < 0 || index >= n) {
        if (why) snprintf(why, why_len, "CUDA device %d requested, %d present", index, n);
        return LILY_ERR_DEVICE;
    }
    return LILY_OK;
}

LilyStatus lily_backend_cuda_new(LilyContext *ctx, int device_index, LilyBackend **out)
{
    char why[256];
    *out = NULL;
    if (lily_device_probe(LILY_DEVICE_CUDA, device_index, why, sizeof why) != LILY_OK)
        return lily_error(ctx, LILY_ERR_DEVICE, "device cuda:%d: %s; use device=cpu",
                          device_index, why);
    return lily_error(ctx, LILY_ERR_UNSUPPORTED, "device cuda:%d: the CUDA op table is not "
                      "complete in this build", device_index);
}
