// The CLI against a hostile world (issue 15.2, 15.4): --out never overwrites an input and is
// checked before the run, written atomically; every misuse has its exit code and one line, no
// stack trace; a closed or full stdout. The real CLI as a child process (dist/).
import { spawnSync, SpawnSyncOptions } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Rng } from './helpers/reference';
import { encode, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const BIN = path.resolve(__dirname, '..', 'bin', 'mother.js');
const run = (args: string[], opts: SpawnSyncOptions = {}) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', ...opts }) as ReturnType<typeof spawnSync> & { stdout: string; stderr: string };
const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at /);

let tmp: ReturnType<typeof tmpDir>;
let fam: string;
let models: string[];

function model(dir: string, seed: number, base: number[]): void {
  const rng = new Rng(seed);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'] }));
  writeSafetensors(path.join(dir, 'model.safetensors'), [
    { name: 'model.layers.0.self_attn.o_proj.weight', dtype: 'F32', shape: [32, 32], data: encode('F32', base.map((x) => x + 0.002 * seed * rng.normal())) },
  ]);
}

beforeAll(() => {
  tmp = tmpDir();
  fs.chmodSync(tmp.dir, 0o755); // readable by the unprivileged user of the EACCES test
  const rng = new Rng(5);
  const base = Array.from({ length: 32 * 32 }, () => 0.02 * rng.normal());
  fam = path.join(tmp.dir, 'fam');
  models = [0, 1, 2].map((m) => {
    const dir = path.join(fam, `m${m}`);
    model(dir, m + 1, base);
    return dir;
  });
});
afterAll(() => tmp.cleanup());

describe('--out: no data loss', () => {
  const refused = (args: string[], out: string, why: RegExp, guarded: string[]) => {
    const before = guarded.map(sha);
    const r = run(['recover', ...args, '--out', out, '-q']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(why);
    noStack(r.stderr);
    expect(guarded.map(sha)).toEqual(before); // byte-identical afterwards
    return r;
  };

  test('an input weight file, directly, through a symlink and through a hard link', () => {
    const w = path.join(models[0], 'model.safetensors');
    refused([fam], w, /is the input weights .*refusing to overwrite an input/, [w]);
    const link = path.join(tmp.dir, 'link.safetensors');
    fs.symlinkSync(w, link);
    refused([fam], link, /is the input weights/, [w]);
    const hard = path.join(tmp.dir, 'hard.safetensors');
    fs.linkSync(w, hard);
    refused([fam], hard, /is the input weights/, [w]);
    refused([fam], path.join(models[1], 'config.json'), /is the input config/, [path.join(models[1], 'config.json')]);
  });

  test('a shard index and a shard it names', () => {
    const dir = path.join(tmp.dir, 'sharded', 'big');
    fs.mkdirSync(dir, { recursive: true });
    const rng = new Rng(9);
    const t = (name: string) => ({ name, dtype: 'F32' as const, shape: [16, 16], data: encode('F32', Array.from({ length: 256 }, () => rng.normal())) });
    writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), [t('a.weight')]);
    writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), [t('b.weight')]);
    const index = path.join(dir, 'model.safetensors.index.json');
    fs.writeFileSync(index, JSON.stringify({ metadata: {}, weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors' } }));
    const shard = path.join(dir, 'model-00002-of-00002.safetensors');
    refused([dir, models[0]], index, /is the input shard index/, [index, shard]);
    refused([dir, models[0]], shard, /is an input shard/, [index, shard]);
  });

  test('the --truth file, even when the run would fail', () => {
    const truth = path.join(tmp.dir, 'truth.json');
    fs.writeFileSync(truth, JSON.stringify({ edges: [['m0', 'm1']] }));
    refused([fam, '--truth', truth], truth, /is the --truth file/, [truth]);
  });

  test('a Hugging Face cache blob (shared by snapshots) is never a target', () => {
    const repo = path.join(tmp.dir, 'hub', 'models--org--name');
    const blob = path.join(repo, 'blobs', 'deadbeef');
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    fs.writeFileSync(blob, '{"not": "an input"}');
    const snap = path.join(repo, 'snapshots', 'a'.repeat(40));
    fs.mkdirSync(snap, { recursive: true });
    fs.symlinkSync(path.relative(snap, blob), path.join(snap, 'README.md'));
    refused([fam], path.join(snap, 'README.md'), /inside a Hugging Face cache/, [blob]);
    refused([fam], blob, /inside a Hugging Face cache/, [blob]);
  });

  test('a missing folder, a file as folder, a folder, a device: refused before anything is read', () => {
    // the model is broken (exit 3 when read): exit 2 shows --out is checked first
    const broken = path.join(tmp.dir, 'broken');
    fs.mkdirSync(broken, { recursive: true });
    fs.writeFileSync(path.join(broken, 'model.safetensors'), 'not a safetensors file');
    expect(run(['recover', broken, models[0], '-q']).status).toBe(3);
    refused([broken, models[0]], path.join(tmp.dir, 'no-such-folder', 'g.json'), /the folder .*no-such-folder does not exist/, []);
    refused([broken, models[0]], path.join(models[0], 'config.json', 'g.json'), /is not a folder/, []);
    refused([broken, models[0]], tmp.dir, /is a folder: give a file name/, []);
    refused([broken, models[0]], '/dev/full', /is not a regular file/, []); // ENOSPC can never happen there
    refused([broken, models[0]], '/dev/null', /is not a regular file/, []);
  });

  test('an unwritable folder (as an unprivileged user: root writes anywhere)', () => {
    const locked = path.join(tmp.dir, 'locked');
    fs.mkdirSync(locked);
    fs.chmodSync(locked, 0o555);
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const r = run(['recover', fam, '--out', path.join(locked, 'g.json'), '-q'], asUser);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/the folder .*locked is not writable/);
    expect(fs.readdirSync(locked)).toEqual([]);
  });

  test('written atomically after a successful run: no temporary file left, a failed run leaves the old file', () => {
    const out = path.join(tmp.dir, 'out', 'graph.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, 'old contents');
    fs.chmodSync(out, 0o640);
    const broken = path.join(tmp.dir, 'broken2');
    fs.mkdirSync(broken, { recursive: true });
    fs.writeFileSync(path.join(broken, 'model.safetensors'), 'garbage');
    const bad = run(['recover', broken, models[0], '--json', '--out', out, '-q']);
    expect(bad.status).toBe(3);
    expect(fs.readFileSync(out, 'utf8')).toBe('old contents');
    const ok = run(['recover', fam, '--json', '--out', out, '-q']);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toBe('');
    expect(JSON.parse(fs.readFileSync(out, 'utf8')).version).toBe(4);
    expect(fs.statSync(out).mode & 0o777).toBe(0o640); // the file's mode is kept
    expect(fs.readdirSync(path.dirname(out))).toEqual(['graph.json']);
    // a symlink to a file that is no input: the file it points at is replaced, the link stays
    const link = path.join(tmp.dir, 'out', 'latest.json');
    fs.symlinkSync(out, link);
    expect(run(['recover', fam, '--format', 'newick', '--out', link, '-q']).status).toBe(0);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(out, 'utf8')).toMatch(/;\n$/);
  });
});

