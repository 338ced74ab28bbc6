/**
 * The answers a test scripts for a mocked integration operation or a captured webhook endpoint:
 * a body, a status with headers, a timeout, a dropped connection; several in a row; or a
 * function of the request. One vocabulary for both, so `mockFail(503, { times: 2 })` means the
 * same thing to an integration mock and to an outbound endpoint.
 */
import { parseDuration, type Duration } from '../core/duration.js';

const TAG = Symbol.for('keel.testing.answer');

/** A scripted answer made by {@link mockReply}, {@link mockFail}, {@link mockTimeout} or {@link mockNetworkError}. */
export interface TaggedAnswer {
  readonly [TAG]: true;
  readonly kind: 'reply' | 'timeout' | 'network';
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: unknown;
  /** The error code of a dropped connection (`network`). */
  readonly code: string;
  /**
   * How many requests this answer serves; `undefined`: one in a sequence, and every request
   * when it is the last (or only) answer.
   */
  readonly times: number | undefined;
}

/**
 * One answer: a tagged one (see {@link mockReply}, {@link mockFail}, {@link mockTimeout},
 * {@link mockNetworkError}), or any other value, which is the body of a 200 (`{ id: 'ch_1' }`).
 * A body that is itself an array needs `mockReply([...])`: a bare array is a sequence.
 */
export type MockAnswer = TaggedAnswer | string | number | boolean | null | object;

/**
 * What answers each request: one answer (every request gets it); an array, a sequence (each
 * entry answers `times` requests, default 1, and the last one answers every request after); or a
 * function of the request, called each time, which returns an answer (or a promise of one).
 *
 * When the last (or only) answer has an explicit `times`, the script runs out after it: later
 * requests get what they would without it (an integration's own mock, a captured endpoint's
 * 200). So `mockFail(503, { times: 2 })` alone means "two outages, then business as usual".
 *
 * @example
 * ```ts
 * const twoOutagesThenOk: Responder<MockCall> = [mockFail(503, { times: 2 }), { id: 'ch_1' }];
 * const echo: Responder<MockCall> = (call) => ({ id: `ch_${call.n}`, amount: call.body.amount });
 * ```
 */
export type Responder<R> =
  | MockAnswer
  | readonly (MockAnswer | ((request: R) => MockAnswer | Promise<MockAnswer>))[]
  | ((request: R) => MockAnswer | Promise<MockAnswer>);

/** An answer once resolved for one request. */
export type Resolved =
  | { kind: 'reply'; status: number; headers: Record<string, string>; body: unknown }
  | { kind: 'timeout' }
  | { kind: 'network'; code: string };

/** Options of {@link mockReply}. */
export interface MockReplyOptions {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string>;
  /** Requests this answer serves (see {@link Responder}). */
  times?: number;
}

/** Options of {@link mockFail}. */
export interface MockFailOptions {
  /**
   * Sent as the `Retry-After` header: a duration (`'30s'`, whole seconds rounded up) or a date
   * (an HTTP-date).
   */
  retryAfter?: Duration | Date;
  /** Default `{ error: 'simulated <status>' }`. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Requests this answer serves (see {@link Responder}). */
  times?: number;
}

/**
 * A response with `body` (status 200 unless `status` says otherwise).
 *
 * @example
 * ```ts
 * t.mock(github, { list_repos: mockReply([{ name: 'keel' }]) }); // an array body
 * t.mock(github, { create_issue: mockReply({ number: 7 }, { status: 201 }) });
 * ```
 */
export function mockReply(body: unknown, options: MockReplyOptions = {}): TaggedAnswer {
  return tagged('reply', options.status ?? 200, options.headers ?? {}, body, '', options.times);
}

/**
 * A failed response: `status` (a 503, a 429 with `retryAfter`, a 400), as the API would answer
 * it. The integration's real policies classify it: retried or not, counted by the breaker, and
 * a `Retry-After` honoured on the fake clock.
 *
 * @example
 * ```ts
 * t.mock(payments, {
 *   charge: [mockFail(429, { retryAfter: '30s' }), { id: 'ch_1' }],
 * });
 * ```
 */
