/**
 * Shippo in-process: shipments with three rates, label purchases with a tracking number and a
 * label URL, and tracking. Tracking follows Shippo's test mode: carrier `shippo` with
 * `SHIPPO_PRE_TRANSIT`, `SHIPPO_TRANSIT`, `SHIPPO_DELIVERED`, `SHIPPO_RETURNED`, `SHIPPO_FAILURE`
 * or `SHIPPO_UNKNOWN` reports that state; any other number advances `PRE_TRANSIT` → `TRANSIT` →
 * `DELIVERED`, one step per request.
 *
 * Failures on demand: a destination `zip: '00000'` gets no rates (invalid address); a rate id
 * starting with `missing` → 400; one starting with `error` → a transaction with `status: 'ERROR'`
 * (Shippo answers 201 and puts the carrier's reason in `messages`).
 */
import type { MockRequest, MockResponse } from '../declarations/mock.js';
import {
  bodyObject,
  connectorMock,
  hexId,
  isMissing,
  json,
  mockTimestamp,
  numberFrom,
  routes,
  stableJson,
  type ConnectorMock,
} from './mock-kit.js';
import type {
  ShippoAddress,
  ShippoParcel,
  ShippoRate,
  ShippoShipment,
  ShippoTrack,
  ShippoTrackingState,
  ShippoTrackingStatus,
  ShippoTransaction,
} from './shippo.types.js';

const OWNER = 'keel-mock@example.com';

/** Shippo's test tracking numbers (carrier `shippo`) and the state each reports. */
export const SHIPPO_TEST_TRACKING: Readonly<Record<string, ShippoTrackingState>> = {
  SHIPPO_PRE_TRANSIT: 'PRE_TRANSIT',
  SHIPPO_TRANSIT: 'TRANSIT',
  SHIPPO_DELIVERED: 'DELIVERED',
  SHIPPO_RETURNED: 'RETURNED',
  SHIPPO_FAILURE: 'FAILURE',
  SHIPPO_UNKNOWN: 'UNKNOWN',
};

const SERVICES = [
  {
    provider: 'USPS',
    name: 'Ground Advantage',
    token: 'usps_ground_advantage',
    days: 5,
    base: 5.2,
  },
  { provider: 'USPS', name: 'Priority Mail', token: 'usps_priority', days: 2, base: 8.7 },
  { provider: 'UPS', name: 'Next Day Air', token: 'ups_next_day_air', days: 1, base: 32.4 },
] as const;

/**
 * A Shippo mock with its own state (shipments, transactions, tracking progress).
 *
 * @example
 * ```ts
 * const mock = shippoMock();
 * const shipping = shippo({ mock, mockMode: true });
 * ```
 */
export function shippoMock(): ConnectorMock {
  return connectorMock(makeShippo, (status) =>
    json(
      status,
      {
        detail:
          status >= 500
            ? 'Internal server error (mock failure).'
            : status === 429
              ? 'Request was throttled.'
              : `Mock failure with status ${status}.`,
      },
      status === 429 ? { 'retry-after': '1' } : {},
    ),
  );
}

