/**
 * Flow control: when and how much work runs. A mail service behind a queue (at most 2 sends at
 * once, one per tenant, 30 per minute per tenant, urgent mail first within a tenant), a search
 * index rebuilt once per burst of edits (a debounced send), and a nightly digest fired by a cron
 * schedule. See README.md beside this file.
 */
import { randomUUID } from 'node:crypto';
import { handler, object, queue, service, shared, type ObjectContext } from '../../src/index.js';
import { schedule } from '../../src/schedules/index.js';

export interface Mail {
  tenant: string;
  to: string;
  subject?: string;
  urgent?: boolean;
}

/** One queue for every tenant's mail: keys (tenants) take turns. */
export const MailQueue = queue({
  name: 'mail',
  concurrency: 2,
  perKey: { concurrency: 1, rateLimit: { limit: 30, period: '1m' } },
});

/** The mail provider's call, journaled: a send that was acknowledged runs once. */
export const Mailer = service({
  name: 'Mailer',
  handlers: {
    send: handler(
      {
        queue: MailQueue,
        queueKey: (m: Mail) => m.tenant,
        priority: (m: Mail) => (m.urgent ? 10 : 0),
      },
      async (ctx, m: Mail) => {
        const id = await ctx.run('smtp', async () => {
          // A provider takes a while; the queue keeps it from being flooded.
          await new Promise((r) => setTimeout(r, 500));
          return `msg_${randomUUID().slice(0, 8)}`;
        });
        ctx.objectSendClient(Outbox, m.tenant).record({ to: m.to, id });
        return { sent: m.to, id };
      },
    ),
  },
});

/** Per tenant: the mail it sent, in the order the provider took it. */
export const Outbox = object({
  name: 'Outbox',
  handlers: {
    record: async (ctx: ObjectContext, sent: { to: string; id: string }) => {
      const list = (await ctx.get<string[]>('sent')) ?? [];
      ctx.set('sent', [...list, sent.to]);
    },
    list: shared(async (ctx) => (await ctx.get<string[]>('sent')) ?? []),
  },
});

/** A document's search entry: rebuilt from its latest text, once per burst of edits. */
export const SearchIndex = object({
  name: 'SearchIndex',
  handlers: {
    rebuild: async (ctx: ObjectContext, text: string) => {
      const words = await ctx.run('tokenize', () => text.split(/\s+/).filter(Boolean).length);
      ctx.set('text', text);
      ctx.set('words', words);
      ctx.set('rebuilds', ((await ctx.get<number>('rebuilds')) ?? 0) + 1);
      return words;
    },
    show: shared(async (ctx) => ({
      text: (await ctx.get<string>('text')) ?? null,
      words: (await ctx.get<number>('words')) ?? 0,
      rebuilds: (await ctx.get<number>('rebuilds')) ?? 0,
    })),
  },
});

/** What the nightly digest does: counts what it saw (a real one would mail a summary). */
export const Digest = service({
  name: 'Digest',
  handlers: {
    run: async (ctx) => {
      const at = await ctx.run('compose', () => new Date().toISOString());
      return { composedAt: at };
    },
  },
});

export const definitions = [Mailer, Outbox, SearchIndex, Digest];

/** Every night at 02:00 in Berlin (DST handled by the cron library). */
export const schedules = [
  schedule({
    name: 'nightly-digest',
    cron: '0 2 * * *',
    timezone: 'Europe/Berlin',
    target: { service: 'Digest', handler: 'run' },
    missed: 'once',
  }),
];
