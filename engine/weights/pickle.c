/* weights/pickle.c - the pickle interpreter of pickle.h.
 *
 * Written against CPython's Lib/pickletools.py opcode table (protocols 0-5; names as there)
 * and the stream torch.save produces. An AudioSR checkpoint's data.pkl begins (pickletools.dis
 * of shared/audiosr/tiny-a.bin):
 *
 *     0: \x80 PROTO      2
 *     2: }    EMPTY_DICT                    the top-level dict
 *     5: X    BINUNICODE 'state_dict'
 *    22: }    EMPTY_DICT                    the state dict
 *    25: (    MARK
 *    26: X        BINUNICODE 'logvar'          a key
 *    39: c        GLOBAL     'torch._utils _rebuild_tensor_v2'
 *    74: (        MARK
 *    75: (            MARK
 *    76: X                BINUNICODE 'storage'
 *    90: c                GLOBAL     'torch FloatStorage'
 *   112: X                BINUNICODE '0'       the storage's entry: archive/data/0
 *   120: X                BINUNICODE 'cpu'
 *   130: M                BININT2    1000      elements in the storage
 *   133: t                TUPLE      (MARK at 75)
 *   136: Q            BINPERSID                -> a storage reference
 *   137: K            BININT1    0             storage offset
 *   139: M            BININT2    1000
 *   142: \x85         TUPLE1                   size (1000,)
 *   145: K            BININT1    1
 *   147: \x85         TUPLE1                   stride (1,)
 *   150: \x89         NEWFALSE                 requires_grad
 *   151: c            GLOBAL     'collections OrderedDict'
 *   178: )            EMPTY_TUPLE
 *   179: R            REDUCE                   backward hooks: OrderedDict()
 *   182: t            TUPLE      (MARK at 74)
 *   185: R        REDUCE                       -> the tensor
 *   ...
 *   368161: u        SETITEMS   (MARK at 352586)
 *   368162: s    SETITEM
 *   368163: .    STOP
 *
 * Tensors shared between keys are the same pickled object, fetched again with (LONG_)BINGET. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "weights/pickle.h"

#define PK_MAX_STACK (1u << 20)
#define PK_MAX_MARKS (1u << 16)

struct LilyPickle {
    LilyContext *ctx;
    const char *origin;
    const uint8_t *data;
    size_t len, pos;
    size_t op_off;   /* offset of the opcode being run */
    uint8_t op;
    LilyPkObj **objs; /* every value made, freed together */
    size_t n_objs, cap_objs;
    LilyPkObj **stack;
    size_t sp, cap_stack;
    size_t *marks;
    size_t n_marks, cap_marks;
    LilyPkObj **memo;
    size_t cap_memo, n_memo;
    LilyPkObj *root;
};

static const char *opcode_name(uint8_t op)
{
    switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    }
    return "not a pickle opcode";
}

const char *lily_pk_type_name(LilyPkType t)
{
    static const char *const names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple",
                                        "list", "dict", "set", "global", "storage", "tensor",
                                        "object"};
    return (t >= 0 && (size_t)t < sizeof names / sizeof names[0]) ? names[t] : "?";
}

static LilyStatus fail(LilyPickle *p, LilyStatus st, const char *fmt, ...) LILY_PRINTF(3, 4);
static LilyStatus fail(LilyPickle *p, LilyStatus st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lily_error(p->ctx, st, "%s: pickle byte %zu (opcode %s): %s", p->origin, p->op_off,
                      opcode_name(p->op), msg);
}

static LilyPkObj *new_obj(LilyPickle *p, LilyPkType type)
{
    if (p->n_objs == p->cap_objs) {
        size_t cap = p->cap_objs ? p->cap_objs * 2 : 1024;
        LilyPkObj **o = realloc(p->objs, cap * sizeof *o);
        if (!o) return NULL;
        p->objs = o;
        p->cap_objs = cap;
    }
    LilyPkObj *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->type = type;
    o->offset = p->op_off;
    p->objs[p->n_objs++] = o;
    return o;
}

static LilyStatus oom(LilyPickle *p) { return fail(p, LILY_ERR_NO_MEMORY, "out of memory"); }

