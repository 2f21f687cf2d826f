/* train/init.c - random model files for training (see init.h). */
#include <stdio.h>
#include <stdlib.h>

#include "core/context.h"
#include "train/init.h"
#include "weights/arch.h"
#include "weights/weights.h"

typedef struct Gen {
    const LilyArchTensor *t;
    const LilyModelConfig *cfg;
    uint64_t seed;
} Gen;

static LilyStatus gen_fill(void *user, uint64_t first, size_t count, float *out)
{
    const Gen *g = user;
    lily_arch_random_values(g->t, g->cfg, g->seed, first, count, out);
    return LILY_OK;
}

LilyStatus lily_train_write_random_model(LilyContext *ctx, const LilyModelConfig *cfg,
                                         uint64_t seed, const char *path)
{
    LILY_TRY(lily_model_config_validate(ctx, cfg));
    LilyArch arch;
    LILY_TRY(lily_arch_build(ctx, cfg, 0, &arch));
    static const int32_t zero_i32 = 0;
    Gen *gens = calloc((size_t)(arch.n ? arch.n : 1), sizeof *gens);
    LilySafetensorsWriter *wr = NULL;
    char *yaml = NULL;
    LilyStatus st = LILY_OK;
    if (!gens) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
        goto done;
    }
    LILY_CHECK(st, lily_safetensors_writer_new(ctx, &wr), done);
    for (int i = 0; i < arch.n; i++) {
        const LilyArchTensor *t = &arch.t[i];
        if (t->use == LILY_USE_UNUSED) continue;
        if (t->dtype == LILY_DTYPE_I32) {
            LILY_CHECK(st, lily_safetensors_writer_add(wr, t->name, LILY_DTYPE_I32, LILY_DTYPE_I32,
                                                       t->ndim, t->shape, &zero_i32), done);
            continue;
        }
        gens[i] = (Gen){.t = t, .cfg = cfg, .seed = seed};
        LILY_CHECK(st, lily_safetensors_writer_add_generated(wr, t->name, LILY_DTYPE_F32, t->ndim,
                                                             t->shape, gen_fill, &gens[i]), done);
    }
    LILY_CHECK(st, lily_model_config_to_yaml(ctx, cfg, &yaml), done);
    char seed_text[32];
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)seed);
    LILY_CHECK(st, lily_safetensors_writer_set_metadata(wr, "lily.config", yaml), done);
    LILY_CHECK(st, lily_safetensors_writer_set_metadata(wr, "lily.format", "1"), done);
    LILY_CHECK(st, lily_safetensors_writer_set_metadata(wr, "lily.random_seed", seed_text), done);
    LILY_CHECK(st, lily_safetensors_writer_write(wr, path, NULL, NULL), done);
done:
    free(yaml);
    lily_safetensors_writer_free(wr);
    free(gens);
    lily_arch_free(&arch);
    return st;
}
