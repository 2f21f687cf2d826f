/* core/npy.h - NumPy .npy files (format 1.0/2.0), the exchange format of reference vectors,
 * injected random draws (--noise DIR) and stage dumps (--dump-dir).
 * Reads little-endian f4, f8 (converted to f32) and i8/i4 (converted to i64), in C or Fortran
 * order (Fortran-ordered files are returned in C order). */
#ifndef LILY_CORE_NPY_H
#define LILY_CORE_NPY_H

#include <stdint.h>

#include <lily/lily.h>

#define LILY_NPY_MAX_DIMS 8

typedef struct LilyNpy {
    int ndim;
    int64_t shape[LILY_NPY_MAX_DIMS];
    int64_t numel;
    LilyDType dtype; /* LILY_DTYPE_F32 or LILY_DTYPE_I64 */
    void *data;      /* malloc'ed; free with lily_npy_free */
} LilyNpy;

LilyStatus lily_npy_read(LilyContext *ctx, const char *path, LilyNpy *out);
void lily_npy_free(LilyNpy *npy);
/* Writes f32 data of the given shape, atomically (temporary file then rename). */
LilyStatus lily_npy_write_f32(LilyContext *ctx, const char *path, const float *data, int ndim,
                              const int64_t *shape);

#endif /* LILY_CORE_NPY_H */
