// Malformed GGUF input: every fixture in test/fixtures/gguf-malformed (written by
// test/fixtures/make-gguf-malformed.js, expectations in its manifest.json) must be rejected with
// its exact error code, naming the right file and tensor, by inspectModel, scanModel and the
// CLI; the valid edge cases there must be accepted. Then a seeded mutation run: no byte
// sequence may crash or hang the reader, and whatever it accepts must describe the file.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { inspectModel, MotherError, scanModel } from '../lib';
import { inputErrorCodes } from '../lib/core/binding';
import { encodeAs, ggufBytes, GgufTensor, KvSpec } from './helpers/gguf';
import { rng } from './helpers/reference';
import { encode } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const INPUT_ERROR_CODES = inputErrorCodes();
const ROOT = path.resolve(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'gguf-malformed');
const GENERATOR = path.join(__dirname, 'fixtures', 'make-gguf-malformed.js');
const CLI = path.join(ROOT, 'bin', 'mother.js');

interface Expect { code: string; file: string; tensor: string | null; message: string[] }
interface ValidTensor { name: string; dtype: string; shape: number[]; bytes: number; file?: string }
interface Valid {
  tensors: ValidTensor[];
  metadata?: Record<string, string>;
  stats?: Record<string, { count: number; mean?: number; min?: number; max?: number }>;
}
interface Case { name: string; problem: string; input: string; files: string[]; expect?: Expect; valid?: Valid }

const manifest: Case[] = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8'));
const malformed = manifest.filter((c) => c.expect);
const valid = manifest.filter((c) => c.valid);
const abs = (rel: string) => path.join(FIXTURES, rel);
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection, but the call resolved');
}

function checkError(e: unknown, c: Case): void {
  const x = c.expect!;
  expect(e).toBeInstanceOf(MotherError);
  const err = e as MotherError;
  expect({ code: err.code, file: err.file, tensor: err.tensor ?? null }).toEqual({ code: x.code, file: abs(x.file), tensor: x.tensor });
  expect(err.message).toMatch(new RegExp(`^${escapeRe(abs(x.file))}: `));
  if (x.tensor !== null) expect(err.message).toContain(`tensor ${JSON.stringify(x.tensor)}`);
  for (const re of x.message) expect(err.message).toMatch(new RegExp(re));
  expect(INPUT_ERROR_CODES.has(err.code)).toBe(true);
}

function listFiles(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) out.push(...listFiles(p, base));
    else out.push(path.relative(base, p));
  }
  return out.sort();
}

describe('GGUF malformed fixture set', () => {
  test('is what make-gguf-malformed.js writes (regenerate with: node test/fixtures/make-gguf-malformed.js)', () => {
    const { dir, cleanup } = tmpDir('mother-gguf-malformed-gen-');
    try {
      const r = spawnSync(process.execPath, [GENERATOR, dir], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      const want = listFiles(dir);
      expect(listFiles(FIXTURES)).toEqual(want);
      for (const f of want) expect({ f, same: fs.readFileSync(path.join(FIXTURES, f)).equals(fs.readFileSync(path.join(dir, f))) }).toEqual({ f, same: true });
    } finally {
      cleanup();
    }
  });

  test('covers every rejection code of the GGUF reader, and the valid edge cases', () => {
    const codes = new Set(malformed.map((c) => c.expect!.code));
    for (const code of [
      'ERR_GGUF_MAGIC', 'ERR_GGUF_VERSION', 'ERR_GGUF_TRUNCATED', 'ERR_GGUF_COUNT', 'ERR_GGUF_STRING', 'ERR_GGUF_ARRAY', 'ERR_GGUF_VALUE',
      'ERR_GGUF_DIMS', 'ERR_GGUF_BLOCK', 'ERR_GGUF_ALIGNMENT', 'ERR_GGUF_SPLIT', 'ERR_DUPLICATE_KEY', 'ERR_DUPLICATE_TENSOR', 'ERR_UNKNOWN_DTYPE',
      'ERR_SHAPE_OVERFLOW', 'ERR_OFFSET_GAP', 'ERR_OFFSET_OVERLAP', 'ERR_TRUNCATED', 'ERR_MISSING_SHARD',
    ]) expect({ code, covered: codes.has(code) }).toEqual({ code, covered: true });
    expect(valid.map((c) => c.name)).toEqual(expect.arrayContaining(['valid-v2', 'valid-alignment-8', 'valid-no-tensors', 'valid-scalar-and-empty', 'valid-split']));
    for (const c of manifest) for (const f of c.files) expect({ f, small: fs.statSync(abs(f)).size < 4096 }).toEqual({ f, small: true });
  });
});

describe.each(malformed.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  test(`inspectModel rejects with ${c.expect!.code}`, async () => {
    checkError(await rejection(inspectModel(abs(c.input))), c);
  });
  test(`scanModel rejects with ${c.expect!.code}`, async () => {
    checkError(await rejection(scanModel(abs(c.input), { threads: 1, backend: 'cpu' })), c);
  });
});

