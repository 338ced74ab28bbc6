/**
 * The gateway rows of `npm run bench` (`--only=gateway`): requests through the integration
 * platform's gateway (API-key check + per-key rate limit + request/response mapping) into
 *   - the `order-intake` declarative flow (two `api` steps),
 *   - the same two steps as a TypeScript workflow (`OrderIntake`),
 * and, for reference, the TypeScript workflow called on the ingress without the gateway. Each
 * API step calls a local fake server (one process answering all 120 declared services, on the
 * load generator's CPU). Keel runs in its own process on SQLite (`fsync`), pinned to CPU 0; the
 * load generator and the fake services share CPU 1. 32 clients by default.
 *
 * Then the time of `GET /integrations/status` on the admin API with the 120 services declared
 * (sequential requests on an idle server, after the load).
 *
 *   npm run bench -- --only=gateway
 *   BENCH_GATEWAY_PROFILE=1 npm run bench -- --only=gateway   # plus a CPU profile of the flow row
 *   BENCH_GATEWAY_ROWS=gw-flow BENCH_GATEWAY_N=2000 BENCH_GATEWAY_REPEAT=1 npm run bench -- --only=gateway
 *   BENCH_GATEWAY_DURABILITY=os npm run bench -- --only=gateway   # without the fdatasync waits
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeServices } from '../examples/integration-platform/fake.js';
import { percentiles, runLoad, type LoadResult } from './client.js';
import { formatSummary, summarizeProfile } from './profile.js';

const KEY = 'bench-gateway-key-0123456789';

interface Scenario {
  id: string;
  title: string;
  path: (run: number, i: number) => string;
  body: string;
  headers: Record<string, string>;
  check: (body: string) => boolean;
}

const AUTH = { authorization: `Bearer ${KEY}` };
const ORDER = JSON.stringify({ sku: 'SKU-1', qty: 2 });
const SCENARIOS: Scenario[] = [
  {
    id: 'gw-flow',
    title: 'gateway → `order-intake` flow (2 API steps)',
    path: (run, i) => `/gateway/v1/orders/r${run}-${i}`,
    body: ORDER,
    headers: AUTH,
    check: (b) => b.includes('"total":') && b.includes('"reservationId":"inventory-eu-1:SKU-1:2"'),
  },
  {
    id: 'gw-code',
    title: 'gateway → `OrderIntake` TypeScript workflow (2 API steps)',
    path: (run, i) => `/gateway/v1/orders-code/r${run}-${i}`,
    body: ORDER,
    headers: AUTH,
    check: (b) => b.includes('"total":') && b.includes('inventory-eu-1:SKU-1:2'),
  },
  {
    id: 'direct-code',
    title: 'no gateway: ingress → `OrderIntake` (reference)',
    path: (run, i) => `/OrderIntake/d${run}-${i}/run`,
    body: JSON.stringify({ orderId: 'x', sku: 'SKU-1', qty: 2 }),
    headers: {},
    check: (b) => b.includes('"total":'),
  },
];

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, d = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });

/** CPU time (user + system) of a process, in ms, from /proc. */
function cpuMs(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return ((Number(parts[11]) + Number(parts[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/**
 * Runs the gateway rows and returns the markdown section to print.
 *
 * @example
 * ```ts
 * console.log(await gatewayBench({ root, tmp, pinned: true, log: console.error }));
 * ```
 */
export async function gatewayBench(opts: {
  root: string;
  tmp: string;
  pinned: boolean;
  log: (s: string) => void;
  clients?: number;
  total?: number;
  repeat?: number;
}): Promise<string> {
  const clients = opts.clients ?? 32;
  const total = opts.total ?? Number(process.env.BENCH_GATEWAY_N ?? 5_000);
  const repeat = opts.repeat ?? Number(process.env.BENCH_GATEWAY_REPEAT ?? 3);
  const only = process.env.BENCH_GATEWAY_ROWS?.split(',');
  const durability = process.env.BENCH_GATEWAY_DURABILITY === 'os' ? 'os' : 'fsync';
  fs.mkdirSync(opts.tmp, { recursive: true });
  const db = path.join(opts.tmp, 'gateway.db');
  for (const f of [db, `${db}-wal`, `${db}-shm`]) fs.rmSync(f, { force: true });
  const fake = await startFakeServices({ record: false });
  const compiled = import.meta.url.endsWith('.js');
  const entry = compiled
    ? [fileURLToPath(new URL('./gateway-server.js', import.meta.url))]
    : ['--import', 'tsx', 'bench/gateway-server.ts'];
  const [cmd, argv] = opts.pinned
    ? ['taskset', ['-c', '0', process.execPath, ...entry]]
    : [process.execPath, entry];
  const child = spawn(cmd, argv, {
    cwd: opts.root,
    env: {
      ...process.env,
      KEEL_DB: db,
      KEEL_DURABILITY: durability,
      KEEL_PORT: '0',
      KEEL_MOCK: '0',
      PLATFORM_SERVICES_URL: fake.url,
      // A limit far above what the machine reaches: every request is checked, none refused.
      KEEL_GATEWAY_KEYS: `bench:${KEY}:100000000/1m`,
    },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  try {
    const { ingress, admin } = await new Promise<{ ingress: URL; admin: string }>(
      (resolve, reject) => {
        let buf = '';
        child.stdout!.setEncoding('utf8');
        child.stdout!.on('data', (d: string) => {
          buf += d;
          const m = /KEEL_BENCH_READY (\S+) (\S+)/.exec(buf);
          if (m) resolve({ ingress: new URL(m[1]!), admin: m[2]! });
        });
        void exited.then(() =>
          reject(new Error('gateway bench server exited before it was ready')),
        );
      },
    );
    const host = ingress.hostname;
    const port = Number(ingress.port);
    const load = (sc: Scenario, run: number, n: number): Promise<LoadResult> =>
      runLoad({
        host,
        port,
        clients,
        total: n,
        path: (i) => sc.path(run, i),
        body: sc.body,
        headers: sc.headers,
        expect: sc.check,
        timeoutMs: 120_000,
      });
    const rows: string[] = [];
    let run = 0;
    for (const sc of SCENARIOS.filter((x) => !only || only.includes(x.id))) {
      opts.log(`gateway: ${sc.id} warm-up`);
      await load(sc, run++, 1_000);
      const results: Array<{
        rps: number;
        r: LoadResult;
        cpuPct: number;
        genPct: number;
        writes: number;
        syncs: number;
      }> = [];
      for (let k = 0; k < repeat; k++) {
        const profiling = process.env.BENCH_GATEWAY_PROFILE && sc.id === 'gw-flow' && k === 0;
        const file = path.join(opts.tmp, 'gateway.cpuprofile');
        if (profiling) await ask(child, 'profile-start', 'profiling');
        const s0 = await stats(child);
        const c0 = cpuMs(child.pid!);
        const g0 = process.cpuUsage();
        const r = await load(sc, run++, total);
        const cpu = cpuMs(child.pid!) - c0;
        const g = process.cpuUsage(g0);
        const genPct = ((g.user + g.system) / 1000 / r.elapsedMs) * 100;
        const s1 = await stats(child);
        if (profiling) {
          await ask(child, { profileStop: file }, 'profiled');
          opts.log(formatSummary(summarizeProfile(file, opts.root), 12));
        }
        results.push({
          rps: (r.ok / r.elapsedMs) * 1000,
          r,
          cpuPct: (cpu / r.elapsedMs) * 100,
          genPct,
          writes: ((s1.writes ?? 0) - (s0.writes ?? 0)) / r.total,
          syncs: ((s1.syncs ?? 0) - (s0.syncs ?? 0)) / r.total,
        });
        opts.log(
          `gateway: ${sc.id} run ${k + 1}: ${fmt((r.ok / r.elapsedMs) * 1000)} req/s, failed ${r.total - r.ok}`,
        );
      }
      const rps = results.map((x) => x.rps);
      const all = Float64Array.from(results.flatMap((x) => [...x.r.latenciesMs]));
      const [p50, p99] = percentiles(all, [50, 99]);
      const failed = results.reduce((n, x) => n + (x.r.total - x.r.ok), 0);
      const samples = results.flatMap((x) => x.r.samples).slice(0, 2);
      const srvUs = median(results.map((x) => (x.cpuPct * 10_000) / x.rps));
      rows.push(
        `| ${sc.title} | ${fmt(repeat)} × ${fmt(total)} | **${fmt(median(rps))}** (${fmt(Math.min(...rps))}–${fmt(Math.max(...rps))}) | ${fmt(p50!, 1)} | ${fmt(p99!, 1)} | ${failed}${samples.length ? ` (${samples.join('; ')})` : ''} | ${fmt(median(results.map((x) => x.cpuPct)))} % / ${fmt(median(results.map((x) => x.genPct)))} % | ${fmt(srvUs)} | ${fmt(median(results.map((x) => x.writes)), 1)} / ${fmt(median(results.map((x) => x.syncs)), 2)} |`,
      );
    }
    // /integrations/status with every declared service, on the idle server.
    const times: number[] = [];
    let count = 0;
    let bytes = 0;
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      const res = await fetch(`${admin}/integrations/status`);
      const text = await res.text();
      times.push(performance.now() - t0);
      bytes = text.length;
      count = (JSON.parse(text) as { integrations: unknown[] }).integrations.length;
    }
    const st = Float64Array.from(times.slice(5));
    const [s50, s99] = percentiles(st, [50, 99]);
    return [
      '## Gateway (integration platform)',
      '',
      `| Route | Requests | req/s (median; min–max) | p50 ms | p99 ms | Failed | CPU Keel / gen+fakes | srv CPU µs/req | store writes / fdatasyncs per req |`,
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...rows,
      '',
      `${clients} clients, closed loop over HTTP/1.1 keep-alive, a new order id per request. Keel: one process on SQLite (\`${durability}\`), ` +
        `pinned to CPU 0${opts.pinned ? '' : ' (not pinned: taskset missing)'}; the load generator and the fake services (one node:http server for all 120 declared services) share CPU 1. ` +
        'Every gateway request is authenticated (SHA-256 of the Bearer key, constant-time compare) and rate limited (the per-key limit in the store, leased in blocks), ' +
        'its input mapped from the path and body and its answer shaped by the responseMap. Each API step is a journaled step making a real HTTP call (with an Idempotency-Key). ' +
        "CPU = CPU time during the run as % of one core: the Keel process, and this process (the load generator with the fake services, on the other core); srv CPU µs/req = the Keel process's CPU time per request.",
      '',
      `\`GET /integrations/status\` with ${count} integrations declared (each with a circuit breaker and an active health check): ` +
        `p50 **${fmt(s50!, 1)} ms**, p99 ${fmt(s99!, 1)} ms over 25 sequential requests on the idle server after the load (${fmt(bytes)} bytes).`,
    ].join('\n');
  } finally {
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    await fake.close();
  }
}

function stats(child: ReturnType<typeof spawn>): Promise<Record<string, number>> {
  return new Promise((resolve) => {
    const on = (m: unknown): void => {
      if (typeof m === 'object' && m !== null && 'stats' in m) {
        child.off('message', on);
        resolve((m as { stats: Record<string, number> }).stats);
      }
    };
    child.on('message', on);
    child.send('stats');
  });
}

function ask(child: ReturnType<typeof spawn>, msg: unknown, answer: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (m: unknown): void => {
      if (typeof m === 'object' && m !== null && answer in m) {
        child.off('message', on);
        resolve();
      }
    };
    child.on('message', on);
    child.send(msg as never);
  });
}
