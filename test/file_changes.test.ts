// Issue 15.1 / 15.3 / 15.4: the world around the files. A weight file that shrinks, grows or
// is rewritten while it is read fails the call with ERR_FILE_CHANGED naming the file (no
// SIGBUS: the host survives and the next call works); only regular files are opened (a FIFO
// never blocks); a progress callback that throws fails the call with what it threw.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { pairwiseStats, recover, related, scanModel } from '../lib';
import { native } from '../lib/core/binding';
import { Rng } from './helpers/reference';
import { encode, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const BIN = path.resolve(__dirname, '..', 'bin', 'mother.js');
const SAMPLE = path.resolve(__dirname, '..', 'samples', 'zoo-small', 'llm', 'm03');
let tmp: ReturnType<typeof tmpDir>;

/** A safetensors file of one F32 tensor "w" of `elems` zeros, sparse (no disk blocks). */
function sparseModel(file: string, elems: number): number {
  let json = JSON.stringify({ w: { dtype: 'F32', shape: [elems], data_offsets: [0, 4 * elems] } });
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(json)]));
  const size = 8 + json.length + 4 * elems;
  fs.truncateSync(file, size);
  return size;
}

beforeAll(() => {
  tmp = tmpDir();
});
afterAll(() => tmp.cleanup());

// 256 MiB, one thread, the scalar path, 64 KiB jobs: the pass runs long after the first
// progress report reaches JS.
const SLOW = { threads: 1, simd: 'scalar', chunkBytes: 1 << 16, backend: 'cpu' as const };
const ELEMS = 64 * 2 ** 20;

