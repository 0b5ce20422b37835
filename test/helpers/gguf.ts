// Test-side GGUF writer, a ggml-style Q8_0 quantiser and the llama.cpp converter's Q/K
// permutation, written from ggml's docs/gguf.md independently of the native reader.
import * as fs from 'node:fs';

import { encode, encodeF16 } from './safetensors';

/** GGUF metadata value types (docs/gguf.md). */
export const KV = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
export type KvType = keyof typeof KV;

export type KvScalar = number | bigint | boolean | string;
export type KvValue =
  | { type: Exclude<KvType, 'array'>; value: KvScalar }
  | { type: 'array'; elem: KvType; values: KvScalar[] | KvValue[] };
export interface KvSpec {
  key: string;
  value: KvValue;
}

/** ggml type ids and their blocks (elements, bytes). */
export const GGML_TYPES: Record<string, { id: number; elems: number; bytes: number }> = {
  F32: { id: 0, elems: 1, bytes: 4 }, F16: { id: 1, elems: 1, bytes: 2 }, Q4_0: { id: 2, elems: 32, bytes: 18 },
  Q4_1: { id: 3, elems: 32, bytes: 20 }, Q5_0: { id: 6, elems: 32, bytes: 22 }, Q5_1: { id: 7, elems: 32, bytes: 24 },
  Q8_0: { id: 8, elems: 32, bytes: 34 }, Q8_1: { id: 9, elems: 32, bytes: 36 }, Q2_K: { id: 10, elems: 256, bytes: 84 },
  Q3_K: { id: 11, elems: 256, bytes: 110 }, Q4_K: { id: 12, elems: 256, bytes: 144 }, Q5_K: { id: 13, elems: 256, bytes: 176 },
  Q6_K: { id: 14, elems: 256, bytes: 210 }, Q8_K: { id: 15, elems: 256, bytes: 292 }, IQ2_XXS: { id: 16, elems: 256, bytes: 66 },
  IQ2_XS: { id: 17, elems: 256, bytes: 74 }, IQ3_XXS: { id: 18, elems: 256, bytes: 98 }, IQ1_S: { id: 19, elems: 256, bytes: 50 },
  IQ4_NL: { id: 20, elems: 32, bytes: 18 }, IQ3_S: { id: 21, elems: 256, bytes: 110 }, IQ2_S: { id: 22, elems: 256, bytes: 82 },
  IQ4_XS: { id: 23, elems: 256, bytes: 136 }, I8: { id: 24, elems: 1, bytes: 1 }, I16: { id: 25, elems: 1, bytes: 2 },
  I32: { id: 26, elems: 1, bytes: 4 }, I64: { id: 27, elems: 1, bytes: 8 }, F64: { id: 28, elems: 1, bytes: 8 },
  IQ1_M: { id: 29, elems: 256, bytes: 56 }, BF16: { id: 30, elems: 1, bytes: 2 }, TQ1_0: { id: 34, elems: 256, bytes: 54 },
  TQ2_0: { id: 35, elems: 256, bytes: 66 }, MXFP4: { id: 39, elems: 32, bytes: 17 },
};
/** The block types mother computes statistics of. */
export const QUANT_TYPES = ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'MXFP4'] as const;
export type QuantType = (typeof QUANT_TYPES)[number];

export interface GgufTensor {
  name: string;
  /** Hugging Face order (outermost first); written reversed, as ggml's ne. */
  shape: number[];
  type: string;
  data: Uint8Array;
}

export interface GgufSpec {
  version?: number;
  alignment?: number;
  kv?: KvSpec[];
  tensors: GgufTensor[];
}

/** Tensor bytes for `count` elements of `type`. */
export function tensorBytes(type: string, count: number): number {
  const t = GGML_TYPES[type];
  return (count / t.elems) * t.bytes;
}

