// Malformed and malicious PyTorch checkpoints: every fixture in test/fixtures/pytorch-malformed
// (written by make-pytorch-malformed.js, expectations in its manifest.json) must be rejected
// with its exact error code, naming the file (and tensor), by inspectModel, scanModel and the
// CLI; the valid edge cases there must be accepted with the right values. The unsafe pickles
// would run `touch mother-pwned-marker` if unpickled by Python (shown below in a temporary
// folder): mother refuses them with ERR_UNSAFE_PICKLE naming the global, and the marker never
// appears. Then a seeded mutation run of the ZIP and legacy layouts: nothing may crash or hang.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { inspectModel, MotherError, scanModel } from '../lib';
import { inputErrorCodes } from '../lib/core/binding';
import { rng } from './helpers/reference';
import { tmpDir } from './helpers/tmp';

const ROOT = path.resolve(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'pytorch-malformed');
const GENERATOR = path.join(__dirname, 'fixtures', 'make-pytorch-malformed.js');
const CLI = path.join(ROOT, 'bin', 'mother.js');
const MARKER = 'mother-pwned-marker';
const INPUT_ERROR_CODES = inputErrorCodes();

interface Case {
  name: string;
  problem: string;
  input: string;
  unsafe?: boolean;
  expect?: { code: string; file: string; tensor: string | null; message: string[] };
  valid?: { tensors: { name: string; dtype: string; shape: number[]; mean?: number; min?: number; max?: number }[] };
}

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
  expect({ name: c.name, code: err.code, file: err.file, tensor: err.tensor ?? null }).toEqual({ name: c.name, code: x.code, file: abs(x.file), tensor: x.tensor });
  expect(err.message).toMatch(new RegExp(`^${escapeRe(abs(x.file))}: `));
  if (x.tensor !== null) expect(err.message).toContain(`tensor ${JSON.stringify(x.tensor)}`);
  for (const re of x.message) expect({ name: c.name, message: err.message }).toEqual({ name: c.name, message: expect.stringMatching(new RegExp(re)) });
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

/** No marker file anywhere a command run by a pickle could have written it. */
function expectNoMarker(...dirs: string[]): void {
  for (const d of [ROOT, FIXTURES, process.cwd(), ...dirs]) expect({ dir: d, marker: fs.existsSync(path.join(d, MARKER)) }).toEqual({ dir: d, marker: false });
}

describe('PyTorch malformed fixture set', () => {
  test('is what make-pytorch-malformed.js writes (regenerate with: node test/fixtures/make-pytorch-malformed.js)', () => {
    const { dir, cleanup } = tmpDir('mother-pt-malformed-gen-');
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

  test('covers every code of the ZIP reader, the unpickler and the PyTorch layouts, and the valid edge cases', () => {
    const codes = new Set(malformed.map((c) => c.expect!.code));
    for (const code of [
      'ERR_ZIP_INVALID', 'ERR_ZIP_UNSUPPORTED', 'ERR_PICKLE_INVALID', 'ERR_PICKLE_LIMIT', 'ERR_UNSAFE_PICKLE', 'ERR_TORCH_FORMAT',
      'ERR_TORCH_UNSUPPORTED', 'ERR_TORCH_STORAGE', 'ERR_SHAPE_OVERFLOW', 'ERR_DUPLICATE_TENSOR', 'ERR_TRUNCATED', 'ERR_TRAILING_BYTES',
    ]) {
      expect({ code, covered: codes.has(code) }).toEqual({ code, covered: true });
    }
    expect(manifest.filter((c) => c.unsafe).length).toBeGreaterThanOrEqual(15);
    expect(valid.map((c) => c.name)).toEqual(expect.arrayContaining(['valid-zip', 'valid-zip64', 'valid-legacy', 'valid-legacy-view', 'valid-rebuild-v3', 'valid-protocol-4']));
  });
});

describe.each(malformed.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  test(`inspectModel rejects with ${c.expect!.code}`, async () => {
    checkError(await rejection(inspectModel(abs(c.input))), c);
    if (c.unsafe) expectNoMarker();
  });
  test(`scanModel rejects with ${c.expect!.code}`, async () => {
    checkError(await rejection(scanModel(abs(c.input), { threads: 1 })), c);
    if (c.unsafe) expectNoMarker();
  });
});

describe.each(valid.map((c) => [c.name, c] as const))('%s', (_name, c) => {
  test('inspectModel and scanModel accept it, with the values it holds', async () => {
    const h = await inspectModel(abs(c.input));
    const want = c.valid!.tensors;
    expect(h.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })).sort((a, b) => (a.name < b.name ? -1 : 1))).toEqual(
      want.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })).sort((a, b) => (a.name < b.name ? -1 : 1)),
    );
    const s = await scanModel(abs(c.input), { threads: 2 });
    for (const t of want) {
      const got = s.tensors.find((x) => x.name === t.name)!;
      expect({ name: t.name, mean: got.mean, min: got.min, max: got.max, nan: got.nan }).toEqual({ name: t.name, mean: t.mean, min: t.min, max: t.max, nan: 0 });
    }
  });
});

// ---- the malicious pickles are real ---------------------------------------------------------

