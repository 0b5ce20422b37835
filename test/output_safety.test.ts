// Output is safe (issue 15.5) and says what it means (15.7): control characters in names are
// escaped in every text output; the evaluation against a truth is in the JSON and the HTML (a
// reversed edge is one reversed edge); Mermaid per family, top-down, with root and confidence;
// the SVG/HTML picture has a legend and wraps families into rows.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { graphEvaluation, ModelGraph, recover, renderGraph, toDot, toMermaid, toNewick } from '../lib';
import { escapeControl, escapeHtml } from '../lib/output/escape';
import { table } from '../lib/output/format';
import { renderTree } from '../lib/output/tree';
import { Rng } from './helpers/reference';
import { encode, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const BIN = path.resolve(__dirname, '..', 'bin', 'mother.js');
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const EVIL = ['evil\x1b]0;pwned\x07\x1b[2J', 'two\nlines', 'rtl\u202egpj.exe', '<script>alert(1)</script>'];

let tmp: ReturnType<typeof tmpDir>;
let g: ModelGraph;
let dirs: string[];

beforeAll(async () => {
  tmp = tmpDir();
  const rng = new Rng(77);
  const base = Array.from({ length: 32 * 32 }, () => 0.02 * rng.normal());
  // a chain of four related models and two unrelated ones (three families)
  dirs = [0, 1, 2, 3, 4, 5].map((m) => {
    const dir = path.join(tmp.dir, 'zoo', m < 4 ? `chain${m}` : `alone${m}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'] }));
    const own = Array.from({ length: 32 * 32 }, () => 0.02 * rng.normal());
    const w = m < 4 ? base.map((x) => x + 0.003 * m * rng.normal()) : own;
    writeSafetensors(path.join(dir, 'model.safetensors'), [{ name: 'model.layers.0.self_attn.o_proj.weight', dtype: 'F32', shape: [32, 32], data: encode('F32', w) }]);
    return dir;
  });
  g = await recover(dirs.map((p, i) => ({ id: i < EVIL.length ? EVIL[i] : path.basename(p), path: p })));
});
afterAll(() => tmp.cleanup());

describe('escaping', () => {
  test('escapeControl: C0, DEL, C1 and bidi characters made visible; other text unchanged', () => {
    expect(escapeControl('a\x1b[2Jb')).toBe('a\\x1b[2Jb');
    expect(escapeControl('a\nb\tc\rd')).toBe('a\\nb\\tc\\rd');
    expect(escapeControl('\x00\x7f\x9b')).toBe('\\x00\\x7f\\x9b');
    expect(escapeControl('x\u202ey\u2066')).toBe('x\\u202ey\\u2066');
    expect(escapeControl('model/ünïcode-名前 ok')).toBe('model/ünïcode-名前 ok');
    expect(escapeHtml('<a href="x">\x1b</a>')).toBe('&lt;a href=&quot;x&quot;&gt;\\x1b&lt;/a&gt;');
  });

  test('a table of 200k rows (a model with that many tensors) needs no deep stack', () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => [`layer.${i}.weight`, 'F32']);
    const t = table(['tensor', 'dtype'], rows);
    expect(t.split('\n')).toHaveLength(200_002);
    expect(t.split('\n')[1]).toBe(`${'-'.repeat('layer.199999.weight'.length)}  -----`);
  });

  test('tables and the tree: every line one line, nothing raw', () => {
    const t = table(['name'], [['a\nb'], ['\x1b[31mred']]);
    expect(t.split('\n')).toHaveLength(4);
    expect(t).not.toMatch(RAW_CONTROL);
    const tree = renderTree(g);
    expect(tree).not.toMatch(RAW_CONTROL);
    expect(tree).toContain('two\\nlines');
    expect(tree).toContain('evil\\x1b]0;pwned\\x07\\x1b[2J');
    expect(tree.split('\n').some((l) => l === 'lines' || l.startsWith('lines'))).toBe(false);
  });

  test('DOT, Mermaid, Newick, SVG, HTML: labels escaped; HTML escapes markup', async () => {
    for (const text of [toDot(g), toMermaid(g), toNewick(g), await renderGraph(g, 'svg'), await renderGraph(g, 'html')]) {
      expect(text).not.toMatch(RAW_CONTROL);
    }
    const html = await renderGraph(g, 'html');
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;');
    // the JSON keeps the ids as they are (JSON.stringify escapes control characters itself)
    const json = await renderGraph(g, 'json');
    expect(json).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(json).models.map((m: { id: string }) => m.id)).toContain(EVIL[0]);
  });

  test('the CLI: folder names, tensor names and error messages reach the terminal escaped', () => {
    const zoo = path.join(tmp.dir, 'evil-zoo');
    const evilDir = path.join(zoo, 'x\x1b]0;title\x07');
    fs.mkdirSync(zoo, { recursive: true });
    fs.cpSync(dirs[0], evilDir, { recursive: true });
    fs.cpSync(dirs[1], path.join(zoo, 'new\nline'), { recursive: true });
    const r = spawnSync(process.execPath, [BIN, 'recover', zoo, '-v'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    expect(r.stderr).not.toMatch(RAW_CONTROL);
    expect(r.stdout).toContain('x\\x1b]0;title\\x07');
    expect(r.stdout).toContain('new\\nline');
    const f = path.join(tmp.dir, 'evil-tensor.safetensors');
    writeSafetensors(f, [{ name: 'w\x1b[2J\nx', dtype: 'F32', shape: [2], data: encode('F32', [1, 2]) }]);
    const s = spawnSync(process.execPath, [BIN, 'stats', f], { encoding: 'utf8' });
    expect(s.status).toBe(0);
    expect(s.stdout).not.toMatch(RAW_CONTROL);
    expect(s.stdout).toContain('w\\x1b[2J\\nx');
    const e = spawnSync(process.execPath, [BIN, 'stats', path.join(tmp.dir, 'no\x1b[2Jsuch')], { encoding: 'utf8' });
    expect(e.status).toBe(3);
    expect(e.stderr).not.toMatch(RAW_CONTROL);
    expect(e.stderr).toContain('no\\x1b[2Jsuch');
    const u = spawnSync(process.execPath, [BIN, 'recover', zoo, '--metric', '\x1b[2Jbad'], { encoding: 'utf8' });
    expect(u.status).toBe(2);
    expect(u.stderr).not.toMatch(RAW_CONTROL);
    expect(u.stderr).toContain('\\x1b[2Jbad');
  });
});

describe('the evaluation in the JSON and the HTML', () => {
  test('a reversed edge is one reversed edge, not one wrong plus one missing', () => {
    expect(g.edges.length).toBeGreaterThanOrEqual(3);
    const [flip, ...rest] = g.edges;
    const truth = { edges: [[flip.child, flip.parent] as [string, string], ...rest.map((e) => [e.parent, e.child] as [string, string])] };
    const ev = graphEvaluation(g, truth, 'truth.json');
    expect(ev.edges.reversed).toEqual([{ parent: flip.parent, child: flip.child }]);
    expect(ev.edges.wrong).toEqual([]);
    expect(ev.edges.missing).toEqual([]);
    expect(ev.edges.correct).toHaveLength(rest.length);
    expect(ev.directedAccuracy).toBeCloseTo(rest.length / g.edges.length, 12);
    expect(ev.undirectedAccuracy).toBe(1);
    // a truth edge that is not recovered either way is missing, a recovered edge the truth lacks is wrong
    const loner = g.families.find((f) => f.length === 1)![0];
    const other = { edges: [[flip.child, loner] as [string, string]] };
    const ev2 = graphEvaluation(g, other);
    expect(ev2.edges.missing).toEqual([{ parent: flip.child, child: loner, predictedParent: null }]);
    expect(ev2.edges.wrong).toHaveLength(g.edges.length);
    expect(ev2.edges.wrong.length + ev2.edges.reversed.length + ev2.edges.correct.length).toBe(g.edges.length);
  });

  test('the CLI puts it in the JSON (evaluation) and draws it in the HTML', () => {
    const root = path.join(tmp.dir, 'zoo');
    const j = spawnSync(process.execPath, [BIN, 'recover', root, '--json', '-q'], { encoding: 'utf8' });
    const plain = JSON.parse(j.stdout) as ModelGraph;
    expect(plain.evaluation).toBeUndefined();
    const [flip, ...rest] = plain.edges;
    const truthFile = path.join(tmp.dir, 'truth.json');
    fs.writeFileSync(truthFile, JSON.stringify({ edges: [[flip.child, flip.parent], ...rest.map((e) => [e.parent, e.child])] }));
    const r = spawnSync(process.execPath, [BIN, 'recover', root, '--json', '--truth', truthFile, '-q'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as ModelGraph;
    expect(doc.version).toBe(4);
    expect(doc.evaluation!.truth).toBe(truthFile);
    expect(doc.evaluation!.edges.reversed).toEqual([{ parent: flip.parent, child: flip.child }]);
    expect(r.stderr).toMatch(/reversed: /);
    expect(r.stderr).not.toMatch(/wrong: |missing: /);
    const h = spawnSync(process.execPath, [BIN, 'recover', root, '--format', 'html', '--truth', truthFile, '-q'], { encoding: 'utf8' });
    expect(h.status).toBe(0);
    expect(h.stdout).toContain('<h2>Against the truth</h2>');
    expect(h.stdout).toMatch(/<td>reversed<\/td>/);
    expect(h.stdout).toMatch(/reversed: /); // the edge's label in the picture
    expect(h.stdout).toMatch(/orange = reversed/); // and the legend says what the colour means
  });
});

describe('pictures', () => {
  test('Mermaid: one top-down subgraph per family in order, edges inside, the root and the confidence marked', () => {
    const m = toMermaid(g);
    const subgraphs = [...m.matchAll(/subgraph family(\d+)/g)].map((x) => Number(x[1]));
    expect(subgraphs).toEqual(g.families.map((_, i) => i + 1));
    expect(m.match(/direction TB/g)).toHaveLength(g.families.length);
    const big = g.families.findIndex((f) => f.length > 1);
    expect(m).toMatch(/\(\[".* \(root\)"\]\)/);
    const block = m.split('  end')[big];
    const key = (id: string) => `m${g.models.findIndex((x) => x.id === id)}`;
    for (const e of g.edges.filter((x) => g.families[big].includes(x.child))) expect(block).toMatch(new RegExp(`${key(e.parent)} -->\\|"[^"]*"\\| ${key(e.child)}\n`));
    expect(m).toMatch(/-->\|"finetune [-\d.e]+ \([-\d.e]+\)"\|/);
  });

  test('SVG and HTML: a legend; families wrapped into rows', async () => {
    const svg = await renderGraph(g, 'svg');
    expect(svg).toMatch(/legend/);
    expect(svg).toMatch(/confidence = the edge(&#39;|')s bootstrap support/);
    expect(toDot(g)).not.toMatch(/legend/); // plain DOT stays plain
    const rows = toDot(g, { rowWidth: 1 });
    expect(rows.match(/style=invis/g)!.length).toBeGreaterThanOrEqual(g.families.length - 1);
    expect(toDot(g, { rowWidth: 1000 })).not.toMatch(/style=invis/);
  });
});
