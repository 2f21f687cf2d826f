/* weights/json.c - JSON reading and writing for safetensors headers (RFC 8259). See json.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "weights/json.h"

typedef struct Parser {
    LilyContext *ctx;
    const char *origin;
    const char *s;
    size_t len, pos;
} Parser;

const char *lily_json_type_name(LilyJsonType t)
{
    static const char *const names[] = {"null", "boolean", "number", "string", "array", "object"};
    return (t >= 0 && (size_t)t < sizeof names / sizeof names[0]) ? names[t] : "?";
}

static LilyStatus perr(Parser *p, const char *what)
{
    if (p->pos >= p->len)
        return lily_error(p->ctx, LILY_ERR_FORMAT, "%s: JSON header: %s at byte %zu (the header "
                          "ends there): truncated or damaged", p->origin, what, p->pos);
    char c = p->s[p->pos];
    return lily_error(p->ctx, LILY_ERR_FORMAT, "%s: JSON header: %s at byte %zu (found %s%c%s): "
                      "damaged header", p->origin, what, p->pos, c >= 32 && c < 127 ? "'" : "",
                      c >= 32 && c < 127 ? c : '?', c >= 32 && c < 127 ? "'" : "");
}

static void skip_ws(Parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static LilyJson *node(Parser *p, LilyJsonType t)
{
    LilyJson *j = calloc(1, sizeof *j);
    if (j) {
        j->type = t;
        j->offset = p->pos;
    }
    return j;
}

static LilyStatus oom(Parser *p)
{
    return lily_error(p->ctx, LILY_ERR_NO_MEMORY, "%s: out of memory parsing JSON", p->origin);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static LilyStatus read_hex4(Parser *p, unsigned *v)
{
    if (p->len - p->pos < 4) return perr(p, "a short \\u escape");
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p->s[p->pos + (size_t)i]);
        if (h < 0) return perr(p, "a bad \\u escape");
        *v = (*v << 4) | (unsigned)h;
    }
    p->pos += 4;
    return LILY_OK;
}

static void put_utf8(char *out, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xc0 | (cp >> 6));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xe0 | (cp >> 12));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*n)++] = (char)(0xf0 | (cp >> 18));
        out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* p->pos is at the opening quote. The decoded text is never longer than the source. */
static LilyStatus parse_string(Parser *p, char **out, size_t *out_len)
{
    p->pos++;
    size_t start = p->pos;
    while (p->pos < p->len && p->s[p->pos] != '"') p->pos += (p->s[p->pos] == '\\') ? 2 : 1;
    if (p->pos >= p->len) {
        p->pos = start - 1;
        return perr(p, "an unterminated string");
    }
    size_t end = p->pos;
    char *buf = malloc(end - start + 1);
    if (!buf) return oom(p);
    size_t n = 0;
    p->pos = start;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) {
            free(buf);
            return perr(p, "a control character inside a string");
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        char e = p->s[p->pos++];
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            LilyStatus st = p->pos + 4 <= end ? read_hex4(p, &cp) : perr(p, "a short \\u escape");
            if (st == LILY_OK && cp >= 0xd800 && cp < 0xdc00) {
                unsigned lo;
                if (p->pos + 6 <= end && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
                    p->pos += 2;
                    st = read_hex4(p, &lo);
                    if (st == LILY_OK && (lo < 0xdc00 || lo > 0xdfff))
                        st = perr(p, "an unpaired surrogate");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else {
                    st = perr(p, "an unpaired surrogate");
                }
            } else if (st == LILY_OK && cp >= 0xdc00 && cp < 0xe000) {
                st = perr(p, "an unpaired surrogate");
            }
            if (st != LILY_OK) {
                free(buf);
                return st;
            }
            /* \uXXXX takes 6 source bytes and at most 3 output bytes; a pair takes 12 and 4. */
            put_utf8(buf, &n, cp);
            break;
        }
        default:
            p->pos -= 1;
            free(buf);
            return perr(p, "an unknown escape");
        }
    }
    buf[n] = '\0';
    p->pos = end + 1;
    *out = buf;
    *out_len = n;
    return LILY_OK;
}

static LilyStatus parse_number(Parser *p, LilyJson *j)
{
    size_t start = p->pos;
    int is_int = 1;
    if (p->pos < p->len && p->s[p->pos] == '-') p->pos++;
    size_t digits = p->pos;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    if (p->pos == digits) return perr(p, "a number without digits");
    if (p->s[digits] == '0' && p->pos - digits > 1) {
        p->pos = digits;
        return perr(p, "a number with a leading zero");
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        is_int = 0;
        p->pos++;
        size_t f = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        if (p->pos == f) return perr(p, "a number without fraction digits");
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        is_int = 0;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        size_t e = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        if (p->pos == e) return perr(p, "a number without exponent digits");
    }
    char buf[64];
    size_t n = p->pos - start;
    if (n >= sizeof buf) {
        p->pos = start;
        return perr(p, "a number longer than 63 characters");
    }
    memcpy(buf, p->s + start, n);
    buf[n] = '\0';
    j->number = strtod(buf, NULL);
    if (is_int) {
        int neg = buf[0] == '-';
        uint64_t v = 0;
        for (const char *c = buf + neg; *c; c++) {
            unsigned d = (unsigned)(*c - '0');
            if (v > (UINT64_MAX - d) / 10) {
                is_int = 0;
                break;
            }
            v = v * 10 + d;
        }
        if (is_int && v > (uint64_t)INT64_MAX + (uint64_t)neg) is_int = 0;
        if (is_int) j->integer = neg ? (int64_t)(0 - v) : (int64_t)v;
    }
    j->is_int = is_int;
    return LILY_OK;
}

