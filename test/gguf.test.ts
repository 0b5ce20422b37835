// The GGUF reader: metadata of every value type, the tensor table (Hugging Face names and
// shapes), split sets, types left out, and a Llama-like safetensors model against its GGUF
// conversions (F32, F16, Q8_0, with llama.cpp's Q/K permutation), through inspect, scan,
// pairwise, discovery and the CLI.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { discoverModels, inspectModel, MotherError, pairwiseStats, recover, scanModel } from '../lib';
import { resolveModel } from '../lib/io/discovery';
import { encodeAs, GgufTensor, KvSpec, llamaCppName, permuteQK, writeGguf } from './helpers/gguf';
import { close, Rng } from './helpers/reference';
import { encode, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const CLI = path.resolve(__dirname, '..', 'bin', 'mother.js');
let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir('mother-gguf-');
});
afterAll(() => tmp.cleanup());
const at = (name: string) => path.join(tmp.dir, name);

async function rejection(p: Promise<unknown>): Promise<MotherError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(MotherError);
    return e as MotherError;
  }
  throw new Error('expected a rejection');
}

// ---- a tiny Llama-like model ------------------------------------------------------------------

const HIDDEN = 64;
const LAYERS = 2;
const HEADS = 4;
const KV_HEADS = 2;
const HEAD_DIM = HIDDEN / HEADS;
const FF = 128;
const VOCAB = 96;

interface HfTensor { name: string; shape: number[]; values: Float64Array }

function llamaModel(seed: number): HfTensor[] {
  const rng = new Rng(seed);
  const t = (name: string, shape: number[], scale = 0.05): HfTensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) values[i] = scale * rng.normal() + (shape.length === 1 ? 1 : 0);
    return { name, shape, values };
  };
  const out: HfTensor[] = [t('model.embed_tokens.weight', [VOCAB, HIDDEN])];
  for (let l = 0; l < LAYERS; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      t(p + 'input_layernorm.weight', [HIDDEN]),
      t(p + 'self_attn.q_proj.weight', [HEADS * HEAD_DIM, HIDDEN]),
      t(p + 'self_attn.k_proj.weight', [KV_HEADS * HEAD_DIM, HIDDEN]),
      t(p + 'self_attn.v_proj.weight', [KV_HEADS * HEAD_DIM, HIDDEN]),
      t(p + 'self_attn.o_proj.weight', [HIDDEN, HEADS * HEAD_DIM]),
      t(p + 'post_attention_layernorm.weight', [HIDDEN]),
      t(p + 'mlp.gate_proj.weight', [FF, HIDDEN]),
      t(p + 'mlp.up_proj.weight', [FF, HIDDEN]),
      t(p + 'mlp.down_proj.weight', [HIDDEN, FF]),
    );
  }
  out.push(t('model.norm.weight', [HIDDEN]), t('lm_head.weight', [VOCAB, HIDDEN]));
  return out;
}

const LLAMA_KV: KvSpec[] = [
  { key: 'general.architecture', value: { type: 'string', value: 'llama' } },
  { key: 'general.name', value: { type: 'string', value: 'Tiny Llama' } },
  { key: 'general.file_type', value: { type: 'u32', value: 7 } },
  { key: 'general.quantization_version', value: { type: 'u32', value: 2 } },
  { key: 'general.base_model.count', value: { type: 'u32', value: 1 } },
  { key: 'general.base_model.0.name', value: { type: 'string', value: 'Tiny Base' } },
  { key: 'general.base_model.0.repo_url', value: { type: 'string', value: 'https://huggingface.co/org/tiny-base' } },
  { key: 'llama.block_count', value: { type: 'u32', value: LAYERS } },
  { key: 'llama.embedding_length', value: { type: 'u32', value: HIDDEN } },
  { key: 'llama.attention.head_count', value: { type: 'u32', value: HEADS } },
  { key: 'llama.attention.head_count_kv', value: { type: 'u32', value: KV_HEADS } },
];

/** The model as llama.cpp's convert_hf_to_gguf.py writes it: names mapped, Q and K permuted,
 *  2-D weights in `type`, 1-D tensors F32. */
