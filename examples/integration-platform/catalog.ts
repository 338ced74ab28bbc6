/**
 * The platform's external services: 12 kinds of service in 10 regions, 120 declared
 * integrations made by a loop, not written out. Each calls `PLATFORM_SERVICES_URL` (one local
 * fake server answers them all, see fake.ts) and runs against its in-process mock until that
 * variable is set, as every example's integrations do.
 */
import { env, integration, type Integration } from '../../src/integrations/index.js';
import type { MockHandler } from '../../src/integrations/mocks.js';
import { answer } from './fake.js';

/** The kinds of external service. */
export const KINDS = [
  'inventory',
  'pricing',
  'shipping',
  'tax',
  'fraud',
  'crm',
  'payments',
  'loyalty',
  'notify',
  'catalog',
  'warehouse',
  'billing',
] as const;

/** The regions each kind is deployed in. */
export const REGIONS = [
  'eu-1',
  'eu-2',
  'us-1',
  'us-2',
  'us-3',
  'ap-1',
  'ap-2',
  'sa-1',
  'af-1',
  'me-1',
] as const;

/** A service's name: `{kind}-{region}` (`pricing-eu-1`). */
export type ServiceName = `${(typeof KINDS)[number]}-${(typeof REGIONS)[number]}`;

/** Every service name, kind by kind. */
export const SERVICE_NAMES: readonly ServiceName[] = KINDS.flatMap((k) =>
  REGIONS.map((r): ServiceName => `${k}-${r}`),
);

/** The operations every service offers. */
export type Operation = 'reserve' | 'quote' | 'send' | 'health';

/** The mock of one service: the fake server's answers, in-process. */
const mockOf =
  (name: string): MockHandler =>
  (req) => {
    const body = answer(name, req.operation, req.body);
    return body === undefined ? { status: 404, body: { error: 'unknown operation' } } : { body };
  };

/** One declared service. */
function declare(name: ServiceName): Integration<Operation> {
  return integration({
    name,
    baseUrl: env('PLATFORM_SERVICES_URL'),
    timeout: '5s',
    // Every call carries the step's idempotency key: a retried call is the same call.
    idempotency: true,
    circuitBreaker: { failures: 5, window: '30s', reset: '30s' },
    // Probed every 30 s (120 services: 4 probes a second), shown on /integrations/status.
    healthCheckPath: `/${name}/health`,
    healthCheckInterval: '30s',
    operations: {
      reserve: { method: 'POST', path: `/${name}/reserve` },
      quote: { method: 'POST', path: `/${name}/quote` },
      send: { method: 'POST', path: `/${name}/send` },
      health: { method: 'GET', path: `/${name}/health` },
    },
    mock: mockOf(name),
  });
}

/** The 120 declared services, by name. */
export const services: Readonly<Record<ServiceName, Integration<Operation>>> = Object.freeze(
  Object.fromEntries(SERVICE_NAMES.map((n) => [n, declare(n)])) as Record<
    ServiceName,
    Integration<Operation>
  >,
);

/** The same, as a list (for `startApp({ integrations })`). */
export const serviceList: readonly Integration[] = Object.values(services);
