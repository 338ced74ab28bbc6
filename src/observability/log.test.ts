import { context, trace, INVALID_SPAN_CONTEXT } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appOptionsFromEnv, startApp } from '../app.js';
import {
  createLogger,
  LogLevelError,
  parseLogLevel,
  toEngineLogger,
  type LogOptions,
} from './log.js';
import { isSecretName, pathForLog, redactDeep } from './redact.js';

/** A logger writing into an array, one parsed object per line. */
function captured(options: Omit<LogOptions, 'destination'> = {}) {
  const raw: string[] = [];
  const logger = createLogger({
    ...options,
    destination: { write: (s: string) => void raw.push(s) },
  });
  return {
    logger,
    log: toEngineLogger(logger),
    raw,
    lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const INVOCATION = {
  invocationId: 'inv_1abc',
  target: 'Cart/ada/checkout',
  service: 'Cart',
  handler: 'checkout',
  key: 'ada',
};

describe('JSON lines', () => {
  it('one JSON object per line, with the level name, an ISO time, the message and the invocation fields', () => {
    const c = captured();
    c.log('warn', 'failed: out of stock', { ...INVOCATION });
    expect(c.raw).toHaveLength(1);
    expect(c.raw[0]!.endsWith('\n')).toBe(true);
    const [line] = c.lines();
    expect(line).toMatchObject({
      level: 'warn',
      msg: 'failed: out of stock',
      ...INVOCATION,
      pid: process.pid,
    });
    expect(new Date(line!.time as string).toISOString()).toBe(line!.time);
  });

  it('a ctx.log call’s arguments: objects become fields, an Error `err`, the rest joins the message', () => {
    const c = captured();
    c.log('info', 'charged', {
      ...INVOCATION,
      args: [{ amount: 1200, invocationId: 'forged' }, 3, new Error('card declined')],
    });
    c.log('info', 'order %s of %d', { ...INVOCATION, args: ['o-7', 3] });
    const [first, second] = c.lines();
    expect(first).toMatchObject({ msg: 'charged 3', amount: 1200, invocationId: 'inv_1abc' });
    expect(first!.err).toMatchObject({ type: 'Error', message: 'card declined' });
    expect(second).toMatchObject({ msg: 'order o-7 of 3', key: 'ada' });
  });

  it('a `%` in a message with no arguments is kept as it is', () => {
    const c = captured();
    c.log('info', '100%s sure', {});
    expect(c.lines()[0]!.msg).toBe('100%s sure');
  });
});

describe('levels', () => {
  it('warn drops info and debug; debug keeps them; silent writes nothing', () => {
    for (const [level, expected] of [
      ['warn', ['warn', 'error']],
      ['debug', ['debug', 'info', 'warn', 'error']],
      ['info', ['info', 'warn', 'error']],
      ['silent', []],
    ] as const) {
      const c = captured({ level });
      for (const l of ['debug', 'info', 'warn', 'error'] as const) c.log(l, `a ${l} line`, {});
      expect(
        c.lines().map((l) => l.level),
        level,
      ).toEqual(expected);
    }
  });

  it('KEEL_LOG_LEVEL maps onto logLevel; a bad value is a clear error naming the variable', () => {
    expect(appOptionsFromEnv({ KEEL_LOG_LEVEL: 'warn' }).logLevel).toBe('warn');
    expect(appOptionsFromEnv({ KEEL_LOG_LEVEL: 'DEBUG' }).logLevel).toBe('debug');
    expect(appOptionsFromEnv({}).logLevel).toBeUndefined();
    let error: unknown;
    try {
      appOptionsFromEnv({ KEEL_LOG_LEVEL: 'loud' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LogLevelError);
    expect(error).toMatchObject({ code: 'invalid_log_level' });
    expect((error as Error).message).toBe(
      'KEEL_LOG_LEVEL="loud" is not a log level: use one of trace, debug, info, warn, error, silent (default info)',
    );
    expect(parseLogLevel(' Error ')).toBe('error');
  });

  it('startApp refuses a bad logLevel before it opens anything', async () => {
    await expect(
      startApp({ services: [], db: '/nonexistent/dir/keel.db', logLevel: 'chatty' as never }),
    ).rejects.toThrow(/logLevel="chatty" is not a log level/);
  });
});

describe('trace ids', () => {
  const manager = new AsyncLocalStorageContextManager();
  beforeAll(() => {
    context.setGlobalContextManager(manager.enable());
  });
  afterAll(() => {
    context.disable();
  });

  it('a line written inside an active span carries its traceId and spanId; outside, none', () => {
    const c = captured();
    const span = trace.wrapSpanContext({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
    });
    context.with(trace.setSpan(context.active(), span), () => c.log('info', 'inside', INVOCATION));
    c.log('info', 'outside', INVOCATION);
    const [inside, outside] = c.lines();
    expect(inside).toMatchObject({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
    });
    expect(outside).not.toHaveProperty('traceId');
  });

  it('the all-zero (invalid) trace id is left out', () => {
    const c = captured();
    const span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    context.with(trace.setSpan(context.active(), span), () => c.log('info', 'invalid', {}));
    expect(c.lines()[0]).not.toHaveProperty('traceId');
    expect(c.raw[0]).not.toContain('00000000000000000000000000000000');
  });
});

describe('redaction', () => {
  const SECRET = 'sk_live_51TopSecretValue';

  it('secret fields are redacted at any depth and in any spelling, objects in messages too', () => {
    const c = captured({ level: 'debug' });
    c.log('info', 'calling the API', {
      ...INVOCATION,
      args: [
        {
          token: SECRET,
          apiKey: SECRET,
          headers: { Authorization: `Bearer ${SECRET}`, 'x-api-key': SECRET, Cookie: SECRET },
          deep: { a: { b: { c: { clientSecret: SECRET, GITHUB_TOKEN: SECRET } } } },
          list: [{ password: SECRET }],
          user: 'ada',
        },
      ],
    });
    c.log('warn', 'config %j', { args: [{ webhookSecret: SECRET, url: 'https://x' }] });
    c.logger.info({ req: { headers: { authorization: SECRET, 'set-cookie': SECRET } } }, 'raw');
    c.logger.child({ refresh_token: SECRET }).info('child binding');
    const all = c.raw.join('');
    expect(all).not.toContain(SECRET);
    // The lines were written, with everything else in them.
    const [first, second, third] = c.lines();
    expect(first).toMatchObject({ user: 'ada', token: '[Redacted]', key: 'ada' });
    expect(first!.headers).toEqual({
      Authorization: '[Redacted]',
      'x-api-key': '[Redacted]',
      Cookie: '[Redacted]',
    });
    expect(second!.msg).toBe('config {"webhookSecret":"[Redacted]","url":"https://x"}');
    expect(third).toMatchObject({ req: { headers: { authorization: '[Redacted]' } } });
    expect(c.raw).toHaveLength(4);
  });

  it('extra field names can be added', () => {
    const c = captured({ redact: ['ssn'] });
    c.logger.info({ ssn: '123-45-6789', nested: { ssn: '123-45-6789' } }, 'applicant');
    expect(c.raw.join('')).not.toContain('123-45-6789');
  });

  it('names: secret-looking ones only; an object key stays', () => {
    for (const n of [
      'authorization',
      'X-Api-Key',
      'client_secret',
      'STRIPE_SECRET_KEY',
      'accessToken',
    ])
      expect(isSecretName(n), n).toBe(true);
    for (const n of [
      'key',
      'idempotencyKey',
      'service',
      'tokens_used',
      'invocationId',
      'AWS_ACCESS_KEY_ID',
    ])
      expect(isSecretName(n), n).toBe(false);
    expect(redactDeep({ key: 'ada', password: 'x' })).toEqual({
      key: 'ada',
      password: '[Redacted]',
    });
  });

  it('a request target in a message shows the query names, not their values', () => {
    expect(pathForLog('/oauth/callback?code=abc&state=xyz')).toBe(
      '/oauth/callback?code=***&state=***',
    );
    expect(pathForLog('/Greeter/greet')).toBe('/Greeter/greet');
  });
});

describe('human-readable lines', () => {
  it('pretty: the time, level, target and message on one line, not JSON', () => {
    const raw: string[] = [];
    const logger = createLogger({
      pretty: true,
      destination: { write: (s: string) => void raw.push(s) },
    });
    toEngineLogger(logger)('warn', 'failed: out of stock', { ...INVOCATION });
    expect(raw).toHaveLength(1);
    const text = raw[0]!.replace(/\x1b\[[0-9;]*m/g, ''); // eslint-disable-line no-control-regex
    expect(() => JSON.parse(text) as unknown).toThrow();
    expect(text).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: Cart\/ada\/checkout failed: out of stock/,
    );
    expect(text).toContain('"invocationId":"inv_1abc"');
  });
});
