/* weights/weights.c - opening a model file: map it, detect the container from its first bytes,
 * let the matching reader fill the tensor list, and answer lookups by name.
 *
 * Detection follows the content, never the file name (stable-diffusion.cpp's init_from_file):
 *   "PK\x03\x04"                      PyTorch zip archive (torch.save since 1.6, AudioSR's .bin)
 *   u64 LE header length, then '{'    safetensors (Lily model files)
 *   0x80 (pickle PROTO)               legacy PyTorch file (torch.save before 1.6)
 * The file is memory-mapped read-only; contiguous tensors point into the mapping. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "weights/weights-impl.h"

int64_t lily_weights_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

/* FNV-1a: tensor names are short and this is only an index. */
static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int slot_lookup(const LilyWeights *w, const char *name, size_t *slot_out)
{
    if (!w->n_slots) return -1;
    size_t mask = w->n_slots - 1;
    size_t s = (size_t)name_hash(name) & mask;
    for (;;) {
        int v = w->slots[s];
        if (v == 0) {
            if (slot_out) *slot_out = s;
            return -1;
        }
        if (strcmp(w->tensors[v - 1].name, name) == 0) return v - 1;
        s = (s + 1) & mask;
    }
}

static LilyStatus grow_slots(LilyContext *ctx, LilyWeights *w)
{
    size_t n = w->n_slots ? w->n_slots * 2 : 64;
    int *slots = calloc(n, sizeof *slots);
    if (!slots) return lily_error(ctx, LILY_ERR_NO_MEMORY, "weights: out of memory indexing %s", w->path);
    free(w->slots);
    w->slots = slots;
    w->n_slots = n;
    for (int i = 0; i < w->n; i++) {
        size_t s;
        slot_lookup(w, w->tensors[i].name, &s);
        w->slots[s] = i + 1;
    }
    return LILY_OK;
}

LilyStatus lily_weights_push(LilyContext *ctx, LilyWeights *w, const char *name, LilyDType dtype,
                             int ndim, const int64_t *shape, const void *data, size_t nbytes,
                             int storage, uint64_t file_offset)
{
    if (!name[0]) return lily_error(ctx, LILY_ERR_FORMAT, "%s: a tensor has an empty name", w->path);
    if (ndim < 0 || ndim > LILY_MAX_DIMS)
        return lily_error(ctx, LILY_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions; Lily handles "
                          "at most %d", w->path, name, ndim, LILY_MAX_DIMS);
    if ((size_t)(w->n + 1) * 2 > w->n_slots) LILY_TRY(grow_slots(ctx, w));
    size_t slot;
    if (slot_lookup(w, name, &slot) >= 0)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: tensor '%s' appears twice", w->path, name);
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 256;
        LilyWeight *t = realloc(w->tensors, (size_t)cap * sizeof *t);
        if (!t) return lily_error(ctx, LILY_ERR_NO_MEMORY, "weights: out of memory reading %s", w->path);
        w->tensors = t;
        w->cap = cap;
    }
    LilyWeight *t = &w->tensors[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return lily_error(ctx, LILY_ERR_NO_MEMORY, "weights: out of memory reading %s", w->path);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = nbytes;
    t->storage = storage;
    t->file_offset = file_offset;
    w->slots[slot] = ++w->n;
    return LILY_OK;
}

LilyStatus lily_weights_push_metadata(LilyContext *ctx, LilyWeights *w, const char *key,
                                      const char *value)
{
    char *v = strdup(value);
    if (!v) return lily_error(ctx, LILY_ERR_NO_MEMORY, "weights: out of memory reading %s", w->path);
    for (int i = 0; i < w->n_meta; i++) {
        if (strcmp(w->meta_keys[i], key) == 0) {
            free(w->meta_values[i]);
            w->meta_values[i] = v;
            return LILY_OK;
        }
    }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? w->cap_meta * 2 : 8;
        char **k = realloc(w->meta_keys, (size_t)cap * sizeof *k);
        if (k) w->meta_keys = k;
        char **vv = k ? realloc(w->meta_values, (size_t)cap * sizeof *vv) : NULL;
        if (vv) w->meta_values = vv;
        if (!k || !vv) {
            free(v);
            return lily_error(ctx, LILY_ERR_NO_MEMORY, "weights: out of memory reading %s", w->path);
        }
        w->cap_meta = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "weights: out of memory reading %s", w->path);
    }
    w->meta_keys[w->n_meta] = k;
    w->meta_values[w->n_meta] = v;
    w->n_meta++;
    return LILY_OK;
}

LilyStatus lily_weights_own(LilyContext *ctx, LilyWeights *w, void *buf)
{
    if (w->n_owned == w->cap_owned) {
        int cap = w->cap_owned ? w->cap_owned * 2 : 16;
        void **o = realloc(w->owned, (size_t)cap * sizeof *o);
        if (!o) {
            free(buf);
            return lily_error(ctx, LILY_ERR_NO_MEMORY, "weights: out of memory reading %s", w->path);
        }
        w->owned = o;
        w->cap_owned = cap;
    }
    w->owned[w->n_owned++] = buf;
    return LILY_OK;
}