/** The data of each tensor lies inside its file, aligned, in order, without overlaps. */
function checkLayout(h: Awaited<ReturnType<typeof inspectModel>>, problems: string[], label: string): void {
  for (const f of h.files) {
    const align = Number(f.metadata['general.alignment'] ?? 32);
    const ts = h.tensors.filter((t) => t.file === f.path);
    let cursor = f.headerBytes;
    if (f.headerBytes % align) problems.push(`${label}: data section at ${f.headerBytes}, not aligned to ${align}`);
    for (const t of ts) {
      if (t.offset !== cursor) problems.push(`${label}: tensor ${t.name} at ${t.offset}, expected ${cursor}`);
      if (t.offset + t.bytes > f.size) problems.push(`${label}: tensor ${t.name} ends past the end of the file`);
      cursor = t.offset + t.bytes;
      cursor += (align - (cursor % align)) % align;
    }
  }
}

describe.each(valid.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  const v = c.valid!;
  const fileOf = (t: ValidTensor) => abs(t.file ?? c.input);

  test('inspectModel accepts it: names, dtypes, shapes, files, layout', async () => {
    const h = await inspectModel(abs(c.input));
    expect(h.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.bytes, file: t.file }))).toEqual(
      v.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.bytes, file: fileOf(t) })),
    );
    const problems: string[] = [];
    checkLayout(h, problems, c.name);
    expect(problems).toEqual([]);
    for (const f of h.files) expect(f.format).toBe('gguf');
    if (v.metadata) expect(h.files[0].metadata).toEqual(v.metadata);
  });

  test('scanModel accepts it: counts and statistics', async () => {
    const s = await scanModel(abs(c.input), { threads: 2, backend: 'cpu' });
    expect(s.tensors.map((t) => ({ name: t.name, count: t.count }))).toEqual(v.tensors.map((t) => ({ name: t.name, count: t.shape.reduce((a, b) => a * b, 1) })));
    for (const [name, want] of Object.entries(v.stats ?? {})) {
      const t = s.tensors.find((x) => x.name === name)!;
      expect(t.count).toBe(want.count);
      if (want.count === 0) expect(t.mean).toBeNull();
      else expect({ mean: t.mean, min: t.min, max: t.max }).toEqual({ mean: want.mean, min: want.min, max: want.max });
    }
  });
});

// ---- the CLI --------------------------------------------------------------------------------

