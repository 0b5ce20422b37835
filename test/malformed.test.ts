// Malformed input: every fixture in test/fixtures/malformed (written by
// test/fixtures/make-malformed.js, expectations in its manifest.json) must be rejected with its
// exact error code, naming the right file and tensor, by inspectModel, scanModel and the CLI;
// the valid edge cases there must be accepted. Then a seeded mutation run: no byte sequence
// may crash or hang the reader.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { inspectModel, MotherError, scanModel } from '../lib';
import { inputErrorCodes } from '../lib/core/binding';
import { rng } from './helpers/reference';
import { encode, safetensorsBytes } from './helpers/safetensors';

const INPUT_ERROR_CODES = inputErrorCodes();
import { tmpDir } from './helpers/tmp';

const ROOT = path.resolve(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'malformed');
const GENERATOR = path.join(__dirname, 'fixtures', 'make-malformed.js');
const CLI = path.join(ROOT, 'bin', 'mother.js');

interface Expect {
  code: string;
  file: string;
  tensor: string | null;
  message: string[];
}
interface ValidTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: number;
  file?: string;
}
interface Valid {
  tensors: ValidTensor[];
  metadata?: Record<string, string>;
  stats?: Record<string, { count: number; mean?: number; min?: number; max?: number }>;
}
interface Case {
  name: string;
  problem: string;
  input: string;
  files: string[];
  expect?: Expect;
  valid?: Valid;
}

const manifest: Case[] = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8'));
const malformed = manifest.filter((c) => c.expect);
const valid = manifest.filter((c) => c.valid);
const abs = (rel: string) => path.join(FIXTURES, rel);
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Awaits a promise that must reject; returns the rejection. */
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

describe('malformed fixture set', () => {
  test('is what make-malformed.js writes (regenerate with: node test/fixtures/make-malformed.js)', () => {
    const { dir, cleanup } = tmpDir('mother-malformed-gen-');
    try {
      const r = spawnSync(process.execPath, [GENERATOR, dir], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      const want = listFiles(dir);
      expect(listFiles(FIXTURES)).toEqual(want);
      for (const f of want) {
        expect({ f, same: fs.readFileSync(path.join(FIXTURES, f)).equals(fs.readFileSync(path.join(dir, f))) }).toEqual({ f, same: true });
      }
    } finally {
      cleanup();
    }
  });

  test('covers every rejection code of the reader, and the valid edge cases', () => {
    const codes = new Set(malformed.map((c) => c.expect!.code));
    for (const code of [
      'ERR_TRUNCATED', 'ERR_FILE_TOO_SMALL', 'ERR_HEADER_LENGTH', 'ERR_HEADER_TOO_LARGE', 'ERR_HEADER_JSON', 'ERR_HEADER_UTF8',
      'ERR_UNKNOWN_DTYPE', 'ERR_OFFSET_GAP', 'ERR_OFFSET_OVERLAP', 'ERR_OFFSET_ORDER', 'ERR_SIZE_MISMATCH', 'ERR_SHAPE_OVERFLOW',
      'ERR_TRAILING_BYTES', 'ERR_DUPLICATE_KEY', 'ERR_HEADER_SCHEMA', 'ERR_MISSING_SHARD', 'ERR_INDEX_TENSOR_MISSING',
      'ERR_INDEX_INVALID', 'ERR_DUPLICATE_TENSOR',
    ]) {
      expect({ code, covered: codes.has(code) }).toEqual({ code, covered: true });
    }
    expect(valid.map((c) => c.name).sort()).toEqual(
      expect.arrayContaining(['valid-zero-size', 'valid-scalar', 'valid-whitespace-padding', 'valid-unaligned', 'valid-empty-header', 'valid-metadata', 'valid-sharded']),
    );
  });

  test('files are small, and every listed file exists', () => {
    for (const c of manifest) {
      for (const f of c.files) {
        const size = fs.statSync(abs(f)).size;
        expect({ f, small: size < 4096 }).toEqual({ f, small: true });
      }
      expect(fs.existsSync(abs(c.input))).toBe(true);
    }
  });
});

describe.each(malformed.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  test(`inspectModel rejects with ${c.expect!.code}`, async () => {
    checkError(await rejection(inspectModel(abs(c.input))), c);
  });
  test(`scanModel rejects with ${c.expect!.code}`, async () => {
    checkError(await rejection(scanModel(abs(c.input), { threads: 1 })), c);
  });
});