export function mockFail(status: number, options: MockFailOptions = {}): TaggedAnswer {
  if (!Number.isInteger(status) || status < 100 || status > 599)
    throw new RangeError(`mockFail: status must be an HTTP status (100-599), got ${status}`);
  const headers: Record<string, string> = { ...options.headers };
  const ra = options.retryAfter;
  if (ra !== undefined) {
    headers['retry-after'] =
      ra instanceof Date ? ra.toUTCString() : String(Math.ceil(parseDuration(ra) / 1000));
  }
  const body = 'body' in options ? options.body : { error: `simulated ${status}` };
  return tagged('reply', status, headers, body, '', options.times);
}

/**
 * No answer in time: the attempt fails as a timeout (classified `timeout`, retried, counted by
 * the breaker). An integration mock fails the attempt at once, without moving the fake clock by
 * the timeout; a captured webhook endpoint holds the request unanswered until the sender's own
 * timeout (`webhooks.timeout`) gives up, in real time.
 *
 * @example
 * ```ts
 * t.mock(payments, { charge: [mockTimeout(), { id: 'ch_1' }] });
 * ```
 */
export function mockTimeout(options: { times?: number } = {}): TaggedAnswer {
  return tagged('timeout', 0, {}, undefined, '', options.times);
}

/**
 * The connection fails (`ECONNRESET` unless `code` says otherwise): classified as a network
 * error, retried, counted by the breaker. A captured webhook endpoint destroys the socket.
 *
 * @example
 * ```ts
 * t.mock(payments, { charge: [mockNetworkError('ECONNREFUSED'), { id: 'ch_1' }] });
 * ```
 */
export function mockNetworkError(
  code = 'ECONNRESET',
  options: { times?: number } = {},
): TaggedAnswer {
  return tagged('network', 0, {}, undefined, code, options.times);
}

function tagged(
  kind: TaggedAnswer['kind'],
  status: number,
  headers: Record<string, string>,
  body: unknown,
  code: string,
  times: number | undefined,
): TaggedAnswer {
  if (times !== undefined && (!Number.isInteger(times) || times < 1))
    throw new RangeError(`times must be a whole number of at least 1, got ${times}`);
  return Object.freeze({ [TAG]: true as const, kind, status, headers, body, code, times });
}

function isTagged(a: unknown): a is TaggedAnswer {
  return typeof a === 'object' && a !== null && (a as { [TAG]?: unknown })[TAG] === true;
}

/** An answer as one request gets it (a bare value is the body of a 200). */
export function resolve(a: MockAnswer): Resolved {
  if (!isTagged(a)) return { kind: 'reply', status: 200, headers: {}, body: a };
  if (a.kind === 'timeout') return { kind: 'timeout' };
  if (a.kind === 'network') return { kind: 'network', code: a.code };
  return { kind: 'reply', status: a.status, headers: { ...a.headers }, body: a.body };
}

/**
 * A responder being played: {@link next} gives the answer of each request in turn (see
 * {@link Responder}), or `undefined` once it has run out.
 */
export class Script<R> {
  private readonly entries: readonly unknown[];
  private index = 0;
  private served = 0;

  constructor(responder: Responder<R>) {
    this.entries = Array.isArray(responder) ? responder : [responder];
    if (this.entries.length === 0) throw new RangeError('a sequence of answers needs at least one');
  }

  async next(request: R): Promise<Resolved | undefined> {
    const entry = this.entries[this.index];
    if (this.index >= this.entries.length) return undefined;
    const last = this.index === this.entries.length - 1;
    const times = isTagged(entry) ? entry.times : undefined;
    this.served++;
    if (times !== undefined ? this.served >= times : !last) {
      this.index++;
      this.served = 0;
    }
    return resolve(await answerOf(entry as Responder<R>, request));
  }
}

function answerOf<R>(r: Responder<R>, request: R): MockAnswer | Promise<MockAnswer> {
  return typeof r === 'function'
    ? (r as (request: R) => MockAnswer | Promise<MockAnswer>)(request)
    : r;
}