function makeShippo(): (req: MockRequest) => MockResponse {
  const rates = new Map<string, ShippoRate>();
  const transactions = new Map<string, ShippoTransaction>();
  const polls = new Map<string, number>();

  const createShipment = (req: MockRequest): MockResponse => {
    const p = bodyObject(req.body);
    const required = requiredFields(p, ['address_from', 'address_to', 'parcels']);
    if (required !== undefined) return required;
    const shipment = makeShipment(p, req.headers['idempotency-key'] ?? stableJson(p));
    for (const r of shipment.rates) rates.set(r.object_id, r);
    return json(201, shipment);
  };

  const createTransaction = (req: MockRequest): MockResponse => {
    const p = bodyObject(req.body);
    const seed = req.headers['idempotency-key'] ?? stableJson(p);
    let rate: ShippoRate | undefined;
    if (typeof p.rate === 'string') {
      if (isMissing(p.rate))
        return json(400, { rate: [`Rate with object_id ${p.rate} not found.`] });
      rate = rates.get(p.rate) ?? standInRate(p.rate);
    } else if (typeof p.shipment === 'object' && p.shipment !== null) {
      const required = requiredFields(p, ['carrier_account', 'servicelevel_token']);
      if (required !== undefined) return required;
      const shipment = makeShipment(p.shipment as Record<string, unknown>, seed);
      rate =
        shipment.rates.find((r) => r.servicelevel.token === p.servicelevel_token) ??
        shipment.rates[0];
      if (rate === undefined)
        return json(400, { shipment: ['The destination address is invalid.'] });
    } else {
      return json(400, { rate: ['This field is required.'] });
    }
    const t = makeTransaction(
      rate,
      seed,
      typeof p.metadata === 'string' ? p.metadata : '',
      typeof p.label_file_type === 'string' ? p.label_file_type : 'PDF',
    );
    transactions.set(t.object_id, t);
    return json(201, t);
  };

  const track = (carrier: string, number: string, metadata: string | null): ShippoTrack => {
    const key = `${carrier}/${number}`;
    const n = (polls.get(key) ?? 0) + 1;
    polls.set(key, n);
    const fixed = carrier === 'shippo' ? SHIPPO_TEST_TRACKING[number] : undefined;
    const path: ShippoTrackingState[] = isMissing(number)
      ? ['UNKNOWN']
      : fixed === undefined
        ? (['PRE_TRANSIT', 'TRANSIT', 'DELIVERED'] as const).slice(0, Math.min(n, 3))
        : fixed === 'UNKNOWN' || fixed === 'PRE_TRANSIT'
          ? [fixed]
          : fixed === 'TRANSIT'
            ? ['PRE_TRANSIT', 'TRANSIT']
            : ['PRE_TRANSIT', 'TRANSIT', fixed];
    const history = path.map((s, i) => trackingStatus(key, s, i));
    const place = { city: 'San Francisco', state: 'CA', zip: '94103', country: 'US' };
    return {
      carrier,
      tracking_number: number,
      address_from: place,
      address_to: { city: 'Chicago', state: 'IL', zip: '60601', country: 'US' },
      eta: iso(mockTimestamp('eta', key) + 3 * 86_400),
      original_eta: iso(mockTimestamp('eta', key) + 3 * 86_400),
      servicelevel: { token: 'usps_priority', name: 'Priority Mail' },
      tracking_status: history[history.length - 1] ?? null,
      tracking_history: history,
      transaction: null,
      metadata,
      test: true,
    };
  };

  return routes(
    [
      { method: 'POST', path: '/shipments/', handle: createShipment },
      { method: 'POST', path: '/transactions/', handle: createTransaction },
      {
        method: 'GET',
        path: '/transactions/{id}',
        handle: (_, { id }) => {
          const known = transactions.get(id!);
          if (known !== undefined) return json(200, known);
          // A transaction from before a restart: known by its shape.
          if (!/^[0-9a-f]{32}$/.test(id!)) return json(404, { detail: 'Not found.' });
          return json(200, makeTransaction(standInRate(`rate-${id}`), id!, '', 'PDF', id));
        },
      },
      {
        method: 'GET',
        path: '/tracks/{carrier}/{tracking_number}',
        handle: (_, p) => json(200, track(p.carrier!, p.tracking_number!, null)),
      },
      {
        method: 'POST',
        path: '/tracks/',
        handle: (req) => {
          const p = bodyObject(req.body);
          const required = requiredFields(p, ['carrier', 'tracking_number']);
          if (required !== undefined) return required;
          return json(
            201,
            track(
              String(p.carrier),
              String(p.tracking_number),
              typeof p.metadata === 'string' ? p.metadata : null,
            ),
          );
        },
      },
    ],
    () => json(404, { detail: 'Not found.' }),
  );
}

function makeShipment(p: Record<string, unknown>, seed: string): ShippoShipment {
  const id = hexId(32, 'shipment', seed);
  const created = iso(mockTimestamp('shipment', seed));
  const to = p.address_to as ShippoAddress;
  const parcels = (Array.isArray(p.parcels) ? p.parcels : []) as ShippoParcel[];
  const invalid = String(to?.zip ?? '') === '00000';
  const pounds = parcels.reduce((sum, x) => sum + toPounds(Number(x.weight), x.mass_unit), 0) || 1;
  const offered: ShippoRate[] = invalid
    ? []
    : SERVICES.map((s, i) => {
        const amount = (s.base + pounds * (0.8 + i * 0.6)).toFixed(2);
        return {
          object_id: hexId(32, 'rate', id, s.token),
          object_created: created,
          object_owner: OWNER,
          shipment: id,
          attributes:
            i === 0 ? ['CHEAPEST', 'BESTVALUE'] : i === SERVICES.length - 1 ? ['FASTEST'] : [],
          amount,
          currency: 'USD',
          amount_local: amount,
          currency_local: 'USD',
          provider: s.provider,
          provider_image_75: `https://shippo-static.s3.amazonaws.com/providers/75/${s.provider}.png`,
          servicelevel: { name: s.name, token: s.token, terms: '' },
          estimated_days: s.days,
          duration_terms: `Delivery in ${s.days} business day${s.days === 1 ? '' : 's'}.`,
          carrier_account: hexId(32, 'carrier', s.provider),
          messages: [],
          test: true,
        };
      });
  return {
    object_id: id,
    object_created: created,
    object_updated: created,
    object_owner: OWNER,
    status: 'SUCCESS',
    address_from: p.address_from as ShippoAddress,
    address_to: to,
    parcels,
    shipment_date: typeof p.shipment_date === 'string' ? p.shipment_date : created,
    rates: offered,
    messages: invalid
      ? [{ source: 'USPS', code: 'invalid_address', text: 'The destination address is invalid.' }]
      : [],
    metadata: typeof p.metadata === 'string' ? p.metadata : '',
    test: true,
  };
}

