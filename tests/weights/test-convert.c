/* tests/weights/test-convert.c - lily-convert and lily-inspect, run as a user runs them.
 *
 * Reference: shared/audiosr/tiny-a.bin and tiny-a.yaml. A conversion must keep every byte of
 * what it keeps, account for what it drops, refuse a config that does not fit and damaged
 * values, and inspecting a checkpoint and its full conversion must list the same tensors. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/test-util.h"
#include "weights/arch.h"
#include "weights-test.h"

static char *tool(const char *name)
{
    const char *root = g_getenv("LILY_BUILD_ROOT");
    g_assert_nonnull(root);
    return g_build_filename(root, "tools", name, NULL);
}

/* Runs argv (NULL-terminated); returns the exit status; out/err may be NULL. */
static int run(const char *const *argv, char **out, char **err)
{
    gchar *o = NULL, *e = NULL;
    gint status = 0;
    GError *error = NULL;
    gchar *cmd = g_strjoinv(" ", (gchar **)argv);
    g_test_message("$ %s", cmd);
    g_free(cmd);
    g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &o, &e, &status, &error);
    g_assert_no_error(error);
    g_assert_true(g_spawn_check_wait_status(status, NULL) || WIFEXITED(status));
    if (out) *out = o;
    else g_free(o);
    if (err) *err = e;
    else g_free(e);
    return WEXITSTATUS(status);
}

/* Prints a tool's output as TAP comments. */
static void show(const char *text)
{
    gchar **lines = g_strsplit(text ? text : "", "\n", -1);
    for (gchar **l = lines; *l; l++)
        if (**l) g_test_message("%s", *l);
    g_strfreev(lines);
}

static LilyWeights *open_ok(LilyContext *ctx, const char *path)
{
    LilyWeights *w = NULL;
    LilyStatus st = lily_weights_open(ctx, path, &w);
    if (st) g_test_message("%s", lily_context_error(ctx));
    g_assert_cmpint(st, ==, LILY_OK);
    return w;
}

/* Converting tiny-a.bin with its YAML keeps the 1705 tensors super-resolution and training
 * use, byte for byte, embeds the config with the checkpoint's scale_factor, and lists the
 * dropped EMA, condition decoder/vocoder and schedule buffers. */
static void test_convert_tiny_a(void)
{
    LilyContext *ctx = wt_context();
    char *conv = tool("lily-convert"), *bin = lt_ref_path("tiny-a.bin"), *yaml = lt_ref_path("tiny-a.yaml");
    char *out = wt_tmp("tiny-a.safetensors");
    char *so = NULL, *se = NULL;
    const char *argv[] = {conv, bin, out, "--config", yaml, NULL};
    int rc = run(argv, &so, &se);
    show(so);
    g_assert_cmpint(rc, ==, 0);
    g_assert_nonnull(strstr(so, "unet_ema             1102 tensors"));
    g_assert_nonnull(strstr(so, "cond_vae_vocoder      254 tensors"));
    g_assert_nonnull(strstr(so, "total                  1705"));
    LilyWeights *src = open_ok(ctx, bin), *dst = open_ok(ctx, out);
    g_assert_cmpint(lily_weights_count(dst), ==, 1705);
    for (int i = 0; i < lily_weights_count(dst); i++) {
        const LilyWeight *b = lily_weights_at(dst, i), *a = lily_weights_find(src, b->name);
        g_assert_nonnull(a);
        g_assert_cmpuint(a->nbytes, ==, b->nbytes);
        g_assert_true(memcmp(a->data, b->data, a->nbytes) == 0);
    }
    g_assert_null(lily_weights_find(dst, "model_ema.decay"));
    g_assert_nonnull(lily_weights_find(dst, "first_stage_model.encoder.conv_in.weight"));
    g_assert_nonnull(lily_weights_find(dst, "first_stage_model.quant_conv.weight"));
    g_assert_null(lily_weights_find(dst, "cond_stage_models.0.vae.post_quant_conv.weight"));
    LilyModelConfig want, got;
    g_assert_cmpint(lily_model_config_load(ctx, yaml, &want), ==, LILY_OK);
    want.diffusion.scale_factor = 0.7f;
    const char *y = lily_weights_metadata(dst, "lily.config");
    g_assert_nonnull(y);
    g_assert_cmpint(lily_model_config_parse(ctx, y, strlen(y), "metadata", &got), ==, LILY_OK);
    g_assert_true(lily_model_config_equal(&want, &got));
    g_assert_cmpint(lily_weights_check(ctx, dst, &got, LILY_CHECK_VALUES, NULL, NULL), ==, LILY_OK);
    g_test_message("%s: %llu bytes -> %s: %llu bytes", bin, (unsigned long long)lily_weights_file_size(src),
            out, (unsigned long long)lily_weights_file_size(dst));
    lily_weights_close(src);
    lily_weights_close(dst);
    g_free(so);
    g_free(se);
    g_free(out);
    g_free(conv);
    g_free(bin);
    g_free(yaml);
    lily_context_free(ctx);
}

