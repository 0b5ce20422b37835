/* The C interface between the core and a device backend library.
 *
 * A backend is a shared library, opened at run time with dlopen, that exports one symbol:
 *
 *     const mother_gpu_api* mother_gpu_get_api(void);
 *
 * libmother_cuda.so (native/gpu/cuda_backend.cu, `npm run build:cuda`) runs the kernels on an
 * NVIDIA GPU; libmother_gpu_emulator.so (native/gpu/emulator_backend.cc) runs the same
 * decomposition on the CPU so that the host side (loading, staging, ordering, merging) is
 * tested on machines without a GPU. The core never links either: CPU-only hosts need no CUDA.
 *
 * Plain C types only, so that the library and the addon may come from different compilers.
 * Every call but close/free returns 0 on success and non-zero on failure, with the message of
 * the failure in last_error(ctx) (open: in err). Kernels and copies are asynchronous on
 * `stream` (0 .. info.streams - 1); sync(stream) waits for them. Device pointers come from
 * dev_alloc; host buffers passed to upload/download come from host_alloc (page-locked).
 */
#ifndef MOTHER_GPU_API_H
#define MOTHER_GPU_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOTHER_GPU_ABI_VERSION 1u

/* Doubles per pair in the output of pairs() and of pair_central(), in the order given there. */
#define MOTHER_GPU_PAIR_FIELDS 7u
#define MOTHER_GPU_CENTRAL_FIELDS 7u

typedef struct mother_gpu_ctx mother_gpu_ctx;

/* Central moments of a range, exactly the layout of mother::Moments (native/core/moments.h). */
typedef struct mother_gpu_moments {
  double n, mean, mean_lo, m2, m3, m4, sum_abs, min, max;
  uint64_t nan, inf;
} mother_gpu_moments;

typedef struct mother_gpu_info {
  char backend[32];     /* "cuda" or "emulator" */
  char device[256];     /* e.g. "NVIDIA H100 80GB HBM3" */
  int cc_major, cc_minor;
  int multiprocessors;
  uint64_t memory_bytes;
  int runtime_version;  /* CUDA runtime the library was built with (e.g. 13000), 0 if none */
  int driver_version;   /* CUDA version the driver supports, 0 if none */
  uint32_t streams;     /* streams available to the caller */
} mother_gpu_info;

typedef struct mother_gpu_api {
  uint32_t abi_version; /* MOTHER_GPU_ABI_VERSION */
  uint32_t struct_size; /* sizeof(mother_gpu_api) */

  /* Opens device `device` (0 for the first). Fails, with a reason in err, when the driver is
   * missing or too old or there is no such device. */
  int (*open)(int device, mother_gpu_ctx** out, char* err, size_t err_cap);
  void (*close)(mother_gpu_ctx* ctx);
  const char* (*last_error)(mother_gpu_ctx* ctx);
  int (*info)(mother_gpu_ctx* ctx, mother_gpu_info* out);

  int (*host_alloc)(mother_gpu_ctx* ctx, size_t bytes, void** out); /* page-locked */
  void (*host_free)(mother_gpu_ctx* ctx, void* p);
  int (*dev_alloc)(mother_gpu_ctx* ctx, size_t bytes, void** out);
  void (*dev_free)(mother_gpu_ctx* ctx, void* p);
  int (*upload)(mother_gpu_ctx* ctx, uint32_t stream, void* dev_dst, const void* host_src, size_t bytes);
  int (*download)(mother_gpu_ctx* ctx, uint32_t stream, void* host_dst, const void* dev_src, size_t bytes);
  int (*sync)(mother_gpu_ctx* ctx, uint32_t stream);

  /* ---- kernels: device pointers, asynchronous on `stream` ---- */

  /* *out = the moments of `count` elements of `dtype` (a mother::DType with statistics) at
   * src, which is aligned to 16 bytes. NaN and +-Inf are skipped and counted. */
  int (*moments)(mother_gpu_ctx* ctx, uint32_t stream, uint32_t dtype, const void* src, uint64_t count,
                 mother_gpu_moments* out);

  /* dst[i] = the float64 value of element i; when norm2 is not NULL, *norm2 = the sum of the
   * squares of the finite elements. */
  int (*decode)(mother_gpu_ctx* ctx, uint32_t stream, uint32_t dtype, const void* src, uint64_t count, double* dst,
                double* norm2);

  /* All pairs i < j of n_models float64 rows (row m at rows + m * stride, len[m] elements,
   * len a device array): for pair p (row-major upper triangle order), a = row i, b = row j,
   * over the positions e < min(len[i], len[j]) where a and b are finite:
   *   out[7p + 0] = sum (a - b)^2, out[7p + 1] = sum |a - b|, out[7p + 2] = max (a - b),
   *   out[7p + 3] = min (a - b), out[7p + 4] = positions skipped because a or b is not finite,
   *   out[7p + 5] = sum a, out[7p + 6] = sum b
   * (7 = MOTHER_GPU_PAIR_FIELDS; max -inf and min +inf when nothing was compared).
   * max_len >= every len[m]. */
  int (*pairs)(mother_gpu_ctx* ctx, uint32_t stream, const double* rows, uint64_t stride, const uint64_t* len,
               uint32_t n_models, uint64_t max_len, double* out);

  /* out (k x k, row-major) = psi^T (w omega): w rows x n, omega n x k, psi rows x k, all
   * row-major float64 (the rank sketch of a block of rows; the caller sums the blocks). */
  int (*sketch)(mother_gpu_ctx* ctx, uint32_t stream, const double* w, uint64_t rows, uint64_t n, const double* omega,
                const double* psi, uint32_t k, double* out);

  /* The second pass of the pairs' moments, after pairs() wrote `pairs` (its output, on the
   * device) for the same rows: for pair p, with n = min(len[i], len[j]) - pairs[7p + 4] and the
   * centres ca = pairs[7p + 5] / n, cb = pairs[7p + 6] / n, cd = ca - cb (all 0 when n = 0),
   * over the positions pairs() compared:
   *   out[7p + 0] = sum (a - ca), out[7p + 1] = sum (a - ca)^2, out[7p + 2] = sum (b - cb),
   *   out[7p + 3] = sum (b - cb)^2, out[7p + 4] = sum (d - cd), out[7p + 5] = sum (d - cd)^2,
   *   out[7p + 6] = sum (d - cd)((a - ca) + (b - cb))
   * (d = a - b; 7 = MOTHER_GPU_CENTRAL_FIELDS): the corrected two-pass sums of the moments. */
  int (*pair_central)(mother_gpu_ctx* ctx, uint32_t stream, const double* rows, uint64_t stride, const uint64_t* len,
                      uint32_t n_models, uint64_t max_len, const double* pairs, double* out);
} mother_gpu_api;

typedef const mother_gpu_api* (*mother_gpu_get_api_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* MOTHER_GPU_API_H */
