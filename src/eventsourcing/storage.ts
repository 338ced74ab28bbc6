/**
 * Where an aggregate's events live in the Store's key-value space, and the reads over them.
 * One value per event (so appending costs the same at the 10th event as at the 10 millionth),
 * one head per aggregate (its version), one snapshot every N events. Keys sort by position:
 * `{encoded aggregate key}/{seq, 12 digits}`; the encoding ({@link encodeKey}) has no `/`, so one
 * aggregate's prefix never matches another's.
 */
import type { Store } from '../store/types.js';
import type { StoredEvent } from './types.js';

/** The Store scopes of aggregate `name`. */
export interface Scopes {
  events: string;
  heads: string;
  snapshots: string;
}

export function scopesOf(name: string): Scopes {
  return {
    events: `keel.es.${name}.events`,
    heads: `keel.es.${name}.heads`,
    snapshots: `keel.es.${name}.snapshots`,
  };
}

/** An aggregate's head: its version, its last event's time, its latest snapshot's seq. */
export interface Head {
  version: number;
  time?: number;
  snapshot: number;
}

/** A stored snapshot: the state after event `seq`. */
export interface Snapshot<S = unknown> {
  seq: number;
  time?: number;
  state: S;
}

const SEQ_DIGITS = 12;

/**
 * An aggregate key as a Store key: every UTF-16 code unit other than `[A-Za-z0-9_.~-]` becomes
 * `%` and four hex digits. Injective, never contains `/`, and total (unlike
 * `encodeURIComponent`, which throws on a lone surrogate).
 */
export const encodeKey = (key: string): string =>
  key.replace(/[^A-Za-z0-9_.~-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** The aggregate key of a Store key made by {@link encodeKey}. */
export const decodeKey = (stored: string): string =>
  stored.replace(/%([0-9a-f]{4})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
export const pad = (seq: number): string => String(seq).padStart(SEQ_DIGITS, '0');
export const seqKey = (key: string, seq: number): string => `${encodeKey(key)}/${pad(seq)}`;

export async function readHead(store: Store, s: Scopes, key: string): Promise<Head> {
  const row = await store.getKv(s.heads, encodeKey(key));
  return (row?.value as Head | undefined) ?? { version: 0, snapshot: 0 };
}

/** Events `from`..`to` (inclusive) of one aggregate, in order, at most `limit`. */
export async function readEvents(
  store: Store,
  s: Scopes,
  key: string,
  from: number,
  to: number,
  limit = Infinity,
): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let after = seqKey(key, Math.max(0, from - 1));
  const prefix = `${encodeKey(key)}/`;
  while (out.length < limit) {
    const page = await store.listKv(s.events, {
      prefix,
      after,
      limit: Math.min(500, limit - out.length),
    });
    for (const row of page) {
      const e = row.value as StoredEvent;
      if (e.seq > to) return out;
      out.push(e);
    }
    if (page.length === 0) break;
    after = page[page.length - 1]!.key;
  }
  return out;
}

/** The latest snapshot at or before `seq` (undefined: start from the initial state). */
export async function snapshotAtOrBefore(
  store: Store,
  s: Scopes,
  key: string,
  seq: number,
  every: number,
): Promise<Snapshot | undefined> {
  if (seq <= 0) return undefined;
  // Snapshots are taken at multiples of `every`; look there first, then (an aggregate written
  // with another `snapshotEvery`) scan the few snapshots of the key.
  const guess = Math.floor(seq / every) * every;
  if (guess > 0) {
    const row = await store.getKv(s.snapshots, seqKey(key, guess));
    if (row) return row.value as Snapshot;
  }
  let best: Snapshot | undefined;
  let after: string | undefined;
  for (;;) {
    const page = await store.listKv(s.snapshots, {
      prefix: `${encodeKey(key)}/`,
      ...(after === undefined ? {} : { after }),
      limit: 500,
    });
    for (const row of page) {
      const snap = row.value as Snapshot;
      if (snap.seq > seq) return best;
      best = snap;
    }
    if (page.length < 500) return best;
    after = page[page.length - 1]!.key;
  }
}

/** Folds events onto a state; `apply` may mutate, so the input state is a private copy. */
export function fold<S>(
  state: S,
  events: readonly StoredEvent[],
  apply: (s: S, e: StoredEvent) => S,
): S {
  let out = state;
  for (const e of events) out = apply(out, e);
  return out;
}

/** The seq of the last event at or before `time` (0 if none), by binary search over seqs. */
export async function seqAtTime(
  store: Store,
  s: Scopes,
  key: string,
  version: number,
  time: number,
): Promise<number> {
  let lo = 0; // known: event lo is at or before time (0 = none)
  let hi = version; // candidates up to hi
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    const row = await store.getKv(s.events, seqKey(key, mid));
    if (!row) {
      // Not terminal: a damaged stream is an operator's problem, retried until repaired.
      throw new Error(`event ${mid} of ${key} is missing from the store; the stream is damaged`);
    }
    if ((row.value as StoredEvent).time <= time) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
