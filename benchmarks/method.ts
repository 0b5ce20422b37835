// `npm run bench -- method`: wall time of the graph algorithms at the sizes a model hub
// gives them, against their textbook-complexity budget. These were timed assertions in the
// unit tests; timing lives here so that a loaded machine cannot fail a correctness test.
import { minimumArborescenceMatrix } from '../lib/method/arborescence';
import { wardLinkage } from '../lib/method/clustering';
import { maxWeightAssignment } from '../lib/method/evaluation';
import { Rng } from '../test/helpers/reference';
import { median, table } from './common';

function time(reps: number, fn: () => void): number {
  const ms: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(ms);
}

export function benchMethod(reps = Number(process.env.MOTHER_BENCH_REPS || 3)): string {
  const rows: (string | number)[][] = [];
  const add = (what: string, budgetMs: number, ms: number) =>
    rows.push([what, ms.toFixed(0), budgetMs, (ms / budgetMs).toFixed(2)]);
  {
    const rng = new Rng(79);
    const n = 700;
    const data = new Float64Array(n * n);
    for (let i = 0; i < data.length; i++) data[i] = rng.next();
    add(`minimum arborescence, dense, free root, n = ${n} (E = ${n * (n - 1)})`, 8000, time(reps, () => minimumArborescenceMatrix({ n, data })));
  }
  {
    const rng = new Rng(3);
    const n = 1500;
    const y = Float64Array.from({ length: (n * (n - 1)) / 2 }, () => rng.next());
    add(`Ward linkage (scipy-exact NN-chain), n = ${n}`, 5000, time(reps, () => wardLinkage(y, n)));
  }
  {
    const rng = new Rng(8);
    const n = 120;
    const W = Array.from({ length: n }, () => Array.from({ length: n }, () => Math.floor(rng.next() * 1000)));
    add(`Hungarian assignment, ${n} x ${n}`, 2000, time(reps, () => maxWeightAssignment(W)));
  }
  return table(['algorithm', 'median ms', 'budget ms', 'time / budget'], rows);
}
