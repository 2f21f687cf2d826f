/* weights/safetensors.c - safetensors files, read (memory-mapped) and written (atomically).
 *
 * Format (huggingface/safetensors, docs "Format"): 8 bytes little-endian N, then N bytes of
 * JSON {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [..], "data_offsets":
 * [begin, end]}, ...}, then the data section; offsets are relative to the data section and
 * tensors are packed without gaps. Lily pads the header with spaces so the data section starts
 * on an 8-byte boundary, and lays the data out by decreasing element size so every tensor is
 * aligned for its type; the header lists tensors in the order they were added. The model config
 * travels as YAML text in the metadata key "lily.config". */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "core/tensor.h"
#include "weights/json.h"
#include "weights/weights-impl.h"

#define ST_MAX_HEADER (100u << 20) /* the limit the reference implementation enforces */

static const struct {
    const char *name;
    LilyDType dtype;
    int size;
    int known; /* 0: Lily cannot hold it; 2: read as f32 (converted) */
} st_dtypes[] = {
    {"F32", LILY_DTYPE_F32, 4, 1},  {"BF16", LILY_DTYPE_BF16, 2, 1}, {"F16", LILY_DTYPE_F16, 2, 1},
    {"I64", LILY_DTYPE_I64, 8, 1},  {"I32", LILY_DTYPE_I32, 4, 1},   {"U8", LILY_DTYPE_U8, 1, 1},
    {"BOOL", LILY_DTYPE_U8, 1, 1},  {"F64", LILY_DTYPE_F32, 8, 2},   {"I16", LILY_DTYPE_I32, 2, 0},
    {"I8", LILY_DTYPE_U8, 1, 0},    {"U16", LILY_DTYPE_I32, 2, 0},   {"U32", LILY_DTYPE_I32, 4, 0},
    {"U64", LILY_DTYPE_I64, 8, 0},  {"F8_E4M3", LILY_DTYPE_U8, 1, 0}, {"F8_E5M2", LILY_DTYPE_U8, 1, 0},
};

static const char *st_name_of(LilyDType t)
{
    switch (t) {
    case LILY_DTYPE_F32: return "F32";
    case LILY_DTYPE_BF16: return "BF16";
    case LILY_DTYPE_F16: return "F16";
    case LILY_DTYPE_I64: return "I64";
    case LILY_DTYPE_I32: return "I32";
    case LILY_DTYPE_U8: return "U8";
    default: return NULL;
    }
}

static LilyStatus read_metadata(LilyContext *ctx, LilyWeights *w, const LilyJson *m)
{
    if (m->type != LILY_JSON_OBJECT)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: safetensors __metadata__ (header byte %zu) is "
                          "a %s, not an object", w->path, m->offset, lily_json_type_name(m->type));
    for (int i = 0; i < m->n; i++) {
        const LilyJson *v = m->items[i];
        if (v->type != LILY_JSON_STRING)
            return lily_error(ctx, LILY_ERR_FORMAT, "%s: safetensors metadata '%s' (header byte %zu) "
                              "is a %s; metadata values must be strings", w->path, m->keys[i],
                              v->offset, lily_json_type_name(v->type));
        LILY_TRY(lily_weights_push_metadata(ctx, w, m->keys[i], v->str));
    }
    return LILY_OK;
}

