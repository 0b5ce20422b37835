// Identical token-embedding rows (native/stats/row_hash.h, lib/method/embedding_rows.ts): the
// roundings against independent arithmetic references, the row hashes of real files in every
// float dtype, the family evidence and its nesting test, and recover on a generated Llama-like
// family where two fine-tunes on the same data attract across branches.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { recover } from '../lib';
import { native } from '../lib/core/binding';
import { rowHashes } from '../lib/io/row_hashes';
import { coarsest, comparisonLevel, differingRows, identicalRows, ROW_TOLERANCE_FRACTION, RowHashTable, rowDistance, TOKEN_EMBEDDING } from '../lib/method/embedding_rows';
import { Rng } from './helpers/reference';
import { encode, encodeF16, FloatDtype, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => { tmp = tmpDir(); });
afterAll(() => tmp.cleanup());

/** bfloat16 bits of a float32 value by arithmetic: 8 significant bits, nearest even; NaN canonical. */
function bf16Reference(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7f80;
  if (a === 0) return sign;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const q = Math.max(e, -126) - 7; // the value of one unit in the last place
  const units = a / 2 ** q;
  const f = Math.floor(units), d = units - f;
  let m = d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
  // m * 2^q back to bits
  let v = m * 2 ** q;
  if (v >= 2 ** 128) return sign | 0x7f80;
  let ev = Math.floor(Math.log2(v));
  if (2 ** ev > v) ev--;
  if (ev < -126) return sign | Math.round(v / 2 ** -133); // subnormal: mantissa in units of 2^-133
  m = Math.round((v / 2 ** ev - 1) * 128);
  return sign | ((ev + 127) << 7) | m;
}

describe('the roundings of the row hashes', () => {
  const rng = new Rng(7);
  const values: number[] = [0, -0, 1, -1, NaN, Infinity, -Infinity, 65504, 65519.99, 65520, 65536, 2 ** -14, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 2 ** -26,
    3 * 2 ** -25, 2 ** -24 * 1.5, 2 ** -24 * 2.5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38, 2 ** -126, 2 ** -130, 2 ** -149, 1.5 * 2 ** -140];
  for (let i = 0; i < 20000; i++) {
    const e = Math.floor(rng.next() * 80) - 40;
    values.push((rng.next() < 0.5 ? -1 : 1) * rng.next() * 2 ** e);
  }
  // ties of every kind: float32 values exactly halfway between two halves / bfloat16s
  for (let i = 0; i < 2000; i++) {
    const m = Math.floor(rng.next() * 1024) + 1024;
    values.push((m + 0.5) * 2 ** (Math.floor(rng.next() * 40) - 30));
    values.push((Math.floor(rng.next() * 128) + 128.5) * 2 ** (Math.floor(rng.next() * 200) - 140));
  }
  const x = Float32Array.from(values);
  test('float32 -> half: equal to the arithmetic reference on random, tied, subnormal, overflowing values', () => {
    const got = native().testing.f16Bits(x);
    const bad = [...x].map((v, i) => [v, got[i], encodeF16(v)]).filter(([, g, w]) => g !== w);
    expect(bad.slice(0, 5)).toEqual([]);
  });
  test('float32 -> bfloat16: equal to the arithmetic reference', () => {
    const got = native().testing.bf16Bits(x);
    const bad = [...x].map((v, i) => [v, got[i], bf16Reference(v)]).filter(([, g, w]) => g !== w);
    expect(bad.slice(0, 5)).toEqual([]);
  });
});

describe('comparison levels', () => {
  test('the coarser of two dtypes; F16 with BF16 at BF16; anything else at BF16', () => {
    expect(comparisonLevel('F32', 'F32')).toBe('f32');
    expect(comparisonLevel('F32', 'F16')).toBe('f16');
    expect(comparisonLevel('F16', 'BF16')).toBe('bf16');
    expect(comparisonLevel('F64', 'F32')).toBe('f32');
    expect(comparisonLevel('F32', 'Q8_0')).toBe('bf16');
    expect(coarsest('F32', 'F32', 'F16')).toBe('f16');
    expect(coarsest('F16', 'F32', 'BF16')).toBe('bf16');
    expect(coarsest('F32')).toBe('f32');
  });
});

