import type { ErrorInfo } from './errors.js';

/**
 * Journal entries. Every effect a handler performs through its context gets the next index in
 * the invocation's journal; on replay the recorded entry is returned instead of performing the
 * effect again. Entries that wait for something (sleep, call) are recorded when started with
 * `done: false` and updated when their completion arrives.
 */
export type EntryKind =
  'run' | 'sleep' | 'call' | 'send' | 'get' | 'set' | 'clear' | 'clearAll' | 'keys' | 'now';

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
}

/** Human-readable description of an entry, used in non-determinism errors. */
export function describeEntry(e: Pick<JournalEntry, 'kind' | 'name'>): string {
  return e.name ? `${e.kind}("${e.name}")` : e.kind;
}

export function targetName(t: Target): string {
  return t.key ? `${t.service}/${t.key}/${t.handler}` : `${t.service}/${t.handler}`;
}
