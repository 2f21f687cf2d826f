/* core/context.h - what a LilyContext holds (engine-internal).
 *
 * One context per thread of use: the backend (device, oneDNN or cuBLAS/cuDNN handles and
 * their caches), the arena of scratch memory on that device, a host arena for staging, the
 * thread count, the log and progress sinks, the abort callback and the last error. There is
 * no global mutable state anywhere in the engine: everything hangs off a context. */
#ifndef LILY_CORE_CONTEXT_H
#define LILY_CORE_CONTEXT_H

#include <stdarg.h>

#include <lily/lily.h>

#include "backend/backend.h"
#include "core/arena.h"
#include "core/status.h"

#define LILY_ERROR_LEN 1024

struct LilyContext {
    LilyBackend *backend;
    LilyBackend *host;   /* the CPU backend's memory functions, for host staging */
    LilyArena arena;     /* scratch on the backend's device */
    LilyArena host_arena;/* scratch on the host */
    int n_threads;
    LilyLogFn log;
    void *log_user_data;
    LilyLogLevel log_level;
    LilyProgressFn progress;
    void *progress_user_data;
    LilyAbortFn abort_fn;
    void *abort_user_data;
    double flops;        /* floating-point operations issued by dense ops (benchmarks) */
    LilyStatus last_status;
    char error[LILY_ERROR_LEN];
};

void lily_log(LilyContext *ctx, LilyLogLevel level, const char *fmt, ...) LILY_PRINTF(3, 4);
/* LILY_ERR_CANCELLED (with a message) when the abort callback asks to stop, else LILY_OK. */
LilyStatus lily_check_abort(LilyContext *ctx, const char *where);
void lily_progress(LilyContext *ctx, const char *stage, int64_t done, int64_t total);

#endif /* LILY_CORE_CONTEXT_H */
