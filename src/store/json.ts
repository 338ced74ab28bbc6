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

/**
 * The start of a journal entry's `data` that holds a `startedAt`: adapters always write it as
 * the first key (see {@link withStartedAt}), so whether an entry's data holds one, and its
 * value, are read from the text without decoding it.
 */
const STARTED_AT = '{"startedAt":';
const STORED_STARTED_AT = /^\{"startedAt":(\d{1,16})[,}]/;

/**
 * An entry's `data` (JSON text of its other fields, or null) with `"startedAt"` put first.
 * A non-finite time is dropped (JSON has no form for it); a fractional one is rounded.
 */
export function withStartedAt(data: string | null, startedAt: number): string | null {
  if (!Number.isFinite(startedAt)) return data;
  const field = `${STARTED_AT}${Math.round(startedAt)}`;
  return data === null || data === '{}' ? `${field}}` : `${field},${data.slice(1)}`;
}

/**
 * The `data` a completion stores over a waiting entry's `stored` data: the completion's, with
 * the stored `startedAt` spliced in as text when the completion carries none (a timer, a callee
 * or a cancellation does not know when the wait began). Never decodes either: a value's JSON
 * text is stored as it came, key order and all. PostgreSQL's `apply_op` (migration 10) does the
 * same in SQL.
 */
export function keepStartedAt(data: string | null, stored: string | null): string | null {
  if (stored === null || !stored.startsWith(STARTED_AT)) return data;
  if (data !== null && data.startsWith(STARTED_AT)) return data;
  const m = STORED_STARTED_AT.exec(stored);
  return m === null ? data : withStartedAt(data, Number(m[1]));
}