/* Without --config, tiny-a does not fit the basic defaults: the error says so, names a tensor
 * and asks for --config, and no file is written. */
static void test_convert_needs_config(void)
{
    char *conv = tool("lily-convert"), *bin = lt_ref_path("tiny-a.bin");
    char *out = wt_tmp("no-config.safetensors");
    char *se = NULL;
    const char *argv[] = {conv, bin, out, NULL};
    int rc = run(argv, NULL, &se);
    show(se);
    g_assert_cmpint(rc, ==, 1);
    g_assert_nonnull(strstr(se, "does not match AudioSR's basic config"));
    g_assert_nonnull(strstr(se, "model.diffusion_model.time_embed.0.weight"));
    g_assert_nonnull(strstr(se, "--config"));
    g_assert_false(g_file_test(out, G_FILE_TEST_EXISTS));
    g_free(se);
    g_free(out);
    g_free(conv);
    g_free(bin);
}

static char *section(const char *text, const char *from, const char *to)
{
    const char *a = strstr(text, from), *b = a ? strstr(a, to) : NULL;
    g_assert_nonnull(a);
    g_assert_nonnull(b);
    return g_strndup(a, (gsize)(b - a));
}

/* lily-inspect --tensors on tiny-a.bin and on its --keep-unused conversion lists the same
 * module tree and the same tensors (names, shapes, dtypes); both are compatible. */
static void test_inspect_same_tensors(void)
{
    char *conv = tool("lily-convert"), *insp = tool("lily-inspect");
    char *bin = lt_ref_path("tiny-a.bin"), *yaml = lt_ref_path("tiny-a.yaml");
    char *out = wt_tmp("tiny-a-all.safetensors");
    const char *c[] = {conv, bin, out, "--config", yaml, "--keep-unused", "--quiet", NULL};
    g_assert_cmpint(run(c, NULL, NULL), ==, 0);
    char *o1 = NULL, *o2 = NULL;
    const char *i1[] = {insp, bin, "--config", yaml, "--tensors", "--check", NULL};
    const char *i2[] = {insp, out, "--tensors", "--check", NULL};
    g_assert_cmpint(run(i1, &o1, NULL), ==, 0);
    g_assert_cmpint(run(i2, &o2, NULL), ==, 0);
    char *t1 = section(o1, "modules and tensors:", "compatibility"),
         *t2 = section(o2, "modules and tensors:", "compatibility");
    int lines = 0;
    for (const char *p = t1; (p = strchr(p, '\n')); p++) lines++;
    g_test_message("both list %d lines of modules and tensors", lines);
    g_assert_cmpint(lines, >, 3212);
    g_assert_cmpstr(t1, ==, t2);
    g_assert_nonnull(strstr(o1, "OK: every tensor super-resolution reads is present"));
    g_assert_nonnull(strstr(o2, "OK: every tensor super-resolution reads is present"));
    g_assert_nonnull(strstr(o2, "config (embedded)"));
    g_assert_nonnull(strstr(o1, "3212 tensors in 1720 storages"));
    g_free(t1);
    g_free(t2);
    g_free(o1);
    g_free(o2);
    g_free(out);
    g_free(conv);
    g_free(insp);
    g_free(bin);
    g_free(yaml);
}

