// Stage 3 of the pipeline (pairwise evidence): alignment of tensors across models: which
// tensors can be compared between which models, and on which rows. By name; where a model's
// names do not correspond to the reference model's (the first), by normalised names (common
// prefixes such as model. and base_model.model., ONNX If-branch prefixes, / and : separators,
// TF names kernel/gamma/beta, _quantized; then unique dot-suffixes), else by order and shape
// (the longest common subsequence of the shape sequences of tensors of 64 elements or more). Equal shapes are
// compared fully; shapes that differ only in the leading dimension (a resized vocabulary: 32000
// vs 32016 rows) are compared on the rows both have; any other mismatch is skipped and
// reported.
import { LayerFilter, layerMatcher } from '../method/matrix';
import type { ModelHeader } from './inspect';

export type { LayerFilter };

/** The dtypes whose values the statistics and pairwise passes read (every other one is left out). */
export const FLOAT_DTYPES: ReadonlySet<string> = new Set([
  'F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ',
  // GGUF block types with statistics (native/stats/quant.h)
  'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'MXFP4',
  // ONNX quantised weights read as (q - zero point) x scale (native/formats/onnx.h)
  'QUINT8', 'QINT8',
]);

export interface AlignedTensor {
  /** The reference model's name (or the model's own, where no other model's tensor was aligned to it). */
  name: string;
  /** Per model, its own name for the tensor, where some model names it differently; absent when every model uses `name`. */
  names?: (string | null)[];
  /** Per model: rows (leading dimension) to compare, or -1 where the model is left out. */
  rows: number[];
  /** Elements per row: the product of the trailing dimensions. */
  rowElems: number;
  /** Per model: the tensor's shape, or null when the model lacks it. */
  shapes: (number[] | null)[];
  /** True when compared models differ in the leading dimension (compared on shared rows). */
  resized: boolean;
}

export interface SkippedTensor {
  name: string;
  /** Index of the model left out, or -1 when the tensor is left out for every model. */
  model: number;
  reason: string;
}

/** How one model's tensors were aligned to the reference model's. */
export interface ModelAlignment {
  /** Index of the model. */
  model: number;
  /** 'name': names as they are; 'normalised': normalised names and suffixes; 'order': order and shape. */
  method: 'name' | 'normalised' | 'order';
  /** Float tensors of this model matched to a tensor of the reference with the same shape, and how many it has. */
  matched: number;
  tensors: number;
}

export interface Alignment {
  tensors: AlignedTensor[];
  skipped: SkippedTensor[];
  /** Per model other than the reference (model 0): how its names were aligned. */
  methods: ModelAlignment[];
}

/** Tensors of fewer elements are left out of the alignment by order and shape (biases, scalars: too alike to place). */
export const ALIGN_MIN_ELEMENTS = 64;
const PREFIXES = ['base_model.model.', 'model.', 'module.', '_orig_mod.', 'transformer.'];
const LAST_PART: Record<string, string> = { kernel: 'weight', gamma: 'weight', beta: 'bias' };

/** A tensor name in a form common to exporters: separators as dots, known prefixes and suffixes removed. */
export function normaliseName(name: string): string {
  let s = name.replace(/:\d+$/, '').replace(/^.*(?:then_branch|else_branch)(?:__[^/.]*)?[/.:_]+/, '').replace(/[/:]+/g, '.').replace(/^\.+|\.+$/g, '');
  s = s.replace(/_quantized$/, '');
  for (let changed = true; changed; ) {
    changed = false;
    for (const p of PREFIXES) if (s.startsWith(p) && s.length > p.length) { s = s.slice(p.length); changed = true; }
  }
  const parts = s.split('.');
  const last = parts[parts.length - 1];
  if (LAST_PART[last]) parts[parts.length - 1] = LAST_PART[last];
  return parts.join('.');
}

type HeaderTensor = ModelHeader['tensors'][number];
const floatTensor = (t: HeaderTensor) => FLOAT_DTYPES.has(t.dtype) && !t.unreadable;
const shapeKey = (t: HeaderTensor) => t.shape.join('x');
const elems = (t: HeaderTensor) => t.shape.reduce((a, b) => a * b, 1);

