/**
 * The platform's declarative workflow, as data (it could as well be a JSON or YAML file):
 * `order-intake` reserves stock and prices the order, two `api` steps on declared services.
 */
import type { FlowDefinition } from '../../src/flows/index.js';

/** Reserve, then price; the result's `data` is the order's summary. */
export const orderIntake: FlowDefinition = {
  name: 'order-intake',
  description: 'Reserve stock, then price the order (two external services).',
  steps: [
    {
      id: 'reserve',
      type: 'api',
      integration: 'inventory-eu-1',
      operation: 'reserve',
      params: { sku: '{{ input.sku }}', qty: '{{ input.qty }}' },
      storeAs: 'reservation',
      onError: 'retry',
      retries: 2,
    },
    {
      id: 'quote',
      type: 'api',
      integration: 'pricing-eu-1',
      operation: 'quote',
      params: { sku: '{{ input.sku }}', qty: '{{ input.qty }}' },
      storeAs: 'quote',
    },
  ],
  output: {
    orderId: '{{ input.orderId }}',
    reservationId: '{{ reservation.reservationId }}',
    total: '{{ quote.total }}',
  },
};

/** Every flow the platform registers. */
export const flowDefinitions: readonly FlowDefinition[] = [orderIntake];
