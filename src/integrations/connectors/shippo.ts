/**
 * Shippo: shipping rates, labels and tracking (JSON, `Authorization: ShippoToken <token>`).
 */
import { apiKey } from '../declarations/auth/config.js';
import { integration } from '../declarations/config.js';
import { env, type Secret } from '../declarations/secrets.js';
import {
  AMBIGUOUS_SERVER_ERRORS,
  withOverrides,
  type Connector,
  type ConnectorOptions,
  type OperationTypes,
} from './common.js';
import { shippoMock } from './shippo.mock.js';
import type {
  ShippoCreateShipmentParams,
  ShippoCreateTransactionParams,
  ShippoGetTrackingParams,
  ShippoGetTransactionParams,
  ShippoRegisterTrackingParams,
  ShippoShipment,
  ShippoTrack,
  ShippoTransaction,
} from './shippo.types.js';

export type * from './shippo.types.js';

/** The operations of {@link shippo}, with their parameter and result types. */
export interface ShippoOperations {
  create_shipment: OperationTypes<ShippoCreateShipmentParams, ShippoShipment>;
  /** Buys a label. */
  create_transaction: OperationTypes<ShippoCreateTransactionParams, ShippoTransaction>;
  get_transaction: OperationTypes<ShippoGetTransactionParams, ShippoTransaction>;
  get_tracking: OperationTypes<ShippoGetTrackingParams, ShippoTrack>;
  /** Registers a tracking webhook (Shippo then posts `track_updated` events). */
  register_tracking: OperationTypes<ShippoRegisterTrackingParams, ShippoTrack>;
}

/** Options of {@link shippo}. */
export interface ShippoOptions extends ConnectorOptions {
  /** `shippo_live_…` or `shippo_test_…`. Default `env('SHIPPO_API_TOKEN')`. */
  apiToken?: Secret;
}

// Every field Shippo accepts, so the connector can add `async: false` and still pass the rest.
const SHIPMENT_FIELDS = [
  'address_from',
  'address_to',
  'parcels',
  'address_return',
  'shipment_date',
  'extra',
  'customs_declaration',
  'carrier_accounts',
  'metadata',
] as const;
const TRANSACTION_FIELDS = [
  'rate',
  'shipment',
  'carrier_account',
  'servicelevel_token',
  'label_file_type',
  'metadata',
] as const;

/** A body template passing each field through (left out when not given), plus fixed values. */
function template(
  fields: readonly string[],
  fixed: Record<string, unknown>,
): Record<string, unknown> {
  return { ...Object.fromEntries(fields.map((f) => [f, `{${f}}`])), ...fixed };
}

/**
 * Shippo, ready to call: `create_shipment` (rates), `create_transaction` (buy a label),
 * `get_transaction`, `get_tracking`, `register_tracking`.
 *
 * Defaults: base URL `https://api.goshippo.com`; `Authorization: ShippoToken $SHIPPO_API_TOKEN`;
 * `Shippo-API-Version: 2018-02-08`; rates and labels requested synchronously (`async: false`);
 * 30s timeout; 3 retries from 1s; a breaker opening after 5 failures in a minute for 30s. Shippo
 * has no idempotency keys and a label costs money, so a `create_transaction` that got 500, 502 or
 * 504 is not retried (check with `get_transaction` or the dashboard); 429 and 503 are.
 *
 * Mock: shipments with three rates (USPS Ground Advantage, USPS Priority Mail, UPS Next Day
 * Air); labels with a `label_url` and a tracking number; Shippo's test tracking numbers
 * (`SHIPPO_DELIVERED`, ... with carrier `shippo`); destination `zip: '00000'` gets no rates, a
 * rate id starting with `missing` 400, one starting with `error` a transaction with
 * `status: 'ERROR'`.
 *
 * @example
 * ```ts
 * export const shipping = shippo();
 *
 * const shipment = await use(ctx, shipping).create_shipment({ address_from, address_to, parcels: [parcel] });
 * const cheapest = shipment.rates.find((r) => r.attributes.includes('CHEAPEST'))!;
 * const label = await use(ctx, shipping).create_transaction({ rate: cheapest.object_id, label_file_type: 'PDF' });
 * if (label.status !== 'SUCCESS') throw new TerminalError(label.messages.map((m) => m.text).join('; '));
 * label.tracking_number; label.label_url;
 * ```
 */
export function shippo(options: ShippoOptions = {}): Connector<ShippoOperations> {
  return integration(
    withOverrides(
      {
        name: 'Shippo',
        baseUrl: 'https://api.goshippo.com',
        auth: apiKey(options.apiToken ?? env('SHIPPO_API_TOKEN'), {
          header: 'Authorization',
          prefix: 'ShippoToken ',
        }),
        headers: { 'Shippo-API-Version': '2018-02-08' },
        timeout: '30s',
        retry: { maxAttempts: 4, initialInterval: '1s', maxInterval: '30s' },
        circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
        mock: shippoMock(),
        // Shippo's paths end with a slash, as in its documentation.
        operations: {
          create_shipment: {
            method: 'POST',
            path: '/shipments/',
            body: template(SHIPMENT_FIELDS, { async: false }),
          },
          create_transaction: {
            method: 'POST',
            path: '/transactions/',
            body: template(TRANSACTION_FIELDS, { async: false }),
            errors: AMBIGUOUS_SERVER_ERRORS,
          },
          get_transaction: { method: 'GET', path: '/transactions/{transaction_id}' },
          // Polled for progress, so never cached.
          get_tracking: {
            method: 'GET',
            path: '/tracks/{carrier}/{tracking_number}',
            cache: false,
          },
          register_tracking: { method: 'POST', path: '/tracks/' },
        },
      },
      options,
    ),
  );
}
