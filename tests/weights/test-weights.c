/* tests/weights/test-weights.c - reading AudioSR checkpoints and Lily safetensors files.
 *
 * References: shared/audiosr/tiny-a.bin (a real PyTorch zip checkpoint) with
 * tiny-a-digest.tsv (SHA-256 of every tensor, computed by make-fixtures.py with Python's own
 * zipfile and pickle, not with Lily), and the fixtures of data/ (make-fixtures.py), whose
 * values follow formulas recomputed here. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common/test-util.h"
#include "weights-test.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static LilyWeights *open_ok(LilyContext *ctx, const char *path)
{
    LilyWeights *w = NULL;
    LilyStatus st = lily_weights_open(ctx, path, &w);
    if (st != LILY_OK) g_test_message("%s", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_OK);
    return w;
}

/* tiny-a.bin opens as a PyTorch zip with its 3212 tensors, int32 num_updates, and the storage
 * sharing make-fixtures' reading shows (EMA = model, cond decoder/vocoder = first stage). */
static void test_tiny_a_index(void)
{
    LilyContext *ctx = wt_context();
    char *path = lt_ref_path("tiny-a.bin");
    double t0 = now_ms();
    LilyWeights *w = open_ok(ctx, path);
    double t1 = now_ms();
    g_test_message("tiny-a.bin: %d tensors indexed in %.1f ms", lily_weights_count(w), t1 - t0);
    g_assert_cmpint(lily_weights_format(w), ==, LILY_WEIGHTS_TORCH_ZIP);
    g_assert_cmpint(lily_weights_count(w), ==, 3212);
    g_assert_cmpstr(lily_weights_at(w, 0)->name, ==, "logvar");
    g_assert_cmpstr(lily_weights_at(w, 3211)->name, ==, "cond_stage_models.0.vae.vocoder.conv_post.weight");
    g_assert_cmpstr(lily_weights_metadata(w, "torch.state_dict_key"), ==, "state_dict");
    const LilyWeight *nu = lily_weights_find(w, "model_ema.num_updates");
    g_assert_nonnull(nu);
    g_assert_cmpint(nu->dtype, ==, LILY_DTYPE_I32);
    g_assert_cmpint(nu->ndim, ==, 0);
    const LilyWeight *a = lily_weights_find(w, "model.diffusion_model.input_blocks.0.0.weight");
    const LilyWeight *b = lily_weights_find(w, "model_ema.diffusion_modelinput_blocks00weight");
    g_assert_nonnull(a);
    g_assert_nonnull(b);
    g_assert_cmpint(a->ndim, ==, 4);
    g_assert_cmpint(a->shape[0], ==, 32);
    g_assert_cmpint(a->shape[1], ==, 32);
    g_assert_cmpint(a->storage, ==, b->storage);
    g_assert_true(a->data == b->data);
    const LilyWeight *v1 = lily_weights_find(w, "first_stage_model.vocoder.conv_pre.weight");
    const LilyWeight *v2 = lily_weights_find(w, "cond_stage_models.0.vae.vocoder.conv_pre.weight");
    g_assert_cmpint(v1->storage, ==, v2->storage);
    const LilyWeight *e1 = lily_weights_find(w, "first_stage_model.encoder.conv_in.weight");
    const LilyWeight *e2 = lily_weights_find(w, "cond_stage_models.0.vae.encoder.conv_in.weight");
    g_assert_cmpint(e1->storage, !=, e2->storage);
    g_assert_null(lily_weights_find(w, "model.diffusion_model.nope"));
    lily_weights_close(w);
    g_free(path);
    lily_context_free(ctx);
}

typedef struct Digest {
    char group[64];
    int count;
    GChecksum *sum;
} Digest;

static void digest_tensor(GChecksum *c, const LilyWeight *t)
{
    g_checksum_update(c, (const guchar *)t->name, (gssize)strlen(t->name) + 1);
    const char *dt = lily_dtype_name(t->dtype);
    g_checksum_update(c, (const guchar *)dt, (gssize)strlen(dt) + 1);
    for (int d = 0; d < t->ndim; d++) {
        uint8_t le[8];
        for (int k = 0; k < 8; k++) le[k] = (uint8_t)((uint64_t)t->shape[d] >> (8 * k));
        g_checksum_update(c, le, 8);
    }
    g_checksum_update(c, t->data, (gssize)t->nbytes);
}

