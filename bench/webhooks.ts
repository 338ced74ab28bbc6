/**
 * The webhook delivery benchmark: signed, journaled deliveries per second from a Keel app to a
 * local receiver, end to end.
 *
 * The Keel app (`webhooks-server.ts`) runs in a child process pinned to CPU 0 with one endpoint;
 * this process (CPU 1) is both the publisher and the receiver. Publishing: `BENCH_WEBHOOK_CLIENTS`
 * (16) clients call `POST /Publisher/burst` with `BENCH_WEBHOOK_BURST` (50), each call publishing
 * that many events one after the other, until `BENCH_WEBHOOK_N` (20,000) events are published.
 * Every delivery is a `keel.webhooks/deliver` invocation: a journaled attempt step (SSRF check,
 * Standard Webhooks signature, POST over a keep-alive pool) whose delivery-log record is committed
 * with the step's journal entry.
 *
 * The receiver answers 200 and checks each request with an independent Standard Webhooks
 * verification (node:crypto). The rate is events / (last distinct delivery received − first
 * publish sent): publishing and delivering overlap, so this is the sustained end-to-end rate.
 * Latency is from the event's timestamp (set when its publish step ran) to its arrival.
 */
import { spawn } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentiles, runLoad } from './client.js';

export interface WebhookRow {
  durability: string;
  events: number;
  deliveredPerSec: number;
  publishedPerSec: number;
  p50: number;
  p99: number;
  /** Requests received beyond one per event (at-least-once repeats). */
  repeats: number;
  badSignatures: number;
  missing: number;
  serverCpuUsPerDelivery?: number;
  /** The part of it spent in the kernel (system calls: socket and WAL writes, fdatasync). */
  serverSysCpuUsPerDelivery?: number;
  storeWritesPerDelivery?: number;
  fsyncsPerDelivery?: number;
}

const envInt = (name: string, dflt: number): number => {
  const v = process.env[name];
  const n = v === undefined || v === '' ? dflt : Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new RangeError(`${name}="${v}" must be a positive integer`);
  return n;
};

const N = envInt('BENCH_WEBHOOK_N', 20_000);
const BURST = envInt('BENCH_WEBHOOK_BURST', 50);
const CLIENTS = envInt('BENCH_WEBHOOK_CLIENTS', 16);
const TIMEOUT_MS = 120_000;

