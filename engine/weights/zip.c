/* weights/zip.c - zip archive index (PKWARE APPNOTE 6.3: 4.3.7 local header, 4.3.12 central
 * directory, 4.3.14-16 zip64 end records, 4.5.3 zip64 extra field), as written by PyTorch's
 * PyTorchStreamWriter. See zip.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/status.h"
#include "weights/zip.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_EOCD64_LOC 0x07064b50u

struct LilyZip {
    const char *path;
    const uint8_t *data;
    size_t size;
    LilyZipEntry *entries;
    int n;
    int *slots; /* entry index + 1, 0 = empty */
    size_t n_slots;
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* Whether [off, off + len) lies inside [0, size), without overflow. */
static int in_range(uint64_t off, uint64_t len, uint64_t size)
{
    return off <= size && len <= size - off;
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static size_t find_slot(const LilyZip *z, const char *name, int *found)
{
    size_t mask = z->n_slots - 1, s = (size_t)hash_name(name) & mask;
    *found = -1;
    while (z->slots[s]) {
        if (strcmp(z->entries[z->slots[s] - 1].name, name) == 0) {
            *found = z->slots[s] - 1;
            break;
        }
        s = (s + 1) & mask;
    }
    return s;
}

static LilyStatus locate_eocd(LilyContext *ctx, const LilyZip *z, uint64_t *n_entries,
                              uint64_t *cd_off, uint64_t *cd_size)
{
    const uint8_t *d = z->data;
    size_t size = z->size;
    if (size < 22)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: zip archive truncated (%zu bytes, too short "
                          "for an end-of-central-directory record)", z->path, size);
    size_t lo = size > 22 + 65535 ? size - 22 - 65535 : 0;
    size_t pos = size - 22;
    int found = 0;
    for (;;) {
        if (rd32(d + pos) == SIG_EOCD && pos + 22 + rd16(d + pos + 20) <= size) {
            found = 1;
            break;
        }
        if (pos == lo) break;
        pos--;
    }
    if (!found)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: no zip end-of-central-directory record: the "
                          "archive is truncated (%zu bytes) or damaged; download or copy it again",
                          z->path, size);
    const uint8_t *e = d + pos;
    if (rd16(e + 4) != 0 || rd16(e + 6) != 0)
        return lily_error(ctx, LILY_ERR_UNSUPPORTED, "%s: multi-part (spanned) zip archives are "
                          "not supported", z->path);
    *n_entries = rd16(e + 10);
    *cd_size = rd32(e + 12);
    *cd_off = rd32(e + 16);
    /* zip64: a locator sits right before the classic record. */
    if (pos >= 20 && rd32(d + pos - 20) == SIG_EOCD64_LOC) {
        uint64_t off64 = rd64(d + pos - 20 + 8);
        if (!in_range(off64, 56, pos - 20) || rd32(d + off64) != SIG_EOCD64)
            return lily_error(ctx, LILY_ERR_FORMAT, "%s: the zip64 end-of-central-directory "
                              "locator points to offset %llu, where there is no zip64 record: the "
                              "archive is damaged", z->path, (unsigned long long)off64);
        const uint8_t *r = d + off64;
        *n_entries = rd64(r + 32);
        *cd_size = rd64(r + 40);
        *cd_off = rd64(r + 48);
        pos = (size_t)off64;
    } else if (*n_entries == 0xffff || *cd_size == 0xffffffffu || *cd_off == 0xffffffffu) {
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: the zip end record asks for zip64 values but "
                          "the zip64 locator is missing: the archive is damaged", z->path);
    }
    if (!in_range(*cd_off, *cd_size, pos))
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: the zip central directory (%llu bytes at "
                          "offset %llu) runs past the end of the archive (%zu bytes): the file is "
                          "truncated or damaged", z->path, (unsigned long long)*cd_size,
                          (unsigned long long)*cd_off, size);
    if (*n_entries > *cd_size / 46)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: the zip end record claims %llu entries, more "
                          "than its %llu-byte central directory can hold", z->path,
                          (unsigned long long)*n_entries, (unsigned long long)*cd_size);
    return LILY_OK;
}

/* Zip64 extended information (APPNOTE 4.5.3): only the fields whose classic value is all ones
 * are present, in this order. */
static LilyStatus read_zip64_extra(LilyContext *ctx, const LilyZip *z, const uint8_t *x, size_t xlen,
                                   LilyZipEntry *e, int need_size, int need_comp, int need_off)
{
    size_t p = 0;
    while (p + 4 <= xlen) {
        uint16_t id = rd16(x + p), len = rd16(x + p + 2);
        if (p + 4 + len > xlen) break;
        if (id == 1) {
            const uint8_t *f = x + p + 4;
            size_t q = 0;
            if (need_size) {
                if (q + 8 > len) goto short_field;
                e->size = rd64(f + q);
                q += 8;
            }
            if (need_comp) {
                if (q + 8 > len) goto short_field;
                e->comp_size = rd64(f + q);
                q += 8;
            }
            if (need_off) {
                if (q + 8 > len) goto short_field;
                e->header_offset = rd64(f + q);
            }
            return LILY_OK;
        }
        p += 4 + (size_t)len;
    }
    if (need_size || need_comp || need_off)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: zip entry '%s' needs a zip64 extra field but "
                          "has none: the archive is damaged", z->path, e->name);
    return LILY_OK;
