/**
 * The integrations row of `npm run bench`: calls through the full policy stack of a plain
 * integration client (timeout, retry, shared circuit breaker and rate limit on a SQLite store,
 * bearer auth, idempotency header, classification, statistics) against a local API, next to raw
 * undici calls to the same API in the same run, alternating, so both see the same machine. The
 * API runs in its own process on CPU 0; the callers run here (CPU 1).
 *
 * The baseline is what the client does on the wire, written by hand: the same undici call
 * (`agent.request({ origin, path })` on a keep-alive `Agent`), the same headers, the same 5 s
 * timeout, the parameter encoded into the path, the body read as JSON. undici's `request(url)`,
 * which parses the URL on every call, is shown for reference.
 *
 * Reported per variant: calls/s (median of the runs), p50/p99 latency, and the caller's CPU time
 * per call, the least noisy measure of what the policy stack adds.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { bearer, integration, IntegrationRuntime } from '../src/integrations/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { percentiles } from './client.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

interface Result {
  calls: number;
  ms: number;
  cpuUs: number;
  lat: Float64Array;
}

/** Runs `total` calls with `conc` in flight; latencies in ms. */
async function loop(call: () => Promise<unknown>, total: number, conc: number): Promise<Result> {
  const lat = new Float64Array(total);
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const s = performance.now();
        await call();
        lat[i] = performance.now() - s;
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { calls: total, ms, cpuUs: cpu.user + cpu.system, lat };
}

function startUpstream(pinned: boolean): Promise<{ child: ChildProcess; port: number }> {
  const script = path.join(HERE, `upstream${path.extname(fileURLToPath(import.meta.url))}`);
  const pin = pinned && os.cpus().length >= 2 && hasTaskset();
  const args = path.extname(script) === '.ts' ? ['--import', 'tsx', script] : [script];
  const child = pin
    ? spawn('taskset', ['-c', '0', process.execPath, ...args], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
    : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /UPSTREAM_READY (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`upstream exited with ${code}`)));
  });
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Runs the comparison and returns the markdown section to print.
 *
 * @example
 * ```ts
 * console.log(await integrationsBench((s) => process.stderr.write(s + '\n')));
 * ```
 */
