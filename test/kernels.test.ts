// The statistics kernels against an independent float64 reference (test/helpers/reference.ts),
// for every dtype, every SIMD path this CPU has, and adversarial inputs. F16 and BF16 on the
// SIMD paths accumulate in float32 over short runs (native/stats/block_h.inc): they are held to
// that pass's stated error bound (test/helpers/f32_bound.ts, README "Accuracy of the 16-bit SIMD
// path") on top of the float64 tolerance, every other dtype and path to the float64 tolerance.
import { native, STAT_FIELDS } from '../lib/core/binding';
import { decode, encode, FLOAT_DTYPES, FloatDtype } from './helpers/safetensors';
import { close, refStats, RefStats, Rng } from './helpers/reference';
import { BLOCK, F32_EPS, f32Bound, StatBound, usesF32Pass } from './helpers/f32_bound';

const addon = native();
const PATHS = addon.simdPaths();
const F = Object.fromEntries(STAT_FIELDS.map((k, i) => [k, i])) as Record<(typeof STAT_FIELDS)[number], number>;

type Gen = (rng: Rng, n: number) => number[];

const GENERATORS: Record<string, Gen> = {
  normal: (r, n) => Array.from({ length: n }, () => 0.02 * r.normal()),
  'heavy tails t(2)': (r, n) => Array.from({ length: n }, () => r.studentT(2)),
  'heavy tails cauchy': (r, n) => Array.from({ length: n }, () => r.normal() / r.normal()),
  'mean >> std': (r, n) => Array.from({ length: n }, () => 1000 + 1e-3 * r.normal()),
  'negative mean >> std': (r, n) => Array.from({ length: n }, () => -3 + 1e-4 * r.normal()),
  skewed: (r, n) => Array.from({ length: n }, () => Math.exp(r.normal())),
  'sparse spikes': (r, n) => Array.from({ length: n }, () => (r.next() < 0.001 ? 50 * r.normal() : 0.01 * r.normal())),
  'with NaN and Inf': (r, n) =>
    Array.from({ length: n }, () => {
      const u = r.next();
      return u < 0.01 ? NaN : u < 0.015 ? Infinity : u < 0.02 ? -Infinity : r.normal();
    }),
  'denormal mixture': (r, n) => Array.from({ length: n }, () => (r.next() < 0.3 ? 1e-42 * r.next() : r.normal())),
  // block means that jump far from the previous block's (the SIMD kernels' shift)
  'level shifts': (r, n) => Array.from({ length: n }, (_, i) => (Math.floor(i / 2048) % 2 ? 1e4 : -7) + 1e-3 * r.normal()),
  'sorted ramp': (r, n) => Array.from({ length: n }, () => r.normal()).sort((a, b) => a - b),
  constant: (_r, n) => Array.from({ length: n }, () => 0.125),
  'all NaN': (_r, n) => Array.from({ length: n }, () => NaN),
  // the float32 pass of F16/BF16: the scale of the previous block far from this one's (under-
  // and overflow of d^4 in float32), values at the edges of the formats' ranges, constant runs
  // that break off mid-block, a shift (previous block mean) between std / 4 and std away
  'scale jumps': (r, n) => Array.from({ length: n }, (_, i) => r.normal() * [1, 1e-12, 1e12, 1e-3, 1e25][Math.floor(i / 1500) % 5]),
  'huge and tiny BF16 range': (r, n) => Array.from({ length: n }, (_, i) => r.normal() * (Math.floor(i / 3000) % 2 ? 1e35 : 1e-35)),
  'F16 extremes': (r, n) => Array.from({ length: n }, () => (r.next() < 0.5 ? 65504 : -65504) * (r.next() < 0.9 ? 1 : r.next())),
  'subnormal F16 only': (r, n) => Array.from({ length: n }, () => r.normal() * 2 ** -20),
  'zeros then values': (r, n) => Array.from({ length: n }, (_, i) => (i < 2500 || (i > 5000 && i < 7000) ? 0 : 0.02 * r.normal())),
  'drifting mean': (r, n) => Array.from({ length: n }, (_, i) => 0.5 * Math.floor(i / 2048) + r.normal()),
  'spike 1e6 std': (r, n) => Array.from({ length: n }, (_, i) => (i % 4099 === 3000 ? 1e4 : 0.01 * r.normal())),
};

