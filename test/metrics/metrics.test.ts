import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { object, service, TerminalError } from '../../src/index.js';
import { integration, use } from '../../src/integrations/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { ProviderServer } from '../fakes/provider-server.js';
import { tempDir } from '../helpers.js';

/**
 * GET /metrics after known work, over real HTTP, on an app on a SQLite file: N invocations of a
 * 3-step workflow (F of them failing terminally), one integration call against a local fake
 * API, a sleeping invocation (suspended, one timer) and an object key with a queue behind it.
 * Every count checked is exact.
 */
const ADMIN = 'admin-token-0123456789abcdef0123456789';
const VIEWER = 'viewer-token-0123456789abcdef012345678';
const N = 6;
const F = 2;

let api: ProviderServer;
let app: App;
const clock = new FakeClock();
const tmp = tempDir('keel-metrics-');

const Flow = service({
  name: 'Flow',
  handlers: {
    run: async (ctx, input: { fail: boolean }) => {
      const a = await ctx.run('a', () => 1);
      const b = await ctx.run('b', () => a + 1);
      return ctx.run('c', () => {
        if (input.fail) throw new TerminalError('refused', { code: 'refused' });
        return b + 1;
      });
    },
  },
});
const Sleeper = service({
  name: 'Sleeper',
  handlers: { run: async (ctx) => ctx.sleep('1h') },
});
const Account = object({
  name: 'Account',
  handlers: { hold: async (ctx) => ctx.sleep('1h') },
});

