/**
 * Handles to invocations of the remote app: what a send resolves with, and
 * `keel.invocation(id)`. Every request here only reads, so each is retried after a network
 * error whatever the options say about idempotency keys.
 */
import { UnexpectedAnswerError } from './errors.js';
import { exchange, type Transport } from './http.js';
import { invocationPath } from './paths.js';
import type {
  InvocationInfo,
  InvocationOutput,
  InvocationRef,
  InvocationStatus,
  ReadOptions,
  SentInvocation,
} from './types.js';

/** The ingress's 202 of `/output` for an invocation still going: `{ code: 'not_ready', status }`. */
interface NotReady {
  code: 'not_ready';
  status: InvocationStatus;
}

/** A handle to invocation `invocationId`. */
export function invocationRef<O>(t: Transport, invocationId: string): InvocationRef<O> {
  const read = (action: 'attach' | 'output' | undefined, options: ReadOptions | undefined) =>
    exchange(t, {
      method: 'GET',
      path: invocationPath(invocationId, action),
      idempotent: true,
      ...(options?.signal ? { signal: options.signal } : {}),
    });
  return {
    invocationId,
    attach: async (options) => (await read('attach', options)).body as O,
    output: async (options): Promise<InvocationOutput<O>> => {
      const answer = await read('output', options);
      // 200 is the result (any JSON, even an object with a `code`); 202 is "not finished".
      if (answer.status === 202) return { ready: false, status: (answer.body as NotReady).status };
      return { ready: true, output: answer.body as O };
    },
    info: async (options) => (await read(undefined, options)).body as InvocationInfo,
  };
}

/** The handle a send resolves with, from the ingress's 202 `{ invocationId, status, existing }`. */
export function sentInvocation<O>(t: Transport, body: unknown): SentInvocation<O> {
  const { invocationId, status, existing } = (body ?? {}) as {
    invocationId?: unknown;
    status: InvocationStatus;
    existing: boolean;
  };
  if (typeof invocationId !== 'string')
    throw new UnexpectedAnswerError('the answer to a send names no invocationId', 502);
  return { ...invocationRef<O>(t, invocationId), status, existing };
}
