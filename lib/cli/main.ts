// The `mother` command line: stages 1 to 5 of the pipeline, evaluation and output. Exit codes:
// 0 success, 2 usage error, 3 unreadable or invalid input (the message names the file and the
// reason), 1 anything else; `mother related` answers with its exit code: 0 related, 1
// unrelated, 4 undecided (or not comparable).
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import * as path from 'node:path';

import { MotherError } from '../core/errors';
import { errorKinds, packageRoot } from '../core/binding';
import { scanModel } from '../io/model_stats';
import { AGGREGATE_OF, PAIR_METRICS, PairMetric, pairwiseStats, PairwiseStats } from '../io/pairwise';
import { defaultHfCache, discoverHfCache, discoverModels, resolveModel } from '../io/discovery';
import { evaluate, ModelGraph, RECOVER_METRICS, RecoverMetric, recover, related, RelatedResult, TruthInput } from '../recover';
import { linkText, renderTree } from '../output/tree';
import { GRAPH_FORMATS, GraphFormat, renderGraph } from '../output/render';
import { promises as fsp } from 'node:fs';
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

/** "CPU (avx512)" or "GPU NVIDIA H100 80GB HBM3". */
function deviceLabel(b: BackendUsed, simd?: string): string {
  return b.used === 'cuda' ? `GPU ${b.device ?? ''}`.trim() : simd ? `CPU, ${simd}` : 'CPU';
}

const backendOption = () =>
  new Option('--backend <name>', 'where the kernels run: auto (the CUDA backend when it is built and finds a GPU, else the CPU), cpu or cuda (default: $MOTHER_BACKEND or auto)').choices(BACKENDS);

function parseThreads(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 4096) throw new InvalidArgumentError('expected an integer from 0 to 4096.');
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
  if (stats.note) process.stderr.write(`mother: ${stats.model}: ${stats.note}\n`);
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
    out.write(JSON.stringify(doc, null, 2) + '\n');
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
  for (const t of stats.tensors) if (t.unreadable) out.write(`not read: ${t.name}: ${t.unreadable}\n`);
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
  for (const w of r.warnings) process.stderr.write(`mother: warning: ${w}\n`);
  const n = r.n;
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
    out.write(JSON.stringify(doc) + '\n');
    return;
  }
  const labels = models.map((_, i) => `[${i}]`);
  const rows = Array.from({ length: n }, (_, i) => [labels[i], ...Array.from({ length: n }, (_, j) => num(finite(m[i * n + j])))]);
  out.write(models.map((p, i) => `${labels[i]} ${p}`).join('\n') + '\n\n');
  out.write(table([opts.metric, ...labels], rows, [false, ...labels.map(() => true)]) + '\n');
  const resized = r.layers.filter((l) => l.resized).map((l) => l.name);
  const bytes = r.bytesRead.reduce((a, b) => a + b, 0);
  for (const a of r.alignment) if (a.method !== 'name') out.write(`${labels[a.model]} aligned to [0] by ${a.method === 'order' ? 'order and shape' : 'normalised names'}: ${a.matched} of ${a.tensors} float tensors matched\n`);
  out.write(`\n${r.layers.length} tensors compared${resized.length ? ` (${resized.length} on shared leading rows: ${resized.slice(0, 3).join(', ')}${resized.length > 3 ? ', ...' : ''})` : ''}, ${r.skipped.length} skipped; ${formatBytes(bytes)} read once in ${r.seconds.toFixed(3)} s (${deviceLabel(r.backend, r.simd)}, ${r.threads} threads)\n`);
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
}

