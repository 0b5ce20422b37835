// The ONNX reader end to end: files written by the test's own protobuf encoder
// (test/helpers/onnx.ts), read through inspectModel / scanModel / pairwiseStats / the CLI, and
// the statistics checked against the independent float64 reference. Every storage ONNX has:
// raw_data, each typed field packed and unpacked, external data files, Constant nodes in the
// main graph and in If / Loop / Scan subgraphs; the tensors left out and why; the cap on
// decoded copies; and mutated files (truncations, bit flips) that must fail cleanly.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { discoverModels, inspectModel, MotherError, pairwiseStats, scanModel } from '../lib';
import { inputErrorCodes } from '../lib/core/binding';
import { close, refStats, Rng } from './helpers/reference';
import { AT, constant, DT, GraphSpec, NodeSpec, onnxModel, TensorSpec, u16s } from './helpers/onnx';
import { decode, encode, FloatDtype, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'bin', 'mother.js');
const INPUT_ERROR_CODES = inputErrorCodes();

let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir('mother-onnx-');
});
afterAll(() => tmp.cleanup());

function write(rel: string, bytes: Uint8Array): string {
  const p = path.join(tmp.dir, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, bytes);
  return p;
}

/** Values of `dtype` (exactly representable: encoded, then decoded back). */
function values(rng: Rng, dtype: FloatDtype, n: number, scale = 0.05): { bytes: Uint8Array; exact: Float64Array } {
  const bytes = encode(dtype, Array.from({ length: n }, () => scale * rng.normal()));
  return { bytes, exact: decode(dtype, bytes) };
}

const ONNX_DT: Record<FloatDtype, number> = {
  F32: DT.FLOAT, F16: DT.FLOAT16, BF16: DT.BFLOAT16, F64: DT.DOUBLE, F8_E4M3: DT.FLOAT8E4M3FN, F8_E4M3FNUZ: DT.FLOAT8E4M3FNUZ,
  F8_E5M2: DT.FLOAT8E5M2, F8_E5M2FNUZ: DT.FLOAT8E5M2FNUZ, F8_E8M0: DT.FLOAT8E8M0,
};

/** Checks every float tensor's statistics against the reference computed on `expected`. */
async function expectStats(file: string, expected: Map<string, Float64Array>): Promise<void> {
  const s = await scanModel(file, { threads: 2 });
  for (const [name, x] of expected) {
    const t = s.tensors.find((u) => u.name === name);
    if (!t) throw new Error(`tensor ${name} missing from the scan of ${file}`);
    expect({ name, count: t.count }).toEqual({ name, count: x.length });
    if (x.length === 0) {
      expect(t.mean).toBeNull();
      continue;
    }
    const ref = refStats(x);
    const ok = (a: number | null, b: number, rel: number, floor = 0) => a !== null && close(a, b, rel, floor);
    const report = { name, mean: [t.mean, ref.mean], std: [t.std, ref.std], kurtosis: [t.kurtosis, ref.kurtosis] };
    if (!(ok(t.mean, ref.mean, 1e-9, 1e-6 * ref.absMean) && ok(t.std, ref.std, 1e-9) && t.min === ref.min && t.max === ref.max))
      throw new Error(`statistics differ: ${JSON.stringify(report)}`);
    if (x.length > 2 && Number.isFinite(ref.kurtosis) && !ok(t.kurtosis, ref.kurtosis, 1e-9, 1e-4))
      throw new Error(`kurtosis differs: ${JSON.stringify(report)}`);
    expect(t.nan).toBe(ref.nan);
  }
}

