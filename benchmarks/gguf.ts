// GGUF benchmark data: files of weight-like data (N(0, 0.02) with rare outliers) quantised to
// Q8_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K or MXFP4 as llama.cpp's quantisers would
// shape them (per-block absmax for Q8_0 and Q5_0; per-block minimum and range for Q4_1 and Q5_1;
// per sub-block minimum and range with 4-bit scales for Q2_K, 6-bit ones for Q4_K and Q5_K; per
// sub-block absmax with signed 6-bit scales for Q3_K, signed 8-bit ones for Q6_K; the
// power-of-two scale that fits the block's absmax in E2M1's range for MXFP4), as [rows, 4096]
// tensors of about 64 MiB each. Reused if present.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { dataDir } from './common';

export type BenchQuant = 'Q8_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'MXFP4';
const LAYOUT: Record<BenchQuant, { id: number; elems: number; bytes: number }> = {
  Q8_0: { id: 8, elems: 32, bytes: 34 },
  Q4_1: { id: 3, elems: 32, bytes: 20 },
  Q5_0: { id: 6, elems: 32, bytes: 22 },
  Q5_1: { id: 7, elems: 32, bytes: 24 },
  Q2_K: { id: 10, elems: 256, bytes: 84 },
  Q3_K: { id: 11, elems: 256, bytes: 110 },
  Q4_K: { id: 12, elems: 256, bytes: 144 },
  Q5_K: { id: 13, elems: 256, bytes: 176 },
  Q6_K: { id: 14, elems: 256, bytes: 210 },
  MXFP4: { id: 39, elems: 32, bytes: 17 },
};

function weights(n: number, seed: number): Float32Array {
  let x = seed >>> 0 || 1;
  const rnd = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(rnd() || 1e-12));
    const th = 2 * Math.PI * rnd();
    const s = rnd() < 0.001 ? 0.5 : 0.02;
    out[i] = s * r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = s * r * Math.sin(th);
  }
  return out;
}

function f16(v: number): number {
  const f = new Float32Array([v]);
  const b = new Uint32Array(f.buffer)[0];
  const sign = (b >>> 16) & 0x8000;
  const e = ((b >>> 23) & 0xff) - 127 + 15;
  if (e <= 0) return sign | Math.round(Math.abs(v) / 2 ** -24); // subnormal (Q5_K's d is often one)
  if (e >= 31) return sign | 0x7c00;
  return sign | (e << 10) | ((b & 0x7fffff) >>> 13);
}
const fromF16 = (h: number) => {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
};

function quantQ8_0(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 34);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
    const h = f16(amax / 127);
    const d = fromF16(h);
    out[34 * b] = h & 0xff;
    out[34 * b + 1] = h >> 8;
    for (let j = 0; j < 32; j++) out[34 * b + 2 + j] = (d ? Math.max(-127, Math.min(127, Math.round(x[32 * b + j] / d))) : 0) & 0xff;
  }
  return out;
}

