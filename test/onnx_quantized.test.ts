// ONNX linear quantisation (onnxruntime's quantize_dynamic / quantize_static, onnx.quantize):
// a weight NAME stored as NAME_quantized (UINT8 or INT8) with NAME_scale and NAME_zero_point,
// per tensor or per channel, is read as one float view NAME whose values are
// (q - zero_point) x scale. Files written by the test's own protobuf encoder from float weights
// quantised here the way onnxruntime does it; the statistics, the pairwise distances to the float
// model and recover() checked against float64 references computed here.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { inspectModel, pairwiseStats, recover, scanModel } from '../lib';
import { close, refStats, Rng } from './helpers/reference';
import { DT, NodeSpec, onnxModel, TensorSpec } from './helpers/onnx';
import { decode, encode } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const CLI = path.resolve(__dirname, '..', 'bin', 'mother.js');

let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir('mother-onnxq-');
});
afterAll(() => tmp.cleanup());
const at = (rel: string) => path.join(tmp.dir, rel);
function write(rel: string, bytes: Uint8Array): string {
  fs.mkdirSync(path.dirname(at(rel)), { recursive: true });
  fs.writeFileSync(at(rel), bytes);
  return at(rel);
}

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

interface Quantised {
  kind: 'U8' | 'I8';
  /** The stored integers, one byte each. */
  q: Buffer;
  /** The scales as stored (float32 or float16 values), one per channel. */
  scale: number[];
  zero: number[];
  /** (q - zero) x scale in float64: the values mother must read. */
  deq: Float64Array;
  axis: number | null;
}

/**
 * Quantises w (row-major, `shape`) as onnxruntime does: uint8 asymmetric (rmin = min(w, 0),
 * rmax = max(w, 0), scale = (rmax - rmin) / 255, zero point round(-rmin / scale)), int8
 * symmetric (scale = 2 max|w| / 254, zero point 0, q in -127..127); per tensor (axis null) or
 * per channel along `axis`. The scale is rounded to its storage dtype before q is computed.
 */
function quantise(w: Float64Array, shape: number[], kind: 'U8' | 'I8', axis: number | null, scaleDtype: 'F32' | 'F16' = 'F32'): Quantised {
  const channels = axis === null ? 1 : shape[axis];
  const inner = axis === null ? w.length : count(shape.slice(axis + 1));
  const channel = (i: number) => (axis === null ? 0 : Math.floor(i / inner) % channels);
  const lo = new Array<number>(channels).fill(0), hi = new Array<number>(channels).fill(0);
  for (let i = 0; i < w.length; i++) {
    const c = channel(i);
    lo[c] = Math.min(lo[c], w[i]);
    hi[c] = Math.max(hi[c], w[i]);
  }
  const stored = (x: number) => decode(scaleDtype, encode(scaleDtype, [x]))[0];
  const [qmin, qmax] = kind === 'U8' ? [0, 255] : [-127, 127];
  const scale = lo.map((l, c) => stored(kind === 'U8' ? (hi[c] - l) / 255 : (2 * Math.max(-l, hi[c])) / 254));
  const zero = lo.map((l, c) => (kind === 'U8' ? Math.min(255, Math.max(0, Math.round(-l / scale[c]))) : 0));
  const q = Buffer.alloc(w.length);
  const deq = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const c = channel(i);
    const v = Math.min(qmax, Math.max(qmin, Math.round(w[i] / scale[c]) + zero[c]));
    if (kind === 'U8') q.writeUInt8(v, i);
    else q.writeInt8(v, i);
    deq[i] = (v - zero[c]) * scale[c];
  }
  return { kind, q, scale, zero, deq, axis };
}

const scaleBytes = (s: number[], dtype: 'F32' | 'F16') => Buffer.from(encode(dtype, s));
const zeroBytes = (z: number[], kind: 'U8' | 'I8') => {
  const b = Buffer.alloc(z.length);
  z.forEach((v, i) => (kind === 'U8' ? b.writeUInt8(v, i) : b.writeInt8(v, i)));
  return b;
};