describe('ONNX: raw_data', () => {
  test('every dtype mother reads: names, dtypes, shapes, viewed in place; float statistics match the reference', async () => {
    const rng = new Rng(11);
    const inits: TensorSpec[] = [];
    const expected = new Map<string, Float64Array>();
    const want: { name: string; dtype: string; shape: number[] }[] = [];
    for (const dt of Object.keys(ONNX_DT) as FloatDtype[]) {
      const v = values(rng, dt, 6 * 7, dt.startsWith('F8') ? 1 : 0.05);
      inits.push({ name: `w.${dt}`, dataType: ONNX_DT[dt], dims: [6, 7], raw: v.bytes });
      expected.set(`w.${dt}`, v.exact);
      want.push({ name: `w.${dt}`, dtype: dt, shape: [6, 7] });
    }
    const ints: [string, number, string, number][] = [
      ['u8', DT.UINT8, 'U8', 1], ['i8', DT.INT8, 'I8', 1], ['u16', DT.UINT16, 'U16', 2], ['i16', DT.INT16, 'I16', 2],
      ['i32', DT.INT32, 'I32', 4], ['i64', DT.INT64, 'I64', 8], ['u32', DT.UINT32, 'U32', 4], ['u64', DT.UINT64, 'U64', 8],
      ['b', DT.BOOL, 'BOOL', 1], ['c64', DT.COMPLEX64, 'C64', 8],
    ];
    for (const [name, dt, mdt, size] of ints) {
      inits.push({ name, dataType: dt, dims: [3], raw: new Uint8Array(3 * size).fill(1) });
      want.push({ name, dtype: mdt, shape: [3] });
    }
    inits.push({ name: 'f4', dataType: DT.FLOAT4E2M1, dims: [2, 3], raw: new Uint8Array([0x12, 0x34, 0x56]) });
    want.push({ name: 'f4', dtype: 'F4', shape: [2, 3] });
    inits.push({ name: 'scalar', dataType: DT.FLOAT, dims: [], raw: encode('F32', [2.5]) });
    expected.set('scalar', new Float64Array([2.5]));
    want.push({ name: 'scalar', dtype: 'F32', shape: [] });
    inits.push({ name: 'empty', dataType: DT.FLOAT, dims: [0, 4] });
    expected.set('empty', new Float64Array(0));
    want.push({ name: 'empty', dtype: 'F32', shape: [0, 4] });
    const bytes = onnxModel({ initializers: inits });
    const file = write('raw/model.onnx', bytes);

    const h = await inspectModel(file);
    expect(h.files.map((f) => f.path)).toEqual([file]);
    expect(h.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }))).toEqual(want);
    // in place: each tensor's bytes are its raw_data payload inside the file
    for (const t of h.tensors) {
      expect(t.decoded ?? false).toBe(false);
      const spec = inits.find((s) => s.name === t.name)!;
      if (spec.raw) expect(Buffer.compare(bytes.subarray(t.offset, t.offset + t.bytes), Buffer.from(spec.raw))).toBe(0);
    }
    expect(h.files[0].metadata).toMatchObject({ 'onnx.ir_version': '8', 'onnx.producer_name': 'mother-test', 'onnx.opset.ai.onnx': '17' });
    await expectStats(file, expected);
    const s = await scanModel(file);
    for (const name of ['u8', 'i64', 'b', 'c64', 'f4']) expect(s.tensors.find((t) => t.name === name)!.mean).toBeNull();
  });
});