static LilyStatus push(LilyPickle *p, LilyPkObj *o)
{
    if (!o) return oom(p);
    if (p->sp == p->cap_stack) {
        if (p->cap_stack >= PK_MAX_STACK)
            return fail(p, LILY_ERR_FORMAT, "the stack grew past %u entries", PK_MAX_STACK);
        size_t cap = p->cap_stack ? p->cap_stack * 2 : 256;
        LilyPkObj **s = realloc(p->stack, cap * sizeof *s);
        if (!s) return oom(p);
        p->stack = s;
        p->cap_stack = cap;
    }
    p->stack[p->sp++] = o;
    return LILY_OK;
}

/* The lowest stack index usable by this opcode (above the innermost mark). */
static size_t floor_sp(const LilyPickle *p) { return p->n_marks ? p->marks[p->n_marks - 1] : 0; }

static LilyStatus pop(LilyPickle *p, LilyPkObj **o)
{
    if (p->sp <= floor_sp(p)) return fail(p, LILY_ERR_FORMAT, "stack underflow");
    *o = p->stack[--p->sp];
    return LILY_OK;
}

static LilyStatus top(LilyPickle *p, LilyPkObj **o)
{
    if (p->sp <= floor_sp(p)) return fail(p, LILY_ERR_FORMAT, "stack underflow");
    *o = p->stack[p->sp - 1];
    return LILY_OK;
}

static LilyStatus pop_mark(LilyPickle *p, size_t *start)
{
    if (!p->n_marks) return fail(p, LILY_ERR_FORMAT, "no MARK to pop to");
    *start = p->marks[--p->n_marks];
    return LILY_OK;
}

static LilyStatus add_item(LilyPickle *p, LilyPkObj *seq, LilyPkObj *item)
{
    if (seq->u.seq.n == seq->u.seq.cap) {
        int cap = seq->u.seq.cap ? seq->u.seq.cap * 2 : 4;
        LilyPkObj **it = realloc(seq->u.seq.items, (size_t)cap * sizeof *it);
        if (!it) return oom(p);
        seq->u.seq.items = it;
        seq->u.seq.cap = cap;
    }
    seq->u.seq.items[seq->u.seq.n++] = item;
    return LILY_OK;
}

static LilyStatus need(LilyPickle *p, size_t n)
{
    if (n > p->len - p->pos)
        return fail(p, LILY_ERR_FORMAT, "needs %zu more bytes but the pickle ends at byte %zu: "
                    "truncated", n, p->len);
    return LILY_OK;
}

static uint64_t read_le(LilyPickle *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p->data[p->pos + (size_t)i];
    p->pos += (size_t)n;
    return v;
}

static LilyStatus push_int(LilyPickle *p, int64_t v)
{
    LilyPkObj *o = new_obj(p, LILY_PK_INT);
    if (o) o->u.i = v;
    return push(p, o);
}

static LilyStatus push_text(LilyPickle *p, LilyPkType type, uint64_t n)
{
    LILY_TRY(need(p, n));
    LilyPkObj *o = new_obj(p, type);
    if (!o) return oom(p);
    o->u.str.s = malloc((size_t)n + 1);
    if (!o->u.str.s) return oom(p);
    memcpy(o->u.str.s, p->data + p->pos, (size_t)n);
    o->u.str.s[n] = '\0';
    o->u.str.len = (size_t)n;
    p->pos += (size_t)n;
    return push(p, o);
}

/* Items [start, sp) into a new sequence of the given type, replacing them on the stack. */
static LilyStatus collect(LilyPickle *p, LilyPkType type, size_t start)
{
    LilyPkObj *o = new_obj(p, type);
    if (!o) return oom(p);
    for (size_t i = start; i < p->sp; i++) LILY_TRY(add_item(p, o, p->stack[i]));
    p->sp = start;
    return push(p, o);
}

