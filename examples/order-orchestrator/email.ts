/**
 * The mail service that sends the tracking email: one object per recipient, whose state is the
 * inbox, so a test (or you, with curl) can read what was sent. Addresses under the reserved
 * `.invalid` top-level domain bounce.
 */
import { object, shared, TerminalError, type ObjectContext } from '../../src/index.js';
import { simulated, type Simulation } from '../orchestration-kit/simulate.js';

/** One delivered email. */
export interface Email {
  /** The sender's key for this message: the same key is delivered once. */
  dedupeKey: string;
  subject: string;
  body: string;
  sentAt: string;
}

/** Inboxes per address: send (idempotent per dedupe key), read. */
export const FulfillmentEmail = object({
  name: 'FulfillmentEmail',
  handlers: {
    /** Sends one email to the address that is this object's key. */
    send: async (
      ctx: ObjectContext,
      req: { dedupeKey: string; subject: string; body: string; simulate?: Simulation },
    ): Promise<Email> => {
      const inbox = (await ctx.get<Email[]>('inbox')) ?? [];
      const already = inbox.find((m) => m.dedupeKey === req.dedupeKey);
      if (already) return already;
      if (ctx.key.endsWith('.invalid')) {
        throw new TerminalError(`${ctx.key} does not exist: the email bounced`, {
          code: 'bounced',
          status: 422,
        });
      }
      await simulated(ctx, req.simulate, {
        code: 'smtp_unavailable',
        message: 'the mail server refused the message',
      });
      const email: Email = {
        dedupeKey: req.dedupeKey,
        subject: req.subject,
        body: req.body,
        sentAt: new Date(await ctx.now()).toISOString(),
      };
      ctx.set('inbox', [...inbox, email]);
      return email;
    },

    /** Every email delivered to this address, oldest first. */
    inbox: shared(async (ctx) => (await ctx.get<Email[]>('inbox')) ?? []),
  },
});