/* Every loaded tensor's name, dtype, shape and bytes hash to the digests an independent
 * (Python zipfile + pickle + numpy) reading of tiny-a.bin produced, per top-level group. */
static void test_tiny_a_values_match_digest(void)
{
    LilyContext *ctx = wt_context();
    char *path = lt_ref_path("tiny-a.bin");
    LilyWeights *w = open_ok(ctx, path);
    char *dpath = g_build_filename(LILY_SOURCE_DIR, "tiny-a-digest.tsv", NULL);
    size_t len;
    char *text = (char *)wt_read(dpath, &len);
    Digest groups[16];
    int n_groups = 0;
    GChecksum *all = g_checksum_new(G_CHECKSUM_SHA256);
    for (int i = 0; i < lily_weights_count(w); i++) {
        const LilyWeight *t = lily_weights_at(w, i);
        char g[64];
        const char *dot = strchr(t->name, '.');
        if (dot) snprintf(g, sizeof g, "%.*s", (int)(dot - t->name), t->name);
        else snprintf(g, sizeof g, "(buffers)");
        int k;
        for (k = 0; k < n_groups && strcmp(groups[k].group, g) != 0; k++) {}
        if (k == n_groups) {
            g_assert_cmpint(n_groups, <, 16);
            snprintf(groups[k].group, sizeof groups[k].group, "%s", g);
            groups[k].count = 0;
            groups[k].sum = g_checksum_new(G_CHECKSUM_SHA256);
            n_groups++;
        }
        groups[k].count++;
        digest_tensor(groups[k].sum, t);
        digest_tensor(all, t);
    }
    int checked = 0;
    gchar **lines = g_strsplit(text, "\n", -1);
    for (gchar **l = lines; *l; l++) {
        if (!**l || **l == '#') continue;
        gchar **f = g_strsplit(*l, "\t", 3);
        g_assert_nonnull(f[1]);
        g_assert_nonnull(f[2]);
        const char *got;
        int count;
        if (strcmp(f[0], "(all)") == 0) {
            got = g_checksum_get_string(all);
            count = lily_weights_count(w);
        } else {
            int k;
            for (k = 0; k < n_groups && strcmp(groups[k].group, f[0]) != 0; k++) {}
            g_assert_cmpint(k, <, n_groups);
            got = g_checksum_get_string(groups[k].sum);
            count = groups[k].count;
        }
        g_test_message("%-18s %5d tensors  sha256 %.16s... (reference %.16s...)", f[0], count, got, f[2]);
        g_assert_cmpint(count, ==, atoi(f[1]));
        g_assert_cmpstr(got, ==, f[2]);
        checked++;
        g_strfreev(f);
    }
    g_assert_cmpint(checked, ==, n_groups + 1);
    g_strfreev(lines);
    for (int k = 0; k < n_groups; k++) g_checksum_free(groups[k].sum);
    g_checksum_free(all);
    g_free(text);
    g_free(dpath);
    lily_weights_close(w);
    g_free(path);
    lily_context_free(ctx);
}

/* Contiguous tensors are used in place: their bytes are the file's bytes at file_offset, read
 * here with plain file I/O, and the pointer lies inside the mapping (no copy). */
static void test_tiny_a_in_place(void)
{
    LilyContext *ctx = wt_context();
    char *path = lt_ref_path("tiny-a.bin");
    LilyWeights *w = open_ok(ctx, path);
    size_t len;
    uint8_t *file = wt_read(path, &len);
    const LilyWeight *first = lily_weights_at(w, 0);
    const uint8_t *base = (const uint8_t *)first->data - first->file_offset;
    for (int i = 0; i < lily_weights_count(w); i++) {
        const LilyWeight *t = lily_weights_at(w, i);
        g_assert_cmpuint(t->file_offset + t->nbytes, <=, len);
        g_assert_true(memcmp(t->data, file + t->file_offset, t->nbytes) == 0);
        g_assert_true((const uint8_t *)t->data == base + t->file_offset);
        g_assert_cmpuint((uintptr_t)t->data % 4, ==, 0);
    }
    g_test_message("%d tensors compared byte for byte with the file", lily_weights_count(w));
    g_free(file);
    lily_weights_close(w);
    g_free(path);
    lily_context_free(ctx);
}

static float storage_value(int key, int64_t i)
{
    return (float)((key + 1) * 0.25 * (double)i);
}

