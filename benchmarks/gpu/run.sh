#!/usr/bin/env bash
# The one script a GPU machine runs (benchmarks/gpu/README.md): builds the core, the CUDA
# backend, the emulator and the harness with CMake (no Node.js), runs the parity checks, then
# the benchmark, and deletes its data. Everything goes to stdout and, when $OUT is set, to
# $OUT/gpu-bench.log as well.
#
#   bash benchmarks/gpu/run.sh [--scale full|small]      (from anywhere; default: full)
#
# Environment: OUT (log folder), MOTHER_GPU_BUILD (build folder, default
# /tmp/mother-gpu-build), MOTHER_CUDA_ARCH (overrides the architecture), MOTHER_GPU_BUDGET_S
# (wall-clock budget of the whole script, default 460 s: each phase gets what is left).
# Exit status: 0 when the build succeeded and no check failed (CUDA checks SKIPPED on a host
# without a usable GPU count as no failure).
set -uo pipefail

SCALE=full
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE="${2:-}"; shift 2 || shift ;;
    --scale=*) SCALE="${1#*=}"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$SCALE" in full|small) ;; *) echo "run.sh: --scale must be full or small" >&2; exit 2 ;; esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${MOTHER_GPU_BUILD:-/tmp/mother-gpu-build}"
BUDGET="${MOTHER_GPU_BUDGET_S:-460}"

main() {
  local t_start=$SECONDS rc=0
  left() { echo $(( BUDGET - (SECONDS - t_start) )); }
  cap() { local a=$1 b=$2; [ "$a" -lt "$b" ] && echo "$a" || echo "$b"; }
  phase() { echo; echo "=== $* ($(date -u +%H:%M:%S), ${SECONDS}s into run.sh) ==="; }

  phase "host"
  date -u
  uname -srm
  echo "cores: $(nproc), memory: $(free -g 2>/dev/null | awk '/Mem:/ {print $2 " GiB"}')"
  (cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null && git status --short 2>/dev/null | head -20) || true
  local gpu_visible=0
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    gpu_visible=1
    nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,pcie.link.gen.max,pcie.link.width.max,clocks.max.sm \
      --format=csv 2>/dev/null || nvidia-smi -L
  else
    echo "nvidia-smi: no GPU visible"
  fi
  cmake --version | head -1
  local nvcc=nvcc
  command -v nvcc >/dev/null 2>&1 || nvcc=/usr/local/cuda/bin/nvcc
  "$nvcc" --version 2>/dev/null | tail -2 || echo "nvcc: not found"

  # One architecture: the GPU's own (what CMake's `native` picks; read from nvidia-smi so that
  # CMake < 3.24 works too), 90 when no GPU is visible.
  local arch="${MOTHER_CUDA_ARCH:-}"
  if [ -z "$arch" ]; then
    if [ "$gpu_visible" = 1 ]; then
      arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
      [[ "$arch" =~ ^[0-9]+$ ]] || arch=native
    else
      arch=90
    fi
  fi

  phase "build (CUDA architecture $arch)"
  local t0=$SECONDS
  local cfg=(-S "$ROOT/benchmarks/gpu" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CUDA_ARCHITECTURES=$arch")
  command -v nvcc >/dev/null 2>&1 || [ ! -x /usr/local/cuda/bin/nvcc ] || cfg+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
  local cfglog
  cfglog="$(mktemp /tmp/mother-gpu-configure.XXXXXX)"
  if ! timeout "$(cap 300 "$(left)")" cmake "${cfg[@]}" >"$cfglog" 2>&1; then
    tail -40 "$cfglog"
    rm -f "$cfglog"
    echo "run.sh: cmake configure FAILED"
    return 1
  fi
  grep -E "mother:|CUDAToolkit|The CUDA compiler identification" "$cfglog" || true
  rm -f "$cfglog"
  timeout "$(cap 300 "$(left)")" cmake --build "$BUILD" -j"$(nproc)" 2>&1 | grep -Ev '^\[ *[0-9]+%\] (Building|Linking|Built)'
  local rc_build=${PIPESTATUS[0]}
  if [ "$rc_build" != 0 ]; then
    echo "run.sh: build FAILED (exit status $rc_build)"
    return 1
  fi
  local t_build=$((SECONDS - t0))
  echo "build: ${t_build} s"

  local data
  data="$(mktemp -d /tmp/mother-gpu-data.XXXXXX)" || return 1
  # shellcheck disable=SC2064  # expand now: $data is local to main
  trap "rm -rf '$data'" EXIT
  trap "rm -rf '$data'; exit 130" INT TERM
  local harness=("$BUILD/mother_gpu_harness" --cuda-lib "$BUILD/mother/libmother_cuda.so"
                 --emu-lib "$BUILD/mother/libmother_gpu_emulator.so" --data "$data")

  phase "parity"
  t0=$SECONDS
  local parity_limit
  parity_limit=$(cap 150 $(( $(left) - 60 )))
  [ "$parity_limit" -gt 10 ] || parity_limit=10
  timeout "$parity_limit" "${harness[@]}" --parity-only
  local rc_parity=$?
  local t_parity=$((SECONDS - t0))
  [ $rc_parity = 124 ] && echo "run.sh: parity TIMED OUT after ${parity_limit} s"
  echo "parity: ${t_parity} s, exit status $rc_parity"
  rm -rf "$data/parity"

  phase "bench (scale $SCALE)"
  t0=$SECONDS
  local bench_limit=$(( $(left) - 10 ))
  [ "$bench_limit" -gt 10 ] || bench_limit=10
  timeout "$bench_limit" "${harness[@]}" --bench-only --scale "$SCALE"
  local rc_bench=$?
  local t_bench=$((SECONDS - t0))
  [ $rc_bench = 124 ] && echo "run.sh: bench TIMED OUT after ${bench_limit} s"
  echo "bench: ${t_bench} s, exit status $rc_bench"

  phase "summary"
  echo "build ${t_build} s, parity ${t_parity} s (exit $rc_parity), bench ${t_bench} s (exit $rc_bench), total $((SECONDS - t_start)) s"
  [ $rc_parity = 0 ] && [ $rc_bench = 0 ] || rc=1
  return $rc
}

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  main 2>&1 | tee -a "$OUT/gpu-bench.log"
  exit "${PIPESTATUS[0]}"
else
  main 2>&1
fi
