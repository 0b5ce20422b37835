// Issue 15.5: models of very many tiny tensors. Correctness only (no wall-clock assertions:
// the timings are in `npm run bench -- scale`): the statistics table of 150k tensors renders
// (it overflowed the stack), recover runs on many tiny tensors, and the rank of a small
// tensor's difference (the reduced sketch path, 4n <= k) is the exact rank.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { pairwiseStats, recover, scanModel } from '../lib';
import { table } from '../lib/output/format';
import { writeManyTensors } from './helpers/many_tensors';
import { Rng } from './helpers/reference';
import { encode, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const BIN = path.resolve(__dirname, '..', 'bin', 'mother.js');
let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir();
});
afterAll(() => tmp.cleanup());

test('150k tensors: scanModel, the stats table and `mother stats` (no stack overflow)', async () => {
  const file = path.join(tmp.dir, 'many.safetensors');
  writeManyTensors(file, 150_000, 3);
  const s = await scanModel(file);
  expect(s.tensors.length).toBe(150_000);
  expect(s.tensors[149_999].name).toBe('layers.149999.weight');
  const t = table(['tensor', 'mean'], s.tensors.map((x) => [x.name, String(x.mean)]));
  expect(t.split('\n').length).toBe(150_002);
  const cli = spawnSync(process.execPath, [BIN, 'stats', file, '--quiet'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  expect(cli.stderr).toBe('');
  expect(cli.status).toBe(0);
  expect(cli.stdout).toContain('layers.149999.weight');
  expect(cli.stdout).toContain('150000 tensors');
});

test('recover on 2 models x 20k tiny tensors: one family, one edge', async () => {
  const dir = path.join(tmp.dir, 'pair');
  for (const [m, noise] of [['a', 0], ['b', 0.05]] as const) {
    fs.mkdirSync(path.join(dir, m), { recursive: true });
    writeManyTensors(path.join(dir, m, 'model.safetensors'), 20_000, 7, noise, 4);
  }
  const g = await recover([path.join(dir, 'a'), path.join(dir, 'b')], { threads: 2 });
  expect(g.families.length).toBe(1);
  expect(g.edges.length).toBe(1);
});

test('rank of differences of small square tensors: the sketch equals the exact rank', async () => {
  const rng = new Rng(11);
  const dir = path.join(tmp.dir, 'rank');
  fs.mkdirSync(dir);
  const n = 8;
  const base = Array.from({ length: n * n }, () => rng.normal());
  // model r: base + a rank-r update (r = 0..3)
  const files = [0, 1, 2, 3].map((r) => {
    const w = base.slice();
    for (let q = 0; q < r; q++) {
      const u = Array.from({ length: n }, () => rng.normal()), v = Array.from({ length: n }, () => rng.normal());
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) w[i * n + j] += u[i] * v[j];
    }
    const f = path.join(dir, `r${r}.safetensors`);
    writeSafetensors(f, [
      { name: 'small.weight', dtype: 'F64', shape: [n, n], data: encode('F64', w) },
      { name: 'tiny.weight', dtype: 'F64', shape: [2, 2], data: encode('F64', w.slice(0, 4)) },
    ]);
    return f;
  });
  const sketch = await pairwiseStats(files, { metrics: ['rank'] });
  const exact = await pairwiseStats(files, { metrics: ['rank'], rank: { exact: true } });
  for (const name of ['small.weight', 'tiny.weight']) {
    const ls = sketch.layers.find((l) => l.name === name)!, le = exact.layers.find((l) => l.name === name)!;
    expect(Array.from(ls.rank!)).toEqual(Array.from(le.rank!));
  }
  const small = sketch.layers.find((l) => l.name === 'small.weight')!;
  expect(small.rank![0 * 4 + 1]).toBe(1);
  expect(small.rank![0 * 4 + 2]).toBe(2);
  expect(small.rank![0 * 4 + 3]).toBe(3);
  expect(small.rank![1 * 4 + 3]).toBe(4); // independent rank-1 and rank-3 updates: 1 + 3
});