/** The three initializers of a quantised weight NAME: per tensor as scalars, per channel 1-D. */
function triple(name: string, shape: number[], qt: Quantised, scaleDtype: 'F32' | 'F16' = 'F32'): TensorSpec[] {
  const dims = qt.axis === null ? [] : [qt.scale.length];
  const dt = qt.kind === 'U8' ? DT.UINT8 : DT.INT8;
  return [
    { name: `${name}_quantized`, dataType: dt, dims: shape, raw: qt.q },
    { name: `${name}_scale`, dataType: scaleDtype === 'F32' ? DT.FLOAT : DT.FLOAT16, dims, raw: scaleBytes(qt.scale, scaleDtype) },
    { name: `${name}_zero_point`, dataType: dt, dims, raw: zeroBytes(qt.zero, qt.kind) },
  ];
}

// The weights: a convolution (per channel along the output channels, axis 0; 567 elements per
// channel, so jobs and decode chunks start inside channels) and a MatMul B matrix (per column,
// axis 1: every element a different channel from its neighbour); 4536 and 4608 elements, more
// than one 4096-byte scan job each.
const CONV = [8, 7, 9, 9];
const FC = [96, 48];
const rng = new Rng(41);
const f32 = (xs: number[]) => decode('F32', encode('F32', xs));
const gauss = (n: number, s: number) => f32(Array.from({ length: n }, () => s * rng.normal()));
// per-channel spreads that differ, as in trained weights, and one outlier
const convW = f32(Array.from(gauss(count(CONV), 0.05), (x, i) => (i === 100 ? 0.9 : x * (1 + Math.floor(i / 567)))));
const fcW = f32(Array.from(gauss(count(FC), 0.1), (x, i) => x * (0.5 + (i % 48) / 24)));
const convB = gauss(8, 0.01);
const fcB = gauss(48, 0.01);
const otherConv = gauss(count(CONV), 0.05);
const otherFc = gauss(count(FC), 0.1);

function floatModel(conv: Float64Array, fc: Float64Array): Buffer {
  return onnxModel({
    nodes: [
      { op: 'Conv', inputs: ['x', 'conv.weight', 'conv.bias'], outputs: ['h'] },
      { op: 'MatMul', inputs: ['h', 'fc.weight'], outputs: ['y0'] },
      { op: 'Add', inputs: ['y0', 'fc.bias'], outputs: ['y'] },
    ],
    initializers: [
      { name: 'conv.weight', dataType: DT.FLOAT, dims: CONV, raw: encode('F32', Array.from(conv)) },
      { name: 'conv.bias', dataType: DT.FLOAT, dims: [8], raw: encode('F32', Array.from(convB)) },
      { name: 'fc.weight', dataType: DT.FLOAT, dims: FC, raw: encode('F32', Array.from(fc)) },
      { name: 'fc.bias', dataType: DT.FLOAT, dims: [48], raw: encode('F32', Array.from(fcB)) },
    ],
  });
}

/** onnxruntime's QOperator form (quantize_dynamic): ConvInteger and MatMulInteger consume the weights. */
function qoperatorNodes(): NodeSpec[] {
  return [
    { op: 'DynamicQuantizeLinear', inputs: ['x'], outputs: ['x_quantized', 'x_scale', 'x_zero_point'] },
    { op: 'ConvInteger', inputs: ['x_quantized', 'conv.weight_quantized', 'x_zero_point', 'conv.weight_zero_point'], outputs: ['h_int'] },
    { op: 'Mul', inputs: ['x_scale', 'conv.weight_scale'], outputs: ['h_scale'] },
    { op: 'DynamicQuantizeLinear', inputs: ['h'], outputs: ['h_quantized', 'h_scale2', 'h_zero_point'] },
    { op: 'MatMulInteger', inputs: ['h_quantized', 'fc.weight_quantized', 'h_zero_point', 'fc.weight_zero_point'], outputs: ['y_int'] },
  ];
}

