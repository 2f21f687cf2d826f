/* core/context.c - context lifetime, logging, progress and cancellation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/context.h"

void lily_context_params_init(LilyContextParams *p)
{
    memset(p, 0, sizeof *p);
    p->device = LILY_DEVICE_CPU;
    p->log_level = LILY_LOG_WARNING;
}

static void default_log(LilyLogLevel level, const char *msg, void *user)
{
    (void)user;
    static const char *const names[] = {"", "error", "warning", "info", "debug", "trace"};
    fprintf(stderr, "lily: %s: %s\n", names[level >= 1 && level <= 5 ? level : 0], msg);
}

LilyStatus lily_context_new(const LilyContextParams *params, LilyContext **out, char *err,
                            size_t err_len)
{
    LilyContextParams defaults;
    if (!params) {
        lily_context_params_init(&defaults);
        params = &defaults;
    }
    *out = NULL;
    LilyContext *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        if (err) snprintf(err, err_len, "out of host memory creating a context");
        return LILY_ERR_NO_MEMORY;
    }
    ctx->log = params->log ? params->log : default_log;
    ctx->log_user_data = params->log_user_data;
    ctx->log_level = params->log_level ? params->log_level : LILY_LOG_WARNING;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    ctx->n_threads = params->n_threads > 0 ? params->n_threads : (int)(cores > 0 ? cores : 1);

    LilyStatus st = lily_backend_new(ctx, LILY_DEVICE_CPU, 0, ctx->n_threads, &ctx->host);
    if (st == LILY_OK && params->device != LILY_DEVICE_CPU)
        st = lily_backend_new(ctx, params->device, params->device_index, ctx->n_threads,
                              &ctx->backend);
    else
        ctx->backend = ctx->host;
    if (st != LILY_OK) {
        if (err) snprintf(err, err_len, "%s", ctx->error);
        lily_context_free(ctx);
        return st;
    }
    lily_arena_init(&ctx->arena, ctx->backend, 0);
    lily_arena_init(&ctx->host_arena, ctx->host, (size_t)16 << 20);
    lily_log(ctx, LILY_LOG_DEBUG, "context: device %s:%d, %d threads",
             lily_device_name(ctx->backend->kind), ctx->backend->index, ctx->n_threads);
    ctx->error[0] = '\0';
    *out = ctx;
    return LILY_OK;
}

void lily_context_free(LilyContext *ctx)
{
    if (!ctx) return;
    if (ctx->backend) lily_arena_release(&ctx->arena);
    if (ctx->host) lily_arena_release(&ctx->host_arena);
    if (ctx->backend && ctx->backend != ctx->host) ctx->backend->ops->destroy(ctx->backend);
    if (ctx->host) ctx->host->ops->destroy(ctx->host);
    free(ctx);
}

const char *lily_context_error(const LilyContext *ctx)
{
    return ctx ? ctx->error : "no context";
}

void lily_context_set_abort(LilyContext *ctx, LilyAbortFn fn, void *user_data)
{
    ctx->abort_fn = fn;
    ctx->abort_user_data = user_data;
}

void lily_context_set_progress(LilyContext *ctx, LilyProgressFn fn, void *user_data)
{
    ctx->progress = fn;
    ctx->progress_user_data = user_data;
}

LilyDeviceKind lily_context_device(const LilyContext *ctx)
{
    return ctx->backend->kind;
}

size_t lily_context_peak_scratch(const LilyContext *ctx)
{
    return ctx->arena.peak + (ctx->backend != ctx->host ? 0 : ctx->host_arena.peak);
}

double lily_context_flops(const LilyContext *ctx)
{
    return ctx->flops;
}

void lily_context_reset_flops(LilyContext *ctx)
{
    ctx->flops = 0;
}

void lily_free(void *p)
{
    free(p);
}

void lily_log(LilyContext *ctx, LilyLogLevel level, const char *fmt, ...)
{
    if (!ctx || !ctx->log || level > ctx->log_level) return;
    char msg[LILY_ERROR_LEN + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->log(level, msg, ctx->log_user_data);
}

LilyStatus lily_check_abort(LilyContext *ctx, const char *where)
{
    if (ctx->abort_fn && ctx->abort_fn(ctx->abort_user_data))
        return lily_error(ctx, LILY_ERR_CANCELLED, "cancelled during %s", where);
    return LILY_OK;
}

void lily_progress(LilyContext *ctx, const char *stage, int64_t done, int64_t total)
{
    if (ctx->progress) ctx->progress(stage, done, total, ctx->progress_user_data);
}
