/* tests/weights/weights-test.c - see weights-test.h. */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "common/test-util.h"
#include "weights-test.h"

LilyContext *wt_context(void)
{
    LilyContext *ctx = NULL;
    char err[256] = "";
    g_assert_cmpint(lily_context_new(NULL, &ctx, err, sizeof err), ==, LILY_OK);
    return ctx;
}

char *wt_fixture(const char *name) { return g_build_filename(LILY_WEIGHTS_FIXTURES, name, NULL); }

char *wt_tmp(const char *name) { return g_build_filename(lt_tmpdir(), name, NULL); }

uint8_t *wt_read(const char *path, size_t *len)
{
    gchar *data = NULL;
    gsize n = 0;
    GError *err = NULL;
    g_file_get_contents(path, &data, &n, &err);
    g_assert_no_error(err);
    *len = n;
    return (uint8_t *)data;
}

void wt_write(const char *path, const void *data, size_t len)
{
    GError *err = NULL;
    g_file_set_contents(path, data, (gssize)len, &err);
    g_assert_no_error(err);
}

size_t wt_find(const uint8_t *hay, size_t len, const void *needle, size_t nlen)
{
    for (size_t i = 0; i + nlen <= len; i++)
        if (memcmp(hay + i, needle, nlen) == 0) return i;
    g_assert_not_reached();
    return 0;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | ((uint32_t)rd16(p + 2) << 16); }
static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

gboolean wt_zip_locate(const uint8_t *zip, size_t len, const char *name, size_t *local,
                       size_t *data, size_t *central)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i + 46 + nlen <= len; i++) {
        if (rd32(zip + i) != 0x02014b50u || rd16(zip + i + 28) != nlen ||
            memcmp(zip + i + 46, name, nlen) != 0)
            continue;
        size_t l = rd32(zip + i + 42);
        *central = i;
        *local = l;
        *data = l + 30 + rd16(zip + l + 26) + rd16(zip + l + 28);
        return TRUE;
    }
    return FALSE;
}

void wt_zip_fix_crc(uint8_t *zip, size_t len, const char *name)
{
    size_t local, data, central;
    g_assert_true(wt_zip_locate(zip, len, name, &local, &data, &central));
    uint32_t size = rd32(zip + central + 24);
    uint32_t crc = (uint32_t)crc32(0L, zip + data, size);
    wr32(zip + local + 14, crc);
    wr32(zip + central + 16, crc);
}

typedef struct Buf {
    uint8_t *p;
    size_t n;
} Buf;

static void put(Buf *b, const void *d, size_t n)
{
    b->p = g_realloc(b->p, b->n + n);
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put16(Buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}

static void put32(Buf *b, uint32_t v)
{
    put16(b, (uint16_t)v);
    put16(b, (uint16_t)(v >> 16));
}

void wt_write_torch_zip(const char *path, const void *pickle, size_t plen, int n_storages,
                        const void *const *storages, const size_t *sizes)
{
    Buf out = {0}, cd = {0};
    int n = n_storages + 1;
    for (int i = 0; i < n; i++) {
        char name[64];
        const void *d = i == 0 ? pickle : storages[i - 1];
        size_t len = i == 0 ? plen : sizes[i - 1];
        if (i == 0) snprintf(name, sizeof name, "t/data.pkl");
        else snprintf(name, sizeof name, "t/data/%d", i - 1);
        uint32_t crc = (uint32_t)crc32(0L, d, (uInt)len), off = (uint32_t)out.n;
        uint16_t nl = (uint16_t)strlen(name);
        put32(&out, 0x04034b50u);
        put16(&out, 20), put16(&out, 0), put16(&out, 0), put16(&out, 0), put16(&out, 0);
        put32(&out, crc), put32(&out, (uint32_t)len), put32(&out, (uint32_t)len);
        put16(&out, nl), put16(&out, 0);
        put(&out, name, nl);
        put(&out, d, len);
        put32(&cd, 0x02014b50u);
        put16(&cd, 20), put16(&cd, 20), put16(&cd, 0), put16(&cd, 0), put16(&cd, 0), put16(&cd, 0);
        put32(&cd, crc), put32(&cd, (uint32_t)len), put32(&cd, (uint32_t)len);
        put16(&cd, nl), put16(&cd, 0), put16(&cd, 0), put16(&cd, 0), put16(&cd, 0);
        put32(&cd, 0), put32(&cd, off);
        put(&cd, name, nl);
    }
    uint32_t cd_off = (uint32_t)out.n;
    put(&out, cd.p, cd.n);
    put32(&out, 0x06054b50u);
    put16(&out, 0), put16(&out, 0), put16(&out, (uint16_t)n), put16(&out, (uint16_t)n);
    put32(&out, (uint32_t)cd.n), put32(&out, cd_off), put16(&out, 0);
    wt_write(path, out.p, out.n);
    g_free(out.p);
    g_free(cd.p);
}

const char *wt_open_fails(LilyContext *ctx, const char *path, LilyStatus want)
{
    LilyWeights *w = (LilyWeights *)0x1;
    LilyStatus st = lily_weights_open(ctx, path, &w);
    g_test_message("%s -> %s: %s", path, lily_status_name(st), lily_context_error(ctx));
    g_assert_cmpstr(lily_status_name(st), ==, lily_status_name(want));
    g_assert_null(w);
    g_assert_nonnull(strstr(lily_context_error(ctx), path));
    return lily_context_error(ctx);
}

void wt_pk_bytes(WtPickle *p, const void *d, size_t n)
{
    p->b = g_realloc(p->b, p->n + n);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

void wt_pk_raw(WtPickle *p, const char *s) { wt_pk_bytes(p, s, strlen(s)); }

void wt_pk_str(WtPickle *p, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    uint8_t h[5] = {'X', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    wt_pk_bytes(p, h, 5);
    wt_pk_raw(p, s);
}

void wt_pk_int(WtPickle *p, int64_t v)
{
    uint8_t h[10] = {0x8a, 8};
    for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)v >> (8 * i));
    wt_pk_bytes(p, h, 10);
}

void wt_pk_tensor(WtPickle *p, const char *type, const char *key, int64_t numel, int64_t offset,
                  int ndim, const int64_t *size, const int64_t *stride)
{
    wt_pk_raw(p, "ctorch._utils\n_rebuild_tensor_v2\n((");
    wt_pk_str(p, "storage");
    wt_pk_raw(p, "ctorch\n");
    wt_pk_raw(p, type);
    wt_pk_raw(p, "\n");
    wt_pk_str(p, key);
    wt_pk_str(p, "cpu");
    wt_pk_int(p, numel);
    wt_pk_raw(p, "tQ");
    wt_pk_int(p, offset);
    wt_pk_raw(p, "(");
    for (int i = 0; i < ndim; i++) wt_pk_int(p, size[i]);
    wt_pk_raw(p, "t(");
    for (int i = 0; i < ndim; i++) wt_pk_int(p, stride[i]);
    wt_pk_raw(p, "t\x89" "ccollections\nOrderedDict\n)RtR");
}

void wt_pk_state_begin(WtPickle *p)
{
    p->n = 0;
    wt_pk_raw(p, "\x80\x02}");
    wt_pk_str(p, "state_dict");
    wt_pk_raw(p, "}(");
}

void wt_pk_state_end(WtPickle *p) { wt_pk_raw(p, "us."); }

void wt_pk_free(WtPickle *p)
{
    g_free(p->b);
    p->b = NULL;
    p->n = 0;
}
