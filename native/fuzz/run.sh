#!/usr/bin/env bash
# Builds the libFuzzer targets and runs each for a bounded time: the safetensors header reader
# (header: fuzz_header.cc), the PyTorch checkpoint reader with its ZIP reader and restricted
# unpickler (pytorch: fuzz_pytorch.cc), the GGUF header reader with the block decoders and
# their statistics on every accepted tensor (gguf: fuzz_gguf.cc), and the protobuf wire reader
# with the ONNX reader (onnx: fuzz_onnx.cc).
#
#   npm run fuzz                          # 60 s per target
#   FUZZ_SECONDS=600 npm run fuzz         # longer
#   FUZZ_TARGET=onnx npm run fuzz         # some targets: header, pytorch, gguf, onnx (default: all four)
#   FUZZ_TARGET=onnx bash native/fuzz/run.sh CRASH_FILE...   # re-run reproducers (no fuzzing)
#
# Environment: FUZZ_SECONDS (default 60), FUZZ_TARGET, CXX (default clang++), FUZZ_JOBS (parallel
# fuzzing processes, default 1), FUZZ_ARGS (extra libFuzzer flags), FUZZ_COVERAGE=1 (afterwards,
# print the line coverage of the target's reader files reached by the corpus; needs llvm-cov).
# Output in build-fuzz/ (git-ignored): the binaries fuzz_<target>, a corpus per target (corpus/
# for header, corpus-<target>/ for the others; kept between runs), crash artifacts (artifacts/)
# and the seeds (seeds/, seeds-<target>/): the files of test/fixtures/malformed; of
# test/fixtures/pytorch-malformed and test/fixtures/pytorch, and their data.pkl; of
# test/fixtures/gguf-malformed and one file per block type written here; of
# test/fixtures/onnx-malformed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SELF="$ROOT/native/fuzz/run.sh"
cd "$ROOT"

CXX="${CXX:-clang++}"
OUT="$ROOT/build-fuzz"
SECONDS_TO_RUN="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_JOBS:-1}"
TARGETS="${FUZZ_TARGET:-header pytorch gguf onnx}"

if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "run.sh: $CXX not found; libFuzzer needs clang (apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi
case "$SECONDS_TO_RUN" in
  ''|*[!0-9]*) echo "run.sh: FUZZ_SECONDS must be a whole number of seconds, got '$SECONDS_TO_RUN'" >&2; exit 2 ;;
esac

COMMON=(native/core/error.cc native/core/json.cc native/core/dtype.cc native/core/mapped_file.cc)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Seeds of the safetensors target: every safetensors file of the malformed/valid fixture set,
# plus a few valid files written here (so the seed set does not depend on the fixtures).
seed_header() {
  local dir=$1
  if [ -d test/fixtures/malformed ]; then
    local i=0
    while IFS= read -r -d '' f; do
      cp "$f" "$dir/fixture-$i-$(basename "$f")"
      i=$((i + 1))
    done < <(find test/fixtures/malformed -name '*.safetensors' -size -65536c -print0 | sort -z)
  fi
  node -e '
const fs = require("fs"), path = require("path");
function file(header, data) {
  const h = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, Buffer.alloc(data)]);
}
const out = process.argv[1];
const seeds = {
  "two-f32": file({ __metadata__: { format: "pt" }, a: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: "BF16", shape: [3], data_offsets: [16, 22] } }, 22),
  "all-dtypes": file(Object.fromEntries(["BOOL","U8","I8","I16","U16","I32","U32","I64","U64","F16","BF16","F32","F64","C64","F8_E4M3","F8_E5M2","F8_E8M0","F8_E4M3FNUZ","F8_E5M2FNUZ","F4","F6_E2M3","F6_E3M2"].map((d, i) => [d.toLowerCase(), { dtype: d, shape: [0], data_offsets: [0, 0] }])), 0),
  "escapes": file("{\"\\u00e9\\ud83d\\ude00\\n\\\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}  ", 1),
  "empty": file("{}", 0),
};
for (const [k, v] of Object.entries(seeds)) fs.writeFileSync(path.join(out, "valid-" + k + ".safetensors"), v);
' "$dir"
}

