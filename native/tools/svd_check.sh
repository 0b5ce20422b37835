#!/usr/bin/env bash
# Builds the standalone SVD harness (native/tools/svd_check.cc, no Node) and runs it:
#   bash native/tools/svd_check.sh bench [--reps R] [--threads T] [--jacobi] N...
#   bash native/tools/svd_check.sh accuracy   (against numpy: native/tools/svd_accuracy.py)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${SVD_CHECK_BIN:-$(mktemp -d)/svd_check}
${CXX:-g++} -std=c++17 -O3 -Wall -Wextra -Wno-missing-field-initializers -pthread \
  native/tools/svd_check.cc native/pairwise/svd.cc native/pairwise/svd_kernels.cc -o "$out"
mode=${1:-bench}
shift || true
if [ "$mode" = accuracy ]; then
  exec /usr/bin/python3 native/tools/svd_accuracy.py "$out"
fi
exec "$out" "$mode" "$@"
