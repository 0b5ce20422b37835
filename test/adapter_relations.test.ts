// PEFT adapters against the other models without merging (issue 14.3): the native inner product
// <X, R L> of a stored tensor with a low-rank product (native/pairwise/lora_products.h) against
// a float64 reference on every dtype, block type and row order; <dW1, dW2> from the factors
// against the dense product; and in recover, every adapter's distance to the members of its
// base's family and to the other adapters (against the dense float64 base + dW), a merged
// copy of an adapter hung under it, and copies of an adapter's factors typed as copies.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { native } from '../lib/core/binding';
import { adapterFactors, adapterProducts, LoraModule, ModuleFactors, moduleInnerProduct, planAdapter } from '../lib/io/adapter';
import { resolveModel } from '../lib/io/discovery';
import { inspectResolved } from '../lib/io/inspect';
import { recover } from '../lib';
import { permuteQK, writeGguf, quantizeQ8_0, KvSpec } from './helpers/gguf';
import { Rng } from './helpers/reference';
import { decode, encode, FloatDtype, writeSafetensors, decodeF16 } from './helpers/safetensors';
import { Schema, validate } from './helpers/schema';
import { tmpDir } from './helpers/tmp';


/** sum_o sum_k R[o,k] (X[o,:] . L[k,:]) in float64, the plain way: (R L) formed, then the sum of X * (R L). */
function reference(x: ArrayLike<number>, rows: number, cols: number, left: Float64Array, right: Float64Array, r: number): number {
  let s = 0;
  for (let o = 0; o < rows; o++)
    for (let i = 0; i < cols; i++) {
      let m = 0;
      for (let k = 0; k < r; k++) m += right[o * r + k] * left[k * cols + i];
      s += x[o * cols + i] * m;
    }
  return s;
}

const random = (rng: Rng, n: number, scale = 1) => Float64Array.from({ length: n }, () => scale * rng.normal());

/** ggml's Q8_0 decoded the plain way: per 34 bytes, an f16 scale and 32 int8 values. */
function dequantQ8_0(b: Uint8Array): Float64Array {
  const out = new Float64Array((b.length / 34) * 32);
  for (let k = 0; k < b.length / 34; k++) {
    const d = decodeF16(b[34 * k] | (b[34 * k + 1] << 8));
    for (let j = 0; j < 32; j++) out[32 * k + j] = d * ((b[34 * k + 2 + j] << 24) >> 24);
  }
  return out;
}