static float half_value(int key, int64_t i) { return (float)((key + 1) * 0.25 * (double)i - 1); }

static const float *f32(const LilyWeight *t)
{
    g_assert_cmpint(t->dtype, ==, LILY_DTYPE_F32);
    return t->data;
}

static void check_views(const char *fixture, LilyWeightsFormat want_format)
{
    LilyContext *ctx = wt_context();
    char *path = wt_fixture(fixture);
    LilyWeights *w = open_ok(ctx, path);
    g_assert_cmpint(lily_weights_format(w), ==, want_format);
    g_assert_cmpint(lily_weights_count(w), ==, 12);
    const LilyWeight *a = lily_weights_find(w, "a.f32");
    for (int i = 0; i < 12; i++) g_assert_cmpfloat(f32(a)[i], ==, storage_value(0, i));
    const LilyWeight *t = lily_weights_find(w, "a.t");
    g_assert_cmpint(t->shape[0], ==, 4);
    g_assert_cmpint(t->shape[1], ==, 3);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) g_assert_cmpfloat(f32(t)[i * 3 + j], ==, storage_value(0, j * 4 + i));
    const LilyWeight *s = lily_weights_find(w, "a.slice");
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) g_assert_cmpfloat(f32(s)[i * 2 + j], ==, storage_value(0, 4 + i * 4 + j));
    const LilyWeight *bc = lily_weights_find(w, "a.bcast");
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) g_assert_cmpfloat(f32(bc)[i * 3 + j], ==, storage_value(0, 1 + j * 2));
    const LilyWeight *h = lily_weights_find(w, "b.f16");
    g_assert_cmpint(h->dtype, ==, LILY_DTYPE_F16);
    for (int i = 0; i < 6; i++)
        g_assert_cmpfloat(lily_f16_to_f32(((const uint16_t *)h->data)[i]), ==, half_value(1, i));
    const LilyWeight *bf = lily_weights_find(w, "b.bf16");
    g_assert_cmpint(bf->dtype, ==, LILY_DTYPE_BF16);
    for (int i = 0; i < 6; i++)
        g_assert_cmpfloat(lily_bf16_to_f32(((const uint16_t *)bf->data)[i]), ==, half_value(2, i));
    const LilyWeight *l = lily_weights_find(w, "c.i64");
    g_assert_cmpint(l->dtype, ==, LILY_DTYPE_I64);
    for (int i = 0; i < 5; i++) g_assert_cmpint(((const int64_t *)l->data)[i], ==, 4 * 1000 * i - 7);
    const LilyWeight *sc = lily_weights_find(w, "c.i32");
    g_assert_cmpint(sc->ndim, ==, 0);
    g_assert_cmpint(*(const int32_t *)sc->data, ==, 5 * 1000 * 2 - 7);
    const LilyWeight *d = lily_weights_find(w, "d.f64");
    for (int i = 0; i < 3; i++) g_assert_cmpfloat(f32(d)[i], ==, storage_value(5, i));
    const LilyWeight *p = lily_weights_find(w, "e.param");
    for (int i = 0; i < 4; i++) g_assert_cmpfloat(f32(p)[i], ==, storage_value(6, i));
    const LilyWeight *sh = lily_weights_find(w, "f.shared");
    g_assert_cmpint(sh->storage, ==, a->storage);
    g_assert_true(memcmp(sh->data, a->data, a->nbytes) == 0);
    const LilyWeight *e = lily_weights_find(w, "g.empty");
    g_assert_cmpint(e->shape[0], ==, 0);
    g_assert_cmpuint(e->nbytes, ==, 0);
    g_assert_cmpstr(lily_weights_metadata(w, "torch.global_step"), ==, "1234");
    g_assert_cmpstr(lily_weights_metadata(w, "torch.epoch"), ==, "7");
    g_assert_nonnull(strstr(lily_weights_metadata(w, "torch.other_entries"), "optimizer_states"));
    g_test_message("%s: 12 tensors, every view and dtype as expected", fixture);
    lily_weights_close(w);
    g_free(path);
    lily_context_free(ctx);
}

/* Strided, offset, broadcast and shared views, f16/bf16/f64/i64/i32 storages,
 * _rebuild_parameter and top-level scalars read right from a stored zip with root 'archive/'. */
