/* tests/weights/weights-test.h - helpers shared by the weights tests: a context, file
 * copies and byte patches, and a minimal PyTorch-zip builder for crafted pickles. */
#ifndef LILY_TESTS_WEIGHTS_TEST_H
#define LILY_TESTS_WEIGHTS_TEST_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "core/context.h"
#include "weights/weights.h"

LilyContext *wt_context(void);
/* Path of a fixture in tests/weights/data (g_free it). */
char *wt_fixture(const char *name);
/* A path in the test's temporary folder (g_free it). */
char *wt_tmp(const char *name);
/* Whole file into memory (g_free it). */
uint8_t *wt_read(const char *path, size_t *len);
void wt_write(const char *path, const void *data, size_t len);
/* Offset of the first occurrence of needle in hay (fails the test if absent). */
size_t wt_find(const uint8_t *hay, size_t len, const void *needle, size_t nlen);
/* In a zip held in memory, the entry named `name`: its local header offset, data offset and
 * central directory record offset. Returns FALSE if absent. */
gboolean wt_zip_locate(const uint8_t *zip, size_t len, const char *name, size_t *local,
                       size_t *data, size_t *central);
/* Recomputes the CRC-32 of a stored entry after its bytes were patched. */
void wt_zip_fix_crc(uint8_t *zip, size_t len, const char *name);
/* Writes a stored zip "t/data.pkl" = pickle, "t/data/<i>" = storages[i]. */
void wt_write_torch_zip(const char *path, const void *pickle, size_t plen, int n_storages,
                        const void *const *storages, const size_t *sizes);
/* A growable pickle for crafted checkpoints (protocol 2 opcodes, as torch.save writes). */
typedef struct WtPickle {
    uint8_t *b;
    size_t n;
} WtPickle;
void wt_pk_bytes(WtPickle *p, const void *d, size_t n);
void wt_pk_raw(WtPickle *p, const char *s);      /* opcodes given as a C string */
void wt_pk_str(WtPickle *p, const char *s);      /* BINUNICODE */
void wt_pk_int(WtPickle *p, int64_t v);          /* LONG1 with 8 bytes */
/* torch._utils._rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size,
 * stride, False, OrderedDict()) */
void wt_pk_tensor(WtPickle *p, const char *type, const char *key, int64_t numel, int64_t offset,
                  int ndim, const int64_t *size, const int64_t *stride);
/* Resets p to "{'state_dict': {" and closes it with "}}" + STOP. */
void wt_pk_state_begin(WtPickle *p);
void wt_pk_state_end(WtPickle *p);
void wt_pk_free(WtPickle *p);

/* Opens path and asserts the status; prints and returns the message (owned by ctx). */
const char *wt_open_fails(LilyContext *ctx, const char *path, LilyStatus want);

#endif /* LILY_TESTS_WEIGHTS_TEST_H */
