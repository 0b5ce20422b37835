// The whole pipeline on real trained model trees (samples/zoo-small, made by
// benchmarks/generate_zoo.py): mother must reach the accuracy that the same method reaches
// in an independent numpy/scipy/networkx computation on the same files.
import * as path from 'node:path';

import { PROTOCOL, readTruth, runSplit } from './helpers/protocol';

const ZOO = path.resolve(__dirname, '..', 'samples', 'zoo-small');

describe('recover on trained model trees', () => {
  const truth = readTruth(ZOO);
  const splits = [...new Set(truth.models.map((m) => m.split))].sort();

  test('the sample holds every split of the protocol', () => {
    expect(splits).toEqual(Object.keys(PROTOCOL).sort());
  });

  for (const split of Object.keys(PROTOCOL).sort()) {
    test(`${split}: families given, accuracy >= the independent reference computation`, async () => {
      const r = await runSplit(ZOO, truth, split, true);
      expect(r.mother.directedAccuracy!).toBeGreaterThanOrEqual(r.reference.directedAccuracy!);
      expect(r.mother.undirectedAccuracy!).toBeGreaterThanOrEqual(r.reference.undirectedAccuracy!);
      expect(r.mother.clusteringAccuracy).toBeGreaterThanOrEqual(r.reference.clusteringAccuracy);
    });
  }
});
