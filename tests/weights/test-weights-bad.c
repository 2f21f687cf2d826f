/* tests/weights/test-weights-bad.c - damaged, hostile and mismatched model files: each one a
 * clear error naming the file and the tensor, entry or byte offset, never a crash.
 *
 * Copies of shared/audiosr/tiny-a.bin are truncated or patched at test time (with the zip CRC
 * of data.pkl recomputed where the patch must reach the pickle), crafted pickles are wrapped
 * in a minimal stored zip, and safetensors headers are written by hand. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/test-util.h"
#include "weights/arch.h"
#include "weights-test.h"

static void expect_in(const char *msg, const char *part)
{
    if (!strstr(msg, part)) g_test_message("expected '%s' in: %s", part, msg);
    g_assert_nonnull(strstr(msg, part));
}

/* A 0-byte file is refused as empty. */
static void test_empty(void)
{
    LilyContext *ctx = wt_context();
    char *p = wt_tmp("empty.bin");
    wt_write(p, "", 0);
    expect_in(wt_open_fails(ctx, p, LILY_ERR_FORMAT), "empty (0 bytes)");
    g_free(p);
    lily_context_free(ctx);
}

/* Unknown leading bytes are refused, showing them. */
static void test_wrong_magic(void)
{
    LilyContext *ctx = wt_context();
    char *src = lt_ref_path("tiny-a.bin");
    size_t len;
    uint8_t *d = wt_read(src, &len);
    memcpy(d, "XYZW", 4);
    char *p = wt_tmp("magic.bin");
    wt_write(p, d, len);
    expect_in(wt_open_fails(ctx, p, LILY_ERR_FORMAT), "not a model file (it starts with 58 59 5a 57");
    g_free(d);
    g_free(p);
    g_free(src);
    lily_context_free(ctx);
}

/* Missing files and folders are I/O errors naming the path. */
static void test_not_a_file(void)
{
    LilyContext *ctx = wt_context();
    expect_in(wt_open_fails(ctx, lt_tmpdir(), LILY_ERR_IO), "not a regular file");
    char *p = wt_tmp("does-not-exist.bin");
    expect_in(wt_open_fails(ctx, p, LILY_ERR_IO), "cannot open");
    g_free(p);
    lily_context_free(ctx);
}

/* tiny-a.bin cut at several lengths is a format error each time (no end record, or not even
 * the zip magic). */
static void test_truncated_archive(void)
{
    LilyContext *ctx = wt_context();
    char *src = lt_ref_path("tiny-a.bin");
    size_t len;
    uint8_t *d = wt_read(src, &len);
    size_t cuts[] = {1, 3, 30, 1000, len / 2, len - 100, len - 23};
    char *p = wt_tmp("truncated.bin");
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        wt_write(p, d, cuts[i]);
        const char *m = wt_open_fails(ctx, p, LILY_ERR_FORMAT);
        g_assert_true(strstr(m, "truncated") || strstr(m, "not a model file"));
    }
    g_free(p);
    g_free(d);
    g_free(src);
    lily_context_free(ctx);
}

/* A copy of tiny-a.bin in memory with one zip entry located, to be patched, written out under
 * another name and opened: the shape of the damaged-archive tests below. */
typedef struct Damaged {
    LilyContext *ctx;
    uint8_t *d;
    size_t len, local, data, central; /* offsets of `entry`: local header, data, central record */
    char *path;
} Damaged;

static Damaged damaged_begin(const char *entry)
{
    Damaged f = {.ctx = wt_context()};
    char *src = lt_ref_path("tiny-a.bin");
    f.d = wt_read(src, &f.len);
    g_free(src);
    g_assert_true(wt_zip_locate(f.d, f.len, entry, &f.local, &f.data, &f.central));
    return f;
}

/* Writes the patched copy as `name` and returns the error message of opening it. */
static const char *damaged_fails(Damaged *f, const char *name, LilyStatus want)
{
    f->path = wt_tmp(name);
    wt_write(f->path, f->d, f->len);
    return wt_open_fails(f->ctx, f->path, want);
}

