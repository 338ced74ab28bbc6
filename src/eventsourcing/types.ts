/** The shapes of event-sourced aggregates: events, commands, projections and what handlers return. */

/** An event as stored: its position in the aggregate's stream, its type, when, and its data. */
export interface StoredEvent<D = unknown> {
  /** 1 for the aggregate's first event, +1 for each next one; never reused. */
  seq: number;
  type: string;
  /** Epoch ms when it was appended; never less than the previous event's. */
  time: number;
  data: D;
}

/** What a command returns to append: a type and JSON data. */
export interface NewEvent<D = unknown> {
  type: string;
  data?: D;
}

/** What a command's `decide` function sees besides the state and the input. */
export interface CommandMeta {
  /** The aggregate's key (the object key). */
  key: string;
  /** How many events the aggregate has (0 for a new one). */
  version: number;
  /** Epoch ms (the engine's clock), the time the new events will carry. */
  now: number;
}

/**
 * A command: validates `input` against `state` and returns the events to append (none, one, or
 * several). Throw a `TerminalError` to refuse the command; nothing is appended then. Pure: no
 * I/O (it may run again if the process crashes before the events are stored).
 */
export type Decide<S, I = any> = (
  state: S,
  input: I,
  meta: CommandMeta,
) => NewEvent | readonly NewEvent[] | undefined | void;

/**
 * A projection: a read model kept up to date from every aggregate's events, each event applied
 * exactly once and in order per aggregate. Its views are JSON values in the Store, one per view
 * key (`key(event, aggregate)`, default `'all'`).
 */
export interface ProjectionConfig<V = any> {
  /** Letters, digits, `_`, `-`, `.`: the projector object's key. */
  name: string;
  /** A view before its first event. */
  initial: V | ((viewKey: string) => V);
  /** The view after `event` of `aggregate`. Pure. */
  apply(view: V, event: StoredEvent, aggregate: string): V;
  /** Which view `event` updates (default: the one view `'all'`). */
  key?(event: StoredEvent, aggregate: string): string;
}

/** What a command handler answers. */
export interface CommandResult<S> {
  /** The aggregate's version after the command (its last event's `seq`). */
  version: number;
  /** The events this command appended (empty when it decided none). */
  events: StoredEvent[];
  state: S;
}

/** What `state` and `stateAt` answer. */
export interface StateView<S> {
  /** The seq of the last event folded in (0: the initial state). */
  version: number;
  /** That event's time (undefined at version 0). */
  time?: number;
  state: S;
}

/** What `events` answers: a page of the stream. */
export interface EventPage {
  events: StoredEvent[];
  /** The aggregate's version when read. */
  version: number;
  /** The `from` of the next page, absent when this page reached the end. */
  next?: number;
}