describe('loraProducts: <X, R L> over a stored tensor, against float64', () => {
  const tmp = tmpDir('mother-lora-products-');
  afterAll(() => tmp.cleanup());
  const rng = new Rng(20261202);
  const addon = native();

  test.each(['F32', 'F64', 'F16', 'BF16'] as FloatDtype[])('%s: 130 x 37 (three jobs of rows, an odd row length), r 3; heavy tails; one thread or three give the same sum', async (dtype) => {
    const rows = 130, cols = 37, r = 3;
    const raw = Float64Array.from({ length: rows * cols }, () => rng.studentT(3));
    const bytes = encode(dtype, raw);
    const x = decode(dtype, bytes); // the stored values
    const file = path.join(tmp.dir, `x-${dtype}.safetensors`);
    writeSafetensors(file, [{ name: 'w', dtype, shape: [rows, cols], data: bytes }, { name: 'v', dtype, shape: [1, 1], data: encode(dtype, [2.5]) }]);
    const left = random(rng, r * cols), right = random(rng, rows * r);
    const items = [
      { tensor: 'w', left, right, r, rows, cols },
      { tensor: 'v', left: Float64Array.of(3), right: Float64Array.of(-0.5), r: 1, rows: 1, cols: 1 },
      { tensor: 'w', left: random(rng, cols), right: random(rng, rows), r: 1, rows, cols },
    ];
    const one = await addon.loraProducts([file], '', items, { threads: 1 });
    const three = await addon.loraProducts([file], '', items, { threads: 3 });
    expect(three.products).toEqual(one.products);
    const want = reference(x, rows, cols, left, right, r);
    expect(one.products[0]!.finite).toBe(true);
    expect(Math.abs(one.products[0]!.value - want)).toBeLessThanOrEqual(1e-12 * Math.abs(want) + 1e-12);
    const v = decode(dtype, encode(dtype, [2.5]))[0];
    expect(one.products[1]).toMatchObject({ value: v * 3 * -0.5, sumSq: v * v, finite: true });
    const w2 = reference(x, rows, cols, items[2].left, items[2].right, 1);
    expect(Math.abs(one.products[2]!.value - w2)).toBeLessThanOrEqual(1e-12 * Math.abs(w2) + 1e-12);
    // ||X||_F^2 and the Gram matrix of Y = X L^T from the same pass
    const Y = new Float64Array(rows * r);
    for (let o = 0; o < rows; o++) for (let k = 0; k < r; k++) for (let i = 0; i < cols; i++) Y[o * r + k] += x[o * cols + i] * left[k * cols + i];
    for (let a = 0; a < r; a++)
      for (let b = 0; b < r; b++) {
        let g = 0;
        for (let o = 0; o < rows; o++) g += Y[o * r + a] * Y[o * r + b];
        expect(Math.abs(one.products[0]!.gram[a * r + b] - g)).toBeLessThanOrEqual(1e-12 * Math.abs(g) + 1e-12);
      }
    expect(one.products[1]!.gram).toEqual(Float64Array.of(v * v * 9));
    const sq = x.reduce((t, e) => t + e * e, 0);
    expect(Math.abs(one.products[0]!.sumSq - sq)).toBeLessThanOrEqual(1e-12 * sq);
    expect(one.products[2]!.sumSq).toBe(one.products[0]!.sumSq);
  });

  test('more row blocks than groups (71 blocks of 64 rows in 64 groups): the same sums on 1 and 3 threads, against float64', async () => {
    const rows = 64 * 70 + 5, cols = 3, r = 2;
    const x = random(rng, rows * cols);
    const file = path.join(tmp.dir, 'tall.safetensors');
    writeSafetensors(file, [{ name: 'w', dtype: 'F64', shape: [rows, cols], data: encode('F64', x) }]);
    const left = random(rng, r * cols), right = random(rng, rows * r);
    const items = [{ tensor: 'w', left, right, r, rows, cols }];
    const one = await addon.loraProducts([file], '', items, { threads: 1 });
    const three = await addon.loraProducts([file], '', items, { threads: 3 });
    expect(three.products).toEqual(one.products);
    const want = reference(x, rows, cols, left, right, r);
    expect(Math.abs(one.products[0]!.value - want)).toBeLessThanOrEqual(1e-12 * Math.abs(want) + 1e-12);
    const sq = x.reduce((t, e) => t + e * e, 0);
    expect(Math.abs(one.products[0]!.sumSq - sq)).toBeLessThanOrEqual(1e-12 * sq);
    let g00 = 0;
    for (let o = 0; o < rows; o++) {
      let y = 0;
      for (let i = 0; i < cols; i++) y += x[o * cols + i] * left[i];
      g00 += y * y;
    }
    expect(Math.abs(one.products[0]!.gram[0] - g00)).toBeLessThanOrEqual(1e-12 * g00);
  });

  test.each([
    ['left', 65, 37, 130],
    ['right', 3, 37, 130],
    ['right', 70, 9, 64 * 70 + 5],
    // 64 groups of 400 x 400 doubles would exceed the 64 MiB scratch: 52 groups of 60 blocks
    ['left', 400, 4, 64 * 60],
  ] as const)('the Gram for q, %s side, rank %d, %d columns, %d rows (ranks above 64; fewer groups where the scratch needs it): against float64, the same on 1 and 3 threads', async (side, r, cols, rows) => {
    const x = Float64Array.from({ length: rows * cols }, () => rng.studentT(4));
    const file = path.join(tmp.dir, `gram-${side}-${r}.safetensors`);
    writeSafetensors(file, [{ name: 'w', dtype: 'F64', shape: [rows, cols], data: encode('F64', x) }]);
    const left = random(rng, r * cols), right = random(rng, rows * r);
    const items = [{ tensor: 'w', left, right, r, rows, cols, gram: side }];
    const one = await addon.loraProducts([file], '', items, { threads: 1 });
    const three = await addon.loraProducts([file], '', items, { threads: 3 });
    expect(three.products).toEqual(one.products);
    // left: Y = X L^T [rows, r], Y^T Y; right: Z = R^T X [r, cols], Z Z^T
    const F = side === 'left' ? rows : cols;
    const V = new Float64Array(r * F); // V[k, f]: Y[f, k] or Z[k, f]
    if (side === 'left') for (let o = 0; o < rows; o++) for (let k = 0; k < r; k++) { let t = 0; for (let i = 0; i < cols; i++) t += x[o * cols + i] * left[k * cols + i]; V[k * F + o] = t; }
    else for (let k = 0; k < r; k++) for (let o = 0; o < rows; o++) { const c = right[o * r + k]; for (let i = 0; i < cols; i++) V[k * F + i] += c * x[o * cols + i]; }
    const g = one.products[0]!.gram;
    expect(g).toHaveLength(r * r);
    let worst = 0;
    // every entry, or 200 drawn ones of a large Gram
    const entries: [number, number][] = r <= 70 ? Array.from({ length: r * r }, (_, e) => [Math.floor(e / r), e % r]) : Array.from({ length: 200 }, () => [Math.floor(rng.next() * r), Math.floor(rng.next() * r)]);
    for (const [a, b] of entries) {
      let t = 0, scale = 0;
      for (let f = 0; f < F; f++) { t += V[a * F + f] * V[b * F + f]; scale += Math.abs(V[a * F + f] * V[b * F + f]); }
      worst = Math.max(worst, Math.abs(g[a * r + b] - t) / scale);
    }
    expect(worst).toBeLessThan(1e-12);
    const want = reference(x, rows, cols, left, right, r);
    expect(Math.abs(one.products[0]!.value - want)).toBeLessThanOrEqual(1e-12 * Math.abs(want) + 1e-12);
  });

  test('NaN or Inf in X: not finite; a missing tensor, another shape or an empty tensor', async () => {
    const rows = 70, cols = 8;
    const v = random(rng, rows * cols);
    v[69 * cols + 3] = NaN;
    const w = random(rng, rows * cols);
    w[5] = Infinity;
    const file = path.join(tmp.dir, 'bad.safetensors');
    writeSafetensors(file, [
      { name: 'nan', dtype: 'F32', shape: [rows, cols], data: encode('F32', v) },
      { name: 'inf', dtype: 'F32', shape: [rows, cols], data: encode('F32', w) },
      { name: 'empty', dtype: 'F32', shape: [0, cols], data: new Uint8Array(0) },
    ]);
    const L = random(rng, 2 * cols), R = random(rng, rows * 2);
    const got = await addon.loraProducts([file], '', [
      { tensor: 'nan', left: L, right: R, r: 2, rows, cols },
      { tensor: 'inf', left: L, right: R, r: 2, rows, cols },
      { tensor: 'absent', left: L, right: R, r: 2, rows, cols },
      { tensor: 'nan', left: random(rng, 2 * rows), right: random(rng, cols * 2), r: 2, rows: cols, cols: rows },
      { tensor: 'empty', left: L, right: new Float64Array(0), r: 2, rows: 0, cols },
    ], {});
    expect(got.products.map((p) => p && p.finite)).toEqual([false, false, null, null, true]);
    expect(got.products[4]!.value).toBe(0);
    expect(got.products[4]!.gram).toEqual(new Float64Array(4));
    // no Gram matrix where one group's scratch (r x r doubles) exceeds the native 64 MiB
    const huge = 2897;
    const wide = await addon.loraProducts([file], '', [{ tensor: 'inf', left: random(rng, huge * cols), right: random(rng, rows * huge), r: huge, rows, cols }], {});
    expect(wide.products[0]!.gram).toHaveLength(0);
    expect(() => addon.loraProducts([file], '', [{ tensor: 'nan', left: L, right: R, r: 2, rows, cols, gram: 'both' as never }], {})).toThrow(/items\[\]\.gram must be 'left' or 'right'/);
    // argument checks throw before anything starts, as the addon's other functions do
    expect(() => addon.loraProducts([file], '', [{ tensor: 'nan', left: L, right: R.subarray(1), r: 2, rows, cols }], {})).toThrow(/right has 139 elements, expected 140/);
  });

  test('GGUF: a Q8_0 tensor through its blocks, and a Llama Q projection read in Hugging Face row order (llama.cpp permutation undone)', async () => {
    const HEADS = 4, HIDDEN = 32;
    const q = random(rng, HIDDEN * HIDDEN, 0.1);
    const up = random(rng, 64 * HIDDEN, 0.1);
    const q8 = quantizeQ8_0(up);
    const kv: KvSpec[] = [
      { key: 'general.architecture', value: { type: 'string', value: 'llama' } },
      { key: 'llama.block_count', value: { type: 'u32', value: 1 } },
      { key: 'llama.embedding_length', value: { type: 'u32', value: HIDDEN } },
      { key: 'llama.attention.head_count', value: { type: 'u32', value: HEADS } },
      { key: 'llama.attention.head_count_kv', value: { type: 'u32', value: HEADS } },
    ];
    const file = path.join(tmp.dir, 'tiny.gguf');
    writeGguf(file, {
      kv,
      tensors: [
        { name: 'blk.0.attn_q.weight', shape: [HIDDEN, HIDDEN], type: 'F32', data: encode('F32', permuteQK(q, HIDDEN, HIDDEN, HEADS)) },
        { name: 'blk.0.ffn_up.weight', shape: [64, HIDDEN], type: 'Q8_0', data: q8 },
      ],
    });
    const qf = decode('F32', encode('F32', q));
    const L1 = random(rng, 2 * HIDDEN), R1 = random(rng, HIDDEN * 2), L2 = random(rng, 3 * HIDDEN), R2 = random(rng, 64 * 3);
    const got = await addon.loraProducts([file], '', [
      { tensor: 'model.layers.0.self_attn.q_proj.weight', left: L1, right: R1, r: 2, rows: HIDDEN, cols: HIDDEN },
      { tensor: 'model.layers.0.mlp.up_proj.weight', left: L2, right: R2, r: 3, rows: 64, cols: HIDDEN },
    ], {});
    const w1 = reference(qf, HIDDEN, HIDDEN, L1, R1, 2), w2 = reference(dequantQ8_0(q8), 64, HIDDEN, L2, R2, 3);
    expect(Math.abs(got.products[0]!.value - w1)).toBeLessThanOrEqual(1e-12 * Math.abs(w1));
    const sq1 = qf.reduce((t, e) => t + e * e, 0), sq2 = dequantQ8_0(q8).reduce((t, e) => t + e * e, 0);
    expect(Math.abs(got.products[0]!.sumSq - sq1)).toBeLessThanOrEqual(1e-12 * sq1);
    expect(Math.abs(got.products[1]!.sumSq - sq2)).toBeLessThanOrEqual(1e-12 * sq2);
    expect(Math.abs(got.products[1]!.value - w2)).toBeLessThanOrEqual(1e-12 * Math.abs(w2));
  });

  test('adapterProducts: a transposed module (embedding, fan_in_fan_out) is <X, (B A)^T>, times the scaling; moduleInnerProduct against the dense <dW1, dW2>', async () => {
    const out = 12, inn = 9;
    const mk = (r: number, transposed: boolean, scaling: number): ModuleFactors => {
      const A = random(rng, r * (transposed ? out : inn)), B = random(rng, (transposed ? inn : out) * r);
      const module = { module: 'm', target: 'm.weight', shape: [out, inn], kind: transposed ? 'embedding' : 'linear', transposed, r, alpha: scaling * r, scaling,
        a: { name: 'a', dtype: 'F32', shape: [r, transposed ? out : inn], file: '', offset: 0, bytes: 0 }, b: { name: 'b', dtype: 'F32', shape: [transposed ? inn : out, r], file: '', offset: 0, bytes: 0 } } as LoraModule;
      return { module, A, B };
    };
    // dW in the target's layout [out, in], dense
    const dense = (f: ModuleFactors) => {
      const { r, transposed, scaling } = f.module;
      const p = transposed ? inn : out, q = transposed ? out : inn; // B A is [p, q]
      const ba = new Float64Array(p * q);
      for (let i = 0; i < p; i++) for (let j = 0; j < q; j++) { let s = 0; for (let k = 0; k < r; k++) s += f.B[i * r + k] * f.A[k * q + j]; ba[i * q + j] = scaling * s; }
      if (!transposed) return ba;
      const t = new Float64Array(out * inn);
      for (let i = 0; i < p; i++) for (let j = 0; j < q; j++) t[j * inn + i] = ba[i * q + j];
      return t;
    };
    const x = random(rng, out * inn);
    const file = path.join(tmp.dir, 'x.safetensors');
    writeSafetensors(file, [{ name: 'm.weight', dtype: 'F64', shape: [out, inn], data: encode('F64', x) }]);
    const fs4 = [mk(3, false, 2), mk(2, true, 0.5), mk(4, false, 1.5), mk(1, true, 3)];
    const got = await adapterProducts({ files: [file], index: '' }, fs4, (t) => t, { threads: 2 });
    fs4.forEach((f, q) => {
      const d = dense(f);
      const want = d.reduce((a, v, i) => a + v * x[i], 0);
      expect(Math.abs(got[q]! - want)).toBeLessThanOrEqual(1e-12 * Math.abs(want));
    });
    expect(await adapterProducts({ files: [file], index: '' }, fs4, () => null)).toEqual([null, null, null, null]);
    for (const f of fs4)
      for (const g of fs4) {
        const a = dense(f), b = dense(g);
        const want = a.reduce((s, v, i) => s + v * b[i], 0);
        expect(Math.abs(moduleInnerProduct(f, g) - want)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want)));
      }
  });
});

