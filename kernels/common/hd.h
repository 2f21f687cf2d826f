/* kernels/common/hd.h - qualifiers for arithmetic shared by host and device.
 *
 * Per-element math of every custom kernel lives in static inline functions marked LILY_HD in
 * kernels/common/<op>.h. The CPU kernels call them in loops and the CUDA kernels call them per
 * thread, so a CPU unit test exercises exactly the arithmetic the GPU runs. */
#ifndef LILY_KERNELS_COMMON_HD_H
#define LILY_KERNELS_COMMON_HD_H

#if defined(__CUDACC__)
#define LILY_HD __host__ __device__ __forceinline__
#else
#define LILY_HD static inline
#endif

#endif /* LILY_KERNELS_COMMON_HD_H */
