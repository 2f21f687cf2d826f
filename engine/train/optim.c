/* train/optim.c - parameters under training, AdamW, clipping, EMA and the LR schedule
 * (see optim.h; torch.optim.AdamW, clip_grad_norm_ and LDM's LitEma are the references). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "train/optim.h"

static size_t align256(size_t n) { return (n + 255) / 256 * 256; }

void lily_train_params_free(LilyTrainParams *tp)
{
    if (!tp) return;
    if (tp->be) {
        if (tp->grad_mem) tp->be->ops->free(tp->be, tp->grad_mem);
        if (tp->shadow_mem) tp->be->ops->free(tp->be, tp->shadow_mem);
    }
    free(tp->set.compute);
    free(tp->set.grad);
    free(tp->trainable);
    free(tp->offset);
    free(tp->adam_m);
    free(tp->adam_v);
    free(tp->ema);
    free(tp);
}

LilyStatus lily_train_host_view(LilyContext *ctx, const LilyTensor *t, float **staging,
                                size_t *staging_cap, float **out)
{
    if (t->dtype != LILY_DTYPE_F32)
        return lily_error(ctx, LILY_ERR_INTERNAL, "train: host view of a non-f32 tensor");
    if (t->device == LILY_DEVICE_CPU) {
        *out = t->data;
        return LILY_OK;
    }
    size_t bytes = lily_tensor_nbytes(t);
    if (bytes > *staging_cap) {
        float *p = realloc(*staging, bytes);
        if (!p) return lily_error(ctx, LILY_ERR_NO_MEMORY, "train: out of host memory (%zu bytes)", bytes);
        *staging = p;
        *staging_cap = bytes;
    }
    LILY_TRY(lily_tensor_download(ctx, t, *staging));
    *out = *staging;
    return LILY_OK;
}

LilyStatus lily_train_params_new(LilyContext *ctx, LilyParam *params, int n, const bool *trainable,
                                 LilyPrecision precision, bool with_ema, LilyTrainParams **out)
{
    *out = NULL;
    if (precision == LILY_PRECISION_F16)
        return lily_error(ctx, LILY_ERR_UNSUPPORTED, "train.precision f16 is not supported: use f32 or bf16");
    LilyTrainParams *tp = calloc(1, sizeof *tp);
    if (!tp) return lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
    tp->set.params = params;
    tp->set.n = n;
    tp->set.compute = calloc((size_t)(n ? n : 1), sizeof *tp->set.compute);
    tp->set.grad = calloc((size_t)(n ? n : 1), sizeof *tp->set.grad);
    tp->trainable = calloc((size_t)(n ? n : 1), sizeof *tp->trainable);
    tp->offset = calloc((size_t)(n ? n : 1), sizeof *tp->offset);
    tp->mixed = precision == LILY_PRECISION_BF16;
    tp->be = ctx->backend;
    LilyStatus st = LILY_OK;
    if (!tp->set.compute || !tp->set.grad || !tp->trainable || !tp->offset) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "out of host memory");
        goto fail;
    }
    size_t grad_bytes = 0, shadow_bytes = 0;
    for (int i = 0; i < n; i++) {
        LilyTensor *t = &params[i].t;
        tp->trainable[i] = trainable ? trainable[i] : true;
        tp->set.compute[i] = *t;
        tp->offset[i] = -1;
        if (!tp->trainable[i]) continue;
        if (t->dtype != LILY_DTYPE_F32) {
            st = lily_error(ctx, LILY_ERR_UNSUPPORTED, "train: parameter '%s' is %s; training needs f32 "
                            "master weights (load the model with precision f32)",
                            params[i].name, lily_dtype_name(t->dtype));
            goto fail;
        }
        t->stamp = 0;
        tp->set.compute[i].stamp = 0;
        tp->offset[i] = tp->numel;
        tp->numel += lily_tensor_numel(t);
        tp->n_trainable++;
        grad_bytes += align256(lily_tensor_nbytes(t));
        if (tp->mixed && params[i].matrix) shadow_bytes += align256((size_t)lily_tensor_numel(t) * 2);
    }
    LilyBackend *be = ctx->backend;
    if (grad_bytes && be->ops->alloc(be, grad_bytes, &tp->grad_mem) != LILY_OK) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "train: gradients need %.1f MiB of %s memory",
                        grad_bytes / 1048576.0, lily_device_name(be->kind));
        goto fail;
    }
    if (shadow_bytes && be->ops->alloc(be, shadow_bytes, &tp->shadow_mem) != LILY_OK) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "train: bf16 weight copies need %.1f MiB of %s memory",
                        shadow_bytes / 1048576.0, lily_device_name(be->kind));
        goto fail;
    }
    size_t go = 0, so = 0;
    for (int i = 0; i < n; i++) {
        if (!tp->trainable[i]) continue;
        LilyTensor *t = &params[i].t;
        tp->set.grad[i] = *t;
        tp->set.grad[i].data = (char *)tp->grad_mem + go;
        tp->set.grad[i].stamp = 0;
        go += align256(lily_tensor_nbytes(t));
        if (tp->mixed && params[i].matrix) {
            LilyTensor *c = &tp->set.compute[i];
            c->dtype = LILY_DTYPE_BF16;
            c->data = (char *)tp->shadow_mem + so;
            c->stamp = 0;
            so += align256((size_t)lily_tensor_numel(t) * 2);
        }
    }
    size_t nm = (size_t)(tp->numel ? tp->numel : 1);
    tp->adam_m = calloc(nm, sizeof(float));
    tp->adam_v = calloc(nm, sizeof(float));
    if (with_ema) tp->ema = malloc(nm * sizeof(float));
    if (!tp->adam_m || !tp->adam_v || (with_ema && !tp->ema)) {
        st = lily_error(ctx, LILY_ERR_NO_MEMORY, "train: the optimizer state needs %.1f MiB of host memory",
                        (double)nm * (with_ema ? 12 : 8) / 1048576.0);
        goto fail;
    }
    if (with_ema) {
        float *staging = NULL;
        size_t cap = 0;
        for (int i = 0; i < n && st == LILY_OK; i++) {
            if (!tp->trainable[i]) continue;
            float *w;
            st = lily_train_host_view(ctx, &params[i].t, &staging, &cap, &w);
            if (st == LILY_OK) memcpy(tp->ema + tp->offset[i], w, lily_tensor_nbytes(&params[i].t));
        }
        free(staging);
        if (st != LILY_OK) goto fail;
    }
    LILY_CHECK(st, lily_train_params_zero_grad(ctx, tp), fail);
    LILY_CHECK(st, lily_train_params_sync(ctx, tp), fail);
    *out = tp;
    return LILY_OK;
fail:
    lily_train_params_free(tp);
    return st;
}

LilyStatus lily_train_params_zero_grad(LilyContext *ctx, LilyTrainParams *tp)
{
    for (int i = 0; i < tp->set.n; i++)
        if (tp->trainable[i]) LILY_TRY(lily_op_fill(ctx, &tp->set.grad[i], 0.0f));
    return LILY_OK;
}

LilyStatus lily_train_params_sync(LilyContext *ctx, LilyTrainParams *tp)
{
    if (!tp->mixed) return LILY_OK;
    for (int i = 0; i < tp->set.n; i++)
        if (tp->trainable[i] && tp->set.compute[i].dtype == LILY_DTYPE_BF16)
            LILY_TRY(lily_op_cast(ctx, &tp->set.params[i].t, &tp->set.compute[i]));
    return LILY_OK;
}

LilyStatus lily_train_params_grad_norm(LilyContext *ctx, LilyTrainParams *tp, double *norm)
{
    double sq = 0.0;
    for (int i = 0; i < tp->set.n; i++) {
        if (!tp->trainable[i]) continue;
        double s = 0.0;
        LILY_TRY(lily_op_reduce(ctx, &tp->set.grad[i], NULL, &s, NULL));
        sq += s;
    }
    *norm = sqrt(sq);
    return LILY_OK;
}

double lily_lr_at(int64_t step, double lr, double min_lr, int64_t warmup, int64_t total_steps,
                  LilyLrShape shape)
{
    if (step < 0) step = 0;
    if (warmup > 0 && step < warmup) return lr * (double)(step + 1) / (double)warmup;
    if (shape == LILY_LR_CONSTANT || total_steps <= warmup) return lr;
    double p = (double)(step - warmup) / (double)(total_steps - warmup);
    if (p > 1.0) p = 1.0;
    if (shape == LILY_LR_LINEAR) return lr + (min_lr - lr) * p;
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + cos(M_PI * p));
}

/* PyTorch's _single_tensor_adamw on one parameter, in float32 as PyTorch computes it. */
static void adamw_update(float *w, const float *g, float *m, float *v, int64_t n, float coef,
                         const LilyAdamW *o, int64_t step)
{
    float decay = (float)(1.0 - o->lr * o->weight_decay);
    float b1 = (float)o->beta1, b2 = (float)o->beta2;
    float one_b1 = (float)(1.0 - o->beta1), one_b2 = (float)(1.0 - o->beta2);
    double bc1 = 1.0 - pow(o->beta1, (double)step);
    double bc2 = 1.0 - pow(o->beta2, (double)step);
    float step_size = (float)(o->lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float eps = (float)o->eps;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] * coef;
        float wi = o->weight_decay != 0.0 ? w[i] * decay : w[i];
        float mi = m[i] * b1 + gi * one_b1;
        float vi = v[i] * b2 + gi * gi * one_b2;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        w[i] = wi + (-step_size) * (mi / denom);
        m[i] = mi;
        v[i] = vi;
    }
}