static char *dup_str(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void classify_global(LilyPkObj *g)
{
    const char *m = g->u.global.module, *n = g->u.global.name;
    g->u.global.kind = LILY_PKG_OTHER;
    if (strcmp(m, "torch._utils") == 0) {
        if (strcmp(n, "_rebuild_tensor_v2") == 0) g->u.global.kind = LILY_PKG_REBUILD_TENSOR_V2;
        else if (strcmp(n, "_rebuild_tensor") == 0) g->u.global.kind = LILY_PKG_REBUILD_TENSOR;
        else if (strcmp(n, "_rebuild_parameter") == 0 ||
                 strcmp(n, "_rebuild_parameter_with_state") == 0)
            g->u.global.kind = LILY_PKG_REBUILD_PARAMETER;
    } else if (strcmp(m, "collections") == 0 && strcmp(n, "OrderedDict") == 0) {
        g->u.global.kind = LILY_PKG_ORDERED_DICT;
    } else if (strcmp(m, "torch") == 0) {
        static const struct {
            const char *name;
            int known;
            LilyDType dtype;
            int size;
        } storages[] = {
            {"FloatStorage", 1, LILY_DTYPE_F32, 4}, {"HalfStorage", 1, LILY_DTYPE_F16, 2},
            {"BFloat16Storage", 1, LILY_DTYPE_BF16, 2}, {"LongStorage", 1, LILY_DTYPE_I64, 8},
            {"IntStorage", 1, LILY_DTYPE_I32, 4}, {"ByteStorage", 1, LILY_DTYPE_U8, 1},
            {"BoolStorage", 1, LILY_DTYPE_U8, 1}, {"DoubleStorage", 0, LILY_DTYPE_F32, 8},
            {"ShortStorage", 0, LILY_DTYPE_I32, 2}, {"CharStorage", 0, LILY_DTYPE_U8, 1},
            {"ComplexFloatStorage", 0, LILY_DTYPE_F32, 8},
            {"ComplexDoubleStorage", 0, LILY_DTYPE_F32, 16},
        };
        for (size_t i = 0; i < sizeof storages / sizeof storages[0]; i++) {
            if (strcmp(n, storages[i].name) == 0) {
                g->u.global.kind = LILY_PKG_STORAGE_TYPE;
                g->u.global.dtype_known = storages[i].known;
                g->u.global.dtype = storages[i].dtype;
                g->u.global.elem_size = storages[i].size;
            }
        }
    }
}

static LilyStatus push_global(LilyPickle *p, const char *module, size_t mlen, const char *name,
                              size_t nlen)
{
    LilyPkObj *g = new_obj(p, LILY_PK_GLOBAL);
    if (!g) return oom(p);
    g->u.global.module = dup_str(module, mlen);
    g->u.global.name = dup_str(name, nlen);
    if (!g->u.global.module || !g->u.global.name) return oom(p);
    classify_global(g);
    return push(p, g);
}

static LilyStatus op_global(LilyPickle *p)
{
    const char *start = (const char *)p->data + p->pos;
    size_t left = p->len - p->pos;
    const char *nl1 = memchr(start, '\n', left);
    const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', left - (size_t)(nl1 + 1 - start)) : NULL;
    if (!nl2) return fail(p, LILY_ERR_FORMAT, "the module and name lines are not terminated");
    p->pos += (size_t)(nl2 + 1 - start);
    return push_global(p, start, (size_t)(nl1 - start), nl1 + 1, (size_t)(nl2 - nl1 - 1));
}

static LilyStatus op_stack_global(LilyPickle *p)
{
    LilyPkObj *name = NULL, *module = NULL;
    LILY_TRY(pop(p, &name));
    LILY_TRY(pop(p, &module));
    if (name->type != LILY_PK_STR || module->type != LILY_PK_STR)
        return fail(p, LILY_ERR_FORMAT, "module and name must be strings, got %s and %s",
                    lily_pk_type_name(module->type), lily_pk_type_name(name->type));
    return push_global(p, module->u.str.s, module->u.str.len, name->u.str.s, name->u.str.len);
}

static const LilyPkObj *seq_at(const LilyPkObj *t, int i)
{
    return (t && (t->type == LILY_PK_TUPLE || t->type == LILY_PK_LIST) && i < t->u.seq.n)
               ? t->u.seq.items[i]
               : NULL;
}

static LilyStatus int_tuple(LilyPickle *p, const LilyPkObj *t, const char *what, int *ndim,
                            int64_t *out)
{
    if (!t || t->type != LILY_PK_TUPLE)
        return fail(p, LILY_ERR_FORMAT, "tensor %s must be a tuple, got %s", what,
                    t ? lily_pk_type_name(t->type) : "nothing");
    if (t->u.seq.n > LILY_MAX_DIMS)
        return fail(p, LILY_ERR_UNSUPPORTED, "a tensor with %d dimensions (Lily handles at most %d)",
                    t->u.seq.n, LILY_MAX_DIMS);
    for (int i = 0; i < t->u.seq.n; i++) {
        const LilyPkObj *v = t->u.seq.items[i];
        if (v->type != LILY_PK_INT || v->u.i < 0)
            return fail(p, LILY_ERR_FORMAT, "tensor %s entry %d is not a non-negative int", what, i);
        out[i] = v->u.i;
    }
    *ndim = t->u.seq.n;
    return LILY_OK;
}

static LilyStatus make_tensor(LilyPickle *p, const LilyPkObj *args, LilyPkObj **out)
{
    const LilyPkObj *storage = seq_at(args, 0), *offset = seq_at(args, 1);
    if (!storage || storage->type != LILY_PK_STORAGE)
        return fail(p, LILY_ERR_FORMAT, "_rebuild_tensor: the first argument must be a storage "
                    "reference, got %s", storage ? lily_pk_type_name(storage->type) : "nothing");
    if (!offset || offset->type != LILY_PK_INT || offset->u.i < 0)
        return fail(p, LILY_ERR_FORMAT, "_rebuild_tensor: the storage offset must be a "
                    "non-negative int");
    LilyPkObj *t = new_obj(p, LILY_PK_TENSOR);
    if (!t) return oom(p);
    t->u.tensor.storage = (LilyPkObj *)storage;
    t->u.tensor.offset = offset->u.i;
    int nd_size = 0, nd_stride = 0;
    LILY_TRY(int_tuple(p, seq_at(args, 2), "size", &nd_size, t->u.tensor.shape));
    LILY_TRY(int_tuple(p, seq_at(args, 3), "stride", &nd_stride, t->u.tensor.stride));
    if (nd_size != nd_stride)
        return fail(p, LILY_ERR_FORMAT, "tensor size has %d dimensions but stride has %d",
                    nd_size, nd_stride);
    t->u.tensor.ndim = nd_size;
    *out = t;
    return LILY_OK;
}

static LilyStatus opaque_from(LilyPickle *p, const LilyPkObj *callable)
{
    LilyPkObj *o = new_obj(p, LILY_PK_OPAQUE);
    if (!o) return oom(p);
    if (callable->type == LILY_PK_GLOBAL) o->u.global = callable->u.global;
    else if (callable->type == LILY_PK_OPAQUE) o->u.global = callable->u.global;
    /* The strings belong to the callable's object; mark this copy as borrowing them. */
    o->u.global.kind = LILY_PKG_OTHER;
    o->u.global.dtype_known = -1;
    return push(p, o);
}

static LilyStatus op_reduce(LilyPickle *p)
{
    LilyPkObj *args = NULL, *fn = NULL;
    LILY_TRY(pop(p, &args));
    LILY_TRY(pop(p, &fn));
    if (fn->type == LILY_PK_OPAQUE) return opaque_from(p, fn);
    if (fn->type != LILY_PK_GLOBAL)
        return fail(p, LILY_ERR_FORMAT, "REDUCE on a %s, which is not callable",
                    lily_pk_type_name(fn->type));
    if (args->type != LILY_PK_TUPLE)
        return fail(p, LILY_ERR_FORMAT, "REDUCE arguments must be a tuple, got %s",
                    lily_pk_type_name(args->type));
    switch (fn->u.global.kind) {
    case LILY_PKG_REBUILD_TENSOR_V2:
    case LILY_PKG_REBUILD_TENSOR: {
        LilyPkObj *t = NULL;
        LILY_TRY(make_tensor(p, args, &t));
        return push(p, t);
    }
    case LILY_PKG_REBUILD_PARAMETER: {
        const LilyPkObj *data = seq_at(args, 0);
        if (!data || data->type != LILY_PK_TENSOR)
            return fail(p, LILY_ERR_FORMAT, "_rebuild_parameter: the first argument must be a "
                        "tensor, got %s", data ? lily_pk_type_name(data->type) : "nothing");
        return push(p, (LilyPkObj *)data);
    }
    case LILY_PKG_ORDERED_DICT:
        if (args->u.seq.n == 0) return push(p, new_obj(p, LILY_PK_DICT));
        return opaque_from(p, fn);
    default:
        return opaque_from(p, fn);
    }
}

static LilyStatus op_newobj(LilyPickle *p)
{
    LilyPkObj *args = NULL, *cls = NULL;
    LILY_TRY(pop(p, &args));
    LILY_TRY(pop(p, &cls));
    if (cls->type == LILY_PK_GLOBAL && cls->u.global.kind == LILY_PKG_ORDERED_DICT)
        return push(p, new_obj(p, LILY_PK_DICT));
    if (cls->type != LILY_PK_GLOBAL && cls->type != LILY_PK_OPAQUE)
        return fail(p, LILY_ERR_FORMAT, "NEWOBJ on a %s, which is not a class",
                    lily_pk_type_name(cls->type));
    return opaque_from(p, cls);
}

static LilyStatus op_binpersid(LilyPickle *p)
{
    LilyPkObj *pid = NULL;
    LILY_TRY(pop(p, &pid));
    const LilyPkObj *tag = seq_at(pid, 0), *cls = seq_at(pid, 1), *key = seq_at(pid, 2),
                    *numel = seq_at(pid, 4);
    if (pid->type != LILY_PK_TUPLE || !tag || tag->type != LILY_PK_STR ||
        strcmp(tag->u.str.s, "storage") != 0)
        return fail(p, LILY_ERR_UNSUPPORTED, "a persistent id that is not a torch storage reference "
                    "('storage', type, key, location, size)");
    if (!cls || cls->type != LILY_PK_GLOBAL || cls->u.global.kind != LILY_PKG_STORAGE_TYPE)
        return fail(p, LILY_ERR_UNSUPPORTED, "storage type %s%s%s is not a torch storage class "
                    "Lily knows", cls && cls->type == LILY_PK_GLOBAL ? cls->u.global.module : "?",
                    cls && cls->type == LILY_PK_GLOBAL ? "." : "",
                    cls && cls->type == LILY_PK_GLOBAL ? cls->u.global.name : "");
    if (!key || (key->type != LILY_PK_STR && key->type != LILY_PK_INT))
        return fail(p, LILY_ERR_FORMAT, "the storage key must be a string");
    if (!numel || numel->type != LILY_PK_INT || numel->u.i < 0)
        return fail(p, LILY_ERR_FORMAT, "the storage size must be a non-negative int");
    const LilyPkObj *view = seq_at(pid, 5);
    if (view && view->type != LILY_PK_NONE)
        return fail(p, LILY_ERR_UNSUPPORTED, "storage views (torch < 0.4 files) are not supported");
    LilyPkObj *s = new_obj(p, LILY_PK_STORAGE);
    if (!s) return oom(p);
    if (key->type == LILY_PK_STR) {
        s->u.storage.key = dup_str(key->u.str.s, key->u.str.len);
    } else {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)key->u.i);
        s->u.storage.key = strdup(buf);
    }
    if (!s->u.storage.key) return oom(p);
    s->u.storage.cls = (LilyPkObj *)cls;
    s->u.storage.numel = numel->u.i;
    return push(p, s);
}