/** The QDQ form (quantize_static): DequantizeLinear nodes, conv with axis = 0, fc with the default axis (1). */
function qdqNodes(axisZeroOmitted: boolean): NodeSpec[] {
  return [
    { op: 'DequantizeLinear', inputs: ['conv.weight_quantized', 'conv.weight_scale', 'conv.weight_zero_point'], outputs: ['conv.weight_dq'],
      // proto3 writers leave i out when it is 0
      attrs: [axisZeroOmitted ? { name: 'axis', type: 2 } : { name: 'axis', type: 2, i: 0 }] },
    { op: 'DequantizeLinear', inputs: ['fc.weight_quantized', 'fc.weight_scale', 'fc.weight_zero_point'], outputs: ['fc.weight_dq'] },
  ];
}

const biases: TensorSpec[] = [
  { name: 'conv.bias', dataType: DT.FLOAT, dims: [8], raw: encode('F32', Array.from(convB)) },
  { name: 'fc.bias', dataType: DT.FLOAT, dims: [48], raw: encode('F32', Array.from(fcB)) },
];

interface Variant {
  file: string;
  conv: Quantised;
  fc: Quantised;
  dtype: 'QUINT8' | 'QINT8';
}
const variants: Variant[] = [];
let floatFile = '';
let otherFile = '';

beforeAll(() => {
  floatFile = write('float.onnx', floatModel(convW, fcW));
  otherFile = write('other.onnx', floatModel(otherConv, otherFc));
  // uint8 per tensor, QOperator (quantize_dynamic's default)
  {
    const conv = quantise(convW, CONV, 'U8', null), fc = quantise(fcW, FC, 'U8', null);
    const file = write('u8-tensor.onnx', onnxModel({ nodes: qoperatorNodes(), initializers: [...triple('conv.weight', CONV, conv), biases[0], ...triple('fc.weight', FC, fc), biases[1]] }));
    variants.push({ file, conv, fc, dtype: 'QUINT8' });
  }
  // uint8 per channel, QOperator: the axes from ConvInteger (0) and MatMulInteger (1)
  {
    const conv = quantise(convW, CONV, 'U8', 0), fc = quantise(fcW, FC, 'U8', 1);
    const file = write('u8-channel.onnx', onnxModel({ nodes: qoperatorNodes(), initializers: [...triple('conv.weight', CONV, conv), biases[0], ...triple('fc.weight', FC, fc), biases[1]] }));
    variants.push({ file, conv, fc, dtype: 'QUINT8' });
  }
  // int8 symmetric per channel, QDQ, FLOAT16 scales, the axis-0 attribute written without its value
  {
    const conv = quantise(convW, CONV, 'I8', 0, 'F16'), fc = quantise(fcW, FC, 'I8', 1, 'F16');
    const file = write('i8-channel-qdq.onnx', onnxModel({ nodes: qdqNodes(true), initializers: [...triple('conv.weight', CONV, conv, 'F16'), biases[0], ...triple('fc.weight', FC, fc, 'F16'), biases[1]] }));
    variants.push({ file, conv, fc, dtype: 'QINT8' });
  }
  // int8 per tensor, QDQ, the scales and zero points (and the weights) in an external data file
  {
    const conv = quantise(convW, CONV, 'I8', null), fc = quantise(fcW, FC, 'I8', 0);
    const parts: Buffer[] = [];
    let offset = 0;
    const external = (t: TensorSpec): TensorSpec => {
      const raw = Buffer.from(t.raw!);
      const spec: TensorSpec = { ...t, raw: undefined, external: [['location', 'weights.bin'], ['offset', String(offset)], ['length', String(raw.length)]] };
      parts.push(raw);
      offset += raw.length;
      return spec;
    };
    const inits = [...triple('conv.weight', CONV, conv), biases[0], ...triple('fc.weight', FC, fc), biases[1]].map(external);
    // fc per channel along axis 0 here: DequantizeLinear says so
    const nodes = qdqNodes(false);
    nodes[1] = { ...nodes[1], attrs: [{ name: 'axis', type: 2, i: 0 }] };
    const file = write('i8-external/model.onnx', onnxModel({ nodes, initializers: inits }));
    write('i8-external/weights.bin', Buffer.concat(parts));
    variants.push({ file, conv, fc, dtype: 'QINT8' });
  }
});

