// Runtime choice of the kernel set: the best the CPU supports, or the one named by the
// MOTHER_SIMD environment variable (scalar | avx2 | avx512 | neon) or by an explicit option.
#pragma once
#include <string>
#include <vector>

#include "kernels.h"

namespace mother {

// Kernel sets this CPU can run, best last (always starts with "scalar").
std::vector<const Kernels*> available_kernels();
// name empty: MOTHER_SIMD if set, else the best available. Throws Error(Unsupported) for a
// name this CPU cannot run, Error(InvalidArgument) for an unknown name.
const Kernels* select_kernels(const std::string& name);

}  // namespace mother
