// `npm run bench`: speed and memory of the statistics pass, as ratios measured in one run.
//   stats pass GB/s vs a plain read-and-sum of the same bytes through the same mmaps
//   (page cache warm), for F32, F16 and BF16 safetensors files and GGUF files of every block
//   type but Q4_0, of >= 1 GiB, on every SIMD path; peak RSS of a child
//   process scanning a 4 GiB file (BF16 safetensors, Q4_K GGUF).
//   pairwise engine for N = 2, 8, 32, 64 models: GB/s and pairs/s, ratio to a plain read of
//   all N models, bytes read per model, and a naive per-pair-reload baseline.
//   whole pipeline: mother recover vs a reference-style Python pipeline on 5 LLM-shaped models.
//   gpu: the same passes on the CUDA backend vs the CPU, when a GPU is usable (else skipped).
//   pytorch: the statistics pass on a PyTorch checkpoint written by torch.save (ZIP layout) vs a
//   plain read of the same bytes, next to the same tensors as safetensors; peak RSS on 4 GiB.
//   svd: the exact singular values (`--exact-rank`) of n x n matrices, n = 64 .. 1024: the
//   blocked method of the core (all threads and one) vs the one-sided Jacobi it replaced.
//   scale: many tiny tensors (2 models x 10k..100k tensors): scanModel, the stats table,
//   pairwiseStats, recover.
// Usage: npm run bench [-- stats|pairwise|gpu|pipeline|pytorch|method|svd|scale ...] (default: all sections).
// Env: MOTHER_BENCH_GIB (stats file size, default 1), MOTHER_BENCH_RSS_GIB (default 4),
//      MOTHER_BENCH_REPS (default 5), MOTHER_BENCH_MODEL_MIB (pairwise model size, default 64),
//      MOTHER_BENCH_NAIVE_PAIRS (naive baseline pairs timed per N, default 64),
//      MOTHER_BENCH_DIR (data folder), MOTHER_BENCH_DTYPES (stats rows to run, e.g. Q8_0,Q4_K),
//      MOTHER_BENCH_RSS=0 (skip the memory check), MOTHER_BENCH_SVD_SIZES (default 64,128,256,512,1024).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { pairwiseStats, recover, resolveBackend, scanModel } from '../lib';
import { table as textTable } from '../lib/output/format';
import { writeManyTensors } from '../test/helpers/many_tensors';
import { native, packageRoot } from '../lib/core/binding';
import { ensureTorchFile, ensureWeightsFile, gbps, machine, median, table } from './common';
import { ensureGgufFile } from './gguf';
import { benchPairwise, pairwiseModels } from './pairwise';
import { benchMethod } from './method';
import { benchPipeline } from './pipeline';

const GiB = 2 ** 30;