/** A rate the mock did not make itself (made-up, or from before a restart): Priority Mail. */
function standInRate(id: string): ShippoRate {
  const created = iso(mockTimestamp('rate', id));
  return {
    object_id: id,
    object_created: created,
    object_owner: OWNER,
    shipment: hexId(32, 'shipment', id),
    attributes: [],
    amount: '8.70',
    currency: 'USD',
    amount_local: '8.70',
    currency_local: 'USD',
    provider: 'USPS',
    provider_image_75: 'https://shippo-static.s3.amazonaws.com/providers/75/USPS.png',
    servicelevel: { name: 'Priority Mail', token: 'usps_priority', terms: '' },
    estimated_days: 2,
    duration_terms: 'Delivery in 2 business days.',
    carrier_account: hexId(32, 'carrier', 'USPS'),
    messages: [],
    test: true,
  };
}

function makeTransaction(
  rate: ShippoRate,
  seed: string,
  metadata: string,
  fileType: string,
  fixedId?: string,
): ShippoTransaction {
  const id = fixedId ?? hexId(32, 'transaction', seed);
  const created = iso(mockTimestamp('transaction', seed));
  if (rate.object_id.startsWith('error')) {
    return {
      object_id: id,
      object_state: 'INVALID',
      object_created: created,
      object_updated: created,
      object_owner: OWNER,
      status: 'ERROR',
      rate: rate.object_id,
      tracking_number: '',
      tracking_status: 'UNKNOWN',
      tracking_url_provider: '',
      eta: null,
      label_url: '',
      commercial_invoice_url: null,
      messages: [
        {
          source: rate.provider,
          code: 'carrier_error',
          text: 'The carrier rejected the label request (mock failure).',
        },
      ],
      metadata,
      test: true,
    };
  }
  const ups = rate.provider === 'UPS';
  const tracking = ups
    ? `1Z${hexId(16, 'ups', id).toUpperCase()}`
    : `9400${String(numberFrom(1e9, 'a', id)).padStart(9, '0')}${String(numberFrom(1e9, 'b', id)).padStart(9, '0')}`;
  const ext = fileType.startsWith('PNG') ? 'png' : fileType === 'ZPLII' ? 'zpl' : 'pdf';
  return {
    object_id: id,
    object_state: 'VALID',
    object_created: created,
    object_updated: created,
    object_owner: OWNER,
    status: 'SUCCESS',
    rate: rate.object_id,
    tracking_number: tracking,
    tracking_status: 'UNKNOWN',
    tracking_url_provider: ups
      ? `https://www.ups.com/track?tracknum=${tracking}`
      : `https://tools.usps.com/go/TrackConfirmAction_input?origTrackNum=${tracking}`,
    eta: iso(mockTimestamp('transaction', seed) + rate.estimated_days * 86_400),
    label_url: `https://deliver.goshippo.com/${id}.${ext}`,
    commercial_invoice_url: null,
    messages: [],
    metadata,
    test: true,
  };
}

function trackingStatus(
  key: string,
  status: ShippoTrackingState,
  step: number,
): ShippoTrackingStatus {
  const at = iso(mockTimestamp('track', key) + step * 86_400);
  const details: Record<ShippoTrackingState, string> = {
    UNKNOWN: 'The carrier has not received any information about this package yet.',
    PRE_TRANSIT: 'Shipping label created, USPS awaiting item.',
    TRANSIT: 'Arrived at USPS Regional Facility.',
    DELIVERED: 'Your item was delivered in or at the mailbox.',
    RETURNED: 'Your item is being returned to the sender.',
    FAILURE: 'The delivery could not be completed.',
  };
  return {
    object_id: hexId(32, 'status', key, status),
    object_created: at,
    object_updated: at,
    status,
    substatus: null,
    status_details: details[status],
    status_date: at,
    location:
      status === 'UNKNOWN'
        ? null
        : {
            city: step < 2 ? 'San Francisco' : 'Chicago',
            state: step < 2 ? 'CA' : 'IL',
            zip: step < 2 ? '94103' : '60601',
            country: 'US',
          },
  };
}

function requiredFields(p: Record<string, unknown>, fields: string[]): MockResponse | undefined {
  const missing = fields.filter((f) => p[f] === undefined || p[f] === null || p[f] === '');
  if (missing.length === 0) return undefined;
  return json(400, Object.fromEntries(missing.map((f) => [f, ['This field is required.']])));
}

function toPounds(weight: number, unit: string): number {
  if (!Number.isFinite(weight)) return 0;
  return unit === 'kg'
    ? weight * 2.2046
    : unit === 'g'
      ? weight / 453.6
      : unit === 'oz'
        ? weight / 16
        : weight;
}

function iso(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString();
}