static void test_views_zip(void) { check_views("views.bin", LILY_WEIGHTS_TORCH_ZIP); }
/* The same object in a zip whose sizes and offsets are all in zip64 fields reads the same. */
static void test_views_zip64(void) { check_views("zip64.bin", LILY_WEIGHTS_TORCH_ZIP); }
/* The same object with every entry deflated reads the same. */
static void test_views_deflated(void) { check_views("deflated.bin", LILY_WEIGHTS_TORCH_ZIP); }
/* The same object in the legacy (pre-1.6) torch format reads the same. */
static void test_views_legacy(void) { check_views("legacy.pt", LILY_WEIGHTS_TORCH_LEGACY); }

static void le(GByteArray *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t x = (uint8_t)(v >> (8 * i));
        g_byte_array_append(b, &x, 1);
    }
}

/* Local header + name (+ zip64 sizes when big) for a stored entry at `at`, padded with an
 * extra field as PyTorch pads it so the data starts on a 64-byte boundary. */
static GByteArray *local_header(const char *name, uint32_t crc, uint64_t size, uint64_t at)
{
    GByteArray *b = g_byte_array_new();
    int big = size >= 0xffffffffu;
    uint64_t end = at + 30 + strlen(name) + (big ? 20 : 0);
    unsigned pad = (unsigned)((64 - (end + 4) % 64) % 64);
    le(b, 0x04034b50u, 4), le(b, 45, 2), le(b, 0, 2), le(b, 0, 2), le(b, 0, 4);
    le(b, crc, 4), le(b, big ? 0xffffffffu : size, 4), le(b, big ? 0xffffffffu : size, 4);
    le(b, strlen(name), 2), le(b, (big ? 20 : 0) + 4 + pad, 2);
    g_byte_array_append(b, (const guint8 *)name, (guint)strlen(name));
    if (big) le(b, 1, 2), le(b, 16, 2), le(b, size, 8), le(b, size, 8);
    le(b, 0x4246, 2), le(b, pad, 2); /* "FB": PyTorch's alignment padding */
    for (unsigned i = 0; i < pad; i++) le(b, 'Z', 1);
    return b;
}

static void central_entry(GByteArray *cd, const char *name, uint32_t crc, uint64_t size, uint64_t off)
{
    int big = size >= 0xffffffffu, far = off >= 0xffffffffu;
    le(cd, 0x02014b50u, 4), le(cd, 45, 2), le(cd, 45, 2), le(cd, 0, 2), le(cd, 0, 2), le(cd, 0, 4);
    le(cd, crc, 4), le(cd, big ? 0xffffffffu : size, 4), le(cd, big ? 0xffffffffu : size, 4);
    le(cd, strlen(name), 2), le(cd, (big ? 16 : 0) + (far ? 8 : 0) + ((big || far) ? 4 : 0), 2);
    le(cd, 0, 2), le(cd, 0, 2), le(cd, 0, 2), le(cd, 0, 4), le(cd, far ? 0xffffffffu : off, 4);
    g_byte_array_append(cd, (const guint8 *)name, (guint)strlen(name));
    if (big || far) {
        le(cd, 1, 2), le(cd, (big ? 16 : 0) + (far ? 8 : 0), 2);
        if (big) le(cd, size, 8), le(cd, size, 8);
        if (far) le(cd, off, 8);
    }
}

static void pwrite_all(int fd, const void *d, size_t n, uint64_t off)
{
    g_assert_cmpint(pwrite(fd, d, n, (off_t)off), ==, (ssize_t)n);
}

#define BIG_NUMEL 1100000000LL /* 4.4 GB of f32: past 4 GiB, like AudioSR's 6 GB file */

/* A sparse 4.4 GB checkpoint: storage 0 (a hole of zeros) first, then storage 1 and data.pkl
 * beyond 4 GiB, so their offsets exist only in zip64 fields. */
