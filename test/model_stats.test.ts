// scanModel end to end: files on disk, discovery, shards, threads, progress, cancellation,
// SIMD forcing, bounded memory, and a 1e8-element tensor against the float64 reference.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { MotherError, scanModel } from '../lib';
import { native } from '../lib/core/binding';
import { close, refStats, Rng } from './helpers/reference';
import { f32Bound, StatBound, usesF32Pass } from './helpers/f32_bound';
import { decode, encode, FloatDtype, TensorSpec, writeLargeSafetensors, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const ROOT = path.resolve(__dirname, '..');
const { abs, sqrt } = Math; // global lookups are slow in jest's VM context
let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir();
});
afterAll(() => tmp.cleanup());

/** close(a, b, rel, floor), or within `slack` more: F16 and BF16 on the SIMD paths sum in float32
 *  (native/stats/block_h.inc) and are held to that pass's stated bound (test/helpers/f32_bound.ts)
 *  on top of the float64 tolerance every other dtype and path meets. */
function within(a: number, b: number, rel: number, floor = 0, slack = 0): boolean {
  return close(a, b, rel, floor) || abs(a - b) <= rel * Math.max(abs(b), floor) + slack;
}
const NO_SLACK: StatBound = { mean: 0, std: 0, skewness: 0, kurtosis: 0, l2: 0, absMean: 0 };

function randomTensor(rng: Rng, name: string, dtype: FloatDtype, shape: number[], scale = 0.02): TensorSpec {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: n }, () => scale * rng.normal());
  return { name, dtype, shape, data: encode(dtype, values) };
}

