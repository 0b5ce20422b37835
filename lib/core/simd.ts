// Under every stage of the pipeline (core): the SIMD paths of the kernels.
import { native } from './binding';

/** The SIMD paths an option may name ('auto': the best this CPU runs); the addon knows which exist here. */
export const SIMD_NAMES = ['auto', 'scalar', 'avx2', 'avx512', 'neon'] as const;

/** SIMD paths this CPU can run (scalar first, best last) and the one used by default. */
export function simdPaths(): { available: string[]; default: string } {
  return { available: native().simdPaths(), default: native().simdDefault() };
}