LilyStatus lily_adamw_step(LilyContext *ctx, LilyTrainParams *tp, const LilyAdamW *opt,
                           int64_t step, LilyStepStats *stats)
{
    double norm;
    LILY_TRY(lily_train_params_grad_norm(ctx, tp, &norm));
    if (!isfinite(norm))
        return lily_error(ctx, LILY_ERR_NUMERIC,
                          "train: the gradient is not finite at step %lld (the loss diverged): lower "
                          "train.learning_rate, keep train.grad_clip on, or resume from the last "
                          "checkpoint", (long long)step);
    float coef = 1.0f;
    if (opt->grad_clip > 0.0) {
        /* clip_grad_norm_: computed in float32 there */
        float c = (float)opt->grad_clip / ((float)norm + 1e-6f);
        if (c < 1.0f) coef = c;
    }
    if (stats) {
        stats->grad_norm = norm;
        stats->clip_coef = coef;
    }
    double ema_d = 0.0;
    if (tp->ema) {
        tp->ema_updates++;
        ema_d = opt->ema_decay;
        double warm = (1.0 + (double)tp->ema_updates) / (10.0 + (double)tp->ema_updates);
        if (warm < ema_d) ema_d = warm;
    }
    float one_minus_decay = (float)(1.0 - ema_d);
    float *gst = NULL, *wst = NULL;
    size_t gcap = 0, wcap = 0;
    LilyStatus st = LILY_OK;
    for (int i = 0; i < tp->set.n && st == LILY_OK; i++) {
        if (!tp->trainable[i]) continue;
        LilyTensor *t = &tp->set.params[i].t;
        int64_t n = lily_tensor_numel(t), off = tp->offset[i];
        float *g, *w;
        st = lily_train_host_view(ctx, &tp->set.grad[i], &gst, &gcap, &g);
        if (st == LILY_OK) st = lily_train_host_view(ctx, t, &wst, &wcap, &w);
        if (st != LILY_OK) break;
        adamw_update(w, g, tp->adam_m + off, tp->adam_v + off, n, coef, opt, step);
        if (tp->ema) {
            /* LitEma: shadow -= (1 - decay) * (shadow - param) */
            float *e = tp->ema + off;
#pragma omp parallel for schedule(static)
            for (int64_t k = 0; k < n; k++) e[k] -= one_minus_decay * (e[k] - w[k]);
        }
        if (t->device != LILY_DEVICE_CPU) st = lily_tensor_upload(ctx, t, w);
    }
    free(gst);
    free(wst);
    LILY_TRY(st);
    return lily_train_params_sync(ctx, tp);
}

LilyStatus lily_train_params_swap_ema(LilyContext *ctx, LilyTrainParams *tp)
{
    if (!tp->ema) return LILY_OK;
    float *wst = NULL;
    size_t wcap = 0;
    LilyStatus st = LILY_OK;
    for (int i = 0; i < tp->set.n && st == LILY_OK; i++) {
        if (!tp->trainable[i]) continue;
        LilyTensor *t = &tp->set.params[i].t;
        int64_t n = lily_tensor_numel(t);
        float *w, *e = tp->ema + tp->offset[i];
        st = lily_train_host_view(ctx, t, &wst, &wcap, &w);
        if (st != LILY_OK) break;
        for (int64_t k = 0; k < n; k++) {
            float a = w[k];
            w[k] = e[k];
            e[k] = a;
        }
        if (t->device != LILY_DEVICE_CPU) st = lily_tensor_upload(ctx, t, w);
    }
    free(wst);
    LILY_TRY(st);
    return lily_train_params_sync(ctx, tp);
}