function mixedModel(seed: number): TensorSpec[] {
  const rng = new Rng(seed);
  return [
    randomTensor(rng, 'model.embed_tokens.weight', 'BF16', [64, 32]),
    randomTensor(rng, 'model.layers.0.self_attn.o_proj.weight', 'F32', [32, 32]),
    randomTensor(rng, 'model.layers.0.mlp.up_proj.weight', 'F16', [96, 32]),
    randomTensor(rng, 'model.layers.0.input_layernorm.weight', 'F64', [32], 1),
    randomTensor(rng, 'model.layers.0.fp8.weight', 'F8_E4M3', [32, 8], 1),
    { name: 'position_ids', dtype: 'I64', shape: [4], data: new Uint8Array(32) },
    { name: 'mask', dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    { name: 'packed', dtype: 'F4', shape: [6], data: new Uint8Array(3) },
    { name: 'empty', dtype: 'F32', shape: [0, 5], data: new Uint8Array(0) },
    { name: 'scalar', dtype: 'F32', shape: [], data: new Uint8Array(new Float32Array([2.5]).buffer) },
  ];
}

describe('scanModel', () => {
  test('a model directory: every tensor listed, float stats match the reference, others null', async () => {
    const dir = path.join(tmp.dir, 'mixed');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'] }));
    const tensors = mixedModel(1);
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { metadata: { format: 'pt' } });
    const stats = await scanModel(dir);
    expect(stats.model).toBe(dir);
    expect(stats.files).toEqual([path.join(dir, 'model.safetensors')]);
    expect(stats.tensors.map((t) => t.name)).toEqual(tensors.map((t) => t.name));
    for (const spec of tensors) {
      const t = stats.tensors.find((x) => x.name === spec.name)!;
      expect(t.dtype).toBe(spec.dtype);
      expect(t.shape).toEqual(spec.shape);
      expect(t.count).toBe(spec.shape.reduce((a, b) => a * b, 1));
      if (['I64', 'BOOL', 'F4'].includes(spec.dtype)) {
        expect([t.mean, t.std, t.kurtosis, t.nan]).toEqual([null, null, null, null]);
        continue;
      }
      const values = decode(spec.dtype as FloatDtype, spec.data);
      const ref = refStats(values);
      if (t.count === 0) {
        expect(t.mean).toBeNull();
        expect(t.nan).toBe(0);
        continue;
      }
      const bound = usesF32Pass(spec.dtype, stats.simd) ? f32Bound(values) : NO_SLACK;
      expect(within(t.mean!, ref.mean, 1e-9, 1e-6 * ref.absMean, bound.mean)).toBe(true);
      expect(within(t.std!, ref.std, 1e-9, 0, bound.std)).toBe(true);
      if (t.count > 2) expect(within(t.kurtosis!, ref.kurtosis, 1e-9, 1e-4, bound.kurtosis)).toBe(true);
      expect(t.min).toBe(ref.min);
      expect(t.max).toBe(ref.max);
    }
  });

  test('a bare .safetensors file and a shard index give the same statistics as one file', async () => {
    const tensors = mixedModel(2);
    const single = path.join(tmp.dir, 'single.safetensors');
    writeSafetensors(single, tensors);
    const shardDir = path.join(tmp.dir, 'sharded');
    fs.mkdirSync(shardDir);
    const a = tensors.slice(0, 4);
    const b = tensors.slice(4);
    writeSafetensors(path.join(shardDir, 'model-00001-of-00002.safetensors'), a);
    writeSafetensors(path.join(shardDir, 'model-00002-of-00002.safetensors'), b);
    const weightMap: Record<string, string> = {};
    for (const t of a) weightMap[t.name] = 'model-00001-of-00002.safetensors';
    for (const t of b) weightMap[t.name] = 'model-00002-of-00002.safetensors';
    fs.writeFileSync(path.join(shardDir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    const s1 = await scanModel(single);
    const s2 = await scanModel(shardDir);
    expect(s2.files.map((f) => path.basename(f))).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    const strip = (s: typeof s1) => s.tensors.map(({ file: _f, ...rest }) => rest).sort((x, y) => x.name.localeCompare(y.name));
    expect(strip(s2)).toEqual(strip(s1));
    expect(s2.tensors.find((t) => t.name === 'mask')!.file).toBe(path.join(shardDir, 'model-00002-of-00002.safetensors'));
  });

  test('results are bit-identical for any thread count; chunk size changes only rounding', async () => {
    const file = path.join(tmp.dir, 'threads.safetensors');
    const rng = new Rng(3);
    const tensors = [
      randomTensor(rng, 'a', 'F32', [300, 257]),
      randomTensor(rng, 'b', 'BF16', [1000, 33]),
      randomTensor(rng, 'c', 'F8_E5M2', [5000], 1),
    ];
    writeSafetensors(file, tensors);
    for (const chunkBytes of [4096, 65536]) {
      const base = await scanModel(file, { threads: 1, chunkBytes });
      for (const threads of [2, 3, 7, 0]) {
        const other = await scanModel(file, { threads, chunkBytes });
        expect(other.tensors).toEqual(base.tensors);
      }
    }
    const small = await scanModel(file, { chunkBytes: 4096 });
    const big = await scanModel(file);
    for (let i = 0; i < big.tensors.length; i++) {
      // BF16 on a SIMD path: 4 KiB chunks are single blocks (float64 passes), large ones run the
      // float32 pass, so the two differ by up to its bound rather than by float64 rounding
      const spec = tensors[i];
      const bound = usesF32Pass(spec.dtype, big.simd) ? f32Bound(decode(spec.dtype as FloatDtype, spec.data)) : NO_SLACK;
      for (const k of ['std', 'kurtosis', 'l2', 'absMean'] as const) {
        expect(within(small.tensors[i][k]!, big.tensors[i][k]!, 1e-13, k === 'kurtosis' ? 1 : 0, bound[k])).toBe(true);
      }
    }
  });

  test('every SIMD path gives the same statistics through the file path', async () => {
    const file = path.join(tmp.dir, 'simd.safetensors');
    const rng = new Rng(4);
    const tensors = [randomTensor(rng, 'a', 'F32', [123, 457]), randomTensor(rng, 'b', 'F16', [77, 301])];
    writeSafetensors(file, tensors, { align: 1 });
    const base = await scanModel(file, { simd: 'scalar' });
    expect(base.simd).toBe('scalar');
    for (const simd of native().simdPaths()) {
      const s = await scanModel(file, { simd });
      expect(s.simd).toBe(simd);
      for (let i = 0; i < s.tensors.length; i++) {
        // relative 1e-12; the mean near 0 relative to the spread, skewness and excess
        // kurtosis (dimensionless, O(1)) near 0 absolutely. F16 on a SIMD path: the float32
        // pass, within its bound of the float64 scalar path
        const floors = { mean: base.tensors[i].std!, std: 0, skewness: 1, kurtosis: 1, l2: 0, absMean: 0 };
        const spec = tensors[i];
        const bound = usesF32Pass(spec.dtype, simd) ? f32Bound(decode(spec.dtype as FloatDtype, spec.data)) : NO_SLACK;
        for (const k of ['mean', 'std', 'skewness', 'kurtosis', 'l2', 'absMean'] as const) {
          const [a, b] = [s.tensors[i][k]!, base.tensors[i][k]!];
          if (!within(a, b, 1e-12, floors[k], bound[k])) throw new Error(`${simd} ${s.tensors[i].name} ${k}: ${a} vs scalar ${b} (bound ${bound[k]})`);
        }
        expect(s.tensors[i].min).toBe(base.tensors[i].min);
        expect(s.tensors[i].max).toBe(base.tensors[i].max);
      }
    }
  });

  test('MOTHER_SIMD forces a path; an unknown value is a clear error', () => {
    const file = path.join(tmp.dir, 'env.safetensors');
    writeSafetensors(file, [randomTensor(new Rng(5), 'a', 'F32', [64])]);
    const script = `require(${JSON.stringify(path.join(ROOT, 'dist/lib/index.js'))}).scanModel(${JSON.stringify(file)}).then(s => console.log(s.simd), e => { console.log('ERR', e.code, e.message); })`;
    const run = (v: string) => spawnSync(process.execPath, ['-e', script], { env: { ...process.env, MOTHER_SIMD: v }, encoding: 'utf8' });
    expect(run('scalar').stdout.trim()).toBe('scalar');
    const best = native().simdPaths().at(-1)!;
    expect(run(best).stdout.trim()).toBe(best);
    expect(run('bogus').stdout).toMatch(/^ERR ERR_INVALID_ARGUMENT MOTHER_SIMD=bogus: unknown SIMD path/);
  });

  test('progress is reported, monotonic, and ends complete; the event loop stays free', async () => {
    const file = path.join(tmp.dir, 'progress.safetensors');
    const count = 48 * 1024 * 1024; // 192 MB of F32
    const rng = new Rng(6);
    writeLargeSafetensors(file, 'w', 'F32', count, (_first, n) => {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = rng.next() - 0.5;
      return new Uint8Array(a.buffer);
    });
    const events: { bytesDone: number; bytesTotal: number }[] = [];
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    // scalar and one thread: a scan long enough (~0.2 s) for the timer to have to fire
    const stats = await scanModel(file, { threads: 1, simd: 'scalar', chunkBytes: 1 << 20, onProgress: (p) => events.push(p) });
    clearInterval(timer);
    expect(events.length).toBeGreaterThan(0);
    for (let i = 1; i < events.length; i++) expect(events[i].bytesDone).toBeGreaterThanOrEqual(events[i - 1].bytesDone);
    expect(events.at(-1)!.bytesDone).toBe(count * 4);
    expect(events.at(-1)!.bytesTotal).toBe(count * 4);
    // the timer fired while the native thread worked: the event loop was not blocked
    expect(stats.seconds).toBeGreaterThan(0.05);
    expect(ticks).toBeGreaterThan(0);
  });

  test('an AbortSignal cancels a scan with ERR_CANCELLED', async () => {
    const file = path.join(tmp.dir, 'abort.safetensors');
    writeLargeSafetensors(file, 'w', 'F32', 32 * 1024 * 1024, (first, n) => {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = ((first + i) % 977) * 1e-3;
      return new Uint8Array(a.buffer);
    });
    // scalar, one thread, 4 KiB jobs: ~0.2 s of work; the first progress report comes after
    // the first job and aborts the rest in the native workers
    const ac = new AbortController();
    const p = scanModel(file, { threads: 1, simd: 'scalar', chunkBytes: 4096, signal: ac.signal, onProgress: () => ac.abort() });
    await expect(p).rejects.toMatchObject({ code: 'ERR_CANCELLED' });
    const ac2 = new AbortController();
    ac2.abort();
    await expect(scanModel(file, { signal: ac2.signal })).rejects.toBeInstanceOf(MotherError);
  });

  test('invalid options are rejected with a message naming the option', async () => {
    await expect(scanModel(tmp.dir, { threads: -1 })).rejects.toThrow(/for threads, got -1/);
    await expect(scanModel(tmp.dir, { chunkBytes: 10 })).rejects.toThrow(/for chunkBytes, got 10/);
  });

  test('discovery: missing path, a folder without weights, an ambiguous folder', async () => {
    await expect(scanModel(path.join(tmp.dir, 'nope'))).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    const empty = path.join(tmp.dir, 'empty');
    fs.mkdirSync(empty);
    await expect(scanModel(empty)).rejects.toMatchObject({ code: 'ERR_NOT_A_MODEL' });
    const two = path.join(tmp.dir, 'two');
    fs.mkdirSync(two);
    writeSafetensors(path.join(two, 'a.safetensors'), []);
    writeSafetensors(path.join(two, 'b.safetensors'), []);
    await expect(scanModel(two)).rejects.toThrow(/several weight files/);
    const notModel = path.join(tmp.dir, 'x.txt');
    fs.writeFileSync(notModel, 'hi');
    await expect(scanModel(notModel)).rejects.toMatchObject({ code: 'ERR_NOT_A_MODEL' });
  });

  test('1e8 elements (F32, heavy-tailed, mean >> std): relative error <= 1e-9 against the reference', async () => {
    const file = path.join(tmp.dir, 'big.safetensors');
    const count = 100_000_000;
    const rng = new Rng(7);
    writeLargeSafetensors(file, 'big', 'F32', count, (_first, n) => {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const scale = rng.next() < 0.01 ? 0.5 : 0.02; // scale mixture: heavy tails
        a[i] = 3 + scale * rng.normal();
      }
      return new Uint8Array(a.buffer);
    });
    const stats = await scanModel(file);
    // reference: the file's bytes read back in chunks, two compensated passes (streaming)
    const ref = streamingReference(file, count);
    const t = stats.tensors[0];
    expect(t.count).toBe(count);
    expect(close(t.mean!, ref.mean, 1e-9)).toBe(true);
    expect(close(t.std!, ref.std, 1e-9)).toBe(true);
    expect(close(t.skewness!, ref.skewness, 1e-9)).toBe(true);
    expect(close(t.kurtosis!, ref.kurtosis, 1e-9)).toBe(true);
    expect(t.min).toBe(ref.min);
    expect(t.max).toBe(ref.max);
    fs.rmSync(file);
  });

  test('peak RSS stays bounded while scanning a 1 GB file (streaming, pages released)', () => {
    const file = path.join(tmp.dir, 'rss.safetensors');
    const count = 256 * 1024 * 1024; // 1 GiB of F32
    writeLargeSafetensors(file, 'w', 'F32', count, (first, n) => {
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = ((first + i) % 1000) * 1e-3;
      return new Uint8Array(a.buffer);
    });
    // VmHWM: peak RSS of the child's own image (getrusage's maxrss would include the RSS
    // jest had when it forked the child)
    const hwm = `Number(/VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status','utf8'))[1]) * 1024`;
    const lib = JSON.stringify(path.join(ROOT, 'dist/lib/index.js'));
    const script = `require(${lib}).scanModel(${JSON.stringify(file)}, {threads: 2}).then(s => console.log(JSON.stringify({rss: ${hwm}, n: s.tensors[0].count})))`;
    const baseScript = `require(${lib}).simdPaths(); console.log(JSON.stringify({rss: ${hwm}}))`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const { rss, n } = JSON.parse(r.stdout) as { rss: number; n: number };
    const base = (JSON.parse(spawnSync(process.execPath, ['-e', baseScript], { encoding: 'utf8' }).stdout) as { rss: number }).rss;
    expect(n).toBe(count);
    // 2 threads x 16 MiB chunks in flight, thread stacks and slack: far below the 1 GiB read
    expect(rss - base).toBeLessThan(160 * 1024 * 1024);
    fs.rmSync(file);
  });
});

function streamingReference(file: string, count: number) {
  const fd = fs.openSync(file, 'r');
  const lenBuf = Buffer.alloc(8);
  fs.readSync(fd, lenBuf, 0, 8, 0);
  const start = 8 + Number(lenBuf.readBigUInt64LE(0));
  const chunk = 1 << 22;
  const buf = new Float32Array(chunk);
  const bytes = new Uint8Array(buf.buffer);
  const each = (fn: (x: Float32Array, n: number) => void) => {
    for (let first = 0; first < count; first += chunk) {
      const n = Math.min(chunk, count - first);
      fs.readSync(fd, bytes, 0, n * 4, start + first * 4);
      fn(buf, n);
    }
  };
  // pass 1: compensated sum, min, max
  let s = 0, c = 0, min = Infinity, max = -Infinity;
  each((x, n) => {
    for (let i = 0; i < n; i++) {
      const v = x[i];
      const t = s + v;
      c += abs(s) >= abs(v) ? s - t + v : v - t + s;
      s = t;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  });
  const mean = (s + c) / count;
  // pass 2: compensated central sums (Neumaier per power)
  const S = [0, 0, 0, 0], C = [0, 0, 0, 0];
  const add = (k: number, v: number) => {
    const t = S[k] + v;
    C[k] += abs(S[k]) >= abs(v) ? S[k] - t + v : v - t + S[k];
    S[k] = t;
  };
  each((x, n) => {
    for (let i = 0; i < n; i++) {
      const d = x[i] - mean, d2 = d * d;
      add(0, d);
      add(1, d2);
      add(2, d2 * d);
      add(3, d2 * d2);
    }
  });
  fs.closeSync(fd);
  const [sd, s2, s3, s4] = S.map((v, k) => v + C[k]);
  const r = sd / count;
  const m2 = (s2 - count * r * r) / count;
  const m3 = (s3 - 3 * r * s2 + 2 * count * r ** 3) / count;
  const m4 = (s4 - 4 * r * s3 + 6 * r * r * s2 - 3 * count * r ** 4) / count;
  return { mean: mean + r, std: sqrt(m2), skewness: m3 / m2 ** 1.5, kurtosis: m4 / (m2 * m2) - 3, min, max };
}