static void damaged_end(Damaged *f)
{
    g_free(f->path);
    g_free(f->d);
    lily_context_free(f->ctx);
}

/* A storage entry whose size runs past the end of the file is named, with its offset. */
static void test_entry_past_end(void)
{
    Damaged f = damaged_begin("tiny-a/data/100");
    for (int k = 0; k < 8; k++) f.d[f.central + 20 + k] = k % 4 == 3 ? 0x7f : 0xff; /* sizes ~2 GB */
    const char *m = damaged_fails(&f, "past-end.bin", LILY_ERR_FORMAT);
    expect_in(m, "'tiny-a/data/100'");
    expect_in(m, "runs past the end of the file");
    damaged_end(&f);
}

/* An opcode outside the state-dict set is refused by name and byte offset. */
static void test_unsupported_opcode(void)
{
    Damaged f = damaged_begin("tiny-a/data.pkl");
    g_assert_cmpint(f.d[f.data + 2], ==, '}');
    f.d[f.data + 2] = 'i'; /* INST: executes a class in Python */
    wt_zip_fix_crc(f.d, f.len, "tiny-a/data.pkl");
    const char *m = damaged_fails(&f, "opcode.bin", LILY_ERR_UNSUPPORTED);
    expect_in(m, "pickle byte 2 (opcode INST)");
    expect_in(m, "data.pkl");
    damaged_end(&f);
}

/* A damaged data.pkl (CRC mismatch) is caught before its pickle runs. */
static void test_pickle_crc(void)
{
    Damaged f = damaged_begin("tiny-a/data.pkl");
    f.d[f.data + 30] ^= 0x20;
    expect_in(damaged_fails(&f, "crc.bin", LILY_ERR_FORMAT), "fails its CRC-32 check");
    damaged_end(&f);
}

/* A tensor whose view reaches past its storage is named with its storage. */
static void test_tensor_past_storage(void)
{
    Damaged f = damaged_begin("tiny-a/data.pkl");
    /* logvar's size tuple: BININT2 1000 at pickle byte 139 (see pickle.c's dump) -> 2000. */
    g_assert_cmpint(f.d[f.data + 139], ==, 'M');
    g_assert_cmpint(f.d[f.data + 140] | (f.d[f.data + 141] << 8), ==, 1000);
    f.d[f.data + 140] = 2000 & 0xff;
    f.d[f.data + 141] = 2000 >> 8;
    wt_zip_fix_crc(f.d, f.len, "tiny-a/data.pkl");
    const char *m = damaged_fails(&f, "past-storage.bin", LILY_ERR_FORMAT);
    expect_in(m, "tensor 'logvar' (2000 at element offset 0) reaches past the end of its storage");
    expect_in(m, "tiny-a/data/0");
    damaged_end(&f);
}

/* ---- crafted pickles ---- */

typedef struct Case {
    const char *what;
    LilyStatus status;
    const char *message;
} Case;

static void run_case(LilyContext *ctx, const Case *c, const WtPickle *p, int n_storages, size_t storage_bytes)
{
    static float zeros[64];
    const void *st[4] = {zeros, zeros, zeros, zeros};
    size_t sizes[4] = {storage_bytes, storage_bytes, storage_bytes, storage_bytes};
    char *path = wt_tmp("crafted.bin");
    wt_write_torch_zip(path, p->b, p->n, n_storages, st, sizes);
    g_test_message("case: %s", c->what);
    if (c->status == LILY_OK) {
        LilyWeights *w = NULL;
        LilyStatus s = lily_weights_open(ctx, path, &w);
        if (s != LILY_OK) g_test_message("%s", lily_context_error(ctx));
        g_assert_cmpint(s, ==, LILY_OK);
        lily_weights_close(w);
    } else {
        expect_in(wt_open_fails(ctx, path, c->status), c->message);
    }
    g_free(path);
}

/* Hostile and malformed pickles: bounded stacks and marks, missing memo entries, truncation,
 * calls Lily does not make, storages that are absent, too small or of unknown type. */
