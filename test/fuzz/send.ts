import { connect } from 'node:net';
import { Client, Pool } from 'undici';
import {
  REFUSED,
  type FuzzCase,
  type HttpCase,
  type Outcome,
  type RawCase,
  type Surface,
} from './cases.js';

const KEEP = 2048;
/** A raw connection that says nothing for this long is given up on (Node's own timeouts are longer). */
const RAW_TIMEOUT_MS = 500;
/** No request of the fuzzer should wait longer; one that does is reported as unanswered. */
const HTTP_TIMEOUT_MS = 15_000;

const POOL_OPTIONS = {
  connections: 16,
  pipelining: 1,
  headersTimeout: HTTP_TIMEOUT_MS,
  bodyTimeout: HTTP_TIMEOUT_MS,
};

/** Sends cases to the app: one keep-alive pool per surface, raw sockets for protocol abuse. */
export class Sender {
  private readonly pools: Record<Surface, Pool>;
  private readonly urls: Record<Surface, string>;
  private readonly hosts: Record<Surface, { host: string; port: number }>;

  constructor(urls: Record<Surface, string>) {
    const pool = (url: string): Pool => new Pool(url, POOL_OPTIONS);
    this.urls = urls;
    this.pools = { ingress: pool(urls.ingress), admin: pool(urls.admin) };
    const hostOf = (url: string): { host: string; port: number } => {
      const u = new URL(url);
      return { host: u.hostname, port: Number(u.port) };
    };
    this.hosts = { ingress: hostOf(urls.ingress), admin: hostOf(urls.admin) };
  }

  send(c: FuzzCase): Promise<Outcome> {
    return c.transport === 'raw' ? this.raw(c) : this.http(c);
  }

  async close(): Promise<void> {
    await Promise.all([this.pools.ingress.destroy(), this.pools.admin.destroy()]);
  }

  private async http(c: HttpCase): Promise<Outcome> {
    const started = performance.now();
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // The watchdog races the exchange instead of relying on the abort alone: an aborted undici
    // request was seen never to settle (one still queued in the pool, never given a connection,
    // is not reached by the abort), which stalled the whole run. A given-up-on request is left
    // to settle or not on its own.
    const watchdog = new Promise<Outcome>((resolve) => {
      const limit = c.abortAfterMs ?? HTTP_TIMEOUT_MS + 5_000;
      timer = setTimeout(() => {
        // The pool's state tells a server that did not answer (the request was running) from
        // a client that never sent it (queued: every connection taken).
        const s = this.pools[c.surface].stats;
        abort.abort();
        // A pool whose connections undici lost track of (see the refusals below) would queue
        // every later request behind them: start a fresh one.
        if (c.abortAfterMs === undefined) this.retire(c.surface);
        const ms = performance.now() - started;
        resolve(
          c.abortAfterMs === undefined
            ? {
                error: `no answer within ${limit / 1000} s (client pool: ${s.connected} connected, ${s.free} free, ${s.running} running, ${s.queued} queued)`,
                ms,
              }
            : { abandoned: true, ms },
        );
      }, limit);
    });
    try {
      return await Promise.race([this.exchange(c, abort.signal, started), watchdog]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Replaces a surface's pool. The old one is closed, not destroyed: the requests still in
   * flight on it (other workers') finish normally instead of failing with UND_ERR_DESTROYED,
   * which would be reported as unanswered requests the server had nothing to do with.
   */
  private retire(surface: Surface): void {
    const old = this.pools[surface];
    this.pools[surface] = new Pool(this.urls[surface], POOL_OPTIONS);
    void old.close().catch(() => undefined);
  }

  private async exchange(c: HttpCase, signal: AbortSignal, started: number): Promise<Outcome> {
    // A request the fuzzer gives up on (an attach) gets a connection of its own, closed after:
    // the server sees its client go away, and no pooled connection is left in doubt.
    const own = c.abortAfterMs === undefined ? undefined : new Client(this.urls[c.surface]);
    const pool = this.pools[c.surface];
    try {
      const res = await (own ?? pool).request({
        method: c.method,
        path: c.path,
        headers: c.headers.flat(),
        body: c.body,
        signal,
      });
      const body = await readSome(res.body);
      return { status: res.statusCode, body, code: codeOf(body), ms: performance.now() - started };
    } catch (err) {
      const ms = performance.now() - started;
      if (signal.aborted) return { abandoned: true, ms };
      const e = err as { code?: string; message?: string };
      // undici (7.x) leaks a pool connection for each request it refuses to send: the client
      // it picked is marked busy ("needs drain") and never drains. After `connections` such
      // refusals every later request of the pool waits forever (seen as unanswered requests
      // of every kind, answered by nobody). A refused request retires its pool.
      if (!own && this.pools[c.surface] === pool && REFUSED.some((code) => e.code === code))
        this.retire(c.surface);
      return { error: `${e.code ?? 'error'}: ${e.message ?? String(err)}`, ms };
    } finally {
      void own?.destroy().catch(() => undefined);
    }
  }

  private raw(c: RawCase): Promise<Outcome> {
    const started = performance.now();
    return new Promise((resolve) => {
      const socket = connect(this.hosts[c.surface]);
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      const finish = (error?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        const text = skipInterim(Buffer.concat(chunks).toString('latin1'));
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
        const ms = performance.now() - started;
        if (!m) {
          resolve(
            c.hangUp ? { abandoned: true, ms } : { error: error ?? 'closed without an answer', ms },
          );
          return;
        }
        const sep = text.indexOf('\r\n\r\n');
        const body = sep === -1 ? '' : text.slice(sep + 4, sep + 4 + KEEP);
        resolve({ status: Number(m[1]), body, code: codeOf(body), ms });
      };
      const timer = setTimeout(() => finish('no answer within 0.5 s'), RAW_TIMEOUT_MS);
      socket.on('data', (d: Buffer) => {
        if (size < 64 * 1024) chunks.push(d);
        size += d.length;
        // The first answer is all that is judged: stop once it is complete, as a keep-alive
        // connection would otherwise stay open until the timeout.
        if (answerComplete(Buffer.concat(chunks))) finish();
      });
      socket.on('end', () => finish());
      socket.on('close', () => finish());
      socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
      socket.on('connect', () => {
        socket.write(c.bytes, () => {
          if (c.hangUp) finish();
        });
      });
    });
  }
}

/** Drops `100 Continue` and other 1xx interim answers: the final answer is the one judged. */
function skipInterim(text: string): string {
  let t = text;
  while (/^HTTP\/1\.[01] 1\d\d/.test(t)) {
    const end = t.indexOf('\r\n\r\n');
    if (end === -1) return '';
    t = t.slice(end + 4);
  }
  return t;
}

function answerComplete(raw: Buffer): boolean {
  const data = Buffer.from(skipInterim(raw.toString('latin1')), 'latin1');
  const sep = data.indexOf('\r\n\r\n');
  if (sep === -1) return false;
  const m = /\r\ncontent-length: *(\d+)/i.exec(data.subarray(0, sep).toString('latin1'));
  return m !== null && data.length >= sep + 4 + Number(m[1]);
}

async function readSome(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < KEEP) chunks.push(chunk);
    size += chunk.length;
  }
  return Buffer.concat(chunks).subarray(0, KEEP).toString('utf8');
}

function codeOf(body: string): string | undefined {
  if (!body.startsWith('{')) return undefined;
  try {
    const code = (JSON.parse(body) as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}
