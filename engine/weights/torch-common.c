/* weights/torch-common.c - state dict discovery and tensor views for PyTorch files.
 *
 * A PyTorch tensor is a view (storage_offset, size, stride) of a typed storage
 * (torch/_utils.py _rebuild_tensor_v2). A contiguous view - strides equal to the row-major
 * products of the sizes, ignoring dimensions of size 1 - points straight into the storage; any
 * other view (a transposed or sliced tensor saved as is) is copied into a contiguous buffer
 * owned by the LilyWeights. Every element a view can reach is checked to lie inside its
 * storage, and the storage inside the file, before any pointer is formed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "weights/torch-common.h"

static int has_tensors(const LilyPkObj *d)
{
    if (!d || d->type != LILY_PK_DICT) return 0;
    for (int i = 1; i < d->u.seq.n; i += 2)
        if (d->u.seq.items[i]->type == LILY_PK_TENSOR) return 1;
    return 0;
}

static const LilyPkObj *find_state_dict(const LilyPkObj *root, const char **where)
{
    static const char *const keys[] = {"state_dict", "model", "module", "model_state_dict"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const LilyPkObj *d = lily_pk_dict_get(root, keys[i]);
        if (has_tensors(d)) {
            *where = keys[i];
            return d;
        }
    }
    if (has_tensors(root)) {
        *where = "";
        return root;
    }
    return NULL;
}

static void describe_keys(const LilyPkObj *d, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!d || d->type != LILY_PK_DICT) {
        snprintf(buf, len, "the file holds a %s, not a dict", d ? lily_pk_type_name(d->type) : "nothing");
        return;
    }
    snprintf(buf, len, "top-level keys:");
    for (int i = 0; i + 1 < d->u.seq.n && i < 24; i += 2) {
        const LilyPkObj *k = d->u.seq.items[i];
        size_t used = strlen(buf);
        if (k->type == LILY_PK_STR) snprintf(buf + used, len - used, " '%s'", k->u.str.s);
        else snprintf(buf + used, len - used, " <%s>", lily_pk_type_name(k->type));
    }
}

/* Top-level scalars (global_step, epoch, ...) become metadata "torch.<key>". */
static LilyStatus record_scalars(LilyContext *ctx, LilyWeights *w, const LilyPkObj *root,
                                 const LilyPkObj *sd)
{
    if (!root || root->type != LILY_PK_DICT || root == sd) return LILY_OK;
    char other[512] = "";
    for (int i = 0; i + 1 < root->u.seq.n; i += 2) {
        const LilyPkObj *k = root->u.seq.items[i], *v = root->u.seq.items[i + 1];
        if (k->type != LILY_PK_STR || v == sd) continue;
        char key[160], val[64];
        snprintf(key, sizeof key, "torch.%s", k->u.str.s);
        const char *text = NULL;
        switch (v->type) {
        case LILY_PK_INT: snprintf(val, sizeof val, "%lld", (long long)v->u.i); text = val; break;
        case LILY_PK_FLOAT: snprintf(val, sizeof val, "%.17g", v->u.f); text = val; break;
        case LILY_PK_BOOL: text = v->u.i ? "true" : "false"; break;
        case LILY_PK_STR: text = v->u.str.s; break;
        default: {
            size_t used = strlen(other);
            snprintf(other + used, sizeof other - used, "%s%s (%s)", used ? ", " : "", k->u.str.s,
                     lily_pk_type_name(v->type));
        }
        }
        if (text) LILY_TRY(lily_weights_push_metadata(ctx, w, key, text));
    }
    if (other[0]) LILY_TRY(lily_weights_push_metadata(ctx, w, "torch.other_entries", other));
    return LILY_OK;
}

/* Copies the view into a new contiguous buffer, converting f64 to f32 when asked. */
static void *gather(const LilyPkObj *t, const uint8_t *base, int esize, int64_t numel, int f64_to_f32)
{
    int out_size = f64_to_f32 ? 4 : esize;
    uint8_t *out = malloc(numel ? (size_t)numel * (size_t)out_size : 1);
    if (!out) return NULL;
    int nd = t->u.tensor.ndim;
    int64_t idx[LILY_MAX_DIMS] = {0};
    for (int64_t n = 0; n < numel; n++) {
        int64_t e = t->u.tensor.offset;
        for (int d = 0; d < nd; d++) e += idx[d] * t->u.tensor.stride[d];
        const uint8_t *src = base + (size_t)e * (size_t)esize;
        if (f64_to_f32) {
            double v;
            memcpy(&v, src, 8);
            float f = (float)v;
            memcpy(out + (size_t)n * 4, &f, 4);
        } else {
            memcpy(out + (size_t)n * (size_t)esize, src, (size_t)esize);
        }
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < t->u.tensor.shape[d]) break;
            idx[d] = 0;
        }
    }
    return out;
}

