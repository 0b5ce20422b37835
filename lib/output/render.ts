// After the pipeline (output): the formats of a model graph: DOT, Newick, Mermaid, SVG
// (Graphviz compiled to wasm, no network, no native dependency) and a self-contained HTML
// report.
import { check } from '../core/validate';
import { treeEdges } from '../recover';
import type { GraphEdge, ModelGraph } from '../recover';

/** An edge's label: its relation, the distance and confidence (a merge's weight). */
const edgeLabel = (e: GraphEdge) => `${e.relation}${e.relation === 'merge' ? ` ${fmt(e.weight ?? null)}` : ''} ${fmt(e.distance)} (${fmt(e.confidence)})`;
/** DOT style of an edge: dashed when uncertain, dotted for copies. */
const edgeStyle = (e: GraphEdge) => (e.uncertain ? ', style=dashed' : e.relation === 'duplicate' || e.relation === 'converted' || e.relation === 'quantized' ? ', style=dotted' : '');
import { graphNum as fmt } from './format';
import { linkText } from './tree';

export const GRAPH_FORMATS = ['json', 'dot', 'newick', 'mermaid', 'svg', 'html'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

function dotString(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

/** Graphviz DOT: one cluster per family, edges labelled with distance and confidence. */
export function toDot(g: ModelGraph): string {
  const lines = ['digraph mother {', '  rankdir=TB;', '  node [shape=box, style="rounded", fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=10];'];
  const kurt = new Map(g.models.map((m) => [m.id, m.kurtosis]));
  g.families.forEach((fam, i) => {
    lines.push(`  subgraph cluster_${i} {`, `    label=${dotString(`family ${i + 1}`)};`, '    color="#999999";');
    for (const id of fam) {
      const root = g.roots.includes(id);
      lines.push(`    ${dotString(id)} [label=${dotString(`${id}\nkurtosis ${fmt(kurt.get(id) ?? null)}`)}${root && fam.length > 1 ? ', penwidth=2' : ''}];`);
    }
    lines.push('  }');
  });
  for (const e of g.edges) {
    lines.push(`  ${dotString(e.parent)} -> ${dotString(e.child)} [label=${dotString(edgeLabel(e))}${edgeStyle(e)}];`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** Newick label: quoted when it holds any character Newick reserves. */
export function newickLabel(id: string): string {
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

/** Mermaid flowchart (renders in GitHub markdown). */
export function toMermaid(g: ModelGraph): string {
  const key = new Map(g.models.map((m, i) => [m.id, `m${i}`]));
  const esc = (s: string) => s.replace(/"/g, '#quot;');
  const lines = ['flowchart TD'];
  g.families.forEach((fam, i) => {
    lines.push(`  subgraph family${i + 1}["family ${i + 1}"]`);
    for (const id of fam) lines.push(`    ${key.get(id)}["${esc(id)}"]`);
    lines.push('  end');
  });
  for (const e of g.edges) lines.push(`  ${key.get(e.parent)} ${e.uncertain ? '-.->' : '-->'}|${e.relation} ${fmt(e.distance)}| ${key.get(e.child)}`);
  return lines.join('\n') + '\n';
}

/** SVG drawn offline by Graphviz (compiled to wasm: @viz-js/viz). */
export async function toSvg(g: ModelGraph): Promise<string> {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { instance } = require('@viz-js/viz') as { instance: () => Promise<{ renderString: (dot: string, o: { format: string }) => string }> };
  const viz = await instance();
  return viz.renderString(toDot(g), { format: 'svg' });
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
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
<p>${g.models.length} models, ${g.families.length} families; metric ${escapeHtml(g.options.metric)}, direction ${escapeHtml(String(g.options.direction))}, lambda ${g.options.lambda}, families ${escapeHtml(String(g.options.families))}.</p>
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
${g.duplicates.length ? `<h2>Exact copies</h2>\n<table><tr><th>identical models</th></tr>\n${g.duplicates.map((d) => row([d.members.join(' = ')])).join('\n')}\n</table>` : ''}
</body></html>
`;
}

/** Renders the graph in `format` (JSON: the versioned model graph document). */
export async function renderGraph(g: ModelGraph, format: GraphFormat): Promise<string> {
  check.oneOf(GRAPH_FORMATS)(format, 'format');
  switch (format) {
    case 'json': return JSON.stringify(g, null, 2) + '\n';
    case 'dot': return toDot(g);
    case 'newick': return toNewick(g);
    case 'mermaid': return toMermaid(g);
    case 'svg': return toSvg(g);
    case 'html': return toHtml(g);
  }
}