static void write_big_checkpoint(const char *path, uint64_t *small_offset)
{
    WtPickle p = {0};
    const int64_t sz_big[] = {BIG_NUMEL}, st_big[] = {1}, sz_small[] = {2, 2}, st_small[] = {2, 1};
    wt_pk_state_begin(&p);
    wt_pk_str(&p, "big");
    wt_pk_tensor(&p, "FloatStorage", "0", BIG_NUMEL, 0, 1, sz_big, st_big);
    wt_pk_str(&p, "small");
    wt_pk_tensor(&p, "FloatStorage", "1", 4, 0, 2, sz_small, st_small);
    wt_pk_state_end(&p);
    const float small[4] = {1, 2, 3, 4};
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    g_assert_cmpint(fd, >=, 0);
    GByteArray *h0 = local_header("t/data/0", 0, (uint64_t)BIG_NUMEL * 4, 0);
    pwrite_all(fd, h0->data, h0->len, 0);
    uint64_t off1 = h0->len + (uint64_t)BIG_NUMEL * 4;
    uint32_t crc1 = (uint32_t)crc32(0L, (const Bytef *)small, sizeof small);
    GByteArray *h1 = local_header("t/data/1", crc1, sizeof small, off1);
    pwrite_all(fd, h1->data, h1->len, off1);
    pwrite_all(fd, small, sizeof small, off1 + h1->len);
    *small_offset = off1 + h1->len;
    uint64_t off2 = off1 + h1->len + sizeof small;
    uint32_t crc2 = (uint32_t)crc32(0L, p.b, (uInt)p.n);
    GByteArray *h2 = local_header("t/data.pkl", crc2, p.n, off2);
    pwrite_all(fd, h2->data, h2->len, off2);
    pwrite_all(fd, p.b, p.n, off2 + h2->len);
    uint64_t cd_off = off2 + h2->len + p.n;
    GByteArray *cd = g_byte_array_new();
    central_entry(cd, "t/data/0", 0, (uint64_t)BIG_NUMEL * 4, 0);
    central_entry(cd, "t/data/1", crc1, sizeof small, off1);
    central_entry(cd, "t/data.pkl", crc2, p.n, off2);
    uint64_t eocd64 = cd_off + cd->len;
    GByteArray *tail = g_byte_array_new();
    le(tail, 0x06064b50u, 4), le(tail, 44, 8), le(tail, 45, 2), le(tail, 45, 2), le(tail, 0, 4);
    le(tail, 0, 4), le(tail, 3, 8), le(tail, 3, 8), le(tail, cd->len, 8), le(tail, cd_off, 8);
    le(tail, 0x07064b50u, 4), le(tail, 0, 4), le(tail, eocd64, 8), le(tail, 1, 4);
    le(tail, 0x06054b50u, 4), le(tail, 0, 2), le(tail, 0, 2), le(tail, 0xffff, 2), le(tail, 0xffff, 2);
    le(tail, 0xffffffffu, 4), le(tail, 0xffffffffu, 4), le(tail, 0, 2);
    pwrite_all(fd, cd->data, cd->len, cd_off);
    pwrite_all(fd, tail->data, tail->len, eocd64);
    g_assert_cmpint(close(fd), ==, 0);
    g_byte_array_free(h0, TRUE);
    g_byte_array_free(h1, TRUE);
    g_byte_array_free(h2, TRUE);
    g_byte_array_free(cd, TRUE);
    g_byte_array_free(tail, TRUE);
    wt_pk_free(&p);
}

/* A checkpoint past 4 GiB (sparse on disk) opens through its zip64 records: a 4.4 GB tensor
 * in place and a small tensor whose storage lies beyond 4 GiB with the right values, without
 * reading the 4.4 GB. */
static void test_zip64_over_4gib(void)
{
    LilyContext *ctx = wt_context();
    char *path = wt_tmp("big.bin");
    uint64_t small_off = 0;
    write_big_checkpoint(path, &small_off);
    double t0 = now_ms();
    LilyWeights *w = open_ok(ctx, path);
    double t1 = now_ms();
    g_test_message("%.2f GB sparse checkpoint opened in %.1f ms", (double)lily_weights_file_size(w) / 1e9, t1 - t0);
    g_assert_cmpuint(lily_weights_file_size(w), >, 4400000000u);
    const LilyWeight *big = lily_weights_find(w, "big"), *small = lily_weights_find(w, "small");
    g_assert_cmpint(big->shape[0], ==, BIG_NUMEL);
    g_assert_cmpuint(big->nbytes, ==, (size_t)BIG_NUMEL * 4);
    g_assert_cmpuint(big->file_offset, ==, 64);
    g_assert_true((const uint8_t *)small->data - small->file_offset == (const uint8_t *)big->data - 64);
    g_assert_cmpuint(small->file_offset, ==, small_off);
    g_assert_cmpuint(small->file_offset, >, 0xffffffffu);
    for (int i = 0; i < 4; i++) g_assert_cmpfloat(((const float *)small->data)[i], ==, (float)(i + 1));
    g_assert_cmpfloat(((const float *)big->data)[BIG_NUMEL - 1], ==, 0.0f);
    lily_weights_close(w);
    g_assert_cmpint(unlink(path), ==, 0);
    g_free(path);
    lily_context_free(ctx);
}

