// `npm run bench:accuracy [-- ZOO_DIR]`: accuracy of `mother recover` per split of a generated
// zoo (default: the committed samples/zoo-small; larger ones: benchmarks/generate_zoo.py),
// with families given (the paper's protocol) and found automatically, next to the same
// method computed independently (benchmarks/reference_mother.py) on the same files.
import * as path from 'node:path';

import { packageRoot } from '../lib/core/binding';
import { machine, table } from './common';
import { PROTOCOL, readTruth, runSplit } from '../test/helpers/protocol';

const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(1)}`);

async function main(): Promise<void> {
  const zoo = path.resolve(process.argv[2] ?? path.join(packageRoot(), 'samples', 'zoo-small'));
  const truth = readTruth(zoo);
  console.log(`# mother accuracy benchmark\nzoo: ${zoo}\nmachine: ${machine()}\ndate: ${new Date().toISOString()}\n`);
  const rows: string[][] = [];
  for (const split of Object.keys(PROTOCOL)) {
    if (!truth.models.some((m) => m.split === split)) continue;
    const given = await runSplit(zoo, truth, split, true);
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
      pct(auto.mother.directedAccuracy),
      pct(auto.mother.clusteringAccuracy),
      `${given.motherSeconds.toFixed(2)} / ${given.referenceSeconds.toFixed(2)}`,
    ]);
  }
  console.log(
    table(
      ['split', 'models / trees', 'distance, direction', 'directed % (K given)', 'reference directed %', 'undirected %', 'reference undirected %', 'directed % (auto families)', 'family % (auto)', 'seconds mother / reference'],
      rows,
    ),
  );
  console.log('\nreference = the same method computed independently with numpy/scipy/networkx (benchmarks/reference_mother.py), K given.');
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