static LilyStatus read_tensor(LilyContext *ctx, LilyWeights *w, const char *name, const LilyJson *t,
                              const uint8_t *data, uint64_t data_size, uint64_t data_file_offset,
                              int index)
{
    if (strlen(name) == 0)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: a tensor with an empty name (header byte %zu)",
                          w->path, t->offset);
    const LilyJson *dt = lily_json_get(t, "dtype"), *shape = lily_json_get(t, "shape"),
                   *offs = lily_json_get(t, "data_offsets");
    if (t->type != LILY_JSON_OBJECT || !dt || dt->type != LILY_JSON_STRING || !shape ||
        shape->type != LILY_JSON_ARRAY || !offs || offs->type != LILY_JSON_ARRAY || offs->n != 2)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: tensor '%s' (header byte %zu) needs \"dtype\" "
                          "(a string), \"shape\" (a list) and \"data_offsets\" ([begin, end])",
                          w->path, name, t->offset);
    int di = -1;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(dt->str, st_dtypes[i].name) == 0) di = (int)i;
    if (di < 0)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: tensor '%s' has unknown dtype \"%s\"", w->path,
                          name, dt->str);
    if (!st_dtypes[di].known)
        return lily_error(ctx, LILY_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; Lily reads F32, "
                          "BF16, F16, F64, I64, I32, U8 and BOOL", w->path, name, dt->str);
    if (shape->n > LILY_MAX_DIMS)
        return lily_error(ctx, LILY_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions; Lily "
                          "handles at most %d", w->path, name, shape->n, LILY_MAX_DIMS);
    int64_t dims[LILY_MAX_DIMS];
    for (int i = 0; i < shape->n; i++) {
        const LilyJson *d = shape->items[i];
        if (d->type != LILY_JSON_NUMBER || !d->is_int || d->integer < 0)
            return lily_error(ctx, LILY_ERR_FORMAT, "%s: tensor '%s': shape entry %d (header byte "
                              "%zu) is not a non-negative integer", w->path, name, i, d->offset);
        dims[i] = d->integer;
    }
    for (int i = 0; i < 2; i++) {
        const LilyJson *o = offs->items[i];
        if (o->type != LILY_JSON_NUMBER || !o->is_int || o->integer < 0)
            return lily_error(ctx, LILY_ERR_FORMAT, "%s: tensor '%s': data_offsets (header byte %zu) "
                              "must be non-negative integers", w->path, name, o->offset);
    }
    uint64_t begin = (uint64_t)offs->items[0]->integer, end = (uint64_t)offs->items[1]->integer;
    int64_t numel = lily_weights_numel(shape->n, dims);
    int esize = st_dtypes[di].size;
    char shp[96];
    lily_dims_str(dims, shape->n, shp, sizeof shp);
    if (numel < 0 || (uint64_t)numel > UINT64_MAX / (uint64_t)esize)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: tensor '%s' has an impossible shape %s",
                          w->path, name, shp);
    uint64_t nbytes = (uint64_t)numel * (uint64_t)esize;
    if (end < begin || end - begin != nbytes)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] do not "
                          "match %s %s (%llu bytes): damaged header", w->path, name,
                          (unsigned long long)begin, (unsigned long long)end, dt->str, shp,
                          (unsigned long long)nbytes);
    if (end > data_size)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: tensor '%s' (bytes %llu..%llu of the data "
                          "section, file offset %llu) runs past the end of the file (%llu data "
                          "bytes): the file is truncated", w->path, name, (unsigned long long)begin,
                          (unsigned long long)end, (unsigned long long)(data_file_offset + begin),
                          (unsigned long long)data_size);
    const uint8_t *ptr = data + begin;
    int convert = st_dtypes[di].known == 2;
    if (convert || (numel > 0 && (uintptr_t)ptr % (uintptr_t)esize != 0)) {
        /* F64 is narrowed to f32; a misaligned tensor (another writer's layout) is copied. */
        size_t out_size = convert ? 4 : (size_t)esize;
        uint8_t *buf = malloc(numel ? (size_t)numel * out_size : 1);
        if (!buf)
            return lily_error(ctx, LILY_ERR_NO_MEMORY, "%s: out of memory copying tensor '%s'",
                              w->path, name);
        if (convert) {
            for (int64_t i = 0; i < numel; i++) {
                double v;
                memcpy(&v, ptr + (size_t)i * 8, 8);
                float f = (float)v;
                memcpy(buf + (size_t)i * 4, &f, 4);
            }
            nbytes = (uint64_t)numel * 4;
        } else {
            memcpy(buf, ptr, (size_t)nbytes);
        }
        LILY_TRY(lily_weights_own(ctx, w, buf));
        ptr = buf;
    }
    return lily_weights_push(ctx, w, name, st_dtypes[di].dtype, shape->n, dims, ptr, (size_t)nbytes,
                             index, data_file_offset + begin);
}