short_field:
    return lily_error(ctx, LILY_ERR_FORMAT, "%s: zip entry '%s' has a zip64 extra field too short "
                      "for its values", z->path, e->name);
}

LilyStatus lily_zip_open(LilyContext *ctx, const char *path, const uint8_t *data, size_t size,
                         LilyZip **out)
{
    *out = NULL;
    LilyZip *z = calloc(1, sizeof *z);
    if (!z) return lily_error(ctx, LILY_ERR_NO_MEMORY, "zip: out of memory");
    z->path = path;
    z->data = data;
    z->size = size;
    uint64_t n_entries = 0, cd_off = 0, cd_size = 0;
    LilyStatus st;
    LILY_CHECK(st, locate_eocd(ctx, z, &n_entries, &cd_off, &cd_size), fail);
    z->entries = calloc(n_entries ? n_entries : 1, sizeof *z->entries);
    z->n_slots = 16;
    while (z->n_slots < 2 * n_entries) z->n_slots *= 2;
    z->slots = calloc(z->n_slots, sizeof *z->slots);
    if (!z->entries || !z->slots) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "zip: out of memory indexing %s", path);
        goto fail;
    }
    uint64_t p = cd_off, end = cd_off + cd_size;
    for (uint64_t i = 0; i < n_entries; i++) {
        const uint8_t *c = data + p;
        if (!in_range(p, 46, end) || rd32(c) != SIG_CENTRAL) {
            st = lily_error(ctx, LILY_ERR_FORMAT, "%s: zip central directory entry %llu at offset "
                            "%llu is damaged (bad signature or truncated)", path,
                            (unsigned long long)i, (unsigned long long)p);
            goto fail;
        }
        uint16_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
        if (!in_range(p + 46, (uint64_t)nlen + xlen + clen, end)) {
            st = lily_error(ctx, LILY_ERR_FORMAT, "%s: zip central directory entry %llu at offset "
                            "%llu runs past the directory's end", path, (unsigned long long)i,
                            (unsigned long long)p);
            goto fail;
        }
        LilyZipEntry *e = &z->entries[z->n];
        e->name = malloc((size_t)nlen + 1);
        if (!e->name) {
            st = lily_error(ctx, LILY_ERR_NO_MEMORY, "zip: out of memory indexing %s", path);
            goto fail;
        }
        memcpy(e->name, c + 46, nlen);
        e->name[nlen] = '\0';
        z->n++;
        if (strlen(e->name) != nlen) {
            st = lily_error(ctx, LILY_ERR_FORMAT, "%s: zip entry %llu has a NUL byte in its name",
                            path, (unsigned long long)i);
            goto fail;
        }
        e->flags = rd16(c + 8);
        e->method = rd16(c + 10);
        e->crc32 = rd32(c + 16);
        e->comp_size = rd32(c + 20);
        e->size = rd32(c + 24);
        e->header_offset = rd32(c + 42);
        LILY_CHECK(st, read_zip64_extra(ctx, z, c + 46 + nlen, xlen, e, e->size == 0xffffffffu,
                                        e->comp_size == 0xffffffffu,
                                        e->header_offset == 0xffffffffu), fail);
        int dup;
        size_t slot = find_slot(z, e->name, &dup);
        if (dup < 0) z->slots[slot] = z->n; /* a duplicate name keeps its first entry */
        p += 46 + (uint64_t)nlen + xlen + clen;
    }
    *out = z;
    return LILY_OK;
fail:
    lily_zip_close(z);
    return st;
}

void lily_zip_close(LilyZip *z)
{
    if (!z) return;
    for (int i = 0; i < z->n; i++) free(z->entries[i].name);
    free(z->entries);
    free(z->slots);
    free(z);
}

int lily_zip_count(const LilyZip *z) { return z->n; }

const LilyZipEntry *lily_zip_entry(const LilyZip *z, int i)
{
    return (i >= 0 && i < z->n) ? &z->entries[i] : NULL;
}

int lily_zip_find(const LilyZip *z, const char *name)
{
    int found;
    find_slot(z, name, &found);
    return found;
}