describe.each(valid.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  const v = c.valid!;
  const fileOf = (t: ValidTensor) => abs(t.file ?? c.input);
  const byName = <T extends { name: string }>(xs: T[]) => [...xs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  test('inspectModel accepts it: names, dtypes, shapes, files, offsets', async () => {
    const h = await inspectModel(abs(c.input));
    expect(byName(h.tensors).map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.bytes, file: t.file }))).toEqual(
      byName(v.tensors).map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.bytes, file: fileOf(t) })),
    );
    // Within each file the tensors tile the data buffer exactly.
    for (const f of h.files) {
      const ts = h.tensors.filter((t) => t.file === f.path).sort((a, b) => a.offset - b.offset || a.bytes - b.bytes);
      let cursor = 8 + f.headerBytes;
      for (const t of ts) {
        expect(t.offset).toBe(cursor);
        cursor += t.bytes;
      }
      expect(cursor).toBe(f.size);
      expect(f.size).toBe(fs.statSync(f.path).size);
    }
    expect(new Set(h.files.map((f) => f.path))).toEqual(new Set(v.tensors.length ? v.tensors.map(fileOf) : [abs(c.input)]));
    if (v.metadata) expect(h.files[0].metadata).toEqual(v.metadata);
  });

  test('scanModel accepts it: counts and statistics', async () => {
    const s = await scanModel(abs(c.input), { threads: 2 });
    expect(byName(s.tensors).map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, count: t.count }))).toEqual(
      byName(v.tensors).map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, count: t.shape.reduce((a, b) => a * b, 1) })),
    );
    for (const [name, want] of Object.entries(v.stats ?? {})) {
      const t = s.tensors.find((x) => x.name === name)!;
      expect(t.count).toBe(want.count);
      if (want.count === 0) {
        expect(t.mean).toBeNull();
      } else {
        expect(t.mean).toBeCloseTo(want.mean!, 12);
        expect(t.min).toBe(want.min);
        expect(t.max).toBe(want.max);
        expect(t.nan).toBe(0);
      }
    }
  });
});

// ---- the CLI ----------------------------------------------------------------------------

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, FORCE_COLOR: '0' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** Runs the CLI on many inputs, two at a time. */
async function runAll(argsList: string[][]): Promise<Run[]> {
  const out: Run[] = new Array(argsList.length);
  let next = 0;
  const worker = async () => {
    while (next < argsList.length) {
      const i = next++;
      out[i] = await runCli(argsList[i]);
    }
  };
  await Promise.all([worker(), worker()]);
  return out;
}