# Seeds of the PyTorch target: every file of the PyTorch fixture sets (malformed, malicious,
# valid, written by torch), and the data.pkl of each archive among them as a bare pickle.
seed_pytorch() {
  local dir=$1
  i=0
  while IFS= read -r -d '' f; do
    cp "$f" "$dir/fixture-$i-$(basename "$f")"
    i=$((i + 1))
  done < <(find test/fixtures/pytorch-malformed test/fixtures/pytorch -type f ! -name '*.json' ! -name '*.md' -size -65536c -print0 2>/dev/null | sort -z)
  if command -v python3 >/dev/null 2>&1; then
    python3 -c '
import sys, zipfile, pathlib
out = pathlib.Path(sys.argv[1])
for i, p in enumerate(sorted(out.iterdir())):
    try:
        z = zipfile.ZipFile(p)
        names = [n for n in z.namelist() if n.endswith("data.pkl")]
        if names: (out / f"pickle-{i}.pkl").write_bytes(z.read(names[0]))
    except Exception:
        pass
' "$dir"
  fi
}

# Seeds of the GGUF target: every file of the GGUF fixture set, and one valid file per block
# type with statistics.
seed_gguf() {
  local dir=$1
  local i=0
  while IFS= read -r -d '' f; do
    cp "$f" "$dir/fixture-$i-$(basename "$f")"
    i=$((i + 1))
  done < <(find test/fixtures/gguf-malformed -name '*.gguf' -size -65536c -print0 2>/dev/null | sort -z)
  node -e '
const { gguf } = require(process.argv[2]);
const fs = require("fs"), path = require("path");
const types = { Q8_0: [8, 32, 34], Q4_0: [2, 32, 18], Q4_1: [3, 32, 20], Q5_0: [6, 32, 22], Q5_1: [7, 32, 24], Q2_K: [10, 256, 84], Q3_K: [11, 256, 110], Q4_K: [12, 256, 144], Q5_K: [13, 256, 176], Q6_K: [14, 256, 210] };
for (const [name, [id, be, bb]] of Object.entries(types)) {
  const data = Buffer.alloc(2 * bb); for (let i = 0; i < data.length; i++) data[i] = (i * 53 + 11) & 0xff;
  fs.writeFileSync(path.join(process.argv[1], "valid-" + name + ".gguf"), gguf({ kv: [["general.architecture", "string", "llama"], ["llama.attention.head_count", "u32", 1]], tensors: [{ name: "blk.0.attn_q.weight", ne: [be, 2], type: id, data }] }));
}
' "$dir" "$ROOT/test/fixtures/make-gguf-malformed.js"
}

# Seeds of the ONNX target: every .onnx file of the ONNX fixture set (malformed and valid).
seed_onnx() {
  local dir=$1
  if [ -d test/fixtures/onnx-malformed ]; then
    local i=0
    while IFS= read -r -d '' f; do
      cp "$f" "$dir/fixture-$i-$(basename "$f")"
      i=$((i + 1))
    done < <(find test/fixtures/onnx-malformed -name '*.onnx' -size -65536c -print0 | sort -z)
  fi
}

