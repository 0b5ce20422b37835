// The npm package, what can be checked fast: the loader's error when no addon is usable (on
// fake package roots, and through the CLI of a copied package), what `npm pack` would ship,
// no dangling source maps, the emulator out of the install build, build:cuda usable from a
// dependent. The slow round trip (npm pack with its prebuilds, installs into empty projects,
// one on a PATH with no compiler) is scripts/check-package.sh, run by .ci/run.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { resolveBackend } from '../lib';
import { gpuLibraryCandidates } from '../lib/core/backend';
import { addonFile, loadAddon, packageRoot } from '../lib/core/binding';
import { MotherError } from '../lib/core/errors';
import { tmpDir } from './helpers/tmp';

const ROOT = path.resolve(__dirname, '..');
const SAMPLE = path.join(ROOT, 'samples', 'zoo-small', 'ft', 'm02');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  license: string;
  files: string[];
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

let tmp: ReturnType<typeof tmpDir>;
beforeAll(() => {
  tmp = tmpDir('mother-packaging-');
});
afterAll(() => tmp.cleanup());

/** A package root holding only a package.json: as installed with --ignore-scripts where no
 *  prebuild matches (or after the prebuilds and the build were deleted). */
function fakeRoot(...parts: string[]): string {
  const root = path.join(tmp.dir, ...parts);
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'mother', version: '0.0.0' }));
  return root;
}

function noAddonError(root: string): MotherError {
  try {
    loadAddon(root);
  } catch (e) {
    return e as MotherError;
  }
  throw new Error(`loadAddon(${root}) loaded something`);
}

describe('no usable addon: one line, ERR_NO_ADDON, what to run', () => {
  test('installed package without a binary: `npm rebuild mother`', () => {
    const root = fakeRoot('app', 'node_modules', 'mother');
    const e = noAddonError(root);
    expect(e).toBeInstanceOf(MotherError);
    expect(e.code).toBe('ERR_NO_ADDON');
    expect(e.message).not.toContain('\n');
    expect(e.message).toContain('run `npm rebuild mother`');
    expect(e.message).toContain(`${process.platform}-${process.arch}`);
    expect(e.message).toContain(root);
    expect(e.file).toBe(root);
    expect((e as Error & { cause?: unknown }).cause).toBeInstanceOf(Error);
  });

  test('a checkout of mother itself: `npm run build:addon`', () => {
    const root = fakeRoot('checkout');
    const e = noAddonError(root);
    expect(e.code).toBe('ERR_NO_ADDON');
    expect(e.message).toContain(`run \`npm run build:addon\` in ${root}`);
    expect(e.message).not.toContain('\n');
  });

  test('a binary that does not load (corrupt, or built for another platform) names the file', () => {
    const root = fakeRoot('broken', 'node_modules', 'mother');
    const file = path.join(root, 'build', 'Release', 'mother.node');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'not an ELF file\n');
    const e = noAddonError(root);
    expect(e.code).toBe('ERR_NO_ADDON');
    expect(e.message).toContain(`${file} does not load`);
    expect(e.message).toContain('npm rebuild mother');
    expect(e.message).not.toContain('\n');
  });

  test('here, a checkout with a local build: that build is loaded, before any prebuild', () => {
    expect(addonFile()).toBe(path.join(ROOT, 'build', 'Release', 'mother.node'));
  });

  test('ERR_NO_ADDON is in the core list (the TS list is checked against it in addon_lists)', () => {
    const header = fs.readFileSync(path.join(ROOT, 'native', 'core', 'error.h'), 'utf8');
    expect(header).toMatch(/X\(NoAddon, "ERR_NO_ADDON", Runtime,/);
  });

  test('the CLI of a package without a binary prints that line and exits 1, no stack', () => {
    // a copy of what the tarball ships of the JS (bin/, dist/lib/), under node_modules, without
    // build/ or prebuilds/; its dependencies resolve to this checkout's through NODE_PATH
    const root = fakeRoot('cli', 'node_modules', 'mother');
    fs.cpSync(path.join(ROOT, 'bin'), path.join(root, 'bin'), { recursive: true });
    fs.cpSync(path.join(ROOT, 'dist', 'lib'), path.join(root, 'dist', 'lib'), { recursive: true });
    const env = { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') };
    const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(root, 'bin', 'mother.js'), ...args], { encoding: 'utf8', env });
    for (const args of [['stats', SAMPLE, '--quiet'], ['recover', path.dirname(SAMPLE), '--quiet'], ['distances', SAMPLE, SAMPLE, '--quiet']]) {
      const r = cli(...args);
      expect({ args, status: r.status, stdout: r.stdout }).toEqual({ args, status: 1, stdout: '' });
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^mother: the native addon is missing for .*; run `npm rebuild mother`/);
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    }
    const help = cli('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: mother');
  });
});

/** What `npm pack` would put in the tarball (no scripts run: the prebuilds are those on disk). */
function packList(): string[] {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status).toBe(0);
  const out = JSON.parse(r.stdout) as { files: { path: string }[] }[];
  return out[0].files.map((f) => f.path).sort();
}

