/**
 * The platform's public API: the gateway's routes, as data. Every route needs an API key
 * (`KEEL_GATEWAY_KEYS`, or one made with `POST /gateway/keys` on the admin API) and is limited
 * per key (600 a minute unless the key has its own limit), across every process of the app.
 */
import {
  createGateway,
  type Gateway,
  type GatewayOptions,
  type GatewayRoute,
} from '../../src/gateway/index.js';

/** The routes, served under `/gateway` on the ingress. */
export const routes: readonly GatewayRoute[] = [
  {
    method: 'POST',
    path: '/v1/orders/:id',
    description: 'Reserve and price an order: the order-intake flow (declarative, two API steps).',
    target: { flow: 'order-intake', id: 'path.id' },
    requestMap: {
      orderId: 'path.id',
      sku: { from: 'body.sku', type: 'string', required: true },
      qty: { from: 'body.qty', type: 'integer', required: true },
      customer: 'key.name',
    },
    responseMap: {
      orderId: 'result.data.orderId',
      reservationId: 'result.data.reservationId',
      total: 'result.data.total',
      flowVersion: 'result.version',
      durationMs: 'result.duration',
    },
  },
  {
    method: 'POST',
    path: '/v1/orders-code/:id',
    description: 'The same two API steps as a TypeScript workflow (OrderIntake).',
    target: { service: 'OrderIntake', handler: 'run', key: 'path.id' },
    requestMap: {
      sku: { from: 'body.sku', type: 'string', required: true },
      qty: { from: 'body.qty', type: 'integer', required: true },
      customer: 'key.name',
    },
  },
  {
    method: 'GET',
    path: '/v1/quotes/:sku',
    description: 'Price a SKU in a region (Platform.quote).',
    target: { service: 'Platform', handler: 'quote' },
    requestMap: {
      sku: 'path.sku',
      qty: { from: 'query.qty', type: 'integer', default: 1 },
      region: { from: 'query.region', type: 'string', default: 'eu-1' },
    },
    responseMap: {
      sku: 'result.sku',
      qty: 'result.qty',
      total: 'result.total',
      priced_by: 'result.service',
    },
  },
  {
    method: 'POST',
    path: '/v1/fulfilments/:id',
    description: 'Start a fulfilment (four API steps); answers 202 at once.',
    target: { service: 'Fulfilment', handler: 'run', key: 'path.id', send: true },
    requestMap: {
      sku: { from: 'body.sku', type: 'string', required: true },
      qty: { from: 'body.qty', type: 'integer', required: true },
      region: { from: 'body.region', type: 'string' },
      customer: 'key.name',
    },
  },
  {
    method: 'GET',
    path: '/v1/fulfilments/:id',
    description: "A fulfilment's stage.",
    target: { service: 'Fulfilment', handler: 'status', key: 'path.id' },
  },
];

/**
 * The platform's gateway (`options` override the defaults, e.g. keys in tests).
 *
 * @example
 * ```ts
 * const app = await startApp({ services: definitions, integrations: serviceList, extensions: [platformGateway(), platformFlows()] });
 * ```
 */
export function platformGateway(options: Partial<GatewayOptions> = {}): Gateway {
  return createGateway({ routes, rateLimit: { requests: 600, window: '1m' }, ...options });
}
