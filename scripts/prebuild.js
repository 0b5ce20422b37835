#!/usr/bin/env node
// Makes the prebuilt addons that the npm tarball ships, with prebuildify (N-API, stripped,
// tagged glibc so that musl hosts build from source instead of loading them):
//   prebuilds/linux-x64/mother.napi.glibc.node
//   prebuilds/linux-arm64/mother.napi.glibc.node
// The host's architecture is built natively, the other one with Debian's cross compiler
// (g++-aarch64-linux-gnu on x64, g++-x86-64-linux-gnu on arm64); Node's headers are the same
// for both. Each binary's ELF header is checked (machine, shared object, stripped) before it is
// kept. The local build in build/ is set aside and put back, so `npm pack` does not replace a
// developer's build (or the test emulator) with what prebuildify compiled.
//
// Run by `npm pack` / `npm publish` (prepack) and by `npm run prebuilds`.
// MOTHER_PREBUILD_ARCHS=x64 (comma-separated) limits the architectures, for a quick local try;
// the tarball is meant to carry both.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const GNU = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };
// ELF e_machine values
const MACHINE = { x64: 62, arm64: 183 };
const FILE_SAYS = { x64: 'x86-64', arm64: 'ARM aarch64' };

class Failure extends Error {}
function fail(msg) {
  throw new Failure(msg);
}

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Reads what the ELF header and section table say: machine, type, whether .symtab is left. */
function elfInfo(file) {
  const b = fs.readFileSync(file);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) return { elf: false };
  if (b[4] !== 2 || b[5] !== 1) return { elf: true, class64le: false };
  const type = b.readUInt16LE(16);
  const machine = b.readUInt16LE(18);
  const shoff = Number(b.readBigUInt64LE(40));
  const shentsize = b.readUInt16LE(58);
  const shnum = b.readUInt16LE(60);
  let symtab = false;
  for (let i = 0; i < shnum; i++) {
    const off = shoff + i * shentsize;
    if (off + 8 > b.length) break;
    if (b.readUInt32LE(off + 4) === 2 /* SHT_SYMTAB */) symtab = true;
  }
  return { elf: true, class64le: true, shared: type === 3 /* ET_DYN */, machine, symtab };
}

function check(file, arch) {
  const info = elfInfo(file);
  if (!info.elf || !info.class64le) fail(`${file} is not a 64-bit little-endian ELF file`);
  if (!info.shared) fail(`${file} is not a shared object`);
  if (info.machine !== MACHINE[arch]) fail(`${file} is for ELF machine ${info.machine}, not ${arch} (${MACHINE[arch]})`);
  if (info.symtab) fail(`${file} is not stripped`);
  const fileCmd = which('file');
  if (fileCmd) {
    const r = spawnSync(fileCmd, ['-b', file], { encoding: 'utf8' });
    const says = (r.stdout || '').trim();
    if (!says.includes(FILE_SAYS[arch]) || !says.includes('shared object') || !says.includes(', stripped')) {
      fail(`file(1) says ${path.relative(root, file)}: ${says}`);
    }
    console.log(`prebuilds: ${path.relative(root, file)}: ${says}`);
  } else {
    console.log(`prebuilds: ${path.relative(root, file)}: ELF shared object, ${arch}, stripped (file(1) not installed)`);
  }
}

function build(arch) {
  const env = { ...process.env };
  const args = [require.resolve('prebuildify/bin.js'), '--napi', '--strip', '--tag-libc', `--arch=${arch}`];
  if (arch !== os.arch()) {
    const triple = GNU[arch];
    const cxx = `${triple}-g++`;
    if (!which(cxx)) {
      const pkg = arch === 'arm64' ? 'g++-aarch64-linux-gnu' : 'g++-x86-64-linux-gnu';
      fail(`${cxx} not found: the ${arch} prebuild is cross-compiled (apt-get install ${pkg})`);
    }
    Object.assign(env, { CC: `${triple}-gcc`, CXX: cxx, LINK: cxx, AR: `${triple}-ar`, STRIP: `${triple}-strip` });
    args.push(`--strip-bin=${triple}-strip`);
  }
  console.log(`prebuilds: linux-${arch}${arch === os.arch() ? '' : ` (cross: ${env.CXX})`}`);
  fs.rmSync(path.join(root, 'prebuilds', `linux-${arch}`), { recursive: true, force: true });
  const r = spawnSync(process.execPath, args, { cwd: root, env, stdio: 'inherit' });
  if (r.status !== 0) fail(`prebuildify failed for linux-${arch}`);
  const dir = path.join(root, 'prebuilds', `linux-${arch}`);
  const files = fs.readdirSync(dir);
  const addons = files.filter((f) => f.endsWith('.node'));
  if (addons.length !== 1 || files.length !== 1) fail(`${dir} should hold one .node file, holds ${files.join(', ') || 'nothing'}`);
  check(path.join(dir, addons[0]), arch);
}

function main() {
  if (process.platform !== 'linux') fail('the prebuilds are made on Linux (linux-x64 and linux-arm64)');
  if (!GNU[os.arch()]) fail(`no prebuilds are made on ${os.arch()} hosts`);
  const archs = (process.env.MOTHER_PREBUILD_ARCHS || 'x64,arm64').split(',').map((a) => a.trim()).filter(Boolean);
  for (const a of archs) if (!GNU[a]) fail(`unknown architecture ${a} (x64, arm64)`);

  const build_ = path.join(root, 'build');
  const kept = path.join(root, 'build.prebuilds-kept');
  if (fs.existsSync(kept)) fail(`${kept} exists (left by an interrupted run?): move it back to build/ or delete it`);
  const hadBuild = fs.existsSync(build_);
  if (hadBuild) fs.renameSync(build_, kept);
  try {
    for (const a of archs) build(a);
  } finally {
    fs.rmSync(build_, { recursive: true, force: true });
    if (hadBuild) fs.renameSync(kept, build_);
  }
}

try {
  main();
} catch (e) {
  if (!(e instanceof Failure)) throw e;
  console.error(`prebuilds: ${e.message}`);
  process.exit(1);
}
