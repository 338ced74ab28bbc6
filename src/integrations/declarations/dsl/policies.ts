/**
 * Readers for the policy fields of an integration (and of an operation): retry and
 * retry_delays, circuit_breaker, rate_limit, cache, fallback, idempotency, batching, errors,
 * and the webhook-only signature and dead_letter. Each accepts the phrase form
 * (`5 failures in 1m, reset after 30s`) and the block form (`{ failures: 5, ... }`).
 */
import type { Duration } from '../../../core/duration.js';
import type { FallbackConfig, IntegrationConfig } from '../config.js';
import type { RetryPolicy } from '../../../core/retry.js';
import type { Pos } from './lexer.js';
import { Cursor, camel, type Reader } from './reader.js';
import type { BlockNode, Field, Value } from './syntax.js';

/** Unit words accepted after `per` in a rate limit (`5000 per hour`). */
const UNITS: Record<string, number> = {
  millisecond: 1,
  milliseconds: 1,
  second: 1000,
  seconds: 1000,
  sec: 1000,
  minute: 60_000,
  minutes: 60_000,
  min: 60_000,
  hour: 3_600_000,
  hours: 3_600_000,
  day: 86_400_000,
  days: 86_400_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

/** `retry` and `retry_delays` together: the delays, when given, replace the backoff. */
export function readRetryFields(
  r: Reader,
  retryField: Field | undefined,
  delaysField: Field | undefined,
  tsPath: string,
  labelPrefix: string,
): RetryPolicy | false | undefined {
  let retry: RetryPolicy | false | undefined;
  if (retryField !== undefined)
    retry = readRetry(r, retryField.value, tsPath, `${labelPrefix}retry`);
  if (delaysField !== undefined) {
    const label = `${labelPrefix}retry_delays`;
    const list = r.one(delaysField.value, label);
    if (list.kind !== 'list' || list.items.length === 0) {
      r.fail(list.pos, `${r.ctx(label)}expected a list of durations such as [1m, 5m, 30m, 2h, 8h]`);
    }
    const schedule = list.items.map((p) => r.duration(r.one(p, label), label));
    if (retryField === undefined) r.origin(tsPath, list.pos, label);
    r.origin(`${tsPath}.schedule`, list.pos, label);
    if (retry === false)
      r.fail(delaysField.keyPos, `${r.ctx(label)}retry is none, so there is nothing to schedule`);
    // "5 times with exponential_backoff" next to explicit delays describes the same schedule:
    // the delays replace the backoff settings, the count stays.
    const { initialInterval: _i, maxInterval: _m, factor: _f, ...rest } = retry ?? {};
    retry = { ...rest, schedule };
  }
  return retry;
}

function readRetry(r: Reader, v: Value, tsPath: string, label: string): RetryPolicy | false {
  r.origin(tsPath, v.pos, label);
  const node = r.reparse(v, label);
  if (node.phrases.length === 1 && node.phrases[0]!.terms.length === 1) {
    const only = node.phrases[0]!.terms[0]!;
    if (only.kind === 'ident' && ['none', 'never', 'false', 'off'].includes(only.name)) {
      r.origin(tsPath, only.pos, label);
      return false;
    }
    if (only.kind === 'block') return readRetryBlock(r, only, tsPath, label);
  }
  const out: RetryPolicy = {};
  const [first, ...more] = node.phrases;
  const c = new Cursor(r, first!, label);
  const n = c.integer('a number of retries, as in 3 times with exponential_backoff');
  // "3 times" counts retries: 4 attempts in all.
  out.maxAttempts = n + 1;
  r.origin(`${tsPath}.maxAttempts`, c.lastPos, label);
  c.optional('times', 'time', 'retries');
  if (c.optional('with')) {
    const backoff = backoffWord(
      r,
      c.word("a backoff after 'with': exponential_backoff or constant_backoff"),
      c.lastPos,
      label,
    );
    if (backoff === 'constant') {
      out.factor = 1;
      r.origin(`${tsPath}.factor`, c.lastPos, label);
    }
  }
  c.end("'3 times with exponential_backoff'");
  for (const p of more) {
    const m = new Cursor(r, p, label);
    const w = m.word('jitter, factor, starting at <duration> or up to <duration>');
    if (w === 'jitter') {
      out.jitter = m.number('a fraction such as 0.25 or 25%');
      r.origin(`${tsPath}.jitter`, m.lastPos, label);
    } else if (w === 'factor') {
      out.factor = m.number('a factor such as 2');
      r.origin(`${tsPath}.factor`, m.lastPos, label);
    } else if (w === 'starting' || w === 'initial_delay') {
      if (w === 'starting') m.expect('at');
      out.initialInterval = m.duration(`'${w === 'starting' ? 'starting at' : w}'`);
      r.origin(`${tsPath}.initialInterval`, m.lastPos, label);
    } else if (w === 'up' || w === 'max_delay') {
      if (w === 'up') m.expect('to');
      out.maxInterval = m.duration(`'${w === 'up' ? 'up to' : w}'`);
      r.origin(`${tsPath}.maxInterval`, m.lastPos, label);
    } else {
      r.fail(
        m.lastPos,
        `${r.ctx(label)}unknown retry setting '${w}': use jitter, factor, starting at <duration> or up to <duration>`,
      );
    }
    m.end('the retry setting');
  }
  return out;
}

function readRetryBlock(r: Reader, block: BlockNode, tsPath: string, label: string): RetryPolicy {
  const fields = r.fields(
    block,
    [
      'times',
      'retries',
      'max_attempts',
      'backoff',
      'initial_delay',
      'initial_interval',
      'max_delay',
      'max_interval',
      'factor',
      'jitter',
      'delays',
      'schedule',
      'respect_retry_after',
      'max_retry_after',
    ],
    label,
  );
  const out: RetryPolicy = {};
  let constant = false;
  for (const [key, f] of fields) {
    const l = `${label}.${key}`;
    const node = r.one(f.value, l);
    switch (key) {
      case 'times':
      case 'retries':
        // A count of retries: one attempt more in all.
        out.maxAttempts = r.number(node, l) + 1;
        r.origin(`${tsPath}.maxAttempts`, node.pos, l);
        break;
      case 'max_attempts':
        out.maxAttempts = r.number(node, l);
        r.origin(`${tsPath}.maxAttempts`, node.pos, l);
        break;
      case 'backoff':
        constant = backoffWord(r, r.word(node, l), node.pos, l) === 'constant';
        if (constant) r.origin(`${tsPath}.factor`, node.pos, l);
        break;
      case 'initial_delay':
      case 'initial_interval':
        out.initialInterval = r.duration(node, l);
        r.origin(`${tsPath}.initialInterval`, node.pos, l);
        break;
      case 'max_delay':
      case 'max_interval':
        out.maxInterval = r.duration(node, l);
        r.origin(`${tsPath}.maxInterval`, node.pos, l);
        break;
      case 'factor':
        out.factor = r.number(node, l);
        r.origin(`${tsPath}.factor`, node.pos, l);
        break;
      case 'jitter':
        out.jitter = r.number(node, l);
        r.origin(`${tsPath}.jitter`, node.pos, l);
        break;
      case 'delays':
      case 'schedule':
        if (node.kind !== 'list')
          r.fail(node.pos, `${r.ctx(l)}expected a list of durations such as [1m, 5m, 30m]`);
        out.schedule = node.items.map((p) => r.duration(r.one(p, l), l));
        r.origin(`${tsPath}.schedule`, node.pos, l);
        break;
      case 'respect_retry_after':
        out.respectRetryAfter = r.bool(node, l);
        r.origin(`${tsPath}.respectRetryAfter`, node.pos, l);
        break;
      case 'max_retry_after':
        out.maxRetryAfter = r.duration(node, l);
        r.origin(`${tsPath}.maxRetryAfter`, node.pos, l);
        break;
    }
  }
  // constant_backoff is the core policy's factor 1 (unless a factor is given as well).
  if (constant && out.factor === undefined) out.factor = 1;
  return out;
}

function backoffWord(r: Reader, w: string, pos: Pos, label: string): 'exponential' | 'constant' {
  if (w === 'exponential_backoff' || w === 'exponential') return 'exponential';
  if (w === 'constant_backoff' || w === 'constant' || w === 'fixed') return 'constant';
  return r.fail(
    pos,
    `${r.ctx(label)}unknown backoff '${w}': use exponential_backoff or constant_backoff`,
  );
}

export function readCircuitBreaker(r: Reader, v: Value): IntegrationConfig['circuitBreaker'] {
  const label = 'circuit_breaker';
  const value = r.reparse(v, label);
  const out: Partial<{
    failures: number;
    window: Duration;
    reset: Duration;
    probeTimeout: Duration;
  }> = {};
  const only =
    value.phrases.length === 1 && value.phrases[0]!.terms.length === 1
      ? value.phrases[0]!.terms[0]!
      : undefined;
  if (only?.kind === 'block') {
    const fields = r.fields(
      only,
      ['threshold', 'failures', 'window', 'in', 'reset_after', 'reset', 'probe_timeout'],
      label,
    );
    for (const [key, f] of fields) {
      const l = `${label}.${key}`;
      if (key === 'threshold') {
        const t = r.reparse(f.value, l);
        const single =
          t.phrases.length === 1 && t.phrases[0]!.terms.length === 1
            ? t.phrases[0]!.terms[0]!
            : undefined;
        if (single?.kind === 'number') {
          out.failures = single.value;
          r.origin('circuitBreaker.failures', single.pos, l);
        } else {
          if (t.phrases.length > 1)
            r.fail(
              t.phrases[1]!.pos,
              `${r.ctx(l)}expected '5 failures in 1m' alone; give reset_after on its own line`,
            );
          readFailuresIn(r, new Cursor(r, t.phrases[0]!, l), out, l);
        }
        continue;
      }
      const node = r.one(f.value, l);
      if (key === 'failures') {
        out.failures = r.number(node, l);
        r.origin('circuitBreaker.failures', node.pos, l);
      } else if (key === 'window' || key === 'in') {
        out.window = r.duration(node, l);
        r.origin('circuitBreaker.window', node.pos, l);
      } else if (key === 'reset_after' || key === 'reset') {
        out.reset = r.duration(node, l);
        r.origin('circuitBreaker.reset', node.pos, l);
      } else {
        out.probeTimeout = r.duration(node, l);
        r.origin('circuitBreaker.probeTimeout', node.pos, l);
      }
    }
  } else {
    const [first, ...more] = value.phrases;
    readFailuresIn(r, new Cursor(r, first!, label), out, label);
    for (const p of more) {
      const c = new Cursor(r, p, label);
      const w = c.word("'reset after 30s' or 'probe timeout 10s'");
      if (w === 'reset') {
        c.expect('after');
        out.reset = c.duration("'reset after'");
        r.origin('circuitBreaker.reset', c.lastPos, label);
      } else if (w === 'reset_after') {
        out.reset = c.duration("'reset_after'");
        r.origin('circuitBreaker.reset', c.lastPos, label);
      } else if (w === 'probe') {
        c.expect('timeout');
        out.probeTimeout = c.duration("'probe timeout'");
        r.origin('circuitBreaker.probeTimeout', c.lastPos, label);
      } else {
        r.fail(
          c.lastPos,
          `${r.ctx(label)}expected 'reset after 30s' after the failures, found '${w}'`,
        );
      }
      c.end('the circuit breaker setting');
    }
  }
  r.origin('circuitBreaker', v.pos, label);
  const missing = (what: string, example: string): never =>
    r.fail(v.end, `${r.ctx(label)}${what} is missing: write ${example}`);
  if (out.failures === undefined) missing('the number of failures', "'5 failures in 1m'");
  if (out.window === undefined)
    missing('the window the failures are counted in', "'5 failures in 1m'");
  if (out.reset === undefined) {
    missing(
      'the reset time',
      only?.kind === 'block' ? 'reset_after: 30s' : "'5 failures in 1m, reset after 30s'",
    );
  }
  return out as IntegrationConfig['circuitBreaker'];
}

function readFailuresIn(
  r: Reader,
  c: Cursor,
  out: { failures?: number; window?: Duration },
  label: string,
): void {
  out.failures = c.integer("a number of failures, as in '5 failures in 1m'");
  r.origin('circuitBreaker.failures', c.lastPos, label);
  c.expect('failures', 'failure', 'errors', 'error');
  c.expect('in', 'within');
  out.window = c.duration(`'${c.previousWord}'`);
  r.origin('circuitBreaker.window', c.lastPos, label);
  c.end("'5 failures in 1m'");
}

export function readRateLimit(r: Reader, v: Value): IntegrationConfig['rateLimit'] {
  const label = 'rate_limit';
  const value = r.reparse(v, label);
  const out: {
    requests?: number;
    per?: Duration;
    remainingHeader?: string;
    resetHeader?: string;
  } = {};
  const only =
    value.phrases.length === 1 && value.phrases[0]!.terms.length === 1
      ? value.phrases[0]!.terms[0]!
      : undefined;
  if (only?.kind === 'block') {
    const fields = r.fields(
      only,
      ['requests', 'window', 'per', 'header', 'remaining_header', 'reset_header'],
      label,
    );
    for (const [key, f] of fields) {
      const l = `${label}.${key}`;
      const node = r.one(f.value, l);
      if (key === 'requests') {
        out.requests = r.number(node, l);
        r.origin('rateLimit.requests', node.pos, l);
      } else if (key === 'window' || key === 'per') {
        out.per =
          node.kind === 'ident' && UNITS[node.name] !== undefined
            ? UNITS[node.name]!
            : r.duration(node, l);
        r.origin('rateLimit.per', node.pos, l);
      } else if (key === 'header' || key === 'remaining_header') {
        out.remainingHeader = r.string(node, l);
        r.origin('rateLimit.remainingHeader', node.pos, l);
      } else {
        out.resetHeader = r.string(node, l);
        r.origin('rateLimit.resetHeader', node.pos, l);
      }
    }
    if (out.requests === undefined)
      r.fail(only.end, `${r.ctx(label)}requests is missing: write requests: 5000`);
    if (out.per === undefined)
      r.fail(only.end, `${r.ctx(label)}window is missing: write window: 1h`);
  } else {
    if (value.phrases.length > 1)
      r.fail(value.phrases[1]!.pos, `${r.ctx(label)}expected '5000 per hour' alone`);
    const c = new Cursor(r, value.phrases[0]!, label);
    out.requests = c.integer("a number of requests, as in '5000 per hour'");
    r.origin('rateLimit.requests', c.lastPos, label);
    c.optional('requests', 'request', 'calls', 'call');
    c.expect('per', 'every', 'in');
    const unit = c.peekIdent();
    if (unit !== undefined && UNITS[unit] !== undefined) {
      c.word('');
      out.per = UNITS[unit];
    } else {
      out.per = c.duration(`'${c.previousWord}' (or a unit: second, minute, hour, day)`);
    }
    r.origin('rateLimit.per', c.lastPos, label);
    c.end("'5000 per hour'");
  }
  r.origin('rateLimit', v.pos, label);
  return out as IntegrationConfig['rateLimit'];
}

export function readIntegrationCache(r: Reader, v: Value): Duration | undefined {
  const node = r.one(v, 'cache');
  if (node.kind === 'ident' && ['none', 'false', 'off'].includes(node.name)) return undefined;
  if (node.kind === 'block') {
    const fields = r.fields(node, ['default_ttl', 'ttl'], 'cache');
    const f = fields.get('default_ttl') ?? fields.get('ttl');
    if (f === undefined) r.fail(node.pos, `${r.ctx('cache')}write cache: { default_ttl: 15m }`);
    return r.duration(r.one(f.value, 'cache.default_ttl'), 'cache.default_ttl');
  }
  return r.duration(node, 'cache');
}

export function readFallback(
  r: Reader,
  v: Value,
  tsPath: string,
  label: string,
): FallbackConfig | false {
  const node = r.one(v, label);
  r.origin(tsPath, node.pos, label);
  if ((node.kind === 'ident' || node.kind === 'string') && r.wordOf(node) === 'cache')
    return 'cache';
  if (
    (node.kind === 'ident' || node.kind === 'string') &&
    ['none', 'false', 'off'].includes(r.wordOf(node)!)
  )
    return false;
  if (node.kind === 'call' && node.name === 'default') {
    if (node.args.length !== 1 || node.block !== undefined)
      r.fail(
        node.pos,
        `${r.ctx(label)}write default(value), e.g. default({ status: "unavailable" })`,
      );
    return { default: r.json(r.one(node.args[0]!, label), label) };
  }
  if (node.kind === 'block') {
    const fields = r.fields(node, ['default'], label);
    const d = fields.get('default');
    if (d === undefined) r.fail(node.pos, `${r.ctx(label)}write { default: value }`);
    return { default: r.json(r.one(d.value, label), label) };
  }
  return r.fail(node.pos, `${r.ctx(label)}expected cache or default({ ... })`);
}

export function readIdempotency(r: Reader, v: Value): IntegrationConfig['idempotency'] {
  const label = 'idempotency';
  const node = r.one(v, label);
  r.origin('idempotency', node.pos, label);
  if (node.kind !== 'block') return r.bool(node, label);
  const fields = r.fields(node, ['header', 'generate', 'enabled'], label);
  const out: { header?: string; enabled?: boolean } = {};
  for (const [key, f] of fields) {
    const l = `${label}.${key}`;
    const n = r.one(f.value, l);
    if (key === 'header') {
      out.header = r.string(n, l);
      r.origin('idempotency.header', n.pos, l);
    } else {
      out.enabled = r.bool(n, l);
      r.origin('idempotency.enabled', n.pos, l);
    }
  }
  return out;
}

export function readBatching(r: Reader, v: Value): IntegrationConfig['batching'] {
  const label = 'batching';
  const node = r.one(v, label);
  if (node.kind !== 'block')
    r.fail(node.pos, `${r.ctx(label)}write batching: { max_batch_size: 100, max_delay: 5s }`);
  const fields = r.fields(node, ['enabled', 'max_batch_size', 'max_delay'], label);
  const out: { enabled?: boolean; maxBatchSize?: number; maxDelay?: Duration } = {};
  for (const [key, f] of fields) {
    const l = `${label}.${key}`;
    const n = r.one(f.value, l);
    if (key === 'enabled') {
      out.enabled = r.bool(n, l);
      r.origin('batching.enabled', n.pos, l);
    } else if (key === 'max_batch_size') {
      out.maxBatchSize = r.number(n, l);
      r.origin('batching.maxBatchSize', n.pos, l);
    } else {
      out.maxDelay = r.duration(n, l);
      r.origin('batching.maxDelay', n.pos, l);
    }
  }
  r.origin('batching', node.pos, label);
  return out as IntegrationConfig['batching'];
}

export function readErrorOverrides(
  r: Reader,
  v: Value,
  tsPath: string,
  label: string,
): IntegrationConfig['errors'] {
  const node = r.one(v, label);
  if (node.kind !== 'block')
    r.fail(node.pos, `${r.ctx(label)}write errors: { retryable: [409], terminal: [501] }`);
  const fields = r.fields(node, ['retryable', 'terminal'], label);
  const out: { retryable?: number[]; terminal?: number[] } = {};
  for (const [key, f] of fields) {
    const l = `${label}.${key}`;
    const list = r.one(f.value, l);
    if (list.kind !== 'list')
      r.fail(list.pos, `${r.ctx(l)}expected a list of status codes such as [409, 423]`);
    out[key as 'retryable' | 'terminal'] = list.items.map((p) => r.number(r.one(p, l), l));
    r.origin(`${tsPath}.${key}`, list.pos, l);
  }
  r.origin(tsPath, node.pos, label);
  return out;
}

export function readSignature(r: Reader, v: Value): IntegrationConfig['signature'] {
  const label = 'signature';
  const node = r.one(v, label);
  if (node.kind !== 'block')
    r.fail(
      node.pos,
      `${r.ctx(label)}write signature: { algorithm: "sha256", header: "X-Webhook-Signature" }`,
    );
  const fields = r.fields(node, ['algorithm', 'header', 'secret_from', 'secret'], label);
  const out: Record<string, unknown> = {};
  for (const [key, f] of fields) {
    const l = `${label}.${key}`;
    const n = r.one(f.value, l);
    if (key === 'algorithm') out.algorithm = r.word(n, l);
    else if (key === 'header') out.header = r.string(n, l);
    else if (key === 'secret_from')
      out.secretFrom = n.kind === 'ref' ? n.path.join('.') : r.string(n, l);
    else out.secret = r.secret(n, l);
    r.origin(`signature.${camel(key)}`, n.pos, l);
  }
  r.origin('signature', node.pos, label);
  return out as unknown as IntegrationConfig['signature'];
}

export function readDeadLetter(r: Reader, v: Value): IntegrationConfig['deadLetter'] {
  const label = 'dead_letter';
  const node = r.one(v, label);
  if (node.kind !== 'block') return { enabled: r.bool(node, label) };
  const fields = r.fields(node, ['enabled', 'retention'], label);
  const out: { enabled?: boolean; retention?: Duration } = {};
  for (const [key, f] of fields) {
    const l = `${label}.${key}`;
    const n = r.one(f.value, l);
    if (key === 'enabled') out.enabled = r.bool(n, l);
    else out.retention = r.duration(n, l);
    r.origin(`deadLetter.${key}`, n.pos, l);
  }
  r.origin('deadLetter', node.pos, label);
  return out;
}
