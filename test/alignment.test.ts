// Stage 3, alignment: which tensors of N models are compared, on which rows, and what is left
// out and why. Headers are built by hand (alignTensors reads names, dtypes and shapes only).
import { alignTensors, ModelHeader } from '../lib';

type T = { name: string; dtype?: string; shape: number[] };

function header(tensors: T[]): ModelHeader {
  return { model: 'x', files: [], tensors: tensors.map((t) => ({ dtype: 'F32', ...t, file: 'f', offset: 0, bytes: 0 })) };
}

/** One tensor, 'w', with these shapes (and dtypes, default F32) in models 0, 1, ... */
function alignOne(shapes: number[][], dtypes: string[] = []) {
  return alignTensors(shapes.map((shape, m) => header([{ name: 'w', dtype: dtypes[m] ?? 'F32', shape }])));
}

describe('alignTensors', () => {
  test('equal shapes: compared fully on every model', () => {
    const a = alignOne([[4, 8], [4, 8], [4, 8]], ['F32', 'BF16', 'F16']);
    expect(a.tensors).toEqual([{ name: 'w', rows: [4, 4, 4], rowElems: 8, shapes: [[4, 8], [4, 8], [4, 8]], resized: false }]);
    expect(a.skipped).toEqual([]);
  });

  test('a resized leading dimension (32000 vs 32016 rows) is compared on the rows each model has', () => {
    const a = alignOne([[32000, 16], [32016, 16], [32000, 16]]);
    expect(a.tensors).toEqual([{ name: 'w', rows: [32000, 32016, 32000], rowElems: 16, shapes: [[32000, 16], [32016, 16], [32000, 16]], resized: true }]);
    expect(a.skipped).toEqual([]);
  });

  test('a trailing-shape mismatch is skipped for that model, with the reason', () => {
    const a = alignOne([[4, 8], [4, 8], [4, 6]]);
    expect(a.tensors).toEqual([{ name: 'w', rows: [4, 4, -1], rowElems: 8, shapes: [[4, 8], [4, 8], [4, 6]], resized: false }]);
    expect(a.skipped).toEqual([{ name: 'w', model: 2, reason: 'shape [4,6] is not comparable (differs beyond the leading dimension)' }]);
  });

  test('the trailing shape most models share is the reference, not the first model\'s; ties go to the earliest model', () => {
    const majority = alignOne([[4, 6], [5, 8], [4, 8]]);
    expect(majority.tensors[0]).toMatchObject({ rows: [-1, 5, 4], rowElems: 8, resized: true });
    expect(majority.skipped).toEqual([{ name: 'w', model: 0, reason: expect.stringMatching(/^shape \[4,6\] is not comparable/) }]);
    const tie = alignOne([[2, 3], [2, 3], [2, 5], [2, 5]]);
    expect(tie.tensors[0]).toMatchObject({ rows: [2, 2, -1, -1], rowElems: 3 });
    expect(tie.skipped.map((s) => s.model)).toEqual([2, 3]);
    // a different rank never matches, even with the same trailing elements
    const rank = alignOne([[4, 8], [4, 8], [4, 8, 1]]);
    expect(rank.tensors[0].rows).toEqual([4, 4, -1]);
  });

  test('non-float dtypes: a model whose copy is not float is skipped; a tensor float in no model is left out silently', () => {
    const a = alignTensors([
      header([{ name: 'w', shape: [4] }, { name: 'ids', dtype: 'I64', shape: [4] }, { name: 'mask', dtype: 'BOOL', shape: [4] }]),
      header([{ name: 'w', dtype: 'I32', shape: [4] }, { name: 'ids', dtype: 'I64', shape: [4] }, { name: 'mask', dtype: 'BOOL', shape: [4] }]),
      header([{ name: 'w', dtype: 'F8_E4M3', shape: [4] }, { name: 'ids', dtype: 'I64', shape: [4] }]),
    ]);
    expect(a.tensors.map((t) => [t.name, t.rows])).toEqual([['w', [4, -1, 4]]]);
    expect(a.skipped).toEqual([{ name: 'w', model: 1, reason: 'dtype I32 has no float values' }]);
  });

  test('a tensor in one model only is reported once for all models; with a single model nothing is reported', () => {
    const a = alignTensors([
      header([{ name: 'w', shape: [2, 2] }]),
      header([{ name: 'w', shape: [2, 2] }, { name: 'head', shape: [3, 2] }]),
    ]);
    expect(a.tensors.map((t) => t.name)).toEqual(['w']);
    expect(a.skipped).toEqual([{ name: 'head', model: -1, reason: 'present in only one model' }]);
    // present in two models but comparable in one only: the model and the tensor are reported
    const b = alignOne([[2, 2], [2, 3]]);
    expect(b.tensors).toEqual([]);
    expect(b.skipped).toEqual([
      { name: 'w', model: 1, reason: expect.stringMatching(/not comparable/) },
      { name: 'w', model: -1, reason: 'present in only one model' },
    ]);
    expect(alignOne([[2, 2]])).toEqual({ tensors: [], skipped: [], methods: [] });
    expect(alignTensors([])).toEqual({ tensors: [], skipped: [], methods: [] });
  });

  test('0-d tensors are one row of one element; 1-d tensors are rows of one element; 0-d and 1-d never match', () => {
    const a = alignTensors([
      header([{ name: 'scale', shape: [] }, { name: 'bias', shape: [16] }, { name: 'x', shape: [] }]),
      header([{ name: 'scale', shape: [] }, { name: 'bias', shape: [20] }, { name: 'x', shape: [1] }]),
    ]);
    expect(a.tensors).toEqual([
      { name: 'scale', rows: [1, 1], rowElems: 1, shapes: [[], []], resized: false },
      { name: 'bias', rows: [16, 20], rowElems: 1, shapes: [[16], [20]], resized: true },
    ]);
    expect(a.skipped).toEqual([
      { name: 'x', model: 1, reason: 'shape [1] is not comparable (differs beyond the leading dimension)' },
      { name: 'x', model: -1, reason: 'present in only one model' },
    ]);
  });

  test('layer filter: a RegExp with the g flag matches every name (lastIndex is reset), a predicate gets (name, shape)', () => {
    const tensors = ['a.attn.q', 'b.attn.k', 'c.mlp', 'd.attn.v', 'e.attn.o'].map((name, i) => ({ name, shape: [2, i + 1] }));
    const h = [header(tensors), header(tensors)];
    const g = /attn/g;
    expect(alignTensors(h, g).tensors.map((t) => t.name)).toEqual(['a.attn.q', 'b.attn.k', 'd.attn.v', 'e.attn.o']);
    expect(alignTensors(h, g).tensors.map((t) => t.name)).toEqual(['a.attn.q', 'b.attn.k', 'd.attn.v', 'e.attn.o']); // again: same
    expect(alignTensors(h, /attn/y).tensors).toEqual([]); // sticky: anchored at 0, no name starts with attn
    const seen: [string, number[]][] = [];
    const picked = alignTensors(h, (name, shape) => {
      seen.push([name, shape]);
      shape.push(99); // the predicate gets a copy: the headers are not changed
      return shape[1] % 2 === 1;
    });
    expect(seen.map(([n]) => n)).toEqual(['a.attn.q', 'b.attn.k', 'c.mlp', 'd.attn.v', 'e.attn.o']);
    expect(seen[1][1].slice(0, 2)).toEqual([2, 2]);
    expect(picked.tensors.map((t) => t.name)).toEqual(['a.attn.q', 'c.mlp', 'e.attn.o']);
    expect(h[0].tensors[0].shape).toEqual([2, 1]);
    // the filter sees the shape of the first model that has the tensor
    const shapes: number[][] = [];
    alignTensors([header([]), header([{ name: 'late', shape: [7, 7] }]), header([{ name: 'late', shape: [8, 7] }])], (_, s) => (shapes.push(s), true));
    expect(shapes).toEqual([[7, 7]]);
  });

  test('order: tensors by first appearance (model order, then file order); skipped entries per tensor in that order', () => {
    const a = alignTensors([
      header([{ name: 'z', shape: [2] }, { name: 'a', shape: [2] }, { name: 'only0', shape: [2] }]),
      header([{ name: 'late', shape: [3] }, { name: 'a', dtype: 'I8', shape: [2] }, { name: 'z', shape: [2] }]),
      header([{ name: 'a', shape: [2] }, { name: 'late', shape: [3] }, { name: 'z', shape: [2, 2] }]),
    ]);
    expect(a.tensors.map((t) => t.name)).toEqual(['z', 'a', 'late']);
    expect(a.tensors.map((t) => t.rows)).toEqual([[2, 2, -1], [2, -1, 2], [-1, 3, 3]]);
    expect(a.skipped.map((s) => [s.name, s.model])).toEqual([['z', 2], ['a', 1], ['only0', -1]]);
  });
});

