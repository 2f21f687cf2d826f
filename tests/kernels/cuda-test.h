/* tests/kernels/cuda-test.h - what the CUDA test programs share: the context that plays the GPU.
 *
 * Without a device every case skips with lily_device_probe's reason. A device that answers
 * must give a working context (a failure there is a test failure, not a skip). With
 * LILY_CUDA_TEST_SELFCHECK set (and not "0") a second CPU context plays the GPU: that checks
 * the harness, not CUDA. */
#ifndef LILY_TESTS_CUDA_TEST_H
#define LILY_TESTS_CUDA_TEST_H

#include <stdbool.h>
#include <stddef.h>

#include <lily/lily.h>

/* Opens *gpu as above; returns whether there is one. Otherwise *gpu is NULL and `why` (size
 * bytes) says why the cases skip. */
bool lct_open_gpu(LilyContext **gpu, char *why, size_t size);

#endif /* LILY_TESTS_CUDA_TEST_H */