LilyStatus lily_safetensors_read(LilyContext *ctx, LilyWeights *w)
{
    const uint8_t *p = w->map;
    uint64_t size = w->map_size, hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > size - 8)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: the safetensors header length (%llu bytes) runs "
                          "past the end of the file (%llu bytes): the file is truncated or not a "
                          "safetensors file", w->path, (unsigned long long)hlen,
                          (unsigned long long)size);
    if (hlen > ST_MAX_HEADER)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: the safetensors header is %llu bytes, more than "
                          "the format's 100 MB limit", w->path, (unsigned long long)hlen);
    char origin[600];
    snprintf(origin, sizeof origin, "%s (safetensors)", w->path);
    LilyJson *root = NULL;
    LILY_TRY(lily_json_parse(ctx, origin, (const char *)p + 8, (size_t)hlen, &root));
    LilyStatus st = LILY_OK;
    if (root->type != LILY_JSON_OBJECT) {
        st = lily_error(ctx, LILY_ERR_FORMAT, "%s: the safetensors header is a JSON %s, not an "
                        "object", w->path, lily_json_type_name(root->type));
        goto done;
    }
    const uint8_t *data = p + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;
    int index = 0;
    for (int i = 0; i < root->n && st == LILY_OK; i++) {
        if (strcmp(root->keys[i], "__metadata__") == 0)
            st = read_metadata(ctx, w, root->items[i]);
        else
            st = read_tensor(ctx, w, root->keys[i], root->items[i], data, data_size, 8 + hlen,
                             index++);
    }
done:
    lily_json_free(root);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Writer                                                                                    */
/* ---------------------------------------------------------------------------------------- */

typedef struct WEntry {
    char *name;
    LilyDType dst, src;
    int ndim;
    int64_t shape[LILY_MAX_DIMS];
    int64_t numel;
    const void *data;
    LilyTensorFillFn fill;
    void *fill_user;
    uint64_t offset, nbytes;
} WEntry;

struct LilySafetensorsWriter {
    LilyContext *ctx;
    WEntry *e;
    int n, cap;
    char **mkeys, **mvalues;
    int n_meta, cap_meta;
};

LilyStatus lily_safetensors_writer_new(LilyContext *ctx, LilySafetensorsWriter **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return lily_error(ctx, LILY_ERR_NO_MEMORY, "safetensors writer: out of memory");
    (*out)->ctx = ctx;
    return LILY_OK;
}

void lily_safetensors_writer_free(LilySafetensorsWriter *wr)
{
    if (!wr) return;
    for (int i = 0; i < wr->n; i++) free(wr->e[i].name);
    free(wr->e);
    for (int i = 0; i < wr->n_meta; i++) {
        free(wr->mkeys[i]);
        free(wr->mvalues[i]);
    }
    free(wr->mkeys);
    free(wr->mvalues);
    free(wr);
}

static int is_float(LilyDType t)
{
    return t == LILY_DTYPE_F32 || t == LILY_DTYPE_BF16 || t == LILY_DTYPE_F16;
}

static LilyStatus add_entry(LilySafetensorsWriter *wr, const char *name, LilyDType dst,
                            LilyDType src, int ndim, const int64_t *shape, const void *data,
                            LilyTensorFillFn fill, void *user)
{
    LilyContext *ctx = wr->ctx;
    if (!name || !name[0] || strcmp(name, "__metadata__") == 0)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "safetensors writer: invalid tensor name "
                          "'%s'", name ? name : "(null)");
    if (!st_name_of(dst) || !st_name_of(src))
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "safetensors writer: tensor '%s': bad "
                          "dtype", name);
    if (dst != src && !(is_float(dst) && is_float(src)))
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "safetensors writer: tensor '%s': cannot "
                          "convert %s to %s (only between f32, bf16 and f16)", name,
                          lily_dtype_name(src), lily_dtype_name(dst));
    if (ndim < 0 || ndim > LILY_MAX_DIMS)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "safetensors writer: tensor '%s' has %d "
                          "dimensions", name, ndim);
    int64_t numel = lily_weights_numel(ndim, shape);
    if (numel < 0)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "safetensors writer: tensor '%s' has a "
                          "bad shape", name);
    if (numel > 0 && !data && !fill)
        return lily_error(ctx, LILY_ERR_INVALID_ARGUMENT, "safetensors writer: tensor '%s' has no "
                          "data", name);
    if (wr->n == wr->cap) {
        int cap = wr->cap ? wr->cap * 2 : 256;
        WEntry *e = realloc(wr->e, (size_t)cap * sizeof *e);
        if (!e) return lily_error(ctx, LILY_ERR_NO_MEMORY, "safetensors writer: out of memory");
        wr->e = e;
        wr->cap = cap;
    }
    WEntry *e = &wr->e[wr->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    if (!e->name) return lily_error(ctx, LILY_ERR_NO_MEMORY, "safetensors writer: out of memory");
    e->dst = dst;
    e->src = src;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->numel = numel;
    e->data = data;
    e->fill = fill;
    e->fill_user = user;
    e->nbytes = (uint64_t)numel * lily_dtype_size(dst);
    wr->n++;
    return LILY_OK;
}