async function benchStats(): Promise<void> {
  const size = Number(process.env.MOTHER_BENCH_GIB || 1) * GiB;
  const rssSize = Number(process.env.MOTHER_BENCH_RSS_GIB || 4) * GiB;
  const reps = Number(process.env.MOTHER_BENCH_REPS || 5);
  const addon = native();
  const paths = addon.simdPaths();
  console.log(`## statistics pass vs plain read (reps: ${reps}, median)\n`);

  const rows: (string | number)[][] = [];
  const sources: [string, () => string][] = [
    ...['F32', 'F16', 'BF16'].map((dtype): [string, () => string] => [dtype, () => ensureWeightsFile(`weights-${dtype}-${size / GiB}GiB.safetensors`, dtype, size)]),
    ...(['Q8_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'MXFP4'] as const).map((q): [string, () => string] => [`${q} (GGUF)`, () => ensureGgufFile(`weights-${q}-${size / GiB}GiB.gguf`, q, size)]),
  ];
  const only = process.env.MOTHER_BENCH_DTYPES?.split(',');
  for (const [dtype, make] of sources.filter(([d]) => !only || only.includes(d.split(' ')[0]))) {
    process.stderr.write(`preparing ${dtype} file...\n`);
    const file = make();
    await addon.testing.plainRead([file], {}); // warm the page cache
    const best = paths.at(-1)!;
    const plain: number[] = [];
    const stats: Record<string, number[]> = Object.fromEntries(paths.map((p) => [p, []]));
    let bytes = 0;
    for (let r = 0; r < reps; r++) {
      // interleave the runs so drift hits every variant alike
      const pr = await addon.testing.plainRead([file], { simd: best });
      plain.push(gbps(pr.bytes, pr.seconds));
      for (const simd of paths) {
        const s = await scanModel(file, { simd, backend: 'cpu' });
        bytes = s.bytes;
        stats[simd].push(gbps(s.bytes, s.seconds));
      }
    }
    const p = median(plain);
    for (const simd of paths) {
      const v = median(stats[simd]);
      rows.push([dtype, (bytes / GiB).toFixed(2) + ' GiB', simd, p.toFixed(2), v.toFixed(2), (v / p).toFixed(2)]);
    }
  }
  console.log(table(['dtype', 'size', 'stats path', 'plain read GB/s', 'stats GB/s', 'ratio'], rows));
  console.log(`\nplain read = native read-and-sum loop over the same mmaps, same threads and chunking (best SIMD); target ratio >= 0.8 on the best path (>= 0.7 for the GGUF block types)\n`);

  if (process.env.MOTHER_BENCH_RSS === '0') return;
  process.stderr.write(`preparing ${rssSize / GiB} GiB files for the memory check...\n`);
  const bigs: [string, string][] = [
    ['BF16 safetensors', ensureWeightsFile(`weights-BF16-${rssSize / GiB}GiB.safetensors`, 'BF16', rssSize)],
    ['Q4_K GGUF', ensureGgufFile(`weights-Q4_K-${rssSize / GiB}GiB.gguf`, 'Q4_K', rssSize)],
  ];
  const memRows: string[][] = [];
  for (const [label, big] of bigs) {
    const m = peakRss(big);
    memRows.push([`scanModel, all threads, ${label}`, `${(m.bytes / GiB).toFixed(2)} GiB`, `${(m.rss / 2 ** 20).toFixed(0)} MiB`, `${(m.base / 2 ** 20).toFixed(0)} MiB`, (m.rss / m.bytes).toFixed(3)]);
  }
  console.log(table(['memory check', 'file', 'peak RSS', 'node + addon alone', 'RSS / file size'], memRows));
}

// Peak RSS (VmHWM) of a child process that scans `file`, and of node + the addon alone.
function peakRss(file: string): { rss: number; base: number; bytes: number } {
  const hwm = `Number(/VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status','utf8'))[1]) * 1024`;
  const lib = JSON.stringify(path.join(packageRoot(), 'dist/lib/index.js'));
  const script = `require(${lib}).scanModel(${JSON.stringify(file)}, { backend: 'cpu' }).then(s => console.log(JSON.stringify({ rss: ${hwm}, bytes: s.bytes })))`;
  const base = spawnSync(process.execPath, ['-e', `require(${lib}).simdPaths(); console.log(JSON.stringify({ rss: ${hwm} }))`], { encoding: 'utf8' });
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`memory check failed: ${r.stderr}`);
  const m = JSON.parse(r.stdout) as { rss: number; bytes: number };
  return { rss: m.rss, base: (JSON.parse(base.stdout) as { rss: number }).rss, bytes: m.bytes };
}

// The statistics pass on PyTorch checkpoints (torch.save's ZIP layout, read through the
// restricted unpickler, tensors mapped in place) against a plain read of the same bytes, and
// the same tensors as safetensors in the same run: the ratios should match.
async function benchPytorch(): Promise<void> {
  const size = Number(process.env.MOTHER_BENCH_GIB || 1) * GiB;
  const rssSize = Number(process.env.MOTHER_BENCH_RSS_GIB || 4) * GiB;
  const reps = Number(process.env.MOTHER_BENCH_REPS || 5);
  const addon = native();
  const best = addon.simdPaths().at(-1)!;
  console.log(`\n## PyTorch checkpoints: statistics pass vs plain read (reps: ${reps}, median, SIMD ${best})\n`);
  const rows: (string | number)[][] = [];
  for (const dtype of ['F32', 'BF16']) {
    process.stderr.write(`preparing ${dtype} files...\n`);
    const st = ensureWeightsFile(`weights-${dtype}-${size / GiB}GiB.safetensors`, dtype, size);
    const pt = ensureTorchFile(`weights-${dtype}-${size / GiB}GiB.pt`, st);
    const files = [['safetensors', st], ['pytorch (zip)', pt]] as const;
    const plain: number[][] = files.map(() => []);
    const stats: number[][] = files.map(() => []);
    const bytes: number[] = files.map(() => 0);
    for (const [, f] of files) await addon.testing.plainRead([f], {}); // warm the page cache
    for (let r = 0; r < reps; r++) {
      for (let i = 0; i < files.length; i++) {
        const pr = await addon.testing.plainRead([files[i][1]], { simd: best });
        plain[i].push(gbps(pr.bytes, pr.seconds));
        const s = await scanModel(files[i][1], { simd: best, backend: 'cpu' });
        bytes[i] = s.bytes;
        stats[i].push(gbps(s.bytes, s.seconds));
      }
    }
    files.forEach(([format], i) => {
      const p = median(plain[i]), v = median(stats[i]);
      rows.push([format, dtype, (bytes[i] / GiB).toFixed(2) + ' GiB', p.toFixed(2), v.toFixed(2), (v / p).toFixed(2)]);
    });
  }
  console.log(table(['format', 'dtype', 'size', 'plain read GB/s', 'stats GB/s', 'ratio'], rows));
  console.log(`\nplain read = native read-and-sum loop over the same views of the same mmaps (same threads and chunking); target: the PyTorch ratio equals the safetensors ratio\n`);

  process.stderr.write(`preparing a ${rssSize / GiB} GiB pytorch_model.bin for the memory check...\n`);
  const bigSt = ensureWeightsFile(`weights-BF16-${rssSize / GiB}GiB.safetensors`, 'BF16', rssSize);
  const big = ensureTorchFile(`torch-BF16-${rssSize / GiB}GiB/pytorch_model.bin`, bigSt);
  const m = peakRss(big);
  console.log(
    table(
      ['memory check', 'file', 'peak RSS', 'node + addon alone', 'RSS / file size'],
      [['scanModel pytorch_model.bin (zip, ZIP64), all threads', `${(m.bytes / GiB).toFixed(2)} GiB`, `${(m.rss / 2 ** 20).toFixed(0)} MiB`, `${(m.base / 2 ** 20).toFixed(0)} MiB`, (m.rss / m.bytes).toFixed(3)]],
    ),
  );
}

// CPU vs the CUDA backend on the same files, in the same run (only where a GPU is usable).
async function benchGpu(): Promise<void> {
  console.log(`\n## CUDA backend vs CPU (page cache warm)\n`);
  let gpu;
  try {
    gpu = await resolveBackend('cuda');
  } catch (e) {
    console.log(`skipped: ${(e as Error).message}`);
    return;
  }
  console.log(`device: ${gpu.used.device} (${gpu.used.library})\n`);
  const reps = Number(process.env.MOTHER_BENCH_REPS || 3);
  const size = Number(process.env.MOTHER_BENCH_GIB || 1) * GiB;
  const rows: (string | number)[][] = [];
  for (const dtype of ['F32', 'BF16']) {
    const file = ensureWeightsFile(`weights-${dtype}-${size / GiB}GiB.safetensors`, dtype, size);
    await native().testing.plainRead([file], {});
    const run = async (backend: 'cpu' | 'cuda') => {
      const r: number[] = [];
      for (let i = 0; i < reps; i++) {
        const s = await scanModel(file, { backend });
        r.push(gbps(s.bytes, s.seconds));
      }
      return median(r);
    };
    const c = await run('cpu'), g = await run('cuda');
    rows.push([`statistics, ${dtype}, ${(size / GiB).toFixed(size < GiB ? 2 : 0)} GiB`, c.toFixed(2), g.toFixed(2), (g / c).toFixed(2)]);
  }
  const modelMiB = Number(process.env.MOTHER_BENCH_MODEL_MIB || 64);
  for (const n of [8, 32]) {
    const set = pairwiseModels(n, modelMiB);
    await native().testing.plainRead(set, {});
    const run = async (backend: 'cpu' | 'cuda') => {
      const r: number[] = [];
      for (let i = 0; i < reps; i++) {
        const s = await pairwiseStats(set, { backend });
        r.push(gbps(s.bytesRead.reduce((a, b) => a + b, 0), s.seconds));
      }
      return median(r);
    };
    const c = await run('cpu'), g = await run('cuda');
    rows.push([`pairwise, N = ${n}, BF16 ${modelMiB} MiB each`, c.toFixed(2), g.toFixed(2), (g / c).toFixed(2)]);
  }
  console.log(table(['pass', 'CPU GB/s', 'GPU GB/s', 'GPU / CPU'], rows));
}

interface SvdTesting {
  singularValues(a: Float64Array, m: number, n: number, options?: { threads?: number; method?: 'blocked' | 'jacobi' }): { values: Float64Array; seconds: number; kernels: string };
}

// The blocked SVD vs the Jacobi reference on the same seeded Gaussian matrices, interleaved,
// median seconds of the call alone (timed in the addon). The Jacobi runs once from n = 512 on
// (16 s at 1024).
function benchSvd(): void {
  const t = native().testing as unknown as SvdTesting;
  const reps = Number(process.env.MOTHER_BENCH_REPS || 5);
  const sizes = (process.env.MOTHER_BENCH_SVD_SIZES || '64,128,256,512,1024').split(',').map(Number);
  const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`\n## exact singular values: blocked (Householder bidiagonalisation + implicit QR) vs one-sided Jacobi (reps: ${reps}, median)\n`);
  const loadBefore = load();
  let seed = 0x9e3779b9;
  const uniform = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return (seed + 0.5) / 2 ** 32;
  };
  const rows: (string | number)[][] = [];
  let kernels = '';
  for (const n of sizes) {
    const a = new Float64Array(n * n);
    for (let i = 0; i < a.length; i++) a[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    const all: number[] = [], cpu: number[] = [], one: number[] = [], jac: number[] = [];
    let agree = 0;
    for (let r = 0; r < reps; r++) {
      const c0 = process.cpuUsage();
      const b = t.singularValues(a, n, n);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1e6);
      kernels = b.kernels;
      all.push(b.seconds);
      one.push(t.singularValues(a, n, n, { threads: 1 }).seconds);
      if (n < 512 || r === 0) {
        const j = t.singularValues(a, n, n, { method: 'jacobi' });
        jac.push(j.seconds);
        for (let i = 0; i < n; i++) agree = Math.max(agree, Math.abs(b.values[i] - j.values[i]) / (2 ** -52 * b.values[0]));
      }
    }
    const ma = median(all), m1 = median(one), mj = median(jac);
    rows.push([`${n} x ${n}`, ma.toFixed(4), median(cpu).toFixed(4), m1.toFixed(4), mj.toFixed(4), (mj / Math.min(ma, m1)).toFixed(1), agree.toFixed(0)]);
  }
  console.log(table(['matrix', 'blocked s (all threads)', '(CPU s)', 'blocked s (1 thread)', 'Jacobi s', 'speedup', 'max diff / (eps sigma_max)'], rows));
  console.log(`\nkernels: ${kernels}; Gaussian matrices; speedup = Jacobi / the faster blocked run; CPU s = process CPU time of the all-threads call (all threads, spinning included); max diff: blocked vs Jacobi (mostly the Jacobi's own error, up to about n eps sigma_max); load average (1, 5, 15 min) before: ${loadBefore}, after: ${load()} (on a busy machine the wall times grow with the load and the all-threads run can trail the one-thread run); target: 1024 x 1024 <= 0.8 s, the sketch sizes (k = 64 .. 256) no slower than the Jacobi`);
}

