// Opens a region compiled for one instruction set. Include every header BEFORE this file:
// inline functions defined after it would be compiled for the ISA and could be picked by the
// linker for baseline callers. Define MOTHER_ISA_TARGET to the target string first.
// Close the region with isa_end.h. Code inside belongs in an anonymous namespace.
// GCC does not apply the pragma to member functions defined inside a class, so every function
// in the region is also marked ISA_FN explicitly.
#define ISA_FN __attribute__((target(MOTHER_ISA_TARGET)))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target(MOTHER_ISA_TARGET))), apply_to = function)
#elif defined(__GNUC__)
#define MOTHER_DO_PRAGMA(x) _Pragma(#x)
#define MOTHER_TARGET_PRAGMA(t) MOTHER_DO_PRAGMA(GCC target(t))
#pragma GCC push_options
MOTHER_TARGET_PRAGMA(MOTHER_ISA_TARGET)
// GCC 12's own AVX-512 headers trip these on extract intrinsics (false positives).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