describe('ONNX: typed fields', () => {
  const rng = new Rng(12);
  const f32 = values(rng, 'F32', 20);
  const f64 = values(rng, 'F64', 9);
  const f16 = values(rng, 'F16', 12);
  const bf16 = values(rng, 'BF16', 10);
  const e4m3 = values(rng, 'F8_E4M3', 16, 1);
  const e5m2 = values(rng, 'F8_E5M2FNUZ', 8, 1);
  const e8m0 = values(rng, 'F8_E8M0', 8, 1);

  function typedModel(packed: boolean): { bytes: Buffer; expected: Map<string, Float64Array> } {
    const inits: TensorSpec[] = [
      { name: 'float_data', dataType: DT.FLOAT, dims: [4, 5], floatData: [...f32.exact], packed },
      { name: 'double_data', dataType: DT.DOUBLE, dims: [9], doubleData: [...f64.exact], packed },
      { name: 'f16_in_int32_data', dataType: DT.FLOAT16, dims: [3, 4], int32Data: u16s(f16.bytes), packed },
      { name: 'bf16_in_int32_data', dataType: DT.BFLOAT16, dims: [10], int32Data: u16s(bf16.bytes), packed },
      { name: 'e4m3_in_int32_data', dataType: DT.FLOAT8E4M3FN, dims: [16], int32Data: [...e4m3.bytes], packed },
      { name: 'e5m2fnuz_in_int32_data', dataType: DT.FLOAT8E5M2FNUZ, dims: [8], int32Data: [...e5m2.bytes], packed },
      { name: 'e8m0_in_int32_data', dataType: DT.FLOAT8E8M0, dims: [8], int32Data: [...e8m0.bytes], packed },
      { name: 'int8', dataType: DT.INT8, dims: [4], int32Data: [-128, -1, 0, 127], packed },
      { name: 'uint8', dataType: DT.UINT8, dims: [2], int32Data: [0, 255], packed },
      { name: 'int16', dataType: DT.INT16, dims: [2], int32Data: [-32768, 32767], packed },
      { name: 'uint16', dataType: DT.UINT16, dims: [2], int32Data: [0, 65535], packed },
      { name: 'int32', dataType: DT.INT32, dims: [3], int32Data: [-2147483648, -5, 2147483647], packed },
      { name: 'bool', dataType: DT.BOOL, dims: [3], int32Data: [1, 0, 1], packed },
      { name: 'f4_pairs', dataType: DT.FLOAT4E2M1, dims: [4], int32Data: [0x21, 0xf3], packed },
      { name: 'int64', dataType: DT.INT64, dims: [3], int64Data: [-(2n ** 63n), -1, 2n ** 63n - 1n], packed },
      { name: 'uint32', dataType: DT.UINT32, dims: [2], uint64Data: [0, 4294967295], packed },
      { name: 'uint64', dataType: DT.UINT64, dims: [2], uint64Data: [0, 2n ** 64n - 1n], packed },
      { name: 'complex64', dataType: DT.COMPLEX64, dims: [2], floatData: [1, 2, 3, 4], packed },
    ];
    const expected = new Map<string, Float64Array>([
      ['float_data', f32.exact], ['double_data', f64.exact], ['f16_in_int32_data', f16.exact], ['bf16_in_int32_data', bf16.exact],
      ['e4m3_in_int32_data', e4m3.exact], ['e5m2fnuz_in_int32_data', e5m2.exact], ['e8m0_in_int32_data', e8m0.exact],
    ]);
    return { bytes: onnxModel({ initializers: inits }), expected };
  }

  test.each([
    ['packed', true],
    ['unpacked (one record per value)', false],
  ])('%s: dtypes, shapes and float statistics match the reference', async (label, packed) => {
    const { bytes, expected } = typedModel(packed);
    const file = write(`typed-${packed ? 'packed' : 'unpacked'}.onnx`, bytes);
    const h = await inspectModel(file);
    const dtypes = Object.fromEntries(h.tensors.map((t) => [t.name, `${t.dtype} [${t.shape.join(',')}]`]));
    expect(dtypes).toEqual({
      float_data: 'F32 [4,5]', double_data: 'F64 [9]', f16_in_int32_data: 'F16 [3,4]', bf16_in_int32_data: 'BF16 [10]',
      e4m3_in_int32_data: 'F8_E4M3 [16]', e5m2fnuz_in_int32_data: 'F8_E5M2FNUZ [8]', e8m0_in_int32_data: 'F8_E8M0 [8]',
      int8: 'I8 [4]', uint8: 'U8 [2]', int16: 'I16 [2]', uint16: 'U16 [2]', int32: 'I32 [3]', bool: 'BOOL [3]', f4_pairs: 'F4 [4]',
      int64: 'I64 [3]', uint32: 'U32 [2]', uint64: 'U64 [2]', complex64: 'C64 [2]',
    });
    // one packed float/double record is the array itself: viewed in place; everything else decoded
    const decodedNames = h.tensors.filter((t) => t.decoded).map((t) => t.name).sort();
    const inPlace = packed ? ['complex64', 'double_data', 'float_data'] : [];
    expect(decodedNames).toEqual(h.tensors.map((t) => t.name).filter((n) => !inPlace.includes(n)).sort());
    for (const t of h.tensors) expect({ name: t.name, bytes: t.bytes }).toEqual({ name: t.name, bytes: { F32: 4, F64: 8, F16: 2, BF16: 2, I8: 1, U8: 1, I16: 2, U16: 2, I32: 4, BOOL: 1, I64: 8, U32: 4, U64: 8, C64: 8, F4: 0.5 }[t.dtype.startsWith('F8') ? 'U8' : t.dtype]! * t.shape.reduce((a, b) => a * b, 1) });
    await expectStats(file, expected);
    void label;
  });

  test('decoded values are the values written: a typed-field model and its raw_data twin are at distance 0', async () => {
    const { bytes } = typedModel(false);
    const typed = write('twin/typed.onnx', bytes);
    const rawInits: TensorSpec[] = [
      { name: 'float_data', dataType: DT.FLOAT, dims: [4, 5], raw: encode('F32', f32.exact) },
      { name: 'double_data', dataType: DT.DOUBLE, dims: [9], raw: encode('F64', f64.exact) },
      { name: 'f16_in_int32_data', dataType: DT.FLOAT16, dims: [3, 4], raw: f16.bytes },
      { name: 'bf16_in_int32_data', dataType: DT.BFLOAT16, dims: [10], raw: bf16.bytes },
      { name: 'e4m3_in_int32_data', dataType: DT.FLOAT8E4M3FN, dims: [16], raw: e4m3.bytes },
      { name: 'e5m2fnuz_in_int32_data', dataType: DT.FLOAT8E5M2FNUZ, dims: [8], raw: e5m2.bytes },
      { name: 'e8m0_in_int32_data', dataType: DT.FLOAT8E8M0, dims: [8], raw: e8m0.bytes },
    ];
    const raw = write('twin/raw.onnx', onnxModel({ initializers: rawInits }));
    const sfile = path.join(tmp.dir, 'twin', 'model.safetensors');
    writeSafetensors(sfile, [
      { name: 'float_data', dtype: 'F32', shape: [4, 5], data: encode('F32', f32.exact) },
      { name: 'f16_in_int32_data', dtype: 'F16', shape: [3, 4], data: f16.bytes },
      { name: 'bf16_in_int32_data', dtype: 'BF16', shape: [10], data: bf16.bytes },
    ]);
    const d = await pairwiseStats([typed, raw, sfile], { metrics: ['rms', 'maxdiff'] });
    const compared = d.layers.map((l) => l.name).sort();
    expect(compared).toEqual(expect.arrayContaining(['bf16_in_int32_data', 'f16_in_int32_data', 'float_data']));
    for (const l of d.layers) {
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 3; j++) {
          const [rms, maxDiff] = [l.rms[i * 3 + j], l.maxDiff[i * 3 + j]];
          if (!Number.isNaN(rms)) expect({ layer: l.name, i, j, rms, maxDiff: Math.abs(maxDiff) }).toEqual({ layer: l.name, i, j, rms: 0, maxDiff: 0 });
        }
      expect(l.count[0 * 3 + 1]).toBeGreaterThan(0);
    }
    expect(d.aggregates.meanRms[1]).toBe(0);
    expect(d.aggregates.meanRms[2]).toBe(0);
  });
});