describe('the unsafe fixtures would run their command under Python\'s pickle', () => {
  const python = spawnSync('/usr/bin/python3', ['-c', 'pass']).status === 0;
  // Those whose command runs before any torch global or persistent id is reached.
  const proven = [
    'unsafe-os-system', 'unsafe-posix-system', 'unsafe-builtins-eval', 'unsafe-builtins-exec', 'unsafe-python2-builtin', 'unsafe-subprocess',
    'unsafe-stack-global-memo', 'unsafe-inst', 'unsafe-protocol-5', 'unsafe-legacy-sys-info',
  ];
  (python ? test.each(proven) : test.skip.each(proven))('%s: pickle.load runs `touch mother-pwned-marker` (in a temporary folder)', (name) => {
    const c = manifest.find((x) => x.name === name)!;
    const { dir, cleanup } = tmpDir('mother-pwn-proof-');
    try {
      // The ZIP layout: unpickle data.pkl; the legacy layout: the pickles one after the other.
      const script = [
        'import pickle, sys, zipfile',
        'p = sys.argv[1]',
        'try:',
        '    z = zipfile.ZipFile(p)',
        "    pickle.loads(z.read([n for n in z.namelist() if n.endswith('data.pkl')][0]))",
        'except zipfile.BadZipFile:',
        "    f = open(p, 'rb')",
        '    for _ in range(4): pickle.load(f)',
      ].join('\n');
      spawnSync('/usr/bin/python3', ['-c', script, abs(c.input)], { cwd: dir, encoding: 'utf8' });
      expect(fs.existsSync(path.join(dir, MARKER))).toBe(true);
    } finally {
      cleanup();
    }
  });
});

// ---- the CLI ------------------------------------------------------------------------------

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, FORCE_COLOR: '0' } });
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

describe('mother stats on PyTorch checkpoints (the compiled CLI)', () => {
  const runs = new Map<string, Run>();
  let cwd: { dir: string; cleanup: () => void };

  beforeAll(async () => {
    cwd = tmpDir('mother-pt-cli-');
    const all = [...malformed, ...valid];
    let next = 0;
    const worker = async () => {
      while (next < all.length) {
        const c = all[next++];
        runs.set(c.name, await runCli(['stats', abs(c.input), ...(c.valid ? ['--json'] : [])], cwd.dir));
      }
    };
    await Promise.all([worker(), worker()]);
  }, 240000);
  afterAll(() => cwd.cleanup());

  test.each(malformed.map((c) => [c.name, c] as const))('%s: exit 3, the file and the problem on stderr', (name, c) => {
    const r = runs.get(name)!;
    const x = c.expect!;
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 3, signal: null });
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^mother: ${escapeRe(abs(x.file))}: `));
    for (const re of x.message) expect(r.stderr).toMatch(new RegExp(re));
    expect(r.stderr).not.toContain('    at ');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    if (c.unsafe) expectNoMarker(cwd.dir);
  });

  test.each(valid.map((c) => [c.name, c] as const))('%s: exit 0 and the tensors as JSON', (name, c) => {
    const r = runs.get(name)!;
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(JSON.parse(r.stdout).tensors.map((t: { name: string }) => t.name).sort()).toEqual(c.valid!.tensors.map((t) => t.name).sort());
  });
});

// ---- mutation run: nothing may crash or hang --------------------------------------------

describe('mutated PyTorch checkpoints never crash or hang the reader', () => {
  const HANG_MS = 10000;
  let tmp: { dir: string; cleanup: () => void };
  beforeAll(() => {
    tmp = tmpDir('mother-pt-mutate-');
  });
  afterAll(() => tmp.cleanup());

  test.each(['valid-zip.pt', 'valid-zip64.pt', 'valid-legacy.pt', 'valid-protocol-4.pt', 'valid-from-type.pt'])(
    '%s: 400 seeded mutations (bytes flipped, runs zeroed, cut short): every one accepted or rejected with an input error code',
    async (seedFile) => {
      const base = fs.readFileSync(abs(seedFile));
      const next = rng(0x5eed ^ base.length);
      const file = path.join(tmp.dir, seedFile);
      const problems: string[] = [];
      const codes = new Map<string, number>();
      for (let i = 0; i < 400; i++) {
        const b = Buffer.from(base);
        const kind = i % 4;
        const at = Math.floor(next() * b.length);
        if (kind === 0) b[at] ^= 1 << Math.floor(next() * 8);
        else if (kind === 1) b[at] = Math.floor(next() * 256);
        else if (kind === 2) b.fill(next() < 0.5 ? 0 : 0xff, at, Math.min(b.length, at + 1 + Math.floor(next() * 8)));
        const bytes = kind === 3 ? b.subarray(0, at) : b;
        fs.writeFileSync(file, bytes);
        let timer: NodeJS.Timeout | undefined;
        const hang = new Promise<'hang'>((resolve) => {
          timer = setTimeout(() => resolve('hang'), HANG_MS);
        });
        try {
          const r = await Promise.race([scanModel(file, { threads: 1 }).then(() => 'ok' as const), hang]);
          if (r === 'hang') problems.push(`mutation ${i}: no answer after ${HANG_MS} ms`);
          else codes.set('accepted', (codes.get('accepted') ?? 0) + 1);
        } catch (e) {
          if (!(e instanceof MotherError) || !INPUT_ERROR_CODES.has(e.code) || !e.message.startsWith(file)) {
            problems.push(`mutation ${i}: ${(e as Error).message}`);
          } else {
            codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
          }
        } finally {
          clearTimeout(timer);
        }
      }
      expect(problems).toEqual([]);
      expect(codes.size).toBeGreaterThan(1);
    },
    120000,
  );
});
