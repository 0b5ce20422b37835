// The lists that are defined once in the native core and read by TypeScript from the addon:
// the error codes with their kinds (native/core/error.h), the summary slot layout
// (native/stats/summary.h) and the default sketch seed (native/pairwise/pairwise.h).
import * as path from 'node:path';

import { pairwiseStats, scanModel } from '../lib';
import { errorKinds, inputErrorCodes, native, summaryLayout, SUMMARY_FIELDS } from '../lib/core/binding';
import { ERROR_CODES } from '../lib/core/errors';
import { Rng } from './helpers/reference';
import { encode, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

describe('error codes: one list in the core, the TS union checked against it', () => {
  test('the TS union names exactly the addon\'s codes, in its order', () => {
    expect(native().errorCodes.map((c) => c.code)).toEqual([...ERROR_CODES]);
  });

  test('every code has a kind and a description; the kinds decide the CLI exit codes', () => {
    for (const c of native().errorCodes) {
      expect(['input', 'usage', 'runtime', 'internal']).toContain(c.kind);
      expect(c.what.length).toBeGreaterThan(5);
    }
    const kinds = errorKinds();
    expect(kinds.get('ERR_OFFSET_GAP')).toBe('input');
    expect(kinds.get('ERR_NOT_FOUND')).toBe('input');
    expect(kinds.get('ERR_INVALID_ARGUMENT')).toBe('usage');
    expect(kinds.get('ERR_UNSUPPORTED')).toBe('usage');
    expect(kinds.get('ERR_CANCELLED')).toBe('runtime');
    expect(kinds.get('ERR_BACKEND')).toBe('runtime');
    expect(kinds.get('ERR_OUTPUT')).toBe('runtime');
    expect(kinds.get('ERR_INTERNAL')).toBe('internal');
    const input = inputErrorCodes();
    // every code is an input code but these seven (a count would change with every new format)
    const notInput = ['ERR_INVALID_ARGUMENT', 'ERR_UNSUPPORTED', 'ERR_CANCELLED', 'ERR_BACKEND', 'ERR_OUTPUT', 'ERR_NO_ADDON', 'ERR_INTERNAL'];
    expect([...input].sort()).toEqual(ERROR_CODES.filter((c) => !notInput.includes(c)).sort());
    expect(input.size).toBe(ERROR_CODES.length - notInput.length);
    expect(kinds.get('ERR_NO_ADDON')).toBe('runtime');
    expect(input.has('ERR_INVALID_ARGUMENT')).toBe(false);
  });

  test('the lists are frozen', () => {
    expect(Object.isFrozen(native().errorCodes)).toBe(true);
    expect(Object.isFrozen(native().layouts.summary)).toBe(true);
  });
});

describe('summary slots: one layout, read by name', () => {
  test('the names TS reads are the addon\'s fields', () => {
    expect([...native().layouts.summary].sort()).toEqual([...SUMMARY_FIELDS].sort());
    expect(summaryLayout().width).toBe(native().layouts.summary.length);
  });

  test('scan statistics, pairwise moments and testing.moments() pack the same layout', async () => {
    const tmp = tmpDir();
    try {
      const rng = new Rng(7);
      const values = Array.from({ length: 300 }, () => rng.normal() * 0.1 + 0.25);
      const a = path.join(tmp.dir, 'a.safetensors');
      const b = path.join(tmp.dir, 'b.safetensors');
      writeSafetensors(a, [{ name: 'w', dtype: 'F32', shape: [20, 15], data: encode('F32', values) }]);
      writeSafetensors(b, [{ name: 'w', dtype: 'F32', shape: [20, 15], data: encode('F32', values.map((v) => v * 2)) }]);
      const L = summaryLayout();
      const direct = native().testing.moments(encode('F32', values), 'F32', 'scalar');
      expect(direct.length).toBe(L.width);
      const scan = await scanModel(a, { backend: 'cpu', simd: 'scalar' });
      const t = scan.tensors[0];
      for (const f of ['mean', 'std', 'skewness', 'kurtosis', 'min', 'max', 'l2', 'absMean'] as const) {
        expect(t[f]).toBe(direct[L.index[f]]);
      }
      expect(direct[L.index.count]).toBe(300);
      expect(direct[L.index.hasStats]).toBe(1);
      const pw = await pairwiseStats([a, b], { moments: /w/, backend: 'cpu' });
      const m = pw.layers[0].moments!;
      expect(m[0]!.count).toBe(300);
      expect(m[0]!.kurtosis).toBeCloseTo(t.kurtosis!, 12);
      expect(m[1]!.std).toBeCloseTo(2 * t.std!, 12); // x 2 is exact in F32
    } finally {
      tmp.cleanup();
    }
  });
});

describe('the sketch seed: one 64-bit default', () => {
  test('no seed = the addon\'s defaultSketchSeed; seeds above 2^53 are taken exactly', async () => {
    const tmp = tmpDir();
    try {
      const rng = new Rng(11);
      const base = Array.from({ length: 24 * 24 }, () => rng.normal());
      const models = [0, 1, 2].map((k) => {
        const p = path.join(tmp.dir, `m${k}.safetensors`);
        // rank-k difference from the base: k outer products
        const w = base.slice();
        for (let r = 0; r < k; r++) {
          const u = Array.from({ length: 24 }, () => rng.normal());
          const v = Array.from({ length: 24 }, () => rng.normal());
          for (let i = 0; i < 24; i++) for (let j = 0; j < 24; j++) w[i * 24 + j] += u[i] * v[j];
        }
        writeSafetensors(p, [{ name: 'w', dtype: 'F32', shape: [24, 24], data: encode('F32', w) }]);
        return p;
      });
      const seed = native().defaultSketchSeed;
      expect(typeof seed).toBe('bigint');
      expect(seed).toBeGreaterThan(2n ** 32n);
      const run = (s?: number | bigint) => pairwiseStats(models, { metrics: ['rank'], rank: { k: 16, ...(s === undefined ? {} : { seed: s }) }, backend: 'cpu' });
      const dflt = await run();
      const same = await run(seed);
      expect(Array.from(same.layers[0].rankTol!)).toEqual(Array.from(dflt.layers[0].rankTol!));
      const big = await run(2n ** 63n + 12345n);
      const big2 = await run(2n ** 63n + 12345n);
      const other = await run(2n ** 63n + 12346n);
      expect(Array.from(big.layers[0].rankTol!)).toEqual(Array.from(big2.layers[0].rankTol!));
      expect(Array.from(other.layers[0].rankTol!)).not.toEqual(Array.from(big.layers[0].rankTol!));
      // the ranks themselves do not depend on the seed
      for (const r of [dflt, big, other]) expect(r.layers[0].rank![0 * 3 + 2]).toBe(2);
    } finally {
      tmp.cleanup();
    }
  });
});