static LilyStatus map_file(LilyContext *ctx, LilyWeights *w)
{
    int fd = open(w->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lily_error(ctx, LILY_ERR_IO, "cannot open model file '%s': %s", w->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return lily_error(ctx, LILY_ERR_IO, "cannot stat '%s': %s", w->path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return lily_error(ctx, LILY_ERR_IO, "'%s' is not a regular file", w->path);
    }
    if (st.st_size == 0) {
        close(fd);
        return lily_error(ctx, LILY_ERR_FORMAT, "'%s' is empty (0 bytes): not a model file; was "
                          "a download or a conversion interrupted?", w->path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return lily_error(ctx, LILY_ERR_IO, "cannot map '%s' (%lld bytes): %s", w->path,
                          (long long)st.st_size, strerror(e));
    w->map = p;
    w->map_size = (size_t)st.st_size;
    return LILY_OK;
}

static bool looks_like_safetensors(const uint8_t *p, size_t n)
{
    if (n < 9) return false;
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = (len << 8) | p[i];
    /* The header is JSON; the first non-blank byte is '{'. */
    return p[8] == '{' && len >= 2;
}

LilyStatus lily_weights_open(LilyContext *ctx, const char *path, LilyWeights **out)
{
    *out = NULL;
    LilyWeights *w = calloc(1, sizeof *w);
    if (!w) return lily_error(ctx, LILY_ERR_NO_MEMORY, "weights: out of memory");
    w->path = strdup(path ? path : "");
    LilyStatus st;
    if (!w->path) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "weights: out of memory");
        goto fail;
    }
    LILY_CHECK(st, map_file(ctx, w), fail);
    const uint8_t *p = w->map;
    size_t n = w->map_size;
    if (n >= 4 && memcmp(p, "PK\x03\x04", 4) == 0) {
        w->format = LILY_WEIGHTS_TORCH_ZIP;
        st = lily_torch_zip_read(ctx, w);
    } else if (n >= 4 && memcmp(p, "PK\x05\x06", 4) == 0) {
        st = lily_error(ctx, LILY_ERR_FORMAT, "%s: an empty zip archive, not a PyTorch checkpoint", path);
    } else if (looks_like_safetensors(p, n)) {
        w->format = LILY_WEIGHTS_SAFETENSORS;
        st = lily_safetensors_read(ctx, w);
    } else if (p[0] == 0x80) {
        w->format = LILY_WEIGHTS_TORCH_LEGACY;
        st = lily_torch_legacy_read(ctx, w);
    } else {
        char hex[64] = "";
        for (size_t i = 0; i < n && i < 8; i++)
            snprintf(hex + strlen(hex), sizeof hex - strlen(hex), "%02x ", p[i]);
        st = lily_error(ctx, LILY_ERR_FORMAT, "%s: not a model file (it starts with %s); expected "
                        "a Lily .safetensors file or an AudioSR/PyTorch checkpoint (.bin/.ckpt, a zip "
                        "archive starting with 50 4b 03 04)", path, hex);
    }
    if (st != LILY_OK) goto fail;
    *out = w;
    return LILY_OK;
fail:
    lily_weights_close(w);
    return st;
}

void lily_weights_close(LilyWeights *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->tensors[i].name);
    free(w->tensors);
    free(w->slots);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->meta_keys);
    free(w->meta_values);
    for (int i = 0; i < w->n_owned; i++) free(w->owned[i]);
    free(w->owned);
    if (w->map) munmap((void *)w->map, w->map_size);
    free(w->path);
    free(w);
}

LilyWeightsFormat lily_weights_format(const LilyWeights *w) { return w->format; }
const char *lily_weights_path(const LilyWeights *w) { return w->path; }
int lily_weights_count(const LilyWeights *w) { return w->n; }
uint64_t lily_weights_file_size(const LilyWeights *w) { return w->map_size; }

const LilyWeight *lily_weights_at(const LilyWeights *w, int i)
{
    return (i >= 0 && i < w->n) ? &w->tensors[i] : NULL;
}

const LilyWeight *lily_weights_find(const LilyWeights *w, const char *name)
{
    int i = slot_lookup(w, name, NULL);
    return i >= 0 ? &w->tensors[i] : NULL;
}

const char *lily_weights_metadata(const LilyWeights *w, const char *key)
{
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta_keys[i], key) == 0) return w->meta_values[i];
    return NULL;
}

int lily_weights_metadata_count(const LilyWeights *w) { return w->n_meta; }

void lily_weights_metadata_at(const LilyWeights *w, int i, const char **key, const char **value)
{
    *key = (i >= 0 && i < w->n_meta) ? w->meta_keys[i] : NULL;
    *value = (i >= 0 && i < w->n_meta) ? w->meta_values[i] : NULL;
}

const char *lily_weights_format_name(LilyWeightsFormat f)
{
    switch (f) {
    case LILY_WEIGHTS_SAFETENSORS: return "safetensors";
    case LILY_WEIGHTS_TORCH_ZIP: return "pytorch-zip";
    case LILY_WEIGHTS_TORCH_LEGACY: return "pytorch-legacy";
    }
    return "unknown";
}
