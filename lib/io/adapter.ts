// Stage 1 and 3 of the pipeline for PEFT LoRA adapters: the adapter's config and tensors
// (stage 1: adapter_config.json next to adapter_model.safetensors or adapter_model.bin,
// validated against each other), and its difference to its base, never merged (stage 3): for
// each target module dW = s B A (s = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora;
// per-module r and alpha from rank_pattern / alpha_pattern), whose Frobenius norm and singular
// values come from the r x r Gram products G_A = A A^T and G_B = B^T B in float64:
//   ||dW||_F^2 = s^2 trace(G_B G_A),   sigma_i(dW)^2 = s^2 eig(D^1/2 V^T G_B V D^1/2), G_A = V D V^T.
// A and B are small (r rows or columns); they are read once from the file (the reader's
// validated offsets) and decoded to float64 here.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

import { fromNative, MotherError } from '../core/errors';
import { native } from '../core/binding';

/** The parts of a model header (the inspect module's) the adapter reads; declared here, as
 *  discovery (which inspect uses) imports this module. */
export interface AdapterHeader {
  files: { path: string }[];
  tensors: { name: string; dtype: string; shape: number[]; file: string; offset: number; bytes: number; unreadable?: string; decoded?: true }[];
}

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = ['adapter_model.safetensors', 'adapter_model.bin'];

export interface AdapterConfig {
  /** adapter_config.json, resolved. */
  file: string;
  peftType: string;
  /** base_model_name_or_path (null when absent or empty). */
  baseModel: string | null;
  r: number;
  loraAlpha: number;
  useRslora: boolean;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  fanInFanOut: boolean;
  /** A list of module names, a regex string, or null when absent. */
  targetModules: string[] | string | null;
}

const fail = (file: string, what: string) => new MotherError('ERR_ADAPTER_CONFIG', `${file}: ${what}`, { file });

