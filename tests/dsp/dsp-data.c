/* tests/dsp/dsp-data.c - see dsp-data.h. A minimal .npy (v1/v2, C order) reader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "dsp-data.h"

#ifndef LILY_DSP_DATA_DIR
#error "LILY_DSP_DATA_DIR must name tests/data/dsp"
#endif

void dd_load(const char *name, DdArray *out)
{
    memset(out, 0, sizeof *out);
    char *path = g_build_filename(LILY_DSP_DATA_DIR, name, NULL);
    gchar *buf = NULL;
    gsize len = 0;
    GError *err = NULL;
    if (!g_file_get_contents(path, &buf, &len, &err)) {
        g_printerr("cannot read %s: %s (run tests/data/dsp/gen-vectors.py)\n", path, err->message);
        g_assert_not_reached();
    }
    g_assert_true(len > 10 && memcmp(buf, "\x93NUMPY", 6) == 0);
    const int major = (unsigned char)buf[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = (unsigned char)buf[8] | ((size_t)(unsigned char)buf[9] << 8);
        off = 10;
    } else {
        hlen = (unsigned char)buf[8] | ((size_t)(unsigned char)buf[9] << 8) |
               ((size_t)(unsigned char)buf[10] << 16) | ((size_t)(unsigned char)buf[11] << 24);
        off = 12;
    }
    g_assert_cmpuint(off + hlen, <=, len);
    char *hdr = g_strndup(buf + off, hlen);
    g_assert_null(strstr(hdr, "'fortran_order': True"));
    int kind = 0; /* 1 f4, 2 f8, 3 i8 */
    if (strstr(hdr, "'<f4'")) kind = 1;
    else if (strstr(hdr, "'<f8'")) kind = 2;
    else if (strstr(hdr, "'<i8'")) kind = 3;
    if (!kind) g_printerr("%s: unsupported dtype in header %s\n", path, hdr);
    g_assert_cmpint(kind, !=, 0);
    const char *sh = strstr(hdr, "'shape': (");
    g_assert_nonnull(sh);
    sh += strlen("'shape': (");
    out->numel = 1;
    while (*sh && *sh != ')') {
        char *end;
        long long v = strtoll(sh, &end, 10);
        if (end == sh) break;
        g_assert_cmpint(out->ndim, <, 4);
        out->shape[out->ndim++] = v;
        out->numel *= (size_t)v;
        sh = end;
        while (*sh == ',' || *sh == ' ') sh++;
    }
    const size_t esize = kind == 1 ? 4 : 8;
    const char *data = buf + off + hlen;
    g_assert_cmpuint(len - off - hlen, >=, out->numel * esize);
    out->data = g_new(double, out->numel ? out->numel : 1);
    for (size_t i = 0; i < out->numel; i++) {
        if (kind == 1) {
            float f;
            memcpy(&f, data + 4 * i, 4);
            out->data[i] = f;
        } else if (kind == 2) {
            memcpy(&out->data[i], data + 8 * i, 8);
        } else {
            int64_t v;
            memcpy(&v, data + 8 * i, 8);
            out->data[i] = (double)v;
        }
    }
    g_free(hdr);
    g_free(buf);
    g_free(path);
}

void dd_free(DdArray *a)
{
    g_free(a->data);
    memset(a, 0, sizeof *a);
}

float *dd_floats(const DdArray *a)
{
    float *f = g_new(float, a->numel ? a->numel : 1);
    for (size_t i = 0; i < a->numel; i++) f[i] = (float)a->data[i];
    return f;
}
