// The pairwise pass's Gram path and its relatedness outputs against an independent reference
// (test/helpers/pairwise_reference.py: exactly rounded sums of squared differences, variances
// to ~1e-16, 1 - r in 40-digit decimals, the shifted null with numpy), on the cases that break
// the Gram form: near-identical models far from the reference, exact copies, mean >> std,
// NaN/Inf positions, resized vocabularies, 1-element, empty and unaligned tensors, every dtype.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { native } from '../lib/core/binding';
import { resolveModel } from '../lib/io/discovery';
import { inspectResolved } from '../lib/io/inspect';
import { pairwisePass, PairLayer, PairwiseOptions } from '../lib/io/pairwise';
import { Rng } from './helpers/reference';
import { decode, encode, FLOAT_DTYPES, FloatDtype, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const { abs, max, sqrt } = Math;
const REFERENCE = path.join(__dirname, 'helpers', 'pairwise_reference.py');

let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir();
});
afterAll(() => {
  tmp.cleanup();
  // the largest errors per case (the README's accuracy table comes from these lines)
  const rows = [...worst.entries()].map(([c, e]) => `${c.padEnd(52)} ${FIELDS.map((f) => (e[f] ?? 0).toExponential(1).padStart(9)).join(' ')}`);
  process.stdout.write(`\n[pairwise_gram] largest errors per case:\n${''.padEnd(52)} ${FIELDS.map((f) => f.padStart(9)).join(' ')}\n${rows.join('\n')}\n`);
});

interface Spec { name: string; dtype: FloatDtype; shape: number[]; values: number[] }
interface RefPair {
  count: number; skipped: number; sumSq: number;
  meanA: number | null; meanB: number | null; varA: number | null; varB: number | null;
  oneMinusR: number | null; scale: number | null;
  nShift: number; rShift1: number | null; rShift2: number | null;
}

// sumSq: relative; mean: relative to |mean| + sd; var: relative; 1-r: relative to the size of
// its two terms (scale); rShift: absolute.
const FIELDS = ['sumSq', 'mean', 'var', 'oneMinusR', 'rShift'] as const;
const LIMIT: Record<(typeof FIELDS)[number], number> = { sumSq: 1e-9, mean: 1e-12, var: 1e-9, oneMinusR: 1e-9, rShift: 1e-12 };
const worst = new Map<string, Partial<Record<(typeof FIELDS)[number], number>>>();

let caseNo = 0;
interface Case { label: string; models: Spec[][]; opts?: PairwiseOptions }

/** Runs the cases, then the reference once for all of them, and compares. */
async function checkMany(cases: Case[]): Promise<PairLayer[][]> {
  const runs = [];
  for (const c of cases) runs.push(await runCase(c));
  const refs = JSON.parse(execFileSync('/usr/bin/python3', [REFERENCE, ...runs.map((r) => r.caseFile)], { encoding: 'utf8', maxBuffer: 1 << 28 })) as RefTensor[][];
  return runs.map((r, k) => compare(cases[k].label, r.layers, cases.length === 1 ? (refs as unknown as RefTensor[]) : refs[k], cases[k].models.length));
}
const check = async (label: string, models: Spec[][], opts: PairwiseOptions = {}) => (await checkMany([{ label, models, opts }]))[0];
type RefTensor = { name: string; pairs: (RefPair | null)[] };