describe('ONNX: Constant nodes and subgraphs', () => {
  test('value, value_float(s), value_int(s); in If branches, Loop and Scan bodies, GRAPHS attributes, nested; named by their outputs', async () => {
    const rng = new Rng(13);
    const a = values(rng, 'F32', 12);
    const b = values(rng, 'F16', 6);
    const c = values(rng, 'BF16', 8);
    const d = values(rng, 'F32', 5);
    const e = values(rng, 'F16', 4);
    const thenBranch: GraphSpec = {
      name: 'then',
      nodes: [constant('/If/then/Constant_output_0', { dataType: DT.FLOAT16, dims: [2, 3], int32Data: u16s(b.bytes) })],
      initializers: [{ name: 'then.init', dataType: DT.FLOAT, dims: [5], floatData: [...d.exact] }],
    };
    const elseBranch: GraphSpec = {
      name: 'else',
      nodes: [{ op: 'Constant', outputs: ['else.scalar'], attrs: [{ name: 'value_float', type: AT.FLOAT, f: 0.375 }] }],
    };
    const innerIf: NodeSpec = {
      op: 'If', inputs: ['cond'], outputs: ['y'],
      attrs: [
        { name: 'then_branch', type: AT.GRAPH, g: { nodes: [constant('deep.const', { dataType: DT.FLOAT16, dims: [4], raw: e.bytes })] } },
        { name: 'else_branch', type: AT.GRAPH, g: { nodes: [] } },
      ],
    };
    const loopBody: GraphSpec = {
      name: 'body',
      nodes: [constant('loop.weight', { dataType: DT.BFLOAT16, dims: [2, 4], raw: c.bytes }), innerIf,
        { op: 'Constant', outputs: ['loop.ints'], attrs: [{ name: 'value_ints', type: AT.INTS, ints: [1, -2, 3] }] }],
    };
    const scanBody: GraphSpec = {
      nodes: [{ op: 'Constant', outputs: ['scan.floats'], attrs: [{ name: 'value_floats', type: AT.FLOATS, floats: [0.5, -1.5, 2] }] }],
    };
    const graph: GraphSpec = {
      nodes: [
        constant('main.const', { dataType: DT.FLOAT, dims: [3, 4], raw: encode('F32', a.exact), name: 'ignored-name' }),
        { op: 'Constant', outputs: ['main.int'], attrs: [{ name: 'value_int', type: AT.INT, i: -7 }] },
        { op: 'If', inputs: ['c'], outputs: ['o'], attrs: [{ name: 'then_branch', type: AT.GRAPH, g: thenBranch }, { name: 'else_branch', type: AT.GRAPH, g: elseBranch }] },
        { op: 'Loop', inputs: ['M', 'cond'], outputs: ['l'], attrs: [{ name: 'body', type: AT.GRAPH, g: loopBody }] },
        { op: 'Scan', inputs: ['x'], outputs: ['s'], attrs: [{ name: 'body', type: AT.GRAPH, g: scanBody }, { name: 'num_scan_inputs', type: AT.INT, i: 1 }] },
        { op: 'MultiBranch', domain: 'com.example', outputs: ['m'], attrs: [{ name: 'branches', type: AT.GRAPHS, graphs: [
          { nodes: [constant('graphs.0', { dataType: DT.FLOAT, dims: [1], floatData: [4] })] },
          { nodes: [constant('graphs.1', { dataType: DT.FLOAT, dims: [1], floatData: [-4] })] },
        ] }] },
        // not ONNX's Constant: a custom domain's op of that name holds no weights
        { op: 'Constant', domain: 'com.example', outputs: ['custom'], attrs: [{ name: 'value', type: AT.TENSOR, t: { dataType: DT.FLOAT, dims: [1], floatData: [1] } }] },
        // a TENSOR attribute of another op is not a weight either
        { op: 'ConstantOfShape', inputs: ['shape'], outputs: ['zeros'], attrs: [{ name: 'value', type: AT.TENSOR, t: { dataType: DT.FLOAT, dims: [1], floatData: [0] } }] },
      ],
      initializers: [{ name: 'main.init', dataType: DT.FLOAT, dims: [2], raw: encode('F32', [1, 2]) }],
    };
    const file = write('constants.onnx', onnxModel(graph));
    const h = await inspectModel(file);
    expect(h.tensors.map((t) => `${t.name} ${t.dtype} [${t.shape.join(',')}]`)).toEqual([
      'main.const F32 [3,4]',
      'main.int I64 []',
      '/If/then/Constant_output_0 F16 [2,3]',
      'then.init F32 [5]',
      'else.scalar F32 []',
      'loop.weight BF16 [2,4]',
      'deep.const F16 [4]',
      'loop.ints I64 [3]',
      'scan.floats F32 [3]',
      'graphs.0 F32 [1]',
      'graphs.1 F32 [1]',
      'main.init F32 [2]',
    ]);
    expect(h.files[0].metadata).toMatchObject({ 'onnx.initializers': '2', 'onnx.constants': '10' });
    await expectStats(file, new Map([
      ['main.const', a.exact], ['/If/then/Constant_output_0', b.exact], ['then.init', d.exact], ['else.scalar', new Float64Array([0.375])],
      ['loop.weight', c.exact], ['deep.const', e.exact], ['scan.floats', new Float64Array([0.5, -1.5, 2])],
      ['graphs.0', new Float64Array([4])], ['graphs.1', new Float64Array([-4])], ['main.init', new Float64Array([1, 2])],
    ]));
  });

  test('proto3 writers leave zero values out: value_float without f is 0, value_ints without ints is empty', async () => {
    const file = write('proto3-zero.onnx', onnxModel({
      nodes: [
        { op: 'Constant', outputs: ['zero'], attrs: [{ name: 'value_float', type: AT.FLOAT }] },
        { op: 'Constant', outputs: ['none'], attrs: [{ name: 'value_ints', type: AT.INTS }] },
      ],
    }));
    const s = await scanModel(file);
    expect(s.tensors.map((t) => [t.name, t.dtype, t.shape, t.mean])).toEqual([['zero', 'F32', [], 0], ['none', 'I64', [0], null]]);
  });
});

