// The pairwise engine against an independent float64 brute force (per pair, whole tensors).
import * as fs from 'node:fs';
import * as path from 'node:path';

import { alignTensors, inspectModel, pairwiseStats } from '../lib';
import { native } from '../lib/core/binding';
import { close, Rng } from './helpers/reference';
import { decode, encode, FloatDtype, TensorSpec, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const { abs, max, min, sqrt } = Math; // global lookups are slow in jest's VM context
let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir();
});
afterAll(() => tmp.cleanup());

interface Spec { name: string; dtype: FloatDtype; shape: number[]; values: number[] }

/** A family: a base set of tensors, each model a perturbation of it, some with extra rows. */
function makeFamily(rng: Rng, nModels: number, opts: { nonFinite?: boolean; resized?: boolean } = {}): Spec[][] {
  const dtypes: FloatDtype[] = ['F32', 'BF16', 'F16', 'F64', 'F8_E4M3'];
  const base = [
    { name: 'embed.weight', shape: [40, 16] },
    { name: 'layers.0.attn.o_proj.weight', shape: [16, 16] },
    { name: 'layers.0.mlp.up.weight', shape: [33, 16] },
    { name: 'norm.weight', shape: [16] },
    { name: 'scalar', shape: [] as number[] },
  ].map((t) => ({ ...t, values: Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, () => 0.02 * rng.normal()) }));
  return Array.from({ length: nModels }, (_, m) =>
    base.map((t) => {
      let shape = t.shape;
      let values = t.values.map((v) => v + 0.005 * (m + 1) * rng.normal());
      if (opts.resized && t.name === 'embed.weight' && m % 3 === 1) {
        shape = [t.shape[0] + 4, ...t.shape.slice(1)];
        values = values.concat(Array.from({ length: 4 * 16 }, () => 0.02 * rng.normal()));
      }
      if (opts.nonFinite && m % 2 === 0 && values.length > 10) {
        values[3] = NaN;
        values[7] = m % 4 === 0 ? Infinity : -Infinity;
      }
      return { name: t.name, dtype: dtypes[(m + t.name.length) % dtypes.length], shape, values };
    }),
  );
}

function writeModel(dir: string, specs: Spec[]): { path: string; decoded: Map<string, { shape: number[]; x: Float64Array }> } {
  fs.mkdirSync(dir, { recursive: true });
  const tensors: TensorSpec[] = specs.map((s) => ({ name: s.name, dtype: s.dtype, shape: s.shape, data: encode(s.dtype, s.values) }));
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  const decoded = new Map(tensors.map((t) => [t.name, { shape: t.shape, x: decode(t.dtype as FloatDtype, t.data) }]));
  return { path: dir, decoded };
}

function brute(a: Float64Array, b: Float64Array, n: number) {
  let ss = 0, sa = 0, mx = -Infinity, mn = Infinity, count = 0, skipped = 0;
  for (let i = 0; i < n; i++) {
    if (!isFinite(a[i]) || !isFinite(b[i])) {
      skipped++;
      continue;
    }
    const d = a[i] - b[i];
    ss += d * d;
    sa += abs(d);
    mx = max(mx, d);
    mn = min(mn, d);
    count++;
  }
  return { ss, sa, mx, mn, count, skipped };
}

async function checkAgainstBrute(nModels: number, seed: number, opts: { nonFinite?: boolean; resized?: boolean } = {}) {
  const rng = new Rng(seed);
  const fam = makeFamily(rng, nModels, opts);
  const models = fam.map((specs, m) => writeModel(path.join(tmp.dir, `s${seed}-n${nModels}`, `m${m}`), specs));
  const got = await pairwiseStats(models.map((m) => m.path), { chunkElems: 64, jobElems: 192 });
  const failures: string[] = [];
  for (const layer of got.layers) {
    for (let i = 0; i < nModels; i++)
      for (let j = 0; j < nModels; j++) {
        if (i === j) continue;
        const A = models[i].decoded.get(layer.name)!;
        const B = models[j].decoded.get(layer.name)!;
        const rowsA = A.shape.length ? A.shape[0] : 1, rowsB = B.shape.length ? B.shape[0] : 1;
        const n = min(rowsA, rowsB) * layer.rowElems;
        const r = brute(A.x, B.x, n);
        const k = i * nModels + j;
        const want = { rms: sqrt(r.ss / r.count), meanAbs: r.sa / r.count, maxDiff: r.mx, count: r.count, skipped: r.skipped };
        const have = { rms: layer.rms[k], meanAbs: layer.meanAbs[k], maxDiff: layer.maxDiff[k], count: layer.count[k], skipped: layer.skipped[k] };
        for (const key of Object.keys(want) as (keyof typeof want)[]) {
          if (!close(have[key], want[key], 1e-12)) failures.push(`${layer.name} (${i},${j}) ${key}: ${have[key]} vs ${want[key]}`);
        }
      }
  }
  return { got, failures };
}

