/**
 * Seed 004, exercise 2.2: a saga expressed as a declarative workflow with compensations. The
 * saga is data (`order-saga.yaml` in this directory), registered at start with
 * `startApp({ flowsDir: FLOWS_DIR })` and run as a durable workflow by `POST
 * /flows/order-saga/run`; the app must also declare the three `integrations` its steps call.
 *
 * The integrations call `DECLARATIVE_SAGA_SHOP_URL` when it is set (the tests point it at a
 * local fake shop) and answer from their in-process mocks otherwise.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, integration, type Integration } from '../../src/integrations/index.js';
import type { MockHandler } from '../../src/integrations/mocks.js';

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * The directory of the saga's definition (`order-saga.yaml`): this one, or, compiled into
 * `dist/examples/declarative-saga/` (`npm start`; tsc copies no YAML), the source directory.
 */
export const FLOWS_DIR = existsSync(join(HERE, 'order-saga.yaml'))
  ? HERE
  : fileURLToPath(new URL('../../../examples/declarative-saga/', import.meta.url));

const BASE_URL = env('DECLARATIVE_SAGA_SHOP_URL');

/**
 * The mock the integrations answer from without `DECLARATIVE_SAGA_SHOP_URL`: deterministic. A
 * charge over 1000 is declined (402); shipping to `"nowhere"` fails (500), so both compensation
 * paths can be tried with curl.
 */
export const sagaShopMock: MockHandler = (req) => {
  const b = (req.body ?? {}) as Record<string, unknown>;
  const order = typeof b.orderId === 'string' ? b.orderId : 'unknown';
  switch (`${req.integration}.${req.operation}`) {
    case 'SagaInventory.reserve':
      return { body: { reservationId: `res-${order}`, sku: b.sku, qty: b.qty } };
    case 'SagaInventory.release':
      return { body: { released: b.reservationId ?? null } };
    case 'SagaPayments.charge':
      if (typeof b.amount === 'number' && b.amount > 1000)
        return { status: 402, body: { error: 'card_declined' } };
      return { body: { chargeId: `ch-${order}`, amount: b.amount, status: 'paid' } };
    case 'SagaPayments.refund':
      return { body: { refunded: `ch-${order}` } };
    case 'SagaShipping.ship':
      if (b.address === 'nowhere') return { status: 500, body: { error: 'no route to nowhere' } };
      return { body: { trackingNumber: `TRK-${order}`, service: b.service } };
    default:
      return { status: 404, body: { error: 'no such operation' } };
  }
};

// No retries of their own: the flow's `onError` decides what is retried, durably.
export const SagaInventory = integration({
  name: 'SagaInventory',
  baseUrl: BASE_URL,
  retry: false,
  mock: sagaShopMock,
  operations: {
    reserve: { method: 'POST', path: '/inventory/reserve' },
    release: { method: 'POST', path: '/inventory/release' },
  },
});

export const SagaPayments = integration({
  name: 'SagaPayments',
  baseUrl: BASE_URL,
  retry: false,
  mock: sagaShopMock,
  operations: {
    charge: { method: 'POST', path: '/payments/charge' },
    refund: { method: 'POST', path: '/payments/refund' },
  },
});

export const SagaShipping = integration({
  name: 'SagaShipping',
  baseUrl: BASE_URL,
  retry: false,
  mock: sagaShopMock,
  operations: { ship: { method: 'POST', path: '/shipping/ship' } },
});

/** The integrations the saga's steps call. */
export const integrations: Integration[] = [SagaInventory, SagaPayments, SagaShipping];
