// Output formats of the model graph: every format parses (DOT by Graphviz itself, Newick by a
// round trip), on the recovered graph of the bundled trained sample.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { graphEvaluation, ModelGraph, recover, renderGraph, toDot, toMermaid, toNewick } from '../lib';
import { newickLabel } from '../lib/output/render';
import { tmpDir } from './helpers/tmp';
import { Schema, validate } from './helpers/schema';

const ZOO = path.resolve(__dirname, '..', 'samples', 'zoo-small');
const BIN = path.resolve(__dirname, '..', 'bin', 'mother.js');
let g: ModelGraph;
let tmp: ReturnType<typeof tmpDir>;

beforeAll(async () => {
  tmp = tmpDir();
  const ids = ['ft/m00', 'ft/m01', 'ft/m02', 'ft/m03', 'ft/m04', 'ft/m05', 'ft/m06', 'ft/m07', 'ft/m08', 'ft/m09', 'llm/m00'];
  g = await recover(ids.map((id) => ({ id, path: path.join(ZOO, id) })), { families: 'auto' });
});
afterAll(() => tmp.cleanup());

/** A small Newick parser: returns [parent, child, length] triples and the roots. */
function parseNewick(text: string): { edges: [string, string, number][]; roots: string[] } {
  const edges: [string, string, number][] = [];
  const roots: string[] = [];
  for (const tree of text.split(';').map((t) => t.trim()).filter(Boolean)) {
    let i = 0;
    const label = (): string => {
      if (tree[i] === "'") {
        let s = '';
        i++;
        for (;;) {
          if (tree[i] === "'" && tree[i + 1] === "'") { s += "'"; i += 2; continue; }
          if (tree[i] === "'") { i++; return s; }
          s += tree[i++];
        }
      }
      const start = i;
      while (i < tree.length && !'(),:;'.includes(tree[i])) i++;
      return tree.slice(start, i);
    };
    const node = (): string => {
      const kids: [string, number][] = [];
      if (tree[i] === '(') {
        i++;
        for (;;) {
          const c = node();
          if (tree[i] !== ':') throw new Error(`branch length expected at ${i}`);
          i++;
          const start = i;
          while (i < tree.length && !'(),:;'.includes(tree[i])) i++;
          kids.push([c, Number(tree.slice(start, i))]);
          if (tree[i] === ',') { i++; continue; }
          if (tree[i] === ')') { i++; break; }
          throw new Error(`',' or ')' expected at ${i}`);
        }
      }
      const name = label();
      for (const [c, len] of kids) edges.push([name, c, len]);
      return name;
    };
    roots.push(node());
    if (i !== tree.length) throw new Error(`trailing text in ${tree}`);
  }
  return { edges, roots };
}

describe('graph renderers', () => {
  test('JSON: the versioned document validates against docs/model-graph.schema.json', async () => {
    const doc = JSON.parse(await renderGraph(g, 'json'));
    const schema = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', 'docs', 'model-graph.schema.json'), 'utf8')) as Schema;
    expect(validate(doc, schema)).toEqual([]);
    expect(validate({ ...doc, version: 1 }, schema)).not.toEqual([]);
    expect(validate({ ...doc, edges: [{ parent: 'a' }] }, schema)).not.toEqual([]);
    expect(doc.version).toBe(4);
    for (const k of ['models', 'families', 'edges', 'roots', 'options']) expect(doc).toHaveProperty(k);
    for (const m of doc.models) expect(Object.keys(m).sort()).toEqual(['architecture', 'id', 'kurtosis', 'params', 'path']);
    expect(doc.families.flat().sort()).toEqual(doc.models.map((m: { id: string }) => m.id).sort());
    // the optional evaluation (--truth) validates too, and a broken one does not
    const truth = JSON.parse(fs.readFileSync(path.join(ZOO, 'truth.json'), 'utf8'));
    const withEv = JSON.parse(await renderGraph({ ...g, evaluation: graphEvaluation(g, truth, 'truth.json') }, 'json'));
    expect(withEv.version).toBe(4);
    expect(validate(withEv, schema)).toEqual([]);
    const ev = withEv.evaluation;
    expect(ev.edges.correct.length + ev.edges.reversed.length + ev.edges.wrong.length).toBe(g.edges.length);
    expect(validate({ ...withEv, evaluation: { ...ev, edges: { ...ev.edges, reversed: [{ parent: 1 }] } } }, schema)).not.toEqual([]);
    expect(validate({ ...withEv, evaluation: { truth: null } }, schema)).not.toEqual([]);
  });

  test('Newick round trip: the same edges, branch lengths and roots', () => {
    const parsed = parseNewick(toNewick(g));
    expect(parsed.roots.sort()).toEqual([...g.roots].sort());
    const want = g.edges.map((e) => [e.parent, e.child, e.distance]).sort();
    expect(parsed.edges.sort()).toEqual(want);
  });

  test('Newick quotes labels with reserved characters', () => {
    expect(newickLabel('ft/m00')).toBe('ft/m00');
    expect(newickLabel("a b,(c):d's")).toBe("'a b,(c):d''s'");
  });

  test('DOT is accepted by Graphviz; SVG and HTML are drawn from it', async () => {
    const svg = await renderGraph(g, 'svg');
    expect(svg).toMatch(/<svg[\s\S]*<\/svg>/);
    for (const e of g.edges) expect(toDot(g)).toContain(`"${e.parent}" -> "${e.child}"`);
    const html = await renderGraph(g, 'html');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/); // self-contained, nothing fetched
    // a DOT syntax error is caught by the renderer
    const { instance } = require('@viz-js/viz');
    const viz = await instance();
    expect(() => viz.renderString('digraph { a -> }', { format: 'svg' })).toThrow();
  });

  test('Mermaid lists every model and edge', () => {
    const m = toMermaid(g);
    expect(m.startsWith('flowchart TD')).toBe(true);
    expect((m.match(/-->/g) ?? []).length).toBe(g.edges.length);
    // each model once, the roots of families marked
    for (const id of g.models.map((x) => x.id)) expect(m).toContain(g.roots.includes(id) && g.families.find((f) => f.includes(id))!.length > 1 ? `(["${id} (root)"])` : `["${id}"]`);
  });

  test('CLI --format and --out write each format', () => {
    for (const f of ['json', 'dot', 'newick', 'mermaid', 'svg', 'html']) {
      const out = path.join(tmp.dir, `g.${f}`);
      const r = spawnSync(process.execPath, [BIN, 'recover', path.join(ZOO, 'pretrain_chain'), '--format', f, '--out', out, '-q'], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(fs.statSync(out).size).toBeGreaterThan(20);
    }
  });
});
