/**
 * Issue 15, logs: the engine's and handlers' lines are JSON with the invocation's fields, through
 * one pino logger; `ctx.log` is silent on replay, so a line is written once across a crash; no
 * secret (a field, an Authorization header) reaches the output; a process whose standard output
 * is not a terminal writes JSON, one on a terminal human-readable lines, at `KEEL_LOG_LEVEL`.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createLogger,
  Engine,
  object,
  service,
  TerminalError,
  toEngineLogger,
  type EngineLogger,
  type EngineOptions,
} from '../src/index.js';
import { bearer, createIntegrations, integration, use } from '../src/integrations/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { crash } from '../src/testing/index.js';
import { ProviderServer } from './fakes/provider-server.js';
import { tempDir, until } from './helpers.js';

type Line = Record<string, unknown>;

/** A logger capturing its output, as pino writes it (the raw text, to grep for secrets). */
function capture(level: 'debug' | 'info' = 'info'): {
  logger: EngineLogger;
  raw: string[];
  lines: () => Line[];
} {
  const raw: string[] = [];
  const logger = toEngineLogger(
    createLogger({ level, destination: { write: (s: string) => void raw.push(s) } }),
  );
  return { logger, raw, lines: () => raw.map((l) => JSON.parse(l) as Line) };
}

const dirs: Array<() => void> = [];
const engines: Engine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop().catch(() => undefined);
});
afterAll(() => {
  for (const cleanup of dirs) cleanup();
});

function dbPath(): string {
  const t = tempDir('keel-logs-');
  dirs.push(t.cleanup);
  return join(t.dir, 'keel.db');
}

async function engineOn(path: string, logger: EngineLogger, services: EngineOptions['services']) {
  const engine = new Engine({ services, store: openSqliteStore({ path }), logger });
  engines.push(engine);
  await engine.start();
  return engine;
}

describe('lines of an invocation', () => {
  const Cart = object({
    name: 'Cart',
    handlers: {
      checkout: async (ctx, items: number) => {
        ctx.log.info('checking out', { items });
        await ctx.run('reserve', () => 'r1');
        throw new TerminalError('out of stock', { code: 'out_of_stock' });
      },
    },
  });

  it('a ctx.log line and an engine line are JSON with invocationId, service, handler and key', async () => {
    const c = capture();
    const engine = await engineOn(dbPath(), c.logger, [Cart]);
    const { invocationId } = await engine.send({
      service: 'Cart',
      handler: 'checkout',
      key: 'ada',
      input: 3,
    });
    await expect(engine.attach(invocationId)).rejects.toThrow('out of stock');
    const mine = c.lines().filter((l) => l.invocationId === invocationId);
    const fields = { invocationId, service: 'Cart', handler: 'checkout', key: 'ada' };
    expect(mine).toEqual([
      expect.objectContaining({ level: 'info', msg: 'checking out', items: 3, ...fields }),
      expect.objectContaining({ level: 'warn', msg: 'failed: out of stock', ...fields }),
    ]);
    for (const l of mine) expect(typeof l.time).toBe('string');
  });

  it('a service invocation has no key field', async () => {
    const c = capture();
    const Ping = service({
      name: 'Ping',
      handlers: { ping: async (ctx) => void ctx.log.info('pong') },
    });
    const engine = await engineOn(dbPath(), c.logger, [Ping]);
    await engine.invoke({ service: 'Ping', handler: 'ping' });
    const line = c.lines().find((l) => l.msg === 'pong');
    expect(line).toMatchObject({ service: 'Ping', handler: 'ping' });
    expect(line).not.toHaveProperty('key');
  });
});

describe('replay', () => {
  /** The third step of the first attempt never ends: the test crashes the engine there. */
  let hang = true;
  let inThird = false;
  const Flow = object({
    name: 'Flow',
    handlers: {
      run: async (ctx) => {
        ctx.log.info('line A');
        await ctx.run('one', () => 1);
        ctx.log.info('line B');
        await ctx.run('two', () => 2);
        await ctx.run('three', async () => {
          inThird = true;
          if (hang) await new Promise<never>(() => {});
          return 3;
        });
        ctx.log.info('line C');
        return 'done';
      },
    },
  });

  it('a ctx.log line is written once across a crash: the replay is silent', async () => {
    const c = capture();
    const path = dbPath();
    const first = await engineOn(path, c.logger, [Flow]);
    const { invocationId } = await first.send({ service: 'Flow', handler: 'run', key: 'k' });
    await until(() => inThird, 'the third step to start');
    expect(c.lines().map((l) => l.msg)).toEqual(['line A', 'line B']);
    await crash(first);
    hang = false;
    inThird = false;
    // Recovery runs the handler again from its journal: A and B are replayed, C is new.
    const second = await engineOn(path, c.logger, [Flow]);
    expect(await second.attach(invocationId)).toBe('done');
    expect(inThird).toBe(true); // the third step ran again, so the handler was replayed
    const said = c
      .lines()
      .filter((l) => l.invocationId === invocationId)
      .map((l) => l.msg);
    expect(said).toEqual(['line A', 'line B', 'line C']);
  });
});

