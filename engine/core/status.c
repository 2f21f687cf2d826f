/* core/status.c - status names and the context's error message. */
#include <stdio.h>
#include <string.h>

#include "core/context.h"
#include "core/status.h"

const char *lily_status_name(LilyStatus status)
{
    switch (status) {
    case LILY_OK: return "ok";
    case LILY_ERR_INVALID_ARGUMENT: return "invalid-argument";
    case LILY_ERR_IO: return "io";
    case LILY_ERR_FORMAT: return "format";
    case LILY_ERR_SHAPE: return "shape";
    case LILY_ERR_UNSUPPORTED: return "unsupported";
    case LILY_ERR_NO_MEMORY: return "no-memory";
    case LILY_ERR_DEVICE: return "device";
    case LILY_ERR_NUMERIC: return "numeric";
    case LILY_ERR_CANCELLED: return "cancelled";
    case LILY_ERR_DISK_FULL: return "disk-full";
    case LILY_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

LilyStatus lily_error(LilyContext *ctx, LilyStatus status, const char *fmt, ...)
{
    if (!ctx) return status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
    ctx->last_status = status;
    lily_log(ctx, LILY_LOG_DEBUG, "error (%s): %s", lily_status_name(status), ctx->error);
    return status;
}

LilyStatus lily_error_prefix(LilyContext *ctx, LilyStatus status, const char *fmt, ...)
{
    if (!ctx) return status;
    char prefix[LILY_ERROR_LEN];
    char old[LILY_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, ctx->error, sizeof old);
    snprintf(ctx->error, sizeof ctx->error, "%s%s", prefix, old);
    ctx->last_status = status;
    return status;
}
