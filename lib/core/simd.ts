import { native } from './binding';

/** SIMD paths this CPU can run (scalar first, best last) and the one used by default. */
export function simdPaths(): { available: string[]; default: string } {
  return { available: native().simdPaths(), default: native().simdDefault() };
}
