// Quantisation grids (native/stats/quant_grid.h): a dequantised Q4_0 / Q8_0 copy keeps every
// block of 32 on an integer multiple of max|x| / 8 (or / 127), up to the rounding of its storage
// dtype; trained weights never are. The quantisers here are written from llama.cpp's reference
// description (quantize_row_q4_0_reference, quantize_row_q8_0_reference), independently of the
// zoo generator's numpy ones.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { pairwiseStats } from '../lib';
import { native } from '../lib/core/binding';
import { Rng } from './helpers/reference';
import { decode, encode, encodeF16, decodeF16, FloatDtype, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const f32 = Math.fround;
const fp16 = (x: number) => decodeF16(encodeF16(x));
const roundf = (v: number) => (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5)); // half away from zero
const U: Record<string, number> = { F32: 2 ** -24, F16: 2 ** -11, BF16: 2 ** -8 };

/** ggml Q8_0 round trip of one block, in float32. */
function q8(x: number[]): number[] {
  const amax = Math.max(...x.map(Math.abs));
  const d = f32(amax / 127);
  const id = d ? f32(1 / d) : 0;
  const d16 = fp16(d);
  return x.map((v) => f32(roundf(f32(v * id)) * d16));
}
/** ggml Q4_0 round trip of one block, in float32. */
function q4(x: number[]): number[] {
  let mx = 0;
  for (const v of x) if (Math.abs(v) > Math.abs(mx)) mx = v;
  const d = f32(mx / -8);
  const id = d ? f32(1 / d) : 0;
  const d16 = fp16(d);
  return x.map((v) => f32((Math.min(15, Math.trunc(f32(f32(v * id) + 8.5))) - 8) * d16));
}
/** The values as stored in dtype and read back. */
const stored = (dtype: FloatDtype, x: number[]) => Array.from(decode(dtype, encode(dtype, x)));
const blockOf = (rng: Rng, scale = 0.02, tail = false) => Array.from({ length: 32 }, () => scale * (tail ? rng.normal() ** 3 : rng.normal()));
const bits = (x: number[], dtype: string) => native().testing.gridBlock(Float64Array.from(x), U[dtype]);
const T4 = 1, ON4 = 2, T8 = 4, ON8 = 8;

describe('one block', () => {
  const rng = new Rng(5);
  test.each(['F32', 'F16', 'BF16'] as FloatDtype[])('Q4_0 and Q8_0 copies stored as %s are on their grid; trained-like values never', (dtype) => {
    for (let k = 0; k < 300; k++) {
      const x = blockOf(rng, 10 ** (-4 + 4 * rng.next()), k % 2 === 1);
      const b4 = bits(stored(dtype, q4(x)), dtype), b8 = bits(stored(dtype, q8(x)), dtype), b0 = bits(stored(dtype, x), dtype);
      expect(b4 & (T4 | ON4)).toBe(T4 | ON4);
      expect(b0 & ON4).toBe(0);
      expect(b0 & ON8).toBe(0);
      if (dtype === 'BF16') {
        // 8 bits of mantissa cannot hold 127 levels: Q8_0 is not tested there
        expect(b8 & T8).toBe(0);
      } else {
        expect(b8 & (T8 | ON8)).toBe(T8 | ON8);
        expect(b4 & ON8).toBe(0); // 16 levels are not 255
        expect(b0 & T8).toBe(T8);
      }
    }
  });

  test('every nibble value, extreme and denormal scales', () => {
    for (const scale of [1e-30, 1e-6, 1, 6e4]) {
      const x = Array.from({ length: 32 }, (_, i) => ((i % 16) - 8) * scale);
      expect(bits(x, 'F32') & ON4).toBe(ON4);
    }
    // F16 denormals: the grid of the stored values still holds when the scale is itself a denormal step
    const tiny = Array.from({ length: 32 }, (_, i) => ((i % 16) - 8) * 2 ** -24);
    expect(bits(stored('F16', tiny), 'F16') & ON4).toBe(ON4);
  });

  test('not tested: all zeros, NaN, Inf; a block with one value off the grid is off', () => {
    expect(bits(new Array(32).fill(0), 'F32')).toBe(0);
    const rng = new Rng(6);
    const q = q4(blockOf(rng));
    for (const bad of [NaN, Infinity, -Infinity]) {
      const y = q.slice();
      y[7] = bad;
      expect(bits(y, 'F32')).toBe(0);
    }
    const off = q.slice();
    off[3] += (Math.max(...q.map(Math.abs)) / 8) * 0.3;
    expect(bits(off, 'F32') & ON4).toBe(0);
    expect(() => native().testing.gridBlock(new Float64Array(31), U.F32)).toThrow(/32/);
  });
});

describe('through the pairwise pass', () => {
  const tmp = tmpDir();
  afterAll(() => tmp.cleanup());
  const shapes: [string, number[]][] = [['a.weight', [64, 64]], ['b.weight', [96, 32]], ['odd.weight', [48, 48]], ['norm.weight', [64]]];

  function model(name: string, tensors: { name: string; dtype: FloatDtype; shape: number[]; values: number[] }[]): string {
    const dir = path.join(tmp.dir, name);
    fs.mkdirSync(dir, { recursive: true });
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: encode(t.dtype, t.values) })));
    return dir;
  }
  const blocks = (v: number[], f: (x: number[]) => number[]) => v.flatMap((_, i) => (i % 32 ? [] : f(v.slice(i, i + 32))));

  test('per model and tensor: the copies on their grid, the source and a fine-tune off it, untestable tensors untested', async () => {
    const rng = new Rng(9);
    const base = shapes.map(([name, shape]) => ({ name, shape, values: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 0.02 * rng.normal()) }));
    const quantised = (f: (x: number[]) => number[]) => (t: (typeof base)[number]) => (t.shape.length === 2 && t.shape[1] % 32 === 0 ? blocks(t.values, f) : t.values);
    const models = [
      model('base', base.map((t) => ({ ...t, dtype: 'F32' as FloatDtype }))),
      model('ft', base.map((t) => ({ ...t, dtype: 'BF16' as FloatDtype, values: t.values.map((v) => v + 0.002 * rng.normal()) }))),
      model('q4-f16', base.map((t) => ({ ...t, dtype: 'F16' as FloatDtype, values: quantised(q4)(t) }))),
      model('q8-f32', base.map((t) => ({ ...t, dtype: 'F32' as FloatDtype, values: quantised(q8)(t) }))),
      model('q4-bf16', base.map((t) => ({ ...t, dtype: 'BF16' as FloatDtype, values: quantised(q4)(t) }))),
    ];
    for (const backend of ['cpu'] as const) {
      const r = await pairwiseStats(models, { backend, metrics: ['rms'] });
      const at = (t: string) => r.layers.find((l) => l.name === t)!.grid!;
      // 64 x 64: blocks at 0, 1024, 2048, 3072; 96 x 32: 3 blocks
      expect(at('a.weight').map((g) => g && [g.q4Tested, g.q4On, g.q8Tested, g.q8On])).toEqual([[4, 0, 4, 0], [4, 0, 0, 0], [4, 4, 4, 0], [4, 0, 4, 4], [4, 4, 0, 0]]);
      expect(at('b.weight').map((g) => g && g.q4On)).toEqual([0, 0, 3, 0, 3]);
      for (const t of ['odd.weight', 'norm.weight']) expect(at(t).every((g) => g && g.q4Tested === 0 && g.q8Tested === 0)).toBe(true);
    }
  });
});