/** Pairs of (model tensor, reference tensor) indices by normalised name, then by unique dot-suffix; same shape only. */
function matchByNormalisedNames(mine: HeaderTensor[], ref: HeaderTensor[]): Map<number, number> {
  const out = new Map<number, number>();
  const used = new Set<number>();
  const norm = (ts: HeaderTensor[]) => ts.map((t) => normaliseName(t.name));
  const nm = norm(mine), nr = norm(ref);
  const uniq = (xs: string[]) => { const c = new Map<string, number>(); for (const x of xs) c.set(x, (c.get(x) ?? 0) + 1); return c; };
  const cm = uniq(nm), cr = uniq(nr);
  const refAt = new Map(nr.map((x, j) => [x, j]));
  mine.forEach((t, i) => {
    const j = refAt.get(nm[i]);
    if (j !== undefined && cm.get(nm[i]) === 1 && cr.get(nm[i]) === 1 && shapeKey(ref[j]) === shapeKey(t)) { out.set(i, j); used.add(j); }
  });
  // common suffixes: one name a dot-suffix of exactly one other, both ways unique
  const isSuffix = (a: string, b: string) => a === b || b.endsWith('.' + a) || a.endsWith('.' + b);
  mine.forEach((t, i) => {
    if (out.has(i)) return;
    const js = ref.map((_, j) => j).filter((j) => !used.has(j) && shapeKey(ref[j]) === shapeKey(t) && isSuffix(nm[i], nr[j]));
    if (js.length !== 1) return;
    const back = mine.map((_, k) => k).filter((k) => !out.has(k) && shapeKey(mine[k]) === shapeKey(ref[js[0]]) && isSuffix(nm[k], nr[js[0]]));
    if (back.length !== 1) return;
    out.set(i, js[0]);
    used.add(js[0]);
  });
  return out;
}

