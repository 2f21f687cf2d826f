/* weights/json.h - the JSON a safetensors header needs (RFC 8259), read and written.
 *
 * A small recursive-descent parser into a tree that keeps object members in file order (the
 * safetensors header lists tensors in the order they were written), with byte offsets for
 * messages and a depth limit, plus a growable text buffer with JSON string escaping for the
 * writer. */
#ifndef LILY_WEIGHTS_JSON_H
#define LILY_WEIGHTS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <lily/lily.h>

#define LILY_JSON_MAX_DEPTH 64

typedef enum LilyJsonType {
    LILY_JSON_NULL = 0,
    LILY_JSON_BOOL,
    LILY_JSON_NUMBER,
    LILY_JSON_STRING,
    LILY_JSON_ARRAY,
    LILY_JSON_OBJECT,
} LilyJsonType;

typedef struct LilyJson LilyJson;
struct LilyJson {
    LilyJsonType type;
    size_t offset;      /* byte offset of the value in the text */
    int boolean;
    int is_int;         /* NUMBER written without fraction or exponent, fits int64 */
    int64_t integer;
    double number;
    char *str;          /* STRING: decoded UTF-8, NUL-terminated; len excludes the NUL */
    size_t len;
    LilyJson **items;   /* ARRAY elements or OBJECT values */
    char **keys;        /* OBJECT member names (decoded), parallel to items */
    int n, cap;
};

/* Parses text[0..len) (one value, surrounding whitespace allowed). Errors name `origin` and
 * the byte offset. */
LilyStatus lily_json_parse(LilyContext *ctx, const char *origin, const char *text, size_t len,
                           LilyJson **out);
void lily_json_free(LilyJson *j);
/* The member `key` of an OBJECT (the last one if repeated), or NULL. */
const LilyJson *lily_json_get(const LilyJson *obj, const char *key);
const char *lily_json_type_name(LilyJsonType t);

/* A growable NUL-terminated text buffer. On allocation failure it stays in a failed state
 * (failed = 1) and further appends do nothing. */
typedef struct LilyStrBuf {
    char *s;
    size_t len, cap;
    int failed;
} LilyStrBuf;

void lily_strbuf_append(LilyStrBuf *b, const char *text, size_t n);
void lily_strbuf_puts(LilyStrBuf *b, const char *text);
void lily_strbuf_printf(LilyStrBuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends text as a quoted JSON string. */
void lily_strbuf_json_string(LilyStrBuf *b, const char *text);
void lily_strbuf_free(LilyStrBuf *b);

#endif /* LILY_WEIGHTS_JSON_H */
