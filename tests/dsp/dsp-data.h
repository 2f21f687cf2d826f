/* tests/dsp/dsp-data.h - loads the scipy/numpy vectors of tests/data/dsp (made by
 * gen-vectors.py there) as doubles, keeping float64 references at full precision (the
 * engine's npy reader narrows them to float32). */
#ifndef LILY_TESTS_DSP_DATA_H
#define LILY_TESTS_DSP_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef struct DdArray {
    int ndim;
    int64_t shape[4];
    size_t numel;
    double *data; /* g_free */
} DdArray;

/* tests/data/dsp/<name>; fails the test when missing or malformed (<f4, <f8, <i8 only). */
void dd_load(const char *name, DdArray *out);
void dd_free(DdArray *a);
/* The array as float32 (g_free). */
float *dd_floats(const DdArray *a);

#endif /* LILY_TESTS_DSP_DATA_H */
