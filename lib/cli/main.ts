// The `mother` command line: stages 1 to 5 of the pipeline, evaluation and output. Exit codes
// (README, "Exit codes"): 0 success; 1 the answer is no (`mother related`: unrelated) or the run
// could not finish (a runtime error: no GPU backend, cancelled, the output cannot be written);
// 2 usage error (options, --out); 3 unreadable or invalid input (the message names the file and
// the reason); 4 `mother related`: undecided or not comparable; 70 internal error (a bug: the
// only case with a stack trace). Every name printed in text is escaped (output/escape.ts); a
// closed stdout (EPIPE, `| head -1`) ends the output quietly.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import * as path from 'node:path';

import { MotherError } from '../core/errors';
import { errorKinds, packageRoot } from '../core/binding';
import { scanModel } from '../io/model_stats';
import { AGGREGATE_OF, PAIR_METRICS, PairMetric, pairwiseStats, PairwiseStats } from '../io/pairwise';
import { defaultHfCache, discoverHfCache, discoverModels, DiscoverySkip, HUB_ID, ModelFiles, resolveHubId, resolveModel } from '../io/discovery';
import { escapeControl, safeJson } from '../output/escape';
import { checkOutTarget, modelInputFiles, ProtectedFile, refuseInputs, writeAtomic } from './outfile';
import { graphEvaluation, ModelGraph, RECOVER_METRICS, RecoverMetric, recover, related, RelatedResult, TruthInput } from '../recover';
import { linkText, renderTree } from '../output/tree';
import { GRAPH_FORMATS, GraphFormat, renderGraph } from '../output/render';
import { promises as fsp } from 'node:fs';
import * as fs from 'node:fs';
import { SIMD_NAMES, simdPaths } from '../core/simd';
import { BACKENDS, BackendName, BackendUsed } from '../core/backend';
import { KURTOSIS_MODES, KurtosisMode } from '../method/direction';
import { num, table } from '../output/format';
import { formatBytes, progressBar } from './progress';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INPUT = 3;
/** `mother related`: the models could not be decided either way (or not compared). */
export const EXIT_UNDECIDED = 4;
/** A bug (sysexits' EX_SOFTWARE). */
export const EXIT_INTERNAL = 70;

/** One line of a message: control characters in names shown escaped. */
const line = (s: string) => escapeControl(s) + '\n';

/** "1 family", "2 families". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "CPU (avx512)" or "GPU NVIDIA H100 80GB HBM3". */
function deviceLabel(b: BackendUsed, simd?: string): string {
  return b.used === 'cuda' ? `GPU ${b.device ?? ''}`.trim() : simd ? `CPU, ${simd}` : 'CPU';
}

const backendOption = () =>
  new Option('--backend <name>', 'where the kernels run: auto (the CUDA backend when it is built and finds a GPU, else the CPU), cpu or cuda (default: $MOTHER_BACKEND or auto)').choices(BACKENDS);

function parseThreads(v: string): number {
  const n = Number(v);
  if (!/^\s*\d+\s*$/.test(v) || !Number.isInteger(n) || n < 1 || n > 4096) throw new InvalidArgumentError('expected an integer from 1 to 4096 (leave it out for all cores).');
  return n;
}

interface StatsOpts {
  backend?: BackendName;
  json?: boolean;
  threads?: number;
  simd?: string;
  quiet?: boolean;
}

async function statsCommand(model: string, opts: StatsOpts, out: NodeJS.WritableStream): Promise<void> {
  const bar = progressBar('scanning', process.stderr, !opts.quiet && process.stderr.isTTY === true);
  let stats;
  try {
    stats = await scanModel(model, {
      threads: opts.threads,
      simd: opts.simd,
      backend: opts.backend,
      onProgress: (p) => bar.update(p.bytesDone, p.bytesTotal, `${p.tensorsDone}/${p.tensorsTotal} tensors`),
    });
  } finally {
    bar.finish();
  }
  if (stats.note) process.stderr.write(line(`mother: ${stats.model}: ${stats.note}`));
  if (opts.json) {
    const doc = {
      model: stats.model,
      ...(stats.note ? { note: stats.note } : {}),
      files: stats.files,
      backend: stats.backend,
      tensors: stats.tensors.map((t) => ({
        name: t.name, dtype: t.dtype, shape: t.shape, count: t.count, mean: t.mean, std: t.std,
        skewness: t.skewness, kurtosis: t.kurtosis, min: t.min, max: t.max, l2: t.l2, absMean: t.absMean,
        nan: t.nan, inf: t.inf, ...(t.unreadable ? { unreadable: t.unreadable } : {}),
      })),
    };
    out.write(safeJson(JSON.stringify(doc, null, 2)) + '\n');
    return;
  }
  const rows = stats.tensors.map((t) => [
    t.name, t.dtype, `[${t.shape.join(',')}]`, num(t.mean), num(t.std), num(t.skewness), num(t.kurtosis),
    num(t.min), num(t.max), t.nan === null ? '-' : String(t.nan), t.inf === null ? '-' : String(t.inf),
  ]);
  out.write(
    table(['tensor', 'dtype', 'shape', 'mean', 'std', 'skew', 'kurtosis', 'min', 'max', 'nan', 'inf'], rows, [
      false, false, false, true, true, true, true, true, true, true, true,
    ]) + '\n',
  );
  for (const t of stats.tensors) if (t.unreadable) out.write(line(`not read: ${t.name}: ${t.unreadable}`));
  const rate = stats.seconds > 0 ? `${formatBytes(stats.bytes / stats.seconds)}/s` : '-';
  out.write(
    `\n${stats.tensors.length} tensors in ${stats.files.length} file(s), ${formatBytes(stats.bytes)} read in ${stats.seconds.toFixed(3)} s (${rate}, ${deviceLabel(stats.backend, stats.simd)}, ${stats.threads} threads)\n`,
  );
}

