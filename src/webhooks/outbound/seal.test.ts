import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../engine/engine.js';
import { systemClock } from '../../engine/clock.js';
import type { Store } from '../../store/types.js';
import { resolveOutbound } from './options.js';
import { WebhooksRuntime } from './runtime.js';
import { Sealer } from './seal.js';
import type { DeliverInput } from './types.js';

/** The checks of deliver inputs: sealed by Keel, unchanged since. */
function runtime(key: Buffer): WebhooksRuntime {
  // Checking inputs touches neither the store nor the engine.
  const engine = { store: { shared: false } as Store, clock: systemClock } as Engine;
  return new WebhooksRuntime(engine, resolveOutbound({}), {}, new Sealer(key));
}

const copy = (i: DeliverInput): DeliverInput => JSON.parse(JSON.stringify(i)) as DeliverInput;
const BODY = '{"type":"order.shipped","timestamp":"2026-01-01T00:00:00.000Z","data":{}}';

describe('deliver input seals', () => {
  it('accepts what this process sealed, and what another process of the app sealed', () => {
    const key = randomBytes(32);
    const a = runtime(key);
    const input = a.deliverInput('dlv_1', 'ep_1', 'msg_1', 'order.shipped', BODY, 1);
    // As the engine hands it to the handler: its JSON form, a copy.
    expect(() => a.checkDeliver(copy(input))).not.toThrow();
    // Checked again (a replay of the delivery): by its HMAC this time.
    expect(() => a.checkDeliver(copy(input))).not.toThrow();
    // Another process (same store, same seal key) remembers nothing: the HMAC decides.
    expect(() => runtime(key).checkDeliver(copy(input))).not.toThrow();
    const test = a.deliverInput('dlv_2', 'ep_1', 'msg_2', 'webhook.test', BODY, 1, true);
    expect(() => a.checkDeliver(copy(test))).not.toThrow();
  });

  it('refuses a changed input even with a seal this process just made', () => {
    const a = runtime(randomBytes(32));
    for (const change of [
      (i: DeliverInput) => (i.b = '{"forged":true}'),
      (i: DeliverInput) => (i.e = 'ep_other'),
      (i: DeliverInput) => (i.m = 'msg_other'),
      (i: DeliverInput) => (i.c = 2),
      (i: DeliverInput) => (i.x = 1),
    ]) {
      const input = a.deliverInput('dlv_1', 'ep_1', 'msg_1', 'order.shipped', BODY, 1);
      const forged = copy(input);
      change(forged);
      expect(() => a.checkDeliver(forged)).toThrow(/not created by Keel webhooks/);
      // The genuine input still passes afterwards.
      expect(() => a.checkDeliver(copy(input))).not.toThrow();
    }
  });

  it('refuses inputs sealed with another key, or not sealed at all', () => {
    const input = runtime(randomBytes(32)).deliverInput('dlv_1', 'ep_1', 'msg_1', 't', BODY, 1);
    const other = runtime(randomBytes(32));
    expect(() => other.checkDeliver(copy(input))).toThrow(/not created by Keel webhooks/);
    expect(() => other.checkDeliver({ ...copy(input), s: 'forged' })).toThrow(
      /not created by Keel webhooks/,
    );
    expect(() => other.checkDeliver(undefined as unknown as DeliverInput)).toThrow(
      /not created by Keel webhooks/,
    );
  });
});