/** Parses and checks adapter_config.json (LoRA only). */
export async function readAdapterConfig(file: string): Promise<AdapterConfig> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw fail(file, `cannot be read: ${(e as Error).message}`);
  }
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw fail(file, `not valid JSON: ${(e as Error).message}`);
  }
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw fail(file, 'not a JSON object');
  const peftType = c['peft_type'] ?? 'LORA';
  if (typeof peftType !== 'string') throw fail(file, `peft_type must be a string, got ${JSON.stringify(peftType)}`);
  if (peftType.toUpperCase() !== 'LORA') throw fail(file, `peft_type ${peftType}: only LoRA adapters are read`);
  const posInt = (v: unknown, what: string) => {
    if (!(Number.isInteger(v) && (v as number) > 0)) throw fail(file, `${what} must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const finite = (v: unknown, what: string) => {
    if (!(typeof v === 'number' && Number.isFinite(v))) throw fail(file, `${what} must be a finite number, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (v: unknown, what: string) => {
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') throw fail(file, `${what} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const pattern = (v: unknown, what: string, each: (x: unknown, w: string) => number) => {
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw fail(file, `${what} must be an object`);
    const out: Record<string, number> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = each(x, `${what}.${k}`);
    return out;
  };
  if (c['r'] === undefined) throw fail(file, 'no r (the LoRA rank)');
  const r = posInt(c['r'], 'r');
  const loraAlpha = c['lora_alpha'] === undefined ? 8 : finite(c['lora_alpha'], 'lora_alpha'); // PEFT's default
  if (bool(c['use_dora'], 'use_dora')) throw fail(file, 'use_dora: DoRA adapters (a magnitude vector per module) are not read');
  const base = c['base_model_name_or_path'];
  if (base !== undefined && base !== null && typeof base !== 'string') throw fail(file, `base_model_name_or_path must be a string, got ${JSON.stringify(base)}`);
  const tm = c['target_modules'];
  let targetModules: AdapterConfig['targetModules'] = null;
  if (typeof tm === 'string') targetModules = tm;
  else if (Array.isArray(tm) && tm.every((x) => typeof x === 'string')) targetModules = tm as string[];
  else if (tm !== undefined && tm !== null) throw fail(file, `target_modules must be a list of names or a string, got ${JSON.stringify(tm)}`);
  return {
    file,
    peftType: 'LORA',
    baseModel: typeof base === 'string' && base.length ? base : null,
    r,
    loraAlpha,
    useRslora: bool(c['use_rslora'], 'use_rslora'),
    rankPattern: pattern(c['rank_pattern'], 'rank_pattern', posInt),
    alphaPattern: pattern(c['alpha_pattern'], 'alpha_pattern', finite),
    fanInFanOut: bool(c['fan_in_fan_out'], 'fan_in_fan_out'),
    targetModules,
  };
}

/** The adapter in the folder `dir`: its config and weight file, or null when there is no adapter_config.json. */
export async function adapterIn(dir: string): Promise<{ config: AdapterConfig; weights: string } | null> {
  const cfgFile = path.join(dir, ADAPTER_CONFIG);
  const st = await fs.stat(cfgFile).catch(() => null);
  if (!st?.isFile()) return null;
  const config = await readAdapterConfig(cfgFile);
  for (const name of ADAPTER_WEIGHTS) {
    const p = path.join(dir, name);
    if ((await fs.stat(p).catch(() => null))?.isFile()) return { config, weights: p };
  }
  throw new MotherError('ERR_NOT_A_MODEL', `${dir}: ${ADAPTER_CONFIG} but no ${ADAPTER_WEIGHTS.join(' or ')}`, { file: dir });
}

/** A PEFT pattern key (rank_pattern, alpha_pattern) matches a module path as PEFT matches it: the whole path, or its end after a dot. */
function patternMatches(key: string, module: string): boolean {
  try {
    return new RegExp(`^(?:.*\\.)?(?:${key})$`).test(module);
  } catch {
    return module === key || module.endsWith(`.${key}`);
  }
}

type Tensor = AdapterHeader['tensors'][number];

export interface LoraModule {
  /** Module path in the base model (model.layers.0.self_attn.q_proj). */
  module: string;
  /** The base tensor it changes (module + '.weight'). */
  target: string;
  /** The base tensor's shape that dW has. */
  shape: [number, number];
  kind: 'linear' | 'embedding';
  /** The base tensor is dW's transpose ([in, out]: embeddings, fan_in_fan_out). */
  transposed: boolean;
  r: number;
  alpha: number;
  scaling: number;
  a: Tensor;
  b: Tensor;
}

export interface AdapterPlan {
  config: AdapterConfig;
  /** The weight file. */
  file: string;
  modules: LoraModule[];
  /** Tensors of the file that are no LoRA factor (modules_to_save copies, ...): not part of the difference. */
  others: string[];
}

const FACTOR = /^base_model\.model\.(.+)\.(lora_A|lora_B)(?:\.[A-Za-z0-9_-]+)?\.weight$|^base_model\.model\.(.+)\.(lora_embedding_A|lora_embedding_B)(?:\.[A-Za-z0-9_-]+)?$/;
const FLOAT = new Set(['F64', 'F32', 'F16', 'BF16']);

/** Pairs the adapter's lora_A / lora_B tensors by module and checks them against each other and the config. */
export function planAdapter(config: AdapterConfig, header: AdapterHeader): AdapterPlan {
  const file = header.files[0]?.path ?? config.file;
  const bad = (tensor: string, what: string) => new MotherError('ERR_ADAPTER_TENSOR', `${file}: ${tensor}: ${what}`, { file, tensor });
  const byModule = new Map<string, { a?: Tensor; b?: Tensor; embedding: boolean }>();
  const others: string[] = [];
  for (const t of header.tensors) {
    if (/lora_magnitude_vector/.test(t.name)) throw bad(t.name, 'a DoRA magnitude vector: DoRA adapters are not read');
    const m = FACTOR.exec(t.name);
    if (!m) {
      if (/lora_/.test(t.name)) throw bad(t.name, 'a LoRA tensor not named as PEFT names them (base_model.model.<module>.lora_A.weight / lora_B.weight)');
      others.push(t.name);
      continue;
    }
    const module = m[1] ?? m[3];
    const which = (m[2] ?? m[4]).endsWith('A') ? 'a' : 'b';
    const embedding = m[4] !== undefined;
    const e = byModule.get(module) ?? { embedding };
    if (e[which]) throw bad(t.name, `a second lora_${which.toUpperCase()} for module ${module}`);
    e[which] = t;
    byModule.set(module, e);
  }
  const modules: LoraModule[] = [];
  for (const [module, e] of byModule) {
    const some = (e.a ?? e.b)!;
    if (!e.a || !e.b) throw bad(some.name, `lora_${e.a ? 'B' : 'A'} of module ${module} is missing`);
    for (const t of [e.a, e.b]) {
      if (t.shape.length === 4) throw bad(t.name, `shape [${t.shape}]: LoRA on convolutions is not read`);
      if (t.shape.length !== 2) throw bad(t.name, `shape [${t.shape}]: a LoRA factor is 2-D`);
      if (!FLOAT.has(t.dtype)) throw bad(t.name, `dtype ${t.dtype}: a LoRA factor is F32, F16, BF16 or F64`);
      if (t.unreadable) throw bad(t.name, `not read: ${t.unreadable}`);
      if (t.decoded) throw bad(t.name, 'stored in decoded form');
    }
    const rankKey = Object.keys(config.rankPattern).find((k) => patternMatches(k, module));
    const alphaKey = Object.keys(config.alphaPattern).find((k) => patternMatches(k, module));
    const r = rankKey !== undefined ? config.rankPattern[rankKey] : config.r;
    const alpha = alphaKey !== undefined ? config.alphaPattern[alphaKey] : config.loraAlpha;
    const [ra, inA] = e.a.shape;
    const [outB, rb] = e.b.shape;
    const rankFrom = rankKey !== undefined ? `rank_pattern ${rankKey}` : 'r';
    if (ra !== r) throw bad(e.a.name, `shape [${e.a.shape}]: ${ra} rows, but ${rankFrom} in ${path.basename(config.file)} is ${r}`);
    if (rb !== r) throw bad(e.b.name, `shape [${e.b.shape}]: ${rb} columns, but ${rankFrom} in ${path.basename(config.file)} is ${r}`);
    if (Array.isArray(config.targetModules) && !config.targetModules.some((k) => module === k || module.endsWith(`.${k}`))) {
      throw bad(e.a.name, `module ${module} is not in target_modules (${config.targetModules.join(', ')})`);
    }
    // dW = s B A is [out, in]; embeddings (A: [r, num_embeddings], B: [dim, r]) and fan_in_fan_out (Conv1D) store its transpose
    const transposed = e.embedding || config.fanInFanOut;
    modules.push({
      module,
      target: `${module}.weight`,
      shape: transposed ? [inA, outB] : [outB, inA],
      kind: e.embedding ? 'embedding' : 'linear',
      transposed,
      r,
      alpha,
      scaling: config.useRslora ? alpha / Math.sqrt(r) : alpha / r,
      a: e.a,
      b: e.b,
    });
  }
  if (modules.length === 0) throw new MotherError('ERR_ADAPTER_TENSOR', `${file}: no LoRA tensors (base_model.model.<module>.lora_A.weight / lora_B.weight)`, { file });
  return { config, file, modules, others };
}

// ---- values and Gram products ---------------------------------------------------------------

function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const bf16Buf = new DataView(new ArrayBuffer(4));
function bf16(h: number): number {
  bf16Buf.setUint32(0, h << 16);
  return bf16Buf.getFloat32(0);
}

/** The float64 values of a 2-D float tensor, read from its file at the reader's offset. */
async function valuesOf(t: Tensor): Promise<Float64Array> {
  const n = t.shape[0] * t.shape[1];
  const fh = await fs.open(t.file, 'r');
  try {
    const buf = Buffer.alloc(t.bytes);
    const { bytesRead } = await fh.read(buf, 0, t.bytes, t.offset);
    if (bytesRead !== t.bytes) throw new MotherError('ERR_TRUNCATED', `${t.file}: ${t.name}: ${bytesRead} of ${t.bytes} bytes`, { file: t.file, tensor: t.name });
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      out[i] = t.dtype === 'F32' ? buf.readFloatLE(4 * i) : t.dtype === 'F64' ? buf.readDoubleLE(8 * i) : t.dtype === 'F16' ? f16(buf.readUInt16LE(2 * i)) : bf16(buf.readUInt16LE(2 * i));
    }
    return out;
  } finally {
    await fh.close();
  }
}