static void test_crafted_pickles(void)
{
    LilyContext *ctx = wt_context();
    const int64_t sz2[] = {2}, st1[] = {1};
    WtPickle p = {0};

    p.n = 0;
    wt_pk_bytes(&p, "\x80\x02}q\x00.", 6);
    run_case(ctx, &(Case){"a dict without tensors", LILY_ERR_FORMAT, "no state dict of tensors"}, &p, 0, 0);

    p.n = 0;
    wt_pk_raw(&p, "\x80\x02h\x05.");
    run_case(ctx, &(Case){"BINGET of a memo entry never stored", LILY_ERR_FORMAT, "memo entry 5 was never stored"}, &p, 0, 0);

    p.n = 0;
    wt_pk_raw(&p, "\x80\x02X\xff\xff\xff\x7f" "abc");
    run_case(ctx, &(Case){"a string longer than the pickle", LILY_ERR_FORMAT, "truncated"}, &p, 0, 0);

    p.n = 0;
    wt_pk_raw(&p, "\x80\x02N");
    run_case(ctx, &(Case){"no STOP", LILY_ERR_FORMAT, "without a STOP"}, &p, 0, 0);

    p.n = 0;
    wt_pk_raw(&p, "\x80\x02K\x01)R.");
    run_case(ctx, &(Case){"REDUCE on an int", LILY_ERR_FORMAT, "not callable"}, &p, 0, 0);

    p.n = 0;
    wt_pk_raw(&p, "\x80\x02");
    wt_pk_str(&p, "abc");
    wt_pk_raw(&p, "Q.");
    run_case(ctx, &(Case){"a persistent id that is not a storage", LILY_ERR_UNSUPPORTED, "persistent id"}, &p, 0, 0);

    p.n = 0;
    wt_pk_raw(&p, "\x80\x02.");
    run_case(ctx, &(Case){"STOP on an empty stack", LILY_ERR_FORMAT, "stack underflow"}, &p, 0, 0);

    p.n = 0;
    wt_pk_raw(&p, "\x80\x02\x8a\x0c" "abcdefghijkl.");
    run_case(ctx, &(Case){"a 96-bit LONG1 as the whole object", LILY_ERR_FORMAT, "no state dict"}, &p, 0, 0);

    wt_pk_state_begin(&p);
    wt_pk_str(&p, "x");
    wt_pk_tensor(&p, "FloatStorage", "9", 2, 0, 1, sz2, st1);
    wt_pk_state_end(&p);
    run_case(ctx, &(Case){"a storage not in the archive", LILY_ERR_FORMAT, "'t/data/9' named in data.pkl is not in the archive"}, &p, 1, 8);

    wt_pk_state_begin(&p);
    wt_pk_str(&p, "x");
    wt_pk_tensor(&p, "FloatStorage", "0", 1000, 0, 1, sz2, st1);
    wt_pk_state_end(&p);
    run_case(ctx, &(Case){"a storage smaller than declared", LILY_ERR_FORMAT, "storage 't/data/0' holds 8 bytes"}, &p, 1, 8);

    wt_pk_state_begin(&p);
    wt_pk_str(&p, "x");
    wt_pk_tensor(&p, "ComplexFloatStorage", "0", 1, 0, 1, sz2, st1);
    wt_pk_state_end(&p);
    run_case(ctx, &(Case){"an element type Lily does not read", LILY_ERR_UNSUPPORTED, "tensor 'x' is stored as torch.ComplexFloatStorage"}, &p, 1, 8);

    const int64_t sz7[] = {1, 1, 1, 1, 1, 1, 2}, st7[] = {2, 2, 2, 2, 2, 2, 1};
    wt_pk_state_begin(&p);
    wt_pk_str(&p, "x");
    wt_pk_tensor(&p, "FloatStorage", "0", 2, 0, 7, sz7, st7);
    wt_pk_state_end(&p);
    run_case(ctx, &(Case){"seven dimensions", LILY_ERR_UNSUPPORTED, "7 dimensions"}, &p, 1, 8);

    const int64_t szo[] = {2}, sto[] = {1};
    wt_pk_state_begin(&p);
    wt_pk_str(&p, "x");
    wt_pk_tensor(&p, "FloatStorage", "0", 2, INT64_MAX / 2, 1, szo, sto);
    wt_pk_state_end(&p);
    run_case(ctx, &(Case){"an offset far past the storage", LILY_ERR_FORMAT, "reaches past the end of its storage"}, &p, 1, 8);

    /* A callable Lily does not know (os.system) is never called: its entry becomes an inert
     * value, skipped from the state dict and listed in the metadata. */
    char *marker = wt_tmp("pwned");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "touch %s", marker);
    wt_pk_state_begin(&p);
    wt_pk_str(&p, "x");
    wt_pk_tensor(&p, "FloatStorage", "0", 2, 0, 1, sz2, st1);
    wt_pk_str(&p, "evil");
    wt_pk_raw(&p, "cos\nsystem\n");
    wt_pk_str(&p, cmd);
    wt_pk_raw(&p, "\x85R");
    wt_pk_state_end(&p);
    run_case(ctx, &(Case){"os.system inside the state dict", LILY_OK, NULL}, &p, 1, 8);
    g_assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
    g_free(marker);

    /* 70000 nested MARKs and a stack of 2^20 + 1 values stop at their bounds. */
    char *path = wt_tmp("marks.bin");
    uint8_t *marks = g_malloc(70010);
    memcpy(marks, "\x80\x02", 2);
    memset(marks + 2, '(', 70000);
    marks[70002] = '.';
    wt_write_torch_zip(path, marks, 70003, 0, NULL, NULL);
    expect_in(wt_open_fails(ctx, path, LILY_ERR_FORMAT), "nested MARKs");
    g_free(marks);
    size_t n = 2 + (1u << 20) + 2;
    uint8_t *nones = g_malloc(n);
    memcpy(nones, "\x80\x02", 2);
    memset(nones + 2, 'N', n - 2);
    wt_write_torch_zip(path, nones, n, 0, NULL, NULL);
    expect_in(wt_open_fails(ctx, path, LILY_ERR_FORMAT), "the stack grew past");
    g_free(nones);
    g_free(path);
    wt_pk_free(&p);
    lily_context_free(ctx);
}