static LilyStatus add_child(Parser *p, LilyJson *parent, char *key, LilyJson *child)
{
    if (parent->n == parent->cap) {
        int cap = parent->cap ? parent->cap * 2 : 8;
        LilyJson **it = realloc(parent->items, (size_t)cap * sizeof *it);
        if (!it) return oom(p);
        parent->items = it;
        if (parent->type == LILY_JSON_OBJECT) {
            char **k = realloc(parent->keys, (size_t)cap * sizeof *k);
            if (!k) return oom(p);
            parent->keys = k;
        }
        parent->cap = cap;
    }
    parent->items[parent->n] = child;
    if (parent->type == LILY_JSON_OBJECT) parent->keys[parent->n] = key;
    parent->n++;
    return LILY_OK;
}

static LilyStatus parse_value(Parser *p, int depth, LilyJson **out);

static LilyStatus parse_container(Parser *p, int depth, LilyJson *j)
{
    int object = j->type == LILY_JSON_OBJECT;
    char close = object ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return LILY_OK;
    }
    for (;;) {
        char *key = NULL;
        size_t klen;
        if (object) {
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != '"') return perr(p, "expected a member name");
            LILY_TRY(parse_string(p, &key, &klen));
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(key);
                return perr(p, "expected ':'");
            }
            p->pos++;
        }
        LilyJson *child = NULL;
        LilyStatus st = parse_value(p, depth + 1, &child);
        if (st == LILY_OK) st = add_child(p, j, key, child);
        if (st != LILY_OK) {
            free(key);
            lily_json_free(child);
            return st;
        }
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return LILY_OK;
        }
        return perr(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static LilyStatus parse_value(Parser *p, int depth, LilyJson **out)
{
    *out = NULL;
    if (depth > LILY_JSON_MAX_DEPTH) return perr(p, "values nested too deeply");
    skip_ws(p);
    if (p->pos >= p->len) return perr(p, "expected a value");
    char c = p->s[p->pos];
    LilyJson *j = NULL;
    LilyStatus st = LILY_OK;
    if (c == '{' || c == '[') {
        j = node(p, c == '{' ? LILY_JSON_OBJECT : LILY_JSON_ARRAY);
        if (!j) return oom(p);
        st = parse_container(p, depth, j);
    } else if (c == '"') {
        j = node(p, LILY_JSON_STRING);
        if (!j) return oom(p);
        st = parse_string(p, &j->str, &j->len);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        j = node(p, LILY_JSON_NUMBER);
        if (!j) return oom(p);
        st = parse_number(p, j);
    } else {
        static const struct {
            const char *word;
            LilyJsonType type;
            int value;
        } words[] = {{"true", LILY_JSON_BOOL, 1}, {"false", LILY_JSON_BOOL, 0}, {"null", LILY_JSON_NULL, 0}};
        for (size_t i = 0; i < 3; i++) {
            size_t n = strlen(words[i].word);
            if (p->len - p->pos >= n && memcmp(p->s + p->pos, words[i].word, n) == 0) {
                j = node(p, words[i].type);
                if (!j) return oom(p);
                j->boolean = words[i].value;
                p->pos += n;
                break;
            }
        }
        if (!j) return perr(p, "expected a value");
    }
    if (st != LILY_OK) {
        lily_json_free(j);
        return st;
    }
    *out = j;
    return LILY_OK;
}

LilyStatus lily_json_parse(LilyContext *ctx, const char *origin, const char *text, size_t len,
                           LilyJson **out)
{
    Parser p = {.ctx = ctx, .origin = origin, .s = text, .len = len};
    LILY_TRY(parse_value(&p, 0, out));
    skip_ws(&p);
    if (p.pos != p.len) {
        lily_json_free(*out);
        *out = NULL;
        return perr(&p, "text after the end of the header");
    }
    return LILY_OK;
}

void lily_json_free(LilyJson *j)
{
    if (!j) return;
    for (int i = 0; i < j->n; i++) {
        lily_json_free(j->items[i]);
        if (j->keys) free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
    free(j->str);
    free(j);
}

const LilyJson *lily_json_get(const LilyJson *obj, const char *key)
{
    if (!obj || obj->type != LILY_JSON_OBJECT) return NULL;
    const LilyJson *found = NULL;
    for (int i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0) found = obj->items[i];
    return found;
}

/* ---- writing ---- */

static int reserve(LilyStrBuf *b, size_t more)
{
    if (b->failed) return 0;
    if (b->len + more + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = 1;
        return 0;
    }
    b->s = s;
    b->cap = cap;
    return 1;
}

void lily_strbuf_append(LilyStrBuf *b, const char *text, size_t n)
{
    if (!reserve(b, n)) return;
    memcpy(b->s + b->len, text, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void lily_strbuf_puts(LilyStrBuf *b, const char *text) { lily_strbuf_append(b, text, strlen(text)); }

void lily_strbuf_printf(LilyStrBuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void lily_strbuf_json_string(LilyStrBuf *b, const char *text)
{
    lily_strbuf_append(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        char esc[8];
        switch (*c) {
        case '"': lily_strbuf_append(b, "\\\"", 2); break;
        case '\\': lily_strbuf_append(b, "\\\\", 2); break;
        case '\n': lily_strbuf_append(b, "\\n", 2); break;
        case '\r': lily_strbuf_append(b, "\\r", 2); break;
        case '\t': lily_strbuf_append(b, "\\t", 2); break;
        default:
            if (*c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *c);
                lily_strbuf_append(b, esc, 6);
            } else {
                lily_strbuf_append(b, (const char *)c, 1);
            }
        }
    }
    lily_strbuf_append(b, "\"", 1);
}

void lily_strbuf_free(LilyStrBuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}
