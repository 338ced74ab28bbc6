import { describe, expect, it } from 'vitest';
import { createBuses, type Subscription } from '../../src/buses/index.js';
import { service } from '../../src/index.js';

/** Subscriptions declared in code are checked when `createBuses` is called, before any connection. */
const Inbox = service({ name: 'Inbox', handlers: { take: async () => 'ok' } });
const nats = (over: Partial<Subscription>): Subscription =>
  ({
    name: 'orders',
    bus: 'nats',
    stream: 'ORDERS',
    subject: 'orders.>',
    durable: 'keel-orders',
    target: { definition: Inbox, handler: 'take' },
    ...over,
  }) as Subscription;

describe('subscription options', () => {
  it('refuses a bad maxAttempts and a bad or too short NATS ackWait, naming the subscription', () => {
    expect(() => createBuses({ subscriptions: [nats({ maxAttempts: 0 })] })).toThrow(
      /subscription "orders": maxAttempts must be at least 1/,
    );
    expect(() => createBuses({ subscriptions: [nats({ ackWait: 'soon' })] })).toThrow(
      /subscription "orders": ackWait: /,
    );
    expect(() => createBuses({ subscriptions: [nats({ ackWait: '10ms' })] })).toThrow(
      /subscription "orders": ackWait must be at least 1s, got 10 ms/,
    );
    expect(() => createBuses({ subscriptions: [nats({ ackWait: '5s' })] })).not.toThrow();
  });
});
