/* tests/fuzz/fuzz-pickle.c - libFuzzer target for the pickle interpreter alone, then the
 * state-dict walk over its result with every storage resolved to one fixed buffer: reaches
 * the opcode handlers and the tensor-view checks without going through a zip.
 * Seeds: tests/fuzz/corpus/pickle (data.pkl of the fixtures). */
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "weights/pickle.h"
#include "weights/torch-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t storage_bytes[4096] __attribute__((aligned(64)));

static LilyStatus resolve(LilyContext *ctx, void *user, const LilyPkObj *s, LilyTorchStorage *out)
{
    (void)ctx;
    (void)user;
    /* Keys "0".."9" exist with 64 bytes each at growing offsets; others do not. */
    const char *k = s->u.storage.key;
    if (!(k[0] >= '0' && k[0] <= '9' && k[1] == '\0'))
        return lily_error(ctx, LILY_ERR_FORMAT, "storage '%s' is not in the archive", k);
    int i = k[0] - '0';
    out->data = storage_bytes + 64 * i;
    out->nbytes = sizeof storage_bytes - 64 * (size_t)i;
    out->file_offset = 64u * (unsigned)i;
    out->index = i;
    out->desc = k;
    return LILY_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    LilyContext *ctx = calloc(1, sizeof *ctx);
    if (!ctx) abort();
    LilyPickle *p = NULL;
    size_t used = 0;
    if (lily_pickle_load(ctx, "fuzz", data, size, &p, &used) == LILY_OK) {
        if (used > size) abort();
        /* An empty weights object (weights-impl.h) for the state dict's tensors. */
        LilyWeights *w = calloc(1, sizeof *w);
        if (w) w->path = strdup("fuzz");
        if (w && w->path) {
            (void)lily_torch_load_state_dict(ctx, w, "fuzz", lily_pickle_root(p), resolve, NULL);
        }
        lily_weights_close(w);
        lily_pickle_free(p);
    }
    free(ctx);
    return 0;
}