describe('ONNX quantised weights: one float view per NAME_quantized, NAME_scale, NAME_zero_point', () => {
  test('inspectModel lists NAME (QUINT8 / QINT8, the quantised shape), not the scale and zero point; says where the view comes from', async () => {
    for (const v of variants) {
      const h = await inspectModel(v.file);
      expect(h.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
        ['conv.weight', v.dtype, CONV], ['conv.bias', 'F32', [8]], ['fc.weight', v.dtype, FC], ['fc.bias', 'F32', [48]],
      ]);
      const conv = h.tensors[0];
      expect(conv.dequantized).toEqual({
        data: 'conv.weight_quantized', scale: 'conv.weight_scale', zeroPoint: 'conv.weight_zero_point',
        axis: v.conv.axis, channels: v.conv.axis === null ? 1 : CONV[v.conv.axis],
        roundingRms: expect.any(Number),
      });
      // the RMS of round-to-nearest's error on the grid: sqrt(mean(scale^2) / 12)
      const ms = v.conv.scale.reduce((t, x) => t + x * x, 0) / v.conv.scale.length;
      expect(close(conv.dequantized!.roundingRms, Math.sqrt(ms / 12), 1e-12)).toBe(true);
      expect(conv.bytes).toBe(count(CONV));
      expect(h.tensors[1].dequantized).toBeUndefined();
      expect(h.files[0].metadata['onnx.dequantized']).toBe('2');
      expect(h.files[0].metadata['onnx.initializers']).toBe('8');
    }
  });

  test('scanModel: the moments of (q - zero_point) x scale, against the float64 reference, with jobs and chunks that start inside channels', async () => {
    for (const v of variants) {
      for (const chunkBytes of [4096, 16 << 20]) {
        const s = await scanModel(v.file, { threads: 2, chunkBytes });
        for (const [name, x] of [['conv.weight', v.conv.deq], ['fc.weight', v.fc.deq]] as const) {
          const t = s.tensors.find((u) => u.name === name)!;
          const ref = refStats(x);
          const report = { file: v.file, name, mean: [t.mean, ref.mean], std: [t.std, ref.std], kurtosis: [t.kurtosis, ref.kurtosis], min: [t.min, ref.min], max: [t.max, ref.max] };
          expect({ ...report, dtype: t.dtype, count: t.count }).toEqual({ ...report, dtype: v.dtype, count: x.length });
          const ok = close(t.mean!, ref.mean, 1e-9, 1e-9 * ref.absMean) && close(t.std!, ref.std, 1e-9) && close(t.skewness!, ref.skewness, 1e-7, 1e-9) &&
            close(t.kurtosis!, ref.kurtosis, 1e-7, 1e-9) && t.min === ref.min && t.max === ref.max && t.nan === 0 && t.inf === 0;
          if (!ok) throw new Error(`statistics differ: ${JSON.stringify(report)}`);
        }
      }
    }
  });

  test('pairwiseStats: NAME is compared with NAME in the float model; the RMS difference is the rounding (reference in float64, at most scale / 2)', async () => {
    for (const v of variants) {
      const d = await pairwiseStats([floatFile, v.file], { metrics: ['rms', 'maxdiff'], chunkElems: 64 });
      expect(d.layers.map((l) => l.name).sort()).toEqual(['conv.bias', 'conv.weight', 'fc.bias', 'fc.weight']);
      expect(d.alignment).toEqual([{ model: 1, method: 'name', matched: 4, tensors: 4 }]);
      expect(d.skipped).toEqual([]);
      for (const [name, w, qt] of [['conv.weight', convW, v.conv], ['fc.weight', fcW, v.fc]] as const) {
        const l = d.layers.find((u) => u.name === name)!;
        let sq = 0, maxAbs = 0;
        for (let i = 0; i < w.length; i++) {
          sq += (w[i] - qt.deq[i]) ** 2;
          maxAbs = Math.max(maxAbs, Math.abs(w[i] - qt.deq[i]));
        }
        const rms = Math.sqrt(sq / w.length);
        const half = Math.max(...qt.scale) / 2;
        expect({ file: v.file, name, rms: [l.rms[1], rms], close: close(l.rms[1], rms, 1e-12) }).toEqual({ file: v.file, name, rms: [l.rms[1], rms], close: true });
        expect(l.rms[1]).toBeLessThanOrEqual(half);
        expect(Math.abs(l.maxDiff[1])).toBeLessThanOrEqual(maxAbs);
        expect(maxAbs).toBeLessThanOrEqual(half * (1 + 1e-6));
        expect(l.rms[1]).toBeGreaterThan(0);
      }
      // the biases are stored as they are: identical
      expect(d.layers.find((u) => u.name === 'conv.bias')!.rms[1]).toBe(0);
    }
  });

  test('recover: the float model and its four quantisations are one family; an independent model of the same shapes is not in it', async () => {
    const inputs = [{ id: 'float', path: floatFile }, ...variants.map((v) => ({ id: path.relative(tmp.dir, v.file), path: v.file })), { id: 'other', path: otherFile }];
    const g = await recover(inputs, { threads: 2 });
    const fam = g.families.find((f) => f.includes('float'))!;
    expect([...fam].sort()).toEqual(inputs.slice(0, 5).map((i) => i.id).sort());
    expect(g.families.find((f) => f.includes('other'))).toEqual(['other']);
    expect(g.skipped).toEqual([]);
  });

  test('the GPU passes (device emulator) leave models with quantised views to the CPU: the same results', async () => {
    const emulator = path.resolve(__dirname, '..', 'build', 'Release', 'libmother_gpu_emulator.so');
    if (!fs.existsSync(emulator)) throw new Error('the device emulator is missing: run `npm run build:emulator`');
    const saved = process.env.MOTHER_CUDA_LIBRARY;
    process.env.MOTHER_CUDA_LIBRARY = emulator;
    try {
      const v = variants[1];
      const cpu = await scanModel(v.file, { backend: 'cpu', chunkBytes: 4096 });
      const gpu = await scanModel(v.file, { backend: 'cuda', chunkBytes: 4096 });
      expect(gpu.tensors).toEqual(cpu.tensors);
      const dc = await pairwiseStats([floatFile, v.file], { metrics: ['rms'], backend: 'cpu' });
      const dg = await pairwiseStats([floatFile, v.file], { metrics: ['rms'], backend: 'cuda' });
      expect(dg.layers.map((l) => [l.name, l.rms[1]])).toEqual(dc.layers.map((l) => [l.name, l.rms[1]]));
    } finally {
      if (saved === undefined) delete process.env.MOTHER_CUDA_LIBRARY;
      else process.env.MOTHER_CUDA_LIBRARY = saved;
    }
  });

  test('mother stats: the view with its dtype and float statistics', () => {
    const r = spawnSync(process.execPath, [CLI, 'stats', variants[1].file, '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const t = (JSON.parse(r.stdout) as { tensors: { name: string; dtype: string; mean: number | null }[] }).tensors;
    expect(t.map((x) => [x.name, x.dtype])).toEqual([['conv.weight', 'QUINT8'], ['conv.bias', 'F32'], ['fc.weight', 'QUINT8'], ['fc.bias', 'F32']]);
    expect(t[0].mean).toBeCloseTo(refStats(variants[1].conv.deq).mean, 12);
  });
});

describe('ONNX quantised weights that are left as they are', () => {
  test('no zero point: NAME_quantized stays a U8 tensor (listed, not compared), and the metadata says why', async () => {
    const conv = quantise(convW, CONV, 'U8', null);
    const [q, s] = triple('conv.weight', CONV, conv);
    const file = write('incomplete.onnx', onnxModel({ nodes: qoperatorNodes(), initializers: [q, s, biases[0]] }));
    const h = await inspectModel(file);
    expect(h.tensors.map((t) => [t.name, t.dtype])).toEqual([['conv.weight_quantized', 'U8'], ['conv.weight_scale', 'F32'], ['conv.bias', 'F32']]);
    expect(h.files[0].metadata).toMatchObject({
      'onnx.dequantized': '0',
      'onnx.not_dequantized.conv.weight_quantized': 'UINT8 weight without "conv.weight_zero_point": left as an integer tensor',
    });
    const d = await pairwiseStats([floatFile, file], { metrics: ['rms'] });
    expect(d.layers.map((l) => l.name)).toEqual(['conv.bias']);
  });

  test('a per-channel scale that no consuming node places, blocked quantisation, UINT16 weights: left as integer tensors', async () => {
    const conv = quantise(convW, CONV, 'U8', 0);
    const file = write('no-axis.onnx', onnxModel({ initializers: triple('conv.weight', CONV, conv) }));
    const h = await inspectModel(file);
    expect(h.tensors.map((t) => [t.name, t.dtype])).toEqual([['conv.weight_quantized', 'U8'], ['conv.weight_scale', 'F32'], ['conv.weight_zero_point', 'U8']]);
    expect(h.files[0].metadata['onnx.not_dequantized.conv.weight_quantized']).toMatch(/per-channel scale of 8 values, and no node .* says along which axis/);

    const blocked = write('blocked.onnx', onnxModel({
      nodes: [{ op: 'DequantizeLinear', inputs: ['conv.weight_quantized', 'conv.weight_scale', 'conv.weight_zero_point'], outputs: ['o'], attrs: [{ name: 'axis', type: 2, i: 0 }, { name: 'block_size', type: 2, i: 32 }] }],
      initializers: triple('conv.weight', CONV, conv),
    }));
    const hb = await inspectModel(blocked);
    expect(hb.tensors.map((t) => t.dtype)).toEqual(['U8', 'F32', 'U8']);
    expect(hb.files[0].metadata['onnx.not_dequantized.conv.weight_quantized']).toMatch(/blocked quantisation/);

    const u16 = write('u16.onnx', onnxModel({ initializers: [
      { name: 'w_quantized', dataType: DT.UINT16, dims: [2], raw: Buffer.alloc(4) },
      { name: 'w_scale', dataType: DT.FLOAT, dims: [], raw: encode('F32', [0.5]) },
      { name: 'w_zero_point', dataType: DT.UINT16, dims: [], raw: Buffer.alloc(2) },
    ] }));
    const hu = await inspectModel(u16);
    expect(hu.tensors.map((t) => [t.name, t.dtype])).toEqual([['w_quantized', 'U16'], ['w_scale', 'F32'], ['w_zero_point', 'U16']]);
    expect(hu.files[0].metadata['onnx.not_dequantized.w_quantized']).toBe('UINT16: mother dequantises UINT8 and INT8 weights only');
  });

  test('NAME already taken by another tensor: the view keeps the name NAME_quantized (aligned to NAME by the name normalisation)', async () => {
    const conv = quantise(convW, CONV, 'U8', null);
    const file = write('taken.onnx', onnxModel({ initializers: [...triple('conv.weight', CONV, conv), { name: 'conv.weight', dataType: DT.FLOAT, dims: [2], raw: encode('F32', [1, 2]) }] }));
    const h = await inspectModel(file);
    expect(h.tensors.map((t) => [t.name, t.dtype])).toEqual([['conv.weight_quantized', 'QUINT8'], ['conv.weight', 'F32']]);
  });
});

// A quantised copy is a leaf under its float source, with relation 'quantized', whatever the
// quantisation's step: per tensor with an outlier the step is a large fraction of the weights'
// spread (range / 255), so the bound comes from the copy's own scales (README, Direction 1).
describe('recover: ONNX quantisations are quantised copies of their float source', () => {
  const SQ = [64, 64];
  // heavy tails: per-tensor uint8 steps of range / 255, the range about 60 standard deviations
  const heavy = (n: number, s: number, r: Rng) => f32(Array.from({ length: n }, (_, i) => (i % 997 === 5 ? 40 * s : i % 997 === 500 ? -40 * s : s * r.normal())));
  const r2 = new Rng(77);
  const baseConv = heavy(count(CONV), 0.05, r2), baseFc = heavy(count(SQ), 0.1, r2);
  const tuned = (w: Float64Array, s: number) => f32(Array.from(w, (x) => x + s * r2.normal()));
  // two fine-tunes of the base, each moved by about 0.2 of the weights' spread
  const ftConv = tuned(baseConv, 0.01), ftFc = tuned(baseFc, 0.02);
  const ft2Conv = tuned(baseConv, 0.01), ft2Fc = tuned(baseFc, 0.02);
  const floatOnnx = (conv: Float64Array, fc: Float64Array) => onnxModel({
    nodes: [{ op: 'Conv', inputs: ['x', 'conv.weight', 'conv.bias'], outputs: ['h'] }, { op: 'MatMul', inputs: ['h', 'fc.weight'], outputs: ['y'] }],
    initializers: [
      { name: 'conv.weight', dataType: DT.FLOAT, dims: CONV, raw: encode('F32', Array.from(conv)) },
      biases[0],
      { name: 'fc.weight', dataType: DT.FLOAT, dims: SQ, raw: encode('F32', Array.from(fc)) },
    ],
  });
  const quantOnnx = (conv: Float64Array, fc: Float64Array, kind: 'U8' | 'I8', axis: number | null) => {
    const qc = quantise(conv, CONV, kind, axis === null ? null : 0), qf = quantise(fc, SQ, kind, axis);
    return { bytes: onnxModel({ nodes: qoperatorNodes(), initializers: [...triple('conv.weight', CONV, qc), biases[0], ...triple('fc.weight', SQ, qf)] }), qc, qf };
  };

  test('per-tensor uint8 and per-channel int8 copies hang under the model they were rounded from; a quantised fine-tune whose float is absent is a fine-tune', async () => {
    const u8 = quantOnnx(baseConv, baseFc, 'U8', null);
    // the step here is far above the rounding of the GGUF types (Q8_0: about 0.006 of the spread, bounded at 0.023)
    let sq = 0, v = 0;
    for (const [w, q] of [[baseFc, u8.qf.deq], [baseConv, u8.qc.deq]] as const) for (let i = 0; i < w.length; i++) sq += (w[i] - q[i]) ** 2, v += w[i] ** 2;
    expect(Math.sqrt(sq / v)).toBeGreaterThan(0.035);
    const models = [
      { id: 'base', path: write('copies/base.onnx', floatOnnx(baseConv, baseFc)) },
      { id: 'ft', path: write('copies/ft.onnx', floatOnnx(ftConv, ftFc)) },
      { id: 'base_u8', path: write('copies/base_u8.onnx', u8.bytes) },
      { id: 'ft_i8', path: write('copies/ft_i8.onnx', quantOnnx(ftConv, ftFc, 'I8', 1).bytes) },
      { id: 'ft2_u8', path: write('copies/ft2_u8.onnx', quantOnnx(ft2Conv, ft2Fc, 'U8', null).bytes) },
    ];
    const g = await recover(models, { threads: 2 });
    expect(g.families).toHaveLength(1);
    const edge = (c: string) => g.edges.find((e) => e.child === c);
    expect(edge('base_u8')).toMatchObject({ parent: 'base', relation: 'quantized' });
    expect(edge('ft_i8')).toMatchObject({ parent: 'ft', relation: 'quantized' });
    expect(edge('base_u8')!.relativeDifference).toBeGreaterThan(0.035);
    // ft2's float is not in the set: its quantisation differs from every member by more than its rounding
    expect(edge('ft2_u8')!.relation).toBe('finetune');
    expect(g.familyReports[0].copies.copies).toBe(2);
  });
});