interface DistancesOpts {
  metric: PairMetric;
  rankK?: number;
  exactRank?: boolean;
  backend?: BackendName;
  layers?: string;
  json?: boolean;
  threads?: number;
  quiet?: boolean;
}

/** Validates a --layers pattern (kept as the source string). */
function parseRegex(v: string): string {
  try {
    new RegExp(v);
    return v;
  } catch (e) {
    throw new InvalidArgumentError(`not a valid regular expression: ${(e as Error).message}`);
  }
}

async function distancesCommand(models: string[], opts: DistancesOpts, out: NodeJS.WritableStream): Promise<void> {
  const bar = progressBar('reading', process.stderr, !opts.quiet && process.stderr.isTTY === true);
  let r: PairwiseStats;
  try {
    r = await pairwiseStats<PairMetric>(models, {
      layers: opts.layers ? new RegExp(opts.layers) : undefined,
      metrics: opts.metric === 'rank' ? ['rms', 'l1', 'maxdiff', 'rank'] : undefined,
      rank: { k: opts.rankK, exact: opts.exactRank },
      threads: opts.threads,
      backend: opts.backend,
      onProgress: (p) => bar.update(p.bytesDone, p.bytesTotal, p.svdTotal ? `exact SVD ${p.svdDone ?? 0}/${p.svdTotal}` : undefined),
    });
  } finally {
    bar.finish();
  }
  const n = r.n;
  if (opts.metric === 'rank' && !opts.exactRank) {
    // a sketch rank of k means "k or more": say so rather than print a floor as a value
    const k = opts.rankK ?? 64;
    const saturated = r.layers.filter((l) => l.rank && Array.from(l.rank).some((v) => v >= k)).map((l) => l.name);
    if (saturated.length) {
      process.stderr.write(line(`mother: warning: the rank sketch saturates at k = ${k} in ${plural(saturated.length, 'layer')} (${saturated.slice(0, 3).join(', ')}${saturated.length > 3 ? ', ...' : ''}): those ranks are ${k} or more; ask for a larger --rank-k or --exact-rank`));
    }
  }
  const m = r.aggregates[AGGREGATE_OF[opts.metric]] ?? new Float64Array(n * n).fill(NaN); // no square 2-D tensor to rank
  const finite = (v: number) => (Number.isFinite(v) ? v : null);
  if (opts.json) {
    const doc = {
      models: r.models,
      metric: opts.metric,
      matrix: Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => finite(m[i * n + j]))),
      layers: r.layers.map((l) => ({
        name: l.name,
        rows: l.rows,
        resized: l.resized,
        rms: Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => finite(l.rms[i * n + j]))),
        meanAbs: Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => finite(l.meanAbs[i * n + j]))),
        maxDiff: Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => finite(l.maxDiff[i * n + j]))),
        ...(l.rank ? { rank: Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => finite(l.rank![i * n + j]))) } : {}),
      })),
      skipped: r.skipped.map((s) => ({ name: s.name, model: s.model >= 0 ? r.models[s.model] : null, reason: s.reason })),
      warnings: r.warnings,
      alignment: r.alignment.map((a) => ({ model: r.models[a.model], method: a.method, matched: a.matched, tensors: a.tensors })),
      bytesRead: r.bytesRead,
    };
    out.write(safeJson(JSON.stringify(doc)) + '\n');
    return;
  }
  const labels = models.map((_, i) => `[${i}]`);
  const rows = Array.from({ length: n }, (_, i) => [labels[i], ...Array.from({ length: n }, (_, j) => num(finite(m[i * n + j])))]);
  out.write(models.map((p, i) => line(`${labels[i]} ${p}`)).join('') + '\n');
  out.write(table([opts.metric, ...labels], rows, [false, ...labels.map(() => true)]) + '\n');
  const resized = r.layers.filter((l) => l.resized).map((l) => l.name);
  const bytes = r.bytesRead.reduce((a, b) => a + b, 0);
  for (const a of r.alignment) if (a.method !== 'name') out.write(line(`${labels[a.model]} aligned to [0] by ${a.method === 'order' ? 'order and shape' : 'normalised names'}: ${a.matched} of ${a.tensors} float tensors matched`));
  out.write('\n' + line(`${r.layers.length} tensors compared${resized.length ? ` (${resized.length} on shared leading rows: ${resized.slice(0, 3).join(', ')}${resized.length > 3 ? ', ...' : ''})` : ''}, ${r.skipped.length} skipped; ${formatBytes(bytes)} read once in ${r.seconds.toFixed(3)} s (${deviceLabel(r.backend, r.simd)}, ${r.threads} threads)`));
}

