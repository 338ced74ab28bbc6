import { StoreError } from './errors.js';
import { withStartedAt } from './json.js';

/**
 * Large payloads (see docs/payloads.md). Inputs, outputs, journal entries and state values whose
 * JSON is longer than a threshold are stored out of line: the row keeps a short marker and the
 * JSON text goes to a blob table (`invocation_blobs`, `state_blobs`, migration 13) in the same
 * transaction, so a row never refers to a blob that was not committed with it. Rows stay small,
 * so listing invocations, scanning journals and the database's page cache never drag the blobs
 * along; a blob is read only when its value is (a replay, `getState`, `getInvocation`).
 *
 * Blobs are addressed by their owner, not by a fresh id: `(invocation, part)` with part -1 for
 * the input, -2 for the output and the journal index for an entry; `(service, key, name)` for a
 * state value. A value written again over a large one replaces the blob in place, so at most
 * one blob exists per owner and a blob can never be shared or leaked by a retried write.
 */

/** Default of `largePayloadThreshold`: JSON longer than this many bytes is stored out of line. */
export const DEFAULT_LARGE_PAYLOAD_THRESHOLD = 256 * 1024;
/**
 * Default of `maxPayloadBytes`, the hard limit of one stored value's JSON. 64 MiB: far below
 * what PostgreSQL can hold in a text value (1 GB) or a jsonb string (256 MB) after the escaping a
 * write's parameters add, and what a process can encode and decode a few of at once.
 */
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;
/** The highest `maxPayloadBytes` accepted: PostgreSQL's jsonb strings end at 256 MB. */
export const MAX_PAYLOAD_LIMIT = 256 * 1024 * 1024 - 1;

/** The options of a store about payload sizes, with their defaults applied. */
export interface PayloadLimits {
  /** JSON longer than this many bytes (UTF-8) is stored out of line. */
  threshold: number;
  /** JSON longer than this many bytes is refused with `payload_too_large`. */
  max: number;
}

/** The store options that set {@link PayloadLimits}. */
export interface PayloadOptions {
  /**
   * Values (inputs, outputs, step results and other journal entries, state values) whose JSON
   * is longer than this many bytes are stored out of line, in a blob table, and read only when
   * the value itself is (see docs/payloads.md). Default 256 KiB (`KEEL_LARGE_PAYLOAD_THRESHOLD`).
   */
  largePayloadThreshold?: number;
  /**
   * The largest JSON of one stored value, in bytes; a larger one is refused with
   * `payload_too_large` (a step with a larger result fails terminally). Default 64 MiB
   * (`KEEL_MAX_PAYLOAD_BYTES`), at most 256 MiB − 1.
   */
  maxPayloadBytes?: number;
}

/**
 * The limits of `options`, defaults applied. Throws a RangeError for a limit that is not a whole
 * number of bytes in range.
 *
 * @example
 * ```ts
 * payloadLimits({ largePayloadThreshold: 64 * 1024 }); // { threshold: 65536, max: 67108864 }
 * ```
 */
export function payloadLimits(options: PayloadOptions = {}): PayloadLimits {
  const threshold = options.largePayloadThreshold ?? DEFAULT_LARGE_PAYLOAD_THRESHOLD;
  const max = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  if (!Number.isSafeInteger(max) || max < 1 || max > MAX_PAYLOAD_LIMIT)
    throw new RangeError(
      `maxPayloadBytes must be a whole number of bytes from 1 to ${MAX_PAYLOAD_LIMIT}, got ${max}`,
    );
  if (!Number.isSafeInteger(threshold) || threshold < 0)
    throw new RangeError(
      `largePayloadThreshold must be a whole number of bytes (0 or more), got ${threshold}`,
    );
  return { threshold, max };
}

/** The UTF-8 length of `text`, computed only when its UTF-16 length leaves it in doubt. */
function utf8Bytes(text: string, below: number): number {
  // A UTF-16 code unit is 1 to 3 bytes of UTF-8 (a surrogate pair, 2 units, is 4 bytes).
  if (text.length * 3 <= below) return text.length;
  return Buffer.byteLength(text, 'utf8');
}

/** The error of a value whose JSON is longer than the limit. */
export function payloadTooLarge(what: string, bytes: number, max: number): StoreError {
  return new StoreError(
    'payload_too_large',
    `cannot store ${what}: its JSON is ${bytes} bytes, above the limit of ${max} bytes. Store ` +
      'large data elsewhere (an object store) and pass a reference, or raise maxPayloadBytes ' +
      '(KEEL_MAX_PAYLOAD_BYTES) in the store options.',
  );
}

