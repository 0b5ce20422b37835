// After the pipeline (output): the model graph as an indented text tree for the terminal.
import type { ModelGraph } from '../recover';
import { num } from './format';

/** An indented tree per family (distance and confidence per edge), then the singletons. */
export function renderTree(g: ModelGraph): string {
  const children = new Map<string, { child: string; distance: number; confidence: number | null }[]>();
  for (const e of g.edges) {
    if (!children.has(e.parent)) children.set(e.parent, []);
    children.get(e.parent)!.push({ child: e.child, distance: e.distance, confidence: e.confidence });
  }
  const kurt = new Map(g.models.map((m) => [m.id, m.kurtosis]));
  const lines: string[] = [];
  const singles: string[] = [];
  g.familyReports.forEach((f, i) => {
    if (f.members.length === 1) {
      singles.push(f.members[0]);
      return;
    }
    lines.push(`family ${i + 1} (${f.members.length} models, ${f.mode} direction${g.options.direction === 'auto' ? ', chosen automatically' : ''})`);
    const walk = (id: string, prefix: string, last: boolean, isRoot: boolean, edge?: { distance: number; confidence: number | null }) => {
      const label = isRoot
        ? `${id}  [root, kurtosis ${num(kurt.get(id) ?? null)}]`
        : `${id}  (distance ${num(edge!.distance)}, confidence ${edge!.confidence === null ? '-' : num(edge!.confidence, 3)}, kurtosis ${num(kurt.get(id) ?? null)})`;
      lines.push(isRoot ? label : `${prefix}${last ? '└─ ' : '├─ '}${label}`);
      const kids = (children.get(id) ?? []).sort((a, b) => (a.child < b.child ? -1 : 1));
      kids.forEach((k, j) => walk(k.child, isRoot ? '' : prefix + (last ? '   ' : '│  '), j === kids.length - 1, false, k));
    };
    walk(f.root, '', true, true);
    lines.push('');
  });
  if (singles.length) lines.push(`no relatives found (${singles.length}): ${singles.join(', ')}`, '');
  return lines.join('\n');
}
