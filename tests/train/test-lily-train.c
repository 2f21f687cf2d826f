/* tests/train/test-lily-train.c - the lily-train program: its config errors, what it writes,
 * resuming through the command line, and a kill during a checkpoint write.
 *
 * Runs the real binary (path given as --lily-train=PATH by meson) on the synthetic dataset of
 * train-test.c with the tiny architecture, two segments per batch. The kill uses the tool's
 * test hook LILY_TRAIN_KILL_DURING_CHECKPOINT=N:BYTES (SIGKILL during the N-th checkpoint write
 * once BYTES are written): the folder must then hold the previous complete checkpoint (or none,
 * when it was the first), never a partial one, and --resume must continue from it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "tests/train/train-test.h"

static const char *exe;
static char *dataset;

static const char *data_dir(void)
{
    if (!dataset) {
        LilyContext *ctx = tt_context();
        dataset = g_strdup_printf("%s/ds", lt_tmpdir());
        tt_make_dataset(ctx, dataset, 6, 2.56, 0.64, 11);
        lily_context_free(ctx);
    }
    return dataset;
}

/* Writes a config for a short unet run into dir/config.yaml (validation every validate_every
 * steps, 0 = never); extra is appended to train:. */
static char *write_config(const char *dir, int validate_every, const char *extra)
{
    char *path = g_strdup_printf("%s/config.yaml", dir);
    char *text = g_strdup_printf("data:\n"
                                 "  segment_seconds: 0.64\n"
                                 "  hop_seconds: 0.64\n"
                                 "  dir: %s\n"
                                 "model:\n"
                                 "  architecture: tiny\n"
                                 "train:\n"
                                 "  stage: unet\n"
                                 "  out_dir: %s/run\n"
                                 "  batch_size: 2\n"
                                 "  max_steps: 6\n"
                                 "  learning_rate: 1.0e-3\n"
                                 "  warmup_steps: 2\n"
                                 "  log_every: 1\n"
                                 "  validate_every: %d\n"
                                 "  validation_batches: 1\n"
                                 "  validation_steps: 2\n"
                                 "  checkpoint_every: 2\n"
                                 "%s",
                                 data_dir(), dir, validate_every, extra ? extra : "");
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    g_free(text);
    return path;
}

/* Runs lily-train with the given arguments (NULL-terminated) and an optional extra environment
 * entry; returns the wait status and the captured stderr. */
static int run(const char *env_extra, char **err, ...)
{
    GPtrArray *argv = g_ptr_array_new();
    g_ptr_array_add(argv, (gpointer)exe);
    va_list ap;
    va_start(ap, err);
    for (const char *a; (a = va_arg(ap, const char *));) g_ptr_array_add(argv, (gpointer)a);
    va_end(ap);
    g_ptr_array_add(argv, NULL);
    gchar **envp = g_get_environ();
    envp = g_environ_setenv(envp, "LILY_PROGRESS", "none", TRUE);
    if (env_extra) {
        gchar **kv = g_strsplit(env_extra, "=", 2);
        envp = g_environ_setenv(envp, kv[0], kv[1], TRUE);
        g_strfreev(kv);
    }
    gint status = 0;
    GError *e = NULL;
    gchar *out = NULL, *er = NULL;
    gboolean ok = g_spawn_sync(NULL, (gchar **)argv->pdata, envp, 0, NULL, NULL, &out, &er, &status, &e);
    g_assert_no_error(e);
    g_assert_true(ok);
    g_test_message("lily-train exited with status 0x%x; stderr:\n%s", status, er);
    g_free(out);
    if (err) *err = er;
    else g_free(er);
    g_strfreev(envp);
    g_ptr_array_free(argv, TRUE);
    return status;
}

static int64_t checkpoint_step(const char *dir)
{
    LilyContext *ctx = tt_context();
    char *p = g_strdup_printf("%s/checkpoint.safetensors", dir);
    LilyWeights *w = NULL;
    tt_ok(ctx, lily_weights_open(ctx, p, &w));
    const char *s = lily_weights_metadata(w, "lily.train.step");
    g_assert_nonnull(s);
    int64_t step = g_ascii_strtoll(s, NULL, 10);
    /* every tensor is readable: the model loads from it */
    LilyModel *m = NULL;
    tt_ok(ctx, lily_model_load(ctx, p, NULL, &m));
    lily_model_unref(m);
    lily_weights_close(w);
    g_free(p);
    lily_context_free(ctx);
    return step;
}