describe('pairwiseStats', () => {
  test('N = 2..16 against the brute force, mixed dtypes', async () => {
    for (const n of [2, 3, 5, 8, 16]) {
      const { failures, got } = await checkAgainstBrute(n, 100 + n);
      expect(failures).toEqual([]);
      expect(got.layers.map((l) => l.name)).toEqual(['embed.weight', 'layers.0.attn.o_proj.weight', 'layers.0.mlp.up.weight', 'norm.weight', 'scalar']);
    }
  });

  test('resized vocabulary: compared on the shared rows and reported as resized', async () => {
    const { failures, got } = await checkAgainstBrute(6, 7, { resized: true });
    expect(failures).toEqual([]);
    const embed = got.layers.find((l) => l.name === 'embed.weight')!;
    expect(embed.resized).toBe(true);
    expect(embed.rows).toEqual([40, 44, 40, 40, 44, 40]);
    expect(embed.count[0 * 6 + 1]).toBe(40 * 16);
    expect(embed.count[1 * 6 + 4]).toBe(44 * 16);
  });

  test('NaN and Inf are skipped and counted, never poison the sums', async () => {
    const { failures, got } = await checkAgainstBrute(5, 9, { nonFinite: true });
    expect(failures).toEqual([]);
    const up = got.layers.find((l) => l.name === 'layers.0.mlp.up.weight')!;
    expect(up.skipped[0 * 5 + 1]).toBe(2);
    expect(Number.isFinite(up.rms[0 * 5 + 2])).toBe(true);
  });

  test('every model byte of a compared tensor is read exactly once', async () => {
    const rng = new Rng(11);
    const fam = makeFamily(rng, 4, { resized: true });
    const models = fam.map((specs, m) => writeModel(path.join(tmp.dir, 'bytes', `m${m}`), specs));
    const got = await pairwiseStats(models.map((m) => m.path), { chunkElems: 64 });
    for (let m = 0; m < 4; m++) {
      const header = await inspectModel(models[m].path);
      expect(got.bytesRead[m]).toBe(header.tensors.reduce((a, t) => a + t.bytes, 0));
    }
  });

  test('results are bit-identical for any thread count; chunk size changes only rounding', async () => {
    const rng = new Rng(12);
    const fam = makeFamily(rng, 7);
    const paths = fam.map((specs, m) => writeModel(path.join(tmp.dir, 'threads', `m${m}`), specs).path);
    // 64-element sub-chunks, 128-element jobs: many jobs per tensor, reduced in order
    const base = await pairwiseStats(paths, { threads: 1, chunkElems: 64, jobElems: 128 });
    for (const threads of [2, 3, 8]) {
      const other = await pairwiseStats(paths, { threads, chunkElems: 64, jobElems: 128 });
      expect(other.layers).toEqual(base.layers);
    }
    const big = await pairwiseStats(paths, { chunkElems: 4096 });
    for (let l = 0; l < base.layers.length; l++)
      for (let k = 0; k < 49; k++) expect(close(big.layers[l].rms[k], base.layers[l].rms[k], 1e-13)).toBe(true);
  });

  test('N = 1 and N = 0: empty results, no crash', async () => {
    const one = writeModel(path.join(tmp.dir, 'one'), makeFamily(new Rng(1), 1)[0]);
    const r1 = await pairwiseStats([one.path]);
    expect(r1.n).toBe(1);
    expect(r1.layers).toEqual([]);
    const r0 = await pairwiseStats([]);
    expect(r0.layers).toEqual([]);
  });

  test('incompatible shapes are skipped and reported; the layer filter selects tensors', async () => {
    const rng = new Rng(13);
    const fam = makeFamily(rng, 3);
    fam[2][1] = { ...fam[2][1], shape: [8, 32] }; // o_proj reshaped: not comparable
    const paths = fam.map((specs, m) => writeModel(path.join(tmp.dir, 'incompat', `m${m}`), specs).path);
    const got = await pairwiseStats(paths);
    const o = got.layers.find((l) => l.name === 'layers.0.attn.o_proj.weight')!;
    expect(o.rows).toEqual([16, 16, -1]);
    expect(Number.isNaN(o.rms[0 * 3 + 2])).toBe(true);
    expect(got.skipped).toContainEqual(expect.objectContaining({ name: 'layers.0.attn.o_proj.weight', model: 2 }));
    const filtered = await pairwiseStats(paths, { layers: /o_proj|up/ });
    expect(filtered.layers.map((l) => l.name)).toEqual(['layers.0.attn.o_proj.weight', 'layers.0.mlp.up.weight']);
  });

  test('aggregates: mean of per-layer RMS, sum of mean |diff|, max of normalised max diff', async () => {
    const rng = new Rng(14);
    const paths = makeFamily(rng, 4).map((specs, m) => writeModel(path.join(tmp.dir, 'agg', `m${m}`), specs).path);
    const got = await pairwiseStats(paths);
    const n = 4;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        const k = i * n + j;
        if (i === j) {
          expect(got.aggregates.meanRms[k]).toBe(0);
          continue;
        }
        const rms = got.layers.map((l) => l.rms[k]);
        expect(close(got.aggregates.meanRms[k], rms.reduce((a, b) => a + b, 0) / rms.length, 1e-14)).toBe(true);
        expect(close(got.aggregates.sumMeanAbs[k], got.layers.reduce((a, l) => a + l.meanAbs[k], 0), 1e-14)).toBe(true);
        expect(got.aggregates.maxNormMaxDiff[k]).toBeGreaterThanOrEqual(0);
        expect(got.aggregates.maxNormMaxDiff[k]).toBeLessThanOrEqual(1);
        expect(got.aggregates.meanRms[k]).toBe(got.aggregates.meanRms[j * n + i]);
      }
  });

  test('pair_diff kernels: every SIMD path agrees with scalar', () => {
    const rng = new Rng(15);
    for (const len of [0, 1, 7, 8, 15, 16, 17, 1000, 4099]) {
      const a = Float64Array.from({ length: len }, () => rng.normal());
      const b = Float64Array.from({ length: len }, () => rng.normal());
      const want = native().testing.pairDiff(a, b, 'scalar');
      for (const simd of native().simdPaths()) {
        const got = native().testing.pairDiff(a, b, simd);
        for (let k = 0; k < 4; k++) expect(close(got[k], want[k], 1e-13)).toBe(true);
      }
    }
  });

  test('alignment: same names, different ranks or trailing shapes are never compared', () => {
    const h = (tensors: { name: string; dtype: string; shape: number[] }[]) => ({ model: 'x', files: [], tensors: tensors.map((t) => ({ ...t, file: 'f', offset: 0, bytes: 0 })) });
    const a = alignTensors([
      h([{ name: 'w', dtype: 'F32', shape: [4, 8] }, { name: 'ids', dtype: 'I64', shape: [4] }]),
      h([{ name: 'w', dtype: 'BF16', shape: [6, 8] }, { name: 'ids', dtype: 'I64', shape: [4] }]),
      h([{ name: 'w', dtype: 'F16', shape: [4, 8, 1] }]),
    ]);
    expect(a.tensors).toHaveLength(1);
    expect(a.tensors[0]).toMatchObject({ name: 'w', rows: [4, 6, -1], rowElems: 8, resized: true });
    expect(a.skipped).toEqual([{ name: 'w', model: 2, reason: expect.stringMatching(/not comparable/) }]);
  });
});

