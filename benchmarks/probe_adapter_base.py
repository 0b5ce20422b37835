"""Probe: can the weights tell a LoRA adapter's base among models of the same architecture?

For every merged-LoRA child c of a zoo (truth.json, regime lora_*) with parent p, dW = c - p on
the adapted tensors (query / value, where the difference is not zero). Each candidate base X
(p itself, the other members of p's family, every model of another family with the same tensors)
gets, over the modules k,
  STAT=q (default, lib/method/adapter_base.ts): the input alignment
      q(X) = sum_k ||dW_k X_k^T||^2 / sum_k ||dW_k||^2 ||X_k||^2 / in_k
    whose mean is 1 for X with a row space independent of dW;
  STAT=z: the linear statistic z(X) = sum_k <X_k, dW_k> / sqrt(sum_k ||X_k||^2 ||dW_k||^2 / n_k),
    about N(0, 1) for such X.
Prints per child the value of its true base, the largest among the other families' models and
among its own family's; the distribution over the other families' models; for q the decision of
the rule (q >= 2, q - 1 >= 2 x the next family's, one model per family: its root); and how often
the true base is above every other family's model. ("|z|" in the rows is the statistic's value.)

    /usr/bin/python3 benchmarks/probe_adapter_base.py ZOO [TRUTH_JSON]

Measured 2026-12-02 on a medium zoo of seed 4 (benchmarks/RESULTS.md): q of the true base
1.48-3.19, above every other family's model in 24 of 24; other families' models 0.99 +- 0.19
(max 1.80 of 3888); the rule 11 right, 0 wrong, 13 ambiguous. z: 11 of 24.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zoo_lib.safetensors_io import load_model  # noqa: E402


STAT = os.environ.get('STAT', 'q')
ACCEPT, RATIO = 2.0, 2.0  # lib/method/adapter_base.ts BASE_Q_ACCEPT, BASE_Q_RATIO


def main():
    zoo = sys.argv[1]
    truth = json.load(open(sys.argv[2] if len(sys.argv) > 2 else os.path.join(zoo, 'truth.json')))
    models = {m['id']: m for m in truth['models']}
    parent = {c: p for p, c in truth.get('tree_edges', truth['edges'])}
    cache = {}

    def W(mid):
        if mid not in cache:
            cache[mid] = {k: v.astype(np.float64) for k, v in load_model(os.path.join(zoo, mid)).items()}
        return cache[mid]

    lora = [m for m in truth['models'] if str(m.get('regime') or m.get('kind') or '').startswith('lora') and parent.get(m['id'])]
    rows, nulls = [], []
    verdict = {'right': 0, 'wrong': 0, 'ambiguous': 0}
    for m in lora:
        c, p = m['id'], parent[m['id']]
        wc, wp = W(c), W(p)
        dW = {k: wc[k] - wp[k] for k in wc if k in wp and wc[k].ndim == 2 and wc[k].shape == wp[k].shape}
        dW = {k: d for k, d in dW.items() if np.abs(d).max() > 0 and ('query' in k or 'value' in k)}
        if not dW:
            continue
        shapes = {k: d.shape for k, d in dW.items()}

        def z(x):
            wx = W(x)
            if any(k not in wx or wx[k].shape != s for k, s in shapes.items()):
                return None
            if STAT == 'z':
                num = sum(float(np.sum(wx[k] * dW[k])) for k in dW)
                var = sum(float(np.sum(wx[k] ** 2) * np.sum(dW[k] ** 2)) / dW[k].size for k in dW)
                return num / np.sqrt(var)
            # input-side alignment: ||dW X^T||^2 against its mean for X independent of dW
            num = sum(float(np.sum((dW[k] @ wx[k].T) ** 2)) for k in dW)
            den = sum(float(np.sum(wx[k] ** 2) * np.sum(dW[k] ** 2)) / dW[k].shape[1] for k in dW)
            return num / den

        fam = m['family']
        own = [x for x in models if models[x]['family'] == fam and x not in (c, p) and parent.get(x) != c]
        other = [x for x in models if models[x]['family'] != fam and not str(models[x].get('regime') or models[x].get('kind') or '').startswith('lora')]
        zt = z(p)
        zo = [(abs(v), x) for x in other if (v := z(x)) is not None]
        zs = [(abs(v), x) for x in own if (v := z(x)) is not None]
        best_o = max(zo) if zo else (float('nan'), '-')
        best_s = max(zs) if zs else (float('nan'), '-')
        rows.append((c, p, zt, best_o, best_s, len(zo), len(dW)))
        # the rule of lib/method/adapter_base.ts on one model per family: the root (q only)
        if STAT == 'q':
            fam_q = {}
            for x in models:
                if parent.get(x) is None and x not in (c,) and not str(models[x].get('regime') or models[x].get('kind') or '').startswith('lora'):
                    v = z(x)
                    if v is not None:
                        fam_q[models[x]['family']] = v
            order = sorted(fam_q.items(), key=lambda kv: -kv[1])
            (f1, q1), q2 = order[0], (order[1][1] if len(order) > 1 else 1.0)
            take = q1 >= ACCEPT and q1 - 1 >= RATIO * max(0.0, q2 - 1)
            verdict['right' if take and f1 == fam else 'wrong' if take else 'ambiguous'] += 1
        nulls.extend(v for v, _ in zo)
        print('%-34s base %-28s z %+9.2f | other families (%3d) max |z| %7.2f (%s) | own family max |z| %7.2f'
              % (c, p, zt, len(zo), best_o[0], best_o[1], best_s[0]))
    if nulls:
        q = np.percentile(nulls, [50, 90, 99, 100])
        print('other families\' models: %d values, mean %.3f, std %.3f, median %.3f, 90%% %.3f, 99%% %.3f, max %.3f'
              % (len(nulls), np.mean(nulls), np.std(nulls), *q))
    if STAT == 'q':
        print('the rule (q >= %.1f, q - 1 >= %.1f x the next family\'s, family roots scored): %s' % (ACCEPT, RATIO, verdict))
    good = [r for r in rows if r[5] and abs(r[2]) > r[3][0]]
    ratios = [abs(r[2]) / r[3][0] for r in rows if r[5]]
    print('children %d; true base |z| above every other family\'s model in %d; min ratio %.2f; median %.2f'
          % (len(rows), len(good), min(ratios) if ratios else float('nan'), float(np.median(ratios)) if ratios else float('nan')))


if __name__ == '__main__':
    main()
