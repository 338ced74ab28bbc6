/**
 * Input schemas shared by the seed-002 saga examples. Every handler declares its input with
 * `handler({ input: schema }, fn)`, so invalid input is refused at the edge with a 400 naming the
 * field, before any invocation is stored (a workflow key is never taken by a bad request). The
 * one check a schema cannot make, a body id that contradicts the URL key, is made by the handler
 * before its first step; a run that fails that early gives its key back.
 */
import { z } from 'zod';
import { parseDuration, TerminalError, type Duration } from '../../src/index.js';

/** Ends the invocation with a 400 that names the offending field. */
export function invalid(message: string): never {
  throw new TerminalError(message, { code: 'invalid_request', status: 400 });
}

/** A JSON object with these fields; `example` shows a valid body in the error message. */
export function body<S extends z.ZodRawShape>(shape: S, example: string) {
  return z.object(shape, { error: `the request body must be a JSON object, e.g. ${example}` });
}

/** A non-empty string (not only spaces). */
export function text() {
  return z
    .string({ error: 'must be a non-empty string' })
    .refine((s) => s.trim() !== '', 'must be a non-empty string');
}

/** A positive, finite number (an amount of money, a count). */
export function positive() {
  return z
    .number({ error: 'must be a number greater than 0' })
    .positive('must be a number greater than 0');
}

/** A positive whole number (a count of records, seats, units). */
export function count() {
  return z
    .number({ error: 'must be a whole number greater than 0' })
    .int('must be a whole number')
    .positive('must be a whole number greater than 0');
}

/** An amount of money: positive, at most 2 decimals. */
export function money() {
  // 0.29 * 100 is 28.999999999999996 in floating point: compare with a tolerance.
  return positive().refine(
    (v) => Math.abs(v * 100 - Math.round(v * 100)) <= 1e-6,
    'has at most 2 decimals',
  );
}

/** A duration (`"100ms"`, `"5m"`, a number of ms), as the engine parses it. */
export function duration() {
  return z
    .union([z.string(), z.number()], { error: 'must be a duration such as "100ms" or "5m"' })
    .superRefine((value: Duration, ctx) => {
      try {
        parseDuration(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    });
}

/**
 * The business id of a keyed run as the body may repeat it: optional, since the URL key *is* the
 * id (a workflow runs once per key, so the key is the idempotency key of the whole saga).
 */
export function keyId() {
  return text().optional();
}

/** The body's id, which may repeat the URL key but not contradict it (a 400 when it does). */
export function idMatchingKey(value: string | undefined, field: string, key: string): string {
  if (value === undefined) return key;
  if (value !== key) {
    invalid(`"${field}" is ${JSON.stringify(value)} but the URL key is "${key}": they must match`);
  }
  return key;
}
