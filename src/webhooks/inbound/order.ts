/**
 * Out-of-order events. Providers do not promise order: Shippo may deliver `DELIVERED` before
 * the `TRANSIT` update that preceded it, Stripe `charge.refunded` before `charge.succeeded`.
 * Routing every event of one shipment (order, charge) to one keyed object makes them run one at
 * a time, but in *arrival* order; these helpers make the state depend on the events' own order.
 *
 * The rule ({@link StatusOrder.supersedes}): an update replaces the current status when it is
 * newer by the provider's timestamp; without comparable timestamps, when its status ranks
 * higher. A terminal status (`delivered`) is left only for a higher-ranked one, whatever the
 * timestamps say, so a late or replayed `in_transit` never un-delivers a parcel.
 */
import type { ObjectContext } from '../../core/context.js';

/** A status with when the provider says it happened. */
export interface StatusUpdate<S extends string = string> {
  status: S;
  /** The provider's time of the change: epoch ms or an ISO 8601 string. */
  at?: number | string;
}

/**
 * An order of statuses, lowest first.
 *
 * @example
 * ```ts
 * const shipment = new StatusOrder(['PRE_TRANSIT', 'TRANSIT', 'DELIVERED', 'RETURNED'], {
 *   terminal: ['DELIVERED', 'RETURNED'],
 * });
 * shipment.supersedes({ status: 'TRANSIT' }, { status: 'DELIVERED' }); // false
 * ```
 */
export class StatusOrder<S extends string> {
  private readonly ranks: Map<string, number>;
  private readonly terminal: ReadonlySet<string>;

  constructor(order: readonly S[], options: { terminal?: readonly S[] } = {}) {
    if (order.length === 0) throw new TypeError('a StatusOrder needs at least one status');
    this.ranks = new Map(order.map((s, i) => [s, i]));
    if (this.ranks.size !== order.length)
      throw new TypeError(`a StatusOrder lists each status once: ${order.join(', ')}`);
    for (const t of options.terminal ?? [])
      if (!this.ranks.has(t)) throw new TypeError(`terminal status "${t}" is not in the order`);
    this.terminal = new Set(options.terminal ?? []);
  }

  /** The rank of a status; throws a TypeError naming the known ones for an unknown status. */
  rank(status: string): number {
    const r = this.ranks.get(status);
    if (r === undefined)
      throw new TypeError(
        `unknown status "${status}"; known: ${[...this.ranks.keys()].join(', ')}`,
      );
    return r;
  }

  isTerminal(status: string): boolean {
    return this.terminal.has(status);
  }

  /**
   * True when `incoming` should replace `current` (always when there is no current status).
   *
   * @example
   * ```ts
   * shipment.supersedes({ status: 'TRANSIT', at: '2026-01-02T10:00:00Z' }, { status: 'TRANSIT', at: '2026-01-02T08:00:00Z' }); // true: a newer location
   * ```
   */
  supersedes(incoming: StatusUpdate<S>, current: StatusUpdate<S> | undefined): boolean {
    const rankIn = this.rank(incoming.status);
    if (!current) return true;
    const rankNow = this.rank(current.status);
    if (this.isTerminal(current.status) && rankIn <= rankNow) return false;
    const a = time(incoming.at);
    const b = time(current.at);
    if (a !== undefined && b !== undefined && a !== b) return a > b;
    return rankIn > rankNow;
  }
}

function time(at: number | string | undefined): number | undefined {
  if (at === undefined) return undefined;
  const t = typeof at === 'number' ? at : Date.parse(at);
  return Number.isFinite(t) ? t : undefined;
}

/**
 * Stores `update` in the object's state `name` if it supersedes what is stored there (see
 * {@link StatusOrder.supersedes}), and says whether it did. Call it from an exclusive handler of
 * an object keyed by the thing whose status it is.
 *
 * @example
 * ```ts
 * const Shipments = object({
 *   name: 'Shipments',
 *   handlers: {
 *     track: async (ctx, e: InboundEvent) => {
 *       const s = e.data.data.tracking_status;
 *       const { applied } = await applyStatus(ctx, 'status', { status: s.status, at: s.status_date }, shipment);
 *       if (applied && s.status === 'DELIVERED') await ctx.run('notify', () => notifyCustomer(ctx.key));
 *     },
 *     status: shared(async (ctx) => ctx.get('status')),
 *   },
 * });
 * ```
 */
export async function applyStatus<S extends string, U extends StatusUpdate<S>>(
  ctx: ObjectContext,
  name: string,
  update: U,
  order: StatusOrder<S>,
): Promise<{ applied: boolean; current: U }> {
  const current = await ctx.get<U>(name);
  if (!order.supersedes(update, current)) return { applied: false, current: current! };
  ctx.set(name, update);
  return { applied: true, current: update };
}