beforeAll(async () => {
  api = await ProviderServer.start();
  const github = integration({
    name: 'GitHubAPI',
    baseUrl: api.url,
    retry: false,
    operations: { get_user: { path: '/users/{username}' } },
  });
  const Proxy = service({
    name: 'Proxy',
    handlers: { user: async (ctx, username: string) => use(ctx, github).get_user({ username }) },
  });
  app = await startApp({
    services: [Flow, Sleeper, Account, Proxy],
    integrations: [github],
    db: join(tmp.dir, 'keel.db'),
    clock,
    port: 0,
    adminPort: 0,
    adminToken: ADMIN,
    userToken: VIEWER,
    logger: () => undefined,
  });
}, 60_000);
afterAll(async () => {
  await app?.close();
  await api?.close();
  tmp.cleanup();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample named `name` whose labels include `labels` (undefined if none). */
function value(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches several`);
  return found[0]?.value;
}

async function get(
  url: string,
  token: string | undefined,
): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('GET /metrics', () => {
  let samples: Sample[];

  beforeAll(async () => {
    const e = app.engine;
    const results = await Promise.allSettled(
      Array.from({ length: N }, (_, i) =>
        e.invoke({ service: 'Flow', handler: 'run', input: { fail: i < F } }),
      ),
    );
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(F);
    expect(await e.invoke({ service: 'Proxy', handler: 'user', input: 'octocat' })).toMatchObject({
      login: 'octocat',
    });
    // One sleeper (a timer), and an object key held by a sleeping invocation with 3 queued.
    const sleeper = await e.send({ service: 'Sleeper', handler: 'run' });
    const holder = await e.send({ service: 'Account', handler: 'hold', key: 'hot' });
    for (let i = 0; i < 3; i++) await e.send({ service: 'Account', handler: 'hold', key: 'hot' });
    // Past suspendAfter (1s): both sleeping invocations leave memory.
    await clock.advance('2s');
    for (const id of [sleeper.invocationId, holder.invocationId]) {
      await until(
        `${id} suspended`,
        async () => (await e.getInvocation(id))?.status === 'suspended',
      );
    }
    const res = await get(`${app.admin.url}/metrics`, ADMIN);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    samples = parse(res.text);
  }, 60_000);

  it('counts started and finished invocations by outcome, exactly', () => {
    const flow = { service: 'Flow', handler: 'run' };
    expect(value(samples, 'keel_invocations_started_total', flow)).toBe(N);
    expect(
      value(samples, 'keel_invocations_finished_total', { ...flow, outcome: 'completed' }),
    ).toBe(N - F);
    expect(value(samples, 'keel_invocations_finished_total', { ...flow, outcome: 'failed' })).toBe(
      F,
    );
    expect(value(samples, 'keel_invocation_duration_seconds_count', flow)).toBe(N);
    expect(value(samples, 'keel_invocation_duration_seconds_bucket', { ...flow, le: '+Inf' })).toBe(
      N,
    );
    // Three steps each: the failing step's durable failure counts too.
    expect(value(samples, 'keel_step_duration_seconds_count', flow)).toBe(3 * N);
    expect(value(samples, 'keel_invocations_started_total', { service: 'Account' })).toBe(4);
  });

  it('has the group commit histograms and the fsync latency', () => {
    expect(value(samples, 'keel_store_commit_batch_size_count')).toBeGreaterThan(0);
    expect(value(samples, 'keel_store_commit_seconds_count')).toBe(
      value(samples, 'keel_store_commit_batch_size_count'),
    );
    // Every call of the work above was committed in some batch.
    expect(value(samples, 'keel_store_commit_batch_size_sum')).toBeGreaterThanOrEqual(N * 4);
    expect(value(samples, 'keel_store_fsync_seconds_count')).toBeGreaterThan(0);
  });

  it('reads the state gauges, timers and the hot key from the store', () => {
    expect(value(samples, 'keel_invocations', { status: 'suspended' })).toBe(2);
    expect(value(samples, 'keel_invocations', { status: 'pending' })).toBe(3);
    expect(value(samples, 'keel_invocations', { status: 'running' })).toBe(0);
    expect(value(samples, 'keel_invocations', { status: 'paused' })).toBe(0);
    expect(value(samples, 'keel_timers_pending')).toBe(2);
    expect(value(samples, 'keel_key_queue_depth', { service: 'Account', key: 'hot' })).toBe(3);
    expect(value(samples, 'keel_invocations_in_memory')).toBe(0);
  });

  it('measures the integration call and includes the process metrics', () => {
    const gh = { integration: 'GitHubAPI' };
    expect(value(samples, 'keel_integration_request_duration_seconds_count', gh)).toBe(1);
    expect(value(samples, 'keel_integration_request_errors_total', gh)).toBe(0);
    expect(value(samples, 'keel_integration_rate_limit_waits_total', gh)).toBe(0);
    expect(value(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });

  it('never labels a series with an invocation id', () => {
    for (const s of samples)
      for (const v of Object.values(s.labels)) expect(v).not.toMatch(/^inv_/);
  });

  it('may be read with the viewer token, not without a token', async () => {
    const viewer = await get(`${app.admin.url}/metrics`, VIEWER);
    expect(viewer.status).toBe(200);
    expect(viewer.text).toContain('keel_invocations_started_total');
    expect((await get(`${app.admin.url}/metrics`, undefined)).status).toBe(401);
  });
});

describe('GET /integrations/{name}/history', () => {
  it('answers the last 60 minutes, with this minute holding the call', async () => {
    const res = await get(`${app.admin.url}/integrations/GitHubAPI/history`, VIEWER);
    expect(res.status).toBe(200);
    const body = JSON.parse(res.text) as {
      name: string;
      buckets: Array<{ t: string; calls: number; errors: number; p50: number | null }>;
    };
    expect(body.name).toBe('GitHubAPI');
    expect(body.buckets).toHaveLength(60);
    const last = body.buckets.at(-1)!;
    expect(last.t).toBe(new Date(Math.floor(clock.now() / 60_000) * 60_000).toISOString());
    // The call was made 2 s of fake time ago: in this minute, or the one before.
    const calls = body.buckets.slice(-2).reduce((n, b) => n + b.calls, 0);
    expect(calls).toBe(1);
    expect(body.buckets.reduce((n, b) => n + b.errors, 0)).toBe(0);
    const withCall = body.buckets.find((b) => b.calls === 1)!;
    expect(withCall.p50).toBeGreaterThan(0);
    expect(body.buckets.filter((b) => b.calls === 0).every((b) => b.p50 === null)).toBe(true);
  });

  it('is 404 for an unknown integration', async () => {
    const res = await get(`${app.admin.url}/integrations/Nope/history`, ADMIN);
    expect(res.status).toBe(404);
  });
});

describe('metrics off', () => {
  it('GET /metrics is 404 metrics_disabled', async () => {
    const off = tempDir('keel-metrics-off-');
    const offApp = await startApp({
      services: [Flow],
      db: join(off.dir, 'keel.db'),
      port: 0,
      adminPort: 0,
      metrics: false,
      logger: () => undefined,
    });
    try {
      expect(
        await offApp.engine.invoke({ service: 'Flow', handler: 'run', input: { fail: false } }),
      ).toBe(3);
      const res = await get(`${offApp.admin.url}/metrics`, undefined);
      expect(res.status).toBe(404);
      expect(JSON.parse(res.text)).toMatchObject({ code: 'metrics_disabled' });
    } finally {
      await offApp.close();
      off.cleanup();
    }
  });
});
