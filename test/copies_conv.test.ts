// Copies in a family of convolutional networks (no square 2-D tensor): the dtype copies are
// told by the relative difference over the weights of two or more dimensions and by the
// precision of those weights, as they are over square layers in transformers (README,
// Direction 1).
import * as path from 'node:path';

import { recover } from '../lib';
import { Rng } from './helpers/reference';
import { decode, encode, FloatDtype, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir('mother-copies-conv-');
});
afterAll(() => tmp.cleanup());

const SHAPES: Record<string, number[]> = { 'conv1.weight': [16, 8, 3, 3], 'conv2.weight': [32, 16, 3, 3], 'fc.weight': [10, 32], 'conv1.bias': [16] };
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

test('F16 and BF16 copies of convolutional networks are converted leaves under their F32 sources', async () => {
  const rng = new Rng(31);
  const base = Object.fromEntries(Object.entries(SHAPES).map(([k, s]) => [k, Array.from({ length: size(s) }, () => 0.05 * rng.normal())]));
  const ft = Object.fromEntries(Object.entries(base).map(([k, v]) => [k, v.map((x) => x + 0.01 * rng.normal())]));
  const save = (id: string, w: Record<string, number[]>, dtype: FloatDtype) => {
    const file = path.join(tmp.dir, `${id}.safetensors`);
    writeSafetensors(file, Object.entries(w).map(([name, v]) => ({ name, dtype, shape: SHAPES[name], data: encode(dtype, Array.from(decode('F32', encode('F32', v)))) })));
    return { id, path: file };
  };
  const models = [save('ft_f16', ft, 'F16'), save('base', base, 'F32'), save('base_bf16', base, 'BF16'), save('ft', ft, 'F32')];
  const g = await recover(models);
  expect(g.families).toHaveLength(1);
  const edge = (c: string) => g.edges.find((e) => e.child === c);
  expect(edge('ft_f16')).toMatchObject({ parent: 'ft', relation: 'converted' });
  expect(edge('base_bf16')).toMatchObject({ parent: 'base', relation: 'converted' });
  // the training edge joins the two F32 models, one way or the other
  const training = g.edges.filter((e) => e.relation === 'finetune');
  expect(training.map((e) => [e.parent, e.child].sort().join('-'))).toEqual(['base-ft']);
  expect(g.familyReports[0].copies.copies).toBe(2);
});
