/**
 * Input checks shared by the seed-002 saga examples. A saga must refuse bad input before its
 * first side effect: a 400 thrown here ends the run with nothing to compensate.
 */
import { TerminalError } from '../../src/index.js';

/** Ends the invocation with a 400 that names the offending field. */
export function invalid(message: string): never {
  throw new TerminalError(message, { code: 'invalid_request', status: 400 });
}

/** The request body as a record of fields, or a 400 when it is not a JSON object. */
export function fields(input: unknown, example: string): Record<string, unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    invalid(`the request body must be a JSON object, e.g. ${example}`);
  }
  return input as Record<string, unknown>;
}

/** A non-empty string field. */
export function text(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== 'string' || value.trim() === '') {
    invalid(`"${field}" must be a non-empty string`);
  }
  return value;
}

/** A positive, finite number field (an amount of money, a count). */
export function positive(body: Record<string, unknown>, field: string): number {
  const value = body[field];
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    invalid(`"${field}" must be a number greater than 0`);
  }
  return value;
}

/**
 * The business id of a keyed run: the URL key, which the body may repeat but not contradict
 * (a workflow runs once per key, so the key *is* the idempotency key of the whole saga).
 */
export function idMatchingKey(body: Record<string, unknown>, field: string, key: string): string {
  const value = body[field];
  if (value === undefined) return key;
  if (value !== key) {
    invalid(`"${field}" is ${JSON.stringify(value)} but the URL key is "${key}": they must match`);
  }
  return key;
}
