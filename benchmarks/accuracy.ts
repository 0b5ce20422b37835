// `npm run bench:accuracy [-- ZOO_DIR ...]`: accuracy of `mother recover` on generated zoos
// (default: the committed samples/zoo-small; larger ones: benchmarks/generate_zoo.py).
//   1. The whole zoo recovered as ONE folder with the defaults (no method flags): exact
//      families and the adjusted Rand index against the truth's families (the connected
//      components of every truth edge, merges included), the paper's family accuracy and edge
//      accuracy (on `tree_edges` for a version-2 truth: each merge under its heavier parent).
//   2. The null calibration of the relatedness test on that run: the calibrated statistic z
//      between models of one tree, between independent runs, and its shifted null z' (the same
//      statistic with the relation broken), with the decision threshold and the margins.
//   3. Per split, the paper's protocol (K given, the paper's metric, layers and direction), next
//      to the same method computed independently (benchmarks/reference_mother.py), and the
//      same split with the families found by the relatedness test.
import * as path from 'node:path';

import { packageRoot } from '../lib/core/binding';
import { discoverModels } from '../lib/io/discovery';
import { evaluate, ModelGraph, recover, scoredEdges } from '../lib/recover';
import { studentUpperQuantile } from '../lib/method/distributions';
import { UnionFind } from '../lib/method/matrix';
import { machine, table } from './common';
import { PROTOCOL, readTruth, runSplit } from '../test/helpers/protocol';