static LilyStatus memo_put(LilyPickle *p, uint64_t idx)
{
    LilyPkObj *o = NULL;
    LILY_TRY(top(p, &o));
    /* Pickles number memo entries 0, 1, 2...: an index beyond the input's length is junk. */
    if (idx > p->len + 256)
        return fail(p, LILY_ERR_FORMAT, "memo index %llu is out of range", (unsigned long long)idx);
    if (idx >= p->cap_memo) {
        size_t cap = p->cap_memo ? p->cap_memo : 256;
        while (cap <= idx) cap *= 2;
        LilyPkObj **m = realloc(p->memo, cap * sizeof *m);
        if (!m) return oom(p);
        memset(m + p->cap_memo, 0, (cap - p->cap_memo) * sizeof *m);
        p->memo = m;
        p->cap_memo = cap;
    }
    if (!p->memo[idx]) p->n_memo++;
    p->memo[idx] = o;
    return LILY_OK;
}

static LilyStatus memo_get(LilyPickle *p, uint64_t idx)
{
    if (idx >= p->cap_memo || !p->memo[idx])
        return fail(p, LILY_ERR_FORMAT, "memo entry %llu was never stored", (unsigned long long)idx);
    return push(p, p->memo[idx]);
}

static LilyStatus op_setitems(LilyPickle *p, size_t start)
{
    LilyPkObj *d;
    if (start == 0 || start > p->sp) return fail(p, LILY_ERR_FORMAT, "no dict under the items");
    d = p->stack[start - 1];
    if ((p->sp - start) % 2)
        return fail(p, LILY_ERR_FORMAT, "an odd number of items (%zu) for a dict", p->sp - start);
    if (d->type == LILY_PK_DICT) {
        for (size_t i = start; i < p->sp; i++) LILY_TRY(add_item(p, d, p->stack[i]));
    } else if (d->type != LILY_PK_OPAQUE) {
        return fail(p, LILY_ERR_FORMAT, "setting items on a %s", lily_pk_type_name(d->type));
    }
    p->sp = start;
    return LILY_OK;
}

