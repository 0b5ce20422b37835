// Rank of differences on merged-LoRA models: the streaming sketch and the exact mode against
// numpy.linalg.matrix_rank (fp32 storage), and the dtype-aware tolerance on bf16/fp16 storage
// where numpy's float32 tolerance sees rounding noise as full rank.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { pairwiseStats } from '../lib';
import { Rng } from './helpers/reference';
import { encode, FloatDtype, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const N = 128; // matrix size
const TENSOR = 'encoder.layer.0.attention.attention.value.weight';
let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir();
});
afterAll(() => tmp.cleanup());

function gaussian(rng: Rng, n: number, std: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = std * rng.normal();
  return a;
}

/** W + B A (B: N x r, A: r x N), scaled so ||BA||_F = rel * ||W||_F: a merged LoRA delta. */
function mergeLora(rng: Rng, w: Float64Array, r: number, rel: number): Float64Array {
  const b = gaussian(rng, N * r, 1), a = gaussian(rng, r * N, 1);
  const d = new Float64Array(N * N);
  for (let i = 0; i < N; i++)
    for (let k = 0; k < r; k++) {
      const bik = b[i * r + k];
      for (let j = 0; j < N; j++) d[i * N + j] += bik * a[k * N + j];
    }
  let wn = 0, dn = 0;
  for (let i = 0; i < N * N; i++) {
    wn += w[i] * w[i];
    dn += d[i] * d[i];
  }
  const s = rel * Math.sqrt(wn / dn);
  return w.map((x, i) => x + s * d[i]);
}

/** Writes each weight matrix as a model (plus an unrelated non-square tensor). */
function writeModels(name: string, mats: Float64Array[], dtype: FloatDtype): string[] {
  return mats.map((m, i) => {
    const dir = path.join(tmp.dir, name, `m${i}`);
    fs.mkdirSync(dir, { recursive: true });
    writeSafetensors(path.join(dir, 'model.safetensors'), [
      { name: TENSOR, dtype, shape: [N, N], data: encode(dtype, m) },
      { name: 'classifier.weight', dtype, shape: [10, N], data: encode(dtype, m.subarray(0, 10 * N)) },
    ]);
    return dir;
  });
}