/** Symmetric eigenvalues and vectors (cyclic Jacobi; n is a LoRA rank, small). a: n x n row-major, symmetric. */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const A = Float64Array.from(a);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0, total = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) { total += A[i * n + j] ** 2; if (i !== j) off += A[i * n + j] ** 2; }
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q];
        if (apq === 0) continue;
        const theta = (A[q * n + q] - A[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p], akq = A[k * n + q];
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k], aqk = A[q * n + k];
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p], vkq = V[k * n + q];
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = A[i * n + i];
  return { values, vectors: V };
}

/** Relative tolerance on singular values of dW from the Gram route: the Gram products square the
 *  condition number, so float64 resolves sigma / sigma_max down to about 1e-8. */
export const ADAPTER_RANK_RTOL = 1e-7;

export interface ModuleDifference {
  module: string;
  target: string;
  shape: [number, number];
  r: number;
  scaling: number;
  /** ||dW||_F. */
  frobenius: number;
  /** RMS of dW over the target's elements: ||dW||_F / sqrt(out x in). */
  rms: number;
  /** Numerical rank of dW (singular values above ADAPTER_RANK_RTOL x the largest). */
  rank: number;
  /** Singular values of dW, largest first. */
  singularValues: number[];
}

/** A module's factors decoded to float64: A [r, in], B [out, r] (finite: checked). */
export interface ModuleFactors {
  module: LoraModule;
  A: Float64Array;
  B: Float64Array;
}

