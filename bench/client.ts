/**
 * A minimal closed-loop HTTP/1.1 load generator on raw `node:net` sockets: one keep-alive
 * connection per client, one request in flight per connection, the next sent as soon as the
 * previous answer is complete. Requests are pre-formatted strings and answers are parsed
 * just enough to check them (status line, content-length, connection, body), so the load
 * generator costs a fraction of what the server under test does: the plain node:http no-op
 * row measures that ceiling.
 *
 * Every answer is checked: a status other than the expected one (200 by default) or a body
 * other than the expected one is counted, never measured as a success. Latency is
 * `process.hrtime.bigint()` from the write of the request to the last byte of the answer, kept
 * per request at nanosecond resolution.
 */
import net from 'node:net';

export interface LoadOptions {
  host: string;
  port: number;
  /**
   * Several servers (e.g. processes of one cluster): client `c` connects to `targets[c % n]`,
   * so the clients are split evenly; the requests stay one shared closed loop. Default: host/port.
   */
  targets?: Array<{ host: string; port: number }>;
  /** Concurrent connections (= clients, each with one request in flight). */
  clients: number;
  /** Total requests, shared among the clients. */
  total: number;
  /** The path of request number `i` (0-based), e.g. a fresh workflow key per request. */
  path: (i: number) => string;
  /** JSON request body. */
  body: string;
  /** Extra request headers, sent with every request (e.g. `authorization`). */
  headers?: Readonly<Record<string, string>>;
  /** The exact answer body expected (with status `expectStatus`), or a check of the body. */
  expect: string | ((body: string) => boolean);
  /** The status expected; default 200 (202 for a `/send`). */
  expectStatus?: number;
  /** Give up after this long; requests not answered by then count as errors. */
  timeoutMs?: number;
  /**
   * Stop sending new requests this long after the start; those in flight still complete. The
   * run then covers fewer requests than `total` (`total` in the result is how many were sent),
   * and `stoppedAfterMs` says so. Keeps a very slow server from stretching the whole bench.
   */
  sendForMs?: number;
}

export interface LoadResult {
  /** Requests sent (all of `total` unless the run was stopped by `sendForMs`). */
  total: number;
  /** Requests the run was asked for. */
  planned: number;
  /** Set when `sendForMs` stopped the run before it sent every request. */
  stoppedAfterMs?: number;
  /** The expected status (200 by default) with the expected body. */
  ok: number;
  /** Answers by status, for everything that was not the expected status. */
  statuses: Record<number, number>;
  /** The expected status but not the expected body. */
  wrongBody: number;
  /** Connection errors, resets, timeouts: requests that got no answer. */
  errors: number;
  /** A few examples of what went wrong, for the report. */
  samples: string[];
  elapsedMs: number;
  /** Latency of each successful request, in milliseconds. */
  latenciesMs: Float64Array;
  /** Successful requests per target (one entry without `targets`). */
  okByTarget: number[];
}

const CRLF2 = Buffer.from('\r\n\r\n');

