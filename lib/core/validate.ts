// Under every stage of the pipeline (core): the checks of the public calls' arguments and
// options, written once, with one message shape: "expected X for Y, got Z" (a MotherError with
// code ERR_INVALID_ARGUMENT). Each public call checks what it is given at its entry, before any
// file is read; what it calls below trusts it (the addon keeps only type guards). Each call's
// table of options lives next to its options interface and is built from the checks here; the
// options several calls share (threads, simd, backend, onProgress, signal) are defined here
// once.
import { BACKENDS } from './backend';
import { MotherError } from './errors';
import { SIMD_NAMES } from './simd';

/** Checks one value; `what` names it in the message (an option, `rank.k`, `models[2]`). */
export type Check = (value: unknown, what: string) => void;

/** How a value reads in a message. */
export function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof RegExp) return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** The error for a value that is not what was expected. */
export function invalid(expected: string, what: string, got: unknown): MotherError {
  return new MotherError('ERR_INVALID_ARGUMENT', `expected ${expected} for ${what}, got ${shown(got)}`);
}

/** "a, b or c" */
function alternatives(values: readonly string[]): string {
  return values.length < 2 ? values.join('') : `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;
}

const is = (expected: string, ok: (v: unknown) => boolean): Check => (v, what) => {
  if (!ok(v)) throw invalid(expected, what, v);
};

/** The checks the tables are made of. */
export const check = {
  /** An integer from lo to hi (hiText: how hi reads, e.g. '2^31'; hi = Infinity: no upper bound). */
  integer(lo: number, hi: number, hiText = String(hi)): Check {
    const expected = hi === Infinity ? `an integer >= ${lo}` : `an integer from ${lo} to ${hiText}`;
    return is(expected, (v) => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi);
  },
  /** A 64-bit seed: a BigInt from 0 to 2^64 - 1, or a safe integer >= 0. */
  seed: is('a BigInt from 0 to 2^64 - 1 or a safe integer >= 0', (v) =>
    (typeof v === 'bigint' && v >= 0n && v < 1n << 64n) || (Number.isSafeInteger(v) && (v as number) >= 0)),
  /** A finite number >= 0. */
  nonNegative: is('a finite number >= 0', (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0),
  boolean: is('a boolean', (v) => typeof v === 'boolean'),
  function: is('a function', (v) => typeof v === 'function'),
  string: is('a string', (v) => typeof v === 'string'),
  /** A file or folder path. */
  path: is('a path (string)', (v) => typeof v === 'string'),
  /** One of the strings `values`. */
  oneOf(values: readonly string[]): Check {
    return is(alternatives(values), (v) => typeof v === 'string' && values.includes(v));
  },
  /** A layer filter: a RegExp on the tensor name or a predicate on (name, shape). */
  filter: is('a RegExp or a function (name, shape) => boolean', (v) => v instanceof RegExp || typeof v === 'function'),
  signal: is('an AbortSignal', (v) => {
    const s = v as AbortSignal | null;
    return typeof s === 'object' && s !== null && typeof s.aborted === 'boolean' && typeof s.addEventListener === 'function';
  }),
  /** An array whose every item passes `item` (named what[i]). */
  list(expected: string, item: Check): Check {
    return (v, what) => {
      if (!Array.isArray(v)) throw invalid(expected, what, v);
      v.forEach((x, i) => item(x, `${what}[${i}]`));
    };
  },
  /** An object whose properties pass their checks (named what.key); unknown keys are not read. */
  object(checks: Readonly<Record<string, Check>>): Check {
    return (v, what) => checkOptions(v, checks, what);
  },
};

/** The options that several calls take, checked the same way by each. */
export const commonOptions = {
  threads: check.integer(0, 4096),
  simd: check.oneOf(SIMD_NAMES),
  backend: check.oneOf(BACKENDS),
  onProgress: check.function,
  signal: check.signal,
} satisfies Record<string, Check>;

/**
 * Checks an options object against its table: every option given (not undefined) must pass
 * its check. `prefix` names a nested object (rank.k). Options without a check are not read.
 */
export function checkOptions(options: unknown, checks: Readonly<Record<string, Check>>, prefix?: string): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw invalid('an object', prefix ?? 'options', options);
  for (const [key, c] of Object.entries(checks)) {
    const v = (options as Record<string, unknown>)[key];
    if (v !== undefined) c(v, prefix ? `${prefix}.${key}` : key);
  }
}