function numpyRanks(dirs: string[]): number[][] {
  const r = spawnSync('/usr/bin/python3', [path.join(__dirname, 'helpers', 'numpy_rank.py'), TENSOR, ...dirs.map((d) => path.join(d, 'model.safetensors'))], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`numpy reference failed (is python3-numpy installed?): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { ranks: number[][] }).ranks;
}

function matrix(a: Float64Array, n: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from(a.subarray(i * n, (i + 1) * n)));
}

describe('rank of differences', () => {
  // a parent and LoRA children of ranks 2..24: parent-child differences have rank r,
  // siblings up to r1 + r2 (<= 48 < k - 8)
  const ranks = [2, 4, 8, 16, 24];
  let fp32: string[];
  beforeAll(() => {
    const rng = new Rng(21);
    const parent = gaussian(rng, N * N, 0.02);
    const children = ranks.map((r) => mergeLora(rng, parent, r, 0.05));
    fp32 = writeModels('fp32', [parent, ...children], 'F32');
  });

  test('sketch (k = 64) equals numpy.linalg.matrix_rank on fp32 merged-LoRA models, parent-child and siblings', async () => {
    const want = numpyRanks(fp32);
    expect(want[0].slice(1)).toEqual(ranks); // the reference sees the LoRA ranks
    const got = await pairwiseStats(fp32, { metrics: ['rank'] });
    const layer = got.layers.find((l) => l.name === TENSOR)!;
    expect(matrix(layer.rank!, fp32.length)).toEqual(want);
    // non-square tensors get no rank
    expect(got.layers.find((l) => l.name === 'classifier.weight')!.rank).toBeUndefined();
    expect(matrix(got.aggregates.sumRank!, fp32.length)).toEqual(want);
  });

  test('exact mode equals numpy too', async () => {
    const got = await pairwiseStats(fp32, { metrics: ['rank'], rank: { exact: true } });
    expect(matrix(got.layers.find((l) => l.name === TENSOR)!.rank!, fp32.length)).toEqual(numpyRanks(fp32));
  });

  test('rank 64 needs k > 64: with k = 96 the sketch matches numpy; the exact mode needs no k', async () => {
    const rng = new Rng(22);
    const parent = gaussian(rng, N * N, 0.02);
    const dirs = writeModels('r64', [parent, mergeLora(rng, parent, 64, 0.05), mergeLora(rng, parent, 16, 0.05)], 'F32');
    const want = numpyRanks(dirs);
    expect(want[0][1]).toBe(64);
    const sk = await pairwiseStats(dirs, { metrics: ['rank'], rank: { k: 96 } });
    expect(matrix(sk.layers[0].rank!, 3)).toEqual(want);
    const ex = await pairwiseStats(dirs, { metrics: ['rank'], rank: { exact: true } });
    expect(matrix(ex.layers[0].rank!, 3)).toEqual(want);
    // with the default k = 64 the sketch saturates: a rank of k means "k or more"
    const small = await pairwiseStats(dirs, { metrics: ['rank'] });
    expect(small.layers[0].rank![0 * 3 + 1]).toBe(64);
    expect(small.layers[0].rank![1 * 3 + 2]).toBe(64);
    // and says so: the two pairs (0-1, 1-2) of that layer, not the rank-16 pair 0-2
    expect(small.warnings).toEqual([`${small.layers[0].name}: the rank of 2 pairs reached the sketch size k = 64: k or more: ask for a larger --rank-k`]);
    expect(sk.warnings).toEqual([]);
    expect(ex.warnings).toEqual([]);
  });

  test('the exact SVDs are a progress stage of their own, counted to the end; the pass time includes them', async () => {
    const seen: { bytesDone: number; bytesTotal: number; svdDone?: number; svdTotal?: number }[] = [];
    const t0 = process.hrtime.bigint();
    const ex = await pairwiseStats(fp32, { metrics: ['rank'], rank: { exact: true }, onProgress: (p) => seen.push({ ...p }) });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const pairs = (fp32.length * (fp32.length - 1)) / 2; // one square tensor ranked per pair
    const svd = seen.filter((p) => (p.svdTotal ?? 0) > 0);
    expect(svd.length).toBeGreaterThan(0);
    for (const p of svd) {
      expect(p.svdTotal).toBe(pairs);
      expect(p.bytesDone).toBe(p.bytesTotal); // after the read
    }
    // counts never go back, and the stage is seen finished
    for (let i = 1; i < svd.length; i++) expect(svd[i].svdDone!).toBeGreaterThanOrEqual(svd[i - 1].svdDone!);
    expect(svd.some((p) => p.svdDone === pairs)).toBe(true);
    expect(ex.seconds).toBeGreaterThan(0);
    expect(ex.seconds).toBeLessThanOrEqual(wall);
    // the sketch has no such stage
    const seen2: { svdTotal?: number }[] = [];
    await pairwiseStats(fp32, { metrics: ['rank'], onProgress: (p) => seen2.push({ ...p }) });
    expect(seen2.every((p) => !p.svdTotal)).toBe(true);
  });

  for (const dtype of ['BF16', 'F16'] as FloatDtype[]) {
    test(`${dtype} storage: numpy sees rounding noise as full rank; the dtype-aware tolerance recovers the LoRA rank`, async () => {
      const rng = new Rng(dtype === 'BF16' ? 23 : 24);
      const parent = gaussian(rng, N * N, 0.02);
      const r = [4, 8, 16];
      const dirs = writeModels(dtype, [parent, ...r.map((x) => mergeLora(rng, parent, x, 0.1))], dtype);
      const numpy = numpyRanks(dirs);
      expect(numpy[0][1]).toBeGreaterThan(100); // storage noise: (nearly) full rank for numpy
      const want = [
        [0, 4, 8, 16],
        [4, 0, 12, 20],
        [8, 12, 0, 24],
        [16, 20, 24, 0],
      ];
      const sk = await pairwiseStats(dirs, { metrics: ['rank'] });
      expect(matrix(sk.layers.find((l) => l.name === TENSOR)!.rank!, 4)).toEqual(want);
      const ex = await pairwiseStats(dirs, { metrics: ['rank'], rank: { exact: true } });
      expect(matrix(ex.layers.find((l) => l.name === TENSOR)!.rank!, 4)).toEqual(want);
    });
  }

  test('sketches are linear and seeded: results independent of threads and chunking, change with the seed only in scale', async () => {
    const a = await pairwiseStats(fp32, { metrics: ['rank'], threads: 1, chunkElems: 128, jobElems: 512 });
    const b = await pairwiseStats(fp32, { metrics: ['rank'], threads: 3, chunkElems: 4096 });
    expect(Array.from(b.layers[0].rank!)).toEqual(Array.from(a.layers[0].rank!));
    const c = await pairwiseStats(fp32, { metrics: ['rank'], rank: { seed: 12345 } });
    expect(Array.from(c.layers[0].rank!)).toEqual(Array.from(a.layers[0].rank!));
  });
});
