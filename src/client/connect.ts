/**
 * `connect`: the typed remote client. Its clients mirror the handlers' own
 * (`ctx.serviceClient(Def)` and the rest) and are typed by the same definitions, imported as
 * types only; at run time a handler is named by the property read, so no definition value is
 * needed.
 */
import type { Definition } from '../core/definitions.js';
import { UsageError, ValidationError } from '../core/errors.js';
import { ThrottledError } from '../core/flow.js';
import { resolveRetry } from '../core/retry.js';
import { CLIENT_RETRY, exchange, type Transport } from './http.js';
import { invocationRef, sentInvocation } from './invocation.js';
import { awakeablePath, invokePath, sendQuery } from './paths.js';
import type {
  ConnectOptions,
  KeelClient,
  RemoteCallOptions,
  RemoteSendCallOptions,
  RemoteSendOptions,
  RemoteTarget,
  SentInvocation,
} from './types.js';

type Kind = Definition['kind'];
type Method = (input?: unknown, options?: RemoteCallOptions) => Promise<unknown>;

/**
 * Connects to a Keel app's HTTP ingress. Nothing is sent until a handler is called; the
 * returned client can be shared by any number of concurrent callers.
 *
 * @example
 * ```ts
 * import { connect } from 'keel/client';
 * import type { Counter, Greeter, Signup } from '../server/services.js'; // types only
 *
 * const keel = connect({ url: 'http://127.0.0.1:9080', apiKey: process.env.KEEL_API_KEY });
 * const greeting = await keel.serviceClient<typeof Greeter>('Greeter').greet('Ada');
 * const total = await keel.objectClient<typeof Counter>('Counter', 'visits').add(1, {
 *   idempotencyKey: requestId, // retried after a network error, and runs once
 * });
 * const sent = await keel.workflowSendClient<typeof Signup>('Signup', userId).run({ email });
 * const accountId = await sent.attach();
 * ```
 */
export function connect(options: ConnectOptions): KeelClient {
  const t = transportOf(options);

  const call = async (
    target: RemoteTarget,
    input: unknown,
    options: RemoteCallOptions | undefined,
    idempotent: boolean,
  ): Promise<unknown> => {
    const answer = await exchange(t, {
      method: 'POST',
      path: invokePath(target.service, target.handler, target.key, false),
      body: bodyOf(input),
      idempotencyKey: options?.idempotencyKey,
      idempotent: idempotent || options?.idempotencyKey !== undefined,
      signal: options?.signal,
    });
    return answer.body;
  };

  const send = async <O>(
    target: RemoteTarget,
    input: unknown,
    options: RemoteSendCallOptions | undefined,
    idempotent: boolean,
  ): Promise<SentInvocation<O>> => {
    const answer = await exchange(t, {
      method: 'POST',
      path: invokePath(target.service, target.handler, target.key, true) + sendQuery(options ?? {}),
      body: bodyOf(input),
      idempotencyKey: options?.idempotencyKey,
      idempotent: idempotent || options?.idempotencyKey !== undefined,
      signal: options?.signal,
    });
    // A throttle in drop mode refused it: 200 `{ dropped: true }`, thrown as the engine API does.
    const dropped = answer.body as { dropped?: unknown; retryAfterMs?: unknown; message?: unknown };
    if (dropped?.dropped === true)
      throw new ThrottledError(
        typeof dropped.message === 'string' ? dropped.message : 'the send was dropped (throttled)',
        typeof dropped.retryAfterMs === 'number' ? dropped.retryAfterMs : 0,
      );
    return sentInvocation<O>(t, answer.body);
  };

  /** The methods of a typed client of `def` (a definition, or its name) and `key`. */
  const methods = (
    def: Definition | string,
    kind: Kind,
    key: string | undefined,
    make: (target: RemoteTarget, idempotent: boolean) => Method,
  ): any => {
    const name = nameOf(def, kind);
    // A workflow runs once per key: repeating `run` attaches to the run, so it is safe to retry.
    const method = (handler: string): Method =>
      make({ service: name, handler, key }, kind === 'workflow' && handler === 'run');
    return typeof def === 'string' ? byName(method) : byDefinition(def, method);
  };

  const sendMethod =
    (options: RemoteSendOptions | undefined) =>
    (target: RemoteTarget, idempotent: boolean): Method =>
    (input, callOptions) =>
      send(
        target,
        input,
        {
          delay: options?.delay,
          debounce: options?.debounce,
          throttle: options?.throttle,
          idempotencyKey: callOptions?.idempotencyKey ?? options?.idempotencyKey,
          signal: callOptions?.signal ?? options?.signal,
        },
        idempotent,
      );
  const callMethod =
    (target: RemoteTarget, idempotent: boolean): Method =>
    (input, callOptions) =>
      call(target, input, callOptions, idempotent);

  return {
    url: t.url,
    serviceClient: (def) => methods(def, 'service', undefined, callMethod),
    objectClient: (def, key) => methods(def, 'object', key, callMethod),
    workflowClient: (def, key) => methods(def, 'workflow', key, callMethod),
    serviceSendClient: (def, options) => methods(def, 'service', undefined, sendMethod(options)),
    objectSendClient: (def, key, options) => methods(def, 'object', key, sendMethod(options)),
    workflowSendClient: (def, key, options) => methods(def, 'workflow', key, sendMethod(options)),
    call: async <O>(target: RemoteTarget, input?: unknown, options?: RemoteCallOptions) =>
      (await call(target, input, options, false)) as O,
    send: <O>(target: RemoteTarget, input?: unknown, options?: RemoteSendCallOptions) =>
      send<O>(target, input, options, false),
    invocation: (id) => invocationRef(t, id),
    resolveAwakeable: async (id, value, options) => {
      await exchange(t, {
        method: 'POST',
        path: awakeablePath(id, 'resolve'),
        body: bodyOf(value === undefined ? null : value),
        idempotent: false,
        signal: options?.signal,
      });
    },
    rejectAwakeable: async (id, message, options) => {
      await exchange(t, {
        method: 'POST',
        path: awakeablePath(id, 'reject'),
        body: bodyOf({ message }),
        idempotent: false,
        signal: options?.signal,
      });
    },
  };
}