describe('--out: a write that fails after the run', () => {
  test('is ERR_OUTPUT naming the target; the old file stays, no temporary file is left', async () => {
    const { checkOutTarget, writeAtomic } = await import('../lib/cli/outfile');
    const dir = path.join(tmp.dir, 'vanishing');
    fs.mkdirSync(dir);
    const target = await checkOutTarget(path.join(dir, 'g.json'));
    fs.rmSync(dir, { recursive: true }); // the folder goes away during the run
    await expect(writeAtomic(target, 'x')).rejects.toMatchObject({ name: 'MotherError', code: 'ERR_OUTPUT', message: expect.stringMatching(/^--out .*g\.json: cannot write: ENOENT/) });
    const keep = path.join(tmp.dir, 'keep');
    fs.mkdirSync(keep);
    fs.writeFileSync(path.join(keep, 'g.json'), 'old');
    const t2 = await checkOutTarget(path.join(keep, 'g.json'));
    await expect(writeAtomic({ ...t2, real: path.join(keep, 'g.json', 'not-a-folder') }, 'new')).rejects.toMatchObject({ code: 'ERR_OUTPUT' });
    expect(fs.readFileSync(path.join(keep, 'g.json'), 'utf8')).toBe('old');
    expect(fs.readdirSync(keep)).toEqual(['g.json']);
  });
});