const SIZES = [0, 1, 2, 3, 15, 16, 17, 1000, 2047, 2048, 2049, 6151, 10241];

function nativeStats(bytes: Uint8Array, dtype: FloatDtype, simd: string) {
  return addon.testing.moments(bytes, dtype, simd);
}

/** Compares native output with the reference; returns a description of the first mismatch.
 *  With a bound (the float32 pass), each statistic may also be off by the bound's amount. */
function mismatch(got: Float64Array, ref: RefStats, rel = 1e-9, bound?: StatBound): string | null {
  const checks: [keyof StatBound, number, number, number][] = [
    ['mean', got[F.mean], ref.mean, 1e-6 * ref.absMean],
    ['std', got[F.std], ref.std, 0],
    ['skewness', got[F.skewness], ref.skewness, 1e-4],
    ['kurtosis', got[F.kurtosis], ref.kurtosis, 1e-4],
    ['l2', got[F.l2], ref.l2, 0],
    ['absMean', got[F.absMean], ref.absMean, 0],
  ];
  if (got[F.count] !== ref.finite) return `count ${got[F.count]} != ${ref.finite}`;
  if (got[F.nan] !== ref.nan) return `nan ${got[F.nan]} != ${ref.nan}`;
  if (got[F.inf] !== ref.inf) return `inf ${got[F.inf]} != ${ref.inf}`;
  if (!(Object.is(got[F.min], ref.min) || got[F.min] === ref.min)) return `min ${got[F.min]} != ${ref.min}`;
  if (!(Object.is(got[F.max], ref.max) || got[F.max] === ref.max)) return `max ${got[F.max]} != ${ref.max}`;
  for (const [name, a, b, floor] of checks) {
    const slack = bound ? bound[name] : 0;
    if (!close(a, b, rel, floor) && !(Math.abs(a - b) <= rel * Math.max(Math.abs(b), floor) + slack))
      return `${name} ${a} vs reference ${b} (rel err ${Math.abs(a - b) / Math.abs(b)}${bound ? `, bound ${slack}` : ''})`;
  }
  return null;
}

