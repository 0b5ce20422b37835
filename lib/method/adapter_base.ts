// Which of several unrelated models a PEFT LoRA adapter was trained on, from the weights alone.
//
// dW = s B A. During training A's rows drift from their random start along the inputs x that
// the base feeds to the layer (A's gradient is s B^T delta x^T), and the base's own weight W was
// trained on those same inputs, so its row space is heavy where x is. A model of another
// pre-training run has an unrelated basis. Per candidate X, over the adapter's modules k,
//     q(X) = sum_k ||dW_k X_k^T||_F^2 / sum_k ||dW_k||_F^2 ||X_k||_F^2 / in_k
// (in_k: the module's input width). For X whose right singular vectors are independent of dW
// (a rotation-invariant distribution) each numerator has exactly that mean, so q is about 1;
// for the base it is larger. ||dW X^T||^2 = s^2 trace((B^T B)(A X^T X A^T)) comes from the r x r
// Gram matrix of X A^T, read in the pass that gives <X, dW> (native/pairwise/lora_products.h).
//
// Measured (benchmarks/probe_adapter_base.py, RESULTS.md): on the 24 merged LoRA children of a
// medium zoo (ViT, hidden 64, r 2-16, 300 steps) q of the true base is 1.48-3.19, and against the
// 162 models of other families 0.99 +- 0.19 (max 1.80 of 3888); the rule below: 11 right, 0
// wrong, 13 ambiguous. On trained Llama-like adapters (test/helpers/make_trained_peft.py)
// 4.47 and 3.35 against 0.91-1.05. The linear statistic <X, dW> / sqrt(sum ||X||^2 ||dW||^2 / n)
// (about N(0, 1) for independent X) picked the base in only 11 of the 24, so it is not used.
//
// Decision: one model per family (its root where it fits); the family of the largest q when q >=
// BASE_Q_ACCEPT and q - 1 >= BASE_Q_RATIO (q' - 1) for the next family's q'; else none (the base
// stays ambiguous, with every family's q in `why`). Modules stored transposed (fan_in_fan_out,
// GPT-2's Conv1D) enter q in dW's orientation; embedding modules are left out of q (lib/io/adapter.ts).

/** q a family needs to be taken as an adapter's base (the zoo's unrelated models: 0.99 +- 0.19, max 1.80). */
export const BASE_Q_ACCEPT = 2;
/** ... and (q - 1) against the next family's (q - 1). */
export const BASE_Q_RATIO = 2;

/** One module of the adapter against one candidate (null/NaN: not read). */
export interface ModuleAlignment {
  /** ||dW_k X_k^T||_F^2 */
  inputAlignment: number | null;
  /** ||X_k||_F^2 */
  sumSq: number | null;
  /** ||dW_k||_F^2 */
  frob2: number;
  /** the module's input width (dW's columns) */
  inputs: number;
}

/** q of one candidate over the modules read (NaN when none was, or every term is 0), and how many were. */
export function inputAlignment(modules: ModuleAlignment[]): { q: number; modules: number } {
  let num = 0, den = 0, used = 0;
  for (const m of modules) {
    if (m.inputAlignment === null || m.sumSq === null || !Number.isFinite(m.inputAlignment) || !Number.isFinite(m.sumSq) || !(m.inputs > 0)) continue;
    num += m.inputAlignment;
    den += (m.sumSq * m.frob2) / m.inputs;
    used++;
  }
  return { q: used && den > 0 ? num / den : NaN, modules: used };
}

/** Per candidate family: its scored model and q. */
export interface FamilyAlignment {
  model: string;
  family: number;
  q: number;
  modules: number;
}

/** The family the weights pick (index into `scores`), or -1, with the reason. */
export function chooseByAlignment(scores: FamilyAlignment[]): { pick: number; why: string } {
  const order = scores.map((_, i) => i).filter((i) => Number.isFinite(scores[i].q)).sort((a, b) => scores[b].q - scores[a].q);
  const list = order.map((i) => `${scores[i].model} ${scores[i].q.toFixed(2)}`).join(', ');
  if (order.length === 0) return { pick: -1, why: 'no target tensor of a candidate could be compared with dW' };
  const best = scores[order[0]].q;
  const next = order.length > 1 ? scores[order[1]].q : 1;
  const rule = `taken at q >= ${BASE_Q_ACCEPT} and q - 1 >= ${BASE_Q_RATIO} x the next family's`;
  if (best >= BASE_Q_ACCEPT && best - 1 >= BASE_Q_RATIO * Math.max(0, next - 1))
    return { pick: order[0], why: `dW's rows lie along ${scores[order[0]].model}'s weights (input alignment q: ${list}; about 1 for an unrelated model; ${rule})` };
  return { pick: -1, why: `the alignment of dW with each family's weights does not decide (input alignment q: ${list}; about 1 for an unrelated model; ${rule})` };
}