static LilyStatus op_appends(LilyPickle *p, size_t start, LilyPkType want)
{
    if (start == 0 || start > p->sp) return fail(p, LILY_ERR_FORMAT, "no container under the items");
    LilyPkObj *l = p->stack[start - 1];
    if (l->type == want) {
        for (size_t i = start; i < p->sp; i++) LILY_TRY(add_item(p, l, p->stack[i]));
    } else if (l->type != LILY_PK_OPAQUE) {
        return fail(p, LILY_ERR_FORMAT, "appending to a %s", lily_pk_type_name(l->type));
    }
    p->sp = start;
    return LILY_OK;
}

static LilyStatus step(LilyPickle *p, int *stop)
{
    LilyPkObj *o = NULL, *a = NULL;
    size_t start = 0;
    uint64_t n = 0;
    p->op_off = p->pos;
    p->op = p->data[p->pos++];
    switch (p->op) {
    case 0x80: /* PROTO */
        LILY_TRY(need(p, 1));
        if (p->data[p->pos] > 5)
            return fail(p, LILY_ERR_UNSUPPORTED, "pickle protocol %u", p->data[p->pos]);
        p->pos++;
        return LILY_OK;
    case 0x95: /* FRAME: framing is only a hint for buffered readers */
        LILY_TRY(need(p, 8));
        p->pos += 8;
        return LILY_OK;
    case '}': return push(p, new_obj(p, LILY_PK_DICT));
    case ']': return push(p, new_obj(p, LILY_PK_LIST));
    case ')': return push(p, new_obj(p, LILY_PK_TUPLE));
    case 0x8f: return push(p, new_obj(p, LILY_PK_SET));
    case '(':
        if (p->n_marks == p->cap_marks) {
            if (p->cap_marks >= PK_MAX_MARKS)
                return fail(p, LILY_ERR_FORMAT, "more than %u nested MARKs", PK_MAX_MARKS);
            size_t cap = p->cap_marks ? p->cap_marks * 2 : 64;
            size_t *m = realloc(p->marks, cap * sizeof *m);
            if (!m) return oom(p);
            p->marks = m;
            p->cap_marks = cap;
        }
        p->marks[p->n_marks++] = p->sp;
        return LILY_OK;
    case 'X': LILY_TRY(need(p, 4)); n = read_le(p, 4); return push_text(p, LILY_PK_STR, n);
    case 0x8c: LILY_TRY(need(p, 1)); n = read_le(p, 1); return push_text(p, LILY_PK_STR, n);
    case 0x8d: LILY_TRY(need(p, 8)); n = read_le(p, 8); return push_text(p, LILY_PK_STR, n);
    case 'T':
        LILY_TRY(need(p, 4));
        n = read_le(p, 4);
        if (n & 0x80000000u) return fail(p, LILY_ERR_FORMAT, "negative string length");
        return push_text(p, LILY_PK_STR, n);
    case 'U': LILY_TRY(need(p, 1)); n = read_le(p, 1); return push_text(p, LILY_PK_STR, n);
    case 'B': LILY_TRY(need(p, 4)); n = read_le(p, 4); return push_text(p, LILY_PK_BYTES, n);
    case 'C': LILY_TRY(need(p, 1)); n = read_le(p, 1); return push_text(p, LILY_PK_BYTES, n);
    case 0x8e: LILY_TRY(need(p, 8)); n = read_le(p, 8); return push_text(p, LILY_PK_BYTES, n);
    case 'J': LILY_TRY(need(p, 4)); return push_int(p, (int32_t)(uint32_t)read_le(p, 4));
    case 'K': LILY_TRY(need(p, 1)); return push_int(p, (int64_t)read_le(p, 1));
    case 'M': LILY_TRY(need(p, 2)); return push_int(p, (int64_t)read_le(p, 2));
    case 0x8a:
    case 0x8b: {
        int width = p->op == 0x8a ? 1 : 4;
        LILY_TRY(need(p, (size_t)width));
        n = read_le(p, width);
        LILY_TRY(need(p, n));
        if (n > 8) { /* wider than int64: keep it as an inert value */
            p->pos += (size_t)n;
            o = new_obj(p, LILY_PK_OPAQUE);
            if (!o) return oom(p);
            o->u.global.dtype_known = -1;
            return push(p, o);
        }
        uint64_t v = n ? read_le(p, (int)n) : 0;
        if (n && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~0ull << (8 * n); /* sign-extend */
        return push_int(p, (int64_t)v);
    }
    case 'G': {
        LILY_TRY(need(p, 8));
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = (bits << 8) | p->data[p->pos + (size_t)i];
        p->pos += 8;
        o = new_obj(p, LILY_PK_FLOAT);
        if (o) memcpy(&o->u.f, &bits, 8);
        return push(p, o);
    }
    case 'N': return push(p, new_obj(p, LILY_PK_NONE));
    case 0x88:
    case 0x89:
        o = new_obj(p, LILY_PK_BOOL);
        if (o) o->u.i = p->op == 0x88;
        return push(p, o);
    case 0x85:
    case 0x86:
    case 0x87: {
        size_t k = (size_t)(p->op - 0x84);
        if (p->sp < floor_sp(p) + k) return fail(p, LILY_ERR_FORMAT, "stack underflow");
        return collect(p, LILY_PK_TUPLE, p->sp - k);
    }
    case 't': LILY_TRY(pop_mark(p, &start)); return collect(p, LILY_PK_TUPLE, start);
    case 'l': LILY_TRY(pop_mark(p, &start)); return collect(p, LILY_PK_LIST, start);
    case 0x91: LILY_TRY(pop_mark(p, &start)); return collect(p, LILY_PK_SET, start);
    case 'd':
        LILY_TRY(pop_mark(p, &start));
        if ((p->sp - start) % 2) return fail(p, LILY_ERR_FORMAT, "an odd number of dict items");
        return collect(p, LILY_PK_DICT, start);
    case 'a':
        if (p->sp < floor_sp(p) + 2) return fail(p, LILY_ERR_FORMAT, "stack underflow");
        return op_appends(p, p->sp - 1, LILY_PK_LIST);
    case 'e': LILY_TRY(pop_mark(p, &start)); return op_appends(p, start, LILY_PK_LIST);
    case 0x90: LILY_TRY(pop_mark(p, &start)); return op_appends(p, start, LILY_PK_SET);
    case 's':
        if (p->sp < floor_sp(p) + 3) return fail(p, LILY_ERR_FORMAT, "stack underflow");
        return op_setitems(p, p->sp - 2);
    case 'u': LILY_TRY(pop_mark(p, &start)); return op_setitems(p, start);
    case '0': return pop(p, &o);
    case '1': LILY_TRY(pop_mark(p, &start)); p->sp = start; return LILY_OK;
    case '2': LILY_TRY(top(p, &o)); return push(p, o);
    case 'q': LILY_TRY(need(p, 1)); return memo_put(p, read_le(p, 1));
    case 'r': LILY_TRY(need(p, 4)); return memo_put(p, read_le(p, 4));
    case 0x94: return memo_put(p, p->n_memo);
    case 'h': LILY_TRY(need(p, 1)); return memo_get(p, read_le(p, 1));
    case 'j': LILY_TRY(need(p, 4)); return memo_get(p, read_le(p, 4));
    case 'c': return op_global(p);
    case 0x93: return op_stack_global(p);
    case 'R': return op_reduce(p);
    case 0x81: return op_newobj(p);
    case 'b': /* BUILD: set state on an object; Lily keeps the object and drops the state */
        LILY_TRY(pop(p, &a));
        return top(p, &o);
    case 'Q': return op_binpersid(p);
    case '.':
        LILY_TRY(pop(p, &o));
        p->root = o;
        *stop = 1;
        return LILY_OK;
    default:
        return fail(p, LILY_ERR_UNSUPPORTED, "unsupported pickle opcode 0x%02x: Lily reads only "
                    "the opcodes a PyTorch state dict uses (re-save the checkpoint with torch.save)",
                    p->op);
    }
}

LilyStatus lily_pickle_load(LilyContext *ctx, const char *origin, const uint8_t *data, size_t len,
                            LilyPickle **out, size_t *consumed)
{
    *out = NULL;
    LilyPickle *p = calloc(1, sizeof *p);
    if (!p) return lily_error(ctx, LILY_ERR_NO_MEMORY, "%s: out of memory", origin);
    p->ctx = ctx;
    p->origin = origin;
    p->data = data;
    p->len = len;
    int stop = 0;
    LilyStatus st = LILY_OK;
    while (!stop) {
        if (p->pos >= p->len) {
            st = lily_error(ctx, LILY_ERR_FORMAT, "%s: the pickle ends at byte %zu without a STOP "
                            "opcode: truncated or damaged", origin, len);
            break;
        }
        st = step(p, &stop);
        if (st != LILY_OK) break;
    }
    if (st != LILY_OK) {
        lily_pickle_free(p);
        return st;
    }
    if (consumed) *consumed = p->pos;
    /* The stacks are no longer needed; the values stay. */
    free(p->stack);
    free(p->marks);
    free(p->memo);
    p->stack = NULL;
    p->marks = NULL;
    p->memo = NULL;
    *out = p;
    return LILY_OK;
}

void lily_pickle_free(LilyPickle *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n_objs; i++) {
        LilyPkObj *o = p->objs[i];
        switch (o->type) {
        case LILY_PK_STR:
        case LILY_PK_BYTES: free(o->u.str.s); break;
        case LILY_PK_TUPLE:
        case LILY_PK_LIST:
        case LILY_PK_DICT:
        case LILY_PK_SET: free(o->u.seq.items); break;
        case LILY_PK_GLOBAL:
            free(o->u.global.module);
            free(o->u.global.name);
            break;
        case LILY_PK_STORAGE: free(o->u.storage.key); break;
        default: break; /* OPAQUE borrows its callable's strings */
        }
        free(o);
    }
    free(p->objs);
    free(p->stack);
    free(p->marks);
    free(p->memo);
    free(p);
}

const LilyPkObj *lily_pickle_root(const LilyPickle *p) { return p->root; }
size_t lily_pickle_n_objects(const LilyPickle *p) { return p->n_objs; }
const LilyPkObj *lily_pickle_object(const LilyPickle *p, size_t i)
{
    return i < p->n_objs ? p->objs[i] : NULL;
}

const LilyPkObj *lily_pk_dict_get(const LilyPkObj *d, const char *key)
{
    if (!d || d->type != LILY_PK_DICT) return NULL;
    const LilyPkObj *found = NULL;
    for (int i = 0; i + 1 < d->u.seq.n; i += 2) {
        const LilyPkObj *k = d->u.seq.items[i];
        if (k->type == LILY_PK_STR && strcmp(k->u.str.s, key) == 0) found = d->u.seq.items[i + 1];
    }
    return found; /* the last assignment wins, as in Python */
}
