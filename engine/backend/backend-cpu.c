/* backend/backend-cpu.c - the CPU backend: host memory and the op table on kernels/cpu. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/context.h"

static LilyStatus cpu_alloc(LilyBackend *be, size_t bytes, void **ptr)
{
    (void)be;
    *ptr = NULL;
    size_t sz = (bytes + 255) / 256 * 256;
    if (posix_memalign(ptr, 256, sz ? sz : 256) != 0) {
        *ptr = NULL;
        return LILY_ERR_NO_MEMORY;
    }
    return LILY_OK;
}

static void cpu_free(LilyBackend *be, void *ptr)
{
    (void)be;
    free(ptr);
}

static LilyStatus cpu_memcpy(LilyContext *ctx, void *dst, const void *src, size_t bytes)
{
    (void)ctx;
    if (bytes) memmove(dst, src, bytes);
    return LILY_OK;
}

static LilyStatus cpu_sync(LilyContext *ctx)
{
    (void)ctx;
    return LILY_OK;
}

static LilyStatus cpu_mem_info(LilyBackend *be, size_t *free_bytes, size_t *total_bytes)
{
    (void)be;
    long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES);
    long psz = sysconf(_SC_PAGESIZE);
    *total_bytes = pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : 0;
    *free_bytes = avail > 0 && psz > 0 ? (size_t)avail * (size_t)psz : 0;
    return LILY_OK;
}

static void cpu_destroy(LilyBackend *be)
{
    free(be);
}

static const LilyBackendOps cpu_ops = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_memcpy,
    .download = cpu_memcpy,
    .copy = cpu_memcpy,
    .synchronize = cpu_sync,
    .mem_info = cpu_mem_info,
    .destroy = cpu_destroy,
};

LilyStatus lily_backend_cpu_new(LilyContext *ctx, int n_threads, LilyBackend **out)
{
    (void)n_threads;
    LilyBackend *be = calloc(1, sizeof *be);
    if (!be) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory creating the CPU backend");
    be->ops = &cpu_ops;
    be->kind = LILY_DEVICE_CPU;
    be->index = 0;
    *out = be;
    return LILY_OK;
}
