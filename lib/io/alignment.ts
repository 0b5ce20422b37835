// Stage 3 of the pipeline (pairwise evidence): alignment of tensors across models, by name:
// which tensors can be compared between which models, and on which rows. Equal shapes are
// compared fully; shapes that differ only in the leading dimension (a resized vocabulary: 32000
// vs 32016 rows) are compared on the rows both have; any other mismatch is skipped and
// reported.
import { LayerFilter, layerMatcher } from '../method/matrix';
import type { ModelHeader } from './inspect';

export type { LayerFilter };

const FLOAT_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ']);

export interface AlignedTensor {
  name: string;
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

export interface Alignment {
  tensors: AlignedTensor[];
  skipped: SkippedTensor[];
}

/** Plans the comparison of N models' tensors. Tensors are returned in first-model order. */
export function alignTensors(headers: ModelHeader[], filter?: LayerFilter): Alignment {
  const n = headers.length;
  const matches = layerMatcher(filter) ?? (() => true);
  const order: string[] = [];
  const byName = new Map<string, ({ dtype: string; shape: number[]; unreadable?: string } | null)[]>();
  headers.forEach((h, m) => {
    for (const t of h.tensors) {
      let entry = byName.get(t.name);
      if (!entry) {
        entry = new Array(n).fill(null);
        byName.set(t.name, entry);
        order.push(t.name);
      }
      entry[m] = { dtype: t.dtype, shape: t.shape, ...(t.unreadable ? { unreadable: t.unreadable } : {}) };
    }
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
    tensors.push({
      name,
      rows,
      rowElems,
      shapes: entry.map((e) => (e ? e.shape : null)),
      resized: new Set(compared).size > 1,
    });
  }
  return { tensors, skipped };
}
