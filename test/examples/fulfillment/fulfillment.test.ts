/**
 * Seed 000, exercise 6 (distributed order fulfillment), criterion by criterion: the complete
 * workflow, all services integrated, webhooks for the async steps (signed, over HTTP, through
 * the ingress receivers), compensating actions at every failure point in reverse order,
 * failure recovery (retries with backoff; the crash is crash.test.ts) and status tracking.
 */
import { describe, expect, it } from 'vitest';
import type { Pickup } from '../../../examples/fulfillment/carrier.js';
import { webhookSecrets } from '../../../examples/fulfillment/index.js';
import type { Inventory } from '../../../examples/fulfillment/inventory.js';
import { smsMock, type SentMessage } from '../../../examples/fulfillment/notifications.js';
import {
  PACKING_TIMEOUT,
  PICKUP_TIMEOUT,
  STAGES,
  type FulfillmentRequest,
} from '../../../examples/fulfillment/orchestrator.js';
import type { PickTicket } from '../../../examples/fulfillment/warehouse.js';
import type { RunResult } from '../../../examples/orchestration-kit/status.js';
import { useRig, type Rig } from './support.js';

const rig = useRig();

const ORDER: FulfillmentRequest = {
  customer: { name: 'Ada', phone: '+15558675310' },
  items: [
    { sku: 'SKU-1', quantity: 2 },
    { sku: 'SKU-3', quantity: 1 },
  ],
};

async function start(r: Rig, orderId: string, order: FulfillmentRequest = ORDER): Promise<string> {
  const sent = await r.post(`/FulfillmentOrchestrator/${orderId}/run/send`, order);
  expect(sent.status).toBe(202);
  return sent.json.invocationId as string;
}

/** Moves the fake clock 1 s at a time (retries back off on it) until `cond` holds. */
async function drive(r: Rig, cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await cond()) return;
    await r.clock.advance('1s');
  }
  throw new Error(`the clock moved 300 s and still not: ${what}`);
}

const driveToStage = (r: Rig, orderId: string, stage: string) =>
  drive(r, async () => (await r.status(orderId)).stage === stage, `${orderId} at ${stage}`);

const waitingAt = (r: Rig, orderId: string, stage: string) =>
  r.untilStatus(
    orderId,
    (s) => s.stage === stage && s.state === 'waiting',
    `${orderId} waiting at ${stage}`,
  );

const packed = (r: Rig, orderId: string, id?: string) =>
  r.webhook(
    'warehouse',
    'pick_ticket.packed',
    { pick_ticket_id: `PT-${orderId}`, packages: [{ weightGrams: 1200 }, { weightGrams: 300 }] },
    id ? { id } : {},
  );
const pickedUp = (r: Rig, orderId: string) =>
  r.webhook('carrier', 'pickup.completed', { pickup_id: `PU-${orderId}` });

const stock = async (r: Rig) => (await r.post<Inventory>('/FulfillmentStock/main/stock')).json;
const ticket = async (r: Rig, orderId: string) =>
  (await r.post<PickTicket>(`/FulfillmentPacking/PT-${orderId}/ticket`)).json;
const pickup = async (r: Rig, orderId: string) =>
  (await r.post<Pickup>(`/FulfillmentCarrier/PU-${orderId}/pickup`)).json;
const outbox = async (r: Rig, orderId: string) =>
  (await r.post<SentMessage[]>(`/FulfillmentNotifications/${orderId}/outbox`)).json;
const result = (r: Rig, id: string) =>
  r.engine.attach(id) as Promise<RunResult<Record<string, unknown>>>;