class Bytes {
  parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string | Buffer): void {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    this.u64(b.length);
    this.push(b);
  }
  scalar(type: KvType, v: number | bigint | boolean | string): void {
    const b = Buffer.alloc(8);
    switch (type) {
      case 'u8': b.writeUInt8(Number(v)); this.push(b.subarray(0, 1)); break;
      case 'i8': b.writeInt8(Number(v)); this.push(b.subarray(0, 1)); break;
      case 'u16': b.writeUInt16LE(Number(v)); this.push(b.subarray(0, 2)); break;
      case 'i16': b.writeInt16LE(Number(v)); this.push(b.subarray(0, 2)); break;
      case 'u32': b.writeUInt32LE(Number(v)); this.push(b.subarray(0, 4)); break;
      case 'i32': b.writeInt32LE(Number(v)); this.push(b.subarray(0, 4)); break;
      case 'f32': b.writeFloatLE(Number(v)); this.push(b.subarray(0, 4)); break;
      case 'bool': b.writeUInt8(typeof v === 'number' ? v : v ? 1 : 0); this.push(b.subarray(0, 1)); break;
      case 'u64': b.writeBigUInt64LE(BigInt(v)); this.push(b); break;
      case 'i64': b.writeBigInt64LE(BigInt(v)); this.push(b); break;
      case 'f64': b.writeDoubleLE(Number(v)); this.push(b); break;
      case 'string': this.str(String(v)); break;
      default: throw new Error(`not a scalar type: ${type}`);
    }
  }
  value(v: KvValue): void {
    if (v.type !== 'array') {
      this.scalar(v.type, v.value);
      return;
    }
    this.u32(KV[v.elem]);
    this.u64(v.values.length);
    for (const e of v.values) {
      if (v.elem === 'array') this.value(e as KvValue);
      else this.scalar(v.elem, e as number | string | boolean | bigint);
    }
  }
  pad(align: number): void {
    const n = (align - (this.length % align)) % align;
    if (n) this.push(Buffer.alloc(n));
  }
  concat(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

/** The bytes of a GGUF file: header, key/values, tensor infos, padding, aligned tensor data. */
export function ggufBytes(spec: GgufSpec): Buffer {
  const align = spec.alignment ?? 32;
  const kv = spec.kv ?? [];
  const w = new Bytes();
  w.push(Buffer.from('GGUF'));
  w.u32(spec.version ?? 3);
  w.u64(spec.tensors.length);
  w.u64(kv.length);
  for (const e of kv) {
    w.str(e.key);
    w.u32(KV[e.value.type]);
    w.value(e.value);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of spec.tensors) {
    w.str(t.name);
    w.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) w.u64(d);
    w.u32(GGML_TYPES[t.type].id);
    w.u64(offset);
    offsets.push(offset);
    offset += t.data.byteLength;
    offset += (align - (offset % align)) % align;
  }
  w.pad(align);
  for (const t of spec.tensors) {
    w.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    w.pad(align);
  }
  return w.concat();
}

export function writeGguf(file: string, spec: GgufSpec): void {
  fs.writeFileSync(file, ggufBytes(spec));
}

// ---- converting a Hugging Face model the way llama.cpp does -----------------------------------

/** ggml's reference Q8_0 quantiser: per 32 values d = max |x| / 127 (stored as f16), q = round(x / d). */
export function quantizeQ8_0(x: ArrayLike<number>): Uint8Array {
  if (x.length % 32) throw new Error('Q8_0 needs a multiple of 32 values');
  const out = new Uint8Array((x.length / 32) * 34);
  const f = new Float32Array(1);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
    f[0] = amax / 127;
    const d = f[0];
    f[0] = d ? 1 / d : 0;
    const id = f[0];
    const h = encodeF16(d);
    out[34 * b] = h & 0xff;
    out[34 * b + 1] = h >> 8;
    for (let j = 0; j < 32; j++) {
      f[0] = x[32 * b + j] * id;
      const v = f[0];
      const q = Math.sign(v) * Math.round(Math.abs(v)); // roundf: half away from zero
      out[34 * b + 2 + j] = (q < 0 ? q + 256 : q) & 0xff;
    }
  }
  return out;
}

