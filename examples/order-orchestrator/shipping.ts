/**
 * ShippingService of the order exercise: one object per order's shipment, holding its label.
 * No carrier serves Antarctica (`"country": "AQ"`), which is how to make shipping fail by hand.
 */
import { object, shared, TerminalError, type ObjectContext } from '../../src/index.js';
import { simulated, type Simulation } from '../orchestration-kit/simulate.js';

/** Where a parcel goes. */
export interface Address {
  name: string;
  street: string;
  city: string;
  postalCode: string;
  /** ISO 3166 alpha-2 code. */
  country: string;
}

/** A shipping label. */
export interface Label {
  labelId: string;
  carrier: string;
  trackingNumber: string;
  /** `voided`: cancelled before the parcel left (or before the label existed). */
  status: 'created' | 'voided';
}

/** Countries no carrier ships to. */
const UNSERVED = new Set(['AQ']);

/** Shipping labels per order: create (idempotent), void. */
export const FulfillmentShipping = object({
  name: 'FulfillmentShipping',
  handlers: {
    /** Buys the label of an order's parcel, once. */
    createLabel: async (
      ctx: ObjectContext,
      req: { address: Address; simulate?: Simulation },
    ): Promise<Label> => {
      const existing = await ctx.get<Label>('label');
      if (existing?.status === 'created') return existing;
      if (existing) {
        throw new TerminalError(`the label of ${ctx.key} was voided`, {
          code: 'label_voided',
          status: 409,
        });
      }
      if (UNSERVED.has(req.address.country.toUpperCase())) {
        throw new TerminalError(`no carrier ships to ${req.address.country}`, {
          code: 'no_carrier',
          status: 422,
        });
      }
      await simulated(ctx, req.simulate, {
        code: 'carrier_unavailable',
        message: 'the carrier API refused the label',
      });
      // ctx.uuid() is deterministic per invocation, so a replay buys the same label.
      const tracking = ctx.uuid().replace(/-/g, '').slice(0, 12).toUpperCase();
      const label: Label = {
        labelId: `lbl-${ctx.key}`,
        carrier: req.address.country.toUpperCase() === 'US' ? 'UPS' : 'DHL',
        trackingNumber: `TRK${tracking}`,
        status: 'created',
      };
      ctx.set('label', label);
      return label;
    },

    /** Voids the label; idempotent, and a label bought later is refused. */
    voidLabel: async (ctx: ObjectContext): Promise<Label> => {
      const existing = await ctx.get<Label>('label');
      const voided: Label = existing
        ? { ...existing, status: 'voided' }
        : { labelId: `lbl-${ctx.key}`, carrier: '', trackingNumber: '', status: 'voided' };
      ctx.set('label', voided);
      return voided;
    },

    /** The label, or null. */
    get: shared(async (ctx) => (await ctx.get<Label>('label')) ?? null),
  },
});