/** Reads and decodes every module's A and B once (ERR_ADAPTER_TENSOR for a NaN or an infinity). */
export async function adapterFactors(plan: AdapterPlan): Promise<ModuleFactors[]> {
  const out: ModuleFactors[] = [];
  for (const m of plan.modules) {
    const A = await valuesOf(m.a);
    const B = await valuesOf(m.b);
    for (const [t, v] of [[m.a, A], [m.b, B]] as const) {
      for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) throw new MotherError('ERR_ADAPTER_TENSOR', `${t.file}: ${t.name}: element ${i} is ${v[i]}`, { file: t.file, tensor: t.name });
    }
    out.push({ module: m, A, B });
  }
  return out;
}

/** ||dW||_F, rank and singular values of each module of the adapter, from r x r Gram products (float64). */
export async function adapterDifferences(plan: AdapterPlan, factors?: ModuleFactors[]): Promise<ModuleDifference[]> {
  const out: ModuleDifference[] = [];
  const all = factors ?? (await adapterFactors(plan));
  for (const { module: m, A, B } of all) {
    const r = m.r;
    const inDim = m.a.shape[1], outDim = m.b.shape[0];
    const GA = new Float64Array(r * r), GB = new Float64Array(r * r);
    for (let i = 0; i < r; i++)
      for (let j = i; j < r; j++) {
        let s = 0;
        for (let k = 0; k < inDim; k++) s += A[i * inDim + k] * A[j * inDim + k];
        GA[i * r + j] = GA[j * r + i] = s;
        let u = 0;
        for (let k = 0; k < outDim; k++) u += B[k * r + i] * B[k * r + j];
        GB[i * r + j] = GB[j * r + i] = u;
      }
    let trace = 0;
    for (let i = 0; i < r * r; i++) trace += GA[i] * GB[i]; // trace(G_B G_A), both symmetric
    const frobenius = Math.abs(m.scaling) * Math.sqrt(Math.max(0, trace));
    // singular values: G_A = V D V^T, M = D^1/2 V^T G_B V D^1/2
    const { values: D, vectors: V } = symmetricEigen(GA, r);
    const S = new Float64Array(r * r); // V D^1/2
    for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) S[i * r + j] = V[i * r + j] * Math.sqrt(Math.max(0, D[j]));
    const T = new Float64Array(r * r); // G_B S
    for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) { let s = 0; for (let k = 0; k < r; k++) s += GB[i * r + k] * S[k * r + j]; T[i * r + j] = s; }
    const M = new Float64Array(r * r); // S^T T
    for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) { let s = 0; for (let k = 0; k < r; k++) s += S[k * r + i] * T[k * r + j]; M[i * r + j] = s; }
    for (let i = 0; i < r; i++) for (let j = i + 1; j < r; j++) M[i * r + j] = M[j * r + i] = (M[i * r + j] + M[j * r + i]) / 2;
    const sv = [...symmetricEigen(M, r).values].map((x) => Math.abs(m.scaling) * Math.sqrt(Math.max(0, x))).sort((x, y) => y - x);
    const rank = sv.filter((x) => x > ADAPTER_RANK_RTOL * sv[0] && x > 0).length;
    out.push({ module: m.module, target: m.target, shape: m.shape, r, scaling: m.scaling, frobenius, rms: frobenius / Math.sqrt(m.shape[0] * m.shape[1]), rank, singularValues: sv });
  }
  return out;
}