describe('ONNX: external data', () => {
  test('files next to the model (and in a subfolder), offsets, shared files, no length: mapped there, same statistics as raw_data', async () => {
    const rng = new Rng(14);
    const w1 = values(rng, 'F32', 64 * 3);
    const w2 = values(rng, 'F16', 100);
    const w3 = values(rng, 'BF16', 33);
    const dir = path.join(tmp.dir, 'external');
    fs.mkdirSync(path.join(dir, 'weights'), { recursive: true });
    // one file holding two tensors at 4096-aligned offsets, as onnx's save_model(..., align) writes
    const blob = Buffer.alloc(4096 + w2.bytes.length);
    Buffer.from(w1.bytes).copy(blob, 0);
    Buffer.from(w2.bytes).copy(blob, 4096);
    fs.writeFileSync(path.join(dir, 'model.onnx.data'), blob);
    fs.writeFileSync(path.join(dir, 'weights', 'w3.bin'), Buffer.concat([Buffer.alloc(3), w3.bytes]));
    const file = path.join(dir, 'model.onnx');
    fs.writeFileSync(file, onnxModel({
      initializers: [
        { name: 'w1', dataType: DT.FLOAT, dims: [64, 3], external: [['location', 'model.onnx.data'], ['offset', '0'], ['length', String(w1.bytes.length)]] },
        { name: 'w2', dataType: DT.FLOAT16, dims: [10, 10], external: [['location', 'model.onnx.data'], ['offset', '4096'], ['length', '200'], ['checksum', 'ignored']] },
        { name: 'w3', dataType: DT.BFLOAT16, dims: [33], external: [['location', 'weights/w3.bin'], ['offset', '3']] },
        { name: 'inline', dataType: DT.FLOAT, dims: [2], raw: encode('F32', [5, 6]) },
      ],
      nodes: [constant('ext.const', { dataType: DT.FLOAT16, dims: [100], external: [['location', 'model.onnx.data'], ['offset', '4096'], ['length', '200']] })],
    }));
    const h = await inspectModel(file);
    expect(h.files.map((f) => path.relative(dir, f.path))).toEqual(['model.onnx', 'model.onnx.data', 'weights/w3.bin']);
    const where = Object.fromEntries(h.tensors.map((t) => [t.name, [path.relative(dir, t.file), t.offset, t.bytes]]));
    expect(where).toMatchObject({
      w1: ['model.onnx.data', 0, 768], w2: ['model.onnx.data', 4096, 200], w3: ['weights/w3.bin', 3, 66], 'ext.const': ['model.onnx.data', 4096, 200],
    });
    expect(where.inline[0]).toBe('model.onnx');
    await expectStats(file, new Map([['w1', w1.exact], ['w2', w2.exact], ['w3', w3.exact], ['ext.const', w2.exact], ['inline', new Float64Array([5, 6])]]));
    // the folder is a model too: mother stats DIR finds model.onnx
    const s = await scanModel(dir);
    expect(s.files[0]).toBe(file);
  });
});