describe('mother stats (the compiled CLI)', () => {
  const runs = new Map<string, Run>();

  beforeAll(async () => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'lib', 'cli', 'main.js'))) {
      throw new Error('dist/ is missing: run `npm run build:ts` (npm test does it in pretest)');
    }
    const all = [...malformed, ...valid];
    const results = await runAll(all.map((c) => ['stats', abs(c.input), ...(c.valid ? ['--json'] : [])]));
    all.forEach((c, i) => runs.set(c.name, results[i]));
  }, 120000);

  test.each(malformed.map((c) => [c.name, c] as const))('%s: exit 3, the file and the problem on stderr, nothing else', (name, c) => {
    const r = runs.get(name)!;
    const x = c.expect!;
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 3, signal: null });
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^mother: ${escapeRe(abs(x.file))}: `));
    for (const re of x.message) expect(r.stderr).toMatch(new RegExp(re));
    expect(r.stderr).not.toContain('    at ');
    expect(r.stderr).not.toMatch(/internal error/i);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  test.each(valid.map((c) => [c.name, c] as const))('%s: exit 0 and the tensors as JSON', (name, c) => {
    const r = runs.get(name)!;
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    const doc = JSON.parse(r.stdout) as { tensors: { name: string; shape: number[] }[] };
    expect(doc.tensors.map((t) => t.name).sort()).toEqual(c.valid!.tensors.map((t) => t.name).sort());
  });

  test('a path that does not exist: exit 3, no stack trace', async () => {
    const missing = abs('no-such-model.safetensors');
    const r = await runCli(['stats', missing]);
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('no-such-model.safetensors');
    expect(r.stderr).not.toContain('    at ');
  });
});

// ---- mutation run: nothing may crash or hang --------------------------------------------

describe('mutated inputs never crash or hang the reader', () => {
  const HANG_MS = 10000;
  let tmp: { dir: string; cleanup: () => void };
  beforeAll(() => {
    tmp = tmpDir('mother-mutate-');
  });
  afterAll(() => tmp.cleanup());

  /**
   * Runs `call` on each input written to `file`; every call must resolve (then `onOk` checks the
   * result) or reject with a MotherError with an input-error code and a message naming a file.
   * Returns [problems, accepted count].
   */
  async function exercise(
    inputs: Iterable<[string, Buffer]>,
    file: string,
    target: string,
    onOk: (label: string) => Promise<void>,
  ): Promise<{ problems: string[]; total: number; accepted: number; codes: Map<string, number> }> {
    const problems: string[] = [];
    const codes = new Map<string, number>();
    let total = 0;
    let accepted = 0;
    for (const [label, bytes] of inputs) {
      total++;
      fs.writeFileSync(file, bytes);
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise<'hang'>((resolve) => {
        timer = setTimeout(() => resolve('hang'), HANG_MS);
      });
      try {
        const r = await Promise.race([inspectModel(target).then(() => 'ok' as const), hang]);
        if (r === 'hang') problems.push(`${label}: no answer after ${HANG_MS} ms`);
        else {
          accepted++;
          await onOk(label);
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
    return { problems, total, accepted, codes };
  }

  /** Headers that parse must describe the file exactly; the data must then scan. */
  async function checkAccepted(target: string, label: string, problems: string[]): Promise<void> {
    const h = await inspectModel(target);
    for (const f of h.files) {
      const ts = h.tensors.filter((t) => t.file === f.path).sort((a, b) => a.offset - b.offset || a.bytes - b.bytes);
      let cursor = 8 + f.headerBytes;
      for (const t of ts) {
        if (t.offset !== cursor) problems.push(`${label}: accepted, but tensor ${t.name} starts at ${t.offset}, expected ${cursor}`);
        cursor = t.offset + t.bytes;
      }
      if (cursor !== f.size) problems.push(`${label}: accepted, but the tensors end at ${cursor} of ${f.size} bytes`);
    }
    const s = await scanModel(target, { threads: 1 });
    if (s.tensors.length !== h.tensors.length) problems.push(`${label}: scan found ${s.tensors.length} tensors, inspect ${h.tensors.length}`);
  }

  const base = safetensorsBytes(
    [
      { name: 'model.layers.0.weight', dtype: 'F32', shape: [2, 3], data: encode('F32', [1, -2, 3.5, 0, 1e-3, -7]) },
      { name: 'model.layers.0.bias', dtype: 'BF16', shape: [3], data: encode('BF16', [0.5, -0.25, 2]) },
      { name: 'ids', dtype: 'I64', shape: [1], data: new Uint8Array(8).fill(1) },
    ],
    { metadata: { format: 'pt' } },
  );
  const headerEnd = 8 + Number(base.readBigUInt64LE(0));

  function* singleFileMutations(): Generator<[string, Buffer]> {
    const rand = rng(0x5eed);
    const int = (n: number) => Math.floor(rand() * n);
    // every truncation
    for (let n = 0; n < base.length; n++) yield [`truncate to ${n}`, base.subarray(0, n)];
    // every single-bit flip in the length prefix and the header, and a sample in the data
    for (let i = 0; i < headerEnd; i++) {
      for (let b = 0; b < 8; b++) {
        const m = Buffer.from(base);
        m[i] ^= 1 << b;
        yield [`flip bit ${b} of byte ${i}`, m];
      }
    }
    for (let k = 0; k < 64; k++) {
      const m = Buffer.from(base);
      const i = headerEnd + int(base.length - headerEnd);
      m[i] ^= 1 << int(8);
      yield [`flip a data bit at ${i}`, m];
    }
    // random bytes written over the header: JSON punctuation, digits, escapes, and any byte
    const alphabet = Buffer.from('{}[]":,-+.0123456789eE \\u"dtypeshapedata_offsets__metadata__F32BF16I64null');
    for (let k = 0; k < 1200; k++) {
      const m = Buffer.from(base);
      const edits = 1 + int(4);
      for (let e = 0; e < edits; e++) {
        const at = 8 + int(headerEnd - 8);
        const len = 1 + int(4);
        for (let j = 0; j < len && at + j < headerEnd; j++) m[at + j] = rand() < 0.7 ? alphabet[int(alphabet.length)] : int(256);
      }
      yield [`random header bytes #${k}`, m];
    }
    // header length prefix set to values around the real one and extremes
    for (const n of [0n, 1n, BigInt(headerEnd - 9), BigInt(headerEnd - 7), BigInt(base.length - 8), BigInt(base.length - 7), 100000000n, 100000001n, 2n ** 63n, 2n ** 64n - 1n]) {
      const m = Buffer.from(base);
      m.writeBigUInt64LE(n, 0);
      yield [`header length ${n}`, m];
    }
    // a header cut or extended in the middle, with the length prefix kept consistent
    for (let k = 0; k < 300; k++) {
      const header = base.subarray(8, headerEnd);
      const at = int(header.length);
      const del = int(6);
      const ins = Buffer.from(Array.from({ length: int(6) }, () => alphabet[int(alphabet.length)]));
      const h = Buffer.concat([header.subarray(0, at), ins, header.subarray(Math.min(header.length, at + del))]);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(h.length));
      yield [`splice header at ${at} (-${del} +${ins.length}) #${k}`, Buffer.concat([len, h, base.subarray(headerEnd)])];
    }
  }

  test('single file: truncations, bit flips, random header bytes (seeded)', async () => {
    const file = path.join(tmp.dir, 'm.safetensors');
    const problems: string[] = [];
    const r = await exercise(singleFileMutations(), file, file, (label) => checkAccepted(file, label, problems));
    problems.push(...r.problems);
    expect(problems.slice(0, 20)).toEqual([]);
    // The run has to reach deep: many different rejections, and some accepted mutants.
    expect(r.total).toBeGreaterThan(3000);
    expect(r.accepted).toBeGreaterThan(50);
    expect(r.codes.size).toBeGreaterThanOrEqual(10);
  });

  test('sharded model: mutated index files (seeded)', async () => {
    const dir = path.join(tmp.dir, 'sharded');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 's1.safetensors'), safetensorsBytes([{ name: 'a', dtype: 'F32', shape: [2], data: encode('F32', [1, 2]) }]));
    fs.writeFileSync(path.join(dir, 's2.safetensors'), safetensorsBytes([{ name: 'b', dtype: 'F16', shape: [2], data: encode('F16', [1, 2]) }]));
    const indexFile = path.join(dir, 'model.safetensors.index.json');
    const index = Buffer.from(JSON.stringify({ metadata: { total_size: 12 }, weight_map: { a: 's1.safetensors', b: 's2.safetensors' } }));
    function* mutations(): Generator<[string, Buffer]> {
      const rand = rng(0x1dec5);
      const int = (n: number) => Math.floor(rand() * n);
      for (let n = 0; n < index.length; n++) yield [`index truncated to ${n}`, index.subarray(0, n)];
      for (let k = 0; k < 400; k++) {
        const m = Buffer.from(index);
        for (let e = 0; e <= int(3); e++) m[int(m.length)] = rand() < 0.5 ? m[int(m.length)] : int(256);
        yield [`index mutation #${k}`, m];
      }
    }
    const problems: string[] = [];
    const r = await exercise(mutations(), indexFile, dir, (label) => checkAccepted(dir, label, problems));
    problems.push(...r.problems);
    expect(problems.slice(0, 20)).toEqual([]);
    expect(r.total).toBeGreaterThan(400);
    expect([...r.codes.keys()]).toEqual(expect.arrayContaining(['ERR_INDEX_INVALID', 'ERR_MISSING_SHARD', 'ERR_INDEX_TENSOR_MISSING']));
    expect(r.accepted).toBeGreaterThan(0);
  });
});