LilyStatus lily_zip_data_offset(LilyContext *ctx, const LilyZip *z, int i, uint64_t *offset)
{
    const LilyZipEntry *e = &z->entries[i];
    if (!in_range(e->header_offset, 30, z->size) || rd32(z->data + e->header_offset) != SIG_LOCAL)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: zip entry '%s': no local header at offset "
                          "%llu (file is %zu bytes): the archive is truncated or damaged", z->path,
                          e->name, (unsigned long long)e->header_offset, z->size);
    const uint8_t *l = z->data + e->header_offset;
    uint64_t off = e->header_offset + 30 + rd16(l + 26) + rd16(l + 28);
    if (!in_range(off, e->comp_size, z->size))
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: zip entry '%s' (%llu bytes at offset %llu) "
                          "runs past the end of the file (%zu bytes): the archive is truncated",
                          z->path, e->name, (unsigned long long)e->comp_size,
                          (unsigned long long)off, z->size);
    *offset = off;
    return LILY_OK;
}

static LilyStatus inflate_entry(LilyContext *ctx, const LilyZip *z, const LilyZipEntry *e,
                                const uint8_t *src, uint8_t **out)
{
    /* Deflate cannot expand data more than 1032:1; a larger claim is a damaged header, and
     * refusing it keeps a hostile file from asking for an absurd allocation. */
    if (e->size > e->comp_size * 1032u + 1024u)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: zip entry '%s' claims %llu bytes from %llu "
                          "compressed bytes, more than deflate can produce", z->path, e->name,
                          (unsigned long long)e->size, (unsigned long long)e->comp_size);
    uint8_t *buf = malloc(e->size ? e->size : 1);
    if (!buf)
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "%s: out of memory inflating '%s' (%llu bytes)",
                          z->path, e->name, (unsigned long long)e->size);
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -15) != Z_OK) {
        free(buf);
        return lily_error(ctx, LILY_ERR_NO_MEMORY, "%s: zlib inflateInit failed", z->path);
    }
    uint64_t in_left = e->comp_size, out_done = 0;
    const uint8_t *in = src;
    int r = Z_OK;
    while (r == Z_OK) {
        uInt chunk_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        uint64_t out_left = e->size - out_done;
        uInt chunk_out = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
        s.next_in = (Bytef *)in;
        s.avail_in = chunk_in;
        s.next_out = buf + out_done;
        s.avail_out = chunk_out;
        r = inflate(&s, Z_NO_FLUSH);
        uint64_t used = chunk_in - s.avail_in, made = chunk_out - s.avail_out;
        in += used;
        in_left -= used;
        out_done += made;
        if (r == Z_OK && used == 0 && made == 0) r = Z_BUF_ERROR; /* no progress: stop */
    }
    inflateEnd(&s);
    if (r != Z_STREAM_END || out_done != e->size) {
        free(buf);
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: zip entry '%s': the deflate data is corrupt "
                          "or shorter than its %llu bytes", z->path, e->name,
                          (unsigned long long)e->size);
    }
    *out = buf;
    return LILY_OK;
}

LilyStatus lily_zip_read(LilyContext *ctx, const LilyZip *z, int i, int verify_crc,
                         const uint8_t **data, void **owned)
{
    *data = NULL;
    *owned = NULL;
    const LilyZipEntry *e = &z->entries[i];
    if (e->flags & 1)
        return lily_error(ctx, LILY_ERR_UNSUPPORTED, "%s: zip entry '%s' is encrypted", z->path, e->name);
    uint64_t off;
    LILY_TRY(lily_zip_data_offset(ctx, z, i, &off));
    const uint8_t *src = z->data + off;
    if (e->method == 0) {
        if (e->comp_size != e->size)
            return lily_error(ctx, LILY_ERR_FORMAT, "%s: stored zip entry '%s' has compressed size "
                              "%llu but size %llu", z->path, e->name,
                              (unsigned long long)e->comp_size, (unsigned long long)e->size);
        *data = src;
    } else if (e->method == 8) {
        uint8_t *buf = NULL;
        LILY_TRY(inflate_entry(ctx, z, e, src, &buf));
        *data = buf;
        *owned = buf;
    } else {
        return lily_error(ctx, LILY_ERR_UNSUPPORTED, "%s: zip entry '%s' uses compression method "
                          "%u; only stored (0) and deflate (8) are supported", z->path, e->name,
                          e->method);
    }
    if (verify_crc) {
        uLong crc = crc32(0L, Z_NULL, 0);
        const uint8_t *p = *data;
        uint64_t left = e->size;
        while (left) {
            uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
            crc = crc32(crc, p, n);
            p += n;
            left -= n;
        }
        if ((uint32_t)crc != e->crc32) {
            free(*owned);
            *owned = NULL;
            *data = NULL;
            return lily_error(ctx, LILY_ERR_FORMAT, "%s: zip entry '%s' fails its CRC-32 check "
                              "(stored %08x, computed %08x): the file is damaged", z->path, e->name,
                              e->crc32, (uint32_t)crc);
        }
    }
    return LILY_OK;
}
