// Malformed ONNX input: every fixture in test/fixtures/onnx-malformed (written by
// test/fixtures/make-onnx-malformed.ts, expectations in its manifest.json) must be rejected with
// its exact error code, naming the right file and tensor, by inspectModel, scanModel and the CLI;
// the valid edge cases there must be accepted.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { inspectModel, MotherError, scanModel } from '../lib';
import { inputErrorCodes } from '../lib/core/binding';
import { ERROR_CODES } from '../lib/core/errors';
import { Case, writeFixtures } from './fixtures/make-onnx-malformed';
import { tmpDir } from './helpers/tmp';

const ROOT = path.resolve(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'onnx-malformed');
const CLI = path.join(ROOT, 'bin', 'mother.js');
const INPUT_ERROR_CODES = inputErrorCodes();

type ManifestCase = Omit<Case, 'files'> & { files: string[] };
const manifest: ManifestCase[] = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8'));
const malformed = manifest.filter((c) => c.expect);
const valid = manifest.filter((c) => c.valid);
const abs = (rel: string) => path.join(FIXTURES, rel);
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function listFiles(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) out.push(...listFiles(p, base));
    else out.push(path.relative(base, p));
  }
  return out.sort();
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection, but the call resolved');
}

function checkError(e: unknown, c: ManifestCase): void {
  const x = c.expect!;
  expect(e).toBeInstanceOf(MotherError);
  const err = e as MotherError;
  expect({ code: err.code, file: err.file, tensor: err.tensor ?? null }).toEqual({ code: x.code, file: abs(x.file), tensor: x.tensor });
  expect(err.message).toMatch(new RegExp(`^${escapeRe(abs(x.file))}: `));
  if (x.tensor !== null) expect(err.message).toContain(`tensor ${JSON.stringify(x.tensor)}`);
  for (const re of x.message) expect(err.message).toMatch(new RegExp(re));
  expect(INPUT_ERROR_CODES.has(err.code)).toBe(true);
}

describe('ONNX malformed fixture set', () => {
  test('is what make-onnx-malformed.ts writes (regenerate: npm run build:ts && node dist/test/fixtures/make-onnx-malformed.js)', () => {
    const { dir, cleanup } = tmpDir('mother-onnx-gen-');
    try {
      writeFixtures(dir);
      const want = listFiles(dir);
      expect(listFiles(FIXTURES)).toEqual(want);
      for (const f of want) expect({ f, same: fs.readFileSync(path.join(FIXTURES, f)).equals(fs.readFileSync(path.join(dir, f))) }).toEqual({ f, same: true });
    } finally {
      cleanup();
    }
  });

  test('covers every ERR_PROTOBUF_* and ERR_ONNX_* code but the decode cap (tested in onnx.test.ts: its file is 32 MiB)', () => {
    const codes = new Set(malformed.map((c) => c.expect!.code));
    const want = ERROR_CODES.filter((c) => /^ERR_(PROTOBUF|ONNX)_/.test(c) && c !== 'ERR_ONNX_DECODE_LIMIT');
    for (const code of [...want, 'ERR_SHAPE_OVERFLOW']) expect({ code, covered: codes.has(code) }).toEqual({ code, covered: true });
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
  test('inspectModel and scanModel accept it: names, dtypes, shapes, files, metadata', async () => {
    const v = c.valid!;
    const h = await inspectModel(abs(c.input));
    expect(h.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, file: t.file }))).toEqual(
      v.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, file: abs(t.file ?? c.input) })),
    );
    for (const t of h.tensors) {
      const f = h.files.find((x) => x.path === t.file)!;
      if (!t.decoded) expect(t.offset + t.bytes).toBeLessThanOrEqual(f.size);
    }
    if (v.metadata) expect(h.files[0].metadata).toMatchObject(v.metadata);
    const s = await scanModel(abs(c.input), { threads: 2 });
    expect(s.tensors.map((t) => t.name)).toEqual(v.tensors.map((t) => t.name));
  });
});

// ---- the CLI ----

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

describe('mother stats on the ONNX fixtures (the compiled CLI)', () => {
  const runs = new Map<string, { status: number | null; stdout: string; stderr: string }>();
  beforeAll(async () => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'lib', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build:ts`');
    // one at a time: test/malformed.test.ts may be running its own CLI batch in the other worker
    for (const c of [...malformed, ...valid]) runs.set(c.name, await runCli(['stats', abs(c.input), ...(c.valid ? ['--json'] : [])]));
  }, 300000);

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
