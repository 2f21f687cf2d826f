/* kernels/cpu/simd.h - AVX-512 clones of the hot elementwise loops.
 *
 * The kernels are built for x86-64-v3 (AVX2) so the library runs on any recent x86. Functions
 * marked LILY_CPU_CLONES are also compiled for x86-64-v4 (AVX-512) and picked at load time
 * (GCC target_clones, an ifunc), which on this project's AVX-512 machines runs exp-heavy loops
 * (softmax rows, SiLU, GELU) about 2.5x faster than the AVX2 code (measured on the softmax row:
 * 0.47 against 1.2 ns per element). */
#ifndef LILY_KERNELS_CPU_SIMD_H
#define LILY_KERNELS_CPU_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define LILY_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define LILY_CPU_CLONES
#endif

/* clang reports every `omp simd` loop it could not vectorise (-Wpass-failed, an error under
 * -Werror); the pragma is a hint here, so a scalar loop is fine on that compiler. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

/* Elements per task when a flat loop is split across threads (64 KiB of floats). */
#define LILY_CPU_CHUNK 16384

#endif /* LILY_KERNELS_CPU_SIMD_H */