describe('moment kernels vs float64 reference', () => {
  test('this CPU offers at least the scalar path', () => {
    expect(PATHS[0]).toBe('scalar');
    expect(PATHS).toContain(addon.simdDefault());
  });

  for (const dtype of FLOAT_DTYPES) {
    test(`${dtype}: every distribution, size and SIMD path, unaligned`, () => {
      const failures: string[] = [];
      let seed = 1;
      for (const [gname, gen] of Object.entries(GENERATORS)) {
        for (const n of SIZES) {
          const rng = new Rng(seed++);
          const encoded = encode(dtype, gen(rng, n));
          const values = decode(dtype, encoded);
          const truth = refStats(values);
          const bound = f32Bound(values);
          for (const offset of [0, 1, 3]) {
            // place the data at an odd address inside a larger buffer
            const host = new Uint8Array(encoded.byteLength + 8);
            host.set(encoded, offset);
            const view = host.subarray(offset, offset + encoded.byteLength);
            for (const simd of PATHS) {
              const got = nativeStats(view, dtype, simd);
              const why = mismatch(got, truth, 1e-9, usesF32Pass(dtype, simd) ? bound : undefined);
              if (why) failures.push(`${gname} n=${n} offset=${offset} ${simd}: ${why}`);
            }
          }
        }
      }
      expect(failures).toEqual([]);
    });
  }

  test('every bit pattern of the 16-bit and 8-bit formats decodes like the reference', () => {
    const failures: string[] = [];
    for (const dtype of ['F16', 'BF16'] as FloatDtype[]) {
      const all = new Uint8Array(65536 * 2);
      const dv = new DataView(all.buffer);
      for (let i = 0; i < 65536; i++) dv.setUint16(2 * i, i, true);
      // single-element tensors: min == max == the decoded value, for every pattern
      for (let i = 0; i < 65536; i += 1) {
        const one = all.subarray(2 * i, 2 * i + 2);
        const v = decode(dtype, one)[0];
        for (const simd of PATHS) {
          const got = addon.testing.moments(one, dtype, simd);
          const ok = Number.isFinite(v) ? got[F.min] === v && got[F.count] === 1 : got[F.count] === 0 && got[F.nan] + got[F.inf] === 1;
          if (!ok) failures.push(`${dtype} 0x${i.toString(16)} ${simd}: got min ${got[F.min]} expected ${v}`);
        }
      }
      const truth = refStats(decode(dtype, all));
      const bound = f32Bound(decode(dtype, all));
      for (const simd of PATHS) {
        const why = mismatch(addon.testing.moments(all, dtype, simd), truth, 1e-9, usesF32Pass(dtype, simd) ? bound : undefined);
        if (why) failures.push(`${dtype} all patterns ${simd}: ${why}`);
      }
    }
    for (const dtype of FLOAT_DTYPES.filter((d) => d.startsWith('F8'))) {
      for (let b = 0; b < 256; b++) {
        const one = new Uint8Array([b]);
        const v = decode(dtype, one)[0];
        const got = addon.testing.moments(one, dtype, 'scalar');
        const ok = Number.isFinite(v) ? got[F.min] === v : got[F.count] === 0;
        if (!ok) failures.push(`${dtype} 0x${b.toString(16)}: got ${got[F.min]} expected ${v}`);
      }
    }
    expect(failures).toEqual([]);
  });

  test('known values of the 8-bit formats (spec examples)', () => {
    const one = (dtype: FloatDtype, b: number) => addon.testing.moments(new Uint8Array([b]), dtype, 'scalar')[F.min];
    expect(one('F8_E4M3', 0x7e)).toBe(448); // max normal
    expect(one('F8_E4M3', 0x01)).toBe(2 ** -9); // min subnormal
    expect(one('F8_E5M2', 0x7b)).toBe(57344);
    expect(one('F8_E5M2', 0x01)).toBe(2 ** -16);
    expect(one('F8_E4M3FNUZ', 0x7f)).toBe(240);
    expect(one('F8_E5M2FNUZ', 0x7f)).toBe(57344);
    expect(one('F8_E8M0', 127)).toBe(1);
    expect(one('F8_E8M0', 0)).toBe(2 ** -127);
    expect(addon.testing.moments(new Uint8Array([0x7c]), 'F8_E5M2', 'scalar')[F.inf]).toBe(1);
    expect(addon.testing.moments(new Uint8Array([0x80]), 'F8_E4M3FNUZ', 'scalar')[F.nan]).toBe(1);
  });

  test('two elements: kurtosis is exactly -2, skewness 0 (scipy)', () => {
    for (const simd of PATHS) {
      const got = addon.testing.moments(new Uint8Array(new Float32Array([1, 3]).buffer), 'F32', simd);
      expect(got[F.kurtosis]).toBe(-2);
      expect(got[F.skewness]).toBe(0);
      expect(got[F.std]).toBe(1);
    }
  });

  test('one element and empty input: undefined moments are NaN, counts exact', () => {
    for (const simd of PATHS) {
      const one = addon.testing.moments(new Uint8Array(new Float32Array([7]).buffer), 'F32', simd);
      expect(one[F.count]).toBe(1);
      expect(one[F.mean]).toBe(7);
      expect(one[F.std]).toBe(0);
      expect(one[F.kurtosis]).toBeNaN();
      const none = addon.testing.moments(new Uint8Array(0), 'F32', simd);
      expect(none[F.count]).toBe(0);
      expect(none[F.mean]).toBeNaN();
    }
  });

  test('SIMD paths agree with scalar to 1e-12 on a long heavy-tailed vector (F16/BF16: to the float32 bound)', () => {
    const rng = new Rng(99);
    const values = Array.from({ length: 300_001 }, () => rng.studentT(3) * 0.02 + 0.001);
    for (const dtype of ['F32', 'F16', 'BF16', 'F64'] as FloatDtype[]) {
      const bytes = encode(dtype, values);
      const scalar = addon.testing.moments(bytes, dtype, 'scalar');
      // The 16-bit formats' SIMD pass sums in float32 (block_h.inc): it agrees with the float64
      // scalar path to its stated bound, not to 1e-12; every other dtype is float64 on every path.
      const bound = f32Bound(decode(dtype, bytes));
      for (const simd of PATHS) {
        const got = addon.testing.moments(bytes, dtype, simd);
        // relative 1e-12; the mean near 0 relative to the spread, skewness and excess
        // kurtosis (dimensionless, O(1)) near 0 absolutely
        const floors: number[] = STAT_FIELDS.map(() => 0);
        floors[F.mean] = scalar[F.std];
        floors[F.skewness] = 1;
        floors[F.kurtosis] = 1;
        for (let k = 0; k < STAT_FIELDS.length; k++) {
          const name = STAT_FIELDS[k] as string;
          const slack = usesF32Pass(dtype, simd) && name in bound ? bound[name as keyof StatBound] : 0;
          const ok = close(got[k], scalar[k], 1e-12, floors[k]) || Math.abs(got[k] - scalar[k]) <= 1e-12 * Math.max(Math.abs(scalar[k]), floors[k]) + slack;
          if (!ok) throw new Error(`${dtype} ${simd} ${name}: ${got[k]} vs scalar ${scalar[k]} (bound ${slack})`);
        }
      }
    }
  });

  test('the float32 pass of F16/BF16: the bound tested is the one the kernels state, and the pass runs', () => {
    // test/helpers/f32_bound.ts and README state kF32Eps and kBlock of native/stats/kernels.h
    expect(addon.testing.f32Eps).toBe(F32_EPS);
    expect(addon.testing.block).toBe(BLOCK);
    // on SIMD paths the pass really is float32 (not float64 by a guard or a fallback): normal
    // data, many blocks, not bit-identical to the float64 scalar path but within the bound; and
    // the errors stay far below it (the bound is a worst case: x100 here)
    const rng = new Rng(123);
    for (const dtype of ['F16', 'BF16'] as FloatDtype[]) {
      const bytes = encode(dtype, Array.from({ length: 100_000 }, () => 0.02 * rng.normal() + 0.001));
      const values = decode(dtype, bytes);
      const truth = refStats(values);
      const bound = f32Bound(values);
      const scalar = addon.testing.moments(bytes, dtype, 'scalar');
      expect(mismatch(scalar, truth)).toBeNull();
      for (const simd of PATHS.filter((p) => p !== 'scalar')) {
        const got = addon.testing.moments(bytes, dtype, simd);
        expect(Array.from(got)).not.toEqual(Array.from(scalar));
        expect(mismatch(got, truth, 0, bound)).toBeNull();
        const tight: StatBound = Object.fromEntries(Object.entries(bound).map(([k, v]) => [k, v / 100])) as unknown as StatBound;
        expect(mismatch(got, truth, 1e-12, tight)).toBeNull();
      }
    }
  });

  test('sumU64 (the plain-read baseline) is the same on every path, unaligned', () => {
    const rng = new Rng(5);
    const bytes = new Uint8Array(100_003);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rng.next() * 256);
    const view = bytes.subarray(3);
    let want = 0n;
    const dv = new DataView(view.buffer, view.byteOffset, view.byteLength);
    let i = 0;
    for (; i + 8 <= view.length; i += 8) want += dv.getBigUint64(i, true);
    for (; i < view.length; i++) want += BigInt(view[i]);
    want &= (1n << 64n) - 1n;
    for (const simd of PATHS) expect(addon.testing.sumU64(view, simd)).toBe(want);
  });

  test('forcing a path the CPU lacks, or an unknown one, is a clear error', () => {
    expect(() => addon.testing.moments(new Uint8Array(4), 'F32', 'sse9')).toThrow(/unknown SIMD path/);
    const missing = ['avx2', 'avx512', 'neon'].find((p) => !PATHS.includes(p));
    if (missing) expect(() => addon.testing.moments(new Uint8Array(4), 'F32', missing)).toThrow(/does not support/);
  });
});