describe('ONNX: what is left out, and the model metadata', () => {
  test('STRING, COMPLEX128, INT4, odd FLOAT4E2M1, segments, sparse initializers and string Constants are listed in the metadata with the reason', async () => {
    const file = write('skipped.onnx', onnxModel({
      initializers: [
        { name: 'strings', dataType: DT.STRING, dims: [2], stringData: ['a', 'b'] },
        { name: 'c128', dataType: DT.COMPLEX128, dims: [1], doubleData: [1, 2] },
        { name: 'int4', dataType: DT.INT4, dims: [3], raw: new Uint8Array([0x12, 0x03]) },
        { name: 'f4.odd', dataType: DT.FLOAT4E2M1, dims: [3], raw: new Uint8Array([0x12, 0x03]) },
        { name: 'segmented', dataType: DT.FLOAT, dims: [2], segment: [0, 2], floatData: [1, 2] },
        { name: 'kept', dataType: DT.FLOAT, dims: [1], floatData: [1] },
      ],
      sparse: [{ values: { name: 'sparse.w', dataType: DT.FLOAT, dims: [1], floatData: [3] }, indices: { dataType: DT.INT64, dims: [1], int64Data: [2] }, dims: [4] }],
      nodes: [{ op: 'Constant', outputs: ['label'], attrs: [{ name: 'value_string', type: AT.STRING, s: 'cat' }] }],
    }, { metadata: [['author', 'someone'], ['license', 'MIT']] }));
    const h = await inspectModel(file);
    expect(h.tensors.map((t) => t.name)).toEqual(['kept']);
    const meta = h.files[0].metadata;
    expect(meta).toMatchObject({ author: 'someone', license: 'MIT' });
    const skipped = Object.fromEntries(Object.entries(meta).filter(([k]) => k.startsWith('onnx.skipped.')));
    expect(Object.keys(skipped).sort()).toEqual(
      ['c128', 'f4.odd', 'int4', 'label', 'segmented', 'sparse.w', 'strings'].map((n) => `onnx.skipped.${n}`).sort(),
    );
    expect(skipped['onnx.skipped.strings']).toMatch(/STRING: strings are not weights/);
    expect(skipped['onnx.skipped.c128']).toMatch(/COMPLEX128/);
    expect(skipped['onnx.skipped.int4']).toMatch(/4-bit integers/);
    expect(skipped['onnx.skipped.segmented']).toMatch(/segment/);
    expect(skipped['onnx.skipped.sparse.w']).toMatch(/sparse/);
  });

  test('decoded copies are capped at 256 MiB per file: ERR_ONNX_DECODE_LIMIT names the tensor that crosses it', async () => {
    // 2^25 + 1 INT64 zeros as one-byte varints: 32 MiB in the file, 256 MiB + 8 bytes decoded
    const n = 2 ** 25 + 1;
    const payload = Buffer.alloc(n); // every byte 0x00: n varints of value 0
    const { fLen, fVarint, fString } = await import('./helpers/onnx');
    const tensor = Buffer.concat([fVarint(1, n), fVarint(2, DT.INT64), fLen(7, payload), fString(8, 'ids')]);
    const graph = Buffer.concat([fLen(5, tensor)]);
    const file = write('decode-limit.onnx', Buffer.concat([fVarint(1, 8), fLen(7, graph)]));
    const err = await inspectModel(file).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(MotherError);
    expect({ code: (err as MotherError).code, tensor: (err as MotherError).tensor }).toEqual({ code: 'ERR_ONNX_DECODE_LIMIT', tensor: 'ids' });
    fs.rmSync(file);
  });
});