export function runLoad(o: LoadOptions): Promise<LoadResult> {
  const latencies = new Float64Array(o.total);
  const result: LoadResult = {
    total: o.total,
    planned: o.total,
    ok: 0,
    statuses: {},
    wrongBody: 0,
    errors: 0,
    samples: [],
    elapsedMs: 0,
    latenciesMs: latencies,
    okByTarget: [],
  };
  const targets = o.targets?.length ? o.targets : [{ host: o.host, port: o.port }];
  result.okByTarget = targets.map(() => 0);
  const bodyLength = Buffer.byteLength(o.body);
  const expectStatus = o.expectStatus ?? 200;
  const extra = Object.entries(o.headers ?? {})
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const heads = targets.map(
    (t) =>
      `Host: ${t.host}:${t.port}\r\n${extra}content-type: application/json\r\ncontent-length: ${bodyLength}\r\n\r\n${o.body}`,
  );
  let next = 0;
  let done = 0;
  /** How many requests the run sends: o.total, or fewer once sendForMs has passed. */
  let end = o.total;
  const sample = (s: string): void => {
    if (result.samples.length < 5) result.samples.push(s);
  };

  return new Promise((resolve) => {
    let t0 = process.hrtime.bigint();
    const conns: Client[] = [];
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearTimeout(stopTimer);
      result.elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
      for (const c of conns) c.close();
      result.latenciesMs = latencies.subarray(0, result.ok);
      resolve(result);
    };
    const timer = setTimeout(() => {
      const unanswered = end - done;
      result.errors += unanswered;
      sample(`timeout after ${o.timeoutMs ?? 120_000} ms with ${unanswered} requests unanswered`);
      finish();
    }, o.timeoutMs ?? 120_000);
    let stopTimer: NodeJS.Timeout | undefined;

    class Client {
      private socket!: net.Socket;
      private buf: Buffer | undefined;
      private started = 0n;
      private busy = false;
      private closed = false;
      private readonly head: string;

      constructor(private readonly target: number) {
        this.head = heads[target]!;
        this.connect();
      }

      private connect(): void {
        const t = targets[this.target]!;
        const s = net.connect({ host: t.host, port: t.port, noDelay: true });
        this.socket = s;
        this.buf = undefined;
        s.on('data', (d: Buffer) => this.onData(d));
        s.on('error', (err) => this.onBroken(`socket error: ${err.message}`));
        s.on('close', () => this.onBroken('connection closed by the server'));
      }

      close(): void {
        this.closed = true;
        drop(this.socket);
      }

      /** Resolves once connected, so connection setup is not part of the first latency. */
      ready(): Promise<void> {
        const s = this.socket;
        if (!s.connecting) return Promise.resolve();
        return new Promise((res) => {
          s.once('connect', () => res());
          s.once('close', () => res());
        });
      }

      /** Sends the next request if any is left. */
      send(): void {
        if (this.closed) return;
        if (next >= end) return;
        const i = next++;
        this.busy = true;
        this.started = process.hrtime.bigint();
        this.socket.write(`POST ${o.path(i)} HTTP/1.1\r\n${this.head}`);
      }

      private onBroken(why: string): void {
        if (this.closed || finished) return;
        if (this.busy) {
          this.busy = false;
          result.errors++;
          sample(why);
          this.complete();
        }
        // Reconnect and go on: the run measures how many requests failed, it does not stop.
        drop(this.socket);
        if (next < end) {
          this.connect();
          this.send();
        }
      }

      private onData(d: Buffer): void {
        const buf = this.buf === undefined ? d : Buffer.concat([this.buf, d]);
        const headEnd = buf.indexOf(CRLF2);
        if (headEnd === -1) {
          this.buf = buf;
          return;
        }
        const headText = buf.toString('latin1', 0, headEnd);
        const status = Number(headText.slice(9, 12));
        let length = -1;
        let closeAfter = false;
        for (const line of headText.split('\r\n')) {
          const colon = line.indexOf(':');
          if (colon === -1) continue;
          const name = line.slice(0, colon).toLowerCase();
          if (name === 'content-length') length = Number(line.slice(colon + 1));
          else if (
            name === 'connection' &&
            line
              .slice(colon + 1)
              .trim()
              .toLowerCase() === 'close'
          )
            closeAfter = true;
          else if (name === 'transfer-encoding')
            throw new Error(
              'bench client: chunked answers are not supported; the server must send content-length',
            );
        }
        if (length < 0) throw new Error(`bench client: answer without content-length: ${headText}`);
        const end = headEnd + 4 + length;
        if (buf.length < end) {
          this.buf = buf;
          return;
        }
        this.buf = undefined;
        const elapsed = process.hrtime.bigint() - this.started;
        this.busy = false;
        const body = buf.toString('utf8', headEnd + 4, end);
        if (status !== expectStatus) {
          result.statuses[status] = (result.statuses[status] ?? 0) + 1;
          sample(`${status} ${body.slice(0, 200)}`);
        } else if (typeof o.expect === 'string' ? body !== o.expect : !o.expect(body)) {
          result.wrongBody++;
          sample(
            `${status} with body ${body.slice(0, 200)}` +
              (typeof o.expect === 'string' ? ` (expected ${o.expect})` : ''),
          );
        } else {
          latencies[result.ok++] = Number(elapsed) / 1e6;
          result.okByTarget[this.target]!++;
        }
        if (closeAfter) {
          drop(this.socket);
          this.complete();
          if (next < end && !this.closed) {
            this.connect();
            this.send();
          }
          return;
        }
        this.complete();
        this.send();
      }

      private complete(): void {
        done++;
        if (done >= end) finish();
      }
    }

    const n = Math.max(1, Math.min(o.clients, o.total));
    for (let c = 0; c < n; c++) conns.push(new Client(c % targets.length));
    void Promise.all(conns.map((c) => c.ready())).then(() => {
      t0 = process.hrtime.bigint();
      if (o.sendForMs !== undefined)
        stopTimer = setTimeout(() => {
          if (next >= end) return;
          end = next;
          result.total = next;
          result.stoppedAfterMs = o.sendForMs;
          if (done >= end) finish();
        }, o.sendForMs);
      for (const c of conns) c.send();
    });
  });
}

function drop(s: net.Socket): void {
  s.removeAllListeners();
  s.on('error', () => {});
  s.destroy();
}

/** Nearest-rank percentile of unsorted latencies (sorts a copy). */
export function percentiles(latenciesMs: Float64Array, ps: number[]): number[] {
  if (latenciesMs.length === 0) return ps.map(() => NaN);
  const sorted = Float64Array.from(latenciesMs).sort();
  return ps.map(
    (p) =>
      sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!,
  );
}
