// Model discovery: folders of models, diffusers pipelines, the Hugging Face hub cache.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { discoverHfCache, discoverModels } from '../lib';
import { Rng } from './helpers/reference';
import { encode, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir();
});
afterAll(() => tmp.cleanup());

function weights(file: string, seed: number): void {
  const rng = new Rng(seed);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeSafetensors(file, [{ name: 'w', dtype: 'F32', shape: [8, 8], data: encode('F32', Array.from({ length: 64 }, () => rng.normal())) }]);
}

describe('discovery', () => {
  test('a folder of model directories, nested, with bare files; ids are POSIX paths relative to the root', async () => {
    const root = path.join(tmp.dir, 'zoo');
    weights(path.join(root, 'a', 'model.safetensors'), 1);
    weights(path.join(root, 'group', 'b', 'model.safetensors'), 2);
    weights(path.join(root, 'loose', 'x.safetensors'), 3);
    weights(path.join(root, 'loose', 'y.safetensors'), 4);
    fs.mkdirSync(path.join(root, '.hidden'));
    weights(path.join(root, '.hidden', 'model.safetensors'), 5);
    const found = await discoverModels(root);
    expect(found.map((m) => m.id)).toEqual(['a', 'group/b', 'loose/x.safetensors', 'loose/y.safetensors']);
    expect(await discoverModels(path.join(root, 'a'))).toEqual([{ id: 'a', path: path.join(root, 'a'), format: 'safetensors' }]);
  });

  test('a diffusers pipeline: each component is a model', async () => {
    const pipe = path.join(tmp.dir, 'sd');
    fs.mkdirSync(pipe, { recursive: true });
    fs.writeFileSync(path.join(pipe, 'model_index.json'), JSON.stringify({ _class_name: 'StableDiffusionPipeline', unet: ['diffusers', 'UNet2DConditionModel'] }));
    weights(path.join(pipe, 'unet', 'diffusion_pytorch_model.safetensors'), 6);
    weights(path.join(pipe, 'vae', 'diffusion_pytorch_model.fp16.safetensors'), 7);
    weights(path.join(pipe, 'text_encoder', 'model.safetensors'), 8);
    fs.mkdirSync(path.join(pipe, 'scheduler'));
    fs.writeFileSync(path.join(pipe, 'scheduler', 'scheduler_config.json'), '{}');
    const found = await discoverModels(pipe);
    expect(found.map((m) => m.id)).toEqual(['text_encoder', 'unet', 'vae']);
  });

  test('the Hugging Face hub cache: refs/main -> snapshot, symlinks into blobs, id ORG/NAME', async () => {
    const cache = path.join(tmp.dir, 'hub');
    const repo = (org: string, name: string, commit: string, files: Record<string, number>) => {
      const base = path.join(cache, `models--${org}--${name}`);
      fs.mkdirSync(path.join(base, 'refs'), { recursive: true });
      fs.writeFileSync(path.join(base, 'refs', 'main'), commit + '\n');
      for (const [rel, seed] of Object.entries(files)) {
        const blob = path.join(base, 'blobs', `blob${seed}`);
        weights(blob, seed);
        const link = path.join(base, 'snapshots', commit, rel);
        fs.mkdirSync(path.dirname(link), { recursive: true });
        fs.symlinkSync(path.relative(path.dirname(link), blob), link);
      }
    };
    repo('meta-llama', 'Llama-2-7b-hf', 'a'.repeat(40), { 'model.safetensors': 11 });
    repo('codellama', 'CodeLlama-7b-hf', 'b'.repeat(40), { 'model.safetensors': 12 });
    repo('runwayml', 'stable-diffusion-v1-5', 'c'.repeat(40), { 'unet/diffusion_pytorch_model.safetensors': 13 });
    fs.mkdirSync(path.join(cache, 'models--org--no-main', 'snapshots'), { recursive: true }); // never downloaded from main
    const found = await discoverHfCache(cache);
    expect(found.map((m) => m.id)).toEqual(['codellama/CodeLlama-7b-hf', 'meta-llama/Llama-2-7b-hf', 'runwayml/stable-diffusion-v1-5/unet']);
    const bin = path.resolve(__dirname, '..', 'bin', 'mother.js');
    const r = spawnSync(process.execPath, [bin, 'recover', '--hf-cache', cache, '--json', '-q'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).models.map((m: { id: string }) => m.id)).toEqual(found.map((m) => m.id));
    const usage = spawnSync(process.execPath, [bin, 'recover'], { encoding: 'utf8' });
    expect(usage.status).toBe(2);
  });
});
