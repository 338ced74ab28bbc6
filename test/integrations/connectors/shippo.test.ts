import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHIPPO_TEST_TRACKING, shippoMock } from '../../../src/integrations/mocks.js';
import { shippo, type ShippoCreateShipmentParams } from '../../../src/integrations/index.js';
import { fakeShippo, type Fake } from '../../fakes/providers/index.js';
import { callError, clientOf, FAST_RETRY, mockReq, runtime } from './helpers.js';

const TOKEN = 'shippo_test_keel';

let fake: Fake;
beforeAll(async () => {
  fake = await fakeShippo(TOKEN);
});
afterAll(() => fake.api.close());

const SHIPMENT: ShippoCreateShipmentParams = {
  address_from: {
    name: 'Shop',
    street1: '215 Clayton St.',
    city: 'San Francisco',
    state: 'CA',
    zip: '94117',
    country: 'US',
  },
  address_to: {
    name: 'Ada',
    street1: '965 Mission St',
    city: 'San Francisco',
    state: 'CA',
    zip: '94103',
    country: 'US',
  },
  parcels: [
    { length: '10', width: '8', height: '4', distance_unit: 'in', weight: '2', mass_unit: 'lb' },
  ],
};

function client(name: string) {
  return clientOf(
    runtime({ env: { SHIPPO_API_TOKEN: TOKEN } }),
    shippo({ name, baseUrl: fake.api.url, retry: FAST_RETRY }),
  );
}

describe('shippo connector on the wire', () => {
  it('creates a shipment with ShippoToken auth, JSON, async: false and only the given fields', async () => {
    const shipment = await client('ShippoWire1').create_shipment(SHIPMENT);
    const r = fake.api.last();
    expect(r.method).toBe('POST');
    expect(r.target).toBe('/shipments/');
    expect(r.headers.authorization).toBe(`ShippoToken ${TOKEN}`);
    expect(r.headers['shippo-api-version']).toBe('2018-02-08');
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.text)).toEqual({ ...SHIPMENT, async: false });
    expect(shipment.status).toBe('SUCCESS');
    expect(shipment.rates.map((x) => x.servicelevel.token)).toEqual([
      'usps_ground_advantage',
      'usps_priority',
      'ups_next_day_air',
    ]);
  });

  it('buys a label for a rate: tracking number and label URL; then tracks it', async () => {
    const shipping = client('ShippoWire2');
    const shipment = await shipping.create_shipment(SHIPMENT);
    const cheapest = shipment.rates.find((x) => x.attributes.includes('CHEAPEST'))!;
    const label = await shipping.create_transaction({
      rate: cheapest.object_id,
      label_file_type: 'PDF',
    });
    expect(JSON.parse(fake.api.last().text)).toEqual({
      rate: cheapest.object_id,
      label_file_type: 'PDF',
      async: false,
    });
    expect(label).toMatchObject({
      status: 'SUCCESS',
      object_state: 'VALID',
      rate: cheapest.object_id,
    });
    expect(label.tracking_number).toMatch(/^9400\d{18}$/);
    expect(label.label_url).toBe(`https://deliver.goshippo.com/${label.object_id}.pdf`);

    const again = await shipping.get_transaction({ transaction_id: label.object_id });
    expect(fake.api.last().target).toBe(`/transactions/${label.object_id}`);
    expect(again.tracking_number).toBe(label.tracking_number);

    const track = await shipping.get_tracking({
      carrier: 'shippo',
      tracking_number: 'SHIPPO_DELIVERED',
    });
    expect(fake.api.last().target).toBe('/tracks/shippo/SHIPPO_DELIVERED');
    expect(track.tracking_status?.status).toBe('DELIVERED');
  });

  it('a label purchase that got 500 is not retried (a label costs money); 503 is', async () => {
    let before = fake.api.requests.length;
    fake.mock.failNext(1, 500);
    expect(
      (await callError(client('ShippoWire3').create_transaction({ rate: 'r1' }))).failure.status,
    ).toBe(500);
    expect(fake.api.requests.length - before).toBe(1);
    before = fake.api.requests.length;
    fake.mock.failNext(1, 503);
    await client('ShippoWire4').create_transaction({ rate: 'r1' });
    expect(fake.api.requests.length - before).toBe(2);
  });
});

describe('shippo mock', () => {
  const post = (path: string, body: unknown, mock = shippoMock()) =>
    mock(mockReq('POST', path, { body }));

  it('an invalid destination has no rates; a missing rate is 400; an error rate fails the label', () => {
    const none = post('/shipments/', {
      ...SHIPMENT,
      address_to: { ...SHIPMENT.address_to, zip: '00000' },
    });
    expect(none.body).toMatchObject({ rates: [], messages: [{ code: 'invalid_address' }] });
    expect(post('/transactions/', { rate: 'missing-rate' })).toMatchObject({
      status: 400,
      body: { rate: [expect.any(String)] },
    });
    expect(post('/transactions/', { rate: 'error-rate' })).toMatchObject({
      status: 201,
      body: { status: 'ERROR', messages: [{ code: 'carrier_error' }] },
    });
    expect(post('/shipments/', {})).toMatchObject({
      status: 400,
      body: { address_to: ['This field is required.'] },
    });
  });

  it('buys an instalabel from a shipment, carrier account and service level', () => {
    const res = post('/transactions/', {
      shipment: SHIPMENT,
      carrier_account: 'acct',
      servicelevel_token: 'ups_next_day_air',
    });
    expect(res.body).toMatchObject({
      status: 'SUCCESS',
      tracking_number: expect.stringMatching(/^1Z[0-9A-F]{16}$/),
    });
  });

  it("reports each of Shippo's test tracking numbers' states, and advances others per request", () => {
    const mock = shippoMock();
    for (const [number, state] of Object.entries(SHIPPO_TEST_TRACKING)) {
      const t = mock(mockReq('GET', `/tracks/shippo/${number}`)).body as {
        tracking_status: { status: string };
      };
      expect(t.tracking_status.status, number).toBe(state);
    }
    const states = [1, 2, 3, 4].map(
      () =>
        (
          mock(mockReq('GET', '/tracks/usps/9400111')).body as {
            tracking_status: { status: string };
          }
        ).tracking_status.status,
    );
    expect(states).toEqual(['PRE_TRANSIT', 'TRANSIT', 'DELIVERED', 'DELIVERED']);
  });
});