/** Q4_1 (bits 4: f16 d, f16 m, qs[16]), Q5_1 (bits 5: d, m, u32 qh, qs[16]; bit i of qh the fifth bit of element i) or Q5_0 (d, qh, qs; y = d (q - 16)). */
function quantQ32(x: Float32Array, type: 'Q4_1' | 'Q5_0' | 'Q5_1'): Uint8Array {
  const bits = type === 'Q4_1' ? 4 : 5;
  const top = (1 << bits) - 1;
  const bb = type === 'Q4_1' ? 20 : type === 'Q5_0' ? 22 : 24;
  const qs0 = bb - 16;
  const out = new Uint8Array((x.length / 32) * bb);
  for (let b = 0; b < x.length / 32; b++) {
    const o = bb * b;
    const v = x.subarray(32 * b, 32 * b + 32);
    let q: number[];
    if (type === 'Q5_0') {
      let amax = 0, max = 0;
      for (const t of v) if (Math.abs(t) > amax) { amax = Math.abs(t); max = t; }
      const h = f16(max / -16); // ggml: the extreme maps to -16
      const d = fromF16(h);
      out[o] = h & 0xff;
      out[o + 1] = h >> 8;
      q = Array.from(v, (t) => (d ? Math.max(0, Math.min(31, Math.round(t / d) + 16)) : 16));
    } else {
      let lo = Infinity, hi = -Infinity;
      for (const t of v) { lo = Math.min(lo, t); hi = Math.max(hi, t); }
      const hd = f16((hi - lo) / top), hm = f16(lo);
      const d = fromF16(hd), m = fromF16(hm);
      out[o] = hd & 0xff;
      out[o + 1] = hd >> 8;
      out[o + 2] = hm & 0xff;
      out[o + 3] = hm >> 8;
      q = Array.from(v, (t) => (d ? Math.max(0, Math.min(top, Math.round((t - m) / d))) : 0));
    }
    let qh = 0;
    for (let j = 0; j < 16; j++) out[o + qs0 + j] = (q[j] & 0xf) | ((q[j + 16] & 0xf) << 4);
    for (let j = 0; j < 32; j++) qh |= (q[j] >> 4) << j;
    if (bits === 5) new DataView(out.buffer, out.byteOffset + o + qs0 - 4, 4).setUint32(0, qh >>> 0, true);
  }
  return out;
}

/** Q4_K (bits 4, 144-byte blocks) or Q5_K (bits 5, 176: qh[32] before qs, bit 2 j + t of qh[l] the fifth bit of element 64 j + 32 t + l). */
function quantKMin(x: Float32Array, bits: 4 | 5): Uint8Array {
  const top = (1 << bits) - 1;
  const bb = bits === 4 ? 144 : 176;
  const qs0 = bits === 4 ? 16 : 48;
  const out = new Uint8Array((x.length / 256) * bb);
  for (let b = 0; b < x.length / 256; b++) {
    const scale: number[] = [];
    const minus: number[] = [];
    for (let j = 0; j < 8; j++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let l = 0; l < 32; l++) {
        const v = x[256 * b + 32 * j + l];
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      lo = Math.min(lo, 0);
      scale.push((hi - lo) / top);
      minus.push(-lo);
    }
    const hd = f16(Math.max(...scale) / 63);
    const hm = f16(Math.max(...minus) / 63);
    const d = fromF16(hd);
    const dm = fromF16(hm);
    const sc = scale.map((s) => (d ? Math.min(63, Math.round(s / d)) : 0));
    const mn = minus.map((m) => (dm ? Math.min(63, Math.round(m / dm)) : 0));
    const o = bb * b;
    out[o] = hd & 0xff;
    out[o + 1] = hd >> 8;
    out[o + 2] = hm & 0xff;
    out[o + 3] = hm >> 8;
    for (let j = 0; j < 4; j++) {
      out[o + 4 + j] = sc[j] | ((sc[j + 4] >> 4) << 6);
      out[o + 8 + j] = mn[j] | ((mn[j + 4] >> 4) << 6);
      out[o + 12 + j] = (sc[j + 4] & 0xf) | ((mn[j + 4] & 0xf) << 4);
    }
    for (let g = 0; g < 4; g++)
      for (let l = 0; l < 32; l++) {
        const q = (j: number) => {
          const a = d * sc[j];
          return a ? Math.max(0, Math.min(top, Math.round((x[256 * b + 32 * j + l] + dm * mn[j]) / a))) : 0;
        };
        const q0 = q(2 * g), q1 = q(2 * g + 1);
        out[o + qs0 + 32 * g + l] = (q0 & 0xf) | ((q1 & 0xf) << 4);
        if (bits === 5) out[o + 16 + l] |= ((q0 >> 4) << (2 * g)) | ((q1 >> 4) << (2 * g + 1));
      }
  }
  return out;
}

