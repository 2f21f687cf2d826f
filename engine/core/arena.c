/* core/arena.c - the context's scratch memory (see arena.h). */
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/context.h"

static size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

void lily_arena_init(LilyArena *a, struct LilyBackend *backend, size_t min_block)
{
    memset(a, 0, sizeof *a);
    a->backend = backend;
    a->min_block = min_block ? min_block : ((size_t)64 << 20);
}

void lily_arena_release(LilyArena *a)
{
    for (int i = 0; i < a->n_blocks; i++)
        if (a->backend && a->blocks[i].data) a->backend->ops->free(a->backend, a->blocks[i].data);
    free(a->blocks);
    LilyBackend *be = a->backend;
    size_t min_block = a->min_block;
    memset(a, 0, sizeof *a);
    a->backend = be;
    a->min_block = min_block;
}

LilyArenaMark lily_arena_mark(const LilyArena *a)
{
    LilyArenaMark m = {a->cur, a->offset};
    return m;
}

static size_t used_before(const LilyArena *a, int block)
{
    size_t n = 0;
    for (int i = 0; i < block && i < a->n_blocks; i++) n += a->blocks[i].size;
    return n;
}

void lily_arena_reset(LilyArena *a, LilyArenaMark m)
{
    if (m.block == 0 && m.offset == 0 && a->n_blocks > 1) {
        /* Back to empty with several blocks: replace them by one block of their total size
         * on the next allocation, so the next pass (same shapes) fits in one block and
         * lily_arena_collapse can compact it. */
        size_t total = a->reserved;
        for (int i = 0; i < a->n_blocks; i++) a->backend->ops->free(a->backend, a->blocks[i].data);
        a->n_blocks = 0;
        a->reserved = 0;
        if (total > a->min_block) a->min_block = total;
    }
    a->cur = m.block;
    a->offset = m.offset;
    a->in_use = used_before(a, m.block) + m.offset;
}

void *lily_arena_alloc(LilyArena *a, size_t bytes)
{
    bytes = align_up(bytes ? bytes : 1, LILY_ARENA_ALIGN);
    for (;;) {
        if (a->cur < a->n_blocks) {
            LilyArenaBlock *b = &a->blocks[a->cur];
            if (a->offset + bytes <= b->size) {
                void *p = (char *)b->data + a->offset;
                a->offset += bytes;
                a->in_use += bytes;
                if (a->in_use > a->peak) a->peak = a->in_use;
                return p;
            }
            /* the rest of this block is skipped; count it as used so marks stay exact */
            if (a->cur + 1 < a->n_blocks && a->blocks[a->cur + 1].size >= bytes) {
                a->in_use += b->size - a->offset;
                a->cur++;
                a->offset = 0;
                continue;
            }
            if (a->cur + 1 < a->n_blocks) {
                /* the next block is too small: free it and every block after it */
                for (int i = a->cur + 1; i < a->n_blocks; i++) {
                    a->reserved -= a->blocks[i].size;
                    a->backend->ops->free(a->backend, a->blocks[i].data);
                }
                a->n_blocks = a->cur + 1;
            }
        }
        /* append a new block */
        if (a->n_blocks == a->cap_blocks) {
            int cap = a->cap_blocks ? a->cap_blocks * 2 : 8;
            LilyArenaBlock *nb = realloc(a->blocks, (size_t)cap * sizeof *nb);
            if (!nb) return NULL;
            a->blocks = nb;
            a->cap_blocks = cap;
        }
        /* geometric growth keeps the number of blocks small */
        size_t size = bytes > a->min_block ? bytes : a->min_block;
        if (size < a->reserved) size = a->reserved;
        void *data = NULL;
        if (a->backend->ops->alloc(a->backend, size, &data) != LILY_OK || !data) return NULL;
        if (a->n_blocks > 0) a->in_use += a->blocks[a->cur].size - a->offset;
        a->blocks[a->n_blocks].data = data;
        a->blocks[a->n_blocks].size = size;
        a->reserved += size;
        a->cur = a->n_blocks;
        a->n_blocks++;
        a->offset = 0;
    }
}

static LilyStatus tensor_alloc_in(LilyContext *ctx, LilyArena *a, LilyTensor *t, LilyDType dtype,
                                  int ndim, const int64_t *shape, LilyDeviceKind dev)
{
    *t = lily_tensor_make(NULL, dtype, dev, ndim, shape);
    size_t bytes = lily_tensor_nbytes(t);
    t->data = lily_arena_alloc(a, bytes);
    if (!t->data) {
        char sh[96];
        size_t free_b = 0, total_b = 0;
        a->backend->ops->mem_info(a->backend, &free_b, &total_b);
        return lily_error(ctx, LILY_ERR_NO_MEMORY,
                          "out of %s memory: a %s %s tensor needs %.1f MiB, %.1f MiB free of "
                          "%.1f MiB (scratch held: %.1f MiB); use shorter chunks or a smaller "
                          "model",
                          lily_device_name(dev), lily_dtype_name(dtype),
                          lily_shape_str(t, sh, sizeof sh), bytes / 1048576.0, free_b / 1048576.0,
                          total_b / 1048576.0, a->reserved / 1048576.0);
    }
    return LILY_OK;
}

LilyStatus lily_tensor_alloc(LilyContext *ctx, LilyTensor *t, LilyDType dtype, int ndim,
                             const int64_t *shape)
{
    return tensor_alloc_in(ctx, &ctx->arena, t, dtype, ndim, shape, ctx->backend->kind);
}

LilyStatus lily_tensor_alloc_host(LilyContext *ctx, LilyTensor *t, LilyDType dtype, int ndim,
                                  const int64_t *shape)
{
    return tensor_alloc_in(ctx, &ctx->host_arena, t, dtype, ndim, shape, LILY_DEVICE_CPU);
}

void *lily_arena_collapse(LilyContext *ctx, LilyArena *a, LilyArenaMark m, void *ptr, size_t bytes)
{
    size_t aligned = align_up(bytes ? bytes : 1, LILY_ARENA_ALIGN);
    if (m.block < a->n_blocks && a->cur == m.block) {
        char *base = (char *)a->blocks[m.block].data;
        char *dst = base + m.offset;
        if ((char *)ptr >= dst && (char *)ptr + aligned == base + a->offset) {
            if ((char *)ptr != dst && a->backend->ops->copy(ctx, dst, ptr, bytes) != LILY_OK)
                return ptr; /* leave it where it is: still correct, only not compacted */
            lily_arena_reset(a, m);
            a->offset += aligned;
            a->in_use += aligned;
            return dst;
        }
    }
    return ptr;
}