/* The tiny model read with AudioSR's basic config is a shape error naming the first tensor
 * and both shapes, and telling the user to pass the checkpoint's config. */
static void test_shape_disagrees_with_config(void)
{
    LilyContext *ctx = wt_context();
    char *src = lt_ref_path("tiny-a.bin");
    LilyWeights *w = NULL;
    g_assert_cmpint(lily_weights_open(ctx, src, &w), ==, LILY_OK);
    LilyModelConfig cfg;
    lily_model_config_basic(&cfg);
    LilyStatus st = lily_weights_check(ctx, w, &cfg, 0, NULL, NULL);
    g_test_message("%s", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_ERR_SHAPE);
    expect_in(lily_context_error(ctx), "tensor 'model.diffusion_model.time_embed.0.weight' is 128x32, the config expects 512x128");
    expect_in(lily_context_error(ctx), "--config");
    lily_weights_close(w);
    g_free(src);
    lily_context_free(ctx);
}

typedef struct Found {
    int required_nonfinite, other_nonfinite;
} Found;

static void on_item(const LilyCheckItem *it, void *user)
{
    Found *f = user;
    if (it->kind != LILY_CHECK_NONFINITE) return;
    if (it->required) f->required_nonfinite++;
    else f->other_nonfinite++;
    g_assert_cmpint(it->bad_index, ==, 3);
}

/* A NaN in a tensor super-resolution reads is found by the value scan, named with its element
 * and file offset; the same file passes the structural check. */