describe('misuse: an exit code and one line each, never a stack trace', () => {
  test('conflicting and out-of-range options are usage errors (2)', () => {
    const conflict = run(['recover', fam, '--json', '--format', 'dot']);
    expect(conflict.status).toBe(2);
    expect(conflict.stderr).toMatch(/--json and --format dot conflict/);
    expect(conflict.stdout).toBe('');
    expect(run(['recover', fam, '--json', '--format', 'json', '-q']).status).toBe(0);
    for (const cmd of [['recover', fam], ['stats', models[0]], ['distances', models[0], models[1]], ['related', models[0], models[1]]]) {
      const r = run([...cmd, '--threads', '0']);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/expected an integer from 1 to 4096/);
    }
  });

  test('singular and plural: "1 family", "3 models"', () => {
    const r = run(['recover', fam, '-q']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/3 models, 1 family, /);
    const one = run(['recover', models[0], '-q']);
    expect(one.stdout).toMatch(/1 model, 1 family, /);
  });

  test('an unreadable folder is input error 3 naming it (EACCES: run as an unprivileged user when root)', () => {
    const zoo = path.join(tmp.dir, 'zoo-eacces');
    model(path.join(zoo, 'ok'), 1, Array.from({ length: 1024 }, (_, i) => Math.sin(i)));
    const secret = path.join(zoo, 'secret');
    model(path.join(secret, 'hidden'), 2, Array.from({ length: 1024 }, (_, i) => Math.cos(i)));
    fs.chmodSync(secret, 0o000);
    try {
      // root reads a mode-000 folder anyway: then the test runs the CLI as nobody (uid 65534)
      const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
      const r = run(['recover', zoo, '-q'], asUser);
      expect(r.status).toBe(3);
      expect(r.stderr).toMatch(/secret.*: cannot .*: permission denied/);
      noStack(r.stderr);
      const s = run(['stats', secret], asUser);
      expect(s.status).toBe(3);
      expect(s.stderr).toMatch(/secret.*permission denied/);
      noStack(s.stderr);
    } finally {
      fs.chmodSync(secret, 0o755);
    }
  });

  test('EPIPE: a reader that stops early (| head -1) ends the output quietly', () => {
    const big = path.join(tmp.dir, 'many-tensors');
    fs.mkdirSync(big);
    const rng = new Rng(3);
    writeSafetensors(path.join(big, 'model.safetensors'), Array.from({ length: 3000 }, (_, i) => ({ name: `layer.${i}.weight`, dtype: 'F32' as const, shape: [4], data: encode('F32', [rng.normal(), 1, 2, 3]) })));
    const r = spawnSync('/bin/sh', ['-c', `"${process.execPath}" "${BIN}" stats "${big}" | head -1; exit "$(echo $?)"`], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/^tensor\s+dtype/);
    expect(r.stderr).toBe('');
    const code = spawnSync('/bin/bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" stats "${big}" | head -1 >/dev/null`], { encoding: 'utf8' });
    expect(code.stderr).toBe('');
    expect(code.status).toBe(0);
  });

  test('a full stdout (/dev/full) is one line and exit code 1 (ERR_OUTPUT)', () => {
    const fd = fs.openSync('/dev/full', 'w');
    try {
      const r = run(['recover', fam, '-q'], { stdio: ['ignore', fd, 'pipe'] });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^mother: cannot write the output to stdout: ENOSPC/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('no hang on FIFOs (the TypeScript side: discovery, config.json, --truth, cache refs)', () => {
  test('a FIFO is never read: each case ends, with an error or without the FIFO', () => {
    const mkfifo = (p: string) => spawnSync('mkfifo', [p]).status === 0;
    const dir = path.join(tmp.dir, 'fifo-model');
    fs.mkdirSync(dir, { recursive: true });
    if (!mkfifo(path.join(dir, 'model.safetensors'))) return; // no mkfifo here: nothing to test
    const t = { timeout: 20_000 };
    const weights = run(['recover', dir, models[0], '-q'], t);
    expect(weights.error).toBeUndefined(); // not killed by the timeout
    expect(weights.status).toBe(3);
    expect(weights.stderr).toMatch(/fifo-model: no models found/);
    const cfgDir = path.join(tmp.dir, 'fifo-config');
    fs.cpSync(models[0], cfgDir, { recursive: true });
    fs.rmSync(path.join(cfgDir, 'config.json'));
    mkfifo(path.join(cfgDir, 'config.json'));
    const cfg = run(['recover', cfgDir, models[1], '-q'], t);
    expect(cfg.error).toBeUndefined();
    expect(cfg.status).toBe(3);
    expect(cfg.stderr).toMatch(/config\.json: not a regular file/);
    const truth = path.join(tmp.dir, 'truth.fifo');
    mkfifo(truth);
    const tr = run(['recover', fam, '--truth', truth, '-q'], t);
    expect(tr.error).toBeUndefined();
    expect(tr.status).toBe(3);
    expect(tr.stderr).toMatch(/not a regular file/);
  });
});

describe('progress', () => {
  test('-v names each stage of recover', () => {
    const r = run(['recover', fam, '-v']);
    expect(r.status).toBe(0);
    const stages = ['finding models...', 'testing relatedness, building the trees...', /^measuring the spectral clock of \d+ models\.\.\.$/, 'writing the output...'];
    const lines = r.stderr.split('\n');
    const at = stages.map((s) => (typeof s === 'string' ? lines.indexOf(s) : lines.findIndex((l) => s.test(l))));
    for (const i of at) expect(i).toBeGreaterThanOrEqual(0);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  });
});

describe('warnings', () => {
  test('a rank sketch that saturates at k says so (the rank is k or more)', () => {
    const rng = new Rng(12);
    const pair = [0, 1].map((m) => {
      const f = path.join(tmp.dir, `full-rank-${m}.safetensors`);
      writeSafetensors(f, [{ name: 'w', dtype: 'F32', shape: [80, 80], data: encode('F32', Array.from({ length: 6400 }, () => rng.normal())) }]);
      return f;
    });
    const r = run(['distances', ...pair, '--metric', 'rank', '-q']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/warning: the rank sketch saturates at k = 64 in 1 layer \(w\)/);
    const big = run(['distances', ...pair, '--metric', 'rank', '--rank-k', '128', '-q']);
    expect(big.status).toBe(0);
    expect(big.stderr).not.toMatch(/saturates/);
    expect(big.stdout).toMatch(/\b80\b/);
  });
});