describe('pairwiseStats moments', () => {
  test('per-model moments of chosen tensors come from the same read and match scanModel', async () => {
    const { scanModel } = await import('../lib');
    const rng = new Rng(16);
    const fam = makeFamily(rng, 3, { resized: true, nonFinite: true });
    const paths = fam.map((specs, m) => writeModel(path.join(tmp.dir, 'moments', `m${m}`), specs).path);
    const got = await pairwiseStats(paths, { moments: /embed|up/, chunkElems: 64, jobElems: 128 });
    for (let m = 0; m < 3; m++) {
      const s = await scanModel(paths[m]);
      for (const name of ['embed.weight', 'layers.0.mlp.up.weight']) {
        const want = s.tensors.find((t) => t.name === name)!;
        const have = got.layers.find((l) => l.name === name)!.moments![m]!;
        expect(have.count + have.nan + have.inf).toBe(want.count);
        expect(close(have.kurtosis, want.kurtosis!, 1e-12, 1)).toBe(true);
        expect(close(have.std, want.std!, 1e-12)).toBe(true);
        expect(have.nan).toBe(want.nan);
      }
    }
    expect(got.layers.find((l) => l.name === 'norm.weight')!.moments).toBeUndefined();
  });
});

describe('pair_diff4', () => {
  test('four pairs at once equal four single pairs on every SIMD path', () => {
    const rng = new Rng(17);
    for (const len of [0, 3, 8, 17, 1024, 1031]) {
      const rows = Array.from({ length: 5 }, () => Float64Array.from({ length: len }, () => rng.normal()));
      for (const simd of native().simdPaths()) {
        const four = native().testing.pairDiff4(rows.slice(0, 4), rows[4], simd);
        for (let k = 0; k < 4; k++) {
          const want = native().testing.pairDiff(rows[k], rows[4], 'scalar');
          for (let q = 0; q < 4; q++) expect(close(four[4 * k + q], want[q], 1e-13)).toBe(true);
        }
      }
    }
  });

  test('the blocked pair loop (N = 9, blocks of four, equal and unequal rows) matches the brute force', async () => {
    const { failures } = await checkAgainstBrute(9, 77, { resized: true });
    expect(failures).toEqual([]);
  });
});

