// The evaluation protocol on generated model zoos (benchmarks/generate_zoo.py): per split, the
// settings the paper uses for that kind of family, applied identically to mother and to the
// independent reference pipeline (benchmarks/reference_mother.py). Shared by the tests
// (test/recover.test.ts) and the accuracy benchmark (benchmarks/accuracy.ts), so it lives with
// the test helpers: benchmarks may import test/helpers, tests never import benchmarks/. No
// jest in here: the benchmark build (tsconfig.build.json) compiles it.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { evaluate, recover } from '../../lib';
import type { ModelGraph } from '../../lib/recover';
import type { Evaluation } from '../../lib/method/evaluation';
import { packageRoot } from '../../lib/core/binding';

export interface SplitProtocol {
  metric: 'rms' | 'rank';
  /** distance layers (regex on names; square 2-D tensors only) */
  layers: string;
  /** kurtosis layers (regex on names; square 2-D tensors only) */
  kurtosisLayers: string;
  direction: 'finetune' | 'pretrain';
}

export const PROTOCOL: Record<string, SplitProtocol> = {
  // ViT full fine-tuning: attention matrices; kurtosis of the attention output (reference filter)
  ft: { metric: 'rms', layers: 'attention', kurtosisLayers: 'attention\\.output\\.dense', direction: 'finetune' },
  // ViT LoRA (query/value adapters merged): rank of differences and kurtosis on 'value' (reference filter)
  lora_fixed: { metric: 'rank', layers: 'value', kurtosisLayers: 'value', direction: 'finetune' },
  lora_varying: { metric: 'rank', layers: 'value', kurtosisLayers: 'value', direction: 'finetune' },
  // Llama-like: attention matrices; kurtosis of self_attn.o_proj
  llm: { metric: 'rms', layers: 'self_attn', kurtosisLayers: 'self_attn\\.o_proj', direction: 'finetune' },
  // continued pre-training: kurtosis rises along the chain
  pretrain_chain: { metric: 'rms', layers: 'self_attn', kurtosisLayers: 'self_attn\\.o_proj', direction: 'pretrain' },
};

export interface Truth {
  models: { id: string; split: string; family: string; parent: string | null }[];
  edges: [string, string][];
}

export function readTruth(zoo: string): Truth {
  return JSON.parse(fs.readFileSync(path.join(zoo, 'truth.json'), 'utf8')) as Truth;
}

export interface SplitResult {
  split: string;
  models: number;
  families: number;
  mother: Evaluation;
  reference: Evaluation;
  motherSeconds: number;
  referenceSeconds: number;
  /** mother's graph of the split */
  graph: ModelGraph;
}

/**
 * Runs mother and the reference pipeline on one split, families given (K, the paper's
 * protocol) or found by mother ('auto'; the reference, which needs K, then gets K too).
 */
export async function runSplit(zoo: string, truth: Truth, split: string, familiesGiven: boolean): Promise<SplitResult> {
  const p = PROTOCOL[split];
  if (!p) throw new Error(`no protocol for split ${split}`);
  const members = truth.models.filter((m) => m.split === split);
  const ids = members.map((m) => m.id).sort();
  const familyCount = new Set(members.map((m) => m.family)).size;
  const edges = truth.edges.filter(([a, b]) => ids.includes(a) && ids.includes(b));
  const t0 = Date.now();
  const g = await recover(
    ids.map((id) => ({ id, path: path.join(zoo, id) })),
    {
      metric: p.metric,
      layers: new RegExp(p.layers),
      kurtosisLayers: new RegExp(p.kurtosisLayers),
      direction: p.direction,
      families: familiesGiven ? familyCount : 'auto',
    },
  );
  const motherSeconds = (Date.now() - t0) / 1000;
  const mother = evaluate(g, { edges });
  const script = [
    path.join(packageRoot(), 'benchmarks', 'reference_mother.py'),
    ...ids.map((id) => path.join(zoo, id)),
    '--metric', p.metric, '--layers', p.layers, '--kurtosis-layers', p.kurtosisLayers, '--direction', p.direction,
    '--families', String(familyCount), '--json',
  ];
  const r = spawnSync('/usr/bin/python3', script, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`reference pipeline failed: ${r.stderr}`);
  const ref = JSON.parse(r.stdout) as { edges: [string, string][]; families: string[][]; seconds: { total: number } };
  const toId = (p2: string) => path.relative(zoo, p2).split(path.sep).join('/');
  const reference = evaluate(
    { ...g, models: ids.map((id) => ({ id, path: '', architecture: '', params: 0, kurtosis: null })), families: ref.families.map((f) => f.map(toId)), edges: ref.edges.map(([a, b]) => ({ parent: toId(a), child: toId(b), distance: 0, confidence: null, relation: 'finetune' as const, uncertain: false })), roots: [], familyReports: [], duplicates: [] },
    { edges },
  );
  return { split, models: ids.length, families: familyCount, mother, reference, motherSeconds, referenceSeconds: ref.seconds.total, graph: g };
}
