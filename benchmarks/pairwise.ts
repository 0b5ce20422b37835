// Pairwise engine benchmark: N models read once vs a plain read of the same bytes, and vs a
// naive per-pair baseline that reads both models again for every pair (the reference's I/O).
// The target row is `metrics: ['rms']` (Gram products only, as `mother distances --metric rms`
// and recover run it); the last ratio adds l1 and maxdiff (the differences themselves).
import * as path from 'node:path';

import { inspectModel, pairwiseStats } from '../lib';
import { native } from '../lib/core/binding';
import { ensureWeightsFile, gbps, table } from './common';

/** The benchmark family: n BF16 models of modelMiB each (written once under the data folder). */
export function pairwiseModels(n: number, modelMiB: number): string[] {
  const files: string[] = [];
  for (let m = 0; m < n; m++) {
    process.stderr.write(`\rpreparing model ${m + 1}/${n}...`);
    files.push(ensureWeightsFile(path.join('family', `model-${String(m).padStart(2, '0')}-BF16-${modelMiB}MiB.safetensors`), 'BF16', modelMiB * 2 ** 20, m + 1));
  }
  process.stderr.write('\n');
  return files;
}

export async function benchPairwise(opts: { sizes: number[]; modelMiB: number; naiveMaxPairs: number }): Promise<string> {
  const addon = native();
  const maxN = Math.max(...opts.sizes);
  const files = pairwiseModels(maxN, opts.modelMiB);
  const rows: (string | number)[][] = [];
  for (const n of opts.sizes) {
    const set = files.slice(0, n);
    await addon.testing.plainRead(set, {}); // warm
    const plain = await addon.testing.plainRead(set, {});
    const plainGBps = gbps(plain.bytes, plain.seconds);
    // the target row: the RMS distance (Gram products only); then every metric (the differences too)
    const r = await pairwiseStats(set, { backend: 'cpu', metrics: ['rms'] });
    const all = await pairwiseStats(set, { backend: 'cpu' });
    const total = r.bytesRead.reduce((a, b) => a + b, 0);
    const pairs = (n * (n - 1)) / 2;
    const tensorBytes = (await Promise.all(set.map((f) => inspectModel(f)))).map((h) => h.tensors.reduce((a, t) => a + t.bytes, 0));
    const ratios = r.bytesRead.map((b, i) => b / tensorBytes[i]);
    const readRatio = `${Math.min(...ratios).toFixed(2)}x` + (Math.max(...ratios) !== Math.min(...ratios) ? `..${Math.max(...ratios).toFixed(2)}x` : '');
    // naive: every pair reads both models again (capped number of pairs, then per-pair time x pairs)
    const sample: [number, number][] = [];
    for (let i = 0; i < n && sample.length < opts.naiveMaxPairs; i++) for (let j = i + 1; j < n && sample.length < opts.naiveMaxPairs; j++) sample.push([i, j]);
    const t0 = process.hrtime.bigint();
    for (const [i, j] of sample) await pairwiseStats([set[i], set[j]], { backend: 'cpu', metrics: ['rms'] });
    const naiveSec = (Number(process.hrtime.bigint() - t0) / 1e9) * (pairs / sample.length);
    rows.push([
      n,
      pairs,
      (total / 2 ** 30).toFixed(2) + ' GiB',
      readRatio,
      plainGBps.toFixed(2),
      gbps(total, r.seconds).toFixed(2),
      (gbps(total, r.seconds) / plainGBps).toFixed(2),
      (pairs / r.seconds).toFixed(1),
      (gbps(total, all.seconds) / plainGBps).toFixed(2),
      naiveSec.toFixed(2) + (sample.length < pairs ? ` (${sample.length}/${pairs} pairs timed)` : ''),
      (naiveSec / r.seconds).toFixed(1) + 'x',
    ]);
  }
  return table(
    ['N models', 'pairs', 'bytes', 'bytes read / model size', 'plain read GB/s', 'rms GB/s', 'ratio rms', 'pairs/s', 'ratio rms+l1+maxdiff', 'naive per-pair s', 'speed-up'],
    rows,
  );
}
