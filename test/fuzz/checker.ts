import { describeCase, describeOutcome, REFUSED, type FuzzCase, type Outcome } from './cases.js';
import { HANDLER_5XX_CODES } from './services.js';

/**
 * The 5xx answers Keel documents, each with the code that raises it:
 * - 503 `store_unavailable`, `store_closed`: the database is unreachable or closing
 *   (src/store/errors.ts, StoreError: "Retryable: the store reconnects by itself");
 * - 503 `engine_stopped`: the engine is stopping (src/engine/engine.ts, create() and stop());
 * - 503 `shutting_down`: the ingress is closing (src/ingress/server.ts, close()).
 * None of them should happen in a fuzz run (the app neither stops nor loses its database);
 * they are allowed because they are correct answers if it did. The served handlers' own
 * terminal errors keep their status (README, "The HTTP ingress"): {@link HANDLER_5XX_CODES}.
 * Anything else, `internal` above all, is a violation.
 */
export const DOCUMENTED_503 = [
  'store_unavailable',
  'store_closed',
  'engine_stopped',
  'shutting_down',
];

export type ViolationKind =
  | 'exit'
  | 'undocumented_5xx'
  | 'no_answer'
  | 'state_change'
  /** An answer other than the one the case demands (`HttpCase.expect`, `HttpCase.never`). */
  | 'wrong_answer'
  /** A read with the user token answered otherwise than the same read with the admin token. */
  | 'role_mismatch';

export interface Violation {
  kind: ViolationKind;
  /** The request that produced it (for an exit: the requests in flight at that moment). */
  cases: FuzzCase[];
  outcome?: Outcome;
  detail: string;
}

/** Counts and violations of a run. */
export class Checker {
  readonly violations: Violation[] = [];
  readonly byStatus = new Map<string, number>();
  readonly byGenerator = new Map<string, Map<string, number>>();
  /** Time spent waiting for answers, by generator: where a slow run goes. */
  readonly msByGenerator = new Map<string, number>();
  /** Invalid requests answered 2xx, by generator: not a violation by the rules, but worth a look. */
  readonly acceptedInvalid = new Map<string, { count: number; example: string }>();
  requests = 0;
  abandoned = 0;
  clientRefused = 0;

  /** Records one answer; returns the violation it is, if any. */
  record(c: FuzzCase, o: Outcome): Violation | undefined {
    this.requests++;
    const cls =
      o.status === undefined
        ? o.abandoned
          ? 'abandoned'
          : 'none'
        : `${Math.floor(o.status / 100)}xx`;
    this.byStatus.set(cls, (this.byStatus.get(cls) ?? 0) + 1);
    const perGen = this.byGenerator.get(c.gen) ?? new Map<string, number>();
    perGen.set(String(o.status ?? cls), (perGen.get(String(o.status ?? cls)) ?? 0) + 1);
    this.byGenerator.set(c.gen, perGen);
    this.msByGenerator.set(c.gen, (this.msByGenerator.get(c.gen) ?? 0) + o.ms);
    if (o.abandoned) {
      this.abandoned++;
      return undefined;
    }
    if (o.status === undefined) {
      // undici refusing to send what a generator made is the fuzzer's problem, not the app's.
      if (REFUSED.some((code) => o.error?.startsWith(`${code}:`))) {
        this.clientRefused++;
        return undefined;
      }
      // A raw request with broken framing may be answered by closing the connection.
      if (c.transport === 'raw') return undefined;
      return this.add({
        kind: 'no_answer',
        cases: [c],
        outcome: o,
        detail: `no HTTP answer: ${o.error ?? '?'}`,
      });
    }
    if (o.status >= 500 && !documented5xx(o)) {
      return this.add({
        kind: 'undocumented_5xx',
        cases: [c],
        outcome: o,
        detail: `answered ${o.status} ${o.code ?? '(no code)'}`,
      });
    }
    if (c.transport === 'http') {
      const e = c.expect;
      if (e && (o.status !== e.status || (e.code !== undefined && o.code !== e.code)))
        return this.add({
          kind: 'wrong_answer',
          cases: [c],
          outcome: o,
          detail: `answered ${o.status} ${o.code ?? '(no code)'} where ${e.status} ${e.code ?? ''} is required`,
        });
      if (c.never?.includes(o.status))
        return this.add({
          kind: 'wrong_answer',
          cases: [c],
          outcome: o,
          detail: `answered ${o.status} ${o.code ?? '(no code)'}, which this request must never get`,
        });
    }
    if (!c.valid && !c.readOnly && o.status < 300) {
      const seen = this.acceptedInvalid.get(c.gen);
      if (seen) seen.count++;
      else
        this.acceptedInvalid.set(c.gen, {
          count: 1,
          example: `${describeCase(c)}\n  -> ${describeOutcome(o)}`,
        });
    }
    return undefined;
  }

  /**
   * Compares a user-token read with its admin-token twin, sent right after it on a settled store:
   * same status, same body (up to what changes with time alone). Returns the violation, if any.
   */
  compareTwin(c: FuzzCase, o: Outcome, twin: FuzzCase, t: Outcome): Violation | undefined {
    if (o.status === undefined || t.status === undefined) return undefined;
    if (o.status === t.status && stable(o.body) === stable(t.body)) return undefined;
    return this.add({
      kind: 'role_mismatch',
      cases: [c, twin],
      outcome: o,
      detail: `the user token's read answered ${o.status} ${JSON.stringify(o.body?.slice(0, 300))}; the admin token's answered ${t.status} ${JSON.stringify(t.body?.slice(0, 300))}`,
    });
  }

  add(v: Violation): Violation {
    this.violations.push(v);
    return v;
  }
}

/**
 * A body without what changes with time alone between two reads a moment apart: an open
 * circuit's countdown (`retry_in_ms`, integrations' health).
 */
function stable(body: string | undefined): string | undefined {
  return body?.replace(/"retry_in_ms":\d+/g, '"retry_in_ms":0');
}

function documented5xx(o: Outcome): boolean {
  if (o.status === 503 && o.code !== undefined && DOCUMENTED_503.includes(o.code)) return true;
  return o.code !== undefined && HANDLER_5XX_CODES.includes(o.code);
}

/** A violation as text: what went wrong and the request(s) that reproduce it. */
export function describeViolation(v: Violation): string {
  const lines = [`${v.kind}: ${v.detail}`];
  for (const c of v.cases) lines.push(describeCase(c).replace(/^/gm, '    '));
  if (v.outcome) lines.push(`    -> ${describeOutcome(v.outcome)}`);
  return lines.join('\n');
}