interface RecoverCliOpts {
  metric: RecoverMetric;
  pairs?: boolean;
  lambda: number;
  direction: KurtosisMode | 'auto';
  families: string;
  layers?: string;
  kurtosisLayers?: string;
  json?: boolean;
  format?: 'text' | GraphFormat;
  out?: string;
  truth?: string;
  threads?: number;
  backend?: BackendName;
  quiet?: boolean;
  verbose?: boolean;
  hfCache?: string | boolean;
  revision?: string;
}

async function readTruth(file: string): Promise<TruthInput> {
  let doc: unknown;
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) throw new Error('not a regular file'); // a FIFO would block the read
    doc = JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch (e) {
    throw new MotherError('ERR_NOT_FOUND', `${file}: cannot read the ground truth: ${(e as Error).message}`, { file });
  }
  const edges = (doc as { edges?: unknown }).edges;
  if (!Array.isArray(edges) || !edges.every((e) => Array.isArray(e) && e.length === 2 && e.every((x) => typeof x === 'string'))) {
    throw new MotherError('ERR_NOT_A_MODEL', `${file}: ground truth must be {"edges": [[parent, child], ...]} with model ids`, { file });
  }
  const tree = (doc as { tree_edges?: unknown }).tree_edges;
  const treeOk = Array.isArray(tree) && tree.every((e) => Array.isArray(e) && e.length === 2 && e.every((x) => typeof x === 'string'));
  return treeOk ? { edges: edges as [string, string][], tree_edges: tree as [string, string][] } : { edges: edges as [string, string][] };
}

/** A model found for the recovery, before ids are settled. */
interface Found {
  /** Its id relative to its root (or the root's own name; ORG/NAME for the hub). */
  id: string;
  path: string;
  /** The folder ids are relative to (a root that is a model: its parent folder); null for hub models. */
  base: string | null;
}

/** The common ancestor folder of absolute paths. */
function commonFolder(dirs: string[]): string {
  let parts = dirs[0].split(path.sep);
  for (const d of dirs.slice(1)) {
    const q = d.split(path.sep);
    let k = 0;
    while (k < parts.length && k < q.length && parts[k] === q[k]) k++;
    parts = parts.slice(0, k);
  }
  return parts.join(path.sep) || path.sep;
}

/** The format a model is read from, and what its folder set aside: "gguf, 3 splits",
 *  "safetensors: read model.safetensors; also present: onnx/model.onnx: not read, safetensors preferred". */
export function formatText(r: ModelFiles): string {
  return `${r.format}${r.format === 'gguf' && (r.splits ?? 1) > 1 ? `, ${r.splits} splits` : ''}${r.note ? `: ${r.note}` : ''}`;
}

/**
 * The models of every root, each model once (by real path, the first root's), with ids that are
 * unique and readable: with one root, paths relative to it (as before); with several, the same
 * when those are unique, else every local id is its path relative to the roots' common folder
 * (samples/zoo-small/ft and samples/zoo-small/llm give ft/m00 and llm/m00, the zoo's truth ids).
 * A path that does not exist and reads ORG/NAME is a hub id, looked up in the cache. With -v,
 * each file or folder discovery passed over is a line "skipped WHAT: WHY" as it is found (a broken
 * cache entry is the warning only).
 */
async function findModels(paths: string[], opts: RecoverCliOpts, err: NodeJS.WritableStream): Promise<{ id: string; path: string }[]> {
  const cacheDir = typeof opts.hfCache === 'string' ? opts.hfCache : defaultHfCache();
  const skipped = (shown: (s: DiscoverySkip) => string) =>
    opts.verbose
      ? {
          onSkipped: (s: DiscoverySkip) => {
            if (s.kind !== 'broken-cache-entry') err.write(line(`skipped ${shown(s)}: ${s.reason}`));
          },
        }
      : {};
  const lists: Found[][] = [];
  for (const p of paths) {
    if (!fs.existsSync(p) && HUB_ID.test(p) && p.includes('/')) {
      lists.push((await resolveHubId(p, cacheDir, { revision: opts.revision, ...skipped((s) => s.id) })).map((m) => ({ ...m, base: null })));
      continue;
    }
    const abs = path.resolve(p);
    const list = await discoverModels(p, 8, skipped((s) => path.join(p, s.id)));
    const rootIsModel = list.length === 1 && list[0].path === abs;
    lists.push(list.map((m) => ({ ...m, base: rootIsModel ? path.dirname(abs) : abs })));
  }
  if (opts.hfCache !== undefined && opts.hfCache !== false) {
    const hub = await discoverHfCache(cacheDir, { revision: opts.revision, onWarning: (m) => err.write(line(`mother: warning: ${m}`)), ...skipped((s) => s.id) });
    lists.push(hub.map((m) => ({ ...m, base: null })));
  }
  const seen = new Map<string, string>();
  const all: Found[] = [];
  for (const m of lists.flat()) {
    const real = await fsp.realpath(m.path);
    const first = seen.get(real);
    if (first !== undefined) {
      if (opts.verbose) err.write(line(`skipped ${m.path}: the same model as ${first} (by its real path): listed once`));
      continue;
    }
    seen.set(real, m.path);
    all.push(m);
  }
  const unique = (ids: string[]) => new Set(ids).size === ids.length;
  let ids = all.map((m) => m.id);
  if (!unique(ids)) {
    const bases = all.filter((m) => m.base !== null).map((m) => m.base!);
    const common = bases.length ? commonFolder(bases) : '';
    ids = all.map((m) => (m.base === null ? m.id : path.relative(common, m.path).split(path.sep).join('/') || path.basename(m.path)));
  }
  const count = new Map<string, number>();
  return all.map((m, i) => {
    const k = (count.get(ids[i]) ?? 0) + 1;
    count.set(ids[i], k);
    return { id: k === 1 ? ids[i] : `${ids[i]}#${k}`, path: m.path };
  });
}