// ---- files written by the onnx package itself (Debian's python3-onnx), when it is installed ----

const PY = '/usr/bin/python3';
const hasOnnx = spawnSync(PY, ['-c', 'import onnx, numpy'], { encoding: 'utf8' }).status === 0;
(hasOnnx ? describe : describe.skip)('ONNX files written by the onnx package (python3-onnx)', () => {
  test('raw and typed initializers, FLOAT16 in int32_data, Constants in If / Loop subgraphs, external data, QDQ-quantised weights (read dequantised): names, dtypes, shapes and statistics', async () => {
    const out = path.join(tmp.dir, 'pyonnx');
    const r = spawnSync(PY, [path.join(__dirname, 'helpers', 'make_onnx_reference.py'), out], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`make_onnx_reference.py failed: ${r.stderr}`);
    const doc = JSON.parse(fs.readFileSync(path.join(out, 'expected.json'), 'utf8')) as {
      models: { file: string; tensors: { name: string; dtype: string; shape: number[]; values: number[] | null }[]; files: string[] }[];
    };
    expect(doc.models.length).toBeGreaterThanOrEqual(2);
    for (const m of doc.models) {
      const file = path.join(out, m.file);
      const h = await inspectModel(file);
      expect(h.files.map((f) => path.relative(out, f.path))).toEqual(m.files);
      const got = h.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })).sort((x, y) => x.name.localeCompare(y.name));
      const want = m.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })).sort((x, y) => x.name.localeCompare(y.name));
      expect(got).toEqual(want);
      await expectStats(file, new Map(m.tensors.filter((t) => t.values).map((t) => [t.name, Float64Array.from(t.values!)])));
    }
  });
});
if (!hasOnnx) {
  test.skip('python3-onnx is not installed (apt-get install python3-onnx): the cross-check with files the onnx package writes is skipped', () => {});
}

// ---- the CLI and discovery ----

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('mother stats on ONNX (the compiled CLI)', () => {
  beforeAll(() => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'lib', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build:ts`');
  });
  const model = (scale: number) => onnxModel({ initializers: [{ name: 'w', dataType: DT.FLOAT, dims: [4], raw: encode('F32', [1, 2, 3, 4].map((x) => x * scale)) }] });

  test('a .onnx file, a folder holding model.onnx, an HF repo with only onnx/ (model.onnx chosen, variants named)', () => {
    const file = write('cli/one.onnx', model(1));
    const r1 = cli(['stats', file, '--json']);
    expect({ status: r1.status, stderr: r1.stderr }).toEqual({ status: 0, stderr: '' });
    const doc = JSON.parse(r1.stdout) as { files: string[]; tensors: { name: string; mean: number }[] };
    expect(doc.tensors).toEqual([expect.objectContaining({ name: 'w', mean: 2.5 })]);

    write('cli/folder/model.onnx', model(2));
    const r2 = cli(['stats', path.join(tmp.dir, 'cli/folder'), '--json']);
    expect(r2.status).toBe(0);
    expect((JSON.parse(r2.stdout) as { tensors: { mean: number }[] }).tensors[0].mean).toBe(5);

    const repo = path.join(tmp.dir, 'cli/Xenova-tiny');
    write('cli/Xenova-tiny/config.json', Buffer.from('{"architectures": ["BertModel"]}'));
    write('cli/Xenova-tiny/onnx/model.onnx', model(3));
    write('cli/Xenova-tiny/onnx/model_quantized.onnx', model(4));
    const r3 = cli(['stats', repo, '--json']);
    expect(r3.status).toBe(0);
    const d3 = JSON.parse(r3.stdout) as { files: string[]; tensors: { mean: number }[]; note?: string };
    expect(d3.files).toEqual([path.join(repo, 'onnx', 'model.onnx')]);
    expect(d3.tensors[0].mean).toBe(7.5);
    expect(r3.stderr).toMatch(/onnx\/model\.onnx/);
    expect(r3.stderr).toMatch(/model_quantized\.onnx/);
  });

  test('a repo with both safetensors and onnx/: the safetensors weights, and it says so', () => {
    const repo = path.join(tmp.dir, 'cli/both');
    fs.mkdirSync(repo, { recursive: true });
    writeSafetensors(path.join(repo, 'model.safetensors'), [{ name: 'w', dtype: 'F32', shape: [1], data: encode('F32', [9]) }]);
    write('cli/both/onnx/model.onnx', model(1));
    const r = cli(['stats', repo]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/model\.safetensors/);
    expect(r.stderr).toMatch(/onnx\/model\.onnx.*not read|not read.*onnx\/model\.onnx/);
  });

  test('discoverModels: an ONNX repo folder is one model, bare .onnx files in other folders are models, external data files are not', async () => {
    const root = path.join(tmp.dir, 'discover');
    write('discover/repo/config.json', Buffer.from('{}'));
    write('discover/repo/onnx/model.onnx', model(1));
    write('discover/repo/onnx/model_fp16.onnx', model(1));
    write('discover/exports/a.onnx', model(1));
    write('discover/exports/b.onnx', model(2));
    write('discover/exports/b.onnx.data', Buffer.alloc(16));
    write('discover/folder/model.onnx', model(3));
    write('discover/folder/model.onnx_data', Buffer.alloc(16));
    const found = await discoverModels(root);
    expect(found.map((m) => m.id)).toEqual(['exports/a.onnx', 'exports/b.onnx', 'folder', 'repo']);
  });

  test('a malformed .onnx: exit 3, one line naming the file and the problem', () => {
    const file = write('cli/bad.onnx', Buffer.from([0x3a, 0x80]));
    const r = cli(['stats', file]);
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${file}: protobuf: varint cut off`);
  });
});

