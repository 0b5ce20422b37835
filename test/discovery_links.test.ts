// Discovery against symlinks (issue 15.3): loops, links out of the root, links to /, the same
// model reached twice; and the Hugging Face cache: the location's order of environment
// variables, --revision, a broken entry as a warning, hub ids on the command line.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { defaultHfCache, discoverHfCache, discoverModels, resolveHubId } from '../lib';
import { Rng } from './helpers/reference';
import { encode, writeSafetensors } from './helpers/safetensors';
import { tmpDir } from './helpers/tmp';

const BIN = path.resolve(__dirname, '..', 'bin', 'mother.js');
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

describe('discovery and symbolic links', () => {
  test('loops (a link to the root, to a parent, two links to each other): two models come out as two', async () => {
    const root = path.join(tmp.dir, 'loops');
    weights(path.join(root, 'a', 'model.safetensors'), 1);
    weights(path.join(root, 'deep', 'b', 'model.safetensors'), 2);
    fs.symlinkSync(root, path.join(root, 'self'));
    fs.symlinkSync('..', path.join(root, 'deep', 'up'));
    fs.mkdirSync(path.join(root, 'x'));
    fs.mkdirSync(path.join(root, 'y'));
    fs.symlinkSync(path.join(root, 'y'), path.join(root, 'x', 'to-y'));
    fs.symlinkSync(path.join(root, 'x'), path.join(root, 'y', 'to-x'));
    const found = await discoverModels(root, Infinity);
    expect(found.map((m) => m.id)).toEqual(['a', 'deep/b']);
  });

  test('the same model through two links is listed once; a link to a model outside the root is followed', async () => {
    const root = path.join(tmp.dir, 'dups');
    const outside = path.join(tmp.dir, 'elsewhere', 'c');
    weights(path.join(outside, 'model.safetensors'), 3);
    weights(path.join(root, 'a', 'model.safetensors'), 4);
    fs.symlinkSync(path.join(root, 'a'), path.join(root, 'alias-of-a'));
    fs.symlinkSync(outside, path.join(root, 'c-link'));
    // bare files in a folder of several: the link to c's weights and a file of its own
    weights(path.join(root, 'bare', 'own.safetensors'), 9);
    fs.symlinkSync(path.join(outside, 'model.safetensors'), path.join(root, 'bare', 'to-c.safetensors'));
    const found = await discoverModels(root);
    expect(found.map((m) => m.id)).toEqual(['a', 'bare/own.safetensors', 'bare/to-c.safetensors', 'c-link']);
  });

  test('a link to / (or any folder outside the root that is no model) is not walked', async () => {
    const root = path.join(tmp.dir, 'slash');
    weights(path.join(root, 'a', 'model.safetensors'), 5);
    fs.symlinkSync('/', path.join(root, 'everything'));
    const outside = path.join(tmp.dir, 'outside-no-model');
    weights(path.join(outside, 'sub', 'm', 'model.safetensors'), 6);
    fs.symlinkSync(outside, path.join(root, 'out'));
    const t0 = Date.now();
    const found = await discoverModels(root, Infinity);
    expect(found.map((m) => m.id)).toEqual(['a']);
    expect(Date.now() - t0).toBeLessThan(5000);
    const r = spawnSync(process.execPath, [BIN, 'recover', root, '-q'], { encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.status).toBe(0);
  });

  test('bounded depth: models below maxDepth folders are not looked for', async () => {
    const root = path.join(tmp.dir, 'depth');
    weights(path.join(root, '1', '2', '3', 'm', 'model.safetensors'), 6);
    weights(path.join(root, 'top', 'model.safetensors'), 7);
    expect((await discoverModels(root, 3)).map((m) => m.id)).toEqual(['1/2/3/m', 'top']);
    expect((await discoverModels(root, 2)).map((m) => m.id)).toEqual(['top']);
  });

  test('a dangling link is skipped', async () => {
    const root = path.join(tmp.dir, 'dangling');
    weights(path.join(root, 'a', 'model.safetensors'), 8);
    fs.symlinkSync(path.join(root, 'gone'), path.join(root, 'b.safetensors'));
    expect((await discoverModels(root)).map((m) => m.id)).toEqual(['a']);
  });
});

describe('several roots: ids unique and readable', () => {
  test('two roots with the same folder names: paths relative to their common folder; a root given twice counts once', () => {
    const zoo = path.join(tmp.dir, 'zoo');
    weights(path.join(zoo, 'ft', 'm00', 'model.safetensors'), 10);
    weights(path.join(zoo, 'ft', 'm01', 'model.safetensors'), 11);
    weights(path.join(zoo, 'llm', 'm00', 'model.safetensors'), 12);
    const ids = (...args: string[]) => {
      const r = spawnSync(process.execPath, [BIN, 'recover', ...args, '--json', '-q'], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      return (JSON.parse(r.stdout).models as { id: string }[]).map((m) => m.id);
    };
    expect(ids(path.join(zoo, 'ft'), path.join(zoo, 'llm'))).toEqual(['ft/m00', 'ft/m01', 'llm/m00']);
    // unique already: unchanged
    expect(ids(path.join(zoo, 'ft'))).toEqual(['m00', 'm01']);
    // a root inside another: each model once, no invented path such as ft/m00/m00
    const nested = ids(path.join(zoo, 'ft'), path.join(zoo, 'ft', 'm00'));
    expect(nested).toEqual(['m00', 'm01']);
    const mixed = ids(path.join(zoo, 'ft', 'm00'), path.join(zoo, 'llm', 'm00'));
    expect(mixed).toEqual(['ft/m00', 'llm/m00']);
    for (const id of mixed) expect(fs.existsSync(path.join(zoo, id))).toBe(true);
  });
});

describe('the Hugging Face cache', () => {
  test('its location follows huggingface_hub: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub', () => {
    const all = { HF_HUB_CACHE: '/a', HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c', XDG_CACHE_HOME: '/d' };
    expect(defaultHfCache(all)).toBe('/a');
    expect(defaultHfCache({ ...all, HF_HUB_CACHE: '' })).toBe('/b');
    expect(defaultHfCache({ HF_HOME: '/c', XDG_CACHE_HOME: '/d' })).toBe('/c/hub');
    expect(defaultHfCache({ XDG_CACHE_HOME: '/d' })).toBe('/d/huggingface/hub');
    expect(defaultHfCache({})).toBe(path.join(os.homedir(), '.cache', 'huggingface', 'hub'));
    expect(defaultHfCache({ HF_HOME: '~/hf' })).toBe(path.join(os.homedir(), 'hf', 'hub'));
  });

  const cache = () => path.join(tmp.dir, 'hub');
  const repo = (org: string, name: string, refs: Record<string, string>, snapshots: Record<string, number>) => {
    const base = path.join(cache(), `models--${org}--${name}`);
    fs.mkdirSync(path.join(base, 'refs'), { recursive: true });
    for (const [ref, commit] of Object.entries(refs)) fs.writeFileSync(path.join(base, 'refs', ref), commit);
    for (const [commit, seed] of Object.entries(snapshots)) {
      const blob = path.join(base, 'blobs', `blob${seed}`);
      weights(blob, seed);
      const link = path.join(base, 'snapshots', commit, 'model.safetensors');
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(path.relative(path.dirname(link), blob), link);
    }
  };
  const A = 'a'.repeat(40);
  const B = 'b'.repeat(40);
  beforeAll(() => {
    repo('org', 'good', { main: A, v2: B }, { [A]: 20, [B]: 21 });
    repo('org', 'other', { main: A }, { [A]: 22 });
    repo('org', 'bad-ref', { main: 'not a hash!' }, {});
    repo('org', 'no-snapshot', { main: B }, {});
  });

  test('a broken entry is a warning, not an abort; --revision reads refs/<rev> or a commit', async () => {
    const warnings: string[] = [];
    const found = await discoverHfCache(cache(), { onWarning: (m) => warnings.push(m) });
    expect(found.map((m) => m.id)).toEqual(['org/good', 'org/other']);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/org\/bad-ref: skipped: .*not a commit hash/);
    expect(warnings[1]).toMatch(/org\/no-snapshot: skipped: .*snapshots\/b+ is missing/);
    const v2 = await discoverHfCache(cache(), { revision: 'v2', onWarning: () => undefined });
    expect(v2.map((m) => [m.id, path.basename(path.dirname(m.path + '/x'))])).toEqual([['org/good', B]]);
    const byCommit = await resolveHubId('org/good', cache(), { revision: B });
    expect(byCommit[0].path).toBe(path.join(cache(), 'models--org--good', 'snapshots', B));
    await expect(resolveHubId('org/good', cache(), { revision: 'v9' })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    await expect(resolveHubId('org/missing', cache())).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  });

  test('CLI: hub ids as arguments, --revision, warnings on stderr', () => {
    const env = { ...process.env, HF_HUB_CACHE: cache() };
    const run = (...args: string[]) => spawnSync(process.execPath, [BIN, 'recover', ...args, '-q'], { encoding: 'utf8', env, cwd: tmp.dir });
    const r = run('org/good', 'org/other', '--json');
    expect(r.status).toBe(0);
    const g = JSON.parse(r.stdout);
    expect(g.models.map((m: { id: string }) => m.id)).toEqual(['org/good', 'org/other']);
    expect(g.models[0].path).toBe(path.join(cache(), 'models--org--good', 'snapshots', A));
    const v2 = run('org/good', 'org/other', '--revision', 'v2', '--json');
    expect(v2.status).toBe(3); // org/other has no v2
    expect(v2.stderr).toMatch(/org\/other: no revision v2/);
    const scan = run('--hf-cache', '--json');
    expect(scan.status).toBe(0);
    expect(scan.stderr).toMatch(/warning: org\/bad-ref: skipped/);
    expect(JSON.parse(scan.stdout).models).toHaveLength(2);
    const missing = run('org/nothing-here');
    expect(missing.status).toBe(3);
    expect(missing.stderr).toMatch(/org\/nothing-here: no such file or directory, and not in the Hugging Face cache/);
  });
});