static void test_nan_in_weights(void)
{
    LilyContext *ctx = wt_context();
    char *src = lt_ref_path("tiny-a.bin");
    char *ypath = lt_ref_path("tiny-a.yaml");
    LilyWeights *w = NULL;
    g_assert_cmpint(lily_weights_open(ctx, src, &w), ==, LILY_OK);
    const LilyWeight *t = lily_weights_find(w, "model.diffusion_model.out.2.bias");
    uint64_t off = t->file_offset + 3 * 4;
    lily_weights_close(w);
    size_t len;
    uint8_t *d = wt_read(src, &len);
    float nan = NAN;
    memcpy(d + off, &nan, 4);
    char *p = wt_tmp("nan.bin");
    wt_write(p, d, len);
    g_assert_cmpint(lily_weights_open(ctx, p, &w), ==, LILY_OK);
    LilyModelConfig cfg;
    g_assert_cmpint(lily_model_config_load(ctx, ypath, &cfg), ==, LILY_OK);
    g_assert_cmpint(lily_weights_check(ctx, w, &cfg, 0, NULL, NULL), ==, LILY_OK);
    Found f = {0};
    LilyStatus st = lily_weights_check(ctx, w, &cfg, LILY_CHECK_VALUES, on_item, &f);
    g_test_message("%s", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_ERR_NUMERIC);
    char want[128];
    snprintf(want, sizeof want, "tensor 'model.diffusion_model.out.2.bias' holds nan at element 3 "
             "(file offset %llu)", (unsigned long long)off);
    expect_in(lily_context_error(ctx), want);
    /* The EMA copy shares the storage: found too, but it does not stop super-resolution. */
    g_assert_cmpint(f.required_nonfinite, ==, 1);
    g_assert_cmpint(f.other_nonfinite, ==, 1);
    lily_weights_close(w);
    g_free(d);
    g_free(p);
    g_free(ypath);
    g_free(src);
    lily_context_free(ctx);
}

/* ---- safetensors ---- */

static char *write_st(const char *name, const char *header, size_t data_len, int64_t header_len_override)
{
    size_t hl = strlen(header);
    uint64_t field = header_len_override >= 0 ? (uint64_t)header_len_override : hl;
    size_t n = 8 + hl + data_len;
    uint8_t *f = g_malloc0(n);
    for (int i = 0; i < 8; i++) f[i] = (uint8_t)(field >> (8 * i));
    memcpy(f + 8, header, hl);
    char *p = wt_tmp(name);
    wt_write(p, f, n);
    g_free(f);
    return p;
}

/* Damaged safetensors headers: bad JSON (with its byte offset), a length past the file,
 * offsets that disagree with the shape, data past the end, unknown or unsupported dtypes,
 * non-string metadata, a repeated name, a nesting bomb. */
