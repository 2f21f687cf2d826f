/* core/npy.c - NumPy .npy reader and writer (see npy.h).
 * Format: "\x93NUMPY", major, minor, header length (u16 for 1.x, u32 for 2.x), then a Python
 * dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (1, 16, 64, 32), } padded
 * with spaces to a multiple of 64 bytes, then the raw data. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/context.h"
#include "core/npy.h"
#include "core/status.h"

static const char *find_key(const char *hdr, const char *key)
{
    const char *p = strstr(hdr, key);
    if (!p) return NULL;
    p += strlen(key);
    while (*p == '\'' || *p == '"' || *p == ':' || *p == ' ') p++;
    return p;
}

/* Rewrites Fortran-ordered data (first index fastest) in C order (last index fastest). */
static LilyStatus to_c_order(LilyContext *ctx, const char *path, LilyNpy *a)
{
    size_t n = (size_t)a->numel, es = a->dtype == LILY_DTYPE_F32 ? 4 : 8;
    unsigned char *dst = malloc(n * es), *src = a->data;
    if (!dst) return lily_error(ctx, LILY_ERR_NO_MEMORY, "%s: out of memory for %zu elements", path, n);
    int64_t idx[LILY_NPY_MAX_DIMS] = {0};
    for (size_t f = 0; f < n; f++) { /* f walks the file's order: idx[0] fastest */
        size_t c = 0;
        for (int d = 0; d < a->ndim; d++) c = c * (size_t)a->shape[d] + (size_t)idx[d];
        memcpy(dst + c * es, src + f * es, es);
        for (int d = 0; d < a->ndim && ++idx[d] == a->shape[d]; d++) idx[d] = 0;
    }
    free(a->data);
    a->data = dst;
    return LILY_OK;
}

LilyStatus lily_npy_read(LilyContext *ctx, const char *path, LilyNpy *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return lily_error(ctx, LILY_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    LilyStatus st = LILY_OK;
    char *hdr = NULL;
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        st = lily_error(ctx, LILY_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
        goto done;
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | ((size_t)pre[9] << 8);
    } else if (pre[6] == 2 || pre[6] == 3) {
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2) {
            st = lily_error(ctx, LILY_ERR_FORMAT, "%s: truncated header", path);
            goto done;
        }
        hlen = (size_t)pre[8] | ((size_t)pre[9] << 8) | ((size_t)b[0] << 16) | ((size_t)b[1] << 24);
    } else {
        st = lily_error(ctx, LILY_ERR_UNSUPPORTED, "%s: .npy version %d not supported", path, pre[6]);
        goto done;
    }
    if (hlen > (1u << 20)) {
        st = lily_error(ctx, LILY_ERR_FORMAT, "%s: header of %zu bytes is implausible", path, hlen);
        goto done;
    }
    hdr = malloc(hlen + 1);
    if (!hdr || fread(hdr, 1, hlen, f) != hlen) {
        st = lily_error(ctx, LILY_ERR_FORMAT, "%s: truncated header", path);
        goto done;
    }
    hdr[hlen] = '\0';
    const char *descr = find_key(hdr, "descr");
    const char *fo = find_key(hdr, "fortran_order");
    const char *shape = find_key(hdr, "shape");
    if (!descr || !fo || !shape || *shape != '(') {
        st = lily_error(ctx, LILY_ERR_FORMAT, "%s: header lacks descr/fortran_order/shape", path);
        goto done;
    }
    /* AudioSR's log-mel arrays are transposed views, which numpy saves in Fortran order. */
    int fortran = strncmp(fo, "True", 4) == 0;
    int src_size = 0, src_float = 0;
    if (strncmp(descr, "<f4", 3) == 0) src_size = 4, src_float = 1;
    else if (strncmp(descr, "<f8", 3) == 0) src_size = 8, src_float = 1;
    else if (strncmp(descr, "<i8", 3) == 0) src_size = 8, src_float = 0;
    else if (strncmp(descr, "<i4", 3) == 0) src_size = 4, src_float = 0;
    else {
        st = lily_error(ctx, LILY_ERR_UNSUPPORTED, "%s: dtype %.6s not supported (f4, f8, i4, i8)",
                        path, descr);
        goto done;
    }
    const char *p = shape + 1;
    out->numel = 1;
    while (*p && *p != ')') {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || out->ndim >= LILY_NPY_MAX_DIMS) {
            st = lily_error(ctx, LILY_ERR_FORMAT, "%s: bad shape in header", path);
            goto done;
        }
        out->shape[out->ndim++] = v;
        if (v > 0 && out->numel > INT64_MAX / v) {
            st = lily_error(ctx, LILY_ERR_FORMAT, "%s: shape overflows", path);
            goto done;
        }
        out->numel *= v;
        p = end;
    }
    out->dtype = src_float ? LILY_DTYPE_F32 : LILY_DTYPE_I64;
    size_t n = (size_t)out->numel;
    void *raw = malloc(n * (size_t)src_size + 1);
    out->data = malloc(n * (src_float ? 4 : 8) + 1);
    if (!raw || !out->data) {
        free(raw);
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "%s: out of memory for %zu elements", path, n);
        goto done;
    }
    if (fread(raw, (size_t)src_size, n, f) != n) {
        free(raw);
        st = lily_error(ctx, LILY_ERR_FORMAT, "%s: truncated data (%zu elements expected)", path, n);
        goto done;
    }
    if (src_float && src_size == 4) memcpy(out->data, raw, n * 4);
    else if (src_float) for (size_t i = 0; i < n; i++) ((float *)out->data)[i] = (float)((double *)raw)[i];
    else if (src_size == 8) memcpy(out->data, raw, n * 8);
    else for (size_t i = 0; i < n; i++) ((int64_t *)out->data)[i] = ((int32_t *)raw)[i];
    free(raw);
    if (fortran && out->ndim > 1 && n > 0) {
        st = to_c_order(ctx, path, out);
        if (st != LILY_OK) goto done;
    }
done:
    free(hdr);
    fclose(f);
    if (st != LILY_OK) lily_npy_free(out);
    return st;
}

void lily_npy_free(LilyNpy *npy)
{
    free(npy->data);
    memset(npy, 0, sizeof *npy);
}

LilyStatus lily_npy_write_f32(LilyContext *ctx, const char *path, const float *data, int ndim,
                              const int64_t *shape)
{
    char dict[512];
    int off = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        off += snprintf(dict + off, sizeof dict - (size_t)off, "%lld,%s", (long long)shape[i],
                        (i + 1 < ndim) ? " " : "");
        n *= (size_t)shape[i];
    }
    off += snprintf(dict + off, sizeof dict - (size_t)off, "), }");
    size_t total = 10 + (size_t)off + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)off + pad + 1;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return lily_error(ctx, LILY_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)off, f) == (size_t)off;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && fwrite(data, sizeof(float), n, f) == n;
    int err = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    if (!ok) {
        unlink(tmp);
        return lily_error(ctx, err == ENOSPC ? LILY_ERR_DISK_FULL : LILY_ERR_IO,
                          "%s: write failed: %s", path, strerror(err));
    }
    if (rename(tmp, path) != 0) {
        err = errno;
        unlink(tmp);
        return lily_error(ctx, LILY_ERR_IO, "%s: rename failed: %s", path, strerror(err));
    }
    return LILY_OK;
}
