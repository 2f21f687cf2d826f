/* tests/fuzz/fuzz-safetensors.c - libFuzzer target for safetensors files: the header length,
 * the JSON header parser, offsets and dtypes, metadata, and - through "lily.config" - the
 * YAML model config and the compatibility check. Seeds: tests/fuzz/corpus/safetensors. */
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lily_fuzz_weights(data, size);
    return 0;
}