export async function integrationsBench(
  log: (s: string) => void,
  opts: {
    total?: number;
    seq?: number;
    conc?: number;
    repeat?: number;
    tmp: string;
    /** The caller is pinned to CPU 1 (so the API goes on CPU 0). */
    pinned?: boolean;
  },
): Promise<string> {
  const total = opts.total ?? 20_000;
  const seq = opts.seq ?? 5_000;
  const conc = opts.conc ?? 32;
  const repeat = opts.repeat ?? 5;
  const { child, port } = await startUpstream(opts.pinned ?? false);
  fs.mkdirSync(opts.tmp, { recursive: true });
  const store = openSqliteStore({ path: path.join(opts.tmp, 'integrations-bench.db') });
  const base = `http://127.0.0.1:${port}`;
  const api = integration({
    name: 'BenchAPI',
    baseUrl: base,
    auth: bearer('bench-token'),
    timeout: '5s',
    retry: { maxAttempts: 4 },
    circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
    rateLimit: { requests: 10_000_000, per: '1s' },
    idempotency: true,
    operations: {
      get_user: { path: '/users/{username}', cache: false },
      charge: { method: 'POST', path: '/charges' },
    },
  });
  // The same declaration answered in-process: what the policy stack costs without the network.
  const mocked = integration({
    ...api.config,
    name: 'BenchAPIMock',
    mockMode: true,
    mock: () => ({ body: { login: 'octocat', id: 42 } }),
  });
  const runtime = new IntegrationRuntime({
    store,
    integrations: [api, mocked],
    log: () => undefined,
  });
  const client = runtime.client(api);
  const mockClient = runtime.client(mocked);
  const agent = new Agent({ keepAliveTimeout: 10_000 });
  const name = 'octocat';
  const headers = { accept: 'application/json', authorization: 'Bearer bench-token' };
  const raw = async (): Promise<unknown> => {
    const res = await agent.request({
      origin: base,
      path: `/users/${encodeURIComponent(name)}`,
      method: 'GET',
      headers,
      headersTimeout: 5_000,
      bodyTimeout: 5_000,
    });
    return res.body.json();
  };
  const rawUrl = async (): Promise<unknown> => {
    const res = await request(`${base}/users/${encodeURIComponent(name)}`, {
      method: 'GET',
      headers,
      headersTimeout: 5_000,
      bodyTimeout: 5_000,
      dispatcher: agent,
    });
    return res.body.json();
  };
  const keel = (): Promise<unknown> => client.get_user({ username: name });
  const mock = (): Promise<unknown> => mockClient.get_user!({ username: name });
  const variants = [
    { name: 'raw undici `agent.request()`', fn: raw },
    { name: 'raw undici `request(url)` (for reference)', fn: rawUrl },
    { name: 'Keel integration client, full policy stack', fn: keel },
    { name: 'Keel client, mock transport (the stack alone)', fn: mock },
  ];
  const rows: string[] = [];
  try {
    log('integrations: warming up');
    // Long enough for every variant's code to reach its optimized tier.
    for (const v of variants) await loop(v.fn, 10_000, conc);
    // A rate limit of 10M/s never binds, but pacing starts from an empty bucket: prime it.
    await new Promise((r) => setTimeout(r, 50));
    const results = new Map<string, { conc: Result[]; seq: Result[] }>();
    for (const v of variants) results.set(v.name, { conc: [], seq: [] });
    for (let r = 0; r < repeat; r++) {
      for (const v of variants) {
        log(`integrations: ${v.name}, run ${r + 1}/${repeat}`);
        results.get(v.name)!.conc.push(await loop(v.fn, total, conc));
        results.get(v.name)!.seq.push(await loop(v.fn, seq, 1));
      }
    }
    const summary = (rs: Result[]): { rate: number; p50: number; p99: number; cpu: number } => {
      const all = new Float64Array(rs.reduce((n, r) => n + r.lat.length, 0));
      let o = 0;
      for (const r of rs) {
        all.set(r.lat, o);
        o += r.lat.length;
      }
      const [p50, p99] = percentiles(all, [50, 99]);
      return {
        rate: median(rs.map((r) => (r.calls * 1000) / r.ms)),
        p50: p50!,
        p99: p99!,
        cpu: median(rs.map((r) => r.cpuUs / r.calls)),
      };
    };
    const rawName = variants[0]!.name;
    rows.push(
      '| Calls | Mode | calls/s | p50 ms | p99 ms | caller CPU µs/call | vs raw undici `agent.request()` |',
      '| ----- | ---- | ------: | -----: | -----: | -----------------: | ------------------------------- |',
    );
    for (const v of variants) {
      for (const mode of ['conc', 'seq'] as const) {
        const mine = results.get(v.name)![mode];
        const base = results.get(rawName)![mode];
        const s = summary(mine);
        // Each run against the baseline run just before it (same machine conditions), median.
        const time = median(mine.map((r, i) => base[i]!.ms / base[i]!.calls / (r.ms / r.calls)));
        const cpu = median(
          mine.map((r, i) => r.cpuUs / r.calls / (base[i]!.cpuUs / base[i]!.calls)),
        );
        const cmp =
          v.name === rawName
            ? 'baseline'
            : v.fn === mock
              ? `no network: ${(cpu * 100).toFixed(1)}% of a raw call's CPU`
              : `${pct(1 / time - 1)} time per call, ${pct(cpu - 1)} CPU per call`;
        rows.push(
          `| ${v.name} | ${mode === 'conc' ? `${conc} in flight` : 'sequential'} | ${Math.round(s.rate).toLocaleString('en-US')} | ${s.p50.toFixed(3)} | ${s.p99.toFixed(3)} | ${s.cpu.toFixed(1)} | ${cmp} |`,
        );
      }
    }
  } finally {
    await runtime.close();
    await agent.close();
    await store.close();
    child.kill();
  }
  return [
    '## Integration calls\n',
    `GET /users/{name} on a local node:http API (its own process, CPU 0), called from the bench process (CPU 1). ${repeat} runs per row, alternating: ${total.toLocaleString('en-US')} calls with ${conc} in flight, then ${seq.toLocaleString('en-US')} sequential; calls/s is the median run, p50/p99 over all runs. The baseline makes the client's request by hand with the same undici call (\`agent.request({ origin, path })\` on a keep-alive Agent), the same headers, the same 5 s timeout, the name encoded into the path and the body read as JSON; undici's \`request(url)\` (which parses the URL on every call) is shown for reference. The Keel client runs the whole stack on every call (breaker and rate limit shared through a SQLite store, bearer auth, idempotency, timeout, retry policy, classification, statistics); nothing fails, so no retry happens and the breaker and limiter stay on their fast paths. "vs raw undici": extra wall time and caller CPU per call, each run against the baseline run just before it, median. The mock-transport row runs the same stack with an in-process mock instead of HTTP (the mock's own cost, a JSON copy and a timer, included): the stack's own CPU per call, independent of the network.\n`,
    ...rows,
    '',
  ].join('\n');
}

function pct(x: number): string {
  return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
}

// `node dist/bench/integrations.js` runs just this section.
if (
  process.argv[1] !== undefined &&
  fileURLToPath(import.meta.url) === path.resolve(process.argv[1])
) {
  const tmp = path.join(os.tmpdir(), `keel-int-bench-${process.pid}`);
  try {
    console.log(
      await integrationsBench((s) => void process.stderr.write(`bench: ${s}\n`), { tmp }),
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
