/* core/arena.h - scratch memory of a context, on the context's device.
 *
 * A bump allocator over a list of blocks (llm.c's "one allocation, many pointers", grown on
 * demand so the first chunk sizes it). Blocks are never moved, so pointers stay valid until
 * the arena is reset to a mark taken before them. A sampler step or a training step takes a
 * mark, allocates its activations and resets; peak memory is therefore that of one step. */
#ifndef LILY_CORE_ARENA_H
#define LILY_CORE_ARENA_H

#include <stddef.h>

#include <lily/lily.h>

#include "core/tensor.h"

#define LILY_ARENA_ALIGN 256

typedef struct LilyArenaBlock {
    void *data;
    size_t size;
} LilyArenaBlock;

typedef struct LilyArenaMark {
    int block;
    size_t offset;
} LilyArenaMark;

struct LilyBackend;

typedef struct LilyArena {
    struct LilyBackend *backend; /* allocates the blocks */
    LilyArenaBlock *blocks;
    int n_blocks, cap_blocks;
    int cur;        /* block being filled */
    size_t offset;  /* bytes used in blocks[cur] */
    size_t in_use;  /* bytes handed out (sum over blocks up to cur) */
    size_t peak;    /* maximum of in_use */
    size_t reserved;/* bytes held in blocks */
    size_t min_block;
} LilyArena;

void lily_arena_init(LilyArena *a, struct LilyBackend *backend, size_t min_block);
void lily_arena_release(LilyArena *a); /* frees every block */
LilyArenaMark lily_arena_mark(const LilyArena *a);
void lily_arena_reset(LilyArena *a, LilyArenaMark m);
/* NULL when the device is out of memory (the caller reports it through the context). */
void *lily_arena_alloc(LilyArena *a, size_t bytes);

/* Frees everything allocated since `m` except the block of `bytes` at `ptr`, which must be the
 * last allocation: it is moved down to where `m` points (copy with memmove semantics through
 * the backend) when both lie in the same block. Returns the (possibly new) address. This is
 * how a chain of layers keeps only its running tensor: [x][temps][y] -> [y]. */
void *lily_arena_collapse(LilyContext *ctx, LilyArena *a, LilyArenaMark m, void *ptr, size_t bytes);

/* A tensor of the given shape from the context's arena; on failure sets the context error
 * (with the figure asked for) and returns LILY_ERR_NO_MEMORY. */
LilyStatus lily_tensor_alloc(LilyContext *ctx, LilyTensor *t, LilyDType dtype, int ndim,
                             const int64_t *shape);
/* Same, but on the host whatever the device (for staging). Uses the host arena. */
LilyStatus lily_tensor_alloc_host(LilyContext *ctx, LilyTensor *t, LilyDType dtype, int ndim,
                                  const int64_t *shape);

#endif /* LILY_CORE_ARENA_H */
