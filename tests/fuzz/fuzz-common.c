/* tests/fuzz/fuzz-common.c - drives the model-file readers the way lily-inspect does, on
 * arbitrary bytes. Built only with -Dfuzzers=true (clang, libFuzzer + ASan + UBSan); the
 * engine sources it needs are compiled into each fuzz target with the fuzzer's coverage
 * instrumentation (tests/fuzz/meson.build). The context is a bare LilyContext: the readers
 * only record errors on it (lily_log is stubbed in fuzz-stubs.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/model-config.h"
#include "core/context.h"
#include "fuzz-common.h"
#include "weights/arch.h"
#include "weights/weights.h"

static volatile uint8_t sink;

static void exercise(LilyContext *ctx, LilyWeights *w)
{
    uint8_t acc = 0;
    for (int i = 0; i < lily_weights_count(w); i++) {
        const LilyWeight *t = lily_weights_at(w, i);
        const uint8_t *p = t->data;
        for (size_t k = 0; k < t->nbytes; k += 61) acc ^= p[k];
        if (t->nbytes) acc ^= p[t->nbytes - 1];
        acc ^= (uint8_t)strlen(t->name);
        double v;
        acc ^= (uint8_t)lily_weight_first_nonfinite(t, &v);
        if (lily_weights_find(w, t->name) == NULL) abort(); /* every listed name must be found */
    }
    for (int i = 0; i < lily_weights_metadata_count(w); i++) {
        const char *k, *v;
        lily_weights_metadata_at(w, i, &k, &v);
        acc ^= (uint8_t)(strlen(k) + strlen(v));
    }
    sink = acc;
    /* Only a file that carries a config goes on to the config parser and the check; the
     * basic defaults would make every input pay for a 3743-tensor enumeration. */
    if (!lily_weights_metadata(w, "lily.config")) return;
    LilyModelConfig cfg;
    if (lily_weights_resolve_config(ctx, w, NULL, &cfg, NULL) != LILY_OK) return;
    if (lily_model_config_validate(ctx, &cfg) != LILY_OK) return;
    char *yaml = NULL;
    if (lily_model_config_to_yaml(ctx, &cfg, &yaml) == LILY_OK) {
        LilyModelConfig again;
        if (lily_model_config_parse(ctx, yaml, strlen(yaml), "roundtrip", &again) != LILY_OK ||
            !lily_model_config_equal(&cfg, &again))
            abort(); /* what Lily writes must read back */
        free(yaml);
    }
    (void)lily_weights_check(ctx, w, &cfg, LILY_CHECK_VALUES, NULL, NULL);
}

void lily_fuzz_weights(const uint8_t *data, size_t size)
{
    int fd = memfd_create("lily-fuzz", MFD_CLOEXEC);
    if (fd < 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) abort();
        done += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    LilyContext *ctx = calloc(1, sizeof *ctx);
    if (!ctx) abort();
    LilyWeights *w = NULL;
    if (lily_weights_open(ctx, path, &w) == LILY_OK) {
        exercise(ctx, w);
        lily_weights_close(w);
    } else if (w != NULL || ctx->error[0] == '\0') {
        abort(); /* a failure must leave no object and say why */
    }
    free(ctx);
    close(fd);
}