/** Throws `payload_too_large` for JSON text longer than `limits.max` bytes. */
export function checkPayload(text: string | null, limits: PayloadLimits, what: () => string) {
  if (text === null || text.length <= limits.max / 3) return;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.max) throw payloadTooLarge(what(), bytes, limits.max);
}

/** The prefix of a column that holds a marker: no JSON text starts with `@`. */
const MARKER = '@blob:';

/** A column value split for storage: what the column holds, and the blob, if out of line. */
export interface SplitValue {
  stored: string | null;
  blob?: string;
}

/**
 * The column of JSON text `text` (null: `undefined`): the text itself, or, when it is longer
 * than the threshold, the marker `@blob:<bytes>` and the text as the blob. Throws
 * `payload_too_large` above the hard limit.
 */
export function splitValue(
  text: string | null,
  limits: PayloadLimits,
  what: () => string,
): SplitValue {
  if (text === null) return { stored: null };
  const bytes = utf8Bytes(text, Math.min(limits.threshold, limits.max));
  if (bytes > limits.max) throw payloadTooLarge(what(), bytes, limits.max);
  if (bytes <= limits.threshold) return { stored: text };
  return { stored: `${MARKER}${bytes}`, blob: text };
}

/** The size of an out-of-line value from its column, or undefined when the column holds JSON. */
export function markerBytes(stored: string | null | undefined): number | undefined {
  if (stored == null || !stored.startsWith(MARKER)) return undefined;
  return Number(stored.slice(MARKER.length));
}

/**
 * What {@link Store.listInvocations} returns for an input or output stored out of line: its
 * size, not its value (a list never loads blobs). Every other read returns the value itself.
 *
 * @example
 * ```ts
 * const [row] = await store.listInvocations({ limit: 1 });
 * if (row?.input instanceof LargePayload) console.log(`input of ${row.input.bytes} bytes`);
 * ```
 */
export class LargePayload {
  readonly $largePayload = true;
  constructor(readonly bytes: number) {}
}

/** The decoded value of a column: its JSON, or a {@link LargePayload} for a marker. */
export function decodeColumn(stored: string | null): unknown {
  if (stored === null) return undefined;
  const bytes = markerBytes(stored);
  return bytes === undefined ? JSON.parse(stored) : new LargePayload(bytes);
}

/** The field of a journal entry's `data` that says its other fields are in a blob. */
const ENTRY_BLOB = '$blob';

/**
 * An entry's `data` (all fields but `kind`, `name`, `done`), given the JSON of those other
 * fields without `startedAt` (null: none) and its `startedAt`: in line, or, above the
 * threshold, `{"startedAt":…,"$blob":<bytes>}` with the JSON as the blob. `startedAt` stays in
 * the row because the stores read and splice it as text (see `keepStartedAt`).
 */
export function splitEntryData(
  rest: string | null,
  startedAt: number | undefined,
  limits: PayloadLimits | undefined,
  what: () => string,
): { data: string | null; blob?: string } {
  let data = rest;
  let blob: string | undefined;
  if (limits !== undefined) {
    const split = splitValue(rest, limits, what);
    if (split.blob !== undefined) {
      blob = split.blob;
      data = `{"${ENTRY_BLOB}":${markerBytes(split.stored)!}}`;
    }
  }
  if (startedAt !== undefined) data = withStartedAt(data, startedAt);
  return blob === undefined ? { data } : { data, blob };
}

/** The size of the blob a decoded entry refers to, or undefined when it is in line. */
export function entryBlobBytes(entry: object): number | undefined {
  const v = (entry as Record<string, unknown>)[ENTRY_BLOB];
  return typeof v === 'number' ? v : undefined;
}

/** A decoded entry with its blob's fields in place of the reference. */
export function withEntryBlob<E extends object>(entry: E, blob: string): E {
  delete (entry as Record<string, unknown>)[ENTRY_BLOB];
  return Object.assign(entry, JSON.parse(blob) as object);
}

/** The error of a marker whose blob is missing: the database was changed outside Keel. */
export function missingBlob(what: string): StoreError {
  return new StoreError(
    'store_failed',
    `${what} is stored out of line, but its blob is missing (the database was changed outside Keel).`,
  );
}

/** Blob parts of an invocation that are not journal entries. */
export const INPUT_PART = -1;
export const OUTPUT_PART = -2;
