/**
 * DriverService of the food delivery exercise: one object per driver (shift, current job,
 * location) and one roster per zone, which the orchestrator asks for candidates.
 */
import { z } from 'zod';
import {
  handler,
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';

/** A driver's durable record. */
export interface Driver {
  driverId: string;
  onShift: boolean;
  zone?: string;
  /** The delivery the driver is on; a driver with a job is not available. */
  job?: {
    orderId: string;
    stage: 'assigned' | 'delivering';
    /** The awakeable the orchestrator waits on until the driver confirms delivery. */
    deliveredCallback?: string;
  };
  location?: { lat: number; lng: number; at: string };
  /** Order ids delivered, oldest first. */
  deliveries: string[];
}

/** What the orchestrator's awakeable receives on delivery. */
export interface Delivered {
  driverId: string;
  deliveredAt: string;
}

async function driverOf(ctx: ObjectSharedContext): Promise<Driver> {
  return (await ctx.get<Driver>('driver')) ?? { driverId: ctx.key, onShift: false, deliveries: [] };
}

const unavailable = (driverId: string, why: string) =>
  new TerminalError(`driver ${driverId} is unavailable: ${why}`, {
    code: 'driver_unavailable',
    status: 409,
  });

/** The drivers on shift in one zone. */
export const DeliveryDispatch = object({
  name: 'DeliveryDispatch',
  handlers: {
    join: handler({ input: z.string().min(1) }, async (ctx: ObjectContext, driverId) => {
      const roster = (await ctx.get<string[]>('roster')) ?? [];
      if (!roster.includes(driverId)) ctx.set('roster', [...roster, driverId]);
    }),
    leave: handler({ input: z.string().min(1) }, async (ctx: ObjectContext, driverId) => {
      const roster = (await ctx.get<string[]>('roster')) ?? [];
      ctx.set(
        'roster',
        roster.filter((d) => d !== driverId),
      );
    }),
    /** Drivers on shift here, in the order they joined. */
    drivers: shared(async (ctx) => (await ctx.get<string[]>('roster')) ?? []),
  },
});

/** Drivers: shifts, assignment, pickup, location, delivery confirmation. */
export const DeliveryDriver = object({
  name: 'DeliveryDriver',
  handlers: {
    /** Goes on shift in a zone: the dispatcher may now assign orders. */
    startShift: handler(
      { input: z.object({ zone: z.string().min(1) }) },
      async (ctx: ObjectContext, req): Promise<Driver> => {
        const driver = await driverOf(ctx);
        const next: Driver = { ...driver, onShift: true, zone: req.zone };
        ctx.set('driver', next);
        await ctx.objectClient(DeliveryDispatch, req.zone).join(ctx.key);
        return next;
      },
    ),

    /**
     * Goes off shift. A driver with a job keeps it on record but can no longer pick it up:
     * the orchestrator then reassigns the order.
     */
    endShift: async (ctx: ObjectContext): Promise<Driver> => {
      const driver = await driverOf(ctx);
      ctx.set('driver', { ...driver, onShift: false });
      if (driver.zone) await ctx.objectClient(DeliveryDispatch, driver.zone).leave(ctx.key);
      return { ...driver, onShift: false };
    },

    /** Takes an order if on shift and free; assigning the same order again is a no-op. */
    assign: handler(
      { input: z.string().min(1) },
      async (ctx: ObjectContext, orderId): Promise<Driver> => {
        const driver = await driverOf(ctx);
        if (driver.job?.orderId === orderId && driver.onShift) return driver;
        if (!driver.onShift) throw unavailable(ctx.key, 'off shift');
        if (driver.job) throw unavailable(ctx.key, `busy with ${driver.job.orderId}`);
        const next: Driver = { ...driver, job: { orderId, stage: 'assigned' } };
        ctx.set('driver', next);
        return next;
      },
    ),

    /** Sends the driver to the restaurant; fails if the driver went off shift meanwhile. */
    notifyPickup: async (
      ctx: ObjectContext,
      req: { orderId: string; restaurantId: string; deliveredCallback: string },
    ): Promise<Driver> => {
      const driver = await driverOf(ctx);
      if (driver.job?.orderId !== req.orderId) throw unavailable(ctx.key, 'not assigned to it');
      if (!driver.onShift) throw unavailable(ctx.key, 'went off shift');
      const next: Driver = {
        ...driver,
        job: { ...driver.job, stage: 'delivering', deliveredCallback: req.deliveredCallback },
      };
      ctx.set('driver', next);
      return next;
    },

    /** The driver app reports a position (shown by the orchestrator's `track`). */
    updateLocation: handler(
      { input: z.object({ lat: z.number(), lng: z.number() }) },
      async (ctx: ObjectContext, req): Promise<Driver> => {
        const driver = await driverOf(ctx);
        const next: Driver = {
          ...driver,
          location: { ...req, at: new Date(await ctx.now()).toISOString() },
        };
        ctx.set('driver', next);
        return next;
      },
    ),

    /** The driver handed the food over: wakes the orchestrator, and the driver is free. */
    confirmDelivery: handler(
      { input: z.string().min(1) },
      async (ctx: ObjectContext, orderId): Promise<Driver> => {
        const driver = await driverOf(ctx);
        const job = driver.job;
        if (job?.orderId !== orderId || job.stage !== 'delivering' || !job.deliveredCallback) {
          throw new TerminalError(`driver ${ctx.key} is not delivering ${orderId}`, {
            code: 'not_delivering',
            status: 409,
          });
        }
        const delivered: Delivered = {
          driverId: ctx.key,
          deliveredAt: new Date(await ctx.now()).toISOString(),
        };
        await ctx.resolveAwakeable(job.deliveredCallback, delivered);
        const { job: _done, ...rest } = driver;
        const next: Driver = { ...rest, deliveries: [...driver.deliveries, orderId] };
        ctx.set('driver', next);
        return next;
      },
    ),

    /** Compensation (or reassignment): frees the driver from this order, if still on it. */
    release: handler(
      { input: z.string().min(1) },
      async (ctx: ObjectContext, orderId): Promise<Driver> => {
        const driver = await driverOf(ctx);
        if (driver.job?.orderId !== orderId) return driver;
        const { job: _released, ...rest } = driver;
        ctx.set('driver', rest);
        return rest;
      },
    ),

    /** Shift, job and last known location. */
    whereabouts: shared(async (ctx) => driverOf(ctx)),
  },
});