describe('pairwiseStats progress and cancellation', () => {
  test('progress reaches the total; an AbortSignal cancels the native pass with ERR_CANCELLED', async () => {
    const rng = new Rng(18);
    const paths = makeFamily(rng, 4).map((specs, m) => writeModel(path.join(tmp.dir, 'abort', `m${m}`), specs).path);
    const events: { bytesDone: number; bytesTotal: number }[] = [];
    await pairwiseStats(paths, { onProgress: (p) => events.push(p), chunkElems: 64, jobElems: 64, threads: 1 });
    expect(events.length).toBeGreaterThan(0);
    const ac = new AbortController();
    ac.abort();
    await expect(pairwiseStats(paths, { signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_CANCELLED' });
    // abort from the first progress report: the remaining jobs stop in the native workers
    const ac2 = new AbortController();
    const big = Array.from({ length: 2 }, (_, m) => {
      const file = path.join(tmp.dir, 'abort', `big${m}.safetensors`);
      const n = 1 << 22;
      writeSafetensors(file, [{ name: 'w', dtype: 'F32', shape: [n], data: new Uint8Array(new Float32Array(n).fill(m).buffer) }]);
      return file;
    });
    await expect(
      pairwiseStats(big, { threads: 1, simd: 'scalar', chunkElems: 64, jobElems: 64, signal: ac2.signal, onProgress: () => ac2.abort() }),
    ).rejects.toMatchObject({ code: 'ERR_CANCELLED' });
  });
});

describe('pairwiseStats on trained models', () => {
  test('the Llama-like family of the sample zoo (mixed dtypes, a resized vocabulary) against the brute force', async () => {
    const zoo = path.resolve(__dirname, '..', 'samples', 'zoo-small', 'llm');
    const dirs = fs.readdirSync(zoo).sort().map((d) => path.join(zoo, d));
    const got = await pairwiseStats(dirs);
    expect(got.layers.some((l) => l.resized)).toBe(true); // the child with extra embedding rows
    const { readFileSync } = fs;
    const load = (dir: string) => {
      const idx = path.join(dir, 'model.safetensors.index.json');
      const files = fs.existsSync(idx)
        ? [...new Set(Object.values((JSON.parse(readFileSync(idx, 'utf8')) as { weight_map: Record<string, string> }).weight_map))].map((f) => path.join(dir, f))
        : [path.join(dir, 'model.safetensors')];
      const out = new Map<string, { shape: number[]; x: Float64Array }>();
      for (const f of files) {
        const buf = readFileSync(f);
        const n = Number(buf.readBigUInt64LE(0));
        const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
        for (const [name, t] of Object.entries(header)) {
          if (name === '__metadata__') continue;
          const bytes = new Uint8Array(buf.buffer, buf.byteOffset + 8 + n + t.data_offsets[0], t.data_offsets[1] - t.data_offsets[0]);
          out.set(name, { shape: t.shape, x: decode(t.dtype as FloatDtype, bytes.slice()) });
        }
      }
      return out;
    };
    const models = dirs.map(load);
    const failures: string[] = [];
    const n = dirs.length;
    for (const layer of got.layers)
      for (let i = 0; i < n; i++)
        for (let j = i + 1; j < n; j++) {
          const A = models[i].get(layer.name)!, B = models[j].get(layer.name)!;
          const r = brute(A.x, B.x, min(A.shape[0] ?? 1, B.shape[0] ?? 1) * layer.rowElems);
          const k = i * n + j;
          if (!close(layer.rms[k], sqrt(r.ss / r.count), 1e-12)) failures.push(`${layer.name} (${i},${j}) rms ${layer.rms[k]} vs ${sqrt(r.ss / r.count)}`);
          if (!close(layer.meanAbs[k], r.sa / r.count, 1e-12)) failures.push(`${layer.name} (${i},${j}) meanAbs`);
          if (layer.maxDiff[k] !== r.mx || layer.maxDiff[j * n + i] !== -r.mn) failures.push(`${layer.name} (${i},${j}) max/min`);
        }
    expect(failures).toEqual([]);
  });
});

describe('pairwiseStats metrics and result form', () => {
  test('only the aggregates of the metrics asked are computed, equal to those of the default', async () => {
    const paths = makeFamily(new Rng(19), 4).map((specs, m) => writeModel(path.join(tmp.dir, 'metrics', `m${m}`), specs).path);
    const all = await pairwiseStats(paths);
    expect(Object.keys(all.aggregates).sort()).toEqual(['maxNormMaxDiff', 'meanRms', 'sumMeanAbs']);
    const rms = await pairwiseStats(paths, { metrics: ['rms'] });
    expect(Object.keys(rms.aggregates)).toEqual(['meanRms']);
    // @ts-expect-error: an aggregate not asked for is not in the result's type either
    expect(rms.aggregates.sumMeanAbs).toBeUndefined();
    expect(Array.from(rms.aggregates.meanRms)).toEqual(Array.from(all.aggregates.meanRms));
    const l1 = await pairwiseStats(paths, { metrics: ['l1', 'maxdiff'] });
    expect(Object.keys(l1.aggregates).sort()).toEqual(['maxNormMaxDiff', 'sumMeanAbs']);
    expect(Array.from(l1.aggregates.maxNormMaxDiff)).toEqual(Array.from(all.aggregates.maxNormMaxDiff));
    // the per-layer distances do not depend on the metrics asked; l1 and maxdiff need the
    // differences themselves, which an rms-only pass does not compute (NaN off the diagonal)
    const lean = (ls: typeof all.layers) => ls.map((l) => ({ ...l, meanAbs: null, maxDiff: null }));
    expect(lean(rms.layers)).toEqual(lean(all.layers));
    for (const l of rms.layers) l.meanAbs.forEach((v, k) => expect(k % 5 === 0 ? v === 0 : Number.isNaN(v)).toBe(true));
    expect(l1.layers).toEqual(all.layers);
  });

  test('per-layer N x N matrices: symmetric where they should be, a plain object to spread and serialise', async () => {
    const n = 3;
    const paths = makeFamily(new Rng(20), n).map((specs, m) => writeModel(path.join(tmp.dir, 'form', `m${m}`), specs).path);
    const got = await pairwiseStats(paths);
    const layer = got.layers[0];
    expect(Object.keys(layer)).toEqual(['name', 'rows', 'rowElems', 'resized', 'rms', 'meanAbs', 'maxDiff', 'count', 'skipped', 'grid']);
    for (let i = 0; i < n; i++) {
      expect([layer.rms[i * n + i], layer.meanAbs[i * n + i], layer.maxDiff[i * n + i], layer.count[i * n + i]]).toEqual([0, 0, 0, 0]);
      for (let j = 0; j < n; j++) {
        expect(layer.rms[i * n + j]).toBe(layer.rms[j * n + i]);
        expect(layer.count[i * n + j]).toBe(layer.count[j * n + i]);
      }
    }
    const copy = { ...got.layers[1] };
    expect(copy.rms).toBeInstanceOf(Float64Array);
    expect(copy).toEqual(got.layers[1]);
    const json = JSON.parse(JSON.stringify(got.layers[2]));
    expect(json.rms['1']).toBe(got.layers[2].rms[1]);
    got.layers[2].rms = new Float64Array(9); // writable like a plain property
    expect(got.layers[2].rms[1]).toBe(0);
  });

  test('a 0 x 0 tensor gets no rank (it is not a square matrix to sketch)', async () => {
    const dirs = [0, 1, 2].map((m) => {
      const dir = path.join(tmp.dir, 'empty-square', `m${m}`);
      fs.mkdirSync(dir, { recursive: true });
      writeSafetensors(path.join(dir, 'model.safetensors'), [
        { name: 'empty', dtype: 'F32', shape: [0, 0], data: new Uint8Array(0) },
        { name: 'w', dtype: 'F32', shape: [2, 2], data: encode('F32', [m, 1, 2, 3]) },
      ]);
      return dir;
    });
    const got = await pairwiseStats(dirs, { metrics: ['rank'] });
    expect(got.layers.map((l) => [l.name, l.rank !== undefined])).toEqual([['empty', false], ['w', true]]);
    expect(got.aggregates.sumRank![0 * 3 + 1]).toBe(1);
  });
});