/* --dtype bf16 stores matrices and kernels as bf16 (rounded as lily_f32_to_bf16 does) and
 * keeps vectors and scalars in f32, for about half the bytes. */
static void test_convert_bf16(void)
{
    LilyContext *ctx = wt_context();
    char *conv = tool("lily-convert"), *bin = lt_ref_path("tiny-a.bin"), *yaml = lt_ref_path("tiny-a.yaml");
    char *out = wt_tmp("tiny-a-bf16.safetensors");
    const char *argv[] = {conv, bin, out, "--config", yaml, "--dtype", "bf16", "--quiet", NULL};
    g_assert_cmpint(run(argv, NULL, NULL), ==, 0);
    LilyWeights *src = open_ok(ctx, bin), *dst = open_ok(ctx, out);
    uint64_t bytes = 0, f32_bytes = 0;
    for (int i = 0; i < lily_weights_count(dst); i++) {
        const LilyWeight *b = lily_weights_at(dst, i), *a = lily_weights_find(src, b->name);
        bytes += b->nbytes;
        f32_bytes += a->nbytes;
        if (b->ndim >= 2) {
            g_assert_cmpint(b->dtype, ==, LILY_DTYPE_BF16);
            for (size_t k = 0; k < a->nbytes / 4; k++)
                g_assert_cmpuint(((const uint16_t *)b->data)[k], ==, lily_f32_to_bf16(((const float *)a->data)[k]));
        } else {
            g_assert_cmpint(b->dtype, ==, LILY_DTYPE_F32);
            g_assert_true(memcmp(a->data, b->data, a->nbytes) == 0);
        }
    }
    g_test_message("bf16: %llu bytes of tensors, f32: %llu (%.2f)", (unsigned long long)bytes,
            (unsigned long long)f32_bytes, (double)bytes / (double)f32_bytes);
    g_assert_cmpfloat((double)bytes / (double)f32_bytes, <, 0.52);
    g_assert_cmpstr(lily_weights_metadata(dst, "lily.dtype"), ==, "bf16");
    lily_weights_close(src);
    lily_weights_close(dst);
    g_free(out);
    g_free(conv);
    g_free(bin);
    g_free(yaml);
    lily_context_free(ctx);
}

/* --random writes the config's full SR + training set deterministically: the same seed gives
 * the same bytes, another seed other bytes, and the result inspects as compatible. */
static void test_random(void)
{
    LilyContext *ctx = wt_context();
    char *conv = tool("lily-convert"), *insp = tool("lily-inspect"), *yaml = lt_ref_path("tiny-a.yaml");
    char *a = wt_tmp("random-a.safetensors"), *b = wt_tmp("random-b.safetensors"), *c = wt_tmp("random-c.safetensors");
    const char *r1[] = {conv, "--random", "7", yaml, a, "--quiet", NULL};
    const char *r2[] = {conv, "--random", "7", yaml, b, "--quiet", NULL};
    const char *r3[] = {conv, "--random", "8", yaml, c, "--quiet", NULL};
    g_assert_cmpint(run(r1, NULL, NULL), ==, 0);
    g_assert_cmpint(run(r2, NULL, NULL), ==, 0);
    g_assert_cmpint(run(r3, NULL, NULL), ==, 0);
    size_t la, lb, lc;
    uint8_t *da = wt_read(a, &la), *db = wt_read(b, &lb), *dc = wt_read(c, &lc);
    g_assert_cmpuint(la, ==, lb);
    g_assert_true(memcmp(da, db, la) == 0);
    g_assert_cmpuint(la, ==, lc);
    g_assert_false(memcmp(da, dc, la) == 0);
    LilyWeights *w = open_ok(ctx, a);
    g_assert_cmpint(lily_weights_count(w), ==, 1705);
    g_assert_cmpstr(lily_weights_metadata(w, "lily.random_seed"), ==, "7");
    lily_weights_close(w);
    const char *i[] = {insp, a, "--check", NULL};
    g_assert_cmpint(run(i, NULL, NULL), ==, 0);
    g_free(da);
    g_free(db);
    g_free(dc);
    g_free(a);
    g_free(b);
    g_free(c);
    g_free(conv);
    g_free(insp);
    g_free(yaml);
    lily_context_free(ctx);
}

