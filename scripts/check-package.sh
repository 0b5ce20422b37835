#!/usr/bin/env bash
# The npm package as a user gets it: pack it, install the tarball into empty projects, and check
#  1. what the tarball holds (prebuilds for linux-x64 and linux-arm64, LICENSE, the schema, no
#     source maps, no build/, no tests);
#  2. --ignore-scripts: it installs, `require('mother')` works, the CLI runs on the sample zoo
#     (a path in this checkout: the sample is not shipped), and the addon loaded is the shipped
#     prebuild (the shared objects mapped into the process, from /proc/self/maps); then the
#     GPU backend from that dependent: `--backend cuda` says to run `npm run build:cuda` in the
#     installed package, and doing so works (plain CMake and nvcc; skipped without nvcc or
#     with MOTHER_CHECK_CUDA=0);
#  3. no compiler: an install with its install script running, on a PATH that holds node, npm
#     and sh and nothing else but tripwires named g++, gcc, c++, cc, clang, clang++, make, cmake,
#     python3 and python (each logs its call and fails). It must succeed with no tripwire hit.
#     The negative control forces a build from source on the same PATH: it must fail and hit a
#     tripwire, which shows the PATH really has no build tools; where strace works, the
#     programs the install ran are listed and none may be a build tool;
#  4. no usable binary (the prebuilds deleted): the CLI prints one line that says
#     `npm rebuild mother` and exits 1, and the API rejects with ERR_NO_ADDON.
# Usage: bash scripts/check-package.sh [mother-x.y.z.tgz]   (without an argument: npm pack)
# The dependencies come from the npm cache where they are there (--prefer-offline).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "check-package: $*" >&2; exit 1; }
say() { echo "check-package: $*"; }

