/* tools/lily-train.c - trains one stage of an AudioSR model (the diffusion UNet, the VAE or the
 * HiFi-GAN vocoder) on a dataset made by `lily-dataset make` / pipelines/make-dataset.sh.
 *
 *   lily-train --config config.yaml --stage unet --init audiosr-basic.safetensors
 *   lily-train --config config.yaml --stage vocoder --data data/shards --out runs/voc --max-steps 500
 *   lily-train --config config.yaml --resume runs/voc           # continue exactly where it stopped
 *
 * Reads the data, model and train sections of config.yaml (any error names file:line:column),
 * shows a progress bar with the loss and the speed, and keeps in the output folder:
 *   log.csv                 one row per train.log_every steps (and per validation)
 *   loss.png                the loss curve (training loss, validation loss), redrawn per row
 *   checkpoint.safetensors  everything --resume needs, rewritten atomically every
 *                           train.checkpoint_every steps, at the end and on Ctrl-C
 *   model.safetensors       the trained model (EMA weights), a Lily model file for lily-enhance
 * docs/training.md describes the stages, the losses and the measurements.
 *
 * Test hook: LILY_TRAIN_KILL_DURING_CHECKPOINT=N:BYTES makes the process SIGKILL itself while
 * writing its N-th checkpoint, once BYTES bytes are out (tests/train checks that the folder
 * still holds a loadable checkpoint, the old one or the new one). Built from this tree: it
 * uses engine-internal headers, like lily-convert. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lily/lily.h>

#include "args.h"
#include "config/project-config.h"
#include "core/context.h"
#include "progress.h"
#include "train/plot.h"
#include "train/trainer.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    size_t k;
    while (s && (k = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (cap - len < 2) {
            char *n = realloc(s, cap * 2);
            if (!n) {
                free(s);
                s = NULL;
                break;
            }
            s = n;
            cap *= 2;
        }
    }
    fclose(f);
    if (s) s[len] = '\0';
    return s;
}

/* ---- the log: rows in memory (for the plot) and in log.csv ---- */
typedef struct Log {
    char path[4200], png[4200];
    FILE *f;
    double *step, *loss, *vstep, *vloss; /* the plotted series */
    int n, cap, vn, vcap;
    int header_done;
    int plot_col; /* CSV column of the plotted training value (4: loss_avg; 5: the vocoder's mel_l1) */
} Log;

static void push(double **a, double **b, int *n, int *cap, double x, double y)
{
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 256;
        double *na = realloc(*a, sizeof(double) * (size_t)c), *nb = realloc(*b, sizeof(double) * (size_t)c);
        if (!na || !nb) {
            free(na == *a ? NULL : na);
            return;
        }
        *a = na;
        *b = nb;
        *cap = c;
    }
    (*a)[*n] = x;
    (*b)[*n] = y;
    (*n)++;
}

/* Keeps the rows of an existing log up to `upto` steps (a resumed run rewrites what followed
 * its checkpoint) and reloads them for the plot. */
static int log_open(Log *lg, const char *dir, int64_t upto, int resuming)
{
    snprintf(lg->path, sizeof lg->path, "%s/log.csv", dir);
    snprintf(lg->png, sizeof lg->png, "%s/loss.png", dir);
    char *old = resuming ? read_text(lg->path) : NULL;
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", lg->path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(old);
        return -1;
    }
    if (old) {
        char *save = NULL;
        int first = 1;
        for (char *ln = strtok_r(old, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
            if (first) {
                fprintf(f, "%s\n", ln);
                lg->header_done = 1;
                first = 0;
                continue;
            }
            /* step,epoch,lr,loss,loss_avg,...,val_loss,val_lsd,val_lsd_input */
            long long step = strtoll(ln, NULL, 10);
            if (step > upto || (step == 0 && upto == 0)) continue; /* step 0: the baseline row */
            fprintf(f, "%s\n", ln);
            char *cols[32];
            int nc = 0;
            for (char *p = ln; nc < 32;) {
                cols[nc++] = p;
                char *c = strchr(p, ',');
                if (!c) break;
                *c = '\0';
                p = c + 1;
            }
            if (nc >= 8) {
                if (cols[lg->plot_col][0])
                    push(&lg->step, &lg->loss, &lg->n, &lg->cap, (double)step, atof(cols[lg->plot_col]));
                if (cols[nc - 3][0]) push(&lg->vstep, &lg->vloss, &lg->vn, &lg->vcap, (double)step, atof(cols[nc - 3]));
            }
        }
    }
    free(old);
    if (fflush(f) != 0 || rename(tmp, lg->path) != 0) {
        fclose(f);
        return -1;
    }
    lg->f = f;
    return 0;
}