async function readTruth(file: string): Promise<TruthInput> {
  let doc: unknown;
  try {
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

async function recoverCommand(paths: string[], opts: RecoverCliOpts, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<void> {
  const found = (await Promise.all(paths.map((p) => discoverModels(p)))).map((list, r) =>
    list.map((m) => ({ ...m, root: paths[r] })),
  );
  if (opts.hfCache !== undefined && opts.hfCache !== false) {
    const dir = typeof opts.hfCache === 'string' ? opts.hfCache : defaultHfCache();
    found.push((await discoverHfCache(dir)).map((m) => ({ ...m, root: dir })));
  }
  const all = found.flat();
  if (all.length === 0) throw new MotherError(paths.length === 0 ? 'ERR_INVALID_ARGUMENT' : 'ERR_NOT_A_MODEL', 'no models to compare: give model paths or --hf-cache');
  const seen = new Map<string, number>();
  for (const m of all) seen.set(m.id, (seen.get(m.id) ?? 0) + 1);
  const models = all.map((m) => ({ id: seen.get(m.id)! > 1 ? `${m.root.replace(/\/+$/, '')}/${m.id}` : m.id, path: m.path }));
  if (opts.verbose) {
    const notes = await Promise.all(models.map((m) => resolveModel(m.path).then((r) => r.note, () => undefined)));
    err.write(`found ${models.length} models:\n${models.map((m, i) => `  ${m.id}  ${m.path}${notes[i] ? `  (${notes[i]})` : ''}`).join('\n')}\n`);
  }
  const truth = opts.truth ? await readTruth(opts.truth) : undefined;
  const bar = progressBar('reading', process.stderr, !opts.quiet && process.stderr.isTTY === true);
  let g: ModelGraph;
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
      onProgress: (p) => bar.update(p.bytesDone, p.bytesTotal, p.stage === 'svd' ? `exact SVD ${p.svdDone ?? 0}/${p.svdTotal}` : `${models.length} models, ${(models.length * (models.length - 1)) / 2} pairs`),
    });
  } finally {
    bar.finish();
  }
  if (opts.verbose) {
    err.write(`read on ${deviceLabel(g.backend)}${g.backend.reason ? ` (${g.backend.reason})` : ''}\n`);
    err.write(`relatedness: alpha ${g.relatedness.alpha} over the pairs of each comparability group, r0 ${g.relatedness.r0}\n`);
    for (const grp of g.relatedness.groups) {
      const v = grp.verdicts;
      err.write(`  group of ${grp.members.length} models, ${grp.pairs} pairs: null variance ${num(grp.null.kappa)} (measured ${num(Number.isFinite(grp.null.measured) ? grp.null.measured : null)} from ${grp.null.draws} shifted draws of ${grp.null.pairs} pairs, ${grp.null.excludedRelated} related pairs left out); ${v.related} related, ${v.unrelated} unrelated, ${v.undecided} undecided${v['not comparable'] ? `, ${v['not comparable']} not comparable` : ''}\n`);
    }
    for (const d of g.duplicates) err.write(`  exact copies: ${d.members.join(' = ')}\n`);
    for (const f of g.familyReports) {
      err.write(`family of ${f.members.length}: root ${f.root}, clock ${f.clock.used}${f.clock.chosen ? '' : ' (given)'}, cost ${num(f.cost)}${f.copies.copies || f.copies.merges ? `, ${f.copies.copies} copies and ${f.copies.merges} merges as leaves` : ''}\n`);
      err.write(`  clock: ${f.clock.why}; agreement per clock (best root): ${f.clock.scores.map((s) => `${s.clock} ${(100 * s.agreement).toFixed(0)} % (${s.root})`).join(', ')}\n`);
      err.write(`  metric ${f.metric.used}: ${f.metric.why}\n  kurtosis layers (${f.kurtosisLayers.layers.length}): ${f.kurtosisLayers.why}\n`);
      if (f.evidence.weakestLink) err.write(`  weakest link: ${f.evidence.weakestLink.a} - ${f.evidence.weakestLink.b}, ${linkText(f.evidence.weakestLink)}\n`);
      if (f.evidence.nearestOutsider) err.write(`  nearest outsider: ${f.evidence.nearestOutsider.a} - ${f.evidence.nearestOutsider.b}, ${linkText(f.evidence.nearestOutsider)} (${f.evidence.nearestOutsider.verdict})\n`);
    }
    const aligned = g.alignment.filter((a) => a.method !== 'name');
    err.write(`alignment to ${g.models[0]?.id ?? '-'}: ${g.alignment.length - aligned.length} of ${g.alignment.length} models by name${aligned.map((a) => `; ${a.model} by ${a.method === 'order' ? 'order and shape' : 'normalised names'} (${a.matched} of ${a.tensors} float tensors matched)`).join('')}\n`);
    for (const s of g.skipped.slice(0, 20)) err.write(`skipped ${s.tensor}${s.model ? ` in ${s.model}` : ''}: ${s.reason}\n`);
  }
  const format = opts.json ? 'json' : opts.format ?? 'text';
  let text =
    format === 'text'
      ? renderTree(g) + `${g.models.length} models, ${g.families.length} families, ${formatBytes(g.bytesRead)} read once in ${g.seconds.toFixed(2)} s on ${deviceLabel(g.backend)}\n`
      : await renderGraph(g, format);
  if (opts.pairs && format === 'text' && g.pairs) {
    const rows = g.pairs.filter((p) => p.verdict !== 'not comparable').map((p) => [p.a, p.b, p.verdict, num(p.r, 3), num(p.z, 3), pText(p), String(p.tensors)]);
    text += `\n${table(['model', 'model', 'verdict', 'r', 'z', 'p', 'tensors'], rows, [false, false, false, true, true, true, true])}\n`;
  }
  if (opts.out) await fsp.writeFile(opts.out, text);
  else out.write(text);
  if (truth) {
    const ev = evaluate(g, truth);
    const pct = (x: number | null) => (x === null ? "n/a (no edges)" : `${(100 * x).toFixed(1)}%`);
    const fa = ev.familyAgreement;
    err.write(`\nagainst ${opts.truth}: directed edge accuracy ${pct(ev.directedAccuracy)}, undirected ${pct(ev.undirectedAccuracy)}, family accuracy ${pct(ev.clusteringAccuracy)}${ev.ignoredTruthEdges ? ` (${ev.ignoredTruthEdges} truth edges between other models ignored)` : ''}\n`);
    err.write(`families: ${fa.exact} of ${fa.truthFamilies} exact (${fa.predictedFamilies} recovered), adjusted Rand index ${fa.adjustedRand.toFixed(3)}${truth.tree_edges ? '; edges scored on tree_edges (each merge under its heavier parent)' : ''}\n`);
    for (const w of fa.wrong) err.write(`  family ${w.truth.join(', ')} recovered as ${w.predicted.map((f) => `[${f.join(', ')}]`).join(' ')}\n`);
    const wrong = [...ev.wrongEdges.map((w) => `  wrong: ${w.parent} -> ${w.child}`), ...ev.missingEdges.map((m) => `  missing: ${m.parent} -> ${m.child}`)];
    if (wrong.length) err.write(wrong.join('\n') + '\n');
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
    out.write(JSON.stringify({ version: 1, exitCode: code, results: res }, null, 2) + '\n');
    return code;
  }
  for (const r of res) {
    const head = r.verdict === 'not comparable'
      ? `${r.b}: not comparable with ${r.a} (no tensor shared by name and shape)`
      : `${r.b}: ${r.verdict} to ${r.a}${r.identical ? ' (identical values)' : ''}: r = ${num(r.r, 3)}, z = ${num(r.z, 3)}, p = ${pText(r)}; excess over the shifted null ${num(r.excess, 3)} [${num(r.excessLow, 3)}, ${num(r.excessHigh, 3)}] over ${r.tensors} tensors`;
    out.write(head + '\n');
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
    .configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => err.write(s) })
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
    .option('--hf-cache [dir]', 'also the models in a Hugging Face hub cache (default $HF_HUB_CACHE or ~/.cache/huggingface/hub); ids are ORG/NAME')
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
    .option('--layers <regex>', 'tensors entering the distances (default: every square 2-D tensor)', parseRegex)
    .option('--kurtosis-layers <regex>', 'tensors entering the kurtosis (default per family: the architecture\'s layers that vary in the family, else every square layer that varies)', parseRegex)
    .option('--pairs', 'also every pair\'s relatedness evidence (r, z, p, verdict): a table, or `pairs` in the JSON')
    .option('--json', 'print the model graph as JSON (version 3; same as --format json)')
    .addOption(new Option('--format <f>', 'output: text (an indented tree), json, dot (Graphviz), newick, mermaid, svg (drawn offline), html (one self-contained file)').choices(['text', ...GRAPH_FORMATS]).default('text'))
    .option('--out <file>', 'write the output to a file')
    .option('--truth <file>', 'ground truth {"edges": [[parent, child], ...]}: print the evaluation')
    .option('--threads <n>', 'worker threads (default: all cores)', parseThreads)
    .addOption(backendOption())
    .option('-q, --quiet', 'no progress bar')
    .option('-v, --verbose', 'explain each stage (models found, the measured null, families, metric and kurtosis layers and why, skipped tensors)')
    .addHelpText('after', `\nExamples:\n  $ mother recover samples/zoo-small --truth samples/zoo-small/truth.json\n  $ mother recover samples/zoo-small/ft\n  $ mother recover ./models --metric rank --layers 'attention\\.value' --json --out graph.json\n  $ mother recover ./zoo --truth ./zoo/truth.json\n  $ mother recover samples/zoo-small --format html --out tree.html\n  $ mother recover --hf-cache --metric rms --format json\n`)
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

/** Runs the CLI; resolves to the exit code. Never throws for a user mistake. */
export async function main(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const state: ProgramState = { code: EXIT_OK };
  const program = buildProgram(out, err, state);
  try {
    await program.parseAsync(argv);
    return state.code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT_OK;
      return EXIT_USAGE;
    }
    if (e instanceof MotherError) {
      err.write(`mother: ${e.message}\n`);
      const kind = errorKinds().get(e.code);
      if (kind === 'input') return EXIT_INPUT;
      if (kind === 'usage') return EXIT_USAGE;
      return EXIT_FAILURE;
    }
    throw e;
  }
}