describe('row hashes of files', () => {
  const R = 40, C = 24;
  const rng = new Rng(11);
  const parent = Float64Array.from({ length: R * C }, () => 0.02 * rng.normal());
  const write = (name: string, values: Float64Array, dtype: FloatDtype) => {
    const dir = path.join(tmp.dir, 'rows', name);
    fs.mkdirSync(dir, { recursive: true });
    writeSafetensors(path.join(dir, 'model.safetensors'), [
      { name: 'model.embed_tokens.weight', dtype, shape: [R, C], data: encode(dtype, values) },
    ]);
    return { files: [path.join(dir, 'model.safetensors')], index: '' };
  };
  test('rows left untouched match at the coarser dtype; a row with one element changed does not', async () => {
    const child = parent.slice();
    for (const r of [3, 7, 8]) for (let j = 0; j < C; j++) child[r * C + j] += 0.01 * rng.normal();
    child[20 * C + 5] += 1e-3; // one element of row 20
    const pBf = await rowHashes(write('p-bf16', parent, 'BF16'), 'model.embed_tokens.weight');
    const cF32 = await rowHashes(write('c-f32', child, 'F32'), 'model.embed_tokens.weight');
    const cF16 = await rowHashes(write('c-f16', child, 'F16'), 'model.embed_tokens.weight');
    expect(pBf).toMatchObject({ rows: R, rowElems: C });
    // F32 child of a BF16 parent: compared at BF16; 4 rows differ (the 1e-3 change is far above BF16's step at 0.02 only sometimes:
    // count it from the reference rounding of the files' values)
    const bf = (v: number) => bf16Reference(Math.fround(v));
    const want = Array.from({ length: R }, (_, r) => Array.from({ length: C }, (_, j) => bf(parent[r * C + j]) === bf(child[r * C + j])).every(Boolean)).filter(Boolean).length;
    expect(identicalRows(pBf!, cF32!, comparisonLevel('BF16', 'F32'))).toEqual({ compared: R, identical: want });
    expect(want).toBeLessThanOrEqual(R - 3);
    expect(want).toBeGreaterThanOrEqual(R - 4);
    // at F16 (the F32 child against its F16 copy): every row identical
    expect(identicalRows(cF32!, cF16!, 'f16')).toEqual({ compared: R, identical: R });
    // at F32 the F16 copy's rounding shows
    expect(identicalRows(cF32!, cF16!, 'f32')!.identical).toBeLessThan(R);
    // no such tensor: null
    expect(await rowHashes(write('p2', parent, 'F32'), 'lm_head.weight')).toBeNull();
  });
  test('an aborted signal cancels; a file that is no model fails with its error', async () => {
    const m = write('p-cancel', parent, 'F32');
    const ac = new AbortController();
    ac.abort();
    await expect(rowHashes(m, 'model.embed_tokens.weight', { signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_CANCELLED' });
    const bad = path.join(tmp.dir, 'rows', 'bad.safetensors');
    fs.writeFileSync(bad, Buffer.from([1, 2, 3]));
    await expect(rowHashes({ files: [bad], index: '' }, 'model.embed_tokens.weight')).rejects.toMatchObject({ code: expect.stringMatching(/^ERR_/) });
  });
  test('a resized vocabulary compares its shared leading rows; other row lengths are not compared', () => {
    const t = (rows: number, rowElems: number, h: number[]): RowHashTable => ({ rows, rowElems, f32: h, f16: h, bf16: h });
    expect(identicalRows(t(3, 4, [1, 2, 3]), t(5, 4, [1, 9, 3, 4, 5]), 'f32')).toEqual({ compared: 3, identical: 2 });
    expect(identicalRows(t(3, 4, [1, 2, 3]), t(3, 5, [1, 2, 3]), 'f32')).toBeNull();
  });
  test('the token embedding names', () => {
    for (const n of ['model.embed_tokens.weight', 'transformer.wte.weight', 'bert.embeddings.word_embeddings.weight', 'gpt_neox.embed_in.weight', 'tok_embeddings.weight'])
      expect(TOKEN_EMBEDDING.test(n)).toBe(true);
    for (const n of ['lm_head.weight', 'model.embed_positions.weight', 'transformer.wpe.weight']) expect(TOKEN_EMBEDDING.test(n)).toBe(false);
  });
});

describe('the family evidence', () => {
  // rows 0..9 of each table: a hash per row; a touched row gets a value of its own
  const table = (h: number[]): RowHashTable => ({ rows: h.length, rowElems: 8, f32: h, f16: h, bf16: h });
  const root = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const touch = (base: number[], rows: number[], tag: number) => base.map((v, r) => (rows.includes(r) ? 1000 * tag + r : v));
  const a = touch(root, [0, 1], 1), b = touch(root, [2, 3], 2), c = touch(a, [2, 3], 3); // c: a, then b's rows (other values)
  const F = ['F32', 'F32', 'F32', 'F32'];
  test('a tree: rows that differ per pair, nested along the tree', () => {
    const ev = differingRows([table(root), table(a), table(b), table(c)], F)!;
    expect(ev).not.toBeNull();
    expect(ev.compared).toBe(10);
    // c - a: rows 2, 3; c - b: rows 0..3; c - root: 0..3
    expect(ev.differing[3 * 4 + 1]).toBe(2);
    expect(ev.differing[3 * 4 + 2]).toBe(4);
    expect(ev.differing[3 * 4 + 0]).toBe(4);
    expect(ev.violations).toBe(0);
    expect([ev.min, ev.max]).toEqual([2, 4]);
  });
  test('rows not nested along the tree (identical again after a change): no evidence', () => {
    // root - a - c: a touches rows 0, 1, 5; c touches 2, 3 and holds row 5 at root's value again
    const a2 = touch(root, [0, 1, 5], 7), c2 = touch(a2, [2, 3], 8).map((v, r) => (r === 5 ? root[5] : v));
    // 6 rows identical between root and c, one of them (5) not between root and a: 1/6 > 1 %
    expect(differingRows([table(root), table(a2), table(c2)], F.slice(0, 3))).toBeNull();
    // without the restored row: nested, evidence
    const c3 = touch(a2, [2, 3], 8);
    expect(differingRows([table(root), table(a2), table(c3)], F.slice(0, 3))).toMatchObject({ violations: 0 });
    // two branches that share rows only with the root's neighbours: nothing checked apart
    const d = touch(root, [0, 1, 2, 3, 4, 5], 4), e = root.map((v, r) => (r < 6 ? v : 5000 + r)), f = touch(d, [6, 7, 8, 9], 6);
    expect(differingRows([table(root), table(d), table(e), table(f)], F)).toBeNull();
  });
  test('no evidence: fewer than 3 members, a member without rows, counts that do not vary, only neighbours sharing rows', () => {
    expect(differingRows([table(root), table(a)], F)).toBeNull();
    expect(differingRows([table(root), table(a), null], F)).toBeNull();
    const all = (tag: number) => root.map((r) => 100 * tag + r);
    expect(differingRows([table(all(1)), table(all(2)), table(all(3))], F)).toBeNull(); // nothing identical
    // one pair shares rows, no other (a continued pre-training chain): nothing is nested
    expect(differingRows([table(all(1)), table(all(1).map((v, r) => (r < 5 ? v : 9000 + r))), table(all(3))], F)).toBeNull();
  });
  test('rowDistance: the rows, plus the distance scaled to the tolerance at the largest distance', () => {
    expect(rowDistance(3, 0.5, 1, 1)).toBe(3.5);
    expect(rowDistance(3, 1, 2, 5)).toBe(5.5);
    // counts far apart decide; within the tolerance the distance does
    expect(rowDistance(2, 1, 1, 5)).toBeLessThan(rowDistance(10, 0, 1, 5));
    expect(rowDistance(4, 0.2, 1, 5)).toBeLessThan(rowDistance(3, 0.9, 1, 5));
    expect(rowDistance(2, NaN, 1, 5)).toBe(2);
    expect(ROW_TOLERANCE_FRACTION).toBe(0.02);
  });
  test('the tolerance is 2 % of the rows compared, at least one row', () => {
    expect(differingRows([table(root), table(a), table(b), table(c)], F)!.tolerance).toBe(1);
    const big = (tag: number, touched: number[]) => Array.from({ length: 1000 }, (_, r) => (touched.includes(r) ? 1e6 * tag + r : r));
    const t1 = big(1, [0, 1, 2]), t2 = big(2, [3, 4]), t3 = t1.map((v, r) => (r === 5 ? 7e6 : v));
    expect(differingRows([table(big(0, [])), table(t1), table(t2), table(t3)], F)!.tolerance).toBe(20);
  });
});

describe('recover: fine-tunes on the same data attract across branches; the rows keep the tree', () => {
  // a Llama-like family: token embedding (64 rows) and square layers. root -> docs, root ->
  // legal, docs -> docs+legal (a legal fine-tune of the docs model, the same data as legal).
  // Each fine-tune moves the rows of its tokens and every square layer; the legal data's update
  // is nearly the same from either start, so docs+legal lies nearer legal (a small docs
  // update apart) than its parent docs (a large legal update apart).
  const H = 16, V = 64, rng = new Rng(5);
  const SQUARE = [0, 1].flatMap((l) => ['q_proj', 'o_proj'].map((mm) => `model.layers.${l}.self_attn.${mm}.weight`));
  type W = Record<string, Float64Array>;
  const gauss = (n: number, s: number) => Float64Array.from({ length: n }, () => s * rng.normal());
  const legalDir: W = Object.fromEntries([...SQUARE, 'model.embed_tokens.weight'].map((k) => [k, gauss(k.includes('embed') ? V * H : H * H, 0.03)]));
  const rowsOf = { docs: [...Array(12).keys()].map((r) => r + 4), legal: [...Array(12).keys()].map((r) => r + 30) };
  const step = (w: W, task: 'docs' | 'legal', size: number): W => Object.fromEntries(Object.entries(w).map(([k, v]) => {
    if (k.includes('embed')) return [k, v.map((x, i) => (rowsOf[task].includes(Math.floor(i / H)) ? x + (task === 'legal' ? legalDir[k][i] : size * rng.normal()) + 0.002 * rng.normal() : x))];
    return [k, v.map((x, i) => x + (task === 'legal' ? legalDir[k][i] : size * rng.normal()) + 0.002 * rng.normal())];
  }));
  const root: W = Object.fromEntries([...SQUARE, 'model.embed_tokens.weight'].map((k) => [k, gauss(k.includes('embed') ? V * H : H * H, 0.05)]));
  const docs = step(root, 'docs', 0.008), legal = step(root, 'legal', 0), docsLegal = step(docs, 'legal', 0);
  const save = (id: string, w: W) => {
    const dir = path.join(tmp.dir, 'llm', id);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'] }));
    writeSafetensors(path.join(dir, 'model.safetensors'), Object.entries(w).map(([name, v]) => ({ name, dtype: 'F32' as const, shape: name.includes('embed') ? [V, H] : [H, H], data: encode('F32', v) })));
    return { id, path: dir };
  };
  let models: { id: string; path: string }[];
  beforeAll(() => { models = [save('root', root), save('docs', docs), save('legal', legal), save('docs_legal', docsLegal)]; });

  test("the distances alone (the paper's mode) put docs_legal under legal; with the rows (auto) under docs", async () => {
    const paper = await recover(models, { direction: 'finetune' });
    const parentOf = (g: typeof paper, c: string) => g.edges.find((e) => e.child === c)?.parent;
    expect(paper.familyReports[0].rows).toBeNull();
    // the premise: by distance docs_legal is nearest legal
    const auto = await recover(models);
    expect(auto.familyReports[0].rows).toMatchObject({ tensor: 'model.embed_tokens.weight' });
    const undirected = (g: typeof paper) => g.edges.map((e) => [e.parent, e.child].sort().join('-')).sort();
    expect(undirected(paper)).toContain('docs_legal-legal');
    expect(undirected(auto)).toEqual(['docs-docs_legal', 'docs-root', 'legal-root']);
    expect(parentOf(auto, 'docs_legal')).not.toBe('legal');
    // edges keep the family's distance, not the row count
    for (const e of auto.edges) expect(e.distance).toBeLessThan(1);
  });
});