static LilyStatus push_tensor(LilyContext *ctx, LilyWeights *w, const char *origin, const char *name,
                              const LilyPkObj *t, LilyTorchResolveFn resolve, void *user)
{
    const LilyPkObj *s = t->u.tensor.storage;
    const LilyPkObj *cls = s->u.storage.cls;
    int esize = cls->u.global.elem_size;
    int f64 = !cls->u.global.dtype_known && strcmp(cls->u.global.name, "DoubleStorage") == 0;
    if (!cls->u.global.dtype_known && !f64)
        return lily_error(ctx, LILY_ERR_UNSUPPORTED, "%s: tensor '%s' is stored as torch.%s, an "
                          "element type Lily does not read (it reads float32, float16, bfloat16, "
                          "float64, int64, int32, uint8, bool)", origin, name, cls->u.global.name);
    LilyDType dtype = cls->u.global.dtype;
    LilyTorchStorage st;
    LILY_TRY(resolve(ctx, user, s, &st));
    int64_t snumel = s->u.storage.numel;
    if ((uint64_t)snumel > st.nbytes / (uint64_t)esize)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: storage '%s' holds %llu bytes, but the pickle "
                          "declares %lld elements of %d bytes (tensor '%s'): the checkpoint is "
                          "damaged", w->path, st.desc, (unsigned long long)st.nbytes,
                          (long long)snumel, esize, name);
    int nd = t->u.tensor.ndim;
    int64_t numel = lily_weights_numel(nd, t->u.tensor.shape);
    if (numel < 0)
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: tensor '%s' has an impossible shape", origin, name);
    /* The last element the view reaches must lie inside the storage. */
    if (numel > 0) {
        int64_t last = t->u.tensor.offset;
        int overflow = 0;
        for (int d = 0; d < nd; d++) {
            int64_t step;
            overflow |= __builtin_mul_overflow(t->u.tensor.shape[d] - 1, t->u.tensor.stride[d], &step);
            overflow |= __builtin_add_overflow(last, step, &last);
        }
        if (overflow || last >= snumel) {
            char shp[96];
            lily_dims_str(t->u.tensor.shape, nd, shp, sizeof shp);
            return lily_error(ctx, LILY_ERR_FORMAT, "%s: tensor '%s' (%s at element offset %lld) "
                              "reaches past the end of its storage '%s' (%lld elements, %llu bytes "
                              "at file offset %llu): the checkpoint is damaged", w->path, name, shp,
                              (long long)t->u.tensor.offset, st.desc, (long long)snumel,
                              (unsigned long long)st.nbytes, (unsigned long long)st.file_offset);
        }
    }
    int contiguous = 1;
    int64_t expect = 1;
    for (int d = nd - 1; d >= 0; d--) {
        if (t->u.tensor.shape[d] != 1 && t->u.tensor.stride[d] != expect) contiguous = 0;
        expect *= t->u.tensor.shape[d];
    }
    const uint8_t *ptr = st.data;
    if (numel > 0) ptr += (size_t)t->u.tensor.offset * (size_t)esize;
    /* A view is used in place only when it is contiguous and aligned for its element type;
     * PyTorch aligns storages to 64 bytes, other writers may not. */
    int in_place = contiguous && !f64 && ((uintptr_t)ptr % (uintptr_t)esize) == 0;
    if (numel == 0) in_place = 1;
    size_t out_esize = f64 ? 4 : (size_t)esize;
    if (!in_place) {
        void *buf = NULL;
        if (contiguous && !f64) { /* only misaligned: one copy */
            buf = malloc(numel ? (size_t)numel * (size_t)esize : 1);
            if (buf) memcpy(buf, ptr, (size_t)numel * (size_t)esize);
        } else {
            buf = gather(t, st.data, esize, numel, f64);
        }
        if (!buf)
            return lily_error(ctx, LILY_ERR_NO_MEMORY, "%s: out of memory copying tensor '%s'",
                              w->path, name);
        LILY_TRY(lily_weights_own(ctx, w, buf));
        ptr = buf;
    }
    return lily_weights_push(ctx, w, name, dtype, nd, t->u.tensor.shape, ptr,
                             (size_t)numel * out_esize, st.index,
                             st.file_offset + (uint64_t)t->u.tensor.offset * (uint64_t)esize);
}

LilyStatus lily_torch_load_state_dict(LilyContext *ctx, LilyWeights *w, const char *origin,
                                      const LilyPkObj *root, LilyTorchResolveFn resolve, void *user)
{
    const char *where = NULL;
    const LilyPkObj *sd = find_state_dict(root, &where);
    if (!sd) {
        char keys[400];
        describe_keys(root, keys, sizeof keys);
        return lily_error(ctx, LILY_ERR_FORMAT, "%s: no state dict of tensors found (%s); an "
                          "AudioSR checkpoint holds {'state_dict': {name: tensor}}", origin, keys);
    }
    if (where[0]) LILY_TRY(lily_weights_push_metadata(ctx, w, "torch.state_dict_key", where));
    LILY_TRY(record_scalars(ctx, w, root, sd));
    char skipped[400] = "";
    int n_skipped = 0;
    for (int i = 0; i + 1 < sd->u.seq.n; i += 2) {
        const LilyPkObj *k = sd->u.seq.items[i], *v = sd->u.seq.items[i + 1];
        if (k->type != LILY_PK_STR || strlen(k->u.str.s) != k->u.str.len) {
            return lily_error(ctx, LILY_ERR_FORMAT, "%s: state dict entry %d has a %s key, not a "
                              "name", origin, i / 2, lily_pk_type_name(k->type));
        }
        if (v->type != LILY_PK_TENSOR) {
            size_t used = strlen(skipped);
            if (n_skipped < 8)
                snprintf(skipped + used, sizeof skipped - used, "%s%s (%s)", used ? ", " : "",
                         k->u.str.s, lily_pk_type_name(v->type));
            n_skipped++;
            continue;
        }
        LILY_TRY(push_tensor(ctx, w, origin, k->u.str.s, v, resolve, user));
    }
    if (n_skipped) {
        char buf[480];
        snprintf(buf, sizeof buf, "%d: %s%s", n_skipped, skipped, n_skipped > 8 ? ", ..." : "");
        LILY_TRY(lily_weights_push_metadata(ctx, w, "torch.skipped_entries", buf));
    }
    return LILY_OK;
}
