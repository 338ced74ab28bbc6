import { AsyncLocalStorage } from 'node:async_hooks';
import nodeCrypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { syncBuiltinESMExports } from 'node:module';
import { Prng } from '../core/prng.js';

/**
 * What a shadow replay (see replay-check.ts) sees instead of the process's clock, randomness
 * and network: a clock shifted far from the live run's, another random stream, and I/O that is
 * reported rather than performed.
 */
export interface ShadowScope {
  /** How far the shadow's wall clock is ahead of the real one. */
  readonly shiftMs: number;
  /** The shadow's random stream. */
  readonly prng: Prng;
  /** Handler code did I/O outside a `ctx.run` step (`what` names the call). */
  sideEffect(what: string): void;
}

/**
 * The shadow replay running in the current async context, if any. The globals below consult
 * it, so only the shadow's own promise chain sees the shifted clock: the engine and the live
 * handlers, interleaved with it on the same event loop, keep the real values.
 */
const scope = new AsyncLocalStorage<ShadowScope>();

/** Runs `fn` (a shadow replay's handler call) in `s`: everything it chains to sees `s`. */
export function inShadow<T>(s: ShadowScope, fn: () => T): T {
  return scope.run(s, fn);
}

/** A wall-clock reading for the shadow: later than the real one by its shift, and never twice the same. */
function shadowNow(s: ShadowScope, real: number): number {
  return real + s.shiftMs + Math.floor(s.prng.next() * 1000);
}

const NEVER = new Promise<never>(() => undefined);

let users = 0;
let uninstall: (() => void) | undefined;

/**
 * Replaces `Date.now`, `new Date()`, `Date()`, `Math.random`, `crypto.randomUUID` (global and
 * `node:crypto`), `performance.now`, `fetch` and `http(s).request`/`get` with versions that
 * behave as before outside a shadow replay and differently inside one. Counted: the originals
 * come back when the last user releases them (`testApp`'s `close`).
 */
export function acquireShadowGlobals(): () => void {
  if (users++ === 0) uninstall = install();
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--users === 0) {
      uninstall?.();
      uninstall = undefined;
    }
  };
}

function install(): () => void {
  const undo: Array<() => void> = [];
  const RealDate = globalThis.Date;
  const realNow = RealDate.now.bind(RealDate);
  const now = function now(): number {
    const s = scope.getStore();
    return s ? shadowNow(s, realNow()) : realNow();
  };
  RealDate.now = now;
  undo.push(() => (RealDate.now = realNow));
  const ShadowDate: DateConstructor = new Proxy(RealDate, {
    construct(target, args: unknown[], newTarget) {
      const s = args.length === 0 ? scope.getStore() : undefined;
      const nt = newTarget === ShadowDate ? target : (newTarget as DateConstructor);
      return Reflect.construct(target, s ? [shadowNow(s, realNow())] : args, nt) as object;
    },
    apply(target, thisArg, args: unknown[]) {
      const s = scope.getStore();
      return s
        ? new RealDate(shadowNow(s, realNow())).toString()
        : Reflect.apply(target, thisArg, args);
    },
  });
  globalThis.Date = ShadowDate;
  undo.push(() => (globalThis.Date = RealDate));

  const realRandom = Math.random;
  Math.random = function random(): number {
    const s = scope.getStore();
    return s ? s.prng.next() : realRandom();
  };
  undo.push(() => (Math.random = realRandom));

  const perf = globalThis.performance;
  const realPerfNow = perf.now.bind(perf);
  patchOwn(
    perf,
    'now',
    function now(): number {
      const s = scope.getStore();
      return s ? realPerfNow() + s.shiftMs : realPerfNow();
    },
    undo,
  );

  const uuid = (s: ShadowScope): `${string}-${string}-${string}-${string}-${string}` =>
    s.prng.uuid() as `${string}-${string}-${string}-${string}-${string}`;
  const webcrypto = globalThis.crypto;
  const realWebUuid = webcrypto.randomUUID.bind(webcrypto);
  patchOwn(
    webcrypto,
    'randomUUID',
    function randomUUID() {
      const s = scope.getStore();
      return s ? uuid(s) : realWebUuid();
    },
    undo,
  );
  const realNodeUuid = nodeCrypto.randomUUID;
  patchOwn(
    nodeCrypto,
    'randomUUID',
    function randomUUID(options?: nodeCrypto.RandomUUIDOptions) {
      const s = scope.getStore();
      return s ? uuid(s) : realNodeUuid(options);
    },
    undo,
  );

  const realFetch = globalThis.fetch;
  if (typeof realFetch === 'function') {
    globalThis.fetch = function fetch(input: Parameters<typeof realFetch>[0], init?: RequestInit) {
      const s = scope.getStore();
      if (!s) return realFetch(input, init);
      s.sideEffect(`fetch(${JSON.stringify(urlOf(input))})`);
      return NEVER;
    };
    undo.push(() => (globalThis.fetch = realFetch));
  }
  for (const [mod, name] of [
    [http, 'http'],
    [https, 'https'],
  ] as const) {
    for (const method of ['request', 'get'] as const) {
      const real = mod[method] as (...args: unknown[]) => unknown;
      patchOwn(
        mod,
        method,
        function (this: unknown, ...args: unknown[]) {
          const s = scope.getStore();
          if (!s) return real.apply(this, args);
          s.sideEffect(`${name}.${method}(${JSON.stringify(urlOf(args[0]))})`);
          throw new Error(
            `${name}.${method}() outside ctx.run during a replay check: I/O belongs in a ctx.run step`,
          );
        },
        undo,
      );
    }
  }
  // `import { request } from 'node:http'` reads the ESM view of the module: update it too.
  syncBuiltinESMExports();
  return () => {
    for (const u of undo.reverse()) u();
    syncBuiltinESMExports();
    // Lets Node turn its promise hooks off again once no async local storage is in use.
    scope.disable();
  };
}

/** Sets `obj[key]` to `value`, remembering how to put the original back. */
function patchOwn(obj: object, key: string, value: unknown, undo: Array<() => void>): void {
  const had = Object.prototype.hasOwnProperty.call(obj, key);
  const original = (obj as Record<string, unknown>)[key];
  try {
    Object.defineProperty(obj, key, { value, writable: true, configurable: true });
  } catch {
    return; // not patchable here: that call goes unwatched
  }
  undo.push(() => {
    if (had)
      Object.defineProperty(obj, key, { value: original, writable: true, configurable: true });
    else delete (obj as Record<string, unknown>)[key];
  });
}

/** The URL a fetch or http.request was asked for, as far as it can be told. */
function urlOf(input: unknown): string {
  if (typeof input === 'string') return input;
  if (input instanceof URL) return input.href;
  if (typeof input === 'object' && input !== null) {
    const r = input as { url?: unknown; host?: unknown; hostname?: unknown; path?: unknown };
    if (typeof r.url === 'string') return r.url;
    const host = typeof r.hostname === 'string' ? r.hostname : r.host;
    if (typeof host === 'string') return `${host}${typeof r.path === 'string' ? r.path : ''}`;
  }
  return String(input);
}
