#include "svd_kernels.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace mother {
namespace svd_detail {

namespace baseline {
#define SVD_FN
#define SVD_MADD(a, b, c) ((a) * (b) + (c))
#include "svd_kernels.inc"
#undef SVD_MADD
#undef SVD_FN
}  // namespace baseline

const SvdKernels& svd_kernels_baseline() {
  static const SvdKernels k{"baseline", baseline::gemv_t, baseline::gemv_n, baseline::gemm_packed, baseline::sturm_count8};
  return k;
}

}  // namespace svd_detail
}  // namespace mother

#if defined(__x86_64__) || defined(_M_X64)
#define MOTHER_ISA_TARGET "avx2,fma"
#include "../stats/isa_begin.h"
namespace mother {
namespace svd_detail {
namespace avx2 {
#define SVD_FN ISA_FN
#define SVD_MADD(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#include "svd_kernels.inc"
#undef SVD_MADD
#undef SVD_FN
}  // namespace avx2
}  // namespace svd_detail
}  // namespace mother
#include "../stats/isa_end.h"
#endif

namespace mother {
namespace svd_detail {

const SvdKernels* svd_kernels_avx2() {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return nullptr;
  static const SvdKernels k{"avx2", avx2::gemv_t, avx2::gemv_n, avx2::gemm_packed, avx2::sturm_count8};
  return &k;
#else
  return nullptr;
#endif
}

const SvdKernels& svd_kernels() {
  static const SvdKernels* chosen = [] {
    const char* env = std::getenv("MOTHER_SVD_KERNELS");
    if (env && std::strcmp(env, "baseline") == 0) return &svd_kernels_baseline();
    const SvdKernels* a = svd_kernels_avx2();
    return a ? a : &svd_kernels_baseline();
  }();
  return *chosen;
}

}  // namespace svd_detail
}  // namespace mother