/** FP4 E2M1 magnitudes, codes 0..7 (OCP microscaling); code | 8 is the negative. */
const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

/** A plain MXFP4 quantiser: per 32 values the E8M0 scale 2^(floor(log2 max |x|) - 2) (so that
 *  max |x| / scale lies in [4, 8), above 6 clamped), each value the nearest E2M1 code (ties to
 *  the smaller magnitude). Not ggml's search for the best scale: any MXFP4 block is valid input. */
export function quantizeMXFP4(x: ArrayLike<number>): Uint8Array {
  if (x.length % 32) throw new Error('MXFP4 needs a multiple of 32 values');
  const out = new Uint8Array((x.length / 32) * 17);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
    const e = amax > 0 ? Math.min(254, Math.max(0, Math.floor(Math.log2(amax)) - 2 + 127)) : 0;
    const scale = 2 ** (e - 127);
    out[17 * b] = e;
    const code = (v: number) => {
      const a = Math.abs(v) / scale;
      let best = 0;
      for (let c = 1; c < 8; c++) if (Math.abs(E2M1[c] - a) < Math.abs(E2M1[best] - a)) best = c;
      return (v < 0 && best > 0 ? 8 : 0) | best;
    };
    for (let j = 0; j < 16; j++) out[17 * b + 1 + j] = code(x[32 * b + j]) | (code(x[32 * b + 16 + j]) << 4);
  }
  return out;
}

/** Encodes float values as a GGUF tensor of type F32, F16, BF16, Q8_0 or MXFP4. */
export function encodeAs(type: 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'MXFP4', values: ArrayLike<number>): Uint8Array {
  return type === 'Q8_0' ? quantizeQ8_0(values) : type === 'MXFP4' ? quantizeMXFP4(values) : encode(type, values);
}

/**
 * llama.cpp's permutation of a Q or K weight [rows, cols] (or bias [rows]) before writing it:
 * w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(rows, cols).
 */
export function permuteQK(w: ArrayLike<number>, rows: number, cols: number, nHead: number): Float64Array {
  const half = rows / nHead / 2;
  const out = new Float64Array(rows * cols);
  for (let h = 0; h < nHead; h++)
    for (let i = 0; i < half; i++)
      for (let j = 0; j < 2; j++) {
        const dst = h * 2 * half + i * 2 + j; // new index [h][i][j]
        const src = h * 2 * half + j * half + i; // old index [h][j][i]
        for (let c = 0; c < cols; c++) out[dst * cols + c] = w[src * cols + c];
      }
  return out;
}

/** Hugging Face -> llama.cpp names of a Llama-style model (convert_hf_to_gguf.py's map). */
export function llamaCppName(hf: string): string {
  const top: Record<string, string> = { 'model.embed_tokens': 'token_embd', 'model.norm': 'output_norm', lm_head: 'output' };
  const block: Record<string, string> = {
    input_layernorm: 'attn_norm', 'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v',
    'self_attn.o_proj': 'attn_output', post_attention_layernorm: 'ffn_norm', 'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up',
    'mlp.down_proj': 'ffn_down', 'self_attn.qkv_proj': 'attn_qkv', 'mlp.gate_up_proj': 'ffn_up',
  };
  const m = /^(.*)\.(weight|bias)$/.exec(hf);
  if (!m) throw new Error(`no suffix: ${hf}`);
  if (top[m[1]]) return `${top[m[1]]}.${m[2]}`;
  const b = /^model\.layers\.(\d+)\.(.*)$/.exec(m[1]);
  if (!b || !block[b[2]]) throw new Error(`no llama.cpp name for ${hf}`);
  return `blk.${b[1]}.${block[b[2]]}.${m[2]}`;
}