async function runCase({ models, opts = {} }: Case): Promise<{ layers: PairLayer[]; caseFile: string }> {
  const dir = path.join(tmp.dir, `case${caseNo++}`);
  const decoded: Map<string, Float64Array>[] = [];
  const paths = models.map((specs, m) => {
    const d = path.join(dir, `m${m}`);
    fs.mkdirSync(d, { recursive: true });
    const tensors = specs.map((s) => ({ name: s.name, dtype: s.dtype, shape: s.shape, data: encode(s.dtype, s.values) }));
    writeSafetensors(path.join(d, 'model.safetensors'), tensors);
    decoded.push(new Map(tensors.map((t) => [t.name, decode(t.dtype as FloatDtype, t.data)])));
    return d;
  });
  const resolved = await Promise.all(paths.map((p) => resolveModel(p)));
  const headers = await Promise.all(resolved.map((r) => inspectResolved(r)));
  const pass = await pairwisePass(resolved, headers, { relatedness: true, differences: false, ...opts });
  const n = models.length;
  // the reference reads the decoded values of the compared tensors
  const tensors = pass.layers.map((l, t) => ({
    name: l.name, rowElems: l.rowElems, rows: l.rows,
    files: l.rows.map((r, m) => {
      if (r < 0) return null;
      const f = path.join(dir, `t${t}-m${m}.f64`);
      const x = decoded[m].get(l.name)!;
      fs.writeFileSync(f, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
      return f;
    }),
  }));
  const caseFile = path.join(dir, 'case.json');
  fs.writeFileSync(caseFile, JSON.stringify({ n, tensors }));
  return { layers: pass.layers, caseFile };
}

function compare(label: string, layers: PairLayer[], ref: RefTensor[], n: number): PairLayer[] {
  const pass = { layers };
  const bad: string[] = [];
  const w = worst.get(label) ?? {};
  const note = (f: (typeof FIELDS)[number], err: number, where: string) => {
    if (!(err <= LIMIT[f])) bad.push(`${where} ${f}: error ${err}`);
    w[f] = max(w[f] ?? 0, Number.isNaN(err) ? Infinity : err);
  };
  const nanOr = (v: number | null) => (v === null ? NaN : v);
  pass.layers.forEach((l, t) => {
    expect(ref[t].name).toBe(l.name);
    let p = 0;
    for (let i = 0; i < n; i++)
      for (let j = i + 1; j < n; j++, p++) {
        const r = ref[t].pairs[p];
        const where = `${label}: ${l.name} (${i},${j})`;
        if (!r) {
          if (l.count[p] !== 0) bad.push(`${where}: compared but should not be`);
          continue;
        }
        if (l.count[p] !== r.count || l.skipped[p] !== r.skipped) bad.push(`${where}: count ${l.count[p]}/${l.skipped[p]} vs ${r.count}/${r.skipped}`);
        if (r.sumSq === 0) {
          if (l.sumSq[p] !== 0) bad.push(`${where}: sumSq ${l.sumSq[p]} for equal values`);
        } else note('sumSq', abs(l.sumSq[p] - r.sumSq) / r.sumSq, where);
        if (r.count === 0) {
          if (!Number.isNaN(l.meanA[p]) || !Number.isNaN(l.oneMinusR[p])) bad.push(`${where}: statistics for no positions`);
        } else {
          const sdA = sqrt(r.varA!), sdB = sqrt(r.varB!);
          note('mean', abs(l.meanA[p] - r.meanA!) / (abs(r.meanA!) + sdA || 1), where + ' A');
          note('mean', abs(l.meanB[p] - r.meanB!) / (abs(r.meanB!) + sdB || 1), where + ' B');
          note('var', r.varA === 0 ? abs(l.varA[p]) : abs(l.varA[p] - r.varA!) / r.varA!, where + ' A');
          note('var', r.varB === 0 ? abs(l.varB[p]) : abs(l.varB[p] - r.varB!) / r.varB!, where + ' B');
          if (r.oneMinusR === null) {
            if (!Number.isNaN(l.oneMinusR[p])) bad.push(`${where}: 1 - r ${l.oneMinusR[p]} where a variance is 0`);
          } else {
            // relative to the size of its two terms, and 1e-28 absolute below that: float64's
            // own resolution of the variances (tensors that differ by less than ~1e-14 relative)
            const err = abs(l.oneMinusR[p] - r.oneMinusR);
            note('oneMinusR', err <= 1e-28 ? 0 : err / r.scale!, where);
          }
        }
        if (l.nShift![p] !== r.nShift) bad.push(`${where}: nShift ${l.nShift![p]} vs ${r.nShift}`);
        for (const [got, want] of [[l.rShift1![p], nanOr(r.rShift1)], [l.rShift2![p], nanOr(r.rShift2)]]) {
          if (Number.isNaN(want)) {
            if (!Number.isNaN(got)) bad.push(`${where}: rShift ${got} where numpy has none`);
          } else note('rShift', abs(got - want), where);
        }
      }
  });
  worst.set(label, w);
  expect(bad.slice(0, 20)).toEqual([]);
  return layers;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const SHAPES: { name: string; shape: number[] }[] = [
  { name: 'embed.weight', shape: [40, 16] },
  { name: 'attn.weight', shape: [32, 32] },
  { name: 'mlp.weight', shape: [33, 29] }, // unaligned
  { name: 'conv.weight', shape: [3, 5, 7] },
  { name: 'norm.weight', shape: [1031] },
  { name: 'one', shape: [1] },
  { name: 'scalar', shape: [] },
  { name: 'empty', shape: [0] },
];

/** A family: every model the base plus its own perturbation (scale eps), or an independent one. */
function family(rng: Rng, n: number, dtypeOf: (m: number, t: number) => FloatDtype, perturb = (m: number) => 0.005 * (m + 1), shapes = SHAPES): Spec[][] {
  const base = shapes.map((t) => Array.from({ length: numel(t.shape) }, () => 0.02 * rng.normal()));
  return Array.from({ length: n }, (_, m) =>
    shapes.map((t, ti) => ({ name: t.name, shape: t.shape, dtype: dtypeOf(m, ti), values: base[ti].map((v) => v + perturb(m) * rng.normal()) })),
  );
}

describe('the Gram path against the exact reference', () => {
  test('N = 1..16, every dtype, unaligned, 1-element and empty tensors', async () => {
    const cases: Case[] = [];
    for (let n = 1; n <= 16; n++) {
      const rng = new Rng(1000 + n);
      cases.push({ label: 'N = 1..16, every dtype', models: family(rng, n, (m, t) => FLOAT_DTYPES[(m + 3 * t) % FLOAT_DTYPES.length]), opts: { chunkElems: 64, jobElems: 192 } });
    }
    const layers = await checkMany(cases);
    layers.forEach((l, k) => expect(l.length).toBe(k + 1 >= 2 ? SHAPES.length : 0));
  });

  test('the same with the default sub-chunks and jobs, on every SIMD path', async () => {
    for (const simd of native().simdPaths()) {
      const rng = new Rng(77);
      await check(`N = 9, every dtype, ${simd}`, family(rng, 9, (m, t) => FLOAT_DTYPES[(m + t) % FLOAT_DTYPES.length]), { simd });
      await check(`N = 9, every dtype, ${simd}, with differences`, family(new Rng(77), 9, (m, t) => FLOAT_DTYPES[(m + t) % FLOAT_DTYPES.length]), { simd, differences: true });
    }
  });

  test('near-identical models (relative differences 1e-3 .. 1e-7) and exact copies, the reference from another family', async () => {
    const shapes = [{ name: 'w', shape: [64, 96] }, { name: 'v', shape: [3000] }, { name: 'small', shape: [7, 5] }];
    for (const dtype of ['F64', 'F32'] as FloatDtype[]) {
      const rng = new Rng(dtype === 'F64' ? 5 : 6);
      const base = shapes.map((t) => Array.from({ length: numel(t.shape) }, () => 0.02 * rng.normal()));
      const eps = dtype === 'F64' ? [1e-3, 1e-4, 1e-5, 1e-6, 1e-7] : [1e-3, 1e-4, 1e-5];
      const models: Spec[][] = [];
      // model 0, the Gram path's reference: an independent model
      models.push(shapes.map((t) => ({ ...t, dtype, values: Array.from({ length: numel(t.shape) }, () => 0.02 * rng.normal()) })));
      for (const e of eps) models.push(shapes.map((t, ti) => ({ ...t, dtype, values: base[ti].map((v) => v * (1 + e * rng.normal())) })));
      models.push(shapes.map((t, ti) => ({ ...t, dtype, values: base[ti].slice() }))); // the base
      models.push(shapes.map((t, ti) => ({ ...t, dtype, values: base[ti].slice() }))); // an exact copy
      models.push(shapes.map((t, ti) => ({ ...t, dtype: dtype === 'F64' ? 'F32' : 'F64', values: base[ti].map((v) => Math.fround(v)) }))); // a copy in another dtype (equal values for F32)
      models.push(shapes.map((t, ti) => ({ ...t, dtype, values: base[ti].map((v) => v * (1 + 1e-6)) }))); // rescaled: r = 1
      models.push(shapes.map((t, ti) => ({ ...t, dtype, values: base[ti].map((v) => v + 1e-4) }))); // shifted: r = 1
      const layers = await check(`near-identical, exact copies, ${dtype}`, models, { chunkElems: 256, jobElems: 1024 });
      const n = models.length;
      const copy = (i: number, j: number) => layers.every((l) => l.sumSq[pairIndexOf(n, i, j)] === 0);
      expect(copy(n - 5, n - 4)).toBe(true);
      if (dtype === 'F32') expect(copy(n - 5, n - 3)).toBe(true); // the F64 copy holds the same values
      await check(`near-identical, exact copies, ${dtype}, default chunks`, models);
    }
  });

  test('mean >> std (100 + 1e-3 noise), perturbations of 1e-6 relative', async () => {
    for (const dtype of ['F64', 'F32'] as FloatDtype[]) {
      const rng = new Rng(9);
      const models = family(rng, 6, () => dtype, (m) => (m === 0 ? 0 : 1e-4 * m), [{ name: 'w', shape: [50, 70] }, { name: 'b', shape: [2500] }]).map((specs) =>
        specs.map((s) => ({ ...s, values: s.values.map((v) => 100 + v / 20) })),
      );
      await check(`mean >> std, ${dtype}`, models, { chunkElems: 128, jobElems: 512 });
    }
  });

  test('NaN and Inf: scattered, a whole sub-chunk, in the reference model, an all-NaN tensor', async () => {
    const rng = new Rng(10);
    const models = family(rng, 7, (m) => (['F32', 'BF16', 'F16', 'F64'] as FloatDtype[])[m % 4], undefined, [
      { name: 'w', shape: [30, 40] }, { name: 'v', shape: [1200] }, { name: 'nan', shape: [100] },
    ]);
    for (let m = 0; m < 7; m++) {
      const w = models[m][0].values, v = models[m][1].values;
      if (m % 2 === 0) for (let e = 5 * m; e < w.length; e += 97) w[e] = e % 3 ? NaN : (e % 2 ? Infinity : -Infinity);
      if (m === 0) for (let e = 64; e < 128; e++) v[e] = NaN; // a whole sub-chunk of the reference
      if (m === 3) v[0] = Infinity;
      if (m === 5) models[m][2].values.fill(NaN);
    }
    await check('NaN/Inf positions', models, { chunkElems: 64, jobElems: 256 });
    await check('NaN/Inf positions, default chunks', models);
    await check('NaN/Inf positions, with differences', models, { differences: true });
  });

  test('resized vocabularies: compared on the shared rows, the shifted null inside them', async () => {
    const rng = new Rng(11);
    const models = family(rng, 6, (m) => (m % 2 ? 'F32' : 'BF16'), undefined, [{ name: 'embed', shape: [40, 16] }, { name: 'lm_head', shape: [300, 8] }]);
    for (let m = 0; m < 6; m++)
      for (const s of models[m]) {
        const extra = (m % 3) * 3;
        s.shape = [s.shape[0] + extra, s.shape[1]];
        s.values = s.values.concat(Array.from({ length: extra * s.shape[1] }, () => 0.02 * rng.normal()));
      }
    const layers = await check('resized vocabularies', models, { chunkElems: 64, jobElems: 128 });
    expect(layers.every((l) => l.resized)).toBe(true);
    await check('resized vocabularies, default chunks', models);
  });

  test('results do not depend on the thread count; differences: false changes nothing else', async () => {
    const rng = new Rng(12);
    const models = family(rng, 6, (m) => (m % 2 ? 'F32' : 'BF16'));
    const dir = path.join(tmp.dir, 'threads');
    const paths = models.map((specs, m) => {
      const d = path.join(dir, `m${m}`);
      fs.mkdirSync(d, { recursive: true });
      writeSafetensors(path.join(d, 'model.safetensors'), specs.map((s) => ({ name: s.name, dtype: s.dtype, shape: s.shape, data: encode(s.dtype, s.values) })));
      return d;
    });
    const resolved = await Promise.all(paths.map((p) => resolveModel(p)));
    const headers = await Promise.all(resolved.map((r) => inspectResolved(r)));
    const run = (o: PairwiseOptions) => pairwisePass(resolved, headers, { chunkElems: 64, jobElems: 128, relatedness: true, ...o });
    const one = await run({ threads: 1 });
    for (const threads of [2, 5]) expect((await run({ threads })).layers).toEqual(one.layers);
    const lean = await run({ threads: 2, differences: false });
    one.layers.forEach((l, t) => {
      const k = lean.layers[t];
      expect(Array.from(k.sumSq)).toEqual(Array.from(l.sumSq));
      expect(Array.from(k.oneMinusR)).toEqual(Array.from(l.oneMinusR));
      expect(Array.from(k.rShift1!)).toEqual(Array.from(l.rShift1!));
      expect(k.meanAbs.every((v) => Number.isNaN(v))).toBe(true);
    });
    // the default follows the metrics: rms and rank take the Gram products only, l1 and maxdiff the differences
    for (const metrics of [['rms'], ['rank'], ['rms', 'rank']] as const) {
      const m = await run({ threads: 2, metrics });
      m.layers.forEach((l, t) => {
        expect(Array.from(l.sumSq)).toEqual(Array.from(one.layers[t].sumSq));
        expect(l.meanAbs.every((v) => Number.isNaN(v))).toBe(true);
      });
    }
    for (const metrics of [['l1'], ['maxdiff'], ['rms', 'l1']] as const) {
      const m = await run({ threads: 2, metrics });
      m.layers.forEach((l, t) => {
        expect(Array.from(l.meanAbs)).toEqual(Array.from(one.layers[t].meanAbs));
        expect(Array.from(l.maxDiff)).toEqual(Array.from(one.layers[t].maxDiff));
      });
    }
  });
});

function pairIndexOf(n: number, i: number, j: number): number {
  return (i * (2 * n - i - 1)) / 2 + (j - i - 1);
}

describe('row kernels', () => {
  test('gram, pairDd, moments2: every SIMD path against float64 sums (long double-free: exact for small integers)', () => {
    const rng = new Rng(13);
    for (const m of [1, 2, 3, 4, 5, 8, 13]) {
      for (const len of [0, 1, 3, 7, 8, 9, 31, 64, 1031]) {
        // small integers: every product and sum is exact, so every path must agree exactly
        const rows = Array.from({ length: m }, () => Float64Array.from({ length: len }, () => Math.round(8 * rng.normal())));
        for (const simd of native().simdPaths()) {
          const g = native().testing.gram(rows, simd);
          for (let i = 0; i < m; i++)
            for (let j = 0; j < m; j++) {
              if (j < i) {
                expect(Number.isNaN(g[i * m + j])).toBe(true);
                continue;
              }
              let s = 0;
              for (let e = 0; e < len; e++) s += rows[i][e] * rows[j][e];
              expect(g[i * m + j]).toBe(s);
            }
        }
      }
    }
    for (const len of [1, 2, 5, 17, 1000]) {
      const a = Float64Array.from({ length: len }, () => 100 + rng.normal());
      const b = Float64Array.from({ length: len }, (_, e) => a[e] + 1e-9 * rng.normal() + 3);
      for (const simd of native().simdPaths()) {
        const dd = native().testing.pairDd(a, b, simd);
        let s = 0, q = 0;
        for (let e = 0; e < len; e++) (s += a[e] - b[e]), (q += (a[e] - b[e]) ** 2);
        const md = s / len;
        let m2 = 0;
        for (let e = 0; e < len; e++) m2 += (a[e] - b[e] - md) ** 2;
        expect(abs(dd[0] - q) / q).toBeLessThan(1e-13);
        expect(abs(dd[1] - s) / abs(s)).toBeLessThan(1e-13);
        if (len > 1) expect(abs(dd[2] - m2) / m2).toBeLessThan(1e-6); // m2 is ~1e-18 of q: the brute force is the inexact one
        const mo = native().testing.moments2(a, simd);
        const mean = a.reduce((x, y) => x + y, 0) / len;
        expect(abs(mo[0] - mean) / mean).toBeLessThan(1e-14);
      }
    }
  });
});

describe('row maps (no reader sets one yet: through testing.pairwiseRowMaps)', () => {
  test('a view read through a row map lines up with its unpermuted twin, on the CPU and the GPU emulator', async () => {
    const rng = new Rng(14);
    const rows = 24, re = 48;
    const a = Array.from({ length: rows * re }, () => 0.02 * rng.normal());
    const c = a.map((v) => v + 0.001 * rng.normal());
    // b stores logical row r as row map[r]: a head-wise permutation like llama.cpp's Q/K one
    const map = Uint32Array.from({ length: rows }, (_, r) => { const h = Math.floor(r / 8), i = r % 8; return h * 8 + (i % 2 ? 4 + (i >> 1) : i >> 1); });
    const b = new Array<number>(rows * re);
    for (let r = 0; r < rows; r++) for (let e = 0; e < re; e++) b[map[r] * re + e] = a[r * re + e];
    const dir = path.join(tmp.dir, 'rowmap');
    fs.mkdirSync(dir, { recursive: true });
    const files = [a, b, c].map((x, m) => {
      const f = path.join(dir, `m${m}.safetensors`);
      writeSafetensors(f, [{ name: 'q', dtype: 'F32', shape: [rows, re], data: encode('F32', x) }, { name: 'n', dtype: 'F32', shape: [re], data: encode('F32', x.slice(0, re)) }]);
      return { files: [f], index: '' };
    });
    const plan = [{ name: 'q', rows: [rows, rows, rows], rowElems: re }, { name: 'n', rows: [re, re, re], rowElems: 1 }];
    const maps = [{ model: 1, tensor: 'q', map }];
    const emulator = path.join(__dirname, '..', 'build', 'Release', 'libmother_gpu_emulator.so');
    for (const opts of [{ chunkElems: 64, jobElems: 200 }, {}, { backend: 'cuda' as const, gpuLibrary: emulator, jobElems: 100 }]) {
      const got = await native().testing.pairwiseRowMaps(files, plan, { relatedness: true, ...opts }, maps);
      const q = got.tensors[0];
      expect(q.sumSq[0]).toBe(0); // a vs b: the same values once b is read through its map
      expect(q.oneMinusR[0]).toBe(0);
      expect(q.sumSq[1]).toBeGreaterThan(0);
      // a vs c and b vs c: the same comparison
      expect(abs(q.sumSq[2] - q.sumSq[1]) / q.sumSq[1]).toBeLessThan(1e-13);
      expect(abs(q.oneMinusR[2] - q.oneMinusR[1]) / q.oneMinusR[1]).toBeLessThan(1e-11);
      expect(abs(q.rShift1![2] - q.rShift1![1])).toBeLessThan(1e-13);
    }
    // without the map, b is a scrambled copy
    const plain = await native().testing.pairwiseRowMaps(files, plan, {}, []);
    expect(plain.tensors[0].sumSq[0]).toBeGreaterThan(0);
    await expect(native().testing.pairwiseRowMaps(files, plan, {}, [{ model: 1, tensor: 'q', map: new Uint32Array(3) }])).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});