// Models of very many tiny tensors (issue 15.5): scanModel + the stats table on one model, and
// pairwiseStats and recover on two related models, of N square F32 tensors (side 4), for
// N = 10k, 50k, 100k (MOTHER_BENCH_SCALE, comma-separated). Every stage should be linear in N.
async function benchScale(): Promise<void> {
  const sizes = (process.env.MOTHER_BENCH_SCALE || '10000,50000,100000').split(',').map(Number);
  console.log(`\n## many tiny tensors (2 models of N 4 x 4 F32 tensors, seconds)\n`);
  const rows: (string | number)[][] = [];
  for (const n of sizes) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mother-scale-'));
    try {
      const a = path.join(dir, 'a'), b = path.join(dir, 'b');
      fs.mkdirSync(a);
      fs.mkdirSync(b);
      writeManyTensors(path.join(a, 'model.safetensors'), n, 7, 0, 4);
      writeManyTensors(path.join(b, 'model.safetensors'), n, 7, 0.05, 4);
      const time = async (f: () => Promise<unknown> | unknown) => {
        const t0 = process.hrtime.bigint();
        await f();
        return Number(process.hrtime.bigint() - t0) / 1e9;
      };
      let stats: Awaited<ReturnType<typeof scanModel>> | undefined;
      const scan = await time(async () => { stats = await scanModel(a); });
      const tab = await time(() => textTable(['tensor', 'mean'], stats!.tensors.map((t) => [t.name, String(t.mean)])));
      const pw = await time(() => pairwiseStats([a, b]));
      const rec = await time(() => recover([a, b]));
      rows.push([n, scan.toFixed(2), tab.toFixed(2), pw.toFixed(2), rec.toFixed(2)]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(table(['tensors per model', 'scanModel', 'stats table', 'pairwiseStats', 'recover'], rows));
}

async function main(): Promise<void> {
  const sections = process.argv.slice(2);
  const want = (s: string) => sections.length === 0 || sections.includes(s);
  console.log(`# mother benchmarks`);
  console.log(`machine: ${machine()}`);
  console.log(`date: ${new Date().toISOString()}  SIMD: ${native().simdDefault()} (available: ${native().simdPaths().join(', ')})  threads: all\n`);
  if (want('stats')) await benchStats();
  if (want('pairwise')) {
    const modelMiB = Number(process.env.MOTHER_BENCH_MODEL_MIB || 64);
    console.log(`\n## pairwise engine (BF16 models of ${modelMiB} MiB, page cache warm)\n`);
    console.log(await benchPairwise({ sizes: [2, 8, 32, 64], modelMiB, naiveMaxPairs: Number(process.env.MOTHER_BENCH_NAIVE_PAIRS || 64) }));
    console.log(`\nratio = pairwise GB/s / plain read GB/s of the same N files (target >= 0.5 at N = 8); naive = every pair reads both models again (per-pair time x pairs where not all pairs were timed)`);
  }
  if (want('method')) {
    console.log(`\n## graph algorithms (median of ${Number(process.env.MOTHER_BENCH_REPS || 3)} runs)\n`);
    console.log(benchMethod());
  }
  if (want('gpu')) await benchGpu();
  if (want('scale')) await benchScale();
  if (want('pytorch')) await benchPytorch();
  if (want('svd')) benchSvd();
  if (want('pipeline')) {
    console.log(`\n## whole pipeline: mother recover vs a reference-style Python pipeline\n`);
    console.log(await benchPipeline());
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