static void log_row(Log *lg, const LilyTrainStepInfo *in, double loss_avg, double plotted, double sec,
                    const LilyValidationInfo *v)
{
    if (!lg->header_done) {
        fprintf(lg->f, "step,epoch,lr,loss,loss_avg");
        for (int i = 0; i < in->n_parts; i++) fprintf(lg->f, ",%s", in->part_names[i]);
        fprintf(lg->f, ",grad_norm,sec_per_step,val_loss,val_lsd,val_lsd_input\n");
        lg->header_done = 1;
    }
    fprintf(lg->f, "%" PRId64 ",%" PRIu64 ",%.9g,%.9g,%.9g", in->step, in->epoch, in->lr, in->loss, loss_avg);
    for (int i = 0; i < in->n_parts; i++) fprintf(lg->f, ",%.9g", in->parts[i]);
    fprintf(lg->f, ",%.6g,%.4g", in->grad_norm, sec);
    if (v) fprintf(lg->f, ",%.9g,%.6g,%.6g\n", v->loss, v->lsd, v->lsd_input);
    else fprintf(lg->f, ",,,\n");
    fflush(lg->f);
    push(&lg->step, &lg->loss, &lg->n, &lg->cap, (double)in->step, plotted);
    if (v) push(&lg->vstep, &lg->vloss, &lg->vn, &lg->vcap, (double)in->step, v->loss);
}

/* The validation before the first step (a baseline): a row with the validation columns only. */
static void log_baseline(Log *lg, const LilyValidationInfo *v, const char *const *part_names, int n_parts)
{
    if (!lg->header_done) {
        fprintf(lg->f, "step,epoch,lr,loss,loss_avg");
        for (int i = 0; i < n_parts; i++) fprintf(lg->f, ",%s", part_names[i]);
        fprintf(lg->f, ",grad_norm,sec_per_step,val_loss,val_lsd,val_lsd_input\n");
        lg->header_done = 1;
    }
    fprintf(lg->f, "0,0,,,");
    for (int i = 0; i < n_parts; i++) fprintf(lg->f, ",");
    fprintf(lg->f, ",,,%.9g,%.6g,%.6g\n", v->loss, v->lsd, v->lsd_input);
    fflush(lg->f);
    push(&lg->vstep, &lg->vloss, &lg->vn, &lg->vcap, 0.0, v->loss);
}

/* The training curve is the stage's loss averaged since the previous row, except for the
 * vocoder, whose loss mixes GAN terms: there it is the mel L1, in the validation loss's units. */
static void log_plot(LilyContext *ctx, Log *lg, const char *stage)
{
    char label[64];
    snprintf(label, sizeof label, lg->plot_col == 5 ? "mel l1 (train)" : "%s loss (train)", stage);
    LilyPlotSeries s[2] = {{lg->step, lg->loss, lg->n, 0x1f5fbf, label},
                           {lg->vstep, lg->vloss, lg->vn, 0xd0501a, "validation"}};
    if (lily_plot_png(ctx, lg->png, s, 2, "step", "loss") != LILY_OK)
        fprintf(stderr, "lily-train: warning: %s\n", lily_context_error(ctx));
}

static void log_close(Log *lg)
{
    if (lg->f) fclose(lg->f);
    free(lg->step);
    free(lg->loss);
    free(lg->vstep);
    free(lg->vloss);
}

