/* core/status.h - error reporting inside the engine.
 *
 * Every fallible engine function returns LilyStatus. The message goes to the context with
 * lily_error(), which returns the status so a failure reads `return lily_error(ctx, ...)`.
 * Messages name the file, tensor or parameter and say what to do, llm.c's HINT style. */
#ifndef LILY_CORE_STATUS_H
#define LILY_CORE_STATUS_H

#include <lily/lily.h>

#if defined(__GNUC__)
#define LILY_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LILY_UNUSED __attribute__((unused))
#else
#define LILY_PRINTF(a, b)
#define LILY_UNUSED
#endif

/* Stores the message on ctx (ctx may be NULL: then only the status is returned). */
LilyStatus lily_error(LilyContext *ctx, LilyStatus status, const char *fmt, ...) LILY_PRINTF(3, 4);
/* Prefixes the context's current message with more context ("loading x.bin: " + old). */
LilyStatus lily_error_prefix(LilyContext *ctx, LilyStatus status, const char *fmt, ...)
    LILY_PRINTF(3, 4);

/* Propagate a failure to the caller. */
#define LILY_TRY(expr)                                                                         \
    do {                                                                                       \
        LilyStatus lily_try_status_ = (expr);                                                  \
        if (lily_try_status_ != LILY_OK) return lily_try_status_;                              \
    } while (0)

/* Jump to a cleanup label on failure, keeping the status in `st`. */
#define LILY_CHECK(st, expr, label)                                                            \
    do {                                                                                       \
        (st) = (expr);                                                                         \
        if ((st) != LILY_OK) goto label;                                                       \
    } while (0)

#endif /* LILY_CORE_STATUS_H */
