import type { ErrorInfo } from './errors.js';

/**
 * Journal entries. Every effect a handler performs through its context gets the next index in
 * the invocation's journal; on replay the recorded entry is returned instead of performing the
 * effect again. Entries that wait for something (sleep, call) are recorded when started with
 * `done: false` and updated when their completion arrives.
 */
export type EntryKind =
  | 'run'
  | 'sleep'
  | 'call'
  | 'send'
  | 'get'
  | 'set'
  | 'clear'
  | 'clearAll'
  | 'keys'
  | 'now'
  /** An awakeable this invocation created (waits for an outside completion). */
  | 'awakeable'
  /** This invocation resolved or rejected someone's awakeable. */
  | 'completeAwakeable'
  /** Waiting for a workflow's durable promise. */
  | 'promise'
  | 'peekPromise'
  | 'completePromise'
  /** Which input of a combinator (race, any, all) decided it, so replay decides the same. */
  | 'combinator'
  /** Where a cancellation was delivered to the handler. */
  | 'cancel'
  /** The handler reported an outcome (e.g. a saga's `compensated`). */
  | 'outcome'
  /**
   * A versioning marker (`ctx.patched`, `ctx.deprecatePatch`; the name is the change id): this
   * run took the new branch of that change. Recorded only by runs that reached the gate under
   * code that has it, so a journal written by older code has no marker and keeps its indexes.
   */
  | 'patch';

/**
 * Awakeable ids are capabilities: whoever holds one can complete that awakeable, so they must
 * not be guessable from another one, nor reveal the invocation. An id is `awk_` followed by 26
 * base32 characters (130 bits) the engine derives from the invocation id and the entry's index
 * under a secret key of the store (so a retry after a crash hands out the same id), recorded
 * as the awakeable entry's `name`, so a replay hands out the same id. Entries recorded by older versions have
 * an empty name and the id {@link legacyAwakeableId} derives.
 */
export const AWAKEABLE_ID = /^awk_[0-9a-z]{26}$/;

/**
 * The id of an awakeable entry recorded before ids were random (its name is empty): still
 * accepted for such entries, so callbacks handed out by older versions keep working.
 */
export function legacyAwakeableId(invocationId: string, index: number): string {
  return `awk_${invocationId.slice(4)}_${index}`;
}

/**
 * What an awakeable id names: a random id (looked up in the store), a legacy id (the invocation
 * and entry it names), or undefined for a malformed id.
 */
export function parseAwakeableId(
  id: string,
): { random: string } | { invocationId: string; index: number } | undefined {
  if (AWAKEABLE_ID.test(id)) return { random: id };
  const m = /^awk_([0-9a-z]{26})_(\d{1,9})$/.exec(id);
  return m ? { invocationId: `inv_${m[1]}`, index: Number(m[2]) } : undefined;
}

/** Where a call or send goes. `key` is the object or workflow key; empty for services. */
export interface Target {
  service: string;
  handler: string;
  key: string;
}

export interface JournalEntry {
  kind: EntryKind;
  /** The step name, the state key, or the call target (`Service/key/handler`). */
  name: string;
  /** Whether the entry's result is known (always true for entries that do not wait). */
  done: boolean;
  /** The result, when done and successful. */
  value?: unknown;
  /** The terminal failure, when done and failed. */
  error?: ErrorInfo;
  /** Sleep: when it wakes, in epoch milliseconds. */
  wakeAt?: number;
  /** Call and send: the invocation that was started. */
  calleeId?: string;
  /**
   * When it started, in epoch milliseconds (whole). A step (`run`): when the body of its last
   * attempt started. A wait (sleep, call, awakeable, promise): when the entry was first
   * recorded; a completion keeps it (the stores keep the stored value when the completion
   * carries none). Informational only: replay never reads it (it compares kind and name).
   * Absent on entries recorded before Keel recorded timing.
   *
   * @example
   * ```ts
   * const entries = await engine.getJournal(id);
   * for (const [index, e] of entries)
   *   if (e.startedAt !== undefined) console.log(index, new Date(e.startedAt).toISOString());
   * ```
   */
  startedAt?: number;
  /** A step: how long the body of its last attempt took, in milliseconds (to 0.1 ms). */
  durationMs?: number;
  /**
   * A step: how many attempts of the invocation it took (the failed ones and the last), only
   * when more than one. A failed step is retried by retrying the invocation's attempt.
   */
  attempts?: number;
  /** A completed wait: when its completion was recorded, in epoch milliseconds. */
  completedAt?: number;
  /**
   * A completed wait: what completed it. `timer` (a sleep came due), `call <invocationId>` (the
   * callee answered), `awakeable` (resolved or rejected from outside: the ingress, an inbound
   * webhook, `Engine.resolveAwakeable`), `awakeable (handler <invocationId>)` (by a handler),
   * `cancel` (a cancellation delivered to this entry). Absent for durable promises (completed
   * inside the store) and for entries recorded before Keel recorded it.
   */
  completedBy?: string;
}

/** Human-readable description of an entry, used in non-determinism errors. */
export function describeEntry(e: Pick<JournalEntry, 'kind' | 'name'>): string {
  return e.name ? `${e.kind}("${e.name}")` : e.kind;
}

export function targetName(t: Target): string {
  return t.key ? `${t.service}/${t.key}/${t.handler}` : `${t.service}/${t.handler}`;
}

/** The name prefix of the journal marker that pins an invocation to a definition version. */
const VERSION_MARKER = '@version:';

/**
 * The marker recorded at index 0 of an invocation of a versioned definition: a `patch` entry
 * (which replay skips, see `ContextImpl`) naming the version its journal belongs to.
 */
export function versionMarker(version: number): JournalEntry {
  return { kind: 'patch', name: `${VERSION_MARKER}${version}`, done: true };
}

/** The version a journal is pinned to by its marker at index 0, if it has one. */
export function pinnedVersion(first: JournalEntry | undefined): number | undefined {
  if (first?.kind !== 'patch' || !first.name.startsWith(VERSION_MARKER)) return undefined;
  const v = Number(first.name.slice(VERSION_MARKER.length));
  return Number.isInteger(v) && v >= 1 ? v : undefined;
}

/** Whether a user's change id would read as a version marker (refused by `ctx.patched`). */
export function isVersionMarkerName(name: string): boolean {
  return name.startsWith(VERSION_MARKER);
}