status=0
for target in $TARGETS; do
  case "$target" in
    header)
      SOURCES=("${COMMON[@]}" native/formats/safetensors.cc native/fuzz/fuzz_header.cc)
      COV_SOURCES=(native/core/json.cc native/formats/safetensors.cc) ;;
    pytorch)
      SOURCES=("${COMMON[@]}" native/formats/zip.cc native/formats/pickle.cc native/formats/pytorch.cc native/fuzz/fuzz_pytorch.cc)
      COV_SOURCES=(native/formats/zip.cc native/formats/pickle.cc native/formats/pytorch.cc) ;;
    gguf)
      SOURCES=("${COMMON[@]}" native/formats/gguf.cc native/formats/gguf_names.cc native/formats/tensor_view.cc
               native/stats/kernels_scalar.cc native/stats/kernels_avx2.cc native/stats/kernels_avx512.cc
               native/stats/kernels_neon.cc native/stats/quant_scalar.cc native/stats/quant_avx2.cc
               native/stats/dispatch.cc native/fuzz/fuzz_gguf.cc)
      COV_SOURCES=(native/formats/gguf.cc native/stats/quant_scalar.cc native/stats/quant_avx2.cc) ;;
    onnx)
      SOURCES=("${COMMON[@]}" native/formats/protobuf.cc native/formats/onnx.cc native/fuzz/fuzz_onnx.cc)
      COV_SOURCES=(native/formats/protobuf.cc native/formats/onnx.cc) ;;
    *) echo "run.sh: unknown FUZZ_TARGET '$target' (header, pytorch, gguf, onnx)" >&2; exit 2 ;;
  esac
  BIN="$OUT/fuzz_$target"
  CORPUS="$OUT/corpus-$target"
  SEEDS="$OUT/seeds-$target"
  if [ "$target" = header ]; then CORPUS="$OUT/corpus"; SEEDS="$OUT/seeds"; fi
  mkdir -p "$CORPUS" "$SEEDS" "$OUT/artifacts"

  # Rebuild when the binary is missing or older than any source or header.
  need_build=0
  [ -x "$BIN" ] || need_build=1
  if [ "$need_build" = 0 ]; then
    for f in "${SOURCES[@]}" native/core/*.h native/formats/*.h native/stats/*.h "$SELF"; do
      if [ "$f" -nt "$BIN" ]; then need_build=1; break; fi
    done
  fi
  if [ "$need_build" = 1 ]; then
    echo "run.sh: building $BIN"
    "$CXX" -std=c++17 -g -O1 -fno-omit-frame-pointer \
      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      "${SOURCES[@]}" -o "$BIN"
  fi

  # Reproduce mode: run the given inputs once each (FUZZ_TARGET names the target).
  if [ "$#" -gt 0 ]; then
    "$BIN" -runs=1 "$@" || status=$?
    continue
  fi

  rm -f "$SEEDS/"*
  "seed_$target" "$SEEDS"
  echo "run.sh: fuzzing $target for ${SECONDS_TO_RUN}s ($(ls "$SEEDS" | wc -l) seeds, corpus $(ls "$CORPUS" | wc -l) files)"
  JOB_ARGS=()
  if [ "$JOBS" -gt 1 ]; then JOB_ARGS=(-jobs="$JOBS" -workers="$JOBS"); fi
  # shellcheck disable=SC2086
  "$BIN" "$CORPUS" "$SEEDS" \
    -dict="native/fuzz/$target.dict" \
    -max_len=65536 \
    -max_total_time="$SECONDS_TO_RUN" \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/" \
    "${JOB_ARGS[@]}" ${FUZZ_ARGS:-} || status=$?

  if [ "${FUZZ_COVERAGE:-0}" = 1 ]; then
    PROFDATA="$(command -v llvm-profdata || command -v llvm-profdata-14 || true)"
    COV="$(command -v llvm-cov || command -v llvm-cov-14 || true)"
    if [ -z "$PROFDATA" ] || [ -z "$COV" ]; then
      echo "run.sh: FUZZ_COVERAGE needs llvm-profdata and llvm-cov" >&2
    else
      "$CXX" -std=c++17 -O0 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping \
        "${SOURCES[@]}" -o "${BIN}_cov"
      rm -f "$OUT"/cov-*.profraw
      LLVM_PROFILE_FILE="$OUT/cov-%p.profraw" "${BIN}_cov" -runs=0 "$CORPUS" "$SEEDS" >/dev/null 2>&1 || true
      "$PROFDATA" merge -sparse "$OUT"/cov-*.profraw -o "$OUT/cov.profdata"
      "$COV" report "${BIN}_cov" -instr-profile="$OUT/cov.profdata" "${COV_SOURCES[@]}"
    fi
  fi
done
exit "$status"