function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, FORCE_COLOR: '0' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('mother stats on the GGUF fixtures', () => {
  const runs = new Map<string, { status: number | null; stdout: string; stderr: string }>();
  beforeAll(async () => {
    const all = [...malformed, ...valid];
    let next = 0;
    const worker = async () => {
      while (next < all.length) {
        const c = all[next++];
        runs.set(c.name, await runCli(['stats', abs(c.input), ...(c.valid ? ['--json'] : [])]));
      }
    };
    await Promise.all([worker(), worker()]);
  }, 180000);

  test.each(malformed.map((c) => [c.name, c] as const))('%s: exit 3, the file and the problem on one line of stderr', (name, c) => {
    const r = runs.get(name)!;
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^mother: ${escapeRe(abs(c.expect!.file))}: `));
    for (const re of c.expect!.message) expect(r.stderr).toMatch(new RegExp(re));
    expect(r.stderr).not.toContain('    at ');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  test.each(valid.map((c) => [c.name, c] as const))('%s: exit 0 and the tensors as JSON', (name, c) => {
    const r = runs.get(name)!;
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect((JSON.parse(r.stdout) as { tensors: { name: string }[] }).tensors.map((t) => t.name)).toEqual(c.valid!.tensors.map((t) => t.name));
  });
});

// ---- mutation run ---------------------------------------------------------------------------

describe('mutated GGUF files never crash or hang the reader', () => {
  const HANG_MS = 10000;
  let tmp: ReturnType<typeof tmpDir>;
  beforeAll(() => {
    tmp = tmpDir('mother-gguf-mutate-');
  });
  afterAll(() => tmp.cleanup());

  const kv: KvSpec[] = [
    { key: 'general.architecture', value: { type: 'string', value: 'llama' } },
    { key: 'general.alignment', value: { type: 'u32', value: 32 } },
    { key: 'llama.attention.head_count', value: { type: 'u32', value: 2 } },
    { key: 't.arr', value: { type: 'array', elem: 'i16', values: [1, -2, 3] } },
    { key: 't.tok', value: { type: 'array', elem: 'string', values: ['<s>', 'a'] } },
    { key: 't.flag', value: { type: 'bool', value: true } },
  ];
  const tensors: GgufTensor[] = [
    { name: 'blk.0.attn_q.weight', shape: [4, 32], type: 'Q8_0', data: encodeAs('Q8_0', Array.from({ length: 128 }, (_, i) => Math.sin(i))) },
    { name: 'blk.0.attn_norm.weight', shape: [32], type: 'F32', data: encode('F32', Array.from({ length: 32 }, (_, i) => i / 8)) },
    { name: 'k4', shape: [256], type: 'Q4_K', data: new Uint8Array(144).fill(0x11) },
  ];
  const base = ggufBytes({ kv, tensors });
  const headerEnd = base.indexOf(Buffer.from('k4')) + 2 + 4 + 8 + 4 + 8;

  function* mutations(): Generator<[string, Buffer]> {
    const rand = rng(0x6611f);
    const int = (n: number) => Math.floor(rand() * n);
    for (let n = 0; n < headerEnd + 64; n++) yield [`truncate to ${n}`, base.subarray(0, n)];
    for (let i = 0; i < headerEnd; i++)
      for (let b = 0; b < 8; b++) {
        const m = Buffer.from(base);
        m[i] ^= 1 << b;
        yield [`flip bit ${b} of byte ${i}`, m];
      }
    // small integers and extremes written over the counts, lengths, types, dims and offsets
    const words = [0n, 1n, 2n, 3n, 4n, 5n, 8n, 12n, 13n, 31n, 32n, 33n, 255n, 256n, 65535n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n];
    for (let k = 0; k < 1500; k++) {
      const m = Buffer.from(base);
      const at = int(headerEnd - 8);
      const w = words[int(words.length)];
      if (rand() < 0.5) m.writeBigUInt64LE(w, at);
      else m.writeUInt32LE(Number(w & 0xffffffffn), at);
      yield [`word ${w} at ${at}`, m];
    }
    for (let k = 0; k < 500; k++) {
      const m = Buffer.from(base);
      for (let e = 0; e <= int(4); e++) m[int(headerEnd)] = int(256);
      yield [`random header bytes #${k}`, m];
    }
  }

  test('truncations, bit flips, words and random bytes over the header (seeded)', async () => {
    const file = path.join(tmp.dir, 'm.gguf');
    const problems: string[] = [];
    const codes = new Map<string, number>();
    let total = 0;
    let accepted = 0;
    for (const [label, bytes] of mutations()) {
      total++;
      fs.writeFileSync(file, bytes);
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<'hang'>((resolve) => {
        timer = setTimeout(() => resolve('hang'), HANG_MS);
      });
      try {
        const r = await Promise.race([inspectModel(file), hang]);
        if (r === 'hang') problems.push(`${label}: no answer after ${HANG_MS} ms`);
        else {
          accepted++;
          checkLayout(r, problems, label);
          const s = await scanModel(file, { threads: 1, backend: 'cpu' });
          if (s.tensors.length !== r.tensors.length) problems.push(`${label}: scan found ${s.tensors.length} tensors, inspect ${r.tensors.length}`);
        }
      } catch (e) {
        if (!(e instanceof MotherError)) problems.push(`${label}: rejected with a non-MotherError: ${String(e)}`);
        else if (!INPUT_ERROR_CODES.has(e.code)) problems.push(`${label}: unexpected code ${e.code}: ${e.message}`);
        else if (!e.file || !e.message.startsWith(`${e.file}: `)) problems.push(`${label}: message does not start with the file: ${e.message}`);
        else codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      } finally {
        clearTimeout(timer);
      }
    }
    expect(problems.slice(0, 20)).toEqual([]);
    expect(total).toBeGreaterThan(4000);
    expect(accepted).toBeGreaterThan(50);
    expect(codes.size).toBeGreaterThanOrEqual(12);
  });
});
