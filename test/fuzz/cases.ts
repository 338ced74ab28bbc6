/** What the fuzzer sends and what it got back. */

export type Surface = 'ingress' | 'admin';

interface CaseCommon {
  surface: Surface;
  /** The generator that made it: summaries and reproductions name it. */
  gen: string;
  /**
   * True when the request is well-formed and may legitimately change state (start, complete,
   * cancel something). Invalid requests must be answered 4xx and change nothing.
   */
  valid: boolean;
  /**
   * An invalid case that asks for nothing to change but may still be answered 2xx (a read with
   * the read-only user token): in an invalid batch it is state-checked like any invalid case,
   * and its 2xx is neither "accepted by chance" nor a reason to wait for the store to settle.
   */
  readOnly?: boolean;
}

/** The one answer a case must get, checked wherever it is sent (mixed and invalid batches). */
export interface Expected {
  status: number;
  /** The `code` of the JSON error body, when the status alone would not say enough. */
  code?: string;
}

/** A request sent with undici: any method, target and headers undici accepts. */
export interface HttpCase extends CaseCommon {
  transport: 'http';
  method: string;
  /** The request target as sent (already percent-encoded, or deliberately not). */
  path: string;
  /** Name/value pairs; a name may repeat. */
  headers: [string, string][];
  body?: Buffer;
  /** Give up after this long (attach waits); a request given up on is not a failure. */
  abortAfterMs?: number;
  /** The answer it must get (a change with the user token: 403 `forbidden`); any other is a violation. */
  expect?: Expected;
  /** Statuses it must never get (a read with the user token: 401 and 403). */
  never?: number[];
  /**
   * The same request with the admin token: in an invalid batch (settled store, one request at a
   * time) it is sent right after this one, and both must get the same answer.
   */
  twin?: HttpCase;
}

/** Bytes written to a fresh TCP connection, for what no HTTP client would send. */
export interface RawCase extends CaseCommon {
  transport: 'raw';
  bytes: Buffer;
  /** Close the connection right after writing instead of waiting for an answer. */
  hangUp?: boolean;
}

export type FuzzCase = HttpCase | RawCase;

export interface Outcome {
  /** Undefined when no answer arrived. */
  status?: number;
  /** The `code` of a JSON error body. */
  code?: string;
  /** The answer's body (the first 2 KiB). */
  body?: string;
  /** A transport error instead of an answer. */
  error?: string;
  /** Given up on by the fuzzer (abortAfterMs, or a raw case's hang-up). */
  abandoned?: boolean;
  ms: number;
}

/** Error codes of requests undici refused to send (bad header names or values, methods): no request left. */
export const REFUSED: readonly string[] = ['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED'];

const SHOW = 2048;

/** A case as text precise enough to send it again by hand. */
export function describeCase(c: FuzzCase): string {
  if (c.transport === 'raw') {
    const shown = c.bytes.subarray(0, SHOW).toString('latin1');
    const more = c.bytes.length > SHOW ? ` ... (${c.bytes.length} bytes in all)` : '';
    return `[${c.gen}] raw bytes to the ${c.surface}${c.hangUp ? ', then hang up' : ''}: ${JSON.stringify(shown)}${more}`;
  }
  const lines = [`[${c.gen}] ${c.method} ${c.path} (${c.surface})`];
  for (const [k, v] of c.headers)
    lines.push(
      `  ${k}: ${JSON.stringify(v.slice(0, 300))}${v.length > 300 ? ` (${v.length} chars)` : ''}`,
    );
  if (c.body !== undefined) {
    const shown = c.body.subarray(0, SHOW).toString('utf8');
    lines.push(
      `  body (${c.body.length} bytes): ${JSON.stringify(shown)}${c.body.length > SHOW ? ' ...' : ''}`,
    );
  }
  return lines.join('\n');
}

export function describeOutcome(o: Outcome): string {
  if (o.status === undefined)
    return o.abandoned ? 'abandoned by the fuzzer' : `no answer (${o.error ?? '?'})`;
  return `${o.status} ${o.body === undefined ? '' : o.body.slice(0, 500)}`;
}
