import { StoreError } from './errors.js';

/**
 * Encodes a value as JSON text, `undefined` as SQL NULL. Adapters call it when `write()` is
 * called, not at flush time, so later mutation of the caller's objects cannot change what gets
 * stored, and an unserializable value fails that one call before it joins a batch.
 */
export function toJson(value: unknown, what: () => string): string | null {
  if (value === undefined) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new StoreError(
      'write_failed',
      `cannot store ${what()}: ${(err as Error).message}. Stored values must be JSON-serializable.`,
      err,
    );
  }
  // JSON.stringify returns undefined for functions and symbols: they have no JSON form.
  return text ?? null;
}

/** The value of stored JSON text; SQL NULL is `undefined`. */
export function fromJson(text: string | null): unknown {
  return text === null ? undefined : JSON.parse(text);
}