describe('the tarball', () => {
  let files: string[];
  beforeAll(() => {
    files = packList();
  }, 60000);

  test('LICENSE (MIT, as package.json says), the schema the README links, README', () => {
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'docs/model-graph.schema.json']));
    expect(pkg.license).toBe('MIT');
    const license = fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8');
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} the mother authors\n/);
    expect(license).toContain('Permission is hereby granted, free of charge');
    expect(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')).toContain('](docs/model-graph.schema.json)');
    JSON.parse(fs.readFileSync(path.join(ROOT, 'docs', 'model-graph.schema.json'), 'utf8'));
  });

  test('the JS, its types and the CLI; no TypeScript sources, tests, benchmarks, scripts or builds', () => {
    expect(files).toEqual(expect.arrayContaining(['bin/mother.js', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/cli/main.js']));
    const unwanted = files.filter((f) => /^(lib|test|benchmarks|samples|scripts|build|build-[^/]*|native\/fuzz|native\/tools)\//.test(f) || (/\.(map|ts)$/.test(f) && !f.endsWith('.d.ts')));
    expect(unwanted).toEqual([]);
  });

  test('everything a build from source needs: binding.gyp and every source and header of the addon', () => {
    expect(files).toEqual(expect.arrayContaining(['binding.gyp', 'CMakeLists.txt']));
    const sources = bindingTargets().flatMap((t) => t.sources ?? []);
    expect(sources.length).toBeGreaterThan(10);
    const headers = walk(path.join(ROOT, 'native'))
      .map((f) => path.relative(ROOT, f).split(path.sep).join('/'))
      .filter((f) => /\.(h|inc|cu)$/.test(f) && !/^native\/(fuzz|tools)\//.test(f));
    const missing = [...sources, ...headers].filter((f) => !files.includes(f));
    expect(missing).toEqual([]);
  });

  test('the prebuilds: prebuilds/ is shipped, and every prebuild on disk is in the list', () => {
    expect(pkg.files).toContain('prebuilds/');
    const onDisk = walk(path.join(ROOT, 'prebuilds')).map((f) => path.relative(ROOT, f).split(path.sep).join('/'));
    expect(files.filter((f) => f.startsWith('prebuilds/'))).toEqual(onDisk.sort());
    // made in prepack, for both architectures (scripts/prebuild.js checks each binary's ELF header)
    expect(pkg.scripts.prepack).toBe('npm run prebuilds');
    expect(pkg.scripts.prebuilds).toBe('node scripts/prebuild.js');
    const script = fs.readFileSync(path.join(ROOT, 'scripts', 'prebuild.js'), 'utf8');
    expect(script).toContain("'x64,arm64'");
    expect(script).toMatch(/prebuildify\/bin\.js'\), '--napi', '--strip', '--tag-libc'/);
  });
});

describe('no dangling source maps', () => {
  test('the build emits none, and nothing in dist/ points at a map or a source that is missing', () => {
    const build = JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')) as {
      compilerOptions: { sourceMap?: boolean; declarationMap?: boolean };
    };
    expect(build.compilerOptions.sourceMap).toBe(false);
    expect(build.compilerOptions.declarationMap).toBe(false);
    const dangling: string[] = [];
    for (const f of walk(path.join(ROOT, 'dist'))) {
      if (f.endsWith('.map')) {
        const map = JSON.parse(fs.readFileSync(f, 'utf8')) as { sources: string[]; sourceRoot?: string };
        for (const s of map.sources) {
          if (!fs.existsSync(path.resolve(path.dirname(f), map.sourceRoot ?? '', s))) dangling.push(`${f} -> ${s}`);
        }
      } else if (/\.(js|d\.ts)$/.test(f)) {
        const m = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(fs.readFileSync(f, 'utf8'));
        if (m) dangling.push(`${f} -> ${m[1]}`);
      }
    }
    expect(dangling).toEqual([]);
  });
});

describe('the test-only GPU emulator is not built at install', () => {
  test('binding.gyp has the addon target only; build:emulator (run by pretest) builds the emulator', () => {
    expect(bindingTargets().map((t) => t.target_name)).toEqual(['mother']);
    expect(pkg.scripts.install).toBe('node-gyp-build');
    expect(pkg.scripts['build:emulator']).toBe('node scripts/build-emulator.js');
    expect(pkg.scripts.pretest).toContain('npm run build:emulator');
    expect(fs.existsSync(path.join(ROOT, 'build', 'Release', 'libmother_gpu_emulator.so'))).toBe(true);
    // CMake defines it for the GPU harness, out of the default build
    expect(fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8')).toMatch(/add_library\(mother_gpu_emulator SHARED EXCLUDE_FROM_ALL /);
  });
});

describe('build:cuda from a dependent', () => {
  test('it runs CMake itself: no devDependency (cmake-js) needed', () => {
    const script = pkg.scripts['build:cuda'];
    const commands = script.split('&&').map((c) => c.trim().split(/\s+/)[0]);
    expect(commands).toEqual(['cmake', 'cmake']);
    expect(script).toContain('-DMOTHER_CUDA=ON');
    expect(script).toContain('--target mother_cuda');
    // where it puts the library is where the backend looks
    expect(gpuLibraryCandidates()).toContain(path.join(packageRoot(), 'build-cuda', 'libmother_cuda.so'));
  });

  test('the message when the library is missing says where to run it', async () => {
    const saved = process.env.MOTHER_CUDA_LIBRARY;
    delete process.env.MOTHER_CUDA_LIBRARY;
    try {
      if (gpuLibraryCandidates().some((c) => fs.existsSync(c))) return; // built here: nothing to say
      await expect(resolveBackend('cuda')).rejects.toMatchObject({
        code: 'ERR_BACKEND',
        message: `the CUDA backend is not built: run \`npm run build:cuda\` in ${packageRoot()} (needs CMake and nvcc), or set MOTHER_CUDA_LIBRARY`,
      });
    } finally {
      if (saved !== undefined) process.env.MOTHER_CUDA_LIBRARY = saved;
    }
  });
});

function bindingTargets(): { target_name: string; sources?: string[] }[] {
  // gyp files are Python literals: JSON here, with # comments
  const text = fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '');
  return (JSON.parse(text) as { targets: { target_name: string; sources?: string[] }[] }).targets;
}

function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}
