// After the pipeline (output): the model graph as an indented text tree for the terminal, with
// the evidence behind each family (what holds it together, its nearest outsider, the metric
// and kurtosis layers used) and why each singleton has no relative.
import type { ModelGraph, PairLink } from '../recover';
import { escapeControl } from './escape';
import { num } from './format';

/** "r = 0.87, z = 140" (and "identical" for exact copies). */
export function linkText(l: PairLink): string {
  if (l.identical) return 'identical values';
  return `r = ${num(l.r, 2)}, z = ${num(l.z, 3)}`;
}

/** The other model of a link seen from `id`. */
const other = (l: PairLink, id: string) => (l.a === id ? l.b : l.a);

/** An indented tree per family (distance and confidence per edge), then the singletons and why. */
export function renderTree(g: ModelGraph): string {
  const children = new Map<string, { child: string; distance: number; confidence: number | null }[]>();
  for (const e of g.edges) {
    if (!children.has(e.parent)) children.set(e.parent, []);
    children.get(e.parent)!.push({ child: e.child, distance: e.distance, confidence: e.confidence });
  }
  const kurt = new Map(g.models.map((m) => [m.id, m.kurtosis]));
  const copyOf = new Map<string, string[]>();
  for (const d of g.duplicates ?? []) for (const id of d.members) copyOf.set(id, d.members.filter((x) => x !== id));
  const lines: string[] = [];
  const singles: string[] = [];
  g.familyReports.forEach((f, i) => {
    if (f.members.length === 1) {
      const id = f.members[0];
      const near = f.evidence?.nearestOutsider;
      singles.push(near ? `  ${id}: no relative: strongest ${linkText(near)} (${near.verdict}) with ${other(near, id)}` : `  ${id}: not comparable with any other model (no tensor shared by name and shape)`);
      return;
    }
    lines.push(`family ${i + 1} (${f.members.length} models, ${f.mode} direction${g.options.direction === 'auto' ? ', chosen automatically' : ''})`);
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
    const walk = (id: string, prefix: string, last: boolean, isRoot: boolean, edge?: { distance: number; confidence: number | null }) => {
      const copies = copyOf.get(id);
      const copyNote = copies ? `, identical to ${copies.join(', ')}` : '';
      const label = isRoot
        ? `${id}  [root, kurtosis ${num(kurt.get(id) ?? null)}${copyNote}]`
        : `${id}  (distance ${num(edge!.distance)}, confidence ${edge!.confidence === null ? '-' : num(edge!.confidence, 3)}, kurtosis ${num(kurt.get(id) ?? null)}${copyNote})`;
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