async function recoverCommand(paths: string[], opts: RecoverCliOpts, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<void> {
  if (opts.json && opts.format && opts.format !== 'json') {
    throw new MotherError('ERR_INVALID_ARGUMENT', `--json and --format ${opts.format} conflict: give one of them`);
  }
  // where the output goes, checked before anything is read
  const target = opts.out ? await checkOutTarget(opts.out) : undefined;
  // each stage named: a transient line on a terminal, a line of its own with -v
  const tty = !opts.quiet && process.stderr.isTTY === true && err === process.stderr;
  const say = (s: string) => {
    if (opts.verbose) err.write(line(s));
    else if (tty) err.write(`\r${escapeControl(s)}\x1b[K`);
  };
  say('finding models...');
  const models = await findModels(paths, opts, err);
  if (models.length === 0) throw new MotherError(paths.length === 0 ? 'ERR_INVALID_ARGUMENT' : 'ERR_NOT_A_MODEL', 'no models to compare: give model paths or --hf-cache');
  const resolved = await Promise.all(models.map((m) => resolveModel(m.path)));
  if (target) {
    const keep: ProtectedFile[] = [];
    for (const r of resolved) keep.push(...(await modelInputFiles(r)));
    if (opts.truth) keep.push({ file: opts.truth, what: 'the --truth file' });
    await refuseInputs(target, keep);
  }
  if (opts.verbose) {
    err.write(line(`found ${plural(models.length, 'model')}:`));
    models.forEach((m, i) => err.write(line(`  ${m.id}  ${m.path}  ${formatText(resolved[i])}`)));
  }
  const truth = opts.truth ? await readTruth(opts.truth) : undefined;
  const bar = progressBar(`reading ${plural(models.length, 'model')}`, process.stderr, !opts.quiet && process.stderr.isTTY === true);
  let g: ModelGraph;
  let readDone = false;
  try {
    g = await recover(models, {
      metric: opts.metric,
      pairs: opts.pairs === true,
      lambda: opts.lambda,
      direction: opts.direction,
      families: opts.families === 'auto' ? 'auto' : Number(opts.families),
      layers: opts.layers ? new RegExp(opts.layers) : undefined,
      kurtosisLayers: opts.kurtosisLayers ? new RegExp(opts.kurtosisLayers) : undefined,
      threads: opts.threads,
      backend: opts.backend,
      onProgress: (p) => {
        if (p.stage === 'spectra') {
          if (p.spectraDone === 0) say(`measuring the spectral clock of ${plural(p.spectraTotal ?? 0, 'model')}...`);
          return;
        }
        if (p.stage === 'differences') {
          if (p.differencesDone === 0) say(`measuring the shape of the differences in ${plural(p.differencesTotal ?? 0, 'family', 'families')}...`);
          return;
        }
        if (p.stage === 'bases') {
          if (p.basesDone === 0) say(`choosing the base of ${p.adapter} among ${plural(p.basesTotal ?? 0, 'family', 'families')} by the alignment of dW with their weights...`);
          return;
        }
        if (p.stage === 'adapters') {
          if (p.adaptersDone === 0) say(`comparing the PEFT adapters with the models of their bases' families (${plural(p.adaptersTotal ?? 0, 'pass', 'passes')} over the target tensors)...`);
          return;
        }
        bar.update(p.bytesDone, p.bytesTotal, p.stage === 'svd' ? `exact SVD ${p.svdDone ?? 0}/${p.svdTotal}` : `${(models.length * (models.length - 1)) / 2} pairs`);
        if (p.bytesDone >= p.bytesTotal && (p.svdDone ?? 0) >= (p.svdTotal ?? 0) && !readDone) {
          readDone = true;
          bar.finish();
          say('testing relatedness, building the trees...');
        }
      },
    });
  } finally {
    bar.finish();
  }
  if (truth) g.evaluation = graphEvaluation(g, truth, opts.truth ?? null);
  if (opts.verbose) {
    const w = (s: string) => err.write(line(s));
    w(`read on ${deviceLabel(g.backend)}${g.backend.reason ? ` (${g.backend.reason})` : ''}`);
    w(`relatedness: alpha ${g.relatedness.alpha} over the pairs of each comparability group, r0 ${g.relatedness.r0}`);
    for (const grp of g.relatedness.groups) {
      const v = grp.verdicts;
      w(`  group of ${plural(grp.members.length, 'model')}, ${plural(grp.pairs, 'pair')}: null variance ${num(grp.null.kappa)} (measured ${num(Number.isFinite(grp.null.measured) ? grp.null.measured : null)} from ${grp.null.draws} shifted draws of ${plural(grp.null.pairs, 'pair')}, ${grp.null.excludedRelated} related pairs left out); ${v.related} related, ${v.unrelated} unrelated, ${v.undecided} undecided${v['not comparable'] ? `, ${v['not comparable']} not comparable` : ''}`);
    }
    for (const d of g.duplicates) w(`  exact copies: ${d.members.join(' = ')}`);
    for (const f of g.familyReports) {
      w(`family of ${plural(f.members.length, 'model')}: root ${f.root}, clock ${f.clock.used}${f.clock.chosen ? '' : ' (given)'}, cost ${num(f.cost)}${f.copies.copies || f.copies.merges ? `, ${f.copies.copies} copies and ${f.copies.merges} merges as leaves` : ''}`);
      w(`  clock: ${f.clock.why}; agreement per clock (best root): ${f.clock.scores.map((s) => `${s.clock} ${(100 * s.agreement).toFixed(0)} % (${s.root})`).join(', ')}`);
      if (f.clock.scores.some((s) => s.treeCost !== undefined)) w(`  each clock's own tree (cost, root): ${f.clock.scores.map((s) => `${s.clock} ${s.treeCost!.toPrecision(6)} (${s.treeRoot})`).join(', ')}`);
      w(`  metric ${f.metric.used}: ${f.metric.why}`);
      if (f.rows) w(`  tree on identical ${f.rows.tensor} rows plus the distance: ${f.rows.minDiffering} to ${f.rows.maxDiffering} rows differ between two members (README, Direction 5)`);
      if (f.vocabulary) w(`  vocabulary: ${f.vocabulary.tensor} has ${f.vocabulary.minRows} to ${f.vocabulary.maxRows} rows; the root is one of the smallest, no edge goes from more rows to fewer (README, Direction 6)`);
      w(`  kurtosis layers (${f.kurtosisLayers.layers.length}): ${f.kurtosisLayers.why}`);
      if (f.differences) {
        const d = f.differences;
        w(`  shape of the differences (${d.tensors} tensors, ${d.sampledRows} rows sampled): ${d.penalised.length ? `${plural(d.penalised.length, 'pair')} two runs apart (a third model one run from both), their edges ${d.window}x dearer: ${d.penalised.map(([a, b]) => `${a} - ${b}`).join(', ')}` : 'no pair two runs apart'}`);
        if (d.moved?.length) w(`  moved to the member one run from them (the most Gaussian difference): ${d.moved.map(([c, f, t]) => `${c} from ${f} to ${t}`).join(', ')}`);
        if (d.fans?.length) w(`  fans, not chains (siblings moved up to the parent they share: README, Direction step 8): ${d.fans.map(([c, f, t]) => `${c} from ${f} to ${t}`).join(', ')}`);
      }
      if (f.evidence.weakestLink) w(`  weakest link: ${f.evidence.weakestLink.a} - ${f.evidence.weakestLink.b}, ${linkText(f.evidence.weakestLink)}`);
      if (f.evidence.nearestOutsider) w(`  nearest outsider: ${f.evidence.nearestOutsider.a} - ${f.evidence.nearestOutsider.b}, ${linkText(f.evidence.nearestOutsider)} (${f.evidence.nearestOutsider.verdict})`);
    }
    for (const a of g.adapters ?? []) w(`adapter ${a.id}: base ${a.base ?? 'none'}${a.resolvedBy ? ` (by ${a.resolvedBy})` : ''}: ${a.why}`);
    const aligned = g.alignment.filter((a) => a.method !== 'name');
    w(`alignment to ${g.models[0]?.id ?? '-'}: ${g.alignment.length - aligned.length} of ${g.alignment.length} models by name${aligned.map((a) => `; ${a.model} by ${a.method === 'order' ? 'order and shape' : 'normalised names'} (${a.matched} of ${a.tensors} float tensors matched)`).join('')}`);
    for (const s of g.skipped.slice(0, 20)) w(`skipped ${s.tensor}${s.model ? ` in ${s.model}` : ''}: ${s.reason}`);
  }
  say('writing the output...');
  if (tty) err.write('\r\x1b[K');
  const format = opts.json ? 'json' : opts.format ?? 'text';
  let text =
    format === 'text'
      ? renderTree(g) + line(`${plural(g.models.length, 'model')}, ${plural(g.families.length, 'family', 'families')}, ${formatBytes(g.bytesRead)} read once in ${g.seconds.toFixed(2)} s on ${deviceLabel(g.backend)}`)
      : await renderGraph(g, format);
  if (opts.pairs && format === 'text' && g.pairs) {
    const rows = g.pairs.filter((p) => p.verdict !== 'not comparable').map((p) => [p.a, p.b, p.verdict, num(p.r, 3), num(p.z, 3), pText(p), String(p.tensors)]);
    text += `\n${table(['model', 'model', 'verdict', 'r', 'z', 'p', 'tensors'], rows, [false, false, false, true, true, true, true])}\n`;
  }
  if (target) {
    const again: ProtectedFile[] = [];
    for (const r of resolved) again.push(...(await modelInputFiles(r)));
    if (opts.truth) again.push({ file: opts.truth, what: 'the --truth file' });
    await refuseInputs(target, again); // nothing has become an input since the first check
    await writeAtomic(target, text);
  } else out.write(text);
  const ev = g.evaluation;
  if (ev) {
    const pct = (x: number | null) => (x === null ? 'n/a (no edges)' : `${(100 * x).toFixed(1)}%`);
    const fa = ev.families;
    const w = (s: string) => err.write(line(s));
    err.write('\n');
    w(`against ${opts.truth}: directed edge accuracy ${pct(ev.directedAccuracy)}, undirected ${pct(ev.undirectedAccuracy)}, family accuracy ${pct(ev.clusteringAccuracy)}${ev.ignoredTruthEdges ? ` (${ev.ignoredTruthEdges} truth edges between other models ignored)` : ''}`);
    w(`families: ${fa.exact} of ${fa.truthFamilies} exact (${fa.predictedFamilies} recovered), adjusted Rand index ${fa.adjustedRand.toFixed(3)}${ev.treeEdges ? '; edges scored on tree_edges (each merge under its heavier parent)' : ''}`);
    for (const x of fa.wrong) w(`  family ${x.truth.join(', ')} recovered as ${x.predicted.map((f) => `[${f.join(', ')}]`).join(' ')}`);
    for (const e of ev.edges.reversed) w(`  reversed: ${e.parent} -> ${e.child} (truth: ${e.child} -> ${e.parent})`);
    for (const e of ev.edges.wrong) w(`  wrong: ${e.parent} -> ${e.child}`);
    for (const e of ev.edges.missing) w(`  missing: ${e.parent} -> ${e.child}`);
  }
}


interface RelatedCliOpts {
  json?: boolean;
  threads?: number;
  backend?: BackendName;
  quiet?: boolean;
  verbose?: boolean;
}

/** The exit code of a set of answers: 1 if any pair is unrelated, else 4 if any is undecided or not comparable, else 0. */
export function relatedExitCode(verdicts: readonly string[]): number {
  if (verdicts.includes('unrelated')) return EXIT_FAILURE;
  if (verdicts.some((v) => v !== 'related')) return EXIT_UNDECIDED;
  return EXIT_OK;
}

function pText(r: { p: number | null; log10p: number | null }): string {
  if (r.log10p === null) return '-';
  return r.log10p < -300 ? `1e${Math.round(r.log10p)}` : num(r.p, 2);
}

async function relatedCommand(a: string, others: string[], opts: RelatedCliOpts, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const bar = progressBar('reading', process.stderr, !opts.quiet && process.stderr.isTTY === true);
  let res: RelatedResult[];
  try {
    res = await related(a, others, { threads: opts.threads, backend: opts.backend, onProgress: (p) => bar.update(p.bytesDone, p.bytesTotal) });
  } finally {
    bar.finish();
  }
  const code = relatedExitCode(res.map((r) => r.verdict));
  if (opts.json) {
    out.write(safeJson(JSON.stringify({ version: 1, exitCode: code, results: res }, null, 2)) + '\n');
    return code;
  }
  for (const r of res) {
    const head = r.verdict === 'not comparable'
      ? `${r.b}: not comparable with ${r.a} (no tensor shared by name and shape)`
      : `${r.b}: ${r.verdict} to ${r.a}${r.identical ? ' (identical values)' : ''}: r = ${num(r.r, 3)}, z = ${num(r.z, 3)}, p = ${pText(r)}; excess over the shifted null ${num(r.excess, 3)} [${num(r.excessLow, 3)}, ${num(r.excessHigh, 3)}] over ${r.tensors} tensors`;
    out.write(line(head));
    const rows = r.layers.map((l) => [l.name, l.used ? String(l.count) : '-', num(l.r, 3), num(l.rShift1, 3), num(l.rShift2, 3), num(l.z, 3), l.used ? (l.identical ? 'identical' : '') : `left out: ${l.reason}`]);
    if (rows.length) out.write(table(['tensor', 'compared', 'r', 'r (shift 1)', 'r (shift 2)', 'z', ''], rows, [false, true, true, true, true, true, false]).replace(/^/gm, '  ') + '\n');
    out.write('\n');
  }
  const r = res[0];
  out.write(`null: variance ${num(r.null.kappa)} (measured ${num(Number.isFinite(r.null.measured) ? r.null.measured : null)} from ${r.null.draws} shifted draws); related when p <= ${r.alpha} / ${r.tested || 1}; unrelated when an excess correlation of ${r.r0} or more is excluded\n`);
  if (opts.verbose) err.write(`read ${formatBytes(r.bytesRead)} once in ${r.seconds.toFixed(2)} s on ${deviceLabel(r.backend)}\n`);
  return code;
}

/** The exit code an action chose (mother related answers with it). */
export interface ProgramState {
  code: number;
}

export function buildProgram(out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr, state: ProgramState = { code: EXIT_OK }): Command {
  const program = new Command();
  program
    .name('mother')
    .description('Model Tree Heritage Recovery: recover which model was fine-tuned from which, from the weights alone.')
    .version((require(path.join(packageRoot(), 'package.json')) as { version: string }).version)
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => err.write(s.split('\n').map(escapeControl).join('\n')) }) // an argument echoed in a usage error is escaped too
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('stats')
    .description('per-tensor statistics of one model (mean, std, skewness, excess kurtosis, min, max, L2, NaN/Inf counts)')
    .argument('<model>', 'model directory (model.safetensors or shards + index), .safetensors file, or shard index')
    .option('--json', 'print JSON instead of a table')
    .option('--threads <n>', 'worker threads (default: all cores)', parseThreads)
    .addOption(backendOption())
    .addOption(new Option('--simd <path>', 'force a SIMD path (default: best available, or $MOTHER_SIMD)').choices(SIMD_NAMES))
    .option('-q, --quiet', 'no progress bar')
    .addHelpText(
      'after',
      `\nExamples:\n  $ mother stats samples/zoo-small/ft/m02\n  $ mother stats model.safetensors --json > stats.json\n  $ MOTHER_SIMD=scalar mother stats ./Llama-2-7b-hf --threads 4\n\nSIMD paths on this machine: ${(() => {
        try {
          return simdPaths().available.join(', ');
        } catch {
          return 'unknown (addon not built)';
        }
      })()}`,
    )
    .action(async (model: string, opts: StatsOpts) => statsCommand(model, opts, out));

  program
    .command('recover')
    .description('recover the family tree (parent -> child) of the models found under the given paths')
    .argument('[paths...]', 'model directories, .safetensors files, diffusers pipelines, or folders holding several models')
    .option('--hf-cache [dir]', 'also the models in a Hugging Face hub cache (default, as huggingface_hub: $HF_HUB_CACHE, $HUGGINGFACE_HUB_CACHE, $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub); ids are ORG/NAME; a path argument ORG/NAME that does not exist is looked up there')
    .option('--revision <rev>', 'the cache revision read: a branch or tag (refs/<rev>) or a commit hash (default main)')
    .addOption(new Option('--metric <m>', 'distance within families: auto (per family: rank when the pairwise differences are low-rank, else rms), rms (full fine-tuning), rank (LoRA), l1, maxdiff').choices(RECOVER_METRICS).default('auto'))
    .option('--lambda <x>', 'weight of the kurtosis penalty', (v: string) => {
      const x = Number(v);
      if (!Number.isFinite(x) || x < 0) throw new InvalidArgumentError('expected a non-negative number.');
      return x;
    }, 0.3)
    .addOption(new Option('--direction <d>', 'direction evidence: auto (per family, the clock that agrees best with the distance tree), or the paper\'s kurtosis trend: finetune (falls parent -> child), pretrain (rises)').choices(['auto', ...KURTOSIS_MODES]).default('auto'))
    .option('--families <k>', "'auto' (connected components of the pairs the relatedness test calls related) or a number K (Ward clustering into K families, the paper's protocol)", (v: string) => {
      if (v === 'auto') return v;
      const k = Number(v);
      if (!Number.isInteger(k) || k < 1) throw new InvalidArgumentError("expected a positive integer or 'auto'.");
      return v;
    }, 'auto')
    .option('--layers <regex>', 'the square 2-D tensors entering the distances: those whose name matches (default: all; every tensor only where no two models share a square one)', parseRegex)
    .option('--kurtosis-layers <regex>', 'tensors entering the kurtosis (default per family: the architecture\'s layers that vary in the family, else every square layer that varies)', parseRegex)
    .option('--pairs', 'also every pair\'s relatedness evidence (r, z, p, verdict): a table, or `pairs` in the JSON')
    .option('--json', 'print the model graph as JSON (version 4; same as --format json)')
    .addOption(new Option('--format <f>', 'output (default text): text (an indented tree), json, dot (Graphviz), newick, mermaid, svg (drawn offline), html (one self-contained file)').choices(['text', ...GRAPH_FORMATS]))
    .option('--out <file>', 'write the output to a file (checked before the run: never an input file, the --truth file or a cache blob; written atomically after a successful run)')
    .option('--truth <file>', 'ground truth {"edges": [[parent, child], ...]}: print the evaluation (and add it to the JSON and HTML: correct, reversed, wrong and missing edges)')
    .option('--threads <n>', 'worker threads (default: all cores)', parseThreads)
    .addOption(backendOption())
    .option('-q, --quiet', 'no progress bar')
    .option('-v, --verbose', 'explain each stage (models found with the format read and the weight files set aside, files and folders skipped and why, the measured null, families, metric and kurtosis layers and why, skipped tensors)')
    .addHelpText('after', `\nExamples:\n  $ mother recover samples/zoo-small --truth samples/zoo-small/truth.json\n  $ mother recover samples/zoo-small/ft\n  $ mother recover ./models --metric rank --layers 'attention\\.value' --json --out graph.json\n  $ mother recover ./zoo --truth ./zoo/truth.json\n  $ mother recover samples/zoo-small --format html --out tree.html\n  $ mother recover --hf-cache --metric rms --format json\n  $ mother recover openai-community/gpt2 distilbert/distilgpt2 --revision main\n\nExit codes: 0 ok; 1 the run could not finish (runtime error); 2 usage error; 3 unreadable or invalid input; 70 internal error.\n`)
    .action(async (paths: string[], opts: RecoverCliOpts) => recoverCommand(paths, opts, out, err));

  program
    .command('related')
    .description('is B derived from A (or do both come from a common ancestor)? An independence test of the weights: r, z, p-value, verdict and per-layer evidence; exit code 0 related, 1 unrelated, 4 undecided')
    .argument('<a>', 'the model in question (e.g. the claimed base model)')
    .argument('<b...>', 'one or more models to test against it')
    .option('--json', 'print JSON: per pair the verdict, r, z, p, the measured null and the per-layer table')
    .option('--threads <n>', 'worker threads (default: all cores)', parseThreads)
    .addOption(backendOption())
    .option('-q, --quiet', 'no progress bar')
    .option('-v, --verbose', 'also the bytes read and the device')
    .addHelpText('after', `\nExit codes: 0 every model is related to A; 1 some model is unrelated; 4 some pair is undecided or not comparable (and none unrelated); 2 usage error; 3 unreadable input.\n\nExamples:\n  $ mother related samples/zoo-small/llm/m03 samples/zoo-small/llm/m00\n  $ mother related ./Llama-2-7b-hf ./CodeLlama-7b-hf ./my-model --json\n`)
    .action(async (a: string, b: string[], opts: RelatedCliOpts) => {
      state.code = await relatedCommand(a, b, opts, out, err);
    });

  program
    .command('distances')
    .description('pairwise distances between models, every model read once (per-layer RMS / L1 / max of weight differences)')
    .argument('<models...>', 'two or more models (directories, .safetensors files or shard indexes)')
    .addOption(new Option('--metric <m>', 'aggregate to print: rms = mean over layers of RMS(Wi - Wj); l1 = sum over layers of mean |Wi - Wj|; maxdiff = max over layers of the min-max normalised max |Wi - Wj|; rank = sum over square 2-D layers of rank(Wi - Wj) (LoRA families)').choices(PAIR_METRICS).default('rms'))
    .option('--rank-k <k>', 'sketch size for --metric rank (default 64; ranks up to about k - 8 are exact)', (v: string) => {
      const k = Number(v);
      if (!Number.isInteger(k) || k < 1 || k > 1024) throw new InvalidArgumentError('expected an integer from 1 to 1024.');
      return k;
    })
    .option('--exact-rank', 'exact SVD of each difference instead of the sketch (holds whole tensors in memory)')
    .option('--layers <regex>', 'compare only tensors whose name matches', parseRegex)
    .option('--json', 'print JSON: the matrix, per-layer matrices, skipped tensors, bytes read')
    .option('--threads <n>', 'worker threads (default: all cores)', parseThreads)
    .addOption(backendOption())
    .option('-q, --quiet', 'no progress bar')
    .addHelpText('after', `\nExamples:\n  $ mother distances a/ b/ c/ --metric l1\n  $ mother distances ./Llama-2-7b-hf ./CodeLlama-7b-hf --layers 'self_attn\\.o_proj' --json\n`)
    .action(async (models: string[], opts: DistancesOpts) => distancesCommand(models, opts, out));

  return program;
}

