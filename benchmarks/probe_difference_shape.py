"""Probe: parent or sibling? The triangle's angle against the shape of the difference.

Per family of a zoo (truth.json), over the square 2-D tensors every member has (all shards read,
float64): D(a, b) = the mean over the tensors of RMS(a - b) (mother's rms distance) and K(a, b) =
the median over the tensors of the excess kurtosis of a - b (lib/method/difference_shape.ts).
Prints
  1. chains g -> p -> c: the cosine of the angle at p between g and c (from D);
     siblings s, c of one parent p where c is nearer s than p: the cosine at s between p and c;
  2. every child whose nearest member (its own children left out) is not its parent: D and K of
     the parent and of that nearest member;
  3. the parent picked per child with the true directions given (an upper bound of what the
     rule can do in the tree): the nearest member, and the member of lowest K among those within
     WINDOW x the nearest distance when its K is below the nearest's by more than MARGIN.

    /usr/bin/python3 benchmarks/probe_difference_shape.py /work/zoo/medium-seed1-llm [split]

Measured 2026-12-02 (benchmarks/RESULTS.md, Direction): Llama splits of seeds 1 and 2, 24 of 62
children have a nearer member than their parent, the parent's K below it by 0.21 to 0.43 in all
24; on seed 1 the angles of the docs -> legal chains (cos 0.23 to 0.30 at the middle model) and
of the misplaced siblings (0.23 to 0.25 at the nearer sibling) overlap.
"""
import itertools
import json
import os
import struct
import sys

import numpy as np

WINDOW, MARGIN = 1.4, 0.2


def load(folder):
    out = {}
    for f in sorted(x for x in os.listdir(folder) if x.endswith('.safetensors')):
        b = open(os.path.join(folder, f), 'rb').read()
        n = struct.unpack('<Q', b[:8])[0]
        header = json.loads(b[8:8 + n])
        data = b[8 + n:]
        for k, v in header.items():
            if k == '__metadata__' or len(v['shape']) != 2 or v['shape'][0] != v['shape'][1]:
                continue
            a, e = v['data_offsets']
            raw = data[a:e]
            if v['dtype'] == 'F32':
                x = np.frombuffer(raw, np.float32).astype(np.float64)
            elif v['dtype'] == 'BF16':
                x = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
            elif v['dtype'] == 'F16':
                x = np.frombuffer(raw, np.float16).astype(np.float64)
            else:
                continue
            out[k] = x
    return out


def main():
    zoo = sys.argv[1]
    split = sys.argv[2] if len(sys.argv) > 2 else None
    truth = json.load(open(os.path.join(zoo, 'truth.json')))
    parent = {c: p for p, c in truth.get('tree_edges', truth['edges'])}
    task = {m['id']: m.get('task') for m in truth['models']}
    fams = {}
    for m in truth['models']:
        fams.setdefault(m['family'], []).append(m['id'])
    chains, sibs, misses, picks = [], [], [], {'nearest': 0, 'rule': 0, 'children': 0}
    for ms in fams.values():
        if len(ms) < 3 or (split and not ms[0].startswith(split + '/')):
            continue
        W = {m: load(os.path.join(zoo, m)) for m in ms}
        keys = sorted(set.intersection(*[set(w) for w in W.values()]))
        if not keys:
            continue
        D, K = {}, {}
        for a, b in itertools.combinations(ms, 2):
            ds, ks = [], []
            for k in keys:
                d = W[a][k] - W[b][k]
                ds.append(np.sqrt(np.mean(d * d)))
                d = d - d.mean()
                m2 = np.mean(d * d)
                if m2 > 0:
                    ks.append(np.mean(d ** 4) / m2 ** 2 - 3)
            D[a, b] = D[b, a] = float(np.mean(ds))
            K[a, b] = K[b, a] = float(np.median(ks)) if ks else float('nan')

        def cos(v, a, b):
            return (D[v, a] ** 2 + D[v, b] ** 2 - D[a, b] ** 2) / (2 * D[v, a] * D[v, b])

        for c in ms:
            p = parent.get(c)
            if p in ms and parent.get(p) in ms:
                chains.append((cos(p, parent[p], c), parent[p], p, c))
        for p in ms:
            kids = [c for c in ms if parent.get(c) == p]
            for s, c in itertools.permutations(kids, 2):
                if D[s, c] < D[p, c]:
                    sibs.append((cos(s, p, c), p, s, c))
        for c in ms:
            p = parent.get(c)
            if p not in ms:
                continue
            others = [x for x in ms if x != c and parent.get(x) != c]
            near = min(others, key=lambda x: D[x, c])
            cand = [x for x in others if D[x, c] <= WINDOW * D[near, c] and K[x, c] < K[near, c] - MARGIN]
            pick = min(cand, key=lambda x: K[x, c]) if cand else near
            picks['children'] += 1
            picks['nearest'] += near == p
            picks['rule'] += pick == p
            if near != p:
                misses.append((c, task[c], p, near, task[near], D[p, c], D[near, c], K[p, c], K[near, c]))
    print('1. chains: cos at the middle model between grandparent and child')
    for x in sorted(chains):
        print('   %+.3f  %s -> %s -> %s' % x)
    print('   siblings nearer each other than to the parent: cos at the sibling s between parent p and c')
    for x in sorted(sibs):
        print('   %+.3f  p %s  s %s  c %s' % x)
    print('2. children whose nearest member is not their parent: D and K of the parent, of the nearest')
    for x in misses:
        print('   %s (%s): parent %s, nearest %s (%s)  D %.5f / %.5f  K %+.3f / %+.3f' % x)
    if misses:
        gaps = [x[8] - x[7] for x in misses]
        print('   K(nearest) - K(parent): %.3f to %.3f; parent not lower in %d' % (min(gaps), max(gaps), sum(g <= 0 for g in gaps)))
    print('3. parent picked with the directions given: nearest %d, rule (window %.2f, margin %.2f) %d, of %d children'
          % (picks['nearest'], WINDOW, MARGIN, picks['rule'], picks['children']))


if __name__ == '__main__':
    main()
