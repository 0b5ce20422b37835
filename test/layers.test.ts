// lib/ in layers: which folder may import which, and no import cycle (type-only imports
// included). Reads the import statements of lib/**/*.ts as text.
import * as fs from 'node:fs';
import * as path from 'node:path';

const LIB = path.resolve(__dirname, '..', 'lib');

/** lib-relative module (no extension) -> the lib-relative modules it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        const from = path.relative(LIB, p).replace(/\.ts$/, '');
        const text = fs.readFileSync(p, 'utf8');
        const specs = [
          ...text.matchAll(/^\s*(?:import|export)\b[^;'"]*?\bfrom\s+'([^']+)'/gm),
          ...text.matchAll(/\b(?:import|require)\(\s*'([^']+)'\s*\)/g),
        ].map((m) => m[1]);
        const to = specs.filter((s) => s.startsWith('.')).map((s) => {
          const abs = path.resolve(path.dirname(p), s);
          const rel = path.relative(LIB, abs);
          return fs.existsSync(abs) && fs.statSync(abs).isDirectory() ? path.join(rel, 'index') : rel;
        });
        graph.set(from, [...new Set(to)]);
      }
    }
  };
  walk(LIB);
  return graph;
}

/** The layer of a module: its folder, or the module itself at the top. */
const layer = (m: string) => (m.includes('/') ? m.slice(0, m.indexOf('/')) : m);

// What each layer may import (besides itself). method/matrix.ts is the small helper module that
// io/ shares with method/ (pair index, layer filter, square test).
const ALLOWED: Record<string, (to: string) => boolean> = {
  core: () => false,
  io: (to) => layer(to) === 'core' || to === 'method/matrix',
  method: (to) => layer(to) === 'core',
  recover: (to) => ['core', 'io', 'method'].includes(layer(to)),
  output: (to) => layer(to) === 'core' || to === 'recover',
  cli: (to) => layer(to) !== 'index',
  index: (to) => layer(to) !== 'cli',
};

describe('lib/ layers', () => {
  const graph = importGraph();

  test('the import graph is read (every file, every import resolves to a file of lib/)', () => {
    expect(graph.size).toBeGreaterThanOrEqual(20);
    expect(graph.get('io/pairwise')).toEqual(expect.arrayContaining(['io/alignment', 'core/binding', 'method/matrix']));
    for (const [from, tos] of graph) for (const to of tos) expect([from, graph.has(to)]).toEqual([from, true]);
  });

  test('each layer imports only the layers below it', () => {
    const bad: string[] = [];
    for (const [from, tos] of graph)
      for (const to of tos) {
        const rule = ALLOWED[layer(from)];
        if (!rule) bad.push(`${from}: no rule for layer ${layer(from)}`);
        else if (layer(to) !== layer(from) && !rule(to)) bad.push(`${from} -> ${to}`);
      }
    expect(bad).toEqual([]);
  });

  test('no import cycle, type-only imports included', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (m: string, trail: string[]): void => {
      if (state.get(m) === 'done') return;
      if (state.get(m) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(m)), m].join(' -> '));
        return;
      }
      state.set(m, 'open');
      for (const to of graph.get(m) ?? []) visit(to, [...trail, m]);
      state.set(m, 'done');
    };
    for (const m of [...graph.keys()].sort()) visit(m, []);
    expect(cycles).toEqual([]);
  });
});
