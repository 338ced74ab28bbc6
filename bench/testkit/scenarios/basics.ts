/** examples/basics: Greeter, Counter, OrderWorkflow (reserve, a durable 2 s sleep, charge). */
import { expect } from 'vitest';
import { Counter } from '../../../examples/basics/counter.js';
import { Greeter } from '../../../examples/basics/greeter.js';
import { OrderWorkflow } from '../../../examples/basics/order-workflow.js';
import type { Scenario } from '../driver.js';

const services = [Greeter, Counter, OrderWorkflow];

const sendOrder = (d: Parameters<Scenario['run']>[0], key: string, quantity = 2) =>
  d.engine.send({
    service: 'OrderWorkflow',
    handler: 'run',
    key,
    input: { item: 'book', quantity },
  });

export const basics: Scenario[] = [
  {
    name: 'greets by name',
    services,
    async run(d) {
      expect(await d.engine.client(Greeter).greet('Ada')).toBe('Hello, Ada!');
    },
  },
  {
    name: 'greets the world without a name',
    services,
    async run(d) {
      expect(await d.engine.client(Greeter).greet(undefined)).toBe('Hello, world!');
    },
  },
  {
    name: 'refuses an empty name with a 400',
    services,
    async run(d) {
      await expect(d.engine.client(Greeter).greet('')).rejects.toMatchObject({ status: 400 });
    },
  },
  {
    name: 'counts per key',
    services,
    async run(d) {
      expect(await d.engine.client(Counter, 'a').add(2)).toBe(2);
      expect(await d.engine.client(Counter, 'a').add(3)).toBe(5);
      expect(await d.engine.client(Counter, 'b').add(1)).toBe(1);
      expect(await d.engine.client(Counter, 'a').get()).toBe(5);
    },
  },
  {
    name: 'never loses an increment under 20 concurrent adds',
    services,
    async run(d) {
      const c = d.engine.client(Counter, 'hits');
      const totals = await Promise.all(Array.from({ length: 20 }, () => c.add(1)));
      expect([...totals].sort((a, b) => a - b)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      expect(await c.get()).toBe(20);
    },
  },
  {
    name: 'resets a counter',
    services,
    async run(d) {
      const c = d.engine.client(Counter, 'r');
      await c.add(7);
      expect(await c.reset()).toBe(0);
      expect(await c.get()).toBe(0);
    },
  },
  {
    name: 'counts one-way sends once they have run',
    services,
    async run(d) {
      for (let i = 0; i < 5; i++)
        await d.engine.send({ service: 'Counter', handler: 'add', key: 'sent', input: 2 });
      await d.waitFor(
        async () => (await d.engine.client(Counter, 'sent').get()) === 10,
        'five adds',
      );
      expect(await d.engine.client(Counter, 'sent').get()).toBe(10);
    },
  },
  {
    name: 'an order waits 2 s durably, then charges',
    services,
    async run(d) {
      const { invocationId } = await sendOrder(d, 'o-1', 3);
      const status = () => d.engine.client(OrderWorkflow, 'o-1').status();
      await d.waitFor(async () => (await status()).stage === 'waiting', 'waiting');
      expect((await d.engine.output(invocationId)).ready).toBe(false);
      await d.advance('2s');
      expect(await d.engine.attach(invocationId)).toMatchObject({
        status: 'confirmed',
        item: 'book',
        amount: 30,
      });
      expect(await status()).toEqual({ stage: 'done' });
    },
  },
  {
    name: 'an order runs once per key',
    services,
    async run(d) {
      const first = await sendOrder(d, 'o-2');
      const result = await d.finish(first.invocationId);
      const again = await sendOrder(d, 'o-2', 9);
      expect(again.invocationId).toBe(first.invocationId);
      expect(await d.engine.attach(again.invocationId)).toEqual(result);
      expect(result).toMatchObject({ amount: 20 });
    },
  },
  {
    name: 'an order sleeping across a restart completes after it',
    services,
    async run(d) {
      const { invocationId } = await sendOrder(d, 'o-3', 1);
      const status = () => d.engine.client(OrderWorkflow, 'o-3').status();
      await d.waitFor(async () => (await status()).stage === 'waiting', 'waiting');
      await d.restart();
      expect(await d.finish(invocationId)).toMatchObject({ status: 'confirmed', amount: 10 });
    },
  },
];
