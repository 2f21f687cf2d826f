/* kernels/cuda/cuda-check.h - status codes of the CUDA kernels and the check macros around
 * every CUDA runtime, cuBLAS, cuDNN and cuFFT call.
 *
 * Shaped like ggml's CUDA_CHECK_GEN(err, success, error_fn), with one difference that matters
 * here: a failed call does not abort. The macro records "<call> failed at <file>:<line>: <error
 * string> (<code>)" on the handle and returns a LilyCudaStatus from the enclosing function, so
 * the backend can hand the message to the context and the application keeps running (ggml#1083
 * is the bug this avoids). Out-of-memory codes of every library map to LILY_CUDA_ERR_NO_MEMORY.
 *
 * Usable from C and CUDA C++ (the macros only need the library's status type). */
#ifndef LILY_KERNELS_CUDA_CUDA_CHECK_H
#define LILY_KERNELS_CUDA_CUDA_CHECK_H

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes of every lily_cuda_* function (0 = success). */
typedef enum LilyCudaStatus {
    LILY_CUDA_OK = 0,
    LILY_CUDA_ERR_NO_MEMORY,   /* a device (or pinned host) allocation failed */
    LILY_CUDA_ERR_DEVICE,      /* the driver or runtime failed, or no device answers */
    LILY_CUDA_ERR_LIBRARY,     /* cuBLAS, cuDNN or cuFFT refused the call */
    LILY_CUDA_ERR_UNSUPPORTED, /* a shape or parameter combination these kernels do not handle */
} LilyCudaStatus;

typedef struct LilyCudaHandle LilyCudaHandle;

/* Records the failure of `call` (its source text) at file:line with the library's error
 * string and numeric code; returns `status`. h may be NULL (then nothing is recorded). */
int lily_cuda_fail_call(LilyCudaHandle *h, int status, const char *call, const char *file,
                        int line, const char *err_str, int err_code);

/* The generic check: `type` is the library's status type, `ok` its success value, `strfn`
 * turns a status into text and `code_expr` computes the LilyCudaStatus (it may use lily_ck_,
 * the failed status). */
#define LILY_CUDA_CHECK_GEN(h, type, call, ok, strfn, code_expr)                              \
    do {                                                                                       \
        type lily_ck_ = (call);                                                                \
        if (lily_ck_ != (ok))                                                                  \
            return lily_cuda_fail_call((h), (code_expr), #call, __FILE__, __LINE__,            \
                                       strfn(lily_ck_), (int)lily_ck_);                        \
    } while (0)

#define LILY_CUDA_CHECK(h, call)                                                               \
    LILY_CUDA_CHECK_GEN(h, cudaError_t, call, cudaSuccess, cudaGetErrorString,                 \
                        lily_ck_ == cudaErrorMemoryAllocation ? LILY_CUDA_ERR_NO_MEMORY        \
                                                              : LILY_CUDA_ERR_DEVICE)

#define LILY_CUBLAS_CHECK(h, call)                                                             \
    LILY_CUDA_CHECK_GEN(h, cublasStatus_t, call, CUBLAS_STATUS_SUCCESS, cublasGetStatusString, \
                        lily_ck_ == CUBLAS_STATUS_ALLOC_FAILED ? LILY_CUDA_ERR_NO_MEMORY       \
                                                               : LILY_CUDA_ERR_LIBRARY)

/* cuDNN 9 groups its codes by category (x000); the allocation failures are internal errors. */
#define LILY_CUDNN_CHECK(h, call)                                                              \
    LILY_CUDA_CHECK_GEN(h, cudnnStatus_t, call, CUDNN_STATUS_SUCCESS, cudnnGetErrorString,     \
                        (lily_ck_ == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||     \
                         lily_ck_ == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)     \
                            ? LILY_CUDA_ERR_NO_MEMORY                                          \
                            : LILY_CUDA_ERR_LIBRARY)

/* cuFFT has no error-string function of its own; this one names its cufftResult codes
 * (kernels/cuda/stft.cu). */
const char *lily_cufft_error_string(int code);

#define LILY_CUFFT_CHECK(h, call)                                                              \
    LILY_CUDA_CHECK_GEN(h, cufftResult, call, CUFFT_SUCCESS, lily_cufft_error_string,          \
                        lily_ck_ == CUFFT_ALLOC_FAILED ? LILY_CUDA_ERR_NO_MEMORY               \
                                                       : LILY_CUDA_ERR_LIBRARY)

/* After a kernel launch: configuration errors (too many threads, no kernel image for this
 * GPU) show up here; faults inside the kernel surface at the next synchronising call. */
#define LILY_CUDA_LAUNCHED(h) LILY_CUDA_CHECK(h, cudaGetLastError())

/* Propagate a LilyCudaStatus from a nested lily_cuda_* call. */
#define LILY_CUDA_TRY(expr)                                                                    \
    do {                                                                                       \
        int lily_cuda_try_ = (expr);                                                           \
        if (lily_cuda_try_ != LILY_CUDA_OK) return lily_cuda_try_;                             \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif /* LILY_KERNELS_CUDA_CUDA_CHECK_H */
