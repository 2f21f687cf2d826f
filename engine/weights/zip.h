/* weights/zip.h - a read-only zip archive index over a memory-mapped file.
 *
 * What PyTorch's torch.save writes (caffe2's PyTorchStreamWriter, miniz): local headers, each
 * storage stored uncompressed (method 0) and aligned to 64 bytes with padding in the local
 * header's extra field, a central directory, zip64 records once the archive passes 4 GiB. The
 * reader follows the PKWARE APPNOTE: end of central directory record (zip64 locator and record
 * when present), central directory entries (zip64 extra field 0x0001), local headers only to
 * find where an entry's data starts. Stored entries are returned in place; deflated ones
 * (method 8, e.g. an archive re-packed by `zip`) are inflated into a new buffer. Every offset
 * and size is checked against the file before use. */
#ifndef LILY_WEIGHTS_ZIP_H
#define LILY_WEIGHTS_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include <lily/lily.h>

typedef struct LilyZipEntry {
    char *name;
    uint16_t method;       /* 0 stored, 8 deflate */
    uint16_t flags;
    uint32_t crc32;
    uint64_t comp_size;
    uint64_t size;         /* uncompressed */
    uint64_t header_offset;/* local header */
} LilyZipEntry;

typedef struct LilyZip LilyZip;

/* Indexes the archive held in data[0..size). `path` only names the file in messages. */
LilyStatus lily_zip_open(LilyContext *ctx, const char *path, const uint8_t *data, size_t size,
                         LilyZip **out);
void lily_zip_close(LilyZip *z);
int lily_zip_count(const LilyZip *z);
const LilyZipEntry *lily_zip_entry(const LilyZip *z, int i);
/* Index of the entry with this exact name, -1 if none. */
int lily_zip_find(const LilyZip *z, const char *name);
/* The entry's uncompressed bytes. Stored: *data points into the archive and *owned is NULL.
 * Deflated: *owned is a malloc'ed buffer (the caller frees it) and *data == *owned.
 * verify_crc: check the CRC-32 (costs a pass over the bytes). */
LilyStatus lily_zip_read(LilyContext *ctx, const LilyZip *z, int i, int verify_crc,
                         const uint8_t **data, void **owned);
/* File offset where entry i's (stored) data begins, after checking the local header. */
LilyStatus lily_zip_data_offset(LilyContext *ctx, const LilyZip *z, int i, uint64_t *offset);

#endif /* LILY_WEIGHTS_ZIP_H */
