// After the pipeline (output): the model graph as an indented text tree for the terminal, with
// the evidence behind each family (what holds it together, its nearest outsider, the metric
// and kurtosis layers used) and why each singleton has no relative.
import { treeEdges } from '../recover';
import type { GraphEdge, ModelGraph, PairLink } from '../recover';
import { escapeControl } from './escape';
import { num } from './format';

/** "r = 0.87, z = 140" (and "identical" for exact copies). */
export function linkText(l: PairLink): string {
  if (l.identical) return 'identical values';
  return `r = ${num(l.r, 2)}, z = ${num(l.z, 3)}`;
}

/** How an adapter edge reads: its distance, rank and norm, and how its base was found. */
function adapterText(g: ModelGraph, id: string, distance: number): string {
  const a = g.adapters?.find((x) => x.id === id);
  if (!a) return `distance ${num(distance)}`;
  const out = a.outsideDistance?.length ?? 0;
  const outside = out === 0 ? '' : out === a.modules.length
    ? ` (every target tensor is outside the distance layers, the square 2-D tensors: e.g. ${a.outsideDistance![0]})`
    : ` (${out} of ${a.modules.length} target tensors outside the distance layers, e.g. ${a.outsideDistance![0]})`;
  return `${a.metric} distance ${num(distance)}${outside}, rank ${a.rank} over ${a.modules.length} modules, ||dW||_F ${num(a.frobenius)}; base ${a.resolvedBy === 'name' ? 'named in adapter_config.json' : a.resolvedBy === 'weights' ? 'by the alignment of dW with its weights' : 'by fit'}`;
}

/** The other model of a link seen from `id`. */
const other = (l: PairLink, id: string) => (l.a === id ? l.b : l.a);

/** An indented tree per family (distance and confidence per edge), then the singletons and why. */
export function renderTree(g: ModelGraph): string {
  const children = new Map<string, GraphEdge[]>();
  for (const e of treeEdges(g.edges)) {
    if (!children.has(e.parent)) children.set(e.parent, []);
    children.get(e.parent)!.push(e);
  }
  const mergeOf = new Map<string, GraphEdge[]>();
  for (const e of g.edges) if (e.relation === 'merge') mergeOf.set(e.child, [...(mergeOf.get(e.child) ?? []), e]);
  const edgeText = (e: GraphEdge): string => {
    if (e.relation === 'merge') return `merge of ${mergeOf.get(e.child)!.map((m) => `${m.parent} (weight ${num(m.weight ?? null, 3)})`).join(' + ')}, residual ${num(e.residual ?? null, 2)}`;
    if (e.relation === 'duplicate') return 'duplicate';
    if (e.relation === 'converted' || e.relation === 'quantized') return `${e.relation} copy, relative difference ${num(e.relativeDifference ?? null, 2)}`;
    return `${e.relation}, distance ${num(e.distance)}, confidence ${e.confidence === null ? '-' : num(e.confidence, 3)}${e.uncertain ? ', uncertain' : ''}`;
  };
  const kurt = new Map(g.models.map((m) => [m.id, m.kurtosis]));
  const copyOf = new Map<string, string[]>();
  for (const d of g.duplicates ?? []) for (const id of d.members) copyOf.set(id, d.members.filter((x) => x !== id));
  const lines: string[] = [];
  const singles: string[] = [];
  g.familyReports.forEach((f, i) => {
    if (f.members.length === 1) {
      const id = f.members[0];
      const adapter = g.adapters?.find((a) => a.id === id);
      if (adapter) {
        singles.push(`  ${id}: PEFT LoRA adapter (r ${adapter.r}, ||dW||_F ${num(adapter.frobenius)}): ${adapter.why}`);
        return;
      }
      const near = f.evidence?.nearestOutsider;
      singles.push(near ? `  ${id}: no relative: strongest ${linkText(near)} (${near.verdict}) with ${other(near, id)}` : `  ${id}: not comparable with any other model (no tensor shared by name and shape)`);
      return;
    }
    lines.push(`family ${i + 1} (${f.members.length} models, clock ${f.clock.used}${f.clock.agreement === null ? '' : ` agreeing on ${(100 * f.clock.agreement).toFixed(0)} % of ancestor-descendant pairs`}${f.clock.chosen ? ', chosen automatically' : ', given'}${f.clock.rootMargin === null ? '' : `; root margin over the best clock rooting it elsewhere ${(100 * f.clock.rootMargin).toFixed(0)} points${f.clock.rootMargin === 0 ? ': the root is uncertain' : ''}`})`);
    if (f.metric) lines.push(`  metric ${f.metric.used}${f.metric.chosen ? `: ${f.metric.why}` : ''}; kurtosis layers: ${f.kurtosisLayers.why}`);
    const ev = f.evidence;
    if (ev) {
      const parts: string[] = [];
      if (ev.weakestLink) parts.push(`held together by links of ${ev.weakestLink.identical ? 'identical values' : `r >= ${num(ev.weakestLink.r, 2)}, z >= ${num(ev.weakestLink.z, 3)}`} (weakest: ${ev.weakestLink.a} - ${ev.weakestLink.b})`);
      if (ev.nearestOutsider) {
        const inside = f.members.includes(ev.nearestOutsider.a) ? ev.nearestOutsider.a : ev.nearestOutsider.b;
        parts.push(`nearest other model: ${other(ev.nearestOutsider, inside)} at ${linkText(ev.nearestOutsider)} (${ev.nearestOutsider.verdict})`);
      }
      if (parts.length) lines.push(`  ${parts.join('; ')}`);
    }
    const walk = (id: string, prefix: string, last: boolean, isRoot: boolean, edge?: GraphEdge) => {
      const copies = copyOf.get(id);
      const copyNote = copies ? `, identical to ${copies.join(', ')}` : '';
      const label = isRoot
        ? `${id}  [root, kurtosis ${num(kurt.get(id) ?? null)}${copyNote}]`
        : g.adapters?.some((a) => a.id === id)
        ? edge!.relation === 'adapter'
          ? `${id}  (PEFT LoRA adapter, ${adapterText(g, id, edge!.distance)})`
          : `${id}  (PEFT LoRA adapter, ${edgeText(edge!)} of ${edge!.parent})`
        : `${id}  (${edgeText(edge!)}, kurtosis ${num(kurt.get(id) ?? null)}${copyNote})`;
      lines.push(isRoot ? label : `${prefix}${last ? '└─ ' : '├─ '}${label}`);
      const kids = (children.get(id) ?? []).sort((a, b) => (a.child < b.child ? -1 : 1));
      kids.forEach((k, j) => walk(k.child, isRoot ? '' : prefix + (last ? '   ' : '│  '), j === kids.length - 1, false, k));
    };
    walk(f.root, '', true, true);
    lines.push('');
  });
  if (singles.length) lines.push(`no relatives found (${singles.length}):`, ...singles, '');
  const undecided = (g.relatedness?.groups ?? []).reduce((a, x) => a + x.verdicts.undecided, 0);
  if (undecided) lines.push(`${undecided} pair(s) undecided (too little evidence either way; not joined): see --pairs`, '');
  // each line is one line: a name holding a newline or an ESC sequence is shown escaped
  return lines.map(escapeControl).join('\n');
}
