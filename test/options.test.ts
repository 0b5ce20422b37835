// The arguments and options of the public calls are checked once, at the call, before any file
// is read: every rejection is a MotherError ERR_INVALID_ARGUMENT shaped
// "expected X for Y, got Z".
import * as path from 'node:path';

import {
  discoverHfCache, discoverModels, evaluate, inspectModel, pairwiseStats, recover, related, renderGraph, resolveModel, scanModel,
} from '../lib';

// A path that does not exist: an option error must come before the file is looked for.
const NOPE = path.join(__dirname, 'no-such-model');

async function rejects(p: Promise<unknown>, message: string): Promise<void> {
  await expect(p).rejects.toMatchObject({ name: 'MotherError', code: 'ERR_INVALID_ARGUMENT', message });
}

describe('option checks: one message shape, before any file is read', () => {
  test('scanModel', async () => {
    await rejects(scanModel(NOPE, { threads: -1 }), 'expected an integer from 0 to 4096 for threads, got -1');
    await rejects(scanModel(NOPE, { threads: 1.5 }), 'expected an integer from 0 to 4096 for threads, got 1.5');
    await rejects(scanModel(NOPE, { chunkBytes: 2 ** 31 + 1 }), 'expected an integer from 4096 to 2^31 for chunkBytes, got 2147483649');
    await rejects(scanModel(NOPE, { simd: 'sse9' }), 'expected auto, scalar, avx2, avx512 or neon for simd, got "sse9"');
    await rejects(scanModel(NOPE, { backend: 'gpu' as never }), 'expected auto, cpu or cuda for backend, got "gpu"');
    await rejects(scanModel(NOPE, { onProgress: 3 as never }), 'expected a function for onProgress, got 3');
    await rejects(scanModel(NOPE, { signal: {} as never }), 'expected an AbortSignal for signal, got an object');
    await rejects(scanModel(NOPE, 5 as never), 'expected an object for options, got 5');
    await rejects(scanModel(42 as never), 'expected a path (string) for modelPath, got 42');
    // valid options reach the file system
    await expect(scanModel(NOPE, { threads: 0, chunkBytes: 4096, simd: 'auto', backend: 'cpu' })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  });

  test('pairwiseStats', async () => {
    await rejects(pairwiseStats('a' as never), 'expected an array of model paths for models, got "a"');
    await rejects(pairwiseStats([NOPE, 7 as never]), 'expected a path (string) for models[1], got 7');
    await rejects(pairwiseStats([NOPE], { threads: 5000 }), 'expected an integer from 0 to 4096 for threads, got 5000');
    await rejects(pairwiseStats([NOPE], { chunkElems: 10 }), 'expected an integer from 64 to 2^24 for chunkElems, got 10');
    await rejects(pairwiseStats([NOPE], { jobElems: -1 }), 'expected an integer from 0 to 2^32 - 1 for jobElems, got -1');
    await rejects(pairwiseStats([NOPE], { metrics: 'rms' as never }), 'expected an array of metrics (rms, l1, maxdiff, rank) for metrics, got "rms"');
    await rejects(pairwiseStats([NOPE], { metrics: ['rms', 'cosine' as never] }), 'expected rms, l1, maxdiff or rank for metrics[1], got "cosine"');
    await rejects(pairwiseStats([NOPE], { rank: { k: 0 } }), 'expected an integer from 1 to 1024 for rank.k, got 0');
    await rejects(pairwiseStats([NOPE], { rank: { seed: -1 } }), 'expected a BigInt from 0 to 2^64 - 1 or a safe integer >= 0 for rank.seed, got -1');
    await rejects(pairwiseStats([NOPE], { rank: { exact: 1 as never } }), 'expected a boolean for rank.exact, got 1');
    await rejects(pairwiseStats([NOPE], { rank: 3 as never }), 'expected an object for rank, got 3');
    await rejects(pairwiseStats([NOPE], { layers: 'attn' as never }), 'expected a RegExp or a function (name, shape) => boolean for layers, got "attn"');
    await rejects(pairwiseStats([NOPE], { moments: 1 as never }), 'expected a RegExp or a function (name, shape) => boolean for moments, got 1');
    await expect(pairwiseStats([NOPE], { metrics: ['rank'], rank: { k: 8, seed: 1, exact: false, layers: /x/g }, layers: () => true })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  });

  test('recover', async () => {
    await rejects(recover({} as never), 'expected an array of models (paths or { id, path }) for models, got an object');
    await rejects(recover([NOPE, { id: 'x' } as never]), 'expected a path or { id, path } for models[1], got an object');
    await rejects(recover([{ id: 'a', path: NOPE }, { id: 'a', path: NOPE }]), 'expected distinct model ids for models, got "a" twice');
    await rejects(recover([NOPE], { metric: 'cosine' as never }), 'expected rms, l1, maxdiff or rank for metric, got "cosine"');
    await rejects(recover([NOPE], { lambda: -1 }), 'expected a finite number >= 0 for lambda, got -1');
    await rejects(recover([NOPE], { lambda: NaN }), 'expected a finite number >= 0 for lambda, got NaN');
    await rejects(recover([NOPE], { direction: 'up' as never }), 'expected finetune, pretrain or auto for direction, got "up"');
    await rejects(recover([NOPE], { families: 0 }), "expected a positive integer or 'auto' for families, got 0");
    await rejects(recover([NOPE], { families: 'some' as never }), `expected a positive integer or 'auto' for families, got "some"`);
    await rejects(recover([NOPE], { kurtosisLayers: 'o_proj' as never }), 'expected a RegExp or a function (name, shape) => boolean for kurtosisLayers, got "o_proj"');
    await rejects(recover([NOPE], { rank: { k: 2000 } }), 'expected an integer from 1 to 1024 for rank.k, got 2000');
    await rejects(recover([NOPE], { threads: -1 }), 'expected an integer from 0 to 4096 for threads, got -1');
    await rejects(recover([NOPE], { backend: 'tpu' as never }), 'expected auto, cpu or cuda for backend, got "tpu"');
    await expect(recover([NOPE], { metric: 'rank', lambda: 0, direction: 'auto', families: 2 })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  });

  test('inspectModel, resolveModel, discovery, renderGraph', async () => {
    await rejects(inspectModel(undefined as never), 'expected a path (string) for modelPath, got undefined');
    await rejects(resolveModel(null as never), 'expected a path (string) for path, got null');
    await rejects(discoverModels(NOPE, -1), 'expected an integer >= 0 or Infinity for maxDepth, got -1');
    await rejects(discoverModels(1 as never), 'expected a path (string) for root, got 1');
    await rejects(discoverHfCache(1 as never), 'expected a path (string) for cacheDir, got 1');
    await expect(discoverModels(NOPE, Infinity)).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    await rejects(renderGraph({} as never, 'png' as never), 'expected json, dot, newick, mermaid, svg or html for format, got "png"');
    await rejects(renderGraph(null as never, 'dot'), 'expected a model graph (the result of recover) for graph, got null');
    await rejects(renderGraph({ models: [] } as never, 'dot'), 'expected an array for graph.edges, got undefined');
    await rejects(discoverHfCache('.', 5 as never), 'expected an object for options, got 5');
    await rejects(discoverHfCache('.', { revision: 3 } as never), 'expected a string for revision, got 3');
  });

  test('a wrong type as the first argument of every call is ERR_INVALID_ARGUMENT, never a TypeError', async () => {
    const cases: [string, () => Promise<unknown>, string][] = [
      ['scanModel', () => scanModel(1 as never), 'expected a path (string) for modelPath, got 1'],
      ['scanModel options', () => scanModel(NOPE, 5 as never), 'expected an object for options, got 5'],
      ['pairwiseStats', () => pairwiseStats('a' as never), 'expected an array of model paths for models, got "a"'],
      ['pairwiseStats item', () => pairwiseStats([1, 2] as never), 'expected a path (string) for models[0], got 1'],
      ['recover', () => recover('x' as never), 'expected an array of models (paths or { id, path }) for models, got "x"'],
      ['recover item', () => recover([{ id: 1, path: 'x' }] as never), 'expected a path or { id, path } for models[0], got an object'],
      ['related', () => related(1 as never, 'b'), 'expected a path (string) for a, got 1'],
      ['discoverModels', () => discoverModels(null as never), 'expected a path (string) for root, got null'],
      ['renderGraph', () => renderGraph('graph' as never, 'json'), 'expected a model graph (the result of recover) for graph, got "graph"'],
    ];
    for (const [, call, message] of cases) await rejects(call(), message);
  });

  test('evaluate: the graph and the truth checked, no TypeError', () => {
    const g = { models: [{ id: 'a' }, { id: 'b' }], edges: [], families: [['a'], ['b']], roots: ['a', 'b'], familyReports: [] } as never;
    const throws = (f: () => unknown, message: string) => expect(f).toThrow(expect.objectContaining({ name: 'MotherError', code: 'ERR_INVALID_ARGUMENT', message }));
    throws(() => evaluate(null as never, { edges: [] }), 'expected a model graph (the result of recover) for graph, got null');
    throws(() => evaluate(g, null as never), 'expected a ground truth {edges: [[parent, child], ...]} for truth, got null');
    throws(() => evaluate(g, { edges: 5 } as never), 'expected an array of [parent, child] pairs for truth.edges, got 5');
    throws(() => evaluate(g, { edges: [['a', 1]] } as never), 'expected a string for truth.edges[0][1], got 1');
    throws(() => evaluate(g, { edges: [['a', 'b', 'c']] } as never), 'expected a [parent, child] pair of model ids for truth.edges[0], got an array of 3');
    expect(evaluate(g, { edges: [['a', 'b']] }).directedAccuracy).toBe(0);
  });
});