if [ $# -ge 1 ]; then
  tgz=$(readlink -f "$1")
else
  say "npm pack (prepack: the prebuilds)"
  npm pack --pack-destination "$work" >"$work/pack.log" 2>&1 || { cat "$work/pack.log"; fail "npm pack failed"; }
  grep -E "^prebuilds: |npm notice (package size|unpacked size|total files)" "$work/pack.log" || true
  tgz=$(ls "$work"/mother-*.tgz)
fi
[ -f "$tgz" ] || fail "no tarball at $tgz"
say "tarball $(basename "$tgz"): $(stat -c %s "$tgz") bytes"

# 1. contents
tar -tzf "$tgz" | sed 's|^package/||' | sort >"$work/files"
for f in LICENSE README.md package.json binding.gyp CMakeLists.txt docs/model-graph.schema.json \
         bin/mother.js dist/lib/index.js dist/lib/index.d.ts native/gpu/cuda_backend.cu \
         prebuilds/linux-x64/mother.glibc.node prebuilds/linux-arm64/mother.glibc.node; do
  grep -qx "$f" "$work/files" || fail "the tarball lacks $f"
done
if grep -E '\.map$|^build/|^test/|^benchmarks/|^samples/|^scripts/|^lib/|\.tsbuildinfo$' "$work/files"; then
  fail "the tarball holds the files above, which it should not"
fi
mkdir -p "$work/unpacked"
tar -xzf "$tgz" -C "$work/unpacked"
file -b "$work/unpacked/package/prebuilds/linux-x64/mother.glibc.node" | grep -q 'x86-64.*stripped' || fail "linux-x64 prebuild: $(file -b "$work/unpacked/package/prebuilds/linux-x64/mother.glibc.node")"
file -b "$work/unpacked/package/prebuilds/linux-arm64/mother.glibc.node" | grep -q 'ARM aarch64.*stripped' || fail "linux-arm64 prebuild: $(file -b "$work/unpacked/package/prebuilds/linux-arm64/mother.glibc.node")"
if grep -rl 'sourceMappingURL' "$work/unpacked/package/dist" >/dev/null; then fail "dist/ files point at source maps"; fi
say "contents: $(wc -l <"$work/files") files, prebuilds for linux-x64 and linux-arm64 (file(1): stripped ELF for each), LICENSE, schema, no source maps"

new_project() { # new_project <dir>
  mkdir -p "$1"
  printf '{ "name": "%s", "version": "1.0.0", "private": true }\n' "$(basename "$1")" >"$1/package.json"
}
# which mother*.node files the process has mapped after a call that needs the addon
loaded_addon='
const m = require("mother");
m.simdPaths();
const maps = require("fs").readFileSync("/proc/self/maps", "utf8").split("\n");
const nodes = [...new Set(maps.map((l) => l.split(/\s+/).slice(5).join(" ")).filter((p) => /mother[^/]*\.node$/.test(p)))];
console.log(nodes.join("\n"));
'

# 2. --ignore-scripts
p="$work/ignore-scripts"
new_project "$p"
(cd "$p" && npm install "$tgz" --ignore-scripts --prefer-offline --no-audit --no-fund >"$work/install1.log" 2>&1) || { cat "$work/install1.log"; fail "npm install --ignore-scripts failed"; }
[ ! -e "$p/node_modules/mother/build" ] || fail "the installed package has a build/ folder"
got=$(cd "$p" && node -e "$loaded_addon")
[ "$got" = "$p/node_modules/mother/prebuilds/linux-x64/mother.glibc.node" ] || fail "loaded addon: '$got', not the shipped prebuild"
say "--ignore-scripts: require('mother') loads $got"
(cd "$p" && npx --no-install mother recover "$repo/samples/zoo-small" --quiet >"$work/recover.txt" 2>"$work/recover.err") || { cat "$work/recover.err"; fail "mother recover on samples/zoo-small failed"; }
grep -q 'm00' "$work/recover.txt" || { cat "$work/recover.txt"; fail "mother recover printed no tree"; }
(cd "$p" && npx --no-install mother stats "$repo/samples/zoo-small/ft/m02" --json --quiet >"$work/stats.json") || fail "mother stats failed"
node -e "const s = JSON.parse(require('fs').readFileSync('$work/stats.json', 'utf8')); if (!s.tensors || !s.tensors.length) process.exit(1)" || fail "mother stats --json printed no tensors"
say "--ignore-scripts: the CLI ran recover and stats on samples/zoo-small ($(wc -l <"$work/recover.txt") lines of tree)"

# 2b. the GPU backend from a dependent: the message says what to run, and running it works
# (plain CMake and nvcc: no devDependency). Skipped without nvcc, or with MOTHER_CHECK_CUDA=0.
pkgdir="$p/node_modules/mother"
msg=$(cd "$p" && node -e "
require('mother').resolveBackend('cuda').then(() => process.exit(1), (e) => { console.log(e.code + ': ' + e.message); });
")
want="ERR_BACKEND: the CUDA backend is not built: run \`npm run build:cuda\` in $pkgdir (needs CMake and nvcc), or set MOTHER_CUDA_LIBRARY"
[ "$msg" = "$want" ] || fail "--backend cuda without the library says: $msg"
if [ "${MOTHER_CHECK_CUDA:-1}" != 0 ] && { command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; }; then
  (cd "$pkgdir" && npm run build:cuda >"$work/cuda.log" 2>&1) || { tail -30 "$work/cuda.log"; fail "npm run build:cuda in the installed package failed"; }
  used=$(cd "$p" && node -e "
require('mother').resolveBackend('auto').then((r) => {
  console.log(JSON.stringify(r.used));
  if (r.used.used !== 'cuda' && !r.native.gpuLibrary && /not built/.test(r.used.reason || '')) process.exit(1);
});
") || fail "after npm run build:cuda the backend still says: $used"
  say "build:cuda in the installed package: built $(ls "$pkgdir"/build-cuda/libmother_cuda.so); backend 'auto': $used"
else
  say "build:cuda in the installed package: skipped (no nvcc, or MOTHER_CHECK_CUDA=0); the message: $msg"
fi

# 3. no compiler (the PATH: node, npm, sh and the tripwires)
bin="$work/nocc-bin"
mkdir -p "$bin"
ln -s "$(command -v node)" "$bin/node"
ln -s "$(readlink -f /bin/sh)" "$bin/sh" # npm runs scripts with sh
ln -s "$(readlink -f "$(command -v npm)")" "$bin/npm"
trips="$work/tripwires.log"
: >"$trips"
for t in g++ gcc c++ cc clang clang++ make gmake cmake python3 python; do
  printf '#!/bin/sh\necho "%s $*" >>"%s"\necho "tripwire: %s called" >&2\nexit 127\n' "$t" "$trips" "$t" >"$bin/$t"
  chmod +x "$bin/$t"
done
p="$work/no-compiler"
new_project "$p"
# With strace where there is one, every program the install runs is listed (absolute paths
# included, which the PATH alone cannot catch).
trace=()
if command -v strace >/dev/null 2>&1 && strace -f -qq -e trace=execve -o /dev/null true 2>/dev/null; then
  trace=("$(command -v strace)" -f -qq -e trace=execve -o "$work/execve.log")
fi
(cd "$p" && "${trace[@]}" env PATH="$bin" npm install "$tgz" --ignore-scripts=false --foreground-scripts --prefer-offline --no-audit --no-fund >"$work/install2.log" 2>&1) || { cat "$work/install2.log"; fail "npm install with no compiler failed"; }
grep -q '^> node-gyp-build' "$work/install2.log" || { cat "$work/install2.log"; fail "the install script did not run"; }
[ ! -s "$trips" ] || { cat "$trips"; fail "the install called build tools"; }
if [ ${#trace[@]} -gt 0 ]; then
  ran=$(grep -o 'execve("[^"]*", .*= 0$' "$work/execve.log" | sed -E 's/^execve\("([^"]*)".*/\1/' | xargs -n1 basename | sort -u | tr '\n' ' ')
  if echo " $ran " | grep -Eq ' (cc1|cc1plus|g\+\+|gcc|c\+\+|cc|clang|clang\+\+|make|gmake|cmake|python[0-9.]*|ld|as|collect2)[^ ]* '; then
    fail "the install ran build tools: $ran"
  fi
  say "no compiler: the programs the install ran (strace): $ran"
fi
[ ! -e "$p/node_modules/mother/build" ] || fail "the install built something (build/ exists)"
got=$(cd "$p" && PATH="$bin" node -e "$loaded_addon")
[ "$got" = "$p/node_modules/mother/prebuilds/linux-x64/mother.glibc.node" ] || fail "no-compiler install loads '$got'"
(cd "$p" && PATH="$bin" node node_modules/mother/bin/mother.js stats "$repo/samples/zoo-small/ft/m02" --quiet >/dev/null) || fail "the CLI fails after the no-compiler install"
say "no compiler: the install script ran (node-gyp-build), no build tool was called, the prebuild loads, the CLI runs"
p="$work/no-compiler-from-source"
new_project "$p"
: >"$trips"
if (cd "$p" && env PATH="$bin" npm_config_build_from_source=true npm install "$tgz" --ignore-scripts=false --foreground-scripts --prefer-offline --no-audit --no-fund >"$work/install3.log" 2>&1); then
  fail "negative control: a build from source succeeded on the tripwire PATH"
fi
[ -s "$trips" ] || { tail -20 "$work/install3.log"; fail "negative control: the failed build called no tripwire"; }
say "negative control: forcing a build from source on that PATH fails, calling $(cut -d' ' -f1 "$trips" | sort -u | tr '\n' ' ')"

# 4. no usable binary
p="$work/ignore-scripts"
rm -rf "$p/node_modules/mother/prebuilds"
set +e
(cd "$p" && npx --no-install mother stats "$repo/samples/zoo-small/ft/m02" --quiet >"$work/noaddon.out" 2>"$work/noaddon.err")
rc=$?
set -e
[ $rc = 1 ] || { cat "$work/noaddon.err"; fail "without a binary the CLI exits $rc, not 1"; }
[ "$(wc -l <"$work/noaddon.err")" = 1 ] || { cat "$work/noaddon.err"; fail "without a binary the CLI prints more than one line"; }
grep -q '^mother: .*npm rebuild mother' "$work/noaddon.err" || { cat "$work/noaddon.err"; fail "the line does not say npm rebuild mother"; }
(cd "$p" && node -e "
require('mother').scanModel('$repo/samples/zoo-small/ft/m02').then(
  () => process.exit(1),
  (e) => { if (e.name !== 'MotherError' || e.code !== 'ERR_NO_ADDON') { console.error(e); process.exit(1); } });
") || fail "the API does not reject with ERR_NO_ADDON"
say "no binary: exit 1, one line: $(cat "$work/noaddon.err")"
say "ok"