/* The writer converts f32 <-> bf16 <-> f16 with the core converters, stores ints as they are,
 * escapes metadata, aligns the data section to 8 bytes, leaves no temporary file, and the file
 * reads back to the same names, shapes and values. */
static void test_safetensors_roundtrip(void)
{
    LilyContext *ctx = wt_context();
    char *path = wt_tmp("roundtrip.safetensors");
    float src[24];
    for (int i = 0; i < 24; i++) src[i] = (float)(sin(i * 0.7) * 3.1);
    uint16_t bsrc[6];
    for (int i = 0; i < 6; i++) bsrc[i] = lily_f32_to_bf16((float)i * 0.375f);
    int64_t ints[3] = {-1, 1LL << 40, 7};
    uint8_t byte = 0xab;
    LilySafetensorsWriter *wr;
    g_assert_cmpint(lily_safetensors_writer_new(ctx, &wr), ==, LILY_OK);
    g_assert_cmpint(lily_safetensors_writer_add(wr, "byte", LILY_DTYPE_U8, LILY_DTYPE_U8, LILY_SHAPE(1), &byte), ==, LILY_OK);
    g_assert_cmpint(lily_safetensors_writer_add(wr, "w.f32", LILY_DTYPE_F32, LILY_DTYPE_F32, LILY_SHAPE(4, 6), src), ==, LILY_OK);
    g_assert_cmpint(lily_safetensors_writer_add(wr, "w.bf16", LILY_DTYPE_BF16, LILY_DTYPE_F32, LILY_SHAPE(2, 12), src), ==, LILY_OK);
    g_assert_cmpint(lily_safetensors_writer_add(wr, "w.f16", LILY_DTYPE_F16, LILY_DTYPE_F32, LILY_SHAPE(24), src), ==, LILY_OK);
    g_assert_cmpint(lily_safetensors_writer_add(wr, "b.up", LILY_DTYPE_F32, LILY_DTYPE_BF16, LILY_SHAPE(6), bsrc), ==, LILY_OK);
    g_assert_cmpint(lily_safetensors_writer_add(wr, "n.i64", LILY_DTYPE_I64, LILY_DTYPE_I64, LILY_SHAPE(3), ints), ==, LILY_OK);
    g_assert_cmpint(lily_safetensors_writer_add(wr, "scalar", LILY_DTYPE_F32, LILY_DTYPE_F32, 0, NULL, src), ==, LILY_OK);
    g_assert_cmpint(lily_safetensors_writer_add(wr, "n.bad", LILY_DTYPE_F32, LILY_DTYPE_I64, LILY_SHAPE(3), ints), ==,
                    LILY_ERR_INVALID_ARGUMENT);
    const char *meta = "line 1\nline \"2\"\t\\ caf\xc3\xa9 \x01";
    g_assert_cmpint(lily_safetensors_writer_set_metadata(wr, "lily.config", meta), ==, LILY_OK);
    g_assert_cmpint(lily_safetensors_writer_write(wr, path, NULL, NULL), ==, LILY_OK);
    lily_safetensors_writer_free(wr);

    struct stat sb;
    g_assert_cmpint(stat(path, &sb), ==, 0);
    g_assert_cmpuint(sb.st_mode & 0044, !=, 0); /* not the 0600 of mkstemp */
    GDir *dir = g_dir_open(lt_tmpdir(), 0, NULL);
    for (const char *n; (n = g_dir_read_name(dir));) g_assert_null(strstr(n, ".tmp-"));
    g_dir_close(dir);
    size_t len;
    uint8_t *bytes = wt_read(path, &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | bytes[i];
    g_assert_cmpuint((8 + hlen) % 8, ==, 0);
    g_free(bytes);

    LilyWeights *w = open_ok(ctx, path);
    g_assert_cmpint(lily_weights_count(w), ==, 7);
    static const char *const order[] = {"byte", "w.f32", "w.bf16", "w.f16", "b.up", "n.i64", "scalar"};
    for (int i = 0; i < 7; i++) g_assert_cmpstr(lily_weights_at(w, i)->name, ==, order[i]);
    g_assert_cmpstr(lily_weights_metadata(w, "lily.config"), ==, meta);
    const LilyWeight *t = lily_weights_find(w, "w.f32");
    g_assert_cmpint(t->shape[0], ==, 4);
    g_assert_true(memcmp(t->data, src, sizeof src) == 0);
    t = lily_weights_find(w, "w.bf16");
    g_assert_cmpint(t->dtype, ==, LILY_DTYPE_BF16);
    for (int i = 0; i < 24; i++) g_assert_cmpuint(((const uint16_t *)t->data)[i], ==, lily_f32_to_bf16(src[i]));
    t = lily_weights_find(w, "w.f16");
    for (int i = 0; i < 24; i++) g_assert_cmpuint(((const uint16_t *)t->data)[i], ==, lily_f32_to_f16(src[i]));
    t = lily_weights_find(w, "b.up");
    for (int i = 0; i < 6; i++) g_assert_cmpfloat(((const float *)t->data)[i], ==, (float)i * 0.375f);
    t = lily_weights_find(w, "n.i64");
    g_assert_true(memcmp(t->data, ints, sizeof ints) == 0);
    for (int i = 0; i < 7; i++) {
        const LilyWeight *x = lily_weights_at(w, i);
        g_assert_cmpuint((uintptr_t)x->data % lily_dtype_size(x->dtype), ==, 0);
    }
    lily_weights_close(w);
    g_free(path);
    lily_context_free(ctx);
}

/* A write into a folder that does not exist fails with an I/O error naming the path. */
static void test_safetensors_write_error(void)
{
    LilyContext *ctx = wt_context();
    LilySafetensorsWriter *wr;
    float x = 1;
    g_assert_cmpint(lily_safetensors_writer_new(ctx, &wr), ==, LILY_OK);
    g_assert_cmpint(lily_safetensors_writer_add(wr, "x", LILY_DTYPE_F32, LILY_DTYPE_F32, 0, NULL, &x), ==, LILY_OK);
    g_assert_cmpint(lily_safetensors_writer_add(wr, "x", LILY_DTYPE_F32, LILY_DTYPE_F32, 0, NULL, &x), ==, LILY_OK);
    char *dup = wt_tmp("dup.safetensors");
    g_assert_cmpint(lily_safetensors_writer_write(wr, dup, NULL, NULL), ==, LILY_ERR_INVALID_ARGUMENT);
    g_test_message("%s", lily_context_error(ctx));
    g_assert_nonnull(strstr(lily_context_error(ctx), "'x' added twice"));
    lily_safetensors_writer_free(wr);
    g_assert_cmpint(lily_safetensors_writer_new(ctx, &wr), ==, LILY_OK);
    g_assert_cmpint(lily_safetensors_writer_add(wr, "x", LILY_DTYPE_F32, LILY_DTYPE_F32, 0, NULL, &x), ==, LILY_OK);
    const char *bad = "/nonexistent-lily-dir/out.safetensors";
    g_assert_cmpint(lily_safetensors_writer_write(wr, bad, NULL, NULL), ==, LILY_ERR_IO);
    g_test_message("%s", lily_context_error(ctx));
    g_assert_nonnull(strstr(lily_context_error(ctx), "/nonexistent-lily-dir"));
    lily_safetensors_writer_free(wr);
    g_free(dup);
    lily_context_free(ctx);
}

typedef struct Prog {
    uint64_t last, total;
    int calls;
} Prog;

static void on_prog(uint64_t done, uint64_t total, void *user)
{
    Prog *p = user;
    g_assert_cmpuint(done, >=, p->last);
    p->last = done;
    p->total = total;
    p->calls++;
}

/* Every tiny-a tensor written to safetensors (pointers kept, not copied) reads back with the
 * same name, order, shape, dtype and bytes; progress counts up to the data size. */
static void test_safetensors_from_tiny_a(void)
{
    LilyContext *ctx = wt_context();
    char *src = lt_ref_path("tiny-a.bin");
    char *dst = wt_tmp("tiny-a-all.safetensors");
    LilyWeights *w = open_ok(ctx, src);
    LilySafetensorsWriter *wr;
    g_assert_cmpint(lily_safetensors_writer_new(ctx, &wr), ==, LILY_OK);
    uint64_t bytes = 0;
    for (int i = 0; i < lily_weights_count(w); i++) {
        const LilyWeight *t = lily_weights_at(w, i);
        g_assert_cmpint(lily_safetensors_writer_add(wr, t->name, t->dtype, t->dtype, t->ndim, t->shape, t->data), ==, LILY_OK);
        bytes += t->nbytes;
    }
    Prog prog = {0};
    double t0 = now_ms();
    g_assert_cmpint(lily_safetensors_writer_write(wr, dst, on_prog, &prog), ==, LILY_OK);
    double t1 = now_ms();
    lily_safetensors_writer_free(wr);
    g_assert_cmpuint(prog.last, ==, bytes);
    g_assert_cmpuint(prog.total, ==, bytes);
    LilyWeights *r = open_ok(ctx, dst);
    double t2 = now_ms();
    g_test_message("wrote %.1f MB in %.1f ms; reopened in %.1f ms", (double)bytes / 1e6, t1 - t0, t2 - t1);
    g_assert_cmpint(lily_weights_count(r), ==, lily_weights_count(w));
    for (int i = 0; i < lily_weights_count(w); i++) {
        const LilyWeight *a = lily_weights_at(w, i), *b = lily_weights_at(r, i);
        g_assert_cmpstr(a->name, ==, b->name);
        g_assert_cmpint(a->dtype, ==, b->dtype);
        g_assert_cmpint(a->ndim, ==, b->ndim);
        for (int d = 0; d < a->ndim; d++) g_assert_cmpint(a->shape[d], ==, b->shape[d]);
        g_assert_cmpuint(a->nbytes, ==, b->nbytes);
        g_assert_true(memcmp(a->data, b->data, a->nbytes) == 0);
    }
    lily_weights_close(r);
    lily_weights_close(w);
    g_free(src);
    g_free(dst);
    lily_context_free(ctx);
}

/* Another writer's layout (a 1-byte tensor first, so the f32 after it is misaligned) still
 * reads correctly: the misaligned tensor is copied to aligned memory. */
static void test_safetensors_misaligned(void)
{
    LilyContext *ctx = wt_context();
    const char *hdr = "{\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                      "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}";
    size_t hl = strlen(hdr);
    uint8_t file[256] = {0};
    for (int i = 0; i < 8; i++) file[i] = (uint8_t)(hl >> (8 * i));
    memcpy(file + 8, hdr, hl);
    float vals[2] = {1.5f, -2.25f};
    file[8 + hl] = 7;
    memcpy(file + 8 + hl + 1, vals, 8);
    char *path = wt_tmp("misaligned.safetensors");
    wt_write(path, file, 8 + hl + 9);
    LilyWeights *w = open_ok(ctx, path);
    const LilyWeight *f = lily_weights_find(w, "f");
    g_assert_cmpuint((uintptr_t)f->data % 4, ==, 0);
    g_assert_cmpfloat(((const float *)f->data)[0], ==, 1.5f);
    g_assert_cmpfloat(((const float *)f->data)[1], ==, -2.25f);
    g_assert_cmpint(*(const uint8_t *)lily_weights_find(w, "u")->data, ==, 7);
    lily_weights_close(w);
    g_free(path);
    lily_context_free(ctx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/weights/tiny-a/index", test_tiny_a_index);
    g_test_add_func("/lily/weights/tiny-a/values-match-digest", test_tiny_a_values_match_digest);
    g_test_add_func("/lily/weights/tiny-a/in-place", test_tiny_a_in_place);
    g_test_add_func("/lily/weights/torch/views-zip", test_views_zip);
    g_test_add_func("/lily/weights/torch/views-zip64", test_views_zip64);
    g_test_add_func("/lily/weights/torch/views-deflated", test_views_deflated);
    g_test_add_func("/lily/weights/torch/views-legacy", test_views_legacy);
    g_test_add_func("/lily/weights/torch/zip64-over-4gib", test_zip64_over_4gib);
    g_test_add_func("/lily/weights/safetensors/roundtrip", test_safetensors_roundtrip);
    g_test_add_func("/lily/weights/safetensors/write-errors", test_safetensors_write_error);
    g_test_add_func("/lily/weights/safetensors/from-tiny-a", test_safetensors_from_tiny_a);
    g_test_add_func("/lily/weights/safetensors/misaligned", test_safetensors_misaligned);
    return g_test_run();
}
