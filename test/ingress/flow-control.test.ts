import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { object, service } from '../../src/index.js';
import { ingressHarness, request, type IngressHarness } from './helpers.js';

/**
 * Debounce and throttle on the ingress: query parameters of `/send`, checked at the edge (400,
 * nothing stored), a debounced burst answering one invocation id, a dropped send answering
 * 200 `{ dropped: true }`. Periods are an hour, so the real clock never ends a burst here.
 */
const Search = service({
  name: 'Search',
  handlers: { reindex: async (_ctx, doc: { v: number }) => doc.v },
});
const Doc = object({
  name: 'Doc',
  handlers: { render: async (ctx, v: number) => `${ctx.key}:${v}` },
});

let h: IngressHarness;
const post = (path: string, body?: unknown, headers?: Record<string, string>) =>
  request(h.base, 'POST', path, body, headers);

beforeAll(async () => {
  h = await ingressHarness([Search, Doc]);
});
afterAll(async () => {
  await h?.close();
});

describe('debounce on the ingress', () => {
  it('a burst of sends answers one scheduled invocation that holds the last input', async () => {
    const ids = new Set<string>();
    for (let v = 0; v < 10; v++) {
      const r = await post('/Search/reindex/send?debounceKey=doc%2F1&debouncePeriod=1h', { v });
      expect(r.status).toBe(202);
      expect(r.body).toMatchObject({ status: 'scheduled', existing: v > 0 });
      expect(r.headers.get('x-keel-invocation-id')).toBe(r.body.invocationId);
      ids.add(r.body.invocationId);
    }
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    const row = await h.engine.store.getInvocation(id!);
    expect(row).toMatchObject({ status: 'scheduled', input: { v: 9 } });
    // Another object key of the same handler is another burst.
    const a = await post('/Doc/a/render/send?debounceKey=k&debouncePeriod=PT1H', 1);
    const b = await post('/Doc/b/render/send?debounceKey=k&debouncePeriod=PT1H', 2);
    expect(a.body.invocationId).not.toBe(b.body.invocationId);
  });
});

describe('throttle on the ingress', () => {
  it('drop answers 200 { dropped: true } with retryAfterMs, and stores nothing', async () => {
    const q = '?throttleKey=t1&throttleLimit=2&throttlePeriod=1h&throttleMode=drop';
    const accepted = [await post(`/Search/reindex/send${q}`, { v: 1 })];
    accepted.push(await post(`/Search/reindex/send${q}`, { v: 2 }));
    for (const r of accepted) expect(r.status).toBe(202);
    const dropped = await post(`/Search/reindex/send${q}`, { v: 3 });
    expect(dropped.status).toBe(200);
    expect(dropped.body).toMatchObject({ dropped: true, code: 'throttled' });
    expect(dropped.body.retryAfterMs).toBeGreaterThan(3_500_000);
    expect(dropped.body.retryAfterMs).toBeLessThanOrEqual(3_600_000);
    expect(dropped.headers.get('x-keel-invocation-id')).toBeNull();
    const stored = await h.engine.listInvocations({ service: 'Search', limit: 1000 });
    const inputs = await Promise.all(
      stored.invocations.map(async (i) => (await h.engine.store.getInvocation(i.id))?.input),
    );
    expect(inputs).not.toContainEqual({ v: 3 });
  });

  it('delay answers 202 scheduled at the next free slot', async () => {
    const q = '?throttleKey=t2&throttleLimit=1&throttlePeriod=1h';
    const first = await post(`/Search/reindex/send${q}`, { v: 1 });
    const second = await post(`/Search/reindex/send${q}`, { v: 2 });
    expect(first.status).toBe(202);
    expect(second).toMatchObject({ status: 202, body: { status: 'scheduled' } });
    const info = await request(h.base, 'GET', `/invocations/${second.body.invocationId}`);
    expect(Date.parse(info.body.nextAttemptAt) - Date.now()).toBeGreaterThan(3_500_000);
  });
});

describe('bad debounce and throttle parameters', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['/Search/reindex/send?debouncePeriod=1s', 'invalid_debounce', /debounce key is missing/],
    ['/Search/reindex/send?debounceKey=&debouncePeriod=1s', 'invalid_debounce', /key is empty/],
    ['/Search/reindex/send?debounceKey=k', 'invalid_debounce', /period is missing/],
    ['/Search/reindex/send?debounceKey=k&debouncePeriod=0', 'invalid_debounce', /out of range/],
    ['/Search/reindex/send?debounceKey=k&debouncePeriod=-1s', 'invalid_debounce', /not a duration/],
    [
      '/Search/reindex/send?debounceKey=k&debouncePeriod=1m&debounceMaxWait=1s',
      'invalid_debounce',
      /shorter than its period/,
    ],
    [
      '/Search/reindex/send?debounceKey=a&debounceKey=b&debouncePeriod=1s',
      'invalid_debounce',
      /more than once/,
    ],
    [
      '/Search/reindex/send?debounceKey=k&debouncePeriod=1s&delay=1s',
      'invalid_debounce',
      /cannot be combined with a delay/,
    ],
    ['/Search/reindex?debounceKey=k&debouncePeriod=1s', 'invalid_debounce', /only to sends/],
    [
      '/Search/reindex/send?throttleKey=k&throttleLimit=0&throttlePeriod=1s',
      'invalid_throttle',
      /limit 0 is not valid/,
    ],
    [
      '/Search/reindex/send?throttleKey=k&throttleLimit=1e3&throttlePeriod=1s',
      'invalid_throttle',
      /limit 1e3 is not valid/,
    ],
    [
      '/Search/reindex/send?throttleKey=k&throttleLimit=1001&throttlePeriod=1s',
      'invalid_throttle',
      /from 1 to 1000/,
    ],
    [
      '/Search/reindex/send?throttleKey=k&throttleLimit=1&throttlePeriod=1s&throttleMode=queue',
      'invalid_throttle',
      /mode "queue" is not valid/,
    ],
    [
      '/Search/reindex/send?throttleLimit=1&throttlePeriod=1s',
      'invalid_throttle',
      /key is missing/,
    ],
    ['/Search/reindex/send?throttleKey=k&throttleLimit=1', 'invalid_throttle', /period is missing/],
  ];
  it.each(cases)('%s answers 400 %s', async (path, code, message) => {
    const before = (await h.engine.listInvocations({ limit: 1000 })).invocations.length;
    const r = await post(path, { v: 0 });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe(code);
    expect(r.body.message).toMatch(message);
    expect((await h.engine.listInvocations({ limit: 1000 })).invocations).toHaveLength(before);
  });
});