describe('FulfillmentOrchestrator: the complete flow', () => {
  it('reserves, opens a ticket, waits for the signed packed webhook, books the carrier, waits for the pickup webhook, texts the tracking number; status at each stage', async () => {
    const r = await rig();
    expect((await r.status('o-1')).stage).toBe('not_started');
    const id = await start(r, 'o-1');

    // Waiting for the warehouse: stock reserved, ticket open, deadline 24 h out.
    const atPacking = await waitingAt(r, 'o-1', 'pick_ticket_created');
    expect(atPacking.stages.map((s) => s.stage)).toEqual([
      'received',
      'inventory_reserved',
      'pick_ticket_created',
    ]);
    expect(atPacking.currentStep).toBe('wait for packing');
    expect(atPacking.waitingFor?.what).toContain('PT-o-1');
    expect(atPacking.waitingFor?.deadline).toBe(new Date(r.clock.now() + 86_400_000).toISOString());
    // Only a signed webhook can complete the wait: the awakeable id is shown nowhere.
    expect(atPacking.waitingFor?.awakeableId).toBeUndefined();
    expect(JSON.stringify(await ticket(r, 'o-1'))).not.toMatch(/awakeable|sign_/i);
    expect((await stock(r)).stock['SKU-1']).toEqual({ onHand: 100, reserved: 2 });
    expect((await stock(r)).reservations['o-1']?.status).toBe('reserved');
    expect((await ticket(r, 'o-1')).status).toBe('open');

    // A webhook with a wrong signature is refused and changes nothing.
    const forged = await r.webhook(
      'warehouse',
      'pick_ticket.packed',
      { pick_ticket_id: 'PT-o-1' },
      { secret: 'whsec_' + Buffer.from('not the warehouse secret!').toString('base64') },
    );
    expect(forged.status).toBe(401);
    expect(forged.json.code).toBe('invalid_signature');
    // A carrier event signed with the warehouse's secret is refused as well.
    const crossed = await r.webhook(
      'carrier',
      'pickup.completed',
      { pickup_id: 'PU-o-1' },
      {
        secret: webhookSecrets({}).warehouse,
      },
    );
    expect(crossed.status).toBe(401);
    expect((await ticket(r, 'o-1')).status).toBe('open');

    // The warehouse packs.
    const hook = await packed(r, 'o-1', 'msg_packed_o1');
    expect(hook.status).toBe(200);
    expect(hook.json.events[0].status).toBe('accepted');
    const atPickup = await waitingAt(r, 'o-1', 'pickup_scheduled');
    expect(atPickup.currentStep).toBe('wait for carrier pickup');
    expect(atPickup.waitingFor?.what).toContain('PU-o-1');
    expect((await ticket(r, 'o-1')).status).toBe('packed');
    const booked = await pickup(r, 'o-1');
    expect(booked.status).toBe('scheduled');
    expect(booked.weightGrams).toBe(1500); // read from the pick ticket (object-to-object)
    expect(booked.trackingNumber).toMatch(/^1Z[0-9A-F]{16}$/);
    // The warehouse sends the same event again: a duplicate, nothing happens.
    const again = await packed(r, 'o-1', 'msg_packed_o1');
    expect(again.status).toBe(200);
    expect(again.json.events[0].status).toBe('duplicate');

    // The carrier collects the parcel.
    expect((await pickedUp(r, 'o-1')).json.events[0].status).toBe('accepted');
    const done = await result(r, id);
    expect(done).toMatchObject({
      status: 'completed',
      orderId: 'o-1',
      pickTicketId: 'PT-o-1',
      pickupId: 'PU-o-1',
      carrier: 'UPS',
      trackingNumber: booked.trackingNumber,
      notified: true,
    });
    const final = await r.status('o-1');
    expect(final.stage).toBe('completed');
    expect(final.state).toBe('completed');
    expect(final.stages.map((s) => s.stage)).toEqual([...STAGES]);
    const completedSteps = final.history.filter((h) => h.event === 'completed').map((h) => h.step);
    expect(completedSteps).toEqual([
      'reserve inventory',
      'create pick ticket',
      'wait for packing',
      'schedule carrier pickup',
      'wait for carrier pickup',
      'send tracking notification',
      'run',
    ]);

    // One SMS with the tracking number, journaled in the outbox and seen by the Twilio mock.
    const sent = await outbox(r, 'o-1');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.to).toBe('+15558675310');
    expect(sent[0]!.body).toContain(booked.trackingNumber);
    expect(done).toMatchObject({ messageSid: sent[0]!.sid });
    const seen = smsMock.requests.filter((q) => JSON.stringify(q).includes(booked.trackingNumber));
    expect(seen).toHaveLength(1);
    expect((await pickup(r, 'o-1')).status).toBe('picked_up');
    expect((await stock(r)).reservations['o-1']?.status).toBe('reserved');
  });

  it('retries every service with backoff through transient failures, and says so in the history', async () => {
    const r = await rig();
    const flaky = {
      inventory: 'flaky',
      warehouse: 'flaky',
      carrier: 'flaky',
      notification: 'flaky',
    } as const;
    const id = await start(r, 'o-flaky', { ...ORDER, simulate: flaky });
    await driveToStage(r, 'o-flaky', 'pick_ticket_created');
    expect((await packed(r, 'o-flaky')).status).toBe(200);
    await driveToStage(r, 'o-flaky', 'pickup_scheduled');
    expect((await pickedUp(r, 'o-flaky')).status).toBe(200);
    await drive(r, async () => (await r.status('o-flaky')).stage === 'completed', 'completed');
    expect(await result(r, id)).toMatchObject({ status: 'completed', notified: true });
    const notes = (await r.status('o-flaky')).history
      .filter((h) => h.event === 'note')
      .map((h) => h.detail);
    expect(notes).toEqual([
      'reserve inventory succeeded on attempt 3',
      'create pick ticket succeeded on attempt 3',
      'schedule carrier pickup succeeded on attempt 3',
      'send tracking notification succeeded on attempt 3',
    ]);
    expect(await outbox(r, 'o-flaky')).toHaveLength(1);
    expect(
      (await pickup(r, 'o-flaky')).history.filter((h) => h.status === 'scheduled'),
    ).toHaveLength(1);
  });
});

