// Alignment across exporters end to end (issue 14.5): models whose tensors are named
// differently (written here to mimic exports: PEFT/ONNX-style prefixes and / separators, opaque
// ONNX initializer names) are compared tensor for tensor through the addon's per-model names;
// the results and the CLI say which alignment was used and how many tensors it matched.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { pairwiseStats, recover } from '../lib';
import { encode, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';
import { Rng } from './helpers/reference';

const BIN = path.resolve(__dirname, '..', 'bin', 'mother.js');

describe('alignment across exporters, through the pairwise pass', () => {
  const tmp = tmpDir('mother-align-');
  afterAll(() => tmp.cleanup());
  const rng = new Rng(5);
  const shapes: [string, number[]][] = [
    ['model.layers.0.self_attn.q_proj.weight', [16, 16]],
    ['model.layers.0.self_attn.q_proj.bias', [16]],
    ['model.layers.0.mlp.up_proj.weight', [32, 16]],
    ['model.layers.0.self_attn.o_proj.weight', [16, 16]],
    ['model.layers.1.self_attn.q_proj.weight', [16, 16]],
  ];
  const values = shapes.map(([, s]) => Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => rng.normal()));
  const write = (file: string, names: string[], vals = values) =>
    writeSafetensors(path.join(tmp.dir, file), shapes.map(([, shape], i) => ({ name: names[i], dtype: 'F32', shape, data: encode('F32', vals[i]) })));
  const hfNames = shapes.map(([n]) => n);
  write('hf.safetensors', hfNames);
  write('onnx-style.safetensors', hfNames.map((n) => '/' + n.replace(/\./g, '/')));
  write('opaque.safetensors', hfNames.map((_, i) => `onnx::MatMul_${100 + i}`));
  // a fine-tune of hf, opaque names: the differences are those of the values, not of the names
  const ft = values.map((v) => v.map((x) => x + 0.01 * rng.normal()));
  write('ft-opaque.safetensors', hfNames.map((_, i) => `onnx::MatMul_${200 + i}`), ft);
  const at = (f: string) => path.join(tmp.dir, f);

  test('a copy under other names is at distance 0 on every aligned tensor; the method and counts are reported', async () => {
    const d = await pairwiseStats([at('hf.safetensors'), at('onnx-style.safetensors'), at('opaque.safetensors')], { metrics: ['rms'] });
    expect(d.alignment).toEqual([
      { model: 1, method: 'normalised', matched: 5, tensors: 5 },
      { model: 2, method: 'order', matched: 4, tensors: 5 },
    ]);
    const q = d.layers.find((l) => l.name === 'model.layers.0.self_attn.q_proj.weight')!;
    expect(q.rows).toEqual([16, 16, 16]);
    expect([q.rms[1], q.rms[2], q.rms[5]]).toEqual([0, 0, 0]);
    // the bias (16 elements) is aligned by name normalisation only, not by order
    const bias = d.layers.find((l) => l.name === 'model.layers.0.self_attn.q_proj.bias')!;
    expect(bias.rows).toEqual([16, 16, -1]);
    expect(d.skipped).toEqual(expect.arrayContaining([{ name: 'onnx::MatMul_101', model: -1, reason: 'present in only one model' }]));
  });

  test('recover: a fine-tune under opaque names is related to its parent; the graph says how it was aligned', async () => {
    const g = await recover([{ id: 'hf', path: at('hf.safetensors') }, { id: 'ft', path: at('ft-opaque.safetensors') }]);
    expect(g.alignment).toEqual([{ model: 'ft', method: 'order', matched: 4, tensors: 5 }]);
    expect(g.families).toEqual([['hf', 'ft']]);
    expect(g.edges[0].distance).toBeGreaterThan(0.005);
    expect(g.edges[0].distance).toBeLessThan(0.02);
  });

  test('mother distances and recover -v print the alignment', () => {
    const r = spawnSync(process.execPath, [BIN, 'distances', at('hf.safetensors'), at('opaque.safetensors')], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('[1] aligned to [0] by order and shape: 4 of 5 float tensors matched');
    const v = spawnSync(process.execPath, [BIN, 'recover', at('hf.safetensors'), at('ft-opaque.safetensors'), '-v'], { encoding: 'utf8' });
    expect(v.stderr).toMatch(/alignment to hf\.safetensors: 0 of 1 models by name; ft-opaque\.safetensors by order and shape \(4 of 5 float tensors matched\)/);
  });
});