describe('a file that changes while it is read', () => {
  test('truncated during scanModel: ERR_FILE_CHANGED naming file and tensor, and the next call works', async () => {
    const file = path.join(tmp.dir, 'shrinks.safetensors');
    sparseModel(file, ELEMS);
    let truncated = false;
    const err = await scanModel(file, {
      ...SLOW,
      onProgress: () => {
        if (!truncated) fs.truncateSync(file, 4096);
        truncated = true;
      },
    }).catch((e) => e);
    expect(truncated).toBe(true);
    expect(err.code).toBe('ERR_FILE_CHANGED');
    expect(err.file).toBe(file);
    expect(err.tensor).toBe('w');
    expect(err.message).toContain(file);
    // still alive, and reading works
    const s = await scanModel(SAMPLE);
    expect(s.tensors.length).toBeGreaterThan(0);
  });

  test('grown during scanModel: ERR_FILE_CHANGED (size checked at the end of the pass)', async () => {
    const file = path.join(tmp.dir, 'grows.safetensors');
    sparseModel(file, ELEMS);
    let grown = false;
    const err = await scanModel(file, {
      ...SLOW,
      onProgress: () => {
        if (!grown) fs.appendFileSync(file, Buffer.alloc(16));
        grown = true;
      },
    }).catch((e) => e);
    expect(grown).toBe(true);
    expect(err.code).toBe('ERR_FILE_CHANGED');
    expect(err.file).toBe(file);
    expect(err.message).toMatch(/size changed/);
  });

  test('rewritten in place during scanModel (same size, new mtime): ERR_FILE_CHANGED', async () => {
    const file = path.join(tmp.dir, 'rewritten.safetensors');
    sparseModel(file, ELEMS);
    let touched = false;
    const err = await scanModel(file, {
      ...SLOW,
      onProgress: () => {
        if (!touched) {
          const fd = fs.openSync(file, 'r+');
          fs.writeSync(fd, Buffer.alloc(4, 1), 0, 4, fs.statSync(file).size - 4);
          fs.closeSync(fd);
          const t = new Date(Date.now() + 5000);
          fs.utimesSync(file, t, t);  // coarse-clock file systems: make the change visible
        }
        touched = true;
      },
    }).catch((e) => e);
    expect(touched).toBe(true);
    expect(err.code).toBe('ERR_FILE_CHANGED');
    expect(err.message).toMatch(/rewritten/);
  });

  test('truncated during pairwiseStats: ERR_FILE_CHANGED, and the next call works', async () => {
    const a = path.join(tmp.dir, 'pa.safetensors'), b = path.join(tmp.dir, 'pb.safetensors');
    sparseModel(a, ELEMS);
    sparseModel(b, ELEMS);
    let truncated = false;
    const err = await pairwiseStats([a, b], {
      threads: 1, backend: 'cpu', jobElems: 1 << 14,
      onProgress: () => {
        if (!truncated) fs.truncateSync(b, 4096);
        truncated = true;
      },
    }).catch((e) => e);
    expect(truncated).toBe(true);
    expect(err.code).toBe('ERR_FILE_CHANGED');
    expect(err.file).toBe(b);
    const again = await pairwiseStats([SAMPLE, path.join(SAMPLE, '..', 'm00')]);
    expect(again.layers.length).toBeGreaterThan(0);
  });

  test('CLI: a file truncated while `mother stats` reads it: exit 3, the message names the file, no signal', () => {
    const file = path.join(tmp.dir, 'cli.safetensors');
    sparseModel(file, 4 * ELEMS);
    // Truncate as soon as the file is mapped (seen in /proc/self/maps), from the CLI's own
    // process: the event loop is free while native threads read.
    const script = `
      const fs = require('fs');
      const file = ${JSON.stringify(file)};
      const poll = setInterval(() => {
        if (fs.readFileSync('/proc/self/maps', 'utf8').includes(file)) { fs.truncateSync(file, 4096); clearInterval(poll); }
      }, 1);
      process.argv = [process.argv[0], ${JSON.stringify(BIN)}, 'stats', file, '--threads', '1', '--simd', 'scalar'];
      require(${JSON.stringify(BIN)});
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(/ERR_FILE_CHANGED|changed while it was read|shrank/);
  });
});

describe('the SIGBUS guard chains to the handlers that were there before', () => {
  const LIB = JSON.stringify(path.resolve(__dirname, '..', 'dist', 'lib', 'index.js'));
  const SAMPLE_JS = JSON.stringify(SAMPLE);
  test('a SIGBUS outside mother\'s mappings still gets the default action', () => {
    const r = spawnSync(process.execPath, ['-e', `require(${LIB}).scanModel(${SAMPLE_JS}).then(() => process.kill(process.pid, 'SIGBUS'))`], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal).toBe('SIGBUS');
  });
  test('a handler installed before the guard (a JS SIGBUS listener) still runs', () => {
    const script = `process.on('SIGBUS', () => { console.log('listener ran'); process.exit(7); });
      require(${LIB}).scanModel(${SAMPLE_JS}).then(() => { process.kill(process.pid, 'SIGBUS'); setTimeout(() => process.exit(1), 5000); })`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout).toContain('listener ran');
    expect(r.status).toBe(7);
  });
});

describe('only regular files are opened', () => {
  test('a FIFO named model.safetensors is refused at once (API, native reader, CLI)', async () => {
    const dir = path.join(tmp.dir, 'fifo');
    fs.mkdirSync(dir);
    const fifo = path.join(dir, 'model.safetensors');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const t0 = Date.now();
    const api = await scanModel(fifo).catch((e) => e);
    expect(api.code).toMatch(/^ERR_NOT_A_(FILE|MODEL)$/);
    // the native reader itself, past the TypeScript discovery: refused before open
    const raw = await native().scan([fifo], '', {}).catch((e: unknown) => e);
    expect((raw as { code: string }).code).toBe('ERR_NOT_A_FILE');
    expect((raw as Error).message).toContain('FIFO');
    const cli = spawnSync(process.execPath, [BIN, 'stats', fifo], { encoding: 'utf8', timeout: 20_000 });
    expect(cli.signal).toBeNull();
    expect(cli.status).toBe(3);
    expect(cli.stderr).toContain(fifo);
    expect(Date.now() - t0).toBeLessThan(20_000);  // not a timing assertion: a hang would be killed at 20 s
  });

  test('a FIFO as a shard index is refused by the native reader', async () => {
    const dir = path.join(tmp.dir, 'fifo-index');
    fs.mkdirSync(dir);
    const idx = path.join(dir, 'model.safetensors.index.json');
    expect(spawnSync('mkfifo', [idx]).status).toBe(0);
    const raw = await native().scan([], idx, {}).catch((e: unknown) => e);
    expect((raw as { code: string }).code).toBe('ERR_NOT_A_FILE');
  });
});

describe('a progress callback that throws fails the call with that error', () => {
  let a: string, b: string;
  beforeAll(() => {
    const rng = new Rng(5);
    const base = Array.from({ length: 64 * 64 }, () => rng.normal());
    [a, b] = ['x', 'y'].map((n, i) => {
      const d = path.join(tmp.dir, 'prog', n);
      fs.mkdirSync(d, { recursive: true });
      writeSafetensors(path.join(d, 'model.safetensors'), [
        { name: 'l.weight', dtype: 'F32', shape: [64, 64], data: encode('F32', base.map((v) => v + 0.1 * i * rng.normal())) },
      ]);
      return d;
    });
  });
  const boom = () => { throw new RangeError('boom from onProgress'); };

  test('scanModel', async () => {
    await expect(scanModel(a, { onProgress: boom })).rejects.toThrow('boom from onProgress');
    // the long pass is cancelled, not finished: the rejection is the callback's error
    const file = path.join(tmp.dir, 'long.safetensors');
    sparseModel(file, ELEMS);
    const e = await scanModel(file, { ...SLOW, onProgress: boom }).catch((x) => x);
    expect(e).toBeInstanceOf(RangeError);
    expect((await scanModel(a)).tensors.length).toBe(1);
  });

  test('pairwiseStats', async () => {
    const e = await pairwiseStats([a, b], { onProgress: boom }).catch((x) => x);
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('boom from onProgress');
  });

  test('recover', async () => {
    const e = await recover([a, b], { onProgress: boom }).catch((x) => x);
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('boom from onProgress');
  });

  test('related', async () => {
    const e = await related(a, b, { onProgress: boom }).catch((x) => x);
    expect(e).toBeInstanceOf(RangeError);
  });
});
