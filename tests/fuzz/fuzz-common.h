/* tests/fuzz/fuzz-common.h - the shared body of the model-file fuzz targets. */
#ifndef LILY_TESTS_FUZZ_COMMON_H
#define LILY_TESTS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Writes the input to a memfd, opens it with lily_weights_open (format detected from the
 * bytes), reads every tensor byte, every metadata entry, and - when the file carries a model
 * config - parses it, validates it and checks the tensors against it. */
void lily_fuzz_weights(const uint8_t *data, size_t size);

#endif /* LILY_TESTS_FUZZ_COMMON_H */
