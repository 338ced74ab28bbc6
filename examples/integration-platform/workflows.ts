/**
 * The platform's code workflows and services, each step a call to one of the declared external
 * services (a journaled step, sent with a stable idempotency key):
 * - `OrderIntake`: reserve stock, then price the order (the same two calls as the
 *   `order-intake` flow, in TypeScript);
 * - `Fulfilment`: reserve, price, book shipping, notify the customer; its stage readable while
 *   it runs;
 * - `Platform.quote`: one pricing call in the region asked for.
 */
import { shared, service, TerminalError, workflow, type Context } from '../../src/index.js';
import { use } from '../../src/integrations/index.js';
import { REGIONS, services, type ServiceName } from './catalog.js';

/** What an order names. */
export interface OrderInput {
  orderId: string;
  sku: string;
  qty: number;
  customer?: string;
  region?: string;
}

interface Reservation {
  reservationId: string;
}
interface Quote {
  total: number;
  unitPrice: number;
}

function regionOf(input: { region?: string }): (typeof REGIONS)[number] {
  const region = input.region ?? 'eu-1';
  if (!(REGIONS as readonly string[]).includes(region))
    throw new TerminalError(`unknown region "${region}"; one of ${REGIONS.join(', ')}`, {
      code: 'unknown_region',
      status: 400,
    });
  return region as (typeof REGIONS)[number];
}

const svc = (kind: string, region: string) => services[`${kind}-${region}` as ServiceName];

async function reserveAndQuote(ctx: Context, input: OrderInput) {
  const region = regionOf(input);
  const params = { sku: input.sku, qty: input.qty };
  const reservation = await use(ctx, svc('inventory', region)).reserve<Reservation>(params);
  const quote = await use(ctx, svc('pricing', region)).quote<Quote>(params);
  return { region, reservation, quote };
}

/** Two API steps: reserve, then price. */
export const OrderIntake = workflow({
  name: 'OrderIntake',
  run: async (ctx, input: OrderInput) => {
    const { reservation, quote } = await reserveAndQuote(ctx, input);
    return { orderId: ctx.key, reservationId: reservation.reservationId, total: quote.total };
  },
});

/** Four API steps; `status` reads how far it got. */
export const Fulfilment = workflow({
  name: 'Fulfilment',
  run: async (ctx, input: OrderInput) => {
    const { region, reservation, quote } = await reserveAndQuote(ctx, input);
    ctx.set('stage', 'priced');
    const shipment = await use(ctx, svc('shipping', region)).reserve<Reservation>({
      sku: input.sku,
      qty: input.qty,
    });
    ctx.set('stage', 'shipping booked');
    await use(ctx, svc('notify', region)).send({ to: input.customer ?? 'customer' });
    ctx.set('stage', 'done');
    return {
      orderId: ctx.key,
      reservationId: reservation.reservationId,
      shipmentId: shipment.reservationId,
      total: quote.total,
    };
  },
  handlers: {
    status: shared(async (ctx) => ({
      orderId: ctx.key,
      stage: (await ctx.get<string>('stage')) ?? 'started',
    })),
  },
});

/** One pricing call. */
export const Platform = service({
  name: 'Platform',
  handlers: {
    quote: async (ctx, input: { sku: string; qty: number; region?: string }) => {
      const region = regionOf(input);
      return use(ctx, svc('pricing', region)).quote<Quote & { service: string }>({
        sku: input.sku,
        qty: input.qty,
      });
    },
  },
});