// ---- mutated files: nothing may crash or hang ----

describe('mutated ONNX files never crash or hang the reader', () => {
  const rng = new Rng(15);
  const f16 = values(rng, 'F16', 6);
  const base = onnxModel({
    initializers: [
      { name: 'w', dataType: DT.FLOAT, dims: [2, 3], raw: encode('F32', [1, -2, 3.5, 0, 1e-3, -7]) },
      { name: 'h', dataType: DT.FLOAT16, dims: [6], int32Data: u16s(f16.bytes), packed: false },
      { name: 'e', dataType: DT.FLOAT, dims: [2], external: [['location', 'ext.bin'], ['offset', '4'], ['length', '8']] },
    ],
    nodes: [
      constant('c', { dataType: DT.INT64, dims: [2], int64Data: [5, -6] }),
      { op: 'If', inputs: ['x'], outputs: ['y'], attrs: [{ name: 'then_branch', type: AT.GRAPH, g: { nodes: [
        { op: 'Constant', outputs: ['sub'], attrs: [{ name: 'value_floats', type: AT.FLOATS, floats: [1, 2, 3] }] },
      ] } }] },
    ],
  }, { metadata: [['k', 'v']] });

  test('every truncation and every single-bit flip: accepted (then scanned) or rejected with an input error', async () => {
    const dir = path.join(tmp.dir, 'mutate');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'ext.bin'), Buffer.concat([Buffer.alloc(4), encode('F32', [1, 2])]));
    const target = path.join(dir, 'm.onnx');
    const inputs: [string, Buffer][] = [];
    for (let n = 0; n < base.length; n++) inputs.push([`truncate to ${n}`, base.subarray(0, n)]);
    for (let i = 0; i < base.length; i++)
      for (let b = 0; b < 8; b++) {
        const m = Buffer.from(base);
        m[i] ^= 1 << b;
        inputs.push([`flip bit ${b} of byte ${i}`, m]);
      }
    const problems: string[] = [];
    const codes = new Map<string, number>();
    let accepted = 0;
    for (const [label, bytes] of inputs) {
      fs.writeFileSync(target, bytes);
      try {
        const h = await inspectModel(target);
        const s = await scanModel(target, { threads: 1 });
        if (s.tensors.length !== h.tensors.length) problems.push(`${label}: scan ${s.tensors.length} tensors, inspect ${h.tensors.length}`);
        for (const t of h.tensors) {
          const f = h.files.find((x) => x.path === t.file)!;
          if (!t.decoded && t.offset + t.bytes > f.size) problems.push(`${label}: ${t.name} runs past its file`);
        }
        accepted++;
      } catch (e) {
        if (!(e instanceof MotherError)) problems.push(`${label}: not a MotherError: ${String(e)}`);
        else if (!INPUT_ERROR_CODES.has(e.code) && e.code !== 'ERR_FILE_OPEN') problems.push(`${label}: ${e.code}: ${e.message}`);
        else if (!e.message.startsWith(`${target}: `)) problems.push(`${label}: message does not start with the file: ${e.message}`);
        else codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      }
    }
    expect(problems).toEqual([]);
    expect(accepted).toBeGreaterThan(0);
    for (const code of ['ERR_PROTOBUF_TRUNCATED', 'ERR_PROTOBUF_LENGTH', 'ERR_PROTOBUF_TAG', 'ERR_ONNX_SCHEMA', 'ERR_ONNX_DATA_SIZE'])
      expect({ code, seen: codes.has(code) }).toEqual({ code, seen: true });
  }, 300000);
});