/** The definition's name, checking that a definition given as a value is of the right kind. */
function nameOf(def: Definition | string, kind: Kind): string {
  if (typeof def === 'string') return def;
  if (typeof def !== 'object' || def === null || typeof def.name !== 'string')
    throw new UsageError(
      `expected a ${kind} definition or its name, got ${def === null ? 'null' : typeof def}`,
    );
  if (def.kind !== kind)
    throw new UsageError(
      `"${def.name}" is a ${def.kind}: use the ${def.kind}'s client (${def.kind}Client, ${def.kind}SendClient)`,
    );
  return def.name;
}

/** One method per handler of a definition value, as the handlers' clients build theirs. */
function byDefinition(def: Definition, method: (handler: string) => Method): any {
  const out: Record<string, Method> = {};
  for (const handler of Object.keys(def.handlers)) out[handler] = method(handler);
  return out;
}

/**
 * A client built from a name alone: any property read is a handler. `then` and `toJSON` are
 * not, since `await` and `JSON.stringify` read them (a handler so named needs the definition
 * value, or `keel.call`).
 */
function byName(method: (handler: string) => Method): any {
  const made = new Map<string, Method>();
  return new Proxy(Object.create(null) as object, {
    get(_target, prop) {
      if (typeof prop !== 'string' || prop === 'then' || prop === 'toJSON') return undefined;
      let m = made.get(prop);
      if (m === undefined) made.set(prop, (m = method(prop)));
      return m;
    },
  });
}

/** The JSON text of an input (`undefined` sends no body). */
function bodyOf(input: unknown): string | undefined {
  if (input === undefined) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(input);
  } catch (err) {
    throw new ValidationError(`the input has no JSON form: ${(err as Error).message}`, err);
  }
  if (text === undefined)
    throw new ValidationError(`the input has no JSON form (it is a ${typeof input})`);
  return text;
}

function transportOf(options: ConnectOptions): Transport {
  if (typeof options !== 'object' || options === null || typeof options.url !== 'string')
    throw new UsageError("connect needs { url }, e.g. connect({ url: 'http://127.0.0.1:9080' })");
  // A relative URL resolves against the page in a browser; elsewhere it is refused.
  const page = (globalThis as { location?: { href?: string } }).location?.href;
  let url: URL;
  try {
    url = new URL(options.url, page);
  } catch {
    throw new UsageError(
      `"${options.url}" is not a URL: give the ingress's, e.g. http://127.0.0.1:9080`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`"${options.url}" is not an http or https URL`);
  let headers: Record<string, string>;
  try {
    // Through Headers: names in lower case, so the apiKey replaces any `Authorization` given.
    const h = new Headers(options.headers);
    if (!h.has('accept')) h.set('accept', 'application/json');
    if (options.apiKey !== undefined) h.set('authorization', `Bearer ${options.apiKey}`);
    headers = Object.fromEntries(h);
  } catch (err) {
    throw new UsageError(
      `a header (or the apiKey) is not valid in HTTP: ${(err as Error).message}`,
    );
  }
  // Typed as possibly absent: an old runtime or a test environment may have none.
  const f: typeof fetch | undefined = options.fetch ?? globalThis.fetch;
  if (typeof f !== 'function')
    throw new UsageError(
      'there is no global fetch here (Node 18 or later has one): give options.fetch',
    );
  return {
    url: `${url.origin}${url.pathname}`.replace(/\/+$/, ''),
    headers,
    retry: options.retry === false ? undefined : resolveRetry(options.retry, CLIENT_RETRY),
    onRetry: options.onRetry,
    // Called as a plain function: a browser's fetch refuses any other `this`.
    fetch: (input, init) => f(input, init),
  };
}
