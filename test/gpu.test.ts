// The GPU path. Everything the host does for it (choosing the backend, loading the library with
// dlopen, staging through page-locked buffers, packing jobs into slots, ordering and merging
// partials, errors, progress, cancellation) runs here against the device emulator
// (libmother_gpu_emulator.so: the CUDA kernels' decomposition on the CPU, bit-identical to them
// by construction), compared with the CPU path and the independent float64 reference. The
// CUDA library itself is compared with both when this machine has a GPU; otherwise those
// tests are skipped and say why.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { gpuLibraryCandidates, MotherError, pairwiseStats, recover, resolveBackend, scanModel } from '../lib';
import { native } from '../lib/core/binding';
import { close, refStats, Rng } from './helpers/reference';
import { f32Bound, StatBound, usesF32Pass } from './helpers/f32_bound';
import { decode, encode, FLOAT_DTYPES, FloatDtype, TensorSpec, writeLargeSafetensors, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const ROOT = path.resolve(__dirname, '..');
const EMULATOR = path.join(ROOT, 'build', 'Release', 'libmother_gpu_emulator.so');
const { abs, max } = Math; // global lookups are slow in jest's VM context

let tmp: ReturnType<typeof tmpDir>;
const savedEnv = { backend: process.env.MOTHER_BACKEND, library: process.env.MOTHER_CUDA_LIBRARY };
beforeAll(() => {
  tmp = tmpDir();
});
afterAll(() => tmp.cleanup());
afterEach(() => {
  for (const [k, v] of [['MOTHER_BACKEND', savedEnv.backend], ['MOTHER_CUDA_LIBRARY', savedEnv.library]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

// Is there a real CUDA device? Probed in a child process, synchronously, so that the CUDA
// tests below can be declared (or skipped with the reason) when jest collects them.
function probeCuda(): { ok: boolean; library?: string; reason: string } {
  const env = { ...process.env };
  delete env.MOTHER_CUDA_LIBRARY;
  const library = gpuLibraryCandidates().find((c) => !c.includes('emulator') && fs.existsSync(c));
  if (!library) return { ok: false, reason: 'the CUDA backend is not built (npm run build:cuda)' };
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(ROOT, 'dist/lib/core/binding.js'))}).native().gpuOpen(${JSON.stringify(library)}).then(i => console.log(JSON.stringify(i)), e => { console.log(JSON.stringify({ error: e.message })); })`], { env, encoding: 'utf8' });
  try {
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    return out.error ? { ok: false, library, reason: out.error } : { ok: out.backend === 'cuda', library, reason: `${out.backend} ${out.device}` };
  } catch {
    return { ok: false, library, reason: `probe failed: ${r.stderr}` };
  }
}
const CUDA = probeCuda();
if (!CUDA.ok) process.stderr.write(`\n[gpu.test] CUDA device tests skipped: ${CUDA.reason}\n\n`);

// ---- models ----------------------------------------------------------------------------------

function adversarialTensors(rng: Rng): TensorSpec[] {
  const out: TensorSpec[] = [];
  const n = (k: number, f: (i: number) => number) => Array.from({ length: k }, (_, i) => f(i));
  for (const dtype of FLOAT_DTYPES) {
    const small = dtype.startsWith('F8');
    const scale = dtype === 'F8_E8M0' ? 1 : small ? 0.5 : 0.02;
    out.push({ name: `${dtype}.normal`, dtype, shape: [37, 29], data: encode(dtype, n(37 * 29, () => scale * rng.normal())) });
    out.push({ name: `${dtype}.empty`, dtype, shape: [0], data: new Uint8Array(0) });
    out.push({ name: `${dtype}.one`, dtype, shape: [1], data: encode(dtype, [0.75]) });
    // heavy tails (Cauchy) with NaN and +-Inf sprinkled, an odd length
    out.push({
      name: `${dtype}.cauchy_nonfinite`, dtype, shape: [2053],
      data: encode(dtype, n(2053, (i) => (i % 97 === 5 ? NaN : i % 131 === 7 ? (i % 2 ? Infinity : -Infinity) : scale * rng.normal() / (rng.normal() || 1)))),
    });
    // a large offset: mean >> std
    if (!small) out.push({ name: `${dtype}.offset`, dtype, shape: [3001], data: encode(dtype, n(3001, () => 100 + 0.001 * rng.normal())) });
  }
  // denormals and a level shift in the middle (blocks with very different means)
  out.push({ name: 'F32.denormal', dtype: 'F32', shape: [999], data: encode('F32', n(999, (i) => (i % 3) * 1e-40 - 1e-41)) });
  out.push({ name: 'F64.shift', dtype: 'F64', shape: [20000], data: encode('F64', n(20000, (i) => (i < 10000 ? 0 : 1e6) + rng.normal())) });
  out.push({ name: 'F16.all_nan', dtype: 'F16', shape: [300], data: encode('F16', n(300, () => NaN)) });
  // spans many warp tiles, blocks and jobs
  out.push({ name: 'BF16.big', dtype: 'BF16', shape: [1024, 700], data: encode('BF16', n(1024 * 700, () => 0.02 * rng.normal())) });
  out.push({ name: 'ints', dtype: 'I32', shape: [4], data: new Uint8Array(16) });
  return out;
}

const STAT_KEYS = ['mean', 'std', 'skewness', 'kurtosis', 'min', 'max', 'l2', 'absMean', 'nan', 'inf'] as const;

/** GPU-path statistics vs the CPU path: the documented tolerances (README, "CUDA backend").
 *  The GPU kernels are float64 throughout; so is the CPU but for F16 and BF16 on its SIMD paths,
 *  which sum in float32 (native/stats/block_h.inc): those tensors may differ by that pass's
 *  stated bound as well (test/helpers/f32_bound.ts; `tensors` gives their values). */
function compareStats(cpu: Awaited<ReturnType<typeof scanModel>>, gpu: Awaited<ReturnType<typeof scanModel>>, tensors: TensorSpec[]): string[] {
  const bad: string[] = [];
  cpu.tensors.forEach((c, i) => {
    const g = gpu.tensors[i];
    if (g.name !== c.name) bad.push(`order: ${g.name} vs ${c.name}`);
    const spec = tensors.find((t) => t.name === c.name);
    const bound: Partial<StatBound> = spec && usesF32Pass(spec.dtype, cpu.simd) ? f32Bound(decode(spec.dtype as FloatDtype, spec.data)) : {};
    for (const k of STAT_KEYS) {
      const a = c[k], b = g[k];
      if (a === null || b === null) {
        if (a !== b) bad.push(`${c.name}.${k}: ${b} vs ${a}`);
        continue;
      }
      const slack = (bound as Record<string, number>)[k] ?? 0;
      let ok: boolean;
      if (k === 'min' || k === 'max' || k === 'nan' || k === 'inf') ok = a === b;
      else if (k === 'skewness' || k === 'kurtosis') ok = abs(a - b) <= 1e-9 * max(1, abs(a)) + slack;
      else {
        const floor = (c.std ?? 0) + abs(c.mean ?? 0); // relative to the spread where the mean is ~0
        ok = close(b, a, 1e-12, floor) || abs(b - a) <= 1e-12 * max(abs(a), floor) + slack;
      }
      if (!ok) bad.push(`${c.name}.${k}: ${b} vs ${a}${slack ? ` (bound ${slack})` : ''}`);
    }
  });
  return bad;
}

describe('backend selection', () => {
  test("'cpu' runs on the CPU; unknown names are rejected, naming where they came from", async () => {
    expect((await resolveBackend('cpu')).used).toEqual({ requested: 'cpu', used: 'cpu' });
    await expect(resolveBackend('gpu')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/backend must be auto, cpu or cuda/) });
    process.env.MOTHER_BACKEND = 'metal';
    await expect(resolveBackend()).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/^MOTHER_BACKEND must be/) });
    await expect(scanModel(path.join(ROOT, 'samples/zoo-small/ft/m00'))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  test("'auto' without a usable library runs on the CPU and says why; 'cuda' is an error", async () => {
    process.env.MOTHER_CUDA_LIBRARY = path.join(tmp.dir, 'missing', 'libmother_cuda.so');
    const auto = await resolveBackend('auto');
    expect(auto.used.used).toBe('cpu');
    expect(auto.used.reason).toMatch(/MOTHER_CUDA_LIBRARY names .*missing.*which does not exist/);
    await expect(resolveBackend('cuda')).rejects.toMatchObject({ code: 'ERR_BACKEND' });
    const stats = await scanModel(path.join(ROOT, 'samples/zoo-small/ft/m00'));
    expect(stats.backend).toMatchObject({ requested: 'auto', used: 'cpu', reason: expect.stringMatching(/does not exist/) });
    await expect(scanModel(path.join(ROOT, 'samples/zoo-small/ft/m00'), { backend: 'cuda' })).rejects.toBeInstanceOf(MotherError);
  });

  test('MOTHER_BACKEND sets the default, an explicit option wins', async () => {
    process.env.MOTHER_CUDA_LIBRARY = EMULATOR;
    expect((await resolveBackend()).used).toMatchObject({ requested: 'auto', used: 'cuda', device: 'CPU emulation of the CUDA kernels' });
    process.env.MOTHER_BACKEND = 'cpu';
    expect((await resolveBackend()).used.used).toBe('cpu');
    expect((await resolveBackend('cuda')).used.used).toBe('cuda');
  });

  test('the real CUDA library, built here without a driver, explains itself', async () => {
    const built = gpuLibraryCandidates().find((c) => fs.existsSync(c));
    if (!built || CUDA.ok) return; // covered by the device tests instead
    await expect(native().gpuOpen(built)).rejects.toMatchObject({ code: 'ERR_BACKEND', message: expect.stringMatching(/driver|device/i) });
    const r = await resolveBackend('auto');
    expect(r.used).toMatchObject({ used: 'cpu', reason: expect.stringMatching(/driver|device/i) });
  });
});

describe('backend library loading', () => {
  // Fake backends compiled here from the public header: each breaks one rule.
  let fakes: Record<string, string>;
  beforeAll(() => {
    const src = path.join(tmp.dir, 'fake.c');
    fs.writeFileSync(src, `
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "gpu_api.h"
struct mother_gpu_ctx { int dummy; };
static struct mother_gpu_ctx the_ctx;
static int fk_open(int d, mother_gpu_ctx** out, char* err, size_t cap) {
#ifdef FAIL_OPEN
  snprintf(err, cap, "fake: no device %d", d); return 1;
#endif
  *out = &the_ctx; return 0;
}
static void fk_close(mother_gpu_ctx* c) { (void)c; }
static const char* fk_error(mother_gpu_ctx* c) { (void)c; return "fake kernel exploded"; }
static int fk_info(mother_gpu_ctx* c, mother_gpu_info* i) { (void)c; memset(i, 0, sizeof *i); strcpy(i->backend, "fake"); strcpy(i->device, "fake device"); i->streams = 2; return 0; }
static int fk_alloc(mother_gpu_ctx* c, size_t n, void** p) { (void)c; *p = malloc(n ? n : 1); return *p == 0; }
static void fk_free(mother_gpu_ctx* c, void* p) { (void)c; free(p); }
static int fk_copy(mother_gpu_ctx* c, uint32_t s, void* d, const void* src, size_t n) { (void)c; (void)s; memcpy(d, src, n); return 0; }
static int fk_sync(mother_gpu_ctx* c, uint32_t s) { (void)c; (void)s; return 0; }
static int fk_moments(mother_gpu_ctx* c, uint32_t s, uint32_t d, const void* p, uint64_t n, mother_gpu_moments* o) { (void)c; (void)s; (void)d; (void)p; (void)n; (void)o; return 1; }
static const mother_gpu_api api = { ABI, sizeof(mother_gpu_api), fk_open, fk_close, fk_error, fk_info, fk_alloc, fk_free, fk_alloc, fk_free, fk_copy, fk_copy, fk_sync, fk_moments, 0, 0, 0 };
__attribute__((visibility("default"))) const mother_gpu_api* mother_gpu_get_api(void) { return &api; }
`);
    fakes = {};
    for (const [name, flags] of [['abi', ['-DABI=999u']], ['open', ['-DABI=MOTHER_GPU_ABI_VERSION', '-DFAIL_OPEN']], ['kernel', ['-DABI=MOTHER_GPU_ABI_VERSION']]] as const) {
      fakes[name] = path.join(tmp.dir, `libfake_${name}.so`);
      execFileSync('cc', ['-shared', '-fPIC', '-O1', `-I${path.join(ROOT, 'native/gpu')}`, ...flags, '-o', fakes[name], src]);
    }
    fakes.plain = path.join(tmp.dir, 'libplain.so');
    fs.writeFileSync(path.join(tmp.dir, 'plain.c'), 'int answer(void) { return 42; }\n');
    execFileSync('cc', ['-shared', '-fPIC', '-o', fakes.plain, path.join(tmp.dir, 'plain.c')]);
  });

  test('every failure is ERR_BACKEND with the library and the reason', async () => {
    await expect(native().gpuOpen(path.join(tmp.dir, 'nope.so'))).rejects.toMatchObject({ code: 'ERR_BACKEND', message: expect.stringMatching(/cannot load the GPU backend library: .*nope\.so/) });
    await expect(native().gpuOpen(fakes.plain)).rejects.toMatchObject({ code: 'ERR_BACKEND', file: fakes.plain, message: expect.stringMatching(/not a mother GPU backend/) });
    await expect(native().gpuOpen(fakes.abi)).rejects.toMatchObject({ code: 'ERR_BACKEND', message: expect.stringMatching(/interface version 999, this addon needs 1/) });
    await expect(native().gpuOpen(fakes.open)).rejects.toMatchObject({ code: 'ERR_BACKEND', message: 'fake: no device 0' });
    const info = await native().gpuOpen(EMULATOR);
    expect(info).toMatchObject({ backend: 'emulator', library: EMULATOR });
    expect(await native().gpuOpen(EMULATOR)).toEqual(info); // opened once, then the same
  });

  test('a failing kernel rejects the pass with ERR_BACKEND naming the file and tensor; nothing leaks or hangs', async () => {
    process.env.MOTHER_CUDA_LIBRARY = fakes.kernel;
    const model = path.join(ROOT, 'samples/zoo-small/ft/m00');
    const err = await scanModel(model, { backend: 'cuda' }).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_BACKEND', message: expect.stringMatching(/^fake moments kernel failed: fake kernel exploded/) });
    expect(err.file).toMatch(/ft\/m00\/model\.safetensors$/);
    expect(typeof err.tensor).toBe('string');
    // and the process is still healthy: the CPU path works
    expect((await scanModel(model, { backend: 'cpu' })).tensors.length).toBeGreaterThan(0);
  });
});

describe('statistics on the GPU path (device emulator) against the CPU path and the reference', () => {
  let file: string;
  let tensors: TensorSpec[];
  beforeAll(() => {
    process.env.MOTHER_CUDA_LIBRARY = EMULATOR;
    tensors = adversarialTensors(new Rng(7));
    file = path.join(tmp.dir, 'adversarial.safetensors');
    writeSafetensors(file, tensors);
  });

  test.each([
    ['default jobs', 16 << 20],
    ['4 KiB jobs: thousands of jobs packed into slots, tensors split across slots', 4096],
    ['odd job size', 12_345],
  ])('every dtype and adversarial case, %s', async (_label, chunkBytes) => {
    process.env.MOTHER_CUDA_LIBRARY = EMULATOR;
    const cpu = await scanModel(file, { backend: 'cpu' });
    const gpu = await scanModel(file, { backend: 'cuda', chunkBytes });
    expect(gpu.backend).toMatchObject({ used: 'cuda', device: 'CPU emulation of the CUDA kernels' });
    expect(gpu.bytes).toBe(cpu.bytes);
    expect(compareStats(cpu, gpu, tensors)).toEqual([]);
    // and directly against the independent float64 reference
    const bad: string[] = [];
    for (const spec of tensors) {
      if (!FLOAT_DTYPES.includes(spec.dtype as FloatDtype)) continue;
      const ref = refStats(decode(spec.dtype as FloatDtype, spec.data));
      const g = gpu.tensors.find((t) => t.name === spec.name)!;
      if (ref.finite === 0) {
        if (g.mean !== null) bad.push(`${spec.name}: mean ${g.mean} for no finite element`);
        continue;
      }
      if (!close(g.mean!, ref.mean, 1e-12, ref.std + abs(ref.mean))) bad.push(`${spec.name} mean ${g.mean} vs ${ref.mean}`);
      if (!close(g.std!, ref.std, 1e-12)) bad.push(`${spec.name} std ${g.std} vs ${ref.std}`);
      if (ref.finite > 2 && !Number.isNaN(ref.kurtosis) && abs(g.kurtosis! - ref.kurtosis) > 1e-9 * max(1, abs(ref.kurtosis))) bad.push(`${spec.name} kurtosis ${g.kurtosis} vs ${ref.kurtosis}`);
      if (g.nan !== ref.nan || g.inf !== ref.inf || g.min !== ref.min || g.max !== ref.max) bad.push(`${spec.name} counts/extremes`);
    }
    expect(bad).toEqual([]);
  });

  test('progress is monotone and ends at the total; an abort stops the pass', async () => {
    process.env.MOTHER_CUDA_LIBRARY = EMULATOR;
    const seen: number[] = [];
    let total = 0;
    await scanModel(file, { backend: 'cuda', chunkBytes: 4096, onProgress: (p) => { seen.push(p.bytesDone); total = p.bytesTotal; } });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((v, i) => i === 0 || v >= seen[i - 1])).toBe(true);
    expect(seen[seen.length - 1]).toBe(total);
    // 80 MiB in 4 KiB jobs: slots of 4096 jobs (16 MiB), so the pass has five slots and
    // checks the flag between them; the first progress report aborts it.
    const big = path.join(tmp.dir, 'big.safetensors');
    writeLargeSafetensors(big, 'w', 'F64', 10 << 20, (first, n) => new Uint8Array(Float64Array.from({ length: n }, (_, i) => ((first + i) % 1000) * 1e-3).buffer));
    const ac = new AbortController();
    const p = scanModel(big, { backend: 'cuda', chunkBytes: 4096, signal: ac.signal, onProgress: () => ac.abort() });
    await expect(p).rejects.toMatchObject({ code: 'ERR_CANCELLED' });
  });
});

describe('pairwise on the GPU path (device emulator) against the CPU path', () => {
  interface Spec { name: string; dtype: FloatDtype; shape: number[]; values: number[] }
  function family(seed: number, n: number): string[] {
    const rng = new Rng(seed);
    const dtypes: FloatDtype[] = ['F32', 'BF16', 'F16', 'F64', 'F8_E4M3'];
    const base = [
      { name: 'embed.weight', shape: [70, 24] },
      { name: 'layers.0.attn.o_proj.weight', shape: [48, 48] },
      { name: 'layers.0.attn.q_proj.weight', shape: [300, 300] }, // spans several row blocks
      { name: 'layers.0.mlp.up.weight', shape: [97, 24] },
      { name: 'norm.weight', shape: [24] },
      { name: 'layers.0.mlp.down.weight', shape: [40, 64] }, // rows of 64: tested for quantisation grids
    ].map((t) => ({ ...t, values: Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, () => 0.02 * rng.normal()) }));
    return Array.from({ length: n }, (_, m) => {
      const specs: Spec[] = base.map((t) => {
        let shape = t.shape;
        let values = t.values.map((v) => v + 0.004 * (m % 3) * rng.normal());
        if (m % 4 === 3 && t.name.endsWith('_proj.weight')) {
          // a low-rank update (a merged LoRA of rank m % 5 + 1)
          const r = (m % 5) + 1, d = t.shape[0];
          const A = Array.from({ length: d * r }, () => rng.normal()), B = Array.from({ length: r * d }, () => 0.01 * rng.normal());
          values = t.values.map((v, e) => {
            const i = (e / d) | 0, j = e % d;
            let s = 0;
            for (let q = 0; q < r; q++) s += A[i * r + q] * B[q * d + j];
            return v + s;
          });
        }
        if (t.name === 'embed.weight' && m % 3 === 1) {
          shape = [t.shape[0] + 5, t.shape[1]];
          values = values.concat(Array.from({ length: 5 * t.shape[1] }, () => 0.02 * rng.normal()));
        }
        if (m % 2 === 0 && t.name === 'layers.0.mlp.up.weight') {
          values[11] = NaN;
          values[500] = Infinity;
        }
        const dtype = t.name.includes('proj') ? (m % 2 ? 'F32' : 'BF16') : dtypes[(m + t.name.length) % dtypes.length];
        return { name: t.name, dtype, shape, values };
      });
      const dir = path.join(tmp.dir, `pw-${seed}-${n}`, `m${m}`);
      fs.mkdirSync(dir, { recursive: true });
      writeSafetensors(path.join(dir, 'model.safetensors'), specs.map((s) => ({ name: s.name, dtype: s.dtype, shape: s.shape, data: encode(s.dtype, s.values) })));
      return dir;
    });
  }

  test.each([1, 2, 5, 9])('N = %i: sums, extremes, counts, skipped, ranks, moments and bytes read', async (n) => {
    process.env.MOTHER_CUDA_LIBRARY = EMULATOR;
    const models = family(100 + n, n);
    const opts = { metrics: ['rms', 'l1', 'maxdiff', 'rank'] as ('rms' | 'l1' | 'maxdiff' | 'rank')[], moments: /proj/, rank: { k: 16 } };
    const cpu = await pairwiseStats(models, { ...opts, backend: 'cpu' });
    const gpu = await pairwiseStats(models, { ...opts, backend: 'cuda', jobElems: n === 5 ? 4000 : undefined });
    expect(gpu.backend.used).toBe('cuda');
    expect(gpu.bytesRead).toEqual(cpu.bytesRead);
    const bad: string[] = [];
    cpu.layers.forEach((c, l) => {
      const g = gpu.layers[l];
      for (const f of ['rms', 'meanAbs', 'maxDiff', 'count', 'skipped'] as const)
        for (let k = 0; k < n * n; k++) {
          const exact = f === 'maxDiff' || f === 'count' || f === 'skipped';
          if (!(exact ? Object.is(g[f][k], c[f][k]) : close(g[f][k], c[f][k], 1e-12))) bad.push(`${c.name}.${f}[${k}]: ${g[f][k]} vs ${c[f][k]}`);
        }
      if (c.rank) for (let k = 0; k < n * n; k++) if (!Object.is(g.rank![k], c.rank[k])) bad.push(`${c.name}.rank[${k}]: ${g.rank![k]} vs ${c.rank[k]}`);
      // the quantisation grid sample: the same blocks on both backends, whatever the jobs
      if (c.name === 'layers.0.mlp.down.weight' && !c.grid!.some((x) => x && x.q4Tested === 3)) bad.push('down: no block tested');
      if (JSON.stringify(g.grid) !== JSON.stringify(c.grid)) bad.push(`${c.name}.grid: ${JSON.stringify(g.grid)} vs ${JSON.stringify(c.grid)}`);
      c.moments?.forEach((mc, m) => {
        const mg = g.moments![m];
        if (!mc || !mg) return void (mc !== mg && bad.push(`${c.name}.moments[${m}]`));
        if (!close(mg.mean, mc.mean, 1e-12, mc.std + abs(mc.mean)) || !close(mg.std, mc.std, 1e-12) || abs(mg.kurtosis - mc.kurtosis) > 1e-9 * max(1, abs(mc.kurtosis)))
          bad.push(`${c.name}.moments[${m}]: ${JSON.stringify(mg)} vs ${JSON.stringify(mc)}`);
      });
    });
    expect(bad).toEqual([]);
    if (n === 9) {
      // the low-rank updates are seen as such
      const q = cpu.layers.find((l) => l.name === 'layers.0.attn.q_proj.weight')!;
      expect(q.rank![0 * n + 3]).toBeLessThanOrEqual(16);
    }
  });

  test.each([2, 5, 9])('N = %i: the relatedness outputs (means, variances, 1 - r, the shifted null) equal the CPU pass', async (n) => {
    process.env.MOTHER_CUDA_LIBRARY = EMULATOR;
    const models = family(400 + n, n);
    const opts = { relatedness: true, metrics: ['rms'] as 'rms'[] };
    const cpu = await pairwiseStats(models, { ...opts, backend: 'cpu' });
    const gpu = await pairwiseStats(models, { ...opts, backend: 'cuda', jobElems: n === 5 ? 3000 : undefined });
    const lean = await pairwiseStats(models, { ...opts, backend: 'cuda', differences: false, jobElems: n === 5 ? 3000 : undefined });
    expect(gpu.backend.used).toBe('cuda');
    const bad: string[] = [];
    cpu.layers.forEach((c, l) => {
      const g = gpu.layers[l];
      for (let k = 0; k < n * n; k++) {
        const i = Math.floor(k / n), j = k % n;
        if (i === j) continue;
        const sd = Math.sqrt(Math.abs(c.variance![k]));
        if (!close(g.mean![k], c.mean![k], 1e-12, sd + abs(c.mean![k]))) bad.push(`${c.name}.mean[${k}]: ${g.mean![k]} vs ${c.mean![k]}`);
        if (!close(g.variance![k], c.variance![k], 1e-11)) bad.push(`${c.name}.variance[${k}]: ${g.variance![k]} vs ${c.variance![k]}`);
        if (!close(g.oneMinusR![k], c.oneMinusR![k], 1e-9, 1e-12)) bad.push(`${c.name}.oneMinusR[${k}]: ${g.oneMinusR![k]} vs ${c.oneMinusR![k]}`);
        for (const f of ['rShift1', 'rShift2'] as const)
          if (!(Object.is(g[f]![k], c[f]![k]) || abs(g[f]![k] - c[f]![k]) <= 1e-12)) bad.push(`${c.name}.${f}[${k}]: ${g[f]![k]} vs ${c[f]![k]}`);
        if (g.nShift![k] !== c.nShift![k]) bad.push(`${c.name}.nShift[${k}]: ${g.nShift![k]} vs ${c.nShift![k]}`);
        if (!Number.isNaN(lean.layers[l].meanAbs[k])) bad.push(`${c.name}.meanAbs[${k}] computed without differences`);
        if (lean.layers[l].rms[k] !== g.rms[k]) bad.push(`${c.name}.rms[${k}] depends on differences`);
      }
    });
    expect(bad).toEqual([]);
  });

  test('exact rank stays on the CPU and says so', async () => {
    process.env.MOTHER_CUDA_LIBRARY = EMULATOR;
    const models = family(300, 3);
    const r = await pairwiseStats(models, { metrics: ['rms', 'rank'], rank: { exact: true }, backend: 'cuda' });
    expect(r.backend).toMatchObject({ used: 'cpu', reason: 'exact rank runs on the CPU' });
  });

  test('recover() on the trained sample: the same graph on the GPU path as on the CPU', async () => {
    process.env.MOTHER_CUDA_LIBRARY = EMULATOR;
    const split = path.join(ROOT, 'samples/zoo-small/lora_fixed');
    const inputs = fs.readdirSync(split).filter((d) => fs.statSync(path.join(split, d)).isDirectory()).map((d) => ({ id: d, path: path.join(split, d) }));
    const cpu = await recover(inputs, { metric: 'rank', backend: 'cpu' });
    const gpu = await recover(inputs, { metric: 'rank', backend: 'cuda' });
    expect(gpu.backend.used).toBe('cuda');
    expect(gpu.edges.map((e) => [e.parent, e.child])).toEqual(cpu.edges.map((e) => [e.parent, e.child]));
    expect(gpu.families).toEqual(cpu.families);
  });
});

const describeCuda = CUDA.ok ? describe : describe.skip;
describeCuda(`CUDA device (${CUDA.ok ? CUDA.reason : `skipped: ${CUDA.reason}`})`, () => {
  test('statistics: the CUDA library equals the emulator bit for bit and the CPU within tolerance', async () => {
    const tensors = adversarialTensors(new Rng(11));
    const file = path.join(tmp.dir, 'cuda.safetensors');
    writeSafetensors(file, tensors);
    process.env.MOTHER_CUDA_LIBRARY = CUDA.library!;
    const dev = await scanModel(file, { backend: 'cuda', chunkBytes: 4096 });
    process.env.MOTHER_CUDA_LIBRARY = EMULATOR;
    const emu = await scanModel(file, { backend: 'cuda', chunkBytes: 4096 });
    const cpu = await scanModel(file, { backend: 'cpu' });
    expect(dev.backend.used).toBe('cuda');
    expect(dev.tensors).toEqual(emu.tensors);
    expect(compareStats(cpu, dev, tensors)).toEqual([]);
  });

  test('pairwise and recover on the trained sample: same as the CPU', async () => {
    process.env.MOTHER_CUDA_LIBRARY = CUDA.library!;
    const split = path.join(ROOT, 'samples/zoo-small/lora_fixed');
    const inputs = fs.readdirSync(split).filter((d) => fs.statSync(path.join(split, d)).isDirectory()).map((d) => ({ id: d, path: path.join(split, d) }));
    const cpu = await recover(inputs, { metric: 'rank', backend: 'cpu' });
    const gpu = await recover(inputs, { metric: 'rank', backend: 'cuda' });
    expect(gpu.edges.map((e) => [e.parent, e.child])).toEqual(cpu.edges.map((e) => [e.parent, e.child]));
  });
});
