/* backend/registry.c - picks a backend for a device kind at run time.
 *
 * The CPU backend is always there. The CUDA backend is compiled in when the build found nvcc
 * (LILY_HAVE_CUDA) and registers only when a device answers; otherwise asking for it is a
 * clear LILY_ERR_DEVICE, never a crash. */
#include <stdio.h>

#include "backend/backend.h"
#include "core/context.h"

LilyStatus lily_backend_new(LilyContext *ctx, LilyDeviceKind kind, int index, int n_threads,
                            LilyBackend **out)
{
    *out = NULL;
    switch (kind) {
    case LILY_DEVICE_CPU:
        return lily_backend_cpu_new(ctx, n_threads, out);
    case LILY_DEVICE_CUDA:
#ifdef LILY_HAVE_CUDA
        return lily_backend_cuda_new(ctx, index, out);
#else
        (void)index;
        return lily_error(ctx, LILY_ERR_DEVICE,
                          "device cuda: this Lily was built without the CUDA backend (nvcc was "
                          "not found at build time); rebuild with -Dcuda=enabled or use "
                          "device=cpu");
#endif
    }
    return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "unknown device kind %d", (int)kind);
}

#ifndef LILY_HAVE_CUDA
LilyStatus lily_device_probe(LilyDeviceKind kind, int index, char *why, size_t why_len)
{
    if (kind == LILY_DEVICE_CPU) return index == 0 ? LILY_OK : LILY_ERR_INVALID_ARGUMENT;
    if (why) snprintf(why, why_len, "built without the CUDA backend");
    return LILY_ERR_DEVICE;
}
#endif
