// Test-side safetensors writer and float codecs, written from the format specs independently
// of the native code they test.
import * as fs from 'node:fs';

// Global lookups (Math.*, Number.*) are slow inside jest's VM context: alias them once.
const { abs, floor, log2 } = Math;
const { isNaN: isNaNum, isFinite: isFin } = Number;

export type FloatDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2' | 'F8_E8M0' | 'F8_E4M3FNUZ' | 'F8_E5M2FNUZ';
export const FLOAT_DTYPES: FloatDtype[] = ['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ'];

export const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1, F8_E8M0: 1, F8_E4M3FNUZ: 1, F8_E5M2FNUZ: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8, C64: 8,
};

// ---- decoders (bit pattern -> exact double) ----

export function decodeF16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function decodeBF16(h: number): number {
  u32[0] = (h << 16) >>> 0;
  return f32[0];
}

function minifloat(b: number, ebits: number, mbits: number, bias: number): number {
  const s = (b >> (ebits + mbits)) & 1 ? -1 : 1;
  const e = (b >> mbits) & ((1 << ebits) - 1);
  const m = b & ((1 << mbits) - 1);
  if (e === 0) return s * m * 2 ** (1 - bias - mbits);
  return s * (1 + m / 2 ** mbits) * 2 ** (e - bias);
}

export function decodeF8(dtype: FloatDtype, b: number): number {
  switch (dtype) {
    case 'F8_E4M3':
      return (b & 0x7f) === 0x7f ? NaN : minifloat(b, 4, 3, 7);
    case 'F8_E5M2':
      if ((b & 0x7c) === 0x7c) return b & 3 ? NaN : b & 0x80 ? -Infinity : Infinity;
      return minifloat(b, 5, 2, 15);
    case 'F8_E4M3FNUZ':
      return b === 0x80 ? NaN : minifloat(b, 4, 3, 8);
    case 'F8_E5M2FNUZ':
      return b === 0x80 ? NaN : minifloat(b, 5, 2, 16);
    case 'F8_E8M0':
      return b === 0xff ? NaN : 2 ** (b - 127);
    default:
      throw new Error(`not an 8-bit float: ${dtype}`);
  }
}

/** Decodes the raw little-endian bytes of a tensor into doubles. */
export function decode(dtype: FloatDtype, bytes: Uint8Array): Float64Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case 'F64': out[i] = dv.getFloat64(8 * i, true); break;
      case 'F32': out[i] = dv.getFloat32(4 * i, true); break;
      case 'F16': out[i] = decodeF16(dv.getUint16(2 * i, true)); break;
      case 'BF16': out[i] = decodeBF16(dv.getUint16(2 * i, true)); break;
      default: out[i] = decodeF8(dtype, bytes[i]);
    }
  }
  return out;
}

// ---- encoders (double -> nearest representable, ties to even) ----

let f8Tables: Map<FloatDtype, { values: number[]; codes: number[] }> | undefined;
function f8Table(dtype: FloatDtype) {
  f8Tables ??= new Map();
  let t = f8Tables.get(dtype);
  if (!t) {
    const pairs: [number, number][] = [];
    for (let b = 0; b < 256; b++) {
      const v = decodeF8(dtype, b);
      if (isFin(v) && !(v === 0 && 1 / v < 0)) pairs.push([v, b]);
    }
    pairs.sort((a, b) => a[0] - b[0]);
    t = { values: pairs.map((p) => p[0]), codes: pairs.map((p) => p[1]) };
    f8Tables.set(dtype, t);
  }
  return t;
}

function encodeF8(dtype: FloatDtype, x: number): number {
  if (isNaNum(x)) return dtype === 'F8_E4M3' ? 0x7f : dtype === 'F8_E5M2' ? 0x7e : dtype === 'F8_E8M0' ? 0xff : 0x80;
  if (dtype === 'F8_E5M2' && !isFin(x)) return x > 0 ? 0x7c : 0xfc;
  const { values, codes } = f8Table(dtype);
  let lo = 0;
  let hi = values.length - 1;
  if (x <= values[0]) return codes[0];
  if (x >= values[hi]) return codes[hi];
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (values[mid] <= x) lo = mid;
    else hi = mid;
  }
  return x - values[lo] <= values[hi] - x ? codes[lo] : codes[hi];
}

export function encodeBF16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if (isNaNum(x)) return 0x7fc0;
  const rounded = b + 0x7fff + ((b >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function encodeF16(x: number): number {
  if (isNaNum(x)) return 0x7e00;
  const s = x < 0 || (x === 0 && 1 / x < 0) ? 0x8000 : 0;
  const a = abs(x);
  if (a >= 65520) return s | 0x7c00;
  if (a < 2 ** -24 * 0.5) return s;
  let e = floor(log2(a));
  if (2 ** e > a) e -= 1;
  if (2 ** (e + 1) <= a) e += 1;
  if (e < -14) {
    const m = roundEven(a / 2 ** -24);
    return s | m; // m may reach 1024: the smallest normal, still the right bits
  }
  let m = roundEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e += 1;
  }
  if (e > 15) return s | 0x7c00;
  return s | ((e + 15) << 10) | m;
}

function roundEven(v: number): number {
  const f = floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Encodes doubles into the little-endian bytes of `dtype`. */
export function encode(dtype: FloatDtype, values: ArrayLike<number>): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(n * DTYPE_BYTES[dtype]);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const x = values[i];
    switch (dtype) {
      case 'F64': dv.setFloat64(8 * i, x, true); break;
      case 'F32': dv.setFloat32(4 * i, x, true); break;
      case 'F16': dv.setUint16(2 * i, encodeF16(x), true); break;
      case 'BF16': dv.setUint16(2 * i, encodeBF16(x), true); break;
      default: out[i] = encodeF8(dtype, x);
    }
  }
  return out;
}

// ---- safetensors files ----

export interface TensorSpec {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/** The bytes of a safetensors file. `align` pads the header with spaces (writers use 8). */
export function safetensorsBytes(tensors: TensorSpec[], opts: { metadata?: Record<string, string>; align?: number } = {}): Buffer {
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  const align = opts.align ?? 8;
  if (align > 1) {
    const len = Buffer.byteLength(json);
    const pad = (align - ((8 + len) % align)) % align;
    json += ' '.repeat(pad);
  }
  const h = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + h.length + offset);
  out.writeBigUInt64LE(BigInt(h.length), 0);
  h.copy(out, 8);
  let p = 8 + h.length;
  for (const t of tensors) {
    out.set(t.data, p);
    p += t.data.byteLength;
  }
  return out;
}

export function writeSafetensors(file: string, tensors: TensorSpec[], opts: { metadata?: Record<string, string>; align?: number } = {}): void {
  fs.writeFileSync(file, safetensorsBytes(tensors, opts));
}

/** Writes a big single-tensor file in pieces without holding it in memory. */
export function writeLargeSafetensors(
  file: string,
  name: string,
  dtype: FloatDtype,
  count: number,
  chunk: (first: number, n: number) => Uint8Array,
  chunkElems = 1 << 22,
): void {
  const bytes = count * DTYPE_BYTES[dtype];
  let json = JSON.stringify({ [name]: { dtype, shape: [count], data_offsets: [0, bytes] } });
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const h = Buffer.from(json, 'utf8');
  const fd = fs.openSync(file, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length), 0);
    fs.writeSync(fd, len);
    fs.writeSync(fd, h);
    for (let first = 0; first < count; first += chunkElems) {
      const n = Math.min(chunkElems, count - first);
      fs.writeSync(fd, chunk(first, n));
    }
  } finally {
    fs.closeSync(fd);
  }
}