/** The exit code of an error: by its code's kind (input 3, usage 2, runtime 1, internal 70). */
export function exitCodeOf(e: MotherError): number {
  let kind: string | undefined;
  try {
    kind = errorKinds().get(e.code);
  } catch {
    kind = undefined;
  }
  if (kind === 'input') return EXIT_INPUT;
  if (kind === 'usage') return EXIT_USAGE;
  if (kind === 'internal') return EXIT_INTERNAL;
  return EXIT_FAILURE;
}

/** Watches a stream for write errors: `error` is the first one (EPIPE when the reader went away). */
function watchWrites(stream: NodeJS.WritableStream): { error: NodeJS.ErrnoException | null; flushed(): Promise<void>; dispose(): void } {
  const state = {
    error: null as NodeJS.ErrnoException | null,
    flushed: () =>
      new Promise<void>((resolve) => {
        if (state.error) return resolve();
        try {
          stream.write('', (e?: Error | null) => {
            if (e && !state.error) state.error = e as NodeJS.ErrnoException;
            resolve();
          });
        } catch (e) {
          if (!state.error) state.error = e as NodeJS.ErrnoException;
          resolve();
        }
      }),
    dispose: () => stream.removeListener('error', onError),
  };
  const onError = (e: NodeJS.ErrnoException) => {
    if (!state.error) state.error = e;
  };
  stream.on('error', onError);
  return state;
}