/** How far a failing order got, and what must have been undone. */
interface FailureCase {
  name: string;
  order?: Partial<FulfillmentRequest>;
  /** Drives the order to its failure (the default: the order fails by itself). */
  fail?: (r: Rig, orderId: string) => Promise<void>;
  failedStep: string;
  code: string;
  compensated: string[];
}

const toPacking = (r: Rig, orderId: string) => driveToStage(r, orderId, 'pick_ticket_created');
const toPickup = async (r: Rig, orderId: string) => {
  await toPacking(r, orderId);
  expect((await packed(r, orderId)).status).toBe(200);
  await driveToStage(r, orderId, 'pickup_scheduled');
};

const CASES: FailureCase[] = [
  {
    name: 'out of stock',
    order: {
      items: [
        { sku: 'SKU-1', quantity: 1 },
        { sku: 'SKU-SOLD-OUT', quantity: 1 },
      ],
    },
    failedStep: 'reserve inventory',
    code: 'out_of_stock',
    compensated: [],
  },
  {
    name: 'inventory refuses',
    order: { simulate: { inventory: 'fail' } },
    failedStep: 'reserve inventory',
    code: 'inventory_unavailable',
    compensated: [],
  },
  {
    name: 'inventory down (retries run out)',
    order: { simulate: { inventory: 'down' } },
    failedStep: 'reserve inventory',
    code: 'retries_exhausted',
    compensated: [],
  },
  {
    name: 'pick ticket refused',
    order: { simulate: { warehouse: 'fail' } },
    failedStep: 'create pick ticket',
    code: 'warehouse_refused',
    compensated: ['release inventory'],
  },
  {
    name: 'warehouse down (retries run out)',
    order: { simulate: { warehouse: 'down' } },
    failedStep: 'create pick ticket',
    code: 'retries_exhausted',
    compensated: ['release inventory'],
  },
  {
    name: `not packed within ${PACKING_TIMEOUT}`,
    fail: async (r, orderId) => {
      await toPacking(r, orderId);
      await r.clock.advance('23h');
      expect((await r.status(orderId)).state).toBe('waiting'); // still waiting at 23 h
      await r.clock.advance('1h');
    },
    failedStep: 'wait for packing',
    code: 'packing_timeout',
    compensated: ['cancel pick ticket', 'release inventory'],
  },
  {
    name: 'warehouse reports an exception (webhook)',
    fail: async (r, orderId) => {
      await toPacking(r, orderId);
      const hook = await r.webhook('warehouse', 'pick_ticket.exception', {
        pick_ticket_id: `PT-${orderId}`,
        reason: 'damaged item',
      });
      expect(hook.status).toBe(200);
    },
    failedStep: 'wait for packing',
    code: 'packing_failed',
    compensated: ['cancel pick ticket', 'release inventory'],
  },
  {
    name: 'carrier refuses the pickup',
    order: { simulate: { carrier: 'fail' } },
    fail: async (r, orderId) => {
      await toPacking(r, orderId);
      expect((await packed(r, orderId)).status).toBe(200);
    },
    failedStep: 'schedule carrier pickup',
    code: 'no_carrier_capacity',
    compensated: ['cancel pick ticket', 'release inventory'],
  },
  {
    name: `not picked up within ${PICKUP_TIMEOUT}`,
    fail: async (r, orderId) => {
      await toPickup(r, orderId);
      await r.clock.advance('47h');
      expect((await r.status(orderId)).state).toBe('waiting'); // still waiting at 47 h
      await r.clock.advance('1h');
    },
    failedStep: 'wait for carrier pickup',
    code: 'pickup_timeout',
    compensated: ['cancel carrier pickup', 'cancel pick ticket', 'release inventory'],
  },
  {
    name: 'carrier reports a failed pickup (webhook)',
    fail: async (r, orderId) => {
      await toPickup(r, orderId);
      const hook = await r.webhook('carrier', 'pickup.failed', {
        pickup_id: `PU-${orderId}`,
        reason: 'dock closed',
      });
      expect(hook.status).toBe(200);
    },
    failedStep: 'wait for carrier pickup',
    code: 'pickup_failed',
    compensated: ['cancel carrier pickup', 'cancel pick ticket', 'release inventory'],
  },
];

