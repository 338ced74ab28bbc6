import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service } from '../../src/index.js';
import { until } from '../helpers.js';
import { ingressHarness, request, type IngressHarness } from './helpers.js';
import { kernelOf } from '../../src/engine/kernel.js';

/**
 * Result waiters are released when their HTTP client goes away, and bounded per invocation:
 * abandoned waits on a long-running invocation must not pin memory until it ends.
 */

/** Awakeable ids of `Claim.open` invocations, by input. */
const awakeables = new Map<string, string>();

const Claim = service({
  name: 'Claim',
  handlers: {
    // Waits (for days, in real life) until the test resolves its awakeable.
    open: async (ctx, name: string) => {
      const a = ctx.awakeable<string>();
      awakeables.set(name, a.id);
      return `${name}: ${await a.promise}`;
    },
  },
});

let h: IngressHarness;

beforeAll(async () => {
  h = await ingressHarness([Claim]);
});
afterAll(async () => {
  await h?.close();
});

async function start(name: string): Promise<string> {
  const sent = await request(h.base, 'POST', '/Claim/open/send', name);
  await until(() => awakeables.has(name), `${name} waits on its awakeable`);
  return sent.body.invocationId as string;
}

async function finish(name: string, value: string): Promise<void> {
  const r = await request(h.base, 'POST', `/awakeables/${awakeables.get(name)}/resolve`, value);
  expect(r.status).toBe(200);
}

/** The id of the `Claim.open` invocation started with `name`, once it is stored. */
async function idOf(name: string): Promise<string | undefined> {
  const rows = await h.engine.store.listInvocations({ service: 'Claim', limit: 1000 });
  return rows.find((r) => r.input === name)?.id;
}

interface Req {
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * Sends `requests`, waits until the engine counts one waiter per request on the invocation
 * named `name`, then aborts them all (the clients go away). Resolves with the invocation's id.
 */
async function abandon(requests: Req[], name: string): Promise<string> {
  const controller = new AbortController();
  const sent = requests.map(({ method, path, body, headers }) =>
    fetch(h.base + path, {
      method,
      signal: controller.signal,
      headers: {
        ...headers,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }).catch(() => undefined),
  );
  let id: string | undefined;
  await until(async () => {
    id ??= await idOf(name);
    return id !== undefined && kernelOf(h.engine).results.count(id) === requests.length;
  }, `${requests.length} waiters registered`);
  controller.abort();
  await Promise.all(sent);
  return id!;
}

describe('abandoned waits', () => {
  it('aborted attaches release their waiters', async () => {
    const id = await start('attach');
    await abandon(
      Array.from({ length: 50 }, () => ({ method: 'GET', path: `/invocations/${id}/attach` })),
      'attach',
    );
    await until(() => kernelOf(h.engine).results.count(id) === 0, 'every waiter released');
    // The invocation goes on, and a client that stays gets the result.
    const attached = request(h.base, 'GET', `/invocations/${id}/attach`);
    await until(() => kernelOf(h.engine).results.count(id) === 1, 'the new attach waits');
    await finish('attach', 'approved');
    expect(await attached).toMatchObject({ status: 200, body: 'attach: approved' });
    expect(kernelOf(h.engine).results.count(id)).toBe(0);
  });

  it('an aborted blocking call releases its waiter; the invocation goes on', async () => {
    const id = await abandon([{ method: 'POST', path: '/Claim/open', body: 'call' }], 'call');
    await until(() => kernelOf(h.engine).results.count(id) === 0, 'the call waiter released');
    await until(() => awakeables.has('call'), 'call waits on its awakeable');
    await finish('call', 'done');
    const out = await request(h.base, 'GET', `/invocations/${id}/attach`);
    expect(out).toMatchObject({ status: 200, body: 'call: done' });
  });

  it('aborted calls that joined a running invocation by Idempotency-Key release theirs', async () => {
    const headers = { 'idempotency-key': 'join-1' };
    await request(h.base, 'POST', '/Claim/open/send', 'joined', headers);
    const id = await abandon(
      Array.from({ length: 20 }, () => ({
        method: 'POST',
        path: '/Claim/open',
        body: 'x',
        headers,
      })),
      'joined',
    );
    await until(() => kernelOf(h.engine).results.count(id) === 0, 'the joined waiters released');
    await until(() => awakeables.has('joined'), 'joined waits on its awakeable');
    await finish('joined', 'ok');
  });
});

describe('the bound on waiters per invocation', () => {
  it('is 1,000: the next attach is a 429 too_many_waiters with Retry-After', async () => {
    const id = await start('crowded');
    const waits = Array.from({ length: 1000 }, () => h.engine.attach(id));
    expect(kernelOf(h.engine).results.count(id)).toBe(1000);
    await expect(h.engine.attach(id)).rejects.toMatchObject({ code: 'too_many_waiters' });
    const over = await request(h.base, 'GET', `/invocations/${id}/attach`);
    expect(over).toMatchObject({ status: 429, body: { code: 'too_many_waiters' } });
    expect(over.headers.get('retry-after')).toBe('1');
    expect(over.body.message).toContain(`/invocations/${id}/output`);
    await finish('crowded', 'in');
    expect(new Set(await Promise.all(waits))).toEqual(new Set(['crowded: in']));
    expect(kernelOf(h.engine).results.count(id)).toBe(0);
  });
});