/* The loss column of log.csv, one value per row (g_strfreev). */
static gchar **loss_column(const char *dir)
{
    char *p = g_strdup_printf("%s/log.csv", dir);
    gchar *text = NULL;
    g_assert_true(g_file_get_contents(p, &text, NULL, NULL));
    gchar **lines = g_strsplit(text, "\n", -1);
    GPtrArray *col = g_ptr_array_new();
    for (int i = 1; lines[i] && lines[i][0]; i++) {
        gchar **f = g_strsplit(lines[i], ",", -1);
        g_ptr_array_add(col, g_strdup_printf("%s:%s", f[0], f[3]));
        g_strfreev(f);
    }
    g_ptr_array_add(col, NULL);
    g_strfreev(lines);
    g_free(text);
    g_free(p);
    return (gchar **)g_ptr_array_free(col, FALSE);
}

/* An unknown key is refused with the config file's line and column. */
static void test_config_error_has_line(void)
{
    char *dir = g_strdup_printf("%s/bad", lt_tmpdir());
    g_mkdir_with_parents(dir, 0755);
    char *cfg = write_config(dir, 0, "  learning_rat: 1.0e-4\n");
    char *err = NULL;
    int st = run(NULL, &err, "--config", cfg, NULL);
    g_assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    char *want = g_strdup_printf("%s:19:3: train.learning_rat: unknown key", cfg);
    g_assert_nonnull(strstr(err, want));
    g_free(want);
    g_free(err);
    g_free(cfg);
    g_free(dir);
}

/* A run writes log.csv (a validation baseline at step 0, a row per step, validation columns
 * every 3rd), a PNG loss curve, the checkpoint and a loadable model file. */
static void test_writes_outputs(void)
{
    char *dir = g_strdup_printf("%s/outputs", lt_tmpdir());
    g_mkdir_with_parents(dir, 0755);
    char *cfg = write_config(dir, 3, NULL);
    int st = run(NULL, NULL, "--config", cfg, NULL);
    g_assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *run_dir = g_strdup_printf("%s/run", dir);
    gchar **col = loss_column(run_dir);
    g_assert_cmpint(g_strv_length(col), ==, 7); /* the step-0 baseline, then steps 1..6 */
    g_assert_cmpstr(col[0], ==, "0:");
    g_assert_true(g_str_has_prefix(col[6], "6:"));
    char *csv = g_strdup_printf("%s/log.csv", run_dir);
    gchar *text = NULL;
    g_assert_true(g_file_get_contents(csv, &text, NULL, NULL));
    g_assert_true(g_str_has_prefix(text, "step,epoch,lr,loss,loss_avg,mse,grad_norm,sec_per_step,val_loss,val_lsd,val_lsd_input\n"));
    gchar **lines = g_strsplit(text, "\n", -1);
    g_assert_false(g_str_has_suffix(lines[1], ",,,")); /* step 0: the baseline validation */
    g_assert_false(g_str_has_suffix(lines[4], ",,,")); /* step 3: validated */
    g_assert_true(g_str_has_suffix(lines[3], ",,,"));  /* step 2: not */
    char *png = g_strdup_printf("%s/loss.png", run_dir);
    gchar *img = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(png, &img, &len, NULL));
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    g_assert_cmpuint(len, >, 33);
    g_assert_cmpmem(img, 8, sig, 8);
    g_assert_cmpmem(img + 12, 4, "IHDR", 4);
    g_assert_cmpint(checkpoint_step(run_dir), ==, 6);
    LilyContext *ctx = tt_context();
    char *model = g_strdup_printf("%s/model.safetensors", run_dir);
    LilyModel *m = NULL;
    tt_ok(ctx, lily_model_load(ctx, model, NULL, &m));
    lily_model_unref(m);
    lily_context_free(ctx);
    g_free(model);
    g_free(img);
    g_free(png);
    g_strfreev(lines);
    g_free(text);
    g_free(csv);
    g_strfreev(col);
    g_free(run_dir);
    g_free(cfg);
    g_free(dir);
}

