/* tests/fuzz/fuzz-stubs.c - the one context function the readers reach (through lily_error),
 * for fuzz targets built without core/context.c and the backends behind it. It still formats
 * the message, so a bad format argument shows up under the sanitizers. */
#include <stdarg.h>
#include <stdio.h>

#include "core/context.h"

void lily_log(LilyContext *ctx, LilyLogLevel level, const char *fmt, ...)
{
    char buf[LILY_ERROR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    (void)ctx;
    (void)level;
}