/* A NaN in a kept tensor stops the conversion with the tensor's name; nothing is written. */
static void test_convert_refuses_nan(void)
{
    LilyContext *ctx = wt_context();
    char *conv = tool("lily-convert"), *bin = lt_ref_path("tiny-a.bin"), *yaml = lt_ref_path("tiny-a.yaml");
    LilyWeights *w = open_ok(ctx, bin);
    uint64_t off = lily_weights_find(w, "first_stage_model.vocoder.conv_post.bias")->file_offset;
    lily_weights_close(w);
    size_t len;
    uint8_t *d = wt_read(bin, &len);
    float inf = INFINITY;
    memcpy(d + off, &inf, 4);
    char *nan_bin = wt_tmp("inf.bin"), *out = wt_tmp("inf.safetensors");
    wt_write(nan_bin, d, len);
    char *se = NULL;
    const char *argv[] = {conv, nan_bin, out, "--config", yaml, "--quiet", NULL};
    g_assert_cmpint(run(argv, NULL, &se), ==, 1);
    show(se);
    g_assert_nonnull(strstr(se, "tensor 'first_stage_model.vocoder.conv_post.bias' holds inf at element 0"));
    g_assert_false(g_file_test(out, G_FILE_TEST_EXISTS));
    g_free(se);
    g_free(d);
    g_free(nan_bin);
    g_free(out);
    g_free(conv);
    g_free(bin);
    g_free(yaml);
    lily_context_free(ctx);
}

/* Usage errors exit 2, --help exits 0 and documents the options, and inspecting a damaged
 * file exits 1 with the reader's message. */
static void test_usage_and_errors(void)
{
    char *conv = tool("lily-convert"), *insp = tool("lily-inspect");
    char *so = NULL, *se = NULL;
    const char *a1[] = {conv, NULL};
    g_assert_cmpint(run(a1, NULL, &se), ==, 2);
    g_assert_nonnull(strstr(se, "missing arguments"));
    g_free(se);
    const char *a2[] = {conv, "--help", NULL};
    g_assert_cmpint(run(a2, &so, NULL), ==, 0);
    g_assert_nonnull(strstr(so, "--keep-unused"));
    g_assert_nonnull(strstr(so, "--random SEED"));
    g_free(so);
    const char *a3[] = {conv, "a", "b", "--dtype", "f8", NULL};
    g_assert_cmpint(run(a3, NULL, NULL), ==, 2);
    char *empty = wt_tmp("empty.safetensors");
    wt_write(empty, "", 0);
    const char *a4[] = {insp, empty, NULL};
    g_assert_cmpint(run(a4, NULL, &se), ==, 1);
    g_assert_nonnull(strstr(se, "empty (0 bytes)"));
    g_free(se);
    g_free(empty);
    g_free(conv);
    g_free(insp);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/lily/tools/convert/tiny-a", test_convert_tiny_a);
    g_test_add_func("/lily/tools/convert/needs-config", test_convert_needs_config);
    g_test_add_func("/lily/tools/inspect/same-tensors-as-checkpoint", test_inspect_same_tensors);
    g_test_add_func("/lily/tools/convert/bf16", test_convert_bf16);
    g_test_add_func("/lily/tools/convert/random-deterministic", test_random);
    g_test_add_func("/lily/tools/convert/refuses-nonfinite", test_convert_refuses_nan);
    g_test_add_func("/lily/tools/usage-and-errors", test_usage_and_errors);
    return g_test_run();
}