// ---- inner products with other models and other adapters -----------------------------------

/**
 * Per module, the inner product <X_t, dW_t> of a model's tensor X_t (named `nameOf(target)` in
 * that model) with the module's dW = s B A, in one native pass over X_t that never forms dW:
 * trace(B^T X A^T) row block by row block (native/pairwise/lora_products.h; for a transposed
 * module trace(A X B)). null where the model has no such tensor of dW's shape, NaN where X_t
 * holds a NaN or an infinity. With the base's products, <X - Base, dW> = <X, dW> - <Base, dW>:
 * the distance between the adapter (Base + dW) and X without merging.
 */
export async function adapterProducts(
  model: { files: string[]; index: string },
  factors: ModuleFactors[],
  nameOf: (target: string) => string | null,
  options: { simd?: string; threads?: number; signal?: AbortSignal } = {},
): Promise<(number | null)[]> {
  return (await adapterProductsAndNorms(model, factors, nameOf, options)).products;
}

/**
 * adapterProducts, and per module from the same pass ||X_t||_F^2 and ||dW_t X_t^T||_F^2 =
 * s^2 trace((B^T B)(A X^T X A^T)) (the energy of dW's rows, A's row space, along X's row space:
 * lib/method/adapter_base.ts), X_t in dW's orientation [out, in]: for a module stored as dW the
 * native Gram of X A^T, for one stored transposed (fan_in_fan_out: the tensor read is X^T) the
 * Gram of A X^T's transpose, formed from the rows of the stored tensor (A X X^T A^T either way).
 * null where not read, or (the latter) for an embedding's module (its input axis is the
 * vocabulary, whose rows a trained embedding weighs by token frequency: not the rotation-invariant
 * case q's mean of 1 assumes; not measured) or one whose Gram does not fit the native scratch
 * (native/pairwise/lora_products.h); NaN where X_t is not finite.
 */
