// Shared pieces of the benchmarks: data files, timing, tables, machine facts.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { packageRoot } from '../lib/core/binding';

export const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

/** Where generated benchmark data lives (git-ignored); override with MOTHER_BENCH_DIR. */
export function dataDir(): string {
  const dir = process.env.MOTHER_BENCH_DIR || path.join(packageRoot(), 'benchmarks', 'data');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function xorshift(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

function f32ToF16(v: number): number {
  // round-to-nearest conversion for normal-range values (benchmark data only)
  const f = new Float32Array([v]);
  const b = new Uint32Array(f.buffer)[0];
  const sign = (b >>> 16) & 0x8000;
  const e = ((b >>> 23) & 0xff) - 127 + 15;
  if (e <= 0) return sign;
  if (e >= 31) return sign | 0x7c00;
  const m = b & 0x7fffff;
  let h = sign | (e << 10) | (m >>> 13);
  if (m & 0x1000 && (m & 0x2fff)) h += 1;
  return h;
}

/**
 * A safetensors file of `bytes` bytes of weight-like data (N(0, 0.02) with rare outliers) in
 * `dtype`, as tensors of 64 MiB (like the large matrices of an LLM shard). Reused if present.
 */
export function ensureWeightsFile(name: string, dtype: string, bytes: number, variant = 0): string {
  const file = path.join(dataDir(), name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const esize = DTYPE_BYTES[dtype];
  const tensorBytes = Math.min(64 * 1024 * 1024, bytes);
  const ntensorsWanted = Math.ceil(bytes / tensorBytes);
  if (fs.existsSync(file) && Math.abs(fs.statSync(file).size - ntensorsWanted * tensorBytes) < 1 << 20) return file;
  const ntensors = ntensorsWanted;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', generator: 'mother benchmarks' } };
  for (let t = 0; t < ntensors; t++) {
    header[`model.layers.${t}.weight`] = { dtype, shape: [tensorBytes / esize / 4096, 4096], data_offsets: [t * tensorBytes, (t + 1) * tensorBytes] };
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const h = Buffer.from(json);
  // one 64 MiB template tensor, rotated per tensor so tensors differ
  const rnd = xorshift(12345 + variant * 7919);
  const n = tensorBytes / esize;
  const f32 = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = rnd() || 1e-12;
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * rnd();
    const scale = rnd() < 0.001 ? 0.5 : 0.02;
    f32[i] = scale * r * Math.cos(th);
    if (i + 1 < n) f32[i + 1] = scale * r * Math.sin(th);
  }
  let template: Uint8Array;
  if (dtype === 'F32') template = new Uint8Array(f32.buffer);
  else if (dtype === 'F64') template = new Uint8Array(Float64Array.from(f32).buffer);
  else {
    const u16 = new Uint16Array(n);
    const u32 = new Uint32Array(f32.buffer);
    for (let i = 0; i < n; i++) u16[i] = dtype === 'BF16' ? (u32[i] + 0x7fff + ((u32[i] >>> 16) & 1)) >>> 16 : f32ToF16(f32[i]);
    template = new Uint8Array(u16.buffer);
  }
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeSync(fd, len);
  fs.writeSync(fd, h);
  for (let t = 0; t < ntensors; t++) {
    const k = (t * 4099 * esize) % template.length;
    fs.writeSync(fd, template, k, template.length - k);
    fs.writeSync(fd, template, 0, k);
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  return file;
}

/**
 * The tensors of a safetensors file from ensureWeightsFile, written by torch.save itself as a
 * PyTorch checkpoint (ZIP layout) next to it (benchmarks/torch_checkpoint.py; needs
 * /usr/bin/python3 with torch). Reused if present.
 */
export function ensureTorchFile(name: string, safetensors: string): string {
  const file = path.join(dataDir(), name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (fs.existsSync(file) && fs.statSync(file).mtimeMs >= fs.statSync(safetensors).mtimeMs) return file;
  const r = spawnSync('/usr/bin/python3', [path.join(packageRoot(), 'benchmarks', 'torch_checkpoint.py'), safetensors, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`torch_checkpoint.py failed (needs /usr/bin/python3 with torch): ${r.stderr}`);
  return file;
}

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.platform()} ${os.release()}, Node ${process.version}`;
}

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const w = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ') + ' |';
  return [line(headers), '|' + w.map((x, i) => (i === 0 ? '-'.repeat(x + 2) : '-'.repeat(x + 1) + ':')).join('|') + '|', ...cells.map(line)].join('\n');
}

export function gbps(bytes: number, seconds: number): number {
  return bytes / seconds / 1e9;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