function quantQ6_K(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 256) * 210);
  for (let b = 0; b < x.length / 256; b++) {
    const scale: number[] = [];
    for (let j = 0; j < 16; j++) {
      let amax = 0;
      for (let l = 0; l < 16; l++) amax = Math.max(amax, Math.abs(x[256 * b + 16 * j + l]));
      scale.push(amax / 31);
    }
    const hd = f16(Math.max(...scale) / 127);
    const d = fromF16(hd);
    const sc = scale.map((s) => (d ? Math.min(127, Math.round(s / d)) : 0));
    const o = 210 * b;
    for (let e = 0; e < 256; e++) {
      const a = d * sc[e >> 4];
      const q = (a ? Math.max(-32, Math.min(31, Math.round(x[256 * b + e] / a))) : 0) + 32;
      const h = e >> 7, g = (e & 127) >> 5, l = e & 31; // ggml's order (quant_scalar.cc)
      const li = o + 64 * h + 32 * (g & 1) + l;
      out[li] |= g < 2 ? q & 0xf : (q & 0xf) << 4;
      out[o + 128 + 32 * h + l] |= (q >> 4) << (2 * g);
    }
    for (let j = 0; j < 16; j++) out[o + 192 + j] = sc[j] & 0xff;
    out[o + 208] = hd & 0xff;
    out[o + 209] = hd >> 8;
  }
  return out;
}

/** Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], f16 d, f16 dmin; y = d sc q - dmin m, q in 0..3. */
function quantQ2_K(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 256) * 84);
  for (let b = 0; b < x.length / 256; b++) {
    const scale: number[] = [];
    const minus: number[] = [];
    for (let j = 0; j < 16; j++) {
      let lo = 0, hi = -Infinity;
      for (let l = 0; l < 16; l++) { const t = x[256 * b + 16 * j + l]; lo = Math.min(lo, t); hi = Math.max(hi, t); }
      scale.push((hi - lo) / 3);
      minus.push(-lo);
    }
    const hd = f16(Math.max(...scale) / 15), hm = f16(Math.max(...minus) / 15);
    const d = fromF16(hd), dm = fromF16(hm);
    const sc = scale.map((s) => (d ? Math.min(15, Math.round(s / d)) : 0));
    const mn = minus.map((m) => (dm ? Math.min(15, Math.round(m / dm)) : 0));
    const o = 84 * b;
    for (let j = 0; j < 16; j++) out[o + j] = sc[j] | (mn[j] << 4);
    for (let e = 0; e < 256; e++) {
      const a = d * sc[e >> 4];
      const q = a ? Math.max(0, Math.min(3, Math.round((x[256 * b + e] + dm * mn[e >> 4]) / a))) : 0;
      const h = e >> 7, g = (e & 127) >> 5, l = e & 31;
      out[o + 16 + 32 * h + l] |= q << (2 * g);
    }
    out[o + 80] = hd & 0xff;
    out[o + 81] = hd >> 8;
    out[o + 82] = hm & 0xff;
    out[o + 83] = hm >> 8;
  }
  return out;
}

/** Q3_K: hmask[32], qs[64], 16 six-bit scales in 12 bytes, f16 d; y = d (sc - 32) q, q in [-4, 3]. */
function quantQ3_K(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 256) * 110);
  for (let b = 0; b < x.length / 256; b++) {
    const sub: number[] = [];
    for (let j = 0; j < 16; j++) {
      let amax = 0, max = 0;
      for (let l = 0; l < 16; l++) { const t = x[256 * b + 16 * j + l]; if (Math.abs(t) > amax) { amax = Math.abs(t); max = t; } }
      sub.push(max / -4); // ggml: the extreme maps to -4
    }
    const hd = f16(Math.max(...sub.map(Math.abs)) / 32);
    const d = fromF16(hd);
    const sc = sub.map((s) => (d ? Math.max(-32, Math.min(31, Math.round(s / d))) : 0));
    const o = 110 * b;
    for (let j = 0; j < 16; j++) {
      const v = sc[j] + 32;
      if (j < 8) out[o + 96 + j] |= v & 0xf;
      else out[o + 96 + j - 8] |= (v & 0xf) << 4;
      out[o + 104 + (j % 4)] |= (v >> 4) << (2 * Math.floor(j / 4));
    }
    for (let e = 0; e < 256; e++) {
      const a = d * sc[e >> 4];
      const q = (a ? Math.max(-4, Math.min(3, Math.round(x[256 * b + e] / a))) : 0) + 4; // 0..7
      const h = e >> 7, g = (e & 127) >> 5, l = e & 31;
      out[o + 32 + 32 * h + l] |= (q & 3) << (2 * g);
      out[o + l] |= (q >> 2) << (4 * h + g);
    }
    out[o + 108] = hd & 0xff;
    out[o + 109] = hd >> 8;
  }
  return out;
}