function toGguf(model: HfTensor[], type: 'F32' | 'F16' | 'Q8_0' | 'MXFP4'): GgufTensor[] {
  return model.map((t) => {
    let v: ArrayLike<number> = t.values;
    const cols = t.shape.length > 1 ? t.shape[1] : 1;
    if (t.name.endsWith('q_proj.weight')) v = permuteQK(v, t.shape[0], cols, HEADS);
    if (t.name.endsWith('k_proj.weight')) v = permuteQK(v, t.shape[0], cols, KV_HEADS);
    const tt = t.shape.length === 1 ? 'F32' : type;
    return { name: llamaCppName(t.name), shape: t.shape, type: tt, data: encodeAs(tt, v) };
  });
}

describe('a Llama-like model and its GGUF conversions', () => {
  const model = llamaModel(3);
  let st: string;
  const ggufOf: Record<string, string> = {};
  beforeAll(() => {
    st = at('tiny.safetensors');
    writeSafetensors(st, model.map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape, data: encode('F32', t.values) })));
    for (const type of ['F32', 'F16', 'Q8_0', 'MXFP4'] as const) {
      ggufOf[type] = at(`tiny-${type}.gguf`);
      writeGguf(ggufOf[type], { kv: LLAMA_KV, tensors: toGguf(model, type) });
    }
  });

  test('inspect: Hugging Face names and shapes, in the order of the file; format and metadata per file', async () => {
    const want = await inspectModel(st);
    for (const type of ['F32', 'F16', 'Q8_0']) {
      const h = await inspectModel(ggufOf[type]);
      expect(h.tensors.map((t) => [t.name, t.shape])).toEqual(want.tensors.map((t) => [t.name, t.shape]).sort((a, b) => model.findIndex((m) => m.name === a[0]) - model.findIndex((m) => m.name === b[0])));
      expect(h.files).toHaveLength(1);
      expect(h.files[0].format).toBe('gguf');
      expect(h.files[0].metadata).toMatchObject({
        'general.architecture': 'llama', 'general.name': 'Tiny Llama', 'general.file_type': '7', 'general.base_model.count': '1',
        'general.base_model.0.name': 'Tiny Base', 'general.base_model.0.repo_url': 'https://huggingface.co/org/tiny-base',
        'llama.attention.head_count': '4', 'llama.attention.head_count_kv': '2',
      });
      const q = h.tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')!;
      expect(q.dtype).toBe(type);
      expect(h.tensors.find((t) => t.name === 'model.norm.weight')!.dtype).toBe('F32');
    }
    expect(want.files[0].format).toBe('safetensors');
  });

  test('statistics of the F32 conversion equal the safetensors model\'s (the row order does not matter)', async () => {
    const a = await scanModel(st, { backend: 'cpu' });
    const b = await scanModel(ggufOf.F32, { backend: 'cpu' });
    const byName = new Map(b.tensors.map((t) => [t.name, t]));
    for (const t of a.tensors) {
      const u = byName.get(t.name)!;
      expect({ name: t.name, count: u.count, min: u.min, max: u.max }).toEqual({ name: t.name, count: t.count, min: t.min, max: t.max });
      for (const f of ['mean', 'std', 'skewness', 'kurtosis', 'l2', 'absMean'] as const)
        expect({ name: t.name, f, ok: close(u[f]!, t[f]!, 1e-12, f === 'mean' ? t.std! : f === 'skewness' || f === 'kurtosis' ? 1 : 0) }).toEqual({ name: t.name, f, ok: true });
    }
  });

  test('pairwise: the F32 conversion is at distance 0 tensor for tensor (Q and K rows un-permuted), F16 and Q8_0 close', async () => {
    // NOTE: the un-permutation in the pairwise pass goes through TensorView.row_map (decoded by
    // native/stats/view_decode.cc until the engine's one decode entry takes it over).
    const d = await pairwiseStats([st, ggufOf.F32, ggufOf.F16, ggufOf.Q8_0], { backend: 'cpu', metrics: ['rms', 'l1', 'maxdiff'] });
    expect(d.skipped).toEqual([]);
    expect(d.layers.map((l) => l.name).sort()).toEqual(model.map((t) => t.name).sort());
    for (const l of d.layers) {
      const rms = l.rms!;
      expect({ name: l.name, rms: rms[0 * 4 + 1] }).toEqual({ name: l.name, rms: 0 });
      expect({ name: l.name, f16: rms[0 * 4 + 2] < 1e-3 }).toEqual({ name: l.name, f16: true });
      expect({ name: l.name, q8: rms[0 * 4 + 3] < 2e-3 }).toEqual({ name: l.name, q8: true });
    }
    // the control: without the un-permutation, the Q projections would be far apart
    const q = model.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')!;
    const p = permuteQK(q.values, q.shape[0], q.shape[1], HEADS);
    let ss = 0;
    for (let i = 0; i < p.length; i++) ss += (p[i] - q.values[i]) ** 2;
    expect(Math.sqrt(ss / p.length)).toBeGreaterThan(0.03);
  });

  test('MXFP4: the conversion lies at its rounding noise (about 0.1 of the weights\' spread: FP4 E2M1 under a power-of-two scale), and recover hangs it under its source as a quantized copy', async () => {
    const d = await pairwiseStats([st, ggufOf.MXFP4], { backend: 'cpu', metrics: ['rms'] });
    expect(d.skipped).toEqual([]);
    for (const l of d.layers) {
      const rel = l.rms![1] / 0.05; // the 2-D weights' std; 1-D tensors are F32 in the GGUF
      expect({ name: l.name, ok: l.name.endsWith('norm.weight') ? rel === 0 : rel > 0.05 && rel < 0.2 }).toEqual({ name: l.name, ok: true });
    }
    // a second model (the first plus 0.6 of its spread) and the MXFP4 copy of it
    const rng = new Rng(9);
    const child = model.map((t) => ({ ...t, values: t.shape.length === 1 ? t.values : t.values.map((v) => v + 0.03 * rng.normal()) }));
    const dir = at('mxfp4-set');
    fs.mkdirSync(dir, { recursive: true });
    writeSafetensors(path.join(dir, 'base.safetensors'), model.map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape, data: encode('F32', t.values) })));
    writeSafetensors(path.join(dir, 'child.safetensors'), child.map((t) => ({ name: t.name, dtype: 'F32', shape: t.shape, data: encode('F32', t.values) })));
    writeGguf(path.join(dir, 'child-MXFP4.gguf'), { kv: LLAMA_KV, tensors: toGguf(child, 'MXFP4') });
    const g = await recover(['base.safetensors', 'child.safetensors', 'child-MXFP4.gguf'].map((f) => path.join(dir, f)), { backend: 'cpu', threads: 2 });
    const copy = g.edges.find((e) => e.child.endsWith('child-MXFP4.gguf'))!;
    expect(copy).toMatchObject({ relation: 'quantized' });
    expect(copy.parent.endsWith('child.safetensors')).toBe(true);
    expect(copy.relativeDifference!).toBeGreaterThan(0.05);
    expect(copy.relativeDifference!).toBeLessThan(0.2);
  });

  test('mother stats on a .gguf file', () => {
    const r = spawnSync(process.execPath, [CLI, 'stats', ggufOf.Q8_0, '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    const names = (out.tensors ?? out).map((t: { name: string }) => t.name);
    expect(names).toContain('model.layers.1.mlp.down_proj.weight');
  });

  test('a split set is one model: all its files, checked against split.count / split.no / split.tensors.count', async () => {
    const dir = at('split');
    fs.mkdirSync(dir);
    const tensors = toGguf(model, 'Q8_0');
    const parts = [tensors.slice(0, 5), tensors.slice(5, 12), tensors.slice(12)];
    const split = (k: number, over: Partial<Record<string, number>> = {}): KvSpec[] => [
      ...(k === 0 ? LLAMA_KV : []),
      { key: 'split.no', value: { type: 'u16', value: over.no ?? k } },
      { key: 'split.count', value: { type: 'u16', value: over.count ?? 3 } },
      { key: 'split.tensors.count', value: { type: 'i32', value: over.total ?? tensors.length } },
    ];
    const file = (k: number) => path.join(dir, `tiny-Q8_0-0000${k + 1}-of-00003.gguf`);
    parts.forEach((p, k) => writeGguf(file(k), { kv: split(k), tensors: p }));
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not weights');
    const r = await resolveModel(file(0));
    expect(r.files).toEqual([file(0), file(1), file(2)]);
    expect((await resolveModel(dir)).files).toEqual([file(0), file(1), file(2)]);
    const h = await inspectModel(file(0));
    expect(h.files.map((f) => f.path)).toEqual([file(0), file(1), file(2)]);
    const single = await inspectModel(ggufOf.Q8_0);
    expect(h.tensors.map((t) => [t.name, t.shape, t.dtype])).toEqual(single.tensors.map((t) => [t.name, t.shape, t.dtype]));
    // discovery: a folder whose only weights are the set is that model; in a folder of models the
    // set is listed once, by its first file
    expect(await discoverModels(dir)).toEqual([{ id: 'split', path: dir, format: 'gguf', splits: 3 }]);
    const zoo = at('zoo');
    fs.mkdirSync(zoo);
    for (let k = 0; k < 3; k++) fs.copyFileSync(file(k), path.join(zoo, path.basename(file(k))));
    fs.copyFileSync(ggufOf.F16, path.join(zoo, 'tiny-F16.gguf'));
    expect((await discoverModels(zoo)).map((m) => m.id)).toEqual(['tiny-F16.gguf', 'tiny-Q8_0-00001-of-00003.gguf']);
    const d = await pairwiseStats([ggufOf.Q8_0, file(0)], { backend: 'cpu' });
    for (const l of d.layers) expect({ name: l.name, rms: l.rms![1] }).toEqual({ name: l.name, rms: 0 });

    // one split missing, a wrong split.no, a wrong total
    fs.renameSync(file(2), file(2) + '.away');
    expect((await rejection(inspectModel(file(0)))).code).toBe('ERR_MISSING_SHARD');
    fs.renameSync(file(2) + '.away', file(2));
    writeGguf(file(1), { kv: split(1, { no: 2 }), tensors: parts[1] });
    const e = await rejection(inspectModel(file(0)));
    expect({ code: e.code, file: e.file }).toEqual({ code: 'ERR_GGUF_SPLIT', file: file(1) });
    writeGguf(file(1), { kv: split(1), tensors: parts[1] });
    writeGguf(file(0), { kv: split(0, { total: 99 }), tensors: parts[0] });
    expect((await rejection(inspectModel(file(0)))).code).toBe('ERR_GGUF_SPLIT');
  });
});

