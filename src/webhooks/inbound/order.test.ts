import { describe, expect, it } from 'vitest';
import { StatusOrder } from './order.js';

const parcel = new StatusOrder(['PRE_TRANSIT', 'TRANSIT', 'FAILURE', 'DELIVERED', 'RETURNED'], {
  terminal: ['DELIVERED', 'RETURNED'],
});

describe('StatusOrder', () => {
  it('applies anything when nothing is known yet', () => {
    expect(parcel.supersedes({ status: 'TRANSIT' }, undefined)).toBe(true);
  });

  it('never leaves a terminal status for a lower one, whatever the timestamps say', () => {
    const delivered = { status: 'DELIVERED' as const, at: '2026-01-03T00:00:00Z' };
    expect(parcel.supersedes({ status: 'TRANSIT', at: '2026-01-02T00:00:00Z' }, delivered)).toBe(
      false,
    );
    expect(parcel.supersedes({ status: 'TRANSIT', at: '2026-01-09T00:00:00Z' }, delivered)).toBe(
      false,
    );
    expect(parcel.supersedes({ status: 'DELIVERED', at: '2026-01-09T00:00:00Z' }, delivered)).toBe(
      false,
    );
    expect(parcel.supersedes({ status: 'RETURNED', at: '2026-01-09T00:00:00Z' }, delivered)).toBe(
      true,
    );
  });

  it('orders by the provider timestamp when both have one', () => {
    const failure = { status: 'FAILURE' as const, at: Date.UTC(2026, 0, 2) };
    // Back in transit after an exception: newer wins although it ranks lower.
    expect(parcel.supersedes({ status: 'TRANSIT', at: Date.UTC(2026, 0, 3) }, failure)).toBe(true);
    expect(parcel.supersedes({ status: 'TRANSIT', at: Date.UTC(2026, 0, 1) }, failure)).toBe(false);
    // A newer update of the same status (a new scan location) replaces the older.
    const transit = { status: 'TRANSIT' as const, at: '2026-01-02T08:00:00Z' };
    expect(parcel.supersedes({ status: 'TRANSIT', at: '2026-01-02T10:00:00Z' }, transit)).toBe(
      true,
    );
    expect(parcel.supersedes({ status: 'TRANSIT', at: '2026-01-02T08:00:00Z' }, transit)).toBe(
      false,
    );
  });

  it('falls back to the rank without comparable timestamps', () => {
    expect(parcel.supersedes({ status: 'TRANSIT' }, { status: 'PRE_TRANSIT' })).toBe(true);
    expect(parcel.supersedes({ status: 'PRE_TRANSIT' }, { status: 'TRANSIT' })).toBe(false);
    expect(
      parcel.supersedes({ status: 'TRANSIT', at: 'not a date' }, { status: 'TRANSIT', at: 5 }),
    ).toBe(false);
  });

  it('refuses unknown statuses and bad orders with a TypeError naming them', () => {
    expect(() => parcel.supersedes({ status: 'LOST' as 'TRANSIT' }, undefined)).toThrow(
      /unknown status "LOST"; known: PRE_TRANSIT/,
    );
    expect(() => new StatusOrder([])).toThrow(TypeError);
    expect(() => new StatusOrder(['A', 'A'])).toThrow(/each status once/);
    expect(() => new StatusOrder(['A'], { terminal: ['B' as 'A'] })).toThrow(/terminal status "B"/);
  });
});