interface Receiver {
  url: string;
  seen: Set<string>;
  received: number;
  bad: number;
  latencies: number[];
  lastAt: number;
  secret?: Buffer;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const r: Receiver = {
    url: '',
    seen: new Set(),
    received: 0,
    bad: 0,
    latencies: [],
    lastAt: 0,
    close: async () => undefined,
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['webhook-id']);
      const ts = String(req.headers['webhook-timestamp']);
      const sig = String(req.headers['webhook-signature']);
      const expected = createHmac('sha256', r.secret!).update(`${id}.${ts}.${body}`).digest();
      const given = Buffer.from(sig.slice(3), 'base64');
      const ok = sig.startsWith('v1,') && given.length === 32 && timingSafeEqual(given, expected);
      r.received++;
      if (!ok) r.bad++;
      else if (!r.seen.has(id)) {
        r.seen.add(id);
        const now = Date.now();
        r.lastAt = now;
        r.latencies.push(now - Date.parse((JSON.parse(body) as { timestamp: string }).timestamp));
      }
      res.writeHead(200, { 'content-length': 2 });
      res.end('ok');
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  r.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hooks`;
  r.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return r;
}

/** User and system CPU time of a process so far, in ms (Linux; undefined elsewhere). */
function procCpu(pid: number): { user: number; sys: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) * 10, sys: Number(f[12]) * 10 };
  } catch {
    return undefined;
  }
}

/** Runs one deployment (durability `fsync` or `os`) and returns its row. */
export async function runWebhookBench(opts: {
  root: string;
  tmp: string;
  durability: 'fsync' | 'os';
  pinned: boolean;
  log: (s: string) => void;
  /** Extra `node` flags for the server (e.g. `--cpu-prof`). */
  nodeFlags?: string[];
}): Promise<WebhookRow> {
  // A fresh database: endpoints left by an earlier run would point at receivers long gone.
  const db = path.join(opts.tmp, `webhooks-${opts.durability}.db`);
  for (const f of [db, `${db}-wal`, `${db}-shm`]) fs.rmSync(f, { force: true });
  const r = await startReceiver();
  // Compiled (npm run bench): the server's .js sits next to this file.
  const compiled = import.meta.url.endsWith('.js');
  const entry = [
    ...(opts.nodeFlags ?? []),
    ...(compiled
      ? [fileURLToPath(new URL('./webhooks-server.js', import.meta.url))]
      : ['--import', 'tsx', 'bench/webhooks-server.ts']),
  ];
  const [cmd, argv] = opts.pinned
    ? ['taskset', ['-c', '0', process.execPath, ...entry]]
    : [process.execPath, entry];
  const child = spawn(cmd, argv, {
    cwd: opts.root,
    env: {
      ...process.env,
      KEEL_DB: db,
      KEEL_DURABILITY: opts.durability,
      KEEL_PORT: '0',
      RECEIVER_URL: r.url,
    },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  try {
    const ready = await new Promise<{ host: string; port: number; secret: string }>(
      (resolve, reject) => {
        let buf = '';
        child.stdout!.setEncoding('utf8');
        child.stdout!.on('data', (d: string) => {
          buf += d;
          const m = /KEEL_BENCH_READY (\S+) (\S+)/.exec(buf);
          if (m) {
            const u = new URL(m[1]!);
            resolve({ host: u.hostname, port: Number(u.port), secret: m[2]! });
          }
        });
        void exited.then(() =>
          reject(new Error('webhook bench server exited before it was ready')),
        );
      },
    );
    r.secret = Buffer.from(ready.secret.slice('whsec_'.length), 'base64');
    const stats = (): Promise<Record<string, number>> =>
      new Promise((resolve) => {
        const on = (m: unknown): void => {
          if (typeof m === 'object' && m !== null && 'stats' in m) {
            child.off('message', on);
            resolve((m as { stats: Record<string, number> }).stats);
          }
        };
        child.on('message', on);
        child.send('stats');
      });

    // Warm-up: a few bursts, delivered, then forget them.
    await runLoad({
      ...ready,
      clients: 4,
      total: 20,
      path: () => '/Publisher/burst',
      body: '10',
      expect: '10',
    });
    const warmDeadline = Date.now() + 30_000;
    while (r.seen.size < 200 && Date.now() < warmDeadline)
      await new Promise((res) => setTimeout(res, 10));
    r.seen.clear();
    r.latencies = [];
    r.received = 0;
    r.bad = 0;

    const stats0 = await stats();
    const cpu0 = procCpu(child.pid!);
    const bursts = Math.ceil(N / BURST);
    const events = bursts * BURST;
    opts.log(`webhooks (${opts.durability}): publishing ${events} events`);
    const t0 = Date.now();
    const published = await runLoad({
      ...ready,
      clients: CLIENTS,
      total: bursts,
      path: () => '/Publisher/burst',
      body: String(BURST),
      expect: String(BURST),
      timeoutMs: TIMEOUT_MS,
    });
    const publishMs = Date.now() - t0;
    const deadline = Date.now() + TIMEOUT_MS;
    while (r.seen.size < events && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 5));
    const cpu1 = procCpu(child.pid!);
    const stats1 = await stats();
    const elapsed = (r.lastAt || Date.now()) - t0;
    const delivered = r.seen.size;
    const [p50, p99] = percentiles(Float64Array.from(r.latencies), [50, 99]);
    const delta = (k: string): number => (stats1[k] ?? 0) - (stats0[k] ?? 0);
    const row: WebhookRow = {
      durability: opts.durability,
      events,
      deliveredPerSec: (delivered / elapsed) * 1000,
      publishedPerSec: ((published.ok * BURST) / publishMs) * 1000,
      p50: p50 ?? NaN,
      p99: p99 ?? NaN,
      repeats: r.received - r.bad - delivered,
      badSignatures: r.bad,
      missing: events - delivered,
    };
    if (cpu0 !== undefined && cpu1 !== undefined) {
      const per = (ms: number): number => (ms * 1000) / Math.max(1, delivered);
      row.serverCpuUsPerDelivery = per(cpu1.user - cpu0.user + cpu1.sys - cpu0.sys);
      row.serverSysCpuUsPerDelivery = per(cpu1.sys - cpu0.sys);
    }
    if (delta('writes') > 0) row.storeWritesPerDelivery = delta('writes') / Math.max(1, delivered);
    if (delta('syncs') > 0) row.fsyncsPerDelivery = delta('syncs') / Math.max(1, delivered);
    return row;
  } finally {
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
    await r.close();
  }
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** The webhook table, in markdown. */
export function webhookTable(rows: WebhookRow[]): string {
  const out = [
    '| Deliveries (1 endpoint) | Durability | delivered/s | published/s | p50 ms | p99 ms | srv CPU µs/delivery | Store /delivery | Repeats | Bad signatures | Missing | Target |',
    '| --- | --- | --: | --: | --: | --: | --: | --- | --: | --: | --: | --- |',
  ];
  for (const r of rows) {
    const store =
      r.storeWritesPerDelivery === undefined
        ? '—'
        : `${r.storeWritesPerDelivery.toFixed(1)} writes${r.fsyncsPerDelivery ? ` + ${r.fsyncsPerDelivery.toFixed(2)} fsyncs` : ''}`;
    out.push(
      `| signed, journaled, ${fmt(r.events)} events in bursts of ${BURST} from ${CLIENTS} clients | \`${r.durability}\` | ${fmt(r.deliveredPerSec)} | ${fmt(r.publishedPerSec)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.serverCpuUsPerDelivery === undefined ? '—' : `${fmt(r.serverCpuUsPerDelivery)}${r.serverSysCpuUsPerDelivery === undefined ? '' : ` (${fmt(r.serverSysCpuUsPerDelivery)} sys)`}`} | ${store} | ${r.repeats} | ${r.badSignatures} | ${r.missing} | ${r.durability === 'fsync' ? (r.deliveredPerSec >= 5_000 ? '≥ 5,000/s ✅' : '≥ 5,000/s ❌') : ''} |`,
    );
  }
  return out.join('\n');
}
