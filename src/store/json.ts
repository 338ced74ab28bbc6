import { StoreError } from './errors.js';
import type { ClusterMessage } from './types.js';

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

/** The most bytes of a message's JSON: PostgreSQL's limit for a NOTIFY payload, for every store. */
export const MAX_MESSAGE_BYTES = 7999;

/**
 * A message of a `notify` op as JSON text. Throws a `write_failed` StoreError for one without a
 * JSON form or longer than {@link MAX_MESSAGE_BYTES}.
 */
export function encodeMessage(message: ClusterMessage): string {
  const json = toJson(message, () => 'the message of a notify op');
  const bytes = json === null ? 0 : Buffer.byteLength(json, 'utf8');
  if (json === null || bytes > MAX_MESSAGE_BYTES) {
    throw new StoreError(
      'write_failed',
      `cannot send a message of ${json === null ? 'no JSON form' : `${bytes} bytes`}: messages are ` +
        `JSON of at most ${MAX_MESSAGE_BYTES} bytes (send ids, not data).`,
    );
  }
  return json;
}
