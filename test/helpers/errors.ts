import { MotherError } from '../../lib/core/errors';

/** Asserts that fn throws a MotherError with code ERR_INVALID_ARGUMENT (and a matching message). */
export function expectInvalid(fn: () => unknown, pattern?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(MotherError);
  expect((caught as MotherError).code).toBe('ERR_INVALID_ARGUMENT');
  if (pattern) expect((caught as MotherError).message).toMatch(pattern);
}
