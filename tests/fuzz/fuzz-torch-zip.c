/* tests/fuzz/fuzz-torch-zip.c - libFuzzer target for PyTorch checkpoints: the zip index
 * (zip64, deflate), data.pkl's pickle interpreter, storages and tensor views, and the legacy
 * format. Seeds: tests/fuzz/corpus/torch-zip (the fixtures of tests/weights/data).
 * In this build data.pkl's CRC is not enforced (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION), so
 * mutations reach the pickle interpreter instead of stopping at the checksum. */
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lily_fuzz_weights(data, size);
    return 0;
}