/**
 * A base (Llama-shaped, hidden 32), a dense fine-tune, two adapters of the base, and copies:
 * merged-f32 (base + dW of lora-named, rounded to float32 as a merge in float32 stores it),
 * merged-bf16 (the same as BF16), lora-bf16 (lora-named's factors rounded to BF16), lora-twin
 * (lora-named's files copied). Returns, per adapter, the dense float64 distance from base + dW
 * (from the stored factors) to every model and every other adapter: the mean over the base's
 * square 2-D tensors of the RMS difference.
 */
function writeMergedFixture(dir: string): Record<string, Record<string, number>> {
  const rng = new Rng(11);
  const HIDDEN = 32, INTER = 48, VOCAB = 64, LAYERS = 2;
  const shapes: [string, number[]][] = [['model.embed_tokens.weight', [VOCAB, HIDDEN]]];
  for (let i = 0; i < LAYERS; i++) {
    const p = `model.layers.${i}.`;
    for (const m of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) shapes.push([`${p}self_attn.${m}.weight`, [HIDDEN, HIDDEN]]);
    shapes.push([`${p}mlp.gate_proj.weight`, [INTER, HIDDEN]], [`${p}mlp.up_proj.weight`, [INTER, HIDDEN]], [`${p}mlp.down_proj.weight`, [HIDDEN, INTER]]);
    shapes.push([`${p}input_layernorm.weight`, [HIDDEN]], [`${p}post_attention_layernorm.weight`, [HIDDEN]]);
  }
  shapes.push(['model.norm.weight', [HIDDEN]], ['lm_head.weight', [VOCAB, HIDDEN]]);
  type Weights = Map<string, { shape: number[]; v: Float64Array }>;
  const f32 = (v: Float64Array) => decode('F32', encode('F32', v));
  const base: Weights = new Map(shapes.map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return [name, { shape, v: shape.length === 1 ? new Float64Array(n).fill(1) : f32(random(rng, n, 0.1)) }];
  }));
  const saveModel = (id: string, w: Weights, dtype: FloatDtype) => {
    fs.mkdirSync(path.join(dir, id), { recursive: true });
    writeSafetensors(path.join(dir, id, 'model.safetensors'), [...w].map(([name, t]) => ({ name, dtype, shape: t.shape, data: encode(dtype, t.v) })));
    fs.writeFileSync(path.join(dir, id, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: HIDDEN }));
  };
  saveModel('base', base, 'F32');
  const ft: Weights = new Map([...base].map(([k, t]) => [k, { shape: t.shape, v: t.shape.length === 2 ? f32(t.v.map((x) => x + 0.02 * rng.normal())) : t.v }]));
  saveModel('ft', ft, 'F32');
  // adapters: per target, A [r, in] and B [out, r]; dW = (alpha / r) B A
  type Adapter = Map<string, { A: Float64Array; B: Float64Array; out: number; inn: number }>;
  const R = 4, ALPHA = 8, S = ALPHA / R;
  const makeAdapter = (targets: string[]): Adapter => new Map(shapes.filter(([name]) => targets.some((t) => name.endsWith(`${t}.weight`))).map(([name, [out, inn]]) => [name, { A: f32(random(rng, R * inn, 0.2)), B: f32(random(rng, out * R, 0.05)), out, inn }]));
  const saveAdapter = (id: string, ad: Adapter, dtype: FloatDtype, targets: string[]) => {
    fs.mkdirSync(path.join(dir, id), { recursive: true });
    const mod = (name: string) => `base_model.model.${name.replace(/\.weight$/, '')}`;
    writeSafetensors(path.join(dir, id, 'adapter_model.safetensors'), [...ad].flatMap(([name, f]) => [
      { name: `${mod(name)}.lora_A.weight`, dtype, shape: [R, f.inn], data: encode(dtype, f.A) },
      { name: `${mod(name)}.lora_B.weight`, dtype, shape: [f.out, R], data: encode(dtype, f.B) },
    ]));
    fs.writeFileSync(path.join(dir, id, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', base_model_name_or_path: 'base', r: R, lora_alpha: ALPHA, target_modules: targets }));
  };
  const dW = (f: { A: Float64Array; B: Float64Array; out: number; inn: number }) => {
    const d = new Float64Array(f.out * f.inn);
    for (let o = 0; o < f.out; o++) for (let i = 0; i < f.inn; i++) { let s = 0; for (let k = 0; k < R; k++) s += f.B[o * R + k] * f.A[k * f.inn + i]; d[o * f.inn + i] = S * s; }
    return d;
  };
  const named = makeAdapter(['q_proj', 'v_proj', 'down_proj']);
  const other = makeAdapter(['q_proj', 'o_proj']);
  saveAdapter('lora-named', named, 'F32', ['q_proj', 'v_proj', 'down_proj']);
  saveAdapter('lora-other', other, 'F32', ['q_proj', 'o_proj']);
  const bf16 = (v: Float64Array) => decode('BF16', encode('BF16', v));
  const namedBf16: Adapter = new Map([...named].map(([k, f]) => [k, { ...f, A: bf16(f.A), B: bf16(f.B) }]));
  saveAdapter('lora-bf16', namedBf16, 'BF16', ['q_proj', 'v_proj', 'down_proj']);
  fs.mkdirSync(path.join(dir, 'lora-twin'));
  for (const f of ['adapter_model.safetensors', 'adapter_config.json']) fs.copyFileSync(path.join(dir, 'lora-named', f), path.join(dir, 'lora-twin', f));
  const merged: Weights = new Map([...base].map(([k, t]) => { const f = named.get(k); return [k, { shape: t.shape, v: f ? f32(dW(f).map((x, i) => x + t.v[i])) : t.v }]; }));
  saveModel('merged-f32', merged, 'F32');
  const mergedBf16: Weights = new Map([...merged].map(([k, t]) => [k, { shape: t.shape, v: bf16(t.v) }]));
  saveModel('merged-bf16', mergedBf16, 'BF16');
  // the dense reference
  const squares = shapes.filter(([, s]) => s.length === 2 && s[0] === s[1]).map(([name]) => name);
  const asModel = (ad: Adapter) => new Map(squares.map((k) => { const f = ad.get(k); const b = base.get(k)!.v; return [k, f ? dW(f).map((x, i) => x + b[i]) : b]; }));
  const models: Record<string, Map<string, Float64Array>> = {};
  for (const [id, w] of [['base', base], ['ft', ft], ['merged-f32', merged], ['merged-bf16', mergedBf16]] as const) models[id] = new Map([...w].map(([k, t]) => [k, t.v]));
  const adapters: Record<string, Map<string, Float64Array>> = { 'lora-named': asModel(named), 'lora-other': asModel(other), 'lora-bf16': asModel(namedBf16), 'lora-twin': asModel(named) };
  const dist = (x: Map<string, Float64Array>, y: Map<string, Float64Array>) => squares.reduce((a, k) => { const u = x.get(k)!, v = y.get(k)!; let s = 0; for (let i = 0; i < u.length; i++) s += (u[i] - v[i]) ** 2; return a + Math.sqrt(s / u.length); }, 0) / squares.length;
  const ref: Record<string, Record<string, number>> = {};
  for (const [a, me] of Object.entries(adapters)) {
    ref[a] = {};
    for (const [m, w] of Object.entries({ ...models, ...adapters })) if (m !== a) ref[a][m] = dist(me, w);
  }
  return ref;
}

describe('recover: adapters against the other models, their merged copies and their factor copies', () => {
  const tmp = tmpDir('mother-peft-merged-');
  let ref: Record<string, Record<string, number>>;
  const at = (id: string) => path.join(tmp.dir, id);
  const ALL = ['base', 'ft', 'lora-named', 'lora-other', 'merged-f32', 'merged-bf16', 'lora-bf16', 'lora-twin'];
  beforeAll(() => {
    ref = writeMergedFixture(tmp.dir);
  });
  afterAll(() => tmp.cleanup());

  test('the factors of the BF16 copy are read as stored', async () => {
    const r = await resolveModel(at('lora-bf16'));
    const f = await adapterFactors(planAdapter(r.adapter!, await inspectResolved(r)));
    expect(f[0].module.a.dtype).toBe('BF16');
  });

  test('distances of each adapter (base + dW) to every member and every other adapter, against the dense float64 reference; copies hung under the adapter they copy', async () => {
    const g = await recover(ALL.map((id) => ({ id, path: at(id) })), { threads: 1 });
    expect(g.families).toHaveLength(1);
    for (const a of ['lora-named', 'lora-other', 'lora-bf16', 'lora-twin']) {
      const rep = g.adapters!.find((x) => x.id === a)!;
      expect(rep.distances!.map((d) => d.model).sort()).toEqual(ALL.filter((m) => m !== a).sort());
      // the Gram route's cancellation: absolute error about sqrt(eps) x the adapter's own distance
      const floor = 1e-7 * ref[a].base;
      for (const d of rep.distances!) expect(Math.abs(d.rms! - ref[a][d.model])).toBeLessThanOrEqual(1e-9 * ref[a][d.model] + floor);
    }
    const edge = (child: string) => g.edges.find((e) => e.child === child)!;
    expect(edge('ft')).toMatchObject({ parent: 'base', relation: 'finetune' });
    expect(edge('lora-named')).toMatchObject({ parent: 'base', relation: 'adapter' });
    expect(edge('lora-other')).toMatchObject({ parent: 'base', relation: 'adapter' });
    // base + dW merged in float32: a rounding copy of the adapter; its BF16 copy under it
    expect(edge('merged-f32')).toMatchObject({ parent: 'lora-named', relation: 'converted', confidence: null, uncertain: false });
    expect(edge('merged-f32').relativeDifference!).toBeLessThan(1e-6);
    expect(edge('merged-bf16')).toMatchObject({ parent: 'merged-f32', relation: 'converted' });
    // the adapter's files copied: a duplicate at distance 0; its factors rounded to BF16: converted
    expect(edge('lora-twin')).toMatchObject({ parent: 'lora-named', relation: 'duplicate', distance: 0, relativeDifference: 0 });
    expect(edge('lora-bf16')).toMatchObject({ parent: 'lora-named', relation: 'converted' });
    expect(edge('lora-bf16').relativeDifference!).toBeGreaterThan(1e-4);
    expect(edge('lora-bf16').relativeDifference!).toBeLessThan(2 ** -8);
    expect(g.familyReports[0].copies.copies).toBeGreaterThanOrEqual(4);
    const schema = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', 'docs', 'model-graph.schema.json'), 'utf8')) as Schema;
    const doc = JSON.parse(JSON.stringify(g));
    expect(validate(doc, schema)).toEqual([]);
    expect(validate({ ...doc, adapters: [{ ...doc.adapters[0], distances: [{ model: 'x', rms: 'far', relativeDifference: null }] }] }, schema)).not.toEqual([]);
  });

  test('without the adapter, the merged model is a child of the base; a fine-tune is never taken for a copy of an adapter', async () => {
    const g = await recover(['base', 'ft', 'merged-f32'].map((id) => ({ id, path: at(id) })), { threads: 1 });
    const e = g.edges.find((x) => x.child === 'merged-f32')!;
    expect(e.parent).toBe('base');
    expect(['adapter', 'finetune']).toContain(e.relation);
    const h = await recover(['base', 'ft', 'lora-named'].map((id) => ({ id, path: at(id) })), { threads: 1 });
    expect(h.edges.find((x) => x.child === 'ft')).toMatchObject({ parent: 'base', relation: 'finetune' });
    expect(h.adapters![0].distances!.find((d) => d.model === 'ft')!.relativeDifference!).toBeGreaterThan(0.1);
  });

  test('mother recover prints the copies under the adapter', () => {
    const r = spawnSync(process.execPath, [path.resolve(__dirname, '..', 'bin', 'mother.js'), 'recover', tmp.dir], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/lora-twin {2}\(PEFT LoRA adapter, duplicate of lora-named\)/);
    expect(r.stdout).toMatch(/lora-bf16 {2}\(PEFT LoRA adapter, converted copy, relative difference [0-9.e-]+ of lora-named\)/);
    expect(r.stdout).toMatch(/│ {2}└─ merged-f32 {2}\(converted copy/);
  });
});
