/**
 * The confirmation channel of the bank transfer exercise: one object per account holder,
 * whose state is the inbox of messages sent to them.
 */
import { object, shared, type ObjectContext } from '../../src/index.js';
import { simulated, type Simulation } from '../orchestration-kit/simulate.js';

/** One delivered message. */
export interface Notice {
  dedupeKey: string;
  message: string;
  sentAt: string;
}

/** Messages per account holder: send (idempotent per dedupe key), read. */
export const BankNotifications = object({
  name: 'BankNotifications',
  handlers: {
    /** Sends a message, once per dedupe key. */
    send: async (
      ctx: ObjectContext,
      req: { dedupeKey: string; message: string; simulate?: Simulation },
    ): Promise<Notice> => {
      const inbox = (await ctx.get<Notice[]>('inbox')) ?? [];
      const already = inbox.find((n) => n.dedupeKey === req.dedupeKey);
      if (already) return already;
      await simulated(ctx, req.simulate, {
        code: 'gateway_unavailable',
        message: 'the messaging gateway refused the message',
      });
      const notice: Notice = {
        dedupeKey: req.dedupeKey,
        message: req.message,
        sentAt: new Date(await ctx.now()).toISOString(),
      };
      ctx.set('inbox', [...inbox, notice]);
      return notice;
    },

    /** Every message sent to this holder. */
    inbox: shared(async (ctx) => (await ctx.get<Notice[]>('inbox')) ?? []),
  },
});