LilyStatus lily_safetensors_writer_add(LilySafetensorsWriter *wr, const char *name,
                                       LilyDType dst_dtype, LilyDType src_dtype, int ndim,
                                       const int64_t *shape, const void *data)
{
    return add_entry(wr, name, dst_dtype, src_dtype, ndim, shape, data, NULL, NULL);
}

LilyStatus lily_safetensors_writer_add_generated(LilySafetensorsWriter *wr, const char *name,
                                                 LilyDType dst_dtype, int ndim,
                                                 const int64_t *shape, LilyTensorFillFn fill,
                                                 void *user)
{
    if (!fill)
        return lily_error(wr->ctx, LILY_ERR_INVALID_ARGUMENT, "safetensors writer: tensor '%s' "
                          "has no generator", name ? name : "(null)");
    if (!is_float(dst_dtype))
        return lily_error(wr->ctx, LILY_ERR_INVALID_ARGUMENT, "safetensors writer: generated "
                          "tensor '%s' must be f32, bf16 or f16", name ? name : "(null)");
    return add_entry(wr, name, dst_dtype, LILY_DTYPE_F32, ndim, shape, NULL, fill, user);
}

LilyStatus lily_safetensors_writer_set_metadata(LilySafetensorsWriter *wr, const char *key,
                                                const char *value)
{
    for (int i = 0; i < wr->n_meta; i++) {
        if (strcmp(wr->mkeys[i], key) == 0) {
            char *v = strdup(value);
            if (!v) return lily_error(wr->ctx, LILY_ERR_NO_MEMORY, "safetensors writer: out of memory");
            free(wr->mvalues[i]);
            wr->mvalues[i] = v;
            return LILY_OK;
        }
    }
    if (wr->n_meta == wr->cap_meta) {
        int cap = wr->cap_meta ? wr->cap_meta * 2 : 8;
        char **k = realloc(wr->mkeys, (size_t)cap * sizeof *k);
        if (k) wr->mkeys = k;
        char **v = k ? realloc(wr->mvalues, (size_t)cap * sizeof *v) : NULL;
        if (v) wr->mvalues = v;
        if (!k || !v) return lily_error(wr->ctx, LILY_ERR_NO_MEMORY, "safetensors writer: out of memory");
        wr->cap_meta = cap;
    }
    wr->mkeys[wr->n_meta] = strdup(key);
    wr->mvalues[wr->n_meta] = strdup(value);
    wr->n_meta++;
    if (!wr->mkeys[wr->n_meta - 1] || !wr->mvalues[wr->n_meta - 1])
        return lily_error(wr->ctx, LILY_ERR_NO_MEMORY, "safetensors writer: out of memory");
    return LILY_OK;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

static LilyStatus check_unique(LilySafetensorsWriter *wr)
{
    char ***names = malloc((size_t)(wr->n ? wr->n : 1) * sizeof *names);
    if (!names) return lily_error(wr->ctx, LILY_ERR_NO_MEMORY, "safetensors writer: out of memory");
    for (int i = 0; i < wr->n; i++) names[i] = &wr->e[i].name;
    qsort(names, (size_t)wr->n, sizeof *names, cmp_name);
    LilyStatus st = LILY_OK;
    for (int i = 1; i < wr->n && st == LILY_OK; i++)
        if (strcmp(*names[i - 1], *names[i]) == 0)
            st = lily_error(wr->ctx, LILY_ERR_INVALID_ARGUMENT, "safetensors writer: tensor '%s' "
                            "added twice", *names[i]);
    free(names);
    return st;
}

static LilyStatus build_header(LilySafetensorsWriter *wr, LilyStrBuf *h)
{
    /* Data layout: decreasing element size, so each tensor starts aligned for its type. */
    uint64_t off = 0;
    for (size_t esz = 8; esz >= 1; esz /= 2)
        for (int i = 0; i < wr->n; i++)
            if (lily_dtype_size(wr->e[i].dst) == esz) {
                wr->e[i].offset = off;
                off += wr->e[i].nbytes;
            }
    lily_strbuf_puts(h, "{");
    int first = 1;
    if (wr->n_meta) {
        lily_strbuf_puts(h, "\"__metadata__\":{");
        for (int i = 0; i < wr->n_meta; i++) {
            if (i) lily_strbuf_puts(h, ",");
            lily_strbuf_json_string(h, wr->mkeys[i]);
            lily_strbuf_puts(h, ":");
            lily_strbuf_json_string(h, wr->mvalues[i]);
        }
        lily_strbuf_puts(h, "}");
        first = 0;
    }
    for (int i = 0; i < wr->n; i++) {
        const WEntry *e = &wr->e[i];
        if (!first) lily_strbuf_puts(h, ",");
        first = 0;
        lily_strbuf_json_string(h, e->name);
        lily_strbuf_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", st_name_of(e->dst));
        for (int d = 0; d < e->ndim; d++) lily_strbuf_printf(h, "%s%lld", d ? "," : "", (long long)e->shape[d]);
        lily_strbuf_printf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)e->offset,
                           (unsigned long long)(e->offset + e->nbytes));
    }
    lily_strbuf_puts(h, "}");
    while ((8 + h->len) % 8) lily_strbuf_puts(h, " ");
    if (h->failed) return lily_error(wr->ctx, LILY_ERR_NO_MEMORY, "safetensors writer: out of memory");
    return LILY_OK;
}

