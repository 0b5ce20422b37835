#!/usr/bin/env bash
# Compiles the portable core (everything but the addon and the CUDA library) and the NEON
# kernels for AArch64 with a cross compiler, so the arm64 path cannot rot on x86 machines.
# Usage: bash native/tools/check-arm64.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CXX=${CXX_ARM64:-aarch64-linux-gnu-g++}
if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "check-arm64: $CXX not found (apt-get install g++-aarch64-linux-gnu)" >&2
  exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for f in native/{core,formats,stats,pairwise,gpu,bench}/*.cc; do
  "$CXX" -std=c++17 -O2 -Wall -Wextra -Wno-missing-field-initializers -Werror -c "$f" -o "$out/$(basename "$f").o"
done
# the NEON kernel set must really be compiled in, not the stub
if ! "${CXX%g++}nm" -C "$out/kernels_neon.cc.o" | grep -q "kNeon"; then
  echo "check-arm64: kernels_neon.cc compiled to the stub on aarch64" >&2
  exit 1
fi
echo "check-arm64: core and NEON kernels compile for aarch64 ($("$CXX" --version | head -1))"
# and run, where a user-mode emulator is installed (apt-get install qemu-user-static): every
# kernel set against the scalar one, on raw rows and through the whole pairwise pass
QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [ -n "$QEMU" ]; then
  "$CXX" -std=c++17 -O2 -static -I. native/tools/isa_check.cc native/{core,formats,stats,pairwise}/*.cc \
    native/gpu/gpu_backend.cc native/gpu/staging.cc -o "$out/isa_check" -lpthread -ldl 2>"$out/isa_check.log" ||
    { cat "$out/isa_check.log" >&2; exit 1; }
  TMPDIR="$out" "$QEMU" "$out/isa_check" | sed 's/^/check-arm64 (qemu): /'
else
  echo "check-arm64: no qemu-aarch64 here: the NEON kernels were compiled, not run"
fi