/* ---- the kill-during-checkpoint test hook ---- */
typedef struct Hook {
    int checkpoints, at;
    uint64_t bytes;
    LilyCliProgress *bar;
} Hook;

static void on_write(uint64_t done, uint64_t total, void *user)
{
    Hook *h = user;
    (void)total;
    if (h->at && h->checkpoints == h->at && done >= h->bytes) {
        fprintf(stderr, "lily-train: test hook: killing myself during checkpoint %d at %" PRIu64 " bytes\n",
                h->checkpoints, done);
        raise(SIGKILL);
    }
}

static int save(LilyContext *ctx, LilyTrainer *tr, Hook *hook, int quiet)
{
    hook->checkpoints++;
    double t0 = now();
    if (lily_trainer_save(tr, on_write, hook) != LILY_OK) {
        fprintf(stderr, "\nlily-train: saving the checkpoint failed: %s\n", lily_context_error(ctx));
        return -1;
    }
    if (!quiet)
        fprintf(stderr, "\nlily-train: step %" PRId64 ": checkpoint and model written to %s (%.1f s)\n",
                lily_trainer_steps_done(tr), lily_trainer_out_dir(tr), now() - t0);
    return 0;
}

int main(int argc, char **argv)
{
    const char *config = "config.yaml", *stage = NULL, *init = NULL, *resume = NULL, *data = NULL,
               *out = NULL, *device = "cpu";
    int64_t max_steps_opt = -1;
    int max_steps_int = -1, stop_at = -1, batch = 0, threads = 0, quiet = 0, verbose = 0;
    const LilyCliOption opts[] = {
        {"config", 'c', LILY_CLI_STRING, &config, "FILE", "Lily config.yaml (data, model, train sections)"},
        {"stage", 's', LILY_CLI_STRING, &stage, "unet|vae|vocoder", "stage to train (default: train.stage)"},
        {"init", 0, LILY_CLI_STRING, &init, "MODEL", "start from this model (Lily .safetensors or AudioSR "
         ".bin; default: model.init, else random weights of model.architecture)"},
        {"resume", 'r', LILY_CLI_STRING, &resume, "DIR", "continue a run from DIR/checkpoint.safetensors"},
        {"data", 'd', LILY_CLI_STRING, &data, "DIR", "dataset folder (default: data.dir)"},
        {"out", 'o', LILY_CLI_STRING, &out, "DIR", "output folder (default: the --resume folder, else train.out_dir)"},
        {"max-steps", 'n', LILY_CLI_INT, &max_steps_int, "N", "stop after N optimizer steps (default: train.max_steps)"},
        {"stop-at", 0, LILY_CLI_INT, &stop_at, "STEP", "save and stop at this step; the schedule still "
         "runs to max-steps (split a run over several jobs)"},
        {"batch-size", 'b', LILY_CLI_INT, &batch, "N", "segments per micro-batch (default: train.batch_size)"},
        {"device", 0, LILY_CLI_STRING, &device, "cpu|cuda[:N]", "where to train (default cpu)"},
        {"threads", 't', LILY_CLI_INT, &threads, "N", "CPU threads (default: all cores)"},
        {"quiet", 'q', LILY_CLI_FLAG, &quiet, NULL, "no progress bar or messages"},
        {"verbose", 'v', LILY_CLI_FLAG, &verbose, NULL, "engine messages at info level"},
    };
    const LilyCliSpec spec = {
        .prog = "lily-train",
        .usage = "--config config.yaml [--stage unet|vae|vocoder] [options]",
        .summary = "Trains the diffusion UNet, the VAE or the HiFi-GAN vocoder of an AudioSR model on a\n"
                   "Lily dataset; writes log.csv, loss.png, checkpoint.safetensors and model.safetensors.",
        .options = opts,
        .n_options = (int)(sizeof opts / sizeof *opts),
        .min_positional = 0,
        .max_positional = 0,
        .epilog = "examples:\n"
                  "  lily-train --config config.yaml --stage unet --init audiosr-basic.safetensors\n"
                  "  lily-train --config config.yaml --resume runs/default\n",
    };
    const char *pos[1];
    int n_pos = 0;
    int pr = lily_cli_parse(&spec, argc, argv, pos, &n_pos);
    if (pr == LILY_CLI_EXIT) return 0;
    if (pr == LILY_CLI_ERROR) return 2;
    if (max_steps_int >= 0) max_steps_opt = max_steps_int;

    LilyContextParams cp;
    lily_context_params_init(&cp);
    cp.n_threads = threads;
    cp.log_level = verbose ? LILY_LOG_INFO : LILY_LOG_WARNING;
    if (lily_device_parse(device, &cp.device, &cp.device_index) != LILY_OK) {
        fprintf(stderr, "lily-train: --device: expected cpu, cuda or cuda:N, not '%s'\n", device);
        return 2;
    }
    char err[1024];
    LilyContext *ctx = NULL;
    if (lily_context_new(&cp, &ctx, err, sizeof err) != LILY_OK) {
        fprintf(stderr, "lily-train: %s\n", err);
        return 1;
    }
    LilyProjectConfig cfg;
    if (lily_project_config_load(ctx, config, &cfg) != LILY_OK) {
        fprintf(stderr, "lily-train: %s\n", lily_context_error(ctx));
        lily_context_free(ctx);
        return 1;
    }
    if (stage && lily_train_stage_from_name(stage, &cfg.train.stage) != LILY_OK) {
        fprintf(stderr, "lily-train: --stage: expected unet, vae or vocoder, not '%s'\n", stage);
        lily_context_free(ctx);
        return 2;
    }
    if (max_steps_opt >= 0) cfg.train.max_steps = max_steps_opt;
    if (batch > 0) cfg.train.batch_size = batch;
    char *config_text = read_text(config);
    LilyTrainerOptions to = {.cfg = &cfg, .config_text = config_text, .init = init, .resume = resume,
                             .data_dir = data, .out_dir = out ? out : resume};
    LilyTrainer *tr = NULL;
    if (lily_trainer_new(ctx, &to, &tr) != LILY_OK) {
        fprintf(stderr, "lily-train: %s\n", lily_context_error(ctx));
        free(config_text);
        lily_context_free(ctx);
        return 1;
    }
    free(config_text);
    const char *stage_name = lily_train_stage_name(cfg.train.stage);
    Log lg = {.plot_col = cfg.train.stage == LILY_TRAIN_STAGE_VOCODER ? 5 : 4};
    if (log_open(&lg, lily_trainer_out_dir(tr), lily_trainer_steps_done(tr), resume != NULL) != 0) {
        fprintf(stderr, "lily-train: cannot write %s/log.csv: %s\n", lily_trainer_out_dir(tr), strerror(errno));
        lily_trainer_free(tr);
        lily_context_free(ctx);
        return 1;
    }
    if (lg.n || lg.vn) log_plot(ctx, &lg, stage_name);
    Hook hook = {0};
    const char *hk = getenv("LILY_TRAIN_KILL_DURING_CHECKPOINT");
    if (hk && sscanf(hk, "%d:%" SCNu64, &hook.at, &hook.bytes) != 2) hook.at = 0;
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);

    const LilyTrainConfig *tc = &cfg.train;
    int64_t start = lily_trainer_steps_done(tr);
    if (!quiet)
        fprintf(stderr, "lily-train: %s stage, steps %" PRId64 " -> %" PRId64 ", batch %d x %d, output %s\n",
                stage_name, start, tc->max_steps, tc->batch_size, tc->grad_accum, lily_trainer_out_dir(tr));
    LilyCliProgress *bar = lily_cli_progress_new("train", (uint64_t)tc->max_steps, quiet ? LILY_CLI_PROGRESS_QUIET : 0);
    lily_cli_progress_update(bar, (uint64_t)start);
    int rc = 0;
    int64_t end = tc->max_steps;
    if (stop_at >= 0 && stop_at < end) end = stop_at;
    if (start == 0 && tc->validate_every > 0 && end > 0) {
        /* a baseline before any update, so the curve starts where the model does */
        LilyValidationInfo v0;
        static const char *const parts[3][4] = {{"mse"}, {"rec_l1", "kl"}, {"mel_l1", "gen_adv", "feature_match", "disc"}};
        static const int n_parts[3] = {1, 2, 4};
        if (lily_trainer_validate(tr, &v0) != LILY_OK) {
            fprintf(stderr, "lily-train: validation: %s\n", lily_context_error(ctx));
            rc = 1;
        } else {
            if (!quiet)
                fprintf(stderr, "lily-train: step 0: validation loss %.5g, LSD %.4f (input %.4f) on %" PRId64
                        " %ssegments\n", v0.loss, v0.lsd, v0.lsd_input, v0.items, v0.on_train ? "training " : "");
            log_baseline(&lg, &v0, parts[cfg.train.stage], n_parts[cfg.train.stage]);
        }
    }
    double window = 0.0, window_plot = 0.0, t_window = now();
    int64_t in_window = 0;
    while (rc == 0 && lily_trainer_steps_done(tr) < end && !interrupted) {
        LilyTrainStepInfo info;
        if (lily_trainer_step(tr, &info) != LILY_OK) {
            fprintf(stderr, "\nlily-train: %s\n", lily_context_error(ctx));
            rc = 1;
            break;
        }
        window += info.loss;
        window_plot += lg.plot_col == 5 ? info.parts[0] : info.loss;
        in_window++;
        char label[64];
        snprintf(label, sizeof label, "%s loss %.4g", stage_name, info.loss);
        lily_cli_progress_set_label(bar, label);
        lily_cli_progress_update(bar, (uint64_t)info.step);
        bool last = info.step >= end;
        bool do_val = tc->validate_every > 0 && (info.step % tc->validate_every == 0 || last);
        bool do_log = info.step % tc->log_every == 0 || last || do_val;
        LilyValidationInfo vi;
        if (do_val) {
            if (lily_trainer_validate(tr, &vi) != LILY_OK) {
                fprintf(stderr, "\nlily-train: validation: %s\n", lily_context_error(ctx));
                rc = 1;
                break;
            }
            if (!quiet)
                fprintf(stderr, "\nlily-train: step %" PRId64 ": validation loss %.5g, LSD %.4f (input %.4f) on %" PRId64
                        " %ssegments\n", info.step, vi.loss, vi.lsd, vi.lsd_input, vi.items,
                        vi.on_train ? "training " : "");
        }
        if (do_log) {
            double sec = (now() - t_window) / (double)(in_window ? in_window : 1);
            double k = (double)(in_window ? in_window : 1);
            log_row(&lg, &info, window / k, window_plot / k, sec, do_val ? &vi : NULL);
            log_plot(ctx, &lg, stage_name);
            window = window_plot = 0.0;
            in_window = 0;
            t_window = now();
        }
        if ((tc->checkpoint_every > 0 && info.step % tc->checkpoint_every == 0) || last) {
            if (save(ctx, tr, &hook, quiet) != 0) {
                rc = 1;
                break;
            }
            t_window = now();
        }
    }
    lily_cli_progress_finish(bar);
    if (interrupted && rc == 0) {
        fprintf(stderr, "lily-train: interrupted at step %" PRId64 ": saving\n", lily_trainer_steps_done(tr));
        rc = save(ctx, tr, &hook, quiet) == 0 ? 130 : 1;
    } else if (rc == 0 && lily_trainer_steps_done(tr) == start && start >= end && !quiet) {
        fprintf(stderr, "lily-train: already at step %" PRId64 " (stopping at %" PRId64 "): nothing to do\n", start,
                end);
    }
    log_close(&lg);
    lily_trainer_free(tr);
    lily_context_free(ctx);
    return rc;
}
