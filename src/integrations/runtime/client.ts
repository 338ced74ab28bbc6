/**
 * The shape of an integration client: one method per operation, returning the response's data,
 * with `.withResponse()` for the status, headers and where the answer came from.
 */
import type { CallResult, ResultSource } from './call.js';
import type { Integration, ResolvedOperation } from '../declarations/config.js';
import { IntegrationCallError } from '../errors.js';
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

/** Runs one call and resolves with its data, or rejects with its `IntegrationCallError`. */
export type InvokeData = (
  op: ResolvedOperation,
  params: CallParams,
  options: IntegrationCallOptions,
) => Promise<unknown>;

const NO_PARAMS: CallParams = Object.freeze({});
const NO_OPTIONS: IntegrationCallOptions = Object.freeze({});

/**
 * Builds a client from an invoke function, and optionally one that unpacks the data itself
 * (else the methods unpack `invoke`'s result, with {@link toData}).
 *
 * @example
 * ```ts
 * const gh = makeClient(github, (op, params, options) => runtime.call(handle, op, params, options));
 * ```
 */
export function makeClient<I extends Integration>(
  integration: I,
  invoke: Invoke,
  invokeData: InvokeData = (op, params, options) => invoke(op, params, options).then(toData),
): IntegrationClient<I> {
  const out: Record<string, OperationMethod> = {};
  for (const [name, op] of Object.entries<ResolvedOperation>(integration.operations)) {
    const full = (
      params?: CallParams,
      options?: IntegrationCallOptions,
    ): Promise<IntegrationResponse> =>
      invoke(op, params ?? NO_PARAMS, options ?? NO_OPTIONS).then(toResponse);
    const method = ((params?: CallParams, options?: IntegrationCallOptions) =>
      invokeData(op, params ?? NO_PARAMS, options ?? NO_OPTIONS)) as OperationMethod;
    method.withResponse = full as OperationMethod['withResponse'];
    out[name] = method;
  }
  return Object.freeze(out) as IntegrationClient<I>;
}

/** A call's data, or its failure thrown as an `IntegrationCallError`. */
export function toData(result: CallResult): unknown {
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