/** Pairs by order and shape: the longest common subsequence of the shape sequences (tensors of ALIGN_MIN_ELEMENTS or more). */
function matchByOrder(mine: HeaderTensor[], ref: HeaderTensor[]): Map<number, number> {
  const a = mine.map((t, i) => [t, i] as const).filter(([t]) => elems(t) >= ALIGN_MIN_ELEMENTS);
  const b = ref.map((t, j) => [t, j] as const).filter(([t]) => elems(t) >= ALIGN_MIN_ELEMENTS);
  const n = a.length, m = b.length;
  const L = new Uint32Array((n + 1) * (m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      L[i * (m + 1) + j] = shapeKey(a[i][0]) === shapeKey(b[j][0]) ? L[(i + 1) * (m + 1) + j + 1] + 1 : Math.max(L[(i + 1) * (m + 1) + j], L[i * (m + 1) + j + 1]);
  const out = new Map<number, number>();
  for (let i = 0, j = 0; i < n && j < m; ) {
    if (shapeKey(a[i][0]) === shapeKey(b[j][0]) && L[i * (m + 1) + j] === L[(i + 1) * (m + 1) + j + 1] + 1) { out.set(a[i][1], b[j][1]); i++; j++; }
    else if (L[(i + 1) * (m + 1) + j] >= L[i * (m + 1) + j + 1]) i++;
    else j++;
  }
  return out;
}

/**
 * Per model, the name under which each of its tensors is aligned: its own where its names
 * correspond to another model's of the set (at least half of the smaller set of float tensors
 * match by name and shape: the usual case, and every model of one architecture among others),
 * else the names of the model whose names correspond to most of its tensors by normalised names
 * (when that matches half) or by order and shape (when that matches more): an exporter that
 * names the tensors its own way. When no model's names correspond to any other's (two exports
 * named differently), model 0's names are the reference.
 */
export function alignNames(headers: ModelHeader[]): { names: string[][]; methods: ModelAlignment[] } {
  const names = headers.map((h) => h.tensors.map((t) => t.name));
  const methods: ModelAlignment[] = [];
  if (headers.length < 2) return { names, methods };
  const floats = headers.map((h) => h.tensors.filter(floatTensor));
  const byNameMaps = floats.map((f) => new Map(f.map((t) => [t.name, shapeKey(t)])));
  const byName = (m: number, k: number) => floats[m].filter((t) => byNameMaps[k].get(t.name) === shapeKey(t)).length;
  const half = (m: number, k: number) => Math.min(floats[m].length, floats[k].length) / 2;
  // the models whose names correspond to another model's
  const named: boolean[] = headers.map((_, m) => floats[m].length === 0 || headers.some((_, k) => k !== m && floats[k].length > 0 && byName(m, k) >= half(m, k)));
  const refs = named.some((x, m) => x && floats[m].length > 0) ? headers.map((_, k) => k).filter((k) => named[k] && floats[k].length > 0) : [0];
  for (let m = 0; m < headers.length; m++) {
    const mine = floats[m];
    if (named[m] || refs.includes(m)) {
      if (m > 0) methods.push({ model: m, method: 'name', matched: Math.max(0, ...headers.map((_, k) => (k === m ? 0 : byName(m, k)))), tensors: mine.length });
      continue;
    }
    // the reference that matches most of its tensors
    let best: { k: number; match: Map<number, number>; method: ModelAlignment['method'] } | null = null;
    for (const k of refs) {
      const ref = floats[k];
      let match = matchByNormalisedNames(mine, ref);
      let method: ModelAlignment['method'] = 'normalised';
      if (match.size < half(m, k)) {
        const order = matchByOrder(mine, ref);
        if (order.size > match.size) { match = order; method = 'order'; }
      }
      if (best === null || match.size > best.match.size) best = { k, match, method };
    }
    const plain = Math.max(0, ...headers.map((_, k) => (k === m ? 0 : byName(m, k))));
    if (!best || best.match.size <= plain) {
      methods.push({ model: m, method: 'name', matched: plain, tensors: mine.length });
      continue;
    }
    methods.push({ model: m, method: best.method, matched: best.match.size, tensors: mine.length });
    const ref = floats[best.k];
    const refNames = byNameMaps[best.k];
    const taken = new Set<string>();
    const rename = new Map<HeaderTensor, string>();
    for (const [i, j] of best.match) { rename.set(mine[i], ref[j].name); taken.add(ref[j].name); }
    names[m] = headers[m].tensors.map((t) => rename.get(t) ?? (taken.has(t.name) || refNames.has(t.name) ? `${t.name} (model ${m}, not aligned)` : t.name));
  }
  return { names, methods };
}

/** Plans the comparison of N models' tensors. Tensors are returned in first-model order. */
export function alignTensors(headers: ModelHeader[], filter?: LayerFilter): Alignment {
  const n = headers.length;
  const matches = layerMatcher(filter) ?? (() => true);
  const order: string[] = [];
  const byName = new Map<string, ({ dtype: string; shape: number[]; own: string; unreadable?: string } | null)[]>();
  const { names, methods } = alignNames(headers);
  headers.forEach((h, m) => {
    h.tensors.forEach((t, ti) => {
      const name = names[m][ti];
      let entry = byName.get(name);
      if (!entry) {
        entry = new Array(n).fill(null);
        byName.set(name, entry);
        order.push(name);
      }
      entry[m] = { dtype: t.dtype, shape: t.shape, own: t.name, ...(t.unreadable ? { unreadable: t.unreadable } : {}) };
    });
  });
  const tensors: AlignedTensor[] = [];
  const skipped: SkippedTensor[] = [];
  for (const name of order) {
    const entry = byName.get(name)!;
    const present = entry.map((e, m) => (e ? m : -1)).filter((m) => m >= 0);
    const firstShape = entry[present[0]]!.shape;
    if (!matches(name, firstShape)) continue;
    const floats = present.filter((m) => FLOAT_DTYPES.has(entry[m]!.dtype));
    if (floats.length === 0) continue; // integer/bool buffers: nothing to compare
    for (const m of present) {
      if (!floats.includes(m)) skipped.push({ name, model: m, reason: `dtype ${entry[m]!.dtype} has no float values` });
    }
    for (const m of floats.filter((m) => entry[m]!.unreadable)) {
      skipped.push({ name, model: m, reason: `not read: ${entry[m]!.unreadable}` });
      floats.splice(floats.indexOf(m), 1);
    }
    if (floats.length === 0) continue; // reported above
    // The trailing shape most models share (ties: the earliest model's) is the reference.
    const key = (s: number[]) => JSON.stringify(s.length === 0 ? [] : s.slice(1)) + `/${s.length}`;
    const votes = new Map<string, number>();
    for (const m of floats) votes.set(key(entry[m]!.shape), (votes.get(key(entry[m]!.shape)) ?? 0) + 1);
    let refKey = key(entry[floats[0]]!.shape);
    for (const m of floats) {
      const k = key(entry[m]!.shape);
      if (votes.get(k)! > votes.get(refKey)!) refKey = k;
    }
    const rows = new Array(n).fill(-1);
    let rowElems = 1;
    for (const m of floats) {
      const shape = entry[m]!.shape;
      if (key(shape) !== refKey) {
        skipped.push({ name, model: m, reason: `shape [${shape.join(',')}] is not comparable (differs beyond the leading dimension)` });
        continue;
      }
      rows[m] = shape.length === 0 ? 1 : shape[0];
      rowElems = shape.slice(1).reduce((a, b) => a * b, 1);
    }
    const compared = rows.filter((r) => r >= 0);
    if (compared.length < 2) {
      if (n >= 2) skipped.push({ name, model: -1, reason: compared.length === 1 ? 'present in only one model' : 'no comparable models' });
      continue;
    }
    const own = entry.map((e) => (e ? e.own : null));
    tensors.push({
      name,
      ...(own.some((o) => o !== null && o !== name) ? { names: own } : {}),
      rows,
      rowElems,
      shapes: entry.map((e) => (e ? e.shape : null)),
      resized: new Set(compared).size > 1,
    });
  }
  return { tensors, skipped, methods };
}