static void test_safetensors_bad(void)
{
    LilyContext *ctx = wt_context();
    const struct {
        const char *header;
        size_t data;
        int64_t hlen;
        LilyStatus st;
        const char *msg;
    } cases[] = {
        {"{#x\":{}}", 0, -1, LILY_ERR_FORMAT, "JSON header: expected a member name at byte 1"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 1 << 20,
         LILY_ERR_FORMAT, "header length (1048576 bytes) runs past the end of the file"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 12, -1, LILY_ERR_FORMAT,
         "tensor 'x': data_offsets [0, 8] do not match F32 3"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, -1, LILY_ERR_FORMAT,
         "tensor 'x' (bytes 0..16 of the data section"},
        {"{\"x\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1, LILY_ERR_FORMAT,
         "unknown dtype \"F99\""},
        {"{\"x\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, LILY_ERR_UNSUPPORTED,
         "tensor 'x' has dtype I8"},
        {"{\"__metadata__\":{\"a\":1}}", 0, -1, LILY_ERR_FORMAT, "metadata 'a'"},
        {"{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, -1, LILY_ERR_FORMAT,
         "tensor 'x' appears twice"},
        {"{\"x\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1, -1, LILY_ERR_FORMAT,
         "shape entry 0"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, -1,
         LILY_ERR_FORMAT, "impossible shape 4294967296x4294967296"},
        {"{\"x\":\"\\ud800\"}", 0, -1, LILY_ERR_FORMAT, "unpaired surrogate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = write_st("bad.safetensors", cases[i].header, cases[i].data, cases[i].hlen);
        expect_in(wt_open_fails(ctx, p, cases[i].st), cases[i].msg);
        g_free(p);
    }
    GString *deep = g_string_new("{\"x\":");
    for (int i = 0; i < 200; i++) g_string_append_c(deep, '[');
    for (int i = 0; i < 200; i++) g_string_append_c(deep, ']');
    g_string_append_c(deep, '}');
    char *p = write_st("deep.safetensors", deep->str, 0, -1);
    expect_in(wt_open_fails(ctx, p, LILY_ERR_FORMAT), "nested too deeply");
    g_string_free(deep, TRUE);
    g_free(p);
    lily_context_free(ctx);
}

/* A converted model file cut short, or with a damaged header, names the problem. */
static void test_safetensors_truncated(void)
{
    LilyContext *ctx = wt_context();
    char *src = lt_ref_path("tiny-a.bin");
    LilyWeights *w = NULL;
    g_assert_cmpint(lily_weights_open(ctx, src, &w), ==, LILY_OK);
    LilySafetensorsWriter *wr;
    g_assert_cmpint(lily_safetensors_writer_new(ctx, &wr), ==, LILY_OK);
    for (int i = 0; i < 40; i++) {
        const LilyWeight *t = lily_weights_at(w, i);
        g_assert_cmpint(lily_safetensors_writer_add(wr, t->name, LILY_DTYPE_F32, t->dtype, t->ndim, t->shape, t->data), ==, LILY_OK);
    }
    char *good = wt_tmp("good.safetensors");
    g_assert_cmpint(lily_safetensors_writer_write(wr, good, NULL, NULL), ==, LILY_OK);
    lily_safetensors_writer_free(wr);
    lily_weights_close(w);
    size_t len;
    uint8_t *d = wt_read(good, &len);
    char *p = wt_tmp("cut.safetensors");
    wt_write(p, d, len - 100);
    expect_in(wt_open_fails(ctx, p, LILY_ERR_FORMAT), "the file is truncated");
    wt_write(p, d, 200);
    expect_in(wt_open_fails(ctx, p, LILY_ERR_FORMAT), "runs past the end of the file");
    d[9] = '#';
    wt_write(p, d, len);
    expect_in(wt_open_fails(ctx, p, LILY_ERR_FORMAT), "JSON header");
    g_free(d);
    g_free(p);
    g_free(good);
    g_free(src);
    lily_context_free(ctx);
}

/* A legacy torch file cut inside its storages, and a plain pickle that is not a torch file,
 * are refused. */
static void test_legacy_bad(void)
{
    LilyContext *ctx = wt_context();
    char *src = wt_fixture("legacy.pt");
    size_t len;
    uint8_t *d = wt_read(src, &len);
    char *p = wt_tmp("legacy-cut.pt");
    wt_write(p, d, len - 10);
    expect_in(wt_open_fails(ctx, p, LILY_ERR_FORMAT), "truncated");
    wt_write(p, "\x80\x02K\x01.", 5);
    expect_in(wt_open_fails(ctx, p, LILY_ERR_UNSUPPORTED), "not a PyTorch checkpoint");
    g_free(p);
    g_free(d);
    g_free(src);
    lily_context_free(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/weights/bad/empty-file", test_empty);
    g_test_add_func("/lily/weights/bad/wrong-magic", test_wrong_magic);
    g_test_add_func("/lily/weights/bad/not-a-file", test_not_a_file);
    g_test_add_func("/lily/weights/bad/truncated-archive", test_truncated_archive);
    g_test_add_func("/lily/weights/bad/entry-past-end-of-file", test_entry_past_end);
    g_test_add_func("/lily/weights/bad/unsupported-opcode", test_unsupported_opcode);
    g_test_add_func("/lily/weights/bad/pickle-crc", test_pickle_crc);
    g_test_add_func("/lily/weights/bad/tensor-past-storage", test_tensor_past_storage);
    g_test_add_func("/lily/weights/bad/crafted-pickles", test_crafted_pickles);
    g_test_add_func("/lily/weights/bad/shape-disagrees-with-config", test_shape_disagrees_with_config);
    g_test_add_func("/lily/weights/bad/nan-in-weights", test_nan_in_weights);
    g_test_add_func("/lily/weights/bad/safetensors-headers", test_safetensors_bad);
    g_test_add_func("/lily/weights/bad/safetensors-truncated", test_safetensors_truncated);
    g_test_add_func("/lily/weights/bad/legacy", test_legacy_bad);
    return g_test_run();
}