describe('FulfillmentOrchestrator: every failure point compensates what was done, in reverse order', () => {
  it.each(CASES)('$name', async (c) => {
    const r = await rig();
    const orderId = 'o-fail';
    const id = await start(r, orderId, { ...ORDER, ...c.order });
    if (c.fail) await c.fail(r, orderId);
    let outcome: RunResult<Record<string, unknown>> | undefined;
    void result(r, id).then((o) => (outcome = o));
    await drive(r, async () => outcome !== undefined, 'the order to end');
    expect(outcome).toMatchObject({
      status: 'compensated',
      failedStep: c.failedStep,
      compensated: c.compensated,
    });
    expect(outcome).toMatchObject({ error: { code: c.code } });

    // The status: failed at that step, then the undos in the order they ran.
    const status = await r.status(orderId);
    expect(status.stage).toBe('compensated');
    expect(status.state).toBe('compensated');
    expect(status.failure?.step).toBe(c.failedStep);
    const undone = status.history
      .filter((h) => h.event === 'compensated' && h.step !== 'run')
      .map((h) => h.step);
    expect(undone).toEqual(c.compensated);

    // The services' own state: nothing left reserved, open or booked.
    const inv = await stock(r);
    expect(Object.values(inv.stock).every((l) => l.reserved === 0)).toBe(true);
    const reserved = c.compensated.includes('release inventory');
    expect(inv.reservations[orderId]?.status).toBe(reserved ? 'released' : undefined);
    if (c.compensated.includes('cancel pick ticket')) {
      expect((await ticket(r, orderId)).status).toBe('cancelled');
    }
    if (c.compensated.includes('cancel carrier pickup')) {
      expect((await pickup(r, orderId)).status).toBe('cancelled');
    }
    expect(await outbox(r, orderId)).toEqual([]);
  });

  it('ignores a packed webhook that arrives after the order gave up waiting', async () => {
    const r = await rig();
    const id = await start(r, 'o-late');
    await toPacking(r, 'o-late');
    await r.clock.advance(PACKING_TIMEOUT);
    expect((await result(r, id)).status).toBe('compensated');
    const late = await packed(r, 'o-late');
    expect(late.status).toBe(200);
    expect(late.json.events[0].status).toBe('accepted');
    const handled = await r.engine.attach(late.json.events[0].invocationId);
    expect(handled).toEqual({ applied: false, reason: 'pick ticket PT-o-late is cancelled' });
    expect((await ticket(r, 'o-late')).status).toBe('cancelled');
  });

  it('a failed tracking SMS does not undo a shipped order', async () => {
    const r = await rig();
    // Twilio's magic number for an invalid "To": the mock answers 400 (code 21211).
    const id = await start(r, 'o-sms', {
      ...ORDER,
      customer: { name: 'Bob', phone: '+15005550001' },
    });
    await toPickup(r, 'o-sms');
    expect((await pickedUp(r, 'o-sms')).status).toBe(200);
    let outcome: RunResult<Record<string, unknown>> | undefined;
    void result(r, id).then((o) => (outcome = o));
    await drive(r, async () => outcome !== undefined, 'the order to end');
    expect(outcome).toMatchObject({ status: 'completed', notified: false });
    const status = await r.status('o-sms');
    expect(status.stage).toBe('completed');
    expect(status.history.some((h) => h.event === 'compensated')).toBe(false);
    expect((await pickup(r, 'o-sms')).status).toBe('picked_up');
    expect(await outbox(r, 'o-sms')).toEqual([]);
  });

  it('refuses an invalid order with 400 and starts nothing', async () => {
    const r = await rig();
    const res = await r.post('/FulfillmentOrchestrator/o-bad/run', { ...ORDER, items: [] });
    expect(res.status).toBe(400);
    expect((await stock(r)).reservations).toEqual({});
  });
});
