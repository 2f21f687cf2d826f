/* tools/common/progress.c - the progress bar and formatting helpers of progress.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

typedef enum { MODE_BAR, MODE_PLAIN, MODE_NONE } Mode;

struct LilyCliProgress {
    char label[64];
    uint64_t total, done;
    unsigned flags;
    Mode mode;
    double start, last_draw;
    int last_tenth;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

const char *lily_cli_format_bytes(char *buf, size_t len, uint64_t n)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        u++;
    }
    if (u == 0) snprintf(buf, len, "%llu B", (unsigned long long)n);
    else snprintf(buf, len, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
    return buf;
}

const char *lily_cli_format_count(char *buf, size_t len, uint64_t n)
{
    char digits[32];
    int nd = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n);
    size_t k = 0;
    for (int i = 0; i < nd && k + 2 < len; i++) {
        if (i && (nd - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
    return buf;
}

const char *lily_cli_format_duration(char *buf, size_t len, double s)
{
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

static void amount(const LilyCliProgress *p, char *buf, size_t len, uint64_t n)
{
    if (p->flags & LILY_CLI_PROGRESS_BYTES) lily_cli_format_bytes(buf, len, n);
    else lily_cli_format_count(buf, len, n);
}

LilyCliProgress *lily_cli_progress_new(const char *label, uint64_t total, unsigned flags)
{
    LilyCliProgress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total;
    p->flags = flags;
    p->mode = isatty(STDERR_FILENO) ? MODE_BAR : MODE_PLAIN;
    const char *env = getenv("LILY_PROGRESS");
    if (env && strcmp(env, "bar") == 0) p->mode = MODE_BAR;
    if (env && strcmp(env, "plain") == 0) p->mode = MODE_PLAIN;
    if (env && strcmp(env, "none") == 0) p->mode = MODE_NONE;
    if (flags & LILY_CLI_PROGRESS_QUIET) p->mode = MODE_NONE;
    p->start = now();
    p->last_draw = -1;
    p->last_tenth = -1;
    return p;
}

static void draw(LilyCliProgress *p, int final)
{
    double t = now(), el = t - p->start;
    double frac = p->total ? (double)p->done / (double)p->total : 1.0;
    if (frac > 1) frac = 1;
    double rate = el > 0 ? (double)p->done / el : 0;
    double eta = (rate > 0 && p->total > p->done) ? (double)(p->total - p->done) / rate : 0;
    char a[32], b[32], r[32], e[32];
    amount(p, a, sizeof a, p->done);
    amount(p, b, sizeof b, p->total);
    amount(p, r, sizeof r, (uint64_t)rate);
    if (p->mode == MODE_PLAIN) {
        if (final)
            fprintf(stderr, "%s: done, %s in %s (%s/s)\n", p->label, a,
                    lily_cli_format_duration(e, sizeof e, el), r);
        else
            fprintf(stderr, "%s: %3d%% (%s of %s, ETA %s)\n", p->label, (int)(frac * 100), a, b,
                    lily_cli_format_duration(e, sizeof e, eta));
        return;
    }
    struct winsize ws;
    int cols = (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) ? ws.ws_col : 80;
    char tail[128];
    if (final)
        snprintf(tail, sizeof tail, " %3d%% %s in %s (%s/s)", (int)(frac * 100), a,
                 lily_cli_format_duration(e, sizeof e, el), r);
    else
        snprintf(tail, sizeof tail, " %3d%% %s/%s %s/s ETA %s", (int)(frac * 100), a, b, r,
                 lily_cli_format_duration(e, sizeof e, eta));
    int width = cols - (int)strlen(p->label) - (int)strlen(tail) - 4;
    if (width > 50) width = 50;
    char bar[64];
    int filled = 0;
    if (width >= 5) {
        filled = (int)(frac * width);
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
        if (filled >= width) bar[width - 1] = '=';
        bar[width] = '\0';
    } else {
        bar[0] = '\0';
    }
    fprintf(stderr, "\r%s [%s]%s\033[K%s", p->label, bar, tail, final ? "\n" : "");
    fflush(stderr);
}

void lily_cli_progress_update(LilyCliProgress *p, uint64_t done)
{
    if (!p || p->mode == MODE_NONE) {
        if (p) p->done = done;
        return;
    }
    p->done = done;
    if (p->mode == MODE_PLAIN) {
        int tenth = p->total ? (int)((double)done * 10.0 / (double)p->total) : 10;
        if (tenth > p->last_tenth && tenth < 10) {
            p->last_tenth = tenth;
            draw(p, 0);
        }
        return;
    }
    double t = now();
    if (t - p->last_draw >= 0.1 || done >= p->total) {
        p->last_draw = t;
        draw(p, 0);
    }
}

void lily_cli_progress_set_label(LilyCliProgress *p, const char *label)
{
    if (p) snprintf(p->label, sizeof p->label, "%s", label ? label : "");
}

void lily_cli_progress_finish(LilyCliProgress *p)
{
    if (!p) return;
    if (p->mode != MODE_NONE) draw(p, 1);
    free(p);
}

void lily_cli_progress_engine(const char *stage, int64_t done, int64_t total, void *user)
{
    LilyCliProgressSink *s = user;
    if (!stage) stage = "";
    if (!s->bar || strcmp(s->stage, stage) != 0) {
        lily_cli_progress_finish(s->bar);
        snprintf(s->stage, sizeof s->stage, "%s", stage);
        s->bar = lily_cli_progress_new(stage, total > 0 ? (uint64_t)total : 0, s->flags);
    }
    lily_cli_progress_update(s->bar, done > 0 ? (uint64_t)done : 0);
    if (total > 0 && done >= total) {
        lily_cli_progress_finish(s->bar);
        s->bar = NULL;
        s->stage[0] = '\0';
    }
}

void lily_cli_progress_sink_finish(LilyCliProgressSink *s)
{
    lily_cli_progress_finish(s->bar);
    s->bar = NULL;
    s->stage[0] = '\0';
}