const E2M1_DOUBLED = [0, 1, 2, 3, 4, 6, 8, 12];
function quantMXFP4(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 17);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
    // y = k 2^(e - 128), |k| <= 12
    const e = amax > 0 ? Math.max(0, Math.min(255, Math.ceil(Math.log2(amax / 12)) + 128)) : 0;
    const s = 2 ** (e - 128);
    out[17 * b] = e;
    for (let j = 0; j < 32; j++) {
      const v = x[32 * b + j] / s;
      let best = 0;
      for (let k = 1; k < 8; k++) if (Math.abs(Math.abs(v) - E2M1_DOUBLED[k]) < Math.abs(Math.abs(v) - E2M1_DOUBLED[best])) best = k;
      const nib = best === 0 ? 0 : (v < 0 ? 8 : 0) | best;
      out[17 * b + 1 + (j & 15)] |= j < 16 ? nib : nib << 4;
    }
  }
  return out;
}

const QUANTISERS: Record<BenchQuant, (x: Float32Array) => Uint8Array> = {
  Q8_0: quantQ8_0, Q4_1: (x) => quantQ32(x, 'Q4_1'), Q5_0: (x) => quantQ32(x, 'Q5_0'), Q5_1: (x) => quantQ32(x, 'Q5_1'),
  Q2_K: quantQ2_K, Q3_K: quantQ3_K, Q4_K: (x) => quantKMin(x, 4), Q5_K: (x) => quantKMin(x, 5), Q6_K: quantQ6_K, MXFP4: quantMXFP4,
};

/** A GGUF file of about `bytes` bytes of `type` weights (llama arch, blk.N.ffn_up.weight tensors). */
export function ensureGgufFile(name: string, type: BenchQuant, bytes: number): string {
  const file = path.join(dataDir(), name);
  const { id, elems, bytes: bb } = LAYOUT[type];
  const cols = 4096;
  const rowBytes = (cols / elems) * bb;
  const rows = Math.floor((64 * 2 ** 20) / rowBytes);
  const tensorBytes = rows * rowBytes;
  const ntensors = Math.max(1, Math.round(bytes / tensorBytes));
  const align = 32;
  const padded = Math.ceil(tensorBytes / align) * align;
  const parts: Buffer[] = [];
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const str = (s: string) => { u64(Buffer.byteLength(s)); parts.push(Buffer.from(s)); };
  parts.push(Buffer.from('GGUF'));
  u32(3);
  u64(ntensors);
  u64(2);
  str('general.architecture'); u32(8); str('llama');
  str('general.name'); u32(8); str(`mother benchmark ${type}`);
  for (let t = 0; t < ntensors; t++) {
    str(`blk.${t}.ffn_up.weight`); u32(2); u64(cols); u64(rows); u32(id); u64(t * padded);
  }
  let head = Buffer.concat(parts);
  head = Buffer.concat([head, Buffer.alloc((align - (head.length % align)) % align)]);
  const want = head.length + ntensors * padded;
  if (fs.existsSync(file) && fs.statSync(file).size === want) return file;
  const template = QUANTISERS[type](weights(rows * cols, 777));
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  fs.writeSync(fd, head);
  const pad = Buffer.alloc(padded - tensorBytes);
  for (let t = 0; t < ntensors; t++) {
    const k = ((t * 4099) % (tensorBytes / bb)) * bb; // rotate by whole blocks so tensors differ
    fs.writeSync(fd, template, k, tensorBytes - k);
    fs.writeSync(fd, template, 0, k);
    fs.writeSync(fd, pad);
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  return file;
}