describe('secrets', () => {
  const TOKEN = 'sk_live_SECRET_bearer_9137';
  const FIELD = 'pw_SECRET_field_5521';
  let api: ProviderServer;
  beforeAll(async () => {
    api = await ProviderServer.start();
  });
  afterAll(async () => {
    await api.close();
  });

  it('neither a secret field nor an Authorization header value reaches the output', async () => {
    const c = capture('debug');
    const GitHub = integration({
      name: 'GitHub',
      baseUrl: api.url,
      auth: bearer({ env: 'API_TOKEN' }),
      operations: { get_user: { path: '/users/{username}' } },
    });
    const Lookup = service({
      name: 'Lookup',
      handlers: {
        user: async (ctx, name: string) => {
          ctx.log.info('looking up', {
            password: FIELD,
            headers: { Authorization: `Bearer ${TOKEN}` },
          });
          ctx.log.debug('with %j', { client_secret: FIELD });
          return use(ctx, GitHub).get_user<{ login: string }>({ username: name });
        },
      },
    });
    const engine = new Engine({
      services: [Lookup],
      store: openSqliteStore({ path: dbPath() }),
      logger: c.logger,
      extensions: [createIntegrations({ integrations: [GitHub], env: { API_TOKEN: TOKEN } })],
    });
    engines.push(engine);
    await engine.start();
    const from = api.requests.length;
    expect(await engine.invoke({ service: 'Lookup', handler: 'user', input: 'ada' })).toMatchObject(
      { login: 'ada' },
    );
    // The token did go out, and the request was logged: the test would see a leak.
    expect(api.requests[from]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    const lines = c.lines();
    expect(lines.some((l) => l.integration === 'GitHub' && l.status === 200)).toBe(true);
    expect(lines.find((l) => l.msg === 'looking up')).toMatchObject({
      password: '[Redacted]',
      headers: { Authorization: '[Redacted]' },
      service: 'Lookup',
    });
    const all = c.raw.join('');
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain(FIELD);
  });
});

// Each test starts a process under tsx: seconds on a loaded machine, hence the long timeout.
describe('a process', { timeout: 120_000 }, () => {
  const FIXTURE = join(import.meta.dirname, 'fixtures/logs-app.ts');
  const SECRET = 'sk_live_SECRET_child_6620';

  /** Runs the fixture to its end (it invokes once and exits); its stdout, stderr and code. */
  function run(
    env: Record<string, string>,
    tty = false,
  ): Promise<{ out: string; err: string; code: number | null }> {
    const vars = {
      ...process.env,
      KEEL_DB: dbPath(),
      KEEL_PORT: '0',
      KEEL_ADMIN_PORT: '0',
      LOGS_SECRET: SECRET,
      ...env,
    };
    const node = [process.execPath, '--import', 'tsx', FIXTURE];
    // `script` gives the child a pseudo-terminal as its standard output.
    const child = tty
      ? spawn('script', ['-qec', node.map((a) => `'${a}'`).join(' '), '/dev/null'], {
          env: vars,
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(node[0]!, node.slice(1), { env: vars, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve({ out, err, code }));
    });
  }

  /** Every line of the output but the fixture's own `DONE`, parsed: each must be JSON. */
  const jsonLines = (out: string): Line[] =>
    out
      .split('\n')
      .filter((l) => l !== '' && l !== 'DONE')
      .map((l) => JSON.parse(l) as Line);

  it('with standard output not a terminal, writes JSON lines at info and above', async () => {
    const { out, code, err } = await run({});
    expect(code, err).toBe(0);
    expect(out).toContain('DONE');
    const lines = jsonLines(out);
    const info = lines.find((l) => l.msg === 'an info line from the handler');
    expect(info).toMatchObject({
      level: 'info',
      service: 'Orders',
      handler: 'place',
      key: 'k1',
      order: 7,
      apiKey: '[Redacted]',
      invocationId: expect.stringMatching(/^inv_/),
    });
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'failed: out of stock',
        invocationId: info!.invocationId,
      }),
    );
    expect(lines.map((l) => l.msg)).not.toContain('a debug line from the handler');
    expect(out + err).not.toContain(SECRET);
  });

  it('KEEL_LOG_LEVEL=warn drops the info lines', async () => {
    const { out, code, err } = await run({ KEEL_LOG_LEVEL: 'warn' });
    expect(code, err).toBe(0);
    const said = jsonLines(out).map((l) => l.msg);
    expect(said).toContain('a warn line from the handler');
    expect(said).toContain('failed: out of stock');
    expect(said).not.toContain('an info line from the handler');
    expect(jsonLines(out).every((l) => l.level === 'warn' || l.level === 'error')).toBe(true);
  });

  it('a bad KEEL_LOG_LEVEL stops the start with a message saying what to use', async () => {
    const { out, code, err } = await run({ KEEL_LOG_LEVEL: 'verbose' });
    expect(code).not.toBe(0);
    expect(err).toContain(
      'KEEL_LOG_LEVEL="verbose" is not a log level: use one of trace, debug, info, warn, error, silent',
    );
    expect(out).not.toContain('DONE');
  });

  it('on a terminal, writes human-readable lines', async (t) => {
    const probe = await new Promise<boolean>((resolve) => {
      const p = spawn('script', ['-qec', 'true', '/dev/null'], { stdio: 'ignore' });
      p.on('error', () => resolve(false));
      p.on('close', (code) => resolve(code === 0));
    });
    if (!probe) {
      console.log('skipped: `script` (util-linux) cannot give the child a terminal here');
      t.skip();
    }
    const { out, code, err } = await run({}, true);
    expect(code, err).toBe(0);
    const text = out.replace(/\r/g, '').replace(/\x1b\[[0-9;]*m/g, ''); // eslint-disable-line no-control-regex
    expect(text).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Orders\/k1\/place an info line from the handler/m,
    );
    expect(text).toMatch(/WARN: Orders\/k1\/place failed: out of stock/);
    expect(text.split('\n').filter((l) => l.startsWith('{"level"'))).toEqual([]);
    expect(text).not.toContain(SECRET);
  });
});
