import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../core/errors.js';
import { checkEventType, parseEndpointInput, subscribes } from './endpoint-input.js';
import { deliveryId, deliverySortKey, parseDeliveryId, sortKeyBound, sortKeyTime } from './ids.js';
import { parseSince } from './admin.js';

describe('endpoint input', () => {
  it('parses a create and an update, deduplicating events', () => {
    expect(
      parseEndpointInput(
        { url: 'https://x.example/h', events: ['a.b', 'a.b', 'c.*'], name: 'n' },
        'create',
      ),
    ).toEqual({ url: 'https://x.example/h', events: ['a.b', 'c.*'], name: 'n' });
    expect(parseEndpointInput({ is_active: false }, 'update')).toEqual({ is_active: false });
  });

  it('refuses what is not an endpoint with a message naming the field', () => {
    const bad = (body: unknown, mode: 'create' | 'update', msg: RegExp) => {
      expect(() => parseEndpointInput(body, mode)).toThrow(ValidationError);
      expect(() => parseEndpointInput(body, mode)).toThrow(msg);
    };
    bad(null, 'create', /JSON object/);
    bad({}, 'create', /url is required/);
    bad({ url: 1 }, 'create', /url must be a string/);
    bad({ url: 'u', events: 'a' }, 'create', /non-empty array/);
    bad({ url: 'u', events: ['*.a'] }, 'create', /events\[0\]/);
    bad({ name: 7 }, 'update', /name must be a string/);
    bad({ secret: 'x' }, 'update', /unknown field "secret"/);
  });

  it('checks event types', () => {
    expect(checkEventType('invoice.payment_failed')).toBe('invoice.payment_failed');
    for (const t of ['', 'a..b', '.a', 'a b', 'x'.repeat(129), 5])
      expect(() => checkEventType(t)).toThrow(ValidationError);
  });

  it('matches subscriptions: exact, prefix.* and *', () => {
    expect(subscribes(['order.shipped'], 'order.shipped')).toBe(true);
    expect(subscribes(['order.shipped'], 'order.created')).toBe(false);
    expect(subscribes(['order.*'], 'order.created')).toBe(true);
    expect(subscribes(['order.*'], 'order.item.added')).toBe(true);
    expect(subscribes(['order.*'], 'orders.created')).toBe(false);
    expect(subscribes(['order.*'], 'order')).toBe(false);
    expect(subscribes(['*'], 'anything')).toBe(true);
  });
});

describe('delivery ids', () => {
  it('name their endpoint and sort newest first', () => {
    const ep = 'ep_0123456789abcdef0123';
    const older = deliverySortKey(1_000);
    const newer = deliverySortKey(2_000);
    expect(newer < older).toBe(true);
    expect(sortKeyTime(older)).toBe(1_000);
    const id = deliveryId(ep, older);
    expect(parseDeliveryId(id)).toEqual({
      endpointId: ep,
      sortKey: older,
      logKey: `${ep}/${older}`,
    });
    expect(parseDeliveryId('dlv_nope')).toBeUndefined();
    // Everything created at or after t sorts at or before the bound of t.
    expect(newer.slice(0, 12) <= sortKeyBound(1_500)).toBe(true);
    expect(older.slice(0, 12) > sortKeyBound(1_500)).toBe(true);
  });

  it('parses replay times', () => {
    expect(parseSince('2026-01-01T00:00:00Z', 0)).toBe(Date.UTC(2026, 0, 1));
    expect(parseSince('24h', 100_000_000)).toBe(100_000_000 - 86_400_000);
    expect(parseSince(42, 0)).toBe(42);
    expect(() => parseSince('yesterday', 0)).toThrow(/since/);
    expect(() => parseSince(undefined, 0)).toThrow(ValidationError);
  });
});