describe('GGUF metadata and tensor types', () => {
  test('every value type, nested arrays, long arrays summarised; versions 2 and 3; alignment honoured', async () => {
    const kv: KvSpec[] = [
      { key: 'general.architecture', value: { type: 'string', value: 'mystery' } },
      { key: 'general.alignment', value: { type: 'u32', value: 64 } },
      { key: 't.u8', value: { type: 'u8', value: 255 } },
      { key: 't.i8', value: { type: 'i8', value: -128 } },
      { key: 't.u16', value: { type: 'u16', value: 65535 } },
      { key: 't.i16', value: { type: 'i16', value: -32768 } },
      { key: 't.u32', value: { type: 'u32', value: 4294967295 } },
      { key: 't.i32', value: { type: 'i32', value: -2147483648 } },
      { key: 't.f32', value: { type: 'f32', value: 0.1 } },
      { key: 't.bool', value: { type: 'bool', value: true } },
      { key: 't.string', value: { type: 'string', value: 'héllo "q"' } },
      { key: 't.u64', value: { type: 'u64', value: 18446744073709551615n } },
      { key: 't.i64', value: { type: 'i64', value: -9223372036854775808n } },
      { key: 't.f64', value: { type: 'f64', value: -2.5e-300 } },
      { key: 't.array', value: { type: 'array', elem: 'string', values: ['a', 'b"'] } },
      { key: 't.nested', value: { type: 'array', elem: 'array', values: [{ type: 'array', elem: 'i32', values: [1, -2] }, { type: 'array', elem: 'bool', values: [false] }] } },
      { key: 't.long', value: { type: 'array', elem: 'f32', values: Array.from({ length: 1000 }, (_, i) => i) } },
      { key: 't.tokens', value: { type: 'array', elem: 'string', values: Array.from({ length: 70 }, (_, i) => `tok${i}`) } },
    ];
    const tensors: GgufTensor[] = [
      { name: 'a', shape: [2, 32], type: 'Q8_0', data: encodeAs('Q8_0', Array.from({ length: 64 }, (_, i) => i / 64)) },
      { name: 'b', shape: [3], type: 'F32', data: encode('F32', [1, 2, 3]) },
    ];
    for (const version of [2, 3]) {
      const f = at(`meta-v${version}.gguf`);
      writeGguf(f, { version, alignment: 64, kv, tensors });
      const h = await inspectModel(f);
      expect(h.files[0].metadata).toEqual({
        'general.architecture': 'mystery', 'general.alignment': '64', 't.u8': '255', 't.i8': '-128', 't.u16': '65535', 't.i16': '-32768',
        't.u32': '4294967295', 't.i32': '-2147483648', 't.f32': '0.1', 't.bool': 'true', 't.string': 'héllo "q"',
        't.u64': '18446744073709551615', 't.i64': '-9223372036854775808', 't.f64': '-2.5e-300',
        't.array': '["a","b\\""]', 't.nested': '[[1,-2],[false]]', 't.long': '[1000 x f32]', 't.tokens': '[70 x string]',
      });
      expect(h.tensors.map((t) => [t.name, t.dtype, t.shape, t.offset % 64])).toEqual([['a', 'Q8_0', [2, 32], 0], ['b', 'F32', [3], 0]]);
      const s = await scanModel(f, { backend: 'cpu' });
      expect(s.tensors[1].mean).toBe(2);
    }
  });

  test('types without statistics (IQ*, TQ*, Q8_K, integers) are listed with null statistics; F64 and BF16 have them', async () => {
    const types = ['IQ2_XXS', 'IQ2_XS', 'IQ3_XXS', 'IQ1_S', 'IQ4_NL', 'IQ3_S', 'IQ2_S', 'IQ4_XS', 'IQ1_M', 'TQ1_0', 'TQ2_0', 'Q8_1', 'Q8_K', 'I8', 'I16', 'I32', 'I64'];
    const { GGML_TYPES } = await import('./helpers/gguf');
    const tensors: GgufTensor[] = types.map((t) => ({ name: t.toLowerCase(), shape: [2, 256], type: t, data: new Uint8Array((512 / GGML_TYPES[t].elems) * GGML_TYPES[t].bytes).fill(1) }));
    tensors.push({ name: 'f64', shape: [4], type: 'F64', data: encode('F64', [1, 2, 3, 4]) });
    tensors.push({ name: 'bf16', shape: [4], type: 'BF16', data: encode('BF16', [1, 2, 3, 4]) });
    const f = at('left-out.gguf');
    writeGguf(f, { tensors });
    const s = await scanModel(f, { backend: 'cpu' });
    for (const t of s.tensors.slice(0, types.length)) {
      expect({ name: t.name, dtype: t.dtype, count: t.count, mean: t.mean }).toEqual({ name: t.name, dtype: t.name.toUpperCase(), count: 512, mean: null });
    }
    expect(s.tensors.slice(types.length).map((t) => [t.dtype, t.mean])).toEqual([['F64', 2.5], ['BF16', 2.5]]);
  });

  test('a file named otherwise is still read by its magic; formatOf says gguf', async () => {
    const f = at('renamed.bin');
    writeGguf(f, { tensors: [{ name: 'w', shape: [32], type: 'Q8_0', data: encodeAs('Q8_0', Array.from({ length: 32 }, (_, i) => i)) }] });
    const { native } = await import('../lib/core/binding');
    expect(native().formatOf(f)).toBe('gguf');
    expect(native().formatOf(at('tiny.safetensors'))).toBe('safetensors');
    expect((await inspectModel(f)).tensors[0].name).toBe('w');
  });
});
