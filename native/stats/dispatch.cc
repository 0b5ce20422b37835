#include "dispatch.h"

#include <cstdlib>

#include "../core/error.h"

namespace mother {

namespace {
bool cpu_has(const char* what) {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (std::string(what) == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (std::string(what) == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return false;
#elif defined(__aarch64__)
  return std::string(what) == "neon";  // Advanced SIMD is mandatory on AArch64
#else
  (void)what;
  return false;
#endif
}
}  // namespace

std::vector<const Kernels*> available_kernels() {
  std::vector<const Kernels*> out{kernels_scalar()};
  if (kernels_neon() && cpu_has("neon")) out.push_back(kernels_neon());
  if (kernels_avx2() && cpu_has("avx2")) out.push_back(kernels_avx2());
  if (kernels_avx512() && cpu_has("avx512")) out.push_back(kernels_avx512());
  return out;
}

const Kernels* select_kernels(const std::string& requested) {
  std::string name = requested;
  std::string source = "option simd";
  if (name.empty()) {
    const char* env = std::getenv("MOTHER_SIMD");
    if (env && *env) { name = env; source = "MOTHER_SIMD"; }
  }
  auto avail = available_kernels();
  if (name.empty() || name == "auto") return avail.back();
  if (name != "scalar" && name != "avx2" && name != "avx512" && name != "neon")
    throw Error(ErrorCode::InvalidArgument, "", "",
                source + "=" + name + ": unknown SIMD path (expected auto, scalar, avx2, avx512 or neon)");
  for (const Kernels* k : avail)
    if (name == k->name) return k;
  throw Error(ErrorCode::Unsupported, "", "", source + "=" + name + ": this CPU or build does not support that SIMD path");
}

}  // namespace mother
