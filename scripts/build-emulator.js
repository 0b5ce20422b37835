#!/usr/bin/env node
// Builds the test-only GPU device emulator, build/Release/libmother_gpu_emulator.so (the CUDA
// kernels' decomposition run on the CPU; see native/gpu/emulator_backend.cc), which the tests
// load through the GPU path. It is not part of the addon: `npm install` never builds it.
// `npm test` runs this first (pretest); it recompiles only when a source or header changed.
// Usage: node scripts/build-emulator.js [--force]   (CXX picks the compiler, default c++)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const source = 'native/gpu/emulator_backend.cc';
const out = path.join('build', 'Release', 'libmother_gpu_emulator.so');
const depfile = out.replace(/\.so$/, '.d');
const cxx = process.env.CXX || 'c++';
// No fused multiply-add, as the CUDA library (-fmad=false): the two agree bit for bit.
const flags = [
  '-std=c++17', '-O2', '-fPIC', '-pthread', '-shared',
  '-Wall', '-Wextra', '-Wno-unused-parameter',
  '-ffp-contract=off', '-fvisibility=hidden',
];

function mtime(file) {
  try {
    return fs.statSync(path.join(root, file)).mtimeMs;
  } catch {
    return undefined;
  }
}

/** The sources the last build read (from its depfile), or undefined when unknown. */
function inputs() {
  try {
    const text = fs.readFileSync(path.join(root, depfile), 'utf8').replace(/\\\n/g, ' ');
    return text.slice(text.indexOf(':') + 1).split(/\s+/).filter(Boolean);
  } catch {
    return undefined;
  }
}

function upToDate() {
  const built = mtime(out);
  const deps = inputs();
  if (built === undefined || !deps) return false;
  return deps.every((d) => {
    const t = mtime(d);
    return t !== undefined && t <= built;
  });
}

if (!process.argv.includes('--force') && upToDate()) {
  console.log(`build:emulator: ${out} is up to date`);
  process.exit(0);
}
fs.mkdirSync(path.join(root, path.dirname(out)), { recursive: true });
const args = [...flags, source, '-o', out, '-MMD', '-MF', depfile];
const r = spawnSync(cxx, args, { cwd: root, stdio: 'inherit' });
if (r.error) {
  console.error(`build:emulator: cannot run ${cxx} (${r.error.message}); set CXX to a C++17 compiler`);
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status ?? 1);
console.log(`build:emulator: built ${out}`);