const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}`);
const f2 = (x: number) => (Number.isFinite(x) ? (Math.abs(x) >= 1000 ? x.toFixed(0) : x.toFixed(2)) : '-');

interface ZooTruth {
  version?: number;
  models: { id: string; split: string; family: string; regime?: string }[];
  edges: [string, string][];
  tree_edges?: [string, string][];
  edge_info?: { parent: string; child: string; relation: string; regime: string; weight?: number }[];
}

/** The regime of each truth tree edge (v2: edge_info; v1: the split). */
function edgeRegimes(truth: ZooTruth): Map<string, string> {
  const info = new Map((truth.edge_info ?? []).map((e) => [`${e.parent}>${e.child}`, e.regime]));
  const split = new Map(truth.models.map((m) => [m.id, m.split]));
  const out = new Map<string, string>();
  for (const [p, c] of truth.tree_edges ?? truth.edges) out.set(`${p}>${c}`, info.get(`${p}>${c}`) ?? split.get(c) ?? '?');
  return out;
}

/** Directed accuracy per regime: [regime, edges, right by the defaults, right by the paper's protocol]. */
function regimeRows(truth: ZooTruth, defaults: ModelGraph, protocol: ModelGraph[]): string[][] {
  const got = new Set(scoredEdges(defaults.edges, truth.tree_edges ?? truth.edges).map((e) => `${e.parent}>${e.child}`));
  const paper = new Set(protocol.flatMap((g) => g.edges.map((e) => `${e.parent}>${e.child}`)));
  const inPaper = new Set(protocol.flatMap((g) => g.models.map((m) => m.id)));
  const per = new Map<string, { n: number; ok: number; paperN: number; paperOk: number }>();
  for (const [k, regime] of edgeRegimes(truth)) {
    const r = per.get(regime) ?? { n: 0, ok: 0, paperN: 0, paperOk: 0 };
    r.n++;
    if (got.has(k)) r.ok++;
    const [p, c] = k.split('>');
    if (inPaper.has(p) && inPaper.has(c)) {
      r.paperN++;
      if (paper.has(k)) r.paperOk++;
    }
    per.set(regime, r);
  }
  const rows = [...per.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([regime, r]) => [
    regime, String(r.n), `${r.ok} (${pct(r.ok / r.n)} %)`, r.paperN ? `${r.paperOk} / ${r.paperN} (${pct(r.paperOk / r.paperN)} %)` : 'n/a (no protocol split)',
  ]);
  const all = [...per.values()].reduce((a, r) => ({ n: a.n + r.n, ok: a.ok + r.ok, paperN: a.paperN + r.paperN, paperOk: a.paperOk + r.paperOk }), { n: 0, ok: 0, paperN: 0, paperOk: 0 });
  rows.push(['all', String(all.n), `${all.ok} (${pct(all.ok / all.n)} %)`, all.paperN ? `${all.paperOk} / ${all.paperN} (${pct(all.paperOk / all.paperN)} %)` : 'n/a']);
  return rows;
}

/** Relation types: per truth relation, edges and how many come out as that edge with that relation (a merge: with its weight within 0.05). */
function relationRows(truth: ZooTruth, g: ModelGraph): string[][] {
  const got = new Map(g.edges.map((e) => [`${e.parent}>${e.child}`, e]));
  const per = new Map<string, { n: number; ok: number; wrong: Map<string, number> }>();
  for (const e of truth.edge_info ?? []) {
    const r = per.get(e.relation) ?? { n: 0, ok: 0, wrong: new Map() };
    r.n++;
    const h = got.get(`${e.parent}>${e.child}`);
    const right = !!h && h.relation === e.relation && (e.relation !== 'merge' || Math.abs((h.weight ?? NaN) - (e.weight ?? NaN)) <= 0.05);
    if (right) r.ok++;
    else {
      const why = !h ? 'no such edge' : h.relation !== e.relation ? `as ${h.relation}` : `weight ${f2(h.weight ?? NaN)} vs ${e.weight}`;
      r.wrong.set(why, (r.wrong.get(why) ?? 0) + 1);
    }
    per.set(e.relation, r);
  }
  const rows = [...per.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([rel, r]) => [rel, String(r.n), `${r.ok} (${pct(r.ok / r.n)} %)`, [...r.wrong].map(([k, v]) => `${v} ${k}`).join(', ') || '-']);
  const n = [...per.values()].reduce((a, r) => a + r.n, 0), ok = [...per.values()].reduce((a, r) => a + r.ok, 0);
  if (n) rows.push(['all', String(n), `${ok} (${pct(ok / n)} %)`, '']);
  return rows;
}

/** Reliability of the training edges' confidence: per bin, edges and how many are truth edges. */
function reliabilityRows(truth: ZooTruth, graphs: ModelGraph[]): string[][] {
  const bins: [string, (c: number | null) => boolean][] = [
    ['none', (c) => c === null],
    ['0 - 0.5 (uncertain)', (c) => c !== null && c < 0.5],
    ['0.5 - 0.7', (c) => c !== null && c >= 0.5 && c < 0.7],
    ['0.7 - 0.9', (c) => c !== null && c >= 0.7 && c < 0.9],
    ['0.9 - 0.99', (c) => c !== null && c >= 0.9 && c < 0.99],
    ['>= 0.99', (c) => c !== null && c >= 0.99],
  ];
  const t = new Set((truth.tree_edges ?? truth.edges).map(([p, c]) => `${p}>${c}`));
  const edges = graphs.flatMap((g) => g.edges).filter((e) => e.relation === 'finetune' || e.relation === 'adapter');
  const row = (name: string, es: typeof edges) => {
    const ok = es.filter((e) => t.has(`${e.parent}>${e.child}`)).length;
    const sup = es.filter((e) => e.confidence !== null);
    const mean = sup.length ? sup.reduce((a, e) => a + e.confidence!, 0) / sup.length : NaN;
    return [name, String(es.length), sup.length ? f2(mean) : '-', es.length ? `${ok} (${pct(ok / es.length)} %)` : '-', es.length ? String(es.filter((e) => e.uncertain).length) : '-'];
  };
  return [...bins.map(([name, f]) => row(name, edges.filter((e) => f(e.confidence)))), row('all', edges)];
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const x = q * (sorted.length - 1);
  const lo = Math.floor(x), hi = Math.ceil(x);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}

function distributionRow(name: string, values: number[], extra: string[] = []): string[] {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  const rms = Math.sqrt(v.reduce((a, b) => a + b * b, 0) / Math.max(1, v.length));
  return [name, String(v.length), f2(v[0]), f2(quantile(v, 0.01)), f2(quantile(v, 0.5)), f2(quantile(v, 0.99)), f2(v[v.length - 1]), f2(rms), ...extra];
}

async function wholeZoo(zoo: string, truth: ZooTruth): Promise<{ g: ModelGraph; row: string[]; wrong: string[]; truthFamily: Map<string, number> }> {
  const found = await discoverModels(zoo);
  const t0 = Date.now();
  const g = await recover(found.map((m) => ({ id: m.id, path: m.path })), { pairs: true });
  const seconds = (Date.now() - t0) / 1000;
  const ev = evaluate(g, truth);
  const fa = ev.familyAgreement;
  const ids = g.models.map((m) => m.id);
  const index = new Map(ids.map((id, i) => [id, i]));
  const uf = new UnionFind(ids.length);
  for (const [p, c] of truth.edges) if (index.has(p) && index.has(c)) uf.union(index.get(p)!, index.get(c)!);
  const labels = uf.labels(ids.length);
  const truthFamily = new Map(ids.map((id, i) => [id, labels[i]]));
  const wrong = fa.wrong.map((w) => `  truth family {${w.truth.join(', ')}} recovered as ${w.predicted.map((f) => `{${f.join(', ')}}`).join(' + ')}`);
  const missing = truth.models.filter((m) => !index.has(m.id)).length;
  const row = [
    path.basename(zoo) + (truth.version === 2 ? ' (truth v2)' : ''),
    `${g.models.length}${missing ? ` (${missing} not found)` : ''}`,
    String(fa.truthFamilies),
    String(fa.predictedFamilies),
    `${fa.exact} / ${fa.truthFamilies} (${pct(fa.exactFraction)} %)`,
    fa.adjustedRand.toFixed(3),
    pct(ev.clusteringAccuracy),
    pct(ev.directedAccuracy),
    moduloDuplicates(g, truth),
    pct(ev.undirectedAccuracy),
    String(g.duplicates.length),
    seconds.toFixed(1),
  ];
  return { g, row, wrong, truthFamily };
}

/**
 * Directed accuracy with each set of identical models (graph.duplicates) as one node, in the
 * truth and in the recovery alike: identical values cannot tell an original from its copy, and
 * mother takes the first in input order as the source, so an original's children and copies
 * may hang under its identical twin. Edges inside a set are left out. "right / edges (%)".
 */
function moduloDuplicates(g: ModelGraph, truth: ZooTruth): string {
  const canon = new Map<string, string>();
  for (const d of g.duplicates) for (const m of d.members) canon.set(m, d.members[0]);
  const c = (x: string) => canon.get(x) ?? x;
  const got = new Set(g.edges.map((e) => `${c(e.parent)}>${c(e.child)}`));
  let right = 0, total = 0;
  for (const [p, ch] of truth.tree_edges ?? truth.edges) {
    if (c(p) === c(ch)) continue;
    total++;
    if (got.has(`${c(p)}>${c(ch)}`)) right++;
  }
  return total ? `${right} / ${total} (${pct(right / total)} %)` : '-';
}

function calibration(g: ModelGraph, truthFamily: Map<string, number>): { rows: string[][]; margins: string[][] } {
  const pairs = (g.pairs ?? []).filter((p) => p.z !== null);
  const within = pairs.filter((p) => truthFamily.get(p.a) === truthFamily.get(p.b));
  const across = pairs.filter((p) => truthFamily.get(p.a) !== truthFamily.get(p.b));
  const verdicts = (ps: typeof pairs) => {
    const c: Record<string, number> = {};
    for (const p of ps) c[p.verdict] = (c[p.verdict] ?? 0) + 1;
    return Object.entries(c).map(([k, v]) => `${v} ${k}`).join(', ');
  };
  const rows = [
    distributionRow('z, within trees (same truth family)', within.map((p) => p.z!), [verdicts(within)]),
    distributionRow('z, independent runs (other families)', across.map((p) => p.z!), [verdicts(across)]),
    distributionRow("z', shifted null, within trees", within.map((p) => p.nullZ!), ['']),
    distributionRow("z', shifted null, independent runs", across.map((p) => p.nullZ!), ['']),
    distributionRow('r, within trees', within.map((p) => p.r!), ['']),
    distributionRow('r, independent runs', across.map((p) => p.r!), ['']),
  ];
  const margins = g.relatedness.groups.map((grp) => {
    const members = new Set(grp.members);
    const inGroup = (p: (typeof pairs)[number]) => members.has(p.a) && members.has(p.b);
    const w = within.filter(inGroup).map((p) => p.z!);
    const a = across.filter(inGroup).map((p) => p.z!);
    const threshold = studentUpperQuantile(g.relatedness.alpha / Math.max(1, grp.pairs), Math.max(1, grp.null.draws));
    const minW = w.length ? Math.min(...w) : NaN, maxA = a.length ? Math.max(...a) : NaN;
    return [
      `${grp.members.length} models (${[...new Set(grp.members.map((id) => g.models.find((m) => m.id === id)!.architecture))].join(', ')})`,
      String(grp.pairs),
      `${f2(grp.null.kappa)} (measured ${f2(grp.null.measured)}, ${grp.null.draws} draws, ${grp.null.excludedRelated} related pairs left out)`,
      f2(threshold),
      f2(minW),
      f2(maxA),
      Number.isFinite(minW) ? `${f2(minW / threshold)}x` : '-',
      Number.isFinite(maxA) ? `${f2(threshold - maxA)}` : '-',
    ];
  });
  return { rows, margins };
}

async function main(): Promise<void> {
  const zoos = (process.argv.length > 2 ? process.argv.slice(2) : [path.join(packageRoot(), 'samples', 'zoo-small')]).map((z) => path.resolve(z));
  console.log(`# mother accuracy benchmark\nmachine: ${machine()}\ndate: ${new Date().toISOString()}\n`);
  const whole: string[][] = [];
  const graphs: ModelGraph[] = [];
  const details: string[] = [];
  for (const zoo of zoos) {
    const truth = readTruth(zoo) as unknown as ZooTruth;
    const w = await wholeZoo(zoo, truth);
    whole.push(w.row);
    graphs.push(w.g);
    const c = calibration(w.g, w.truthFamily);
    details.push(
      `\n## ${zoo}: null calibration of the relatedness test (whole zoo, defaults)\n`,
      table(['statistic', 'pairs', 'min', '1%', 'median', '99%', 'max', 'RMS', 'verdicts'], c.rows),
      '\nper comparability group: the null variance used, the threshold z* (one-sided Student t at alpha/m), the smallest z within trees, the largest z between independent runs\n',
      table(['group', 'pairs m', 'null variance kappa', 'threshold z*', 'min z within', 'max z independent', 'min within / z*', 'z* - max independent'], c.margins),
      ...(w.wrong.length ? ['\nfamilies not recovered exactly:', ...w.wrong] : []),
    );
  }
  console.log('## whole zoo as one folder, defaults (`mother recover ZOO`, no method flags)\n');
  console.log(table(['zoo', 'models', 'truth families', 'recovered', 'exact families', 'adjusted Rand', 'family % (paper)', 'directed %', 'directed %, duplicates as one', 'undirected %', 'copy sets', 'seconds'], whole));
  console.log(details.join('\n'));

  for (const [z, zoo] of zoos.entries()) {
    const truth = readTruth(zoo);
    const rows: string[][] = [];
    const protocolGraphs: ModelGraph[] = [];
    for (const split of Object.keys(PROTOCOL)) {
      if (!truth.models.some((m) => m.split === split)) continue;
      const given = await runSplit(zoo, truth, split, true);
      protocolGraphs.push(given.graph);
      const auto = await runSplit(zoo, truth, split, false);
      const p = PROTOCOL[split];
      rows.push([
        split,
        `${given.models} / ${given.families}`,
        `${p.metric}, ${p.direction}`,
        pct(given.mother.directedAccuracy),
        pct(given.reference.directedAccuracy),
        pct(given.mother.undirectedAccuracy),
        pct(given.reference.undirectedAccuracy),
        pct(given.mother.clusteringAccuracy),
        pct(auto.mother.directedAccuracy),
        pct(auto.mother.clusteringAccuracy),
        `${given.motherSeconds.toFixed(2)} / ${given.referenceSeconds.toFixed(2)}`,
      ]);
    }
    console.log(`\n## ${zoo}: per split, the paper's protocol (K given) and families by the relatedness test\n`);
    console.log(
      table(
        ['split', 'models / trees', 'distance, direction', 'directed % (K given)', 'reference directed %', 'undirected %', 'reference undirected %', 'family % (K given)', 'directed % (auto families)', 'family % (auto)', 'seconds mother / reference'],
        rows,
      ),
    );
    const zt = truth as unknown as ZooTruth;
    console.log(`\n## ${zoo}: directed edge accuracy per regime (whole zoo, defaults) next to the paper's protocol (per split: families given, metric, layers and kurtosis mode set by hand)\n`);
    console.log(table(['regime', 'truth tree edges', 'right, defaults', "right, paper's protocol"], regimeRows(zt, graphs[z], protocolGraphs)));
    if (zt.edge_info) {
      console.log(`\n## ${zoo}: relation types (whole zoo, defaults; every truth edge, both parents of a merge)\n`);
      console.log(table(['relation', 'truth edges', 'right', 'wrong'], relationRows(zt, graphs[z])));
    }
    console.log(`\n## ${zoo}: reliability of the confidence (bootstrap support) of training edges (whole zoo, defaults)\n`);
    console.log(table(['support', 'edges', 'mean support', 'truth edges among them', 'marked uncertain'], reliabilityRows(zt, [graphs[z]])));
  }
  console.log('\nreference = the same method computed independently with numpy/scipy/networkx (benchmarks/reference_mother.py), K given; splits outside the protocol (copies) are in the whole-zoo table only.');
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
