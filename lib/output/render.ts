// After the pipeline (output): the formats of a model graph: DOT, Newick, Mermaid, SVG
// (Graphviz compiled to wasm, no network, no native dependency) and a self-contained HTML
// report.
import { check } from '../core/validate';
import { checkGraph, treeEdges } from '../recover';
import type { GraphEdge, ModelGraph } from '../recover';
import { escapeControl, escapeHtml, safeJson } from './escape';

/** An edge's label: its relation, the distance and confidence (a merge's weight). */
const edgeLabel = (e: GraphEdge) => `${e.relation}${e.relation === 'merge' ? ` ${fmt(e.weight ?? null)}` : ''} ${fmt(e.distance)} (${fmt(e.confidence)})`;
/** DOT style of an edge: dashed when uncertain, dotted for copies. */
const edgeStyle = (e: GraphEdge) => (e.uncertain ? ', style=dashed' : e.relation === 'duplicate' || e.relation === 'converted' || e.relation === 'quantized' ? ', style=dotted' : '');
import { graphNum as fmt } from './format';
import { linkText } from './tree';

export const GRAPH_FORMATS = ['json', 'dot', 'newick', 'mermaid', 'svg', 'html'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

/** A DOT string; `s` is made of escaped names (escapeControl) and the label's own line breaks. */
function dotString(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

/** A model id as a DOT node name or label line: control characters made visible first. */
const dotId = (id: string) => dotString(escapeControl(id));

export interface DotOptions {
  /** A legend cluster: what the labels and marks mean (the SVG and HTML pictures have one). */
  legend?: boolean;
  /** Families per row at most (the SVG and HTML pictures wrap them into rows); default: one row. */
  rowWidth?: number;
}

const EDGE_STYLE = {
  correct: '',
  reversed: ', color="#d97706", fontcolor="#d97706", penwidth=2',
  wrong: ', color="#dc2626", fontcolor="#dc2626", penwidth=2',
  missing: ', color="#6b7280", fontcolor="#6b7280", style=dashed, constraint=false',
};

/** How wide a family is drawn: its largest generation (models at one depth of its tree). */
function familyWidths(g: ModelGraph): number[] {
  const parent = new Map(g.edges.map((e) => [e.child, e.parent]));
  const depth = (id: string) => {
    let d = 0;
    for (let p = parent.get(id), guard = 0; p !== undefined && guard < 10000; p = parent.get(p), guard++) d++;
    return d;
  };
  return g.families.map((fam) => {
    const per = new Map<number, number>();
    for (const id of fam) per.set(depth(id), (per.get(depth(id)) ?? 0) + 1);
    return Math.max(1, ...per.values());
  });
}

/**
 * Graphviz DOT: one cluster per family (the root in bold), edges labelled "distance
 * (confidence)". With an evaluation in the graph (--truth), reversed and wrong edges are drawn
 * in colour and labelled so, and missing truth edges are added dashed. `legend` adds a key;
 * `rowWidth` wraps the families into rows of about that many models across.
 */
export function toDot(g: ModelGraph, options: DotOptions = {}): string {
  const lines = ['digraph mother {', '  rankdir=TB;', '  newrank=true;', '  node [shape=box, style="rounded", fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=10];'];
  const kurt = new Map(g.models.map((m) => [m.id, m.kurtosis]));
  g.families.forEach((fam, i) => {
    lines.push(`  subgraph cluster_${i} {`, `    label=${dotString(`family ${i + 1}`)};`, '    color="#999999";');
    for (const id of fam) {
      const root = g.roots.includes(id);
      lines.push(`    ${dotId(id)} [label=${dotString(`${escapeControl(id)}\nkurtosis ${fmt(kurt.get(id) ?? null)}`)}${root && fam.length > 1 ? ', penwidth=2' : ''}];`);
    }
    lines.push('  }');
  });
  const ev = g.evaluation;
  const kindOf = new Map<string, 'reversed' | 'wrong'>();
  for (const e of ev?.edges.reversed ?? []) kindOf.set(`${e.parent}\u0000${e.child}`, 'reversed');
  for (const e of ev?.edges.wrong ?? []) kindOf.set(`${e.parent}\u0000${e.child}`, 'wrong');
  for (const e of g.edges) {
    const kind = kindOf.get(`${e.parent}\u0000${e.child}`);
    const label = `${kind ? `${kind}: ` : ''}${edgeLabel(e)}`;
    lines.push(`  ${dotId(e.parent)} -> ${dotId(e.child)} [label=${dotString(label)}${EDGE_STYLE[kind ?? 'correct']}${edgeStyle(e)}];`);
  }
  for (const e of ev?.edges.missing ?? []) lines.push(`  ${dotId(e.parent)} -> ${dotId(e.child)} [label="missing"${EDGE_STYLE.missing}];`);
  if (options.rowWidth && g.families.length > 1) {
    // rows: an invisible edge from a leaf of the first family of a row to the root of the first of the next
    const widths = familyWidths(g);
    const rowStarts: number[] = [0];
    let used = 0;
    widths.forEach((w, i) => {
      if (i > 0 && used + w > options.rowWidth!) {
        rowStarts.push(i);
        used = 0;
      }
      used += w;
    });
    const hasChild = new Set(g.edges.map((e) => e.parent));
    const rootOf = (i: number) => g.familyReports[i]?.root ?? g.families[i][0];
    for (let r = 1; r < rowStarts.length; r++) {
      for (let i = rowStarts[r - 1]; i < rowStarts[r]; i++) {
        const leaves = g.families[i].filter((id) => !hasChild.has(id));
        const from = leaves[leaves.length - 1] ?? g.families[i][0];
        lines.push(`  ${dotId(from)} -> ${dotId(rootOf(rowStarts[r]))} [style=invis, weight=0];`);
      }
    }
  }
  if (options.legend) {
    const key = [
      'box: a model (its summed kurtosis); bold box: the root of its family',
      'edge parent -> child, labelled relation distance (confidence); a merge: relation, weight, distance',
      'dashed: uncertain (confidence below 0.5 or none); dotted: a copy (duplicate, converted, quantized)',
      'confidence = the edge\'s bootstrap support: the fraction of 100 resamplings of the layers',
      '  on which the whole direction stage gives this parent to this child; -: a copy or merge',
      ...(ev ? ['against the truth: orange = reversed, red = wrong, dashed grey = missing'] : []),
    ];
    lines.push('  subgraph cluster_legend {', '    label="legend"; color="#cccccc"; fontname="Helvetica";', `    legend [shape=plaintext, fontsize=10, label=${dotString(key.join('\\l') + '\\l').replace(/\\\\l/g, '\\l')}];`, '  }');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** Newick label: quoted when it holds any character Newick reserves. */
export function newickLabel(raw: string): string {
  const id = escapeControl(raw);
  return /^[^\s()[\]':;,]+$/.test(id) ? id : `'${id.replace(/'/g, "''")}'`;
}

/** Newick: one tree per family (singletons included), branch lengths = distances. */
export function toNewick(g: ModelGraph): string {
  const kids = new Map<string, { child: string; distance: number }[]>();
  for (const e of treeEdges(g.edges)) {
    if (!kids.has(e.parent)) kids.set(e.parent, []);
    kids.get(e.parent)!.push({ child: e.child, distance: e.distance });
  }
  const node = (id: string): string => {
    const ch = (kids.get(id) ?? []).slice().sort((a, b) => (a.child < b.child ? -1 : 1));
    const inner = ch.length ? `(${ch.map((c) => `${node(c.child)}:${c.distance}`).join(',')})` : '';
    return inner + newickLabel(id);
  };
  return g.familyReports.map((f) => node(f.root) + ';').join('\n') + '\n';
}

/**
 * Mermaid flowchart (renders in GitHub markdown): one top-down subgraph per family, in order,
 * each holding its edges (labelled "relation distance (confidence)", dotted when uncertain); the root is drawn as a stadium and
 * labelled root.
 */
export function toMermaid(g: ModelGraph): string {
  const key = new Map(g.models.map((m, i) => [m.id, `m${i}`]));
  const esc = (s: string) => escapeControl(s).replace(/"/g, '#quot;');
  const familyOf = new Map<string, number>();
  g.families.forEach((fam, i) => fam.forEach((id) => familyOf.set(id, i)));
  const lines = ['flowchart TD'];
  g.families.forEach((fam, i) => {
    lines.push(`  subgraph family${i + 1}["family ${i + 1}"]`, '    direction TB');
    for (const id of fam) {
      const root = g.roots.includes(id) && fam.length > 1;
      lines.push(root ? `    ${key.get(id)}(["${esc(id)} (root)"])` : `    ${key.get(id)}["${esc(id)}"]`);
    }
    for (const e of g.edges) {
      if (familyOf.get(e.child) !== i) continue;
      lines.push(`    ${key.get(e.parent)} ${e.uncertain ? '-.->' : '-->'}|"${e.relation} ${fmt(e.distance)} (${fmt(e.confidence)})"| ${key.get(e.child)}`);
    }
    lines.push('  end');
  });
  return lines.join('\n') + '\n';
}

/** SVG drawn offline by Graphviz (compiled to wasm: @viz-js/viz). */
export async function toSvg(g: ModelGraph): Promise<string> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { instance } = require('@viz-js/viz') as { instance: () => Promise<{ renderString: (dot: string, o: { format: string }) => string }> };
  const viz = await instance();
  return viz.renderString(toDot(g, { legend: true, rowWidth: 8 }), { format: 'svg' });
}

/** The evaluation against the truth: the scores, then every edge that is not right. */
function evaluationHtml(ev: NonNullable<ModelGraph['evaluation']>, row: (cells: (string | number | null)[]) => string): string {
  const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}%`);
  const edges = [
    ...ev.edges.reversed.map((e) => row([e.parent, e.child, 'reversed', `the truth has ${e.child} -> ${e.parent}`])),
    ...ev.edges.wrong.map((e) => row([e.parent, e.child, 'wrong', e.truthParent === null ? `${e.child} is a root in the truth` : `truth parent: ${e.truthParent}`])),
    ...ev.edges.missing.map((e) => row([e.parent, e.child, 'missing', e.predictedParent === null ? `${e.child} is a root here` : `recovered parent: ${e.predictedParent}`])),
  ];
  return `<h2>Against the truth</h2>
<p>${escapeHtml(ev.truth ?? 'ground truth')}: directed edge accuracy ${pct(ev.directedAccuracy)}, undirected ${pct(ev.undirectedAccuracy)}, family accuracy ${pct(ev.clusteringAccuracy)}; ${ev.families.exact} of ${ev.families.truthFamilies} families exact, adjusted Rand index ${ev.families.adjustedRand.toFixed(3)}; ${ev.edges.correct.length} correct, ${ev.edges.reversed.length} reversed, ${ev.edges.wrong.length} wrong, ${ev.edges.missing.length} missing edges.</p>
${edges.length ? `<table><tr><th>parent</th><th>child</th><th>edge</th><th></th></tr>\n${edges.join('\n')}\n</table>` : ''}`;
}

/** One self-contained HTML file: the picture, the edges, the models, the options. */
export async function toHtml(g: ModelGraph): Promise<string> {
  const svg = await toSvg(g);
  const row = (cells: (string | number | null)[]) => `<tr>${cells.map((c) => `<td>${escapeHtml(String(c ?? '-'))}</td>`).join('')}</tr>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mother: model graph</title>
<style>body{font-family:Helvetica,Arial,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f4f4f4}.svg{overflow:auto;border:1px solid #eee;padding:1em}</style>
</head><body>
<h1>Model graph</h1>
<p>${g.models.length} model${g.models.length === 1 ? '' : 's'}, ${g.families.length} famil${g.families.length === 1 ? 'y' : 'ies'}; metric ${escapeHtml(g.options.metric)}, direction ${escapeHtml(String(g.options.direction))}, lambda ${g.options.lambda}, families ${escapeHtml(String(g.options.families))}.</p>
<div class="svg">${svg.replace(/^<\?xml[^>]*>\s*/, '').replace(/<!DOCTYPE[^>]*>\s*/, '')}</div>
<h2>Edges</h2>
<table><tr><th>parent</th><th>child</th><th>relation</th><th>weight</th><th>distance</th><th>confidence</th><th>uncertain</th></tr>
${g.edges.map((e) => row([e.parent, e.child, e.relation, e.weight === undefined ? null : fmt(e.weight), fmt(e.distance), fmt(e.confidence), e.uncertain ? 'yes' : 'no'])).join('\n')}
</table>
<h2>Models</h2>
<table><tr><th>id</th><th>architecture</th><th>parameters</th><th>kurtosis</th><th>path</th></tr>
${g.models.map((m) => row([m.id, m.architecture, m.params, fmt(m.kurtosis), m.path])).join('\n')}
</table>
<h2>Families</h2>
<table><tr><th>root</th><th>members</th><th>direction clock</th><th>metric</th><th>tree cost</th><th>clock agreement</th><th>weakest link</th><th>nearest other model</th></tr>
${g.familyReports.map((f) => row([f.root, f.members.join(', '), `${f.clock.used}${f.clock.chosen ? ' (chosen)' : ' (given)'}`, `${f.metric.used}${f.metric.chosen ? ` (${f.metric.why})` : ''}`, fmt(f.cost), fmt(f.clock.agreement),
    f.evidence.weakestLink ? `${f.evidence.weakestLink.a} - ${f.evidence.weakestLink.b}: ${linkText(f.evidence.weakestLink)}` : '-',
    f.evidence.nearestOutsider ? `${f.evidence.nearestOutsider.a} - ${f.evidence.nearestOutsider.b}: ${linkText(f.evidence.nearestOutsider)} (${f.evidence.nearestOutsider.verdict})` : '-'])).join('\n')}
</table>
${g.evaluation ? evaluationHtml(g.evaluation, row) : ''}
${g.duplicates.length ? `<h2>Exact copies</h2>\n<table><tr><th>identical models</th></tr>\n${g.duplicates.map((d) => row([d.members.join(' = ')])).join('\n')}\n</table>` : ''}
</body></html>
`;
}

/** Renders the graph in `format` (JSON: the versioned model graph document). */
export async function renderGraph(g: ModelGraph, format: GraphFormat): Promise<string> {
  check.oneOf(GRAPH_FORMATS)(format, 'format');
  checkGraph(g, 'graph');
  switch (format) {
    case 'json': return safeJson(JSON.stringify(g, null, 2)) + '\n';
    case 'dot': return toDot(g);
    case 'newick': return toNewick(g);
    case 'mermaid': return toMermaid(g);
    case 'svg': return toSvg(g);
    case 'html': return toHtml(g);
  }
}
