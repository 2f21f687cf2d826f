/* tools/common/progress.h - progress reporting and number formatting for the Lily tools.
 *
 * On a terminal a progress bar is redrawn in place (at most ten times a second) with the
 * fraction done, the amount, the rate and the time left; when stderr is a file or a pipe
 * (CI logs) plain lines are printed at every tenth instead, so logs stay readable. The
 * environment variable LILY_PROGRESS=bar|plain|none overrides the choice. */
#ifndef LILY_TOOLS_COMMON_PROGRESS_H
#define LILY_TOOLS_COMMON_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#define LILY_CLI_PROGRESS_BYTES 1u /* amounts are bytes: print them as KB/MB/GB */
#define LILY_CLI_PROGRESS_QUIET 2u /* print nothing */

typedef struct LilyCliProgress LilyCliProgress;

/* Starts a bar; NULL on allocation failure (every function accepts NULL). */
LilyCliProgress *lily_cli_progress_new(const char *label, uint64_t total, unsigned flags);
void lily_cli_progress_update(LilyCliProgress *p, uint64_t done);
/* Replaces the label (e.g. to show a running loss); shown at the next redraw. */
void lily_cli_progress_set_label(LilyCliProgress *p, const char *label);
/* Prints the final line (amount, time, rate) and frees p. */
void lily_cli_progress_finish(LilyCliProgress *p);

/* An engine progress sink (LilyProgressFn, lily_context_set_progress): one bar per stage
 * name; a new stage finishes the previous bar. Zero-initialise, set flags, pass as user. */
typedef struct LilyCliProgressSink {
    LilyCliProgress *bar;
    char stage[64];
    unsigned flags;
} LilyCliProgressSink;
void lily_cli_progress_engine(const char *stage, int64_t done, int64_t total, void *user);
void lily_cli_progress_sink_finish(LilyCliProgressSink *s);

/* "1.23 GB" (decimal units, as file managers show sizes). */
const char *lily_cli_format_bytes(char *buf, size_t len, uint64_t n);
/* "258,195,088" */
const char *lily_cli_format_count(char *buf, size_t len, uint64_t n);
/* "0:07", "12:34", "1:02:03" */
const char *lily_cli_format_duration(char *buf, size_t len, double seconds);

#endif /* LILY_TOOLS_COMMON_PROGRESS_H */
