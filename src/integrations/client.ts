/**
 * The shape of an integration client: one method per operation, returning the response's data,
 * with `.withResponse()` for the status, headers and where the answer came from.
 */
import type { CallResult, ResultSource } from './call.js';
import type { Integration, ResolvedOperation } from './config.js';
import { IntegrationCallError } from './errors.js';
import type { CallParams, IntegrationCallOptions } from './request.js';

/** A call's answer with its metadata. */
export interface IntegrationResponse<T = unknown> {
  data: T;
  status: number;
  /** Lower-case names. A cached answer carries `x-keel-cache: hit` or `stale`. */
  headers: Record<string, string>;
  /** Where it came from: the network, the mock, the cache, or a fallback. */
  source: ResultSource;
  /** Answered from the cache (fresh, or stale as the fallback while the circuit is open). */
  fromCache: boolean;
  /** Answered by the declared fallback (`'cache'` or `default(...)`), not by the API. */
  fallback: boolean;
  /** Requests sent (0 from the cache or a fallback). */
  attempts: number;
}

/** One operation as a method. */
export interface OperationMethod {
  /** Calls the operation; resolves with the response's data (parsed JSON, or text). */
  <T = any>(params?: CallParams, options?: IntegrationCallOptions): Promise<T>;
  /** Calls the operation; resolves with the data and its metadata. */
  withResponse<T = any>(
    params?: CallParams,
    options?: IntegrationCallOptions,
  ): Promise<IntegrationResponse<T>>;
}

/** A client of integration `I`: its operations as methods. */
export type IntegrationClient<I extends Integration> =
  I extends Integration<infer Ops> ? { readonly [K in Ops]: OperationMethod } : never;

/** Runs one call (journaled or not) and resolves with its {@link CallResult}. */
export type Invoke = (
  op: ResolvedOperation,
  params: CallParams,
  options: IntegrationCallOptions,
) => Promise<CallResult>;

/**
 * Builds a client from an invoke function.
 *
 * @example
 * ```ts
 * const gh = makeClient(github, (op, params, options) => runtime.call(handle, op, params, options));
 * ```
 */
export function makeClient<I extends Integration>(
  integration: I,
  invoke: Invoke,
): IntegrationClient<I> {
  const out: Record<string, OperationMethod> = {};
  for (const [name, op] of Object.entries<ResolvedOperation>(integration.operations)) {
    const full = (
      params?: CallParams,
      options?: IntegrationCallOptions,
    ): Promise<IntegrationResponse> => invoke(op, params ?? {}, options ?? {}).then(toResponse);
    const method = ((params?: CallParams, options?: IntegrationCallOptions) =>
      invoke(op, params ?? {}, options ?? {}).then(toData)) as OperationMethod;
    method.withResponse = full as OperationMethod['withResponse'];
    out[name] = method;
  }
  return Object.freeze(out) as IntegrationClient<I>;
}

function toData(result: CallResult): unknown {
  if (!result.ok) throw new IntegrationCallError(result.failure);
  return result.data;
}

/** Unpacks a journaled result: the response, or the same error live and on replay. */
export function toResponse(result: CallResult): IntegrationResponse {
  if (!result.ok) throw new IntegrationCallError(result.failure);
  return {
    data: result.data,
    status: result.status,
    headers: result.headers,
    source: result.source,
    fromCache: result.source === 'cache' || result.source === 'fallback-cache',
    fallback: result.source === 'fallback-cache' || result.source === 'fallback-default',
    attempts: result.attempts,
  };
}