static LilyStatus write_all(LilyContext *ctx, int fd, const char *path, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = k < 0 ? errno : EIO;
            if (e == ENOSPC || e == EDQUOT)
                return lily_error(ctx, LILY_ERR_DISK_FULL, "writing %s: no space left on the "
                                  "device; free some space and run again", path);
            return lily_error(ctx, LILY_ERR_IO, "writing %s: %s", path, strerror(e));
        }
        p += k;
        n -= (size_t)k;
    }
    return LILY_OK;
}

/* The process umask, read without changing it (umask() would, for every thread). */
static mode_t current_umask(void)
{
    mode_t mask = 022;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return mask;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        unsigned v;
        if (sscanf(line, "Umask: %o", &v) == 1) {
            mask = (mode_t)v;
            break;
        }
    }
    fclose(f);
    return mask;
}

#define CONVERT_CHUNK (1 << 20) /* elements per conversion pass */

static void convert(const void *src, LilyDType st, float *tmp, void *dst, LilyDType dt, size_t n)
{
    const float *f = tmp;
    if (st == LILY_DTYPE_F32) {
        f = src;
    } else {
        const uint16_t *h = src;
        for (size_t i = 0; i < n; i++)
            tmp[i] = st == LILY_DTYPE_BF16 ? lily_bf16_to_f32(h[i]) : lily_f16_to_f32(h[i]);
    }
    if (dt == LILY_DTYPE_F32) {
        if (f != dst) memcpy(dst, f, n * 4);
        return;
    }
    uint16_t *o = dst;
    for (size_t i = 0; i < n; i++) o[i] = dt == LILY_DTYPE_BF16 ? lily_f32_to_bf16(f[i]) : lily_f32_to_f16(f[i]);
}