/* --stop-at 3 then --resume gives the log of an uninterrupted run, value for value. */
static void test_resume_through_cli(void)
{
    char *a = g_strdup_printf("%s/cli-a", lt_tmpdir()), *b = g_strdup_printf("%s/cli-b", lt_tmpdir());
    g_mkdir_with_parents(a, 0755);
    g_mkdir_with_parents(b, 0755);
    char *ca = write_config(a, 0, NULL), *cb = write_config(b, 0, NULL);
    g_assert_cmpint(run(NULL, NULL, "--config", ca, NULL), ==, 0);
    g_assert_cmpint(run(NULL, NULL, "--config", cb, "--stop-at", "3", NULL), ==, 0);
    char *rb = g_strdup_printf("%s/run", b), *ra = g_strdup_printf("%s/run", a);
    g_assert_cmpint(checkpoint_step(rb), ==, 3);
    g_assert_cmpint(run(NULL, NULL, "--config", cb, "--resume", rb, NULL), ==, 0);
    gchar **la = loss_column(ra), **lb = loss_column(rb);
    g_assert_cmpint(g_strv_length(la), ==, g_strv_length(lb));
    for (int i = 0; la[i]; i++) g_assert_cmpstr(la[i], ==, lb[i]);
    g_strfreev(la);
    g_strfreev(lb);
    g_free(ra);
    g_free(rb);
    g_free(ca);
    g_free(cb);
    g_free(a);
    g_free(b);
}

/* A SIGKILL while the second checkpoint is written leaves the first one, complete and loadable,
 * and --resume continues from it to the end. */
static void test_kill_during_checkpoint(void)
{
    char *dir = g_strdup_printf("%s/kill", lt_tmpdir());
    g_mkdir_with_parents(dir, 0755);
    char *cfg = write_config(dir, 0, NULL), *rd = g_strdup_printf("%s/run", dir);
    int st = run("LILY_TRAIN_KILL_DURING_CHECKPOINT=2:1000000", NULL, "--config", cfg, NULL);
    g_assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    g_assert_cmpint(checkpoint_step(rd), ==, 2);
    g_assert_cmpint(run(NULL, NULL, "--config", cfg, "--resume", rd, NULL), ==, 0);
    g_assert_cmpint(checkpoint_step(rd), ==, 6);
    g_free(rd);
    g_free(cfg);
    g_free(dir);
}

/* A SIGKILL during the very first checkpoint leaves no checkpoint file at all (no partial one). */
static void test_kill_during_first_checkpoint(void)
{
    char *dir = g_strdup_printf("%s/kill1", lt_tmpdir());
    g_mkdir_with_parents(dir, 0755);
    char *cfg = write_config(dir, 0, NULL);
    int st = run("LILY_TRAIN_KILL_DURING_CHECKPOINT=1:1000000", NULL, "--config", cfg, NULL);
    g_assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    char *ck = g_strdup_printf("%s/run/checkpoint.safetensors", dir);
    g_assert_false(g_file_test(ck, G_FILE_TEST_EXISTS));
    g_free(ck);
    g_free(cfg);
    g_free(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (int i = 1; i < argc; i++)
        if (g_str_has_prefix(argv[i], "--lily-train=")) exe = argv[i] + strlen("--lily-train=");
    if (!exe) {
        g_printerr("usage: test-lily-train --lily-train=PATH\n");
        return 1;
    }
    g_test_add_func("/lily/train/tool/config-error-names-line", test_config_error_has_line);
    g_test_add_func("/lily/train/tool/writes-log-plot-checkpoint-model", test_writes_outputs);
    g_test_add_func("/lily/train/tool/resume-through-cli-is-exact", test_resume_through_cli);
    g_test_add_func("/lily/train/tool/kill-during-checkpoint-keeps-previous", test_kill_during_checkpoint);
    g_test_add_func("/lily/train/tool/kill-during-first-checkpoint-leaves-none", test_kill_during_first_checkpoint);
    return g_test_run();
}