/** Runs the CLI; resolves to the exit code. Never throws: a user mistake is one line and its
 *  exit code, a bug is "internal error" with the stack (70). A reader that closes stdout early
 *  (EPIPE) ends the output quietly with the run's own exit code; any other failure to write
 *  stdout (ENOSPC, EIO) is one line and exit code 1 (ERR_OUTPUT). */
export async function main(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const state: ProgramState = { code: EXIT_OK };
  const program = buildProgram(out, err, state);
  const writes = watchWrites(out);
  let code: number;
  try {
    await program.parseAsync(argv);
    code = state.code;
  } catch (e) {
    if (e instanceof CommanderError) {
      code = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? EXIT_OK : EXIT_USAGE;
    } else if (e instanceof MotherError) {
      if (e.code !== 'ERR_OUTPUT' || !writes.error) err.write(line(`mother: ${e.message}`));
      code = exitCodeOf(e);
    } else if (writes.error) {
      code = state.code; // a write to a closed stdout threw: reported below
    } else {
      err.write(`mother: internal error: ${escapeControl(e instanceof Error && e.stack ? e.stack : String(e)).replace(/\\n/g, '\n')}\n`);
      code = EXIT_INTERNAL;
    }
  }
  await writes.flushed();
  const we = writes.error; // the listener stays: a late EPIPE must not become an uncaught error
  if (we) {
    if (we.code === 'EPIPE' || we.code === 'ERR_STREAM_DESTROYED') return code; // the reader has what it wanted
    err.write(line(`mother: cannot write the output to stdout: ${we.message}`));
    return code === EXIT_OK ? exitCodeOf(new MotherError('ERR_OUTPUT', we.message)) : code;
  }
  return code;
}