describe('alignment across exporters (names that do not correspond)', () => {
  // Headers that mimic exporters (written here, not real exports): Hugging Face names, the same
  // with PEFT's base_model.model. prefix and / separators, and an ONNX-style export whose
  // initializers carry opaque names (onnx::MatMul_N) in the same order.
  const { alignNames, normaliseName } = require('../lib/io/alignment') as typeof import('../lib/io/alignment');
  const hf: T[] = [
    { name: 'model.embed_tokens.weight', shape: [64, 16] },
    { name: 'model.layers.0.self_attn.q_proj.weight', shape: [16, 16] },
    { name: 'model.layers.0.self_attn.q_proj.bias', shape: [16] },
    { name: 'model.layers.0.mlp.up_proj.weight', shape: [32, 16] },
    { name: 'model.layers.0.mlp.down_proj.weight', shape: [16, 32] },
    { name: 'model.layers.1.self_attn.q_proj.weight', shape: [16, 16] },
    { name: 'model.norm.weight', shape: [16] },
  ];

  test('normaliseName: prefixes, separators, TF and quantisation suffixes, If-branch prefixes', () => {
    expect(normaliseName('base_model.model.model.layers.0.q_proj.weight')).toBe('layers.0.q_proj.weight');
    expect(normaliseName('/model/layers.0/q_proj/weight')).toBe('layers.0.q_proj.weight');
    expect(normaliseName('dense_1/kernel:0')).toBe('dense_1.weight');
    expect(normaliseName('bn/gamma')).toBe('bn.weight');
    expect(normaliseName('conv1.weight_quantized')).toBe('conv1.weight');
    expect(normaliseName('If_12_then_branch__Inline_0__/encoder/conv.weight')).toBe('encoder.conv.weight');
    expect(normaliseName('model.weight')).toBe('weight');
  });

  test('names that correspond: by name, nothing renamed', () => {
    const a = alignNames([header(hf), header(hf.map((t) => ({ ...t, dtype: 'BF16' })))]);
    expect(a.methods).toEqual([{ model: 1, method: 'name', matched: 7, tensors: 7 }]);
    expect(a.names[1]).toEqual(hf.map((t) => t.name));
  });

  test('models of another architecture first: each model keeps its names when another model shares them (a zoo as one folder)', () => {
    // model 0 a ViT; models 1 and 2 Llama-like, model 1 without one of the tensors (tied
    // embeddings) and with a resized head: their names correspond to each other, not to model 0
    const vit = [{ name: 'vit.encoder.layer.0.attention.query.weight', shape: [16, 16] }, { name: 'vit.encoder.layer.0.output.dense.weight', shape: [16, 32] }, { name: 'classifier.weight', shape: [10, 16] }];
    const child = hf.slice(1).map((t) => (t.name === 'model.layers.1.self_attn.q_proj.weight' ? { ...t, shape: [16, 16] } : t));
    const a = alignNames([header(vit), header(hf), header(child)]);
    // (model 0, whose names no other model shares, is itself aligned by order to the model that
    // matches most of it: harmless, its tensors are then compared as unrelated)
    expect(a.methods.filter((x) => x.model > 0).map((x) => x.method)).toEqual(['name', 'name']);
    expect(a.names[1]).toEqual(hf.map((t) => t.name));
    expect(a.names[2]).toEqual(child.map((t) => t.name));
    // an export with names of its own among them is aligned to the model that matches most of it
    const onnx = hf.map((t, i) => ({ ...t, name: `onnx::T_${i}` }));
    const b = alignNames([header(vit), header(hf), header(child), header(onnx)]);
    expect(b.methods.find((x) => x.model === 3)!.method).toBe('order');
    expect(b.names[3].filter((x) => hf.some((t) => t.name === x)).length).toBeGreaterThanOrEqual(4);
  });

  test('prefixed and /-separated names: by normalised names, every tensor matched', () => {
    const other = hf.map((t) => ({ ...t, name: '/' + ('base_model.model.' + t.name).replace(/\./g, '/') }));
    const a = alignNames([header(hf), header(other)]);
    expect(a.methods).toEqual([{ model: 1, method: 'normalised', matched: 7, tensors: 7 }]);
    expect(a.names[1]).toEqual(hf.map((t) => t.name));
    const plan = alignTensors([header(hf), header(other)]);
    expect(plan.methods[0].method).toBe('normalised');
    expect(plan.tensors.map((t) => [t.name, t.names?.[1]])).toEqual(hf.map((t, i) => [t.name, other[i].name]));
  });

  test('common suffixes: a name that ends the other one (a wrapper module) is matched when unique', () => {
    const other = hf.map((t) => ({ ...t, name: t.name.replace(/^model\./, 'encoder.decoder_stack.') }));
    const a = alignNames([header(hf), header(other)]);
    expect(a.methods[0]).toEqual({ model: 1, method: 'normalised', matched: 7, tensors: 7 });
  });

  test('opaque names: by order and shape (the LCS of the shape sequences, tensors under 64 elements left out)', () => {
    // the ONNX-style export drops the embedding and adds a constant; same order otherwise
    const onnx: T[] = [
      { name: 'onnx::Const_3', shape: [8, 8] },
      { name: 'onnx::MatMul_101', shape: [16, 16] },
      { name: 'onnx::Add_102', shape: [16] },
      { name: 'onnx::MatMul_103', shape: [32, 16] },
      { name: 'onnx::MatMul_104', shape: [16, 32] },
      { name: 'onnx::MatMul_105', shape: [16, 16] },
      { name: 'onnx::Mul_106', shape: [16] },
    ];
    const a = alignNames([header(hf), header(onnx)]);
    // 16x16, 32x16, 16x32, 16x16 in order: 4 matched; the 16-element vectors are too small to place
    expect(a.methods).toEqual([{ model: 1, method: 'order', matched: 4, tensors: 7 }]);
    expect(a.names[1]).toEqual([
      'onnx::Const_3', 'model.layers.0.self_attn.q_proj.weight', 'onnx::Add_102', 'model.layers.0.mlp.up_proj.weight',
      'model.layers.0.mlp.down_proj.weight', 'model.layers.1.self_attn.q_proj.weight', 'onnx::Mul_106',
    ]);
    // a shape that breaks the order is skipped, not forced: swapping two shapes loses one match
    const swapped = [onnx[0], onnx[1], onnx[2], onnx[4], onnx[3], onnx[5], onnx[6]];
    expect(alignNames([header(hf), header(swapped)]).methods[0].matched).toBe(3);
  });
});