export async function adapterProductsAndNorms(
  model: { files: string[]; index: string },
  factors: ModuleFactors[],
  nameOf: (target: string) => string | null,
  options: { simd?: string; threads?: number; signal?: AbortSignal } = {},
): Promise<{ products: (number | null)[]; sumSq: (number | null)[]; inputAlignment: (number | null)[] }> {
  if (options.signal?.aborted) throw new MotherError('ERR_CANCELLED', 'adapter products cancelled');
  const items: { tensor: string; left: Float64Array; right: Float64Array; r: number; rows: number; cols: number; gram?: 'left' | 'right' }[] = [];
  const at: number[] = [];
  factors.forEach((f, q) => {
    const name = nameOf(f.module.target);
    if (name === null) return;
    const { r, shape } = f.module;
    // X [rows, cols] = shape; <X, R L> with L [r, cols], R [rows, r]: L = A, R = B, or for a
    // transposed module (X = dW^T) L = B^T, R = A^T
    const [rows, cols] = shape;
    let left: Float64Array, right: Float64Array;
    if (!f.module.transposed) {
      left = f.A;
      right = f.B;
    } else {
      left = new Float64Array(r * cols);
      for (let o = 0; o < cols; o++) for (let k = 0; k < r; k++) left[k * cols + o] = f.B[o * r + k];
      right = new Float64Array(rows * r);
      for (let k = 0; k < r; k++) for (let i = 0; i < rows; i++) right[i * r + k] = f.A[k * rows + i];
    }
    // the Gram for q: of X A^T (left), or for a transposed module of A X_stored = right^T X_stored
    items.push({ tensor: name, left, right, r, rows, cols, gram: f.module.transposed ? 'right' : 'left' });
    at.push(q);
  });
  const out: (number | null)[] = factors.map(() => null);
  const sumSq: (number | null)[] = factors.map(() => null);
  const inputAlignment: (number | null)[] = factors.map(() => null);
  if (items.length === 0) return { products: out, sumSq, inputAlignment };
  const cancel = new Int32Array(1);
  const onAbort = () => Atomics.store(cancel, 0, 1);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const raw = await native().loraProducts(model.files, model.index, items, { simd: options.simd, threads: options.threads }, cancel);
    raw.products.forEach((p, k) => {
      const q = at[k];
      out[q] = p === null ? null : p.finite ? factors[q].module.scaling * p.value : NaN;
      sumSq[q] = p === null ? null : p.finite ? p.sumSq : NaN;
      const f = factors[q], r = f.module.r;
      if (p !== null && f.module.kind === 'linear' && p.gram && p.gram.length === r * r) {
        // trace((B^T B) G), G = A X^T X A^T (the native Gram of X A^T, or of A X_stored for a transposed module), B [out, r]
        const out0 = f.module.b.shape[0];
        let t = 0;
        for (let a = 0; a < r; a++)
          for (let b = 0; b < r; b++) {
            let btb = 0;
            for (let o = 0; o < out0; o++) btb += f.B[o * r + a] * f.B[o * r + b];
            t += btb * p.gram[a * r + b];
          }
        inputAlignment[q] = p.finite ? f.module.scaling * f.module.scaling * t : NaN;
      }
    });
    return { products: out, sumSq, inputAlignment };
  } catch (e) {
    throw fromNative(e);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * <dW1, dW2> of two modules of one target (same shape in the base's layout), from the factors
 * alone: s1 s2 trace((B1^T B2)(A2 A1^T)) (r1 x r2 products) when both store dW as B A the same
 * way round, s1 s2 trace((A1 B2)(A2 B1)) when one of them is transposed.
 */
export function moduleInnerProduct(f1: ModuleFactors, f2: ModuleFactors): number {
  const m1 = f1.module, m2 = f2.module;
  const r1 = m1.r, r2 = m2.r;
  // B A products: P[k, l] = sum_e X[k-th factor][e] Y[l-th factor][e]
  const prod = (X: Float64Array, xRowMajorR: boolean, Y: Float64Array, yRowMajorR: boolean, len: number) => {
    // X holds r1 vectors of `len`: as rows (xRowMajorR: [r1, len]) or as columns ([len, r1]); Y likewise with r2
    const P = new Float64Array(r1 * r2);
    for (let k = 0; k < r1; k++)
      for (let l = 0; l < r2; l++) {
        let s = 0;
        for (let e = 0; e < len; e++) s += (xRowMajorR ? X[k * len + e] : X[e * r1 + k]) * (yRowMajorR ? Y[l * len + e] : Y[e * r2 + l]);
        P[k * r2 + l] = s;
      }
    return P;
  };
  const inner = (P: Float64Array, Q: Float64Array) => { let s = 0; for (let k = 0; k < r1; k++) for (let l = 0; l < r2; l++) s += P[k * r2 + l] * Q[k * r2 + l]; return s; };
  let t: number;
  if (m1.transposed === m2.transposed) {
    // <B1 A1, B2 A2> = sum_kl (B1^T B2)[k,l] (A1 A2^T)[k,l]
    t = inner(prod(f1.B, false, f2.B, false, m1.b.shape[0]), prod(f1.A, true, f2.A, true, m1.a.shape[1]));
  } else {
    // <(B1 A1)^T, B2 A2> = trace(B1 A1 B2 A2) = trace(A1 B2 A2 B1) = sum_kl (A1 B2)[k,l] (A2 B1)[l,k],
    // (A1 B2)[k,l] = A1[k,:] . B2[:,l] and (A2 B1)[l,k] = A2[l,:] . B1[:,k]
    t = inner(prod(f1.A, true, f2.B, false, m1.a.shape[1]), prod(f1.B, false, f2.A, true, m1.b.shape[0]));
  }
  return m1.scaling * m2.scaling * t;
}
