// The dense kernels of the blocked bidiagonalisation (svd.cc): the two matrix-vector products
// of each Householder step and the rank-2b update of the trailing matrix, column-major, float64.
// Built twice: for the baseline ISA (portable GCC/Clang vector types: SSE2, NEON, ...) and,
// on x86-64, for AVX2 + FMA, chosen at run time (svd_kernels()).
#pragma once
#include <cstddef>
#include <cstdint>

namespace mother {
namespace svd_detail {

struct SvdKernels {
  const char* name;
  // out[c] = sum_r A[c lda + r] u[r]   (r < rows, c < cols)
  void (*gemv_t)(size_t rows, size_t cols, const double* a, size_t lda, const double* u, double* out);
  // out[r] += sum_c A[c lda + r] v[c]
  void (*gemv_n)(size_t rows, size_t cols, const double* a, size_t lda, const double* v, double* out);
  // C[c ldc + r] -= sum_k W[k ldw + r] Z[k ldz + c]  (r < rows, c < cols, k < depth), on the
  // operands packed by pack_panels: wp = W in row panels of kGemmMR, zp = Z in panels of kGemmNR.
  void (*gemm_packed)(size_t rows, size_t cols, size_t depth, const double* wp, const double* zp, double* c,
                      size_t ldc);
  // count[i] = the number of eigenvalues below x[i] (i < 8, x[i] > 0) of the zero-diagonal
  // symmetric tridiagonal with off-diagonal squares a2[0..len): for the Golub-Kahan form of an
  // n x n bidiagonal (len = 2n - 1), n + #{singular values < x[i]}.
  void (*sturm_count8)(size_t len, const double* a2, double pivmin, const double* x, int64_t* count);
};

// The micro-tile the packing pads to (both builds use the same so one buffer size fits both).
constexpr size_t kGemmMR = 8, kGemmNR = 6;
// Doubles the packed operands of a rows x cols x depth product take.
inline size_t gemm_pack_size(size_t rows, size_t cols, size_t depth) {
  return ((rows + kGemmMR - 1) / kGemmMR * kGemmMR + (cols + kGemmNR - 1) / kGemmNR * kGemmNR) * depth;
}
// Copies rows [p0 MR, p1 MR) of the rows x depth matrix W (column-major, ld ldw) into panels
// of `mr` rows: panel p at dst + p mr depth holds W[p mr + i, k] at [k mr + i], zero past `rows`.
inline void pack_panels(size_t rows, size_t depth, const double* w, size_t ldw, size_t mr, size_t p0, size_t p1,
                        double* dst) {
  for (size_t p = p0; p < p1; ++p) {
    double* out = dst + p * mr * depth;
    const size_t r0 = p * mr, nr = rows - r0 < mr ? rows - r0 : mr;
    for (size_t k = 0; k < depth; ++k) {
      const double* src = w + k * ldw + r0;
      size_t i = 0;
      for (; i < nr; ++i) out[k * mr + i] = src[i];
      for (; i < mr; ++i) out[k * mr + i] = 0;
    }
  }
}

const SvdKernels& svd_kernels_baseline();
const SvdKernels* svd_kernels_avx2();  // null where not built or not supported by this CPU
// The best set this CPU runs; MOTHER_SVD_KERNELS=baseline forces the portable one.
const SvdKernels& svd_kernels();

}  // namespace svd_detail
}  // namespace mother