static LilyStatus write_entry(LilySafetensorsWriter *wr, int fd, const char *path, const WEntry *e,
                              uint8_t *buf, float *tmp, uint64_t *done, uint64_t total,
                              void (*progress)(uint64_t, uint64_t, void *), void *user)
{
    size_t dsz = lily_dtype_size(e->dst), ssz = lily_dtype_size(e->src);
    for (int64_t first = 0; first < e->numel; first += CONVERT_CHUNK) {
        size_t n = (size_t)(e->numel - first < CONVERT_CHUNK ? e->numel - first : CONVERT_CHUNK);
        const void *out;
        if (e->fill) {
            LILY_TRY(e->fill(e->fill_user, (uint64_t)first, n, tmp));
            convert(tmp, LILY_DTYPE_F32, tmp, buf, e->dst, n);
            out = buf;
        } else if (e->src == e->dst) {
            out = (const uint8_t *)e->data + (size_t)first * ssz;
        } else {
            convert((const uint8_t *)e->data + (size_t)first * ssz, e->src, tmp, buf, e->dst, n);
            out = buf;
        }
        LILY_TRY(write_all(wr->ctx, fd, path, out, n * dsz));
        *done += n * dsz;
        if (progress) progress(*done, total, user);
    }
    return LILY_OK;
}

LilyStatus lily_safetensors_writer_write(LilySafetensorsWriter *wr, const char *path,
                                         void (*progress)(uint64_t done, uint64_t total, void *user),
                                         void *user)
{
    LilyContext *ctx = wr->ctx;
    LILY_TRY(check_unique(wr));
    LilyStrBuf h = {0};
    LilyStatus st = build_header(wr, &h);
    if (st != LILY_OK) {
        lily_strbuf_free(&h);
        return st;
    }
    char *dir_copy = strdup(path), *base_copy = strdup(path);
    size_t tlen = strlen(path) + 32;
    char *tmp_path = malloc(tlen);
    uint8_t *buf = malloc(CONVERT_CHUNK * 4);
    float *tmp = malloc(CONVERT_CHUNK * sizeof(float));
    int fd = -1;
    if (!dir_copy || !base_copy || !tmp_path || !buf || !tmp) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "safetensors writer: out of memory");
        goto done;
    }
    const char *dir = dirname(dir_copy);
    snprintf(tmp_path, tlen, "%s/.%s.tmp-XXXXXX", dir, basename(base_copy));
    fd = mkstemp(tmp_path);
    if (fd < 0) {
        st = lily_error(ctx, errno == ENOSPC ? LILY_ERR_DISK_FULL : LILY_ERR_IO, "cannot create a "
                        "temporary file in '%s' for %s: %s", dir, path, strerror(errno));
        goto done;
    }
    /* mkstemp makes the file private (0600); a model file is as readable as any other. */
    (void)fchmod(fd, 0666 & ~current_umask());
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    LILY_CHECK(st, write_all(ctx, fd, tmp_path, len8, 8), fail);
    LILY_CHECK(st, write_all(ctx, fd, tmp_path, h.s, h.len), fail);
    uint64_t total = 0, done_bytes = 0;
    for (int i = 0; i < wr->n; i++) total += wr->e[i].nbytes;
    if (progress) progress(0, total, user);
    for (size_t esz = 8; esz >= 1; esz /= 2)
        for (int i = 0; i < wr->n; i++)
            if (lily_dtype_size(wr->e[i].dst) == esz)
                LILY_CHECK(st, write_entry(wr, fd, tmp_path, &wr->e[i], buf, tmp, &done_bytes, total,
                                           progress, user), fail);
    if (fsync(fd) != 0) {
        st = lily_error(ctx, errno == ENOSPC ? LILY_ERR_DISK_FULL : LILY_ERR_IO, "writing %s: "
                        "fsync: %s", tmp_path, strerror(errno));
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        st = lily_error(ctx, LILY_ERR_IO, "writing %s: close: %s", tmp_path, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (rename(tmp_path, path) != 0) {
        st = lily_error(ctx, LILY_ERR_IO, "cannot move %s to %s: %s", tmp_path, path, strerror(errno));
        goto fail;
    }
    /* Make the rename itself durable. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    st = LILY_OK;
    goto done;
fail:
    if (fd >= 0) close(fd);
    fd = -1;
    unlink(tmp_path);
done:
    free(dir_copy);
    free(base_copy);
    free(tmp_path);
    free(buf);
    free(tmp);
    lily_strbuf_free(&h);
    return st;
}
