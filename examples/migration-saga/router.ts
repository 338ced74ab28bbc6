import { object, shared, TerminalError, type ObjectSharedContext } from '../../src/index.js';
import { FAULTY_SERVICES, STUBBORN_ATTEMPTS } from './faults.js';

interface RouterState {
  /** Writes go to both systems. */
  dualWrite: boolean;
  /** Which system serves the traffic. */
  traffic: 'old' | 'new';
  oldSystem: 'running' | 'disabled';
  /** Failed attempts to shut the old system down. */
  shutdownAttempts: number;
  /** Every change, oldest first. */
  events: string[];
}

const load = async (ctx: ObjectSharedContext): Promise<RouterState> =>
  (await ctx.get<RouterState>('state')) ?? {
    dualWrite: false,
    traffic: 'old',
    oldSystem: 'running',
    shutdownAttempts: 0,
    events: [],
  };

/**
 * The traffic router of one service (object keyed by service id): dual-write, which system
 * serves, and the old system's life. Every handler is idempotent.
 *
 * Fails for the {@link FAULTY_SERVICES} `svc-fail-switch` (`switchTraffic`, 503
 * `switch_failed`) and `svc-stubborn-old` (`disableOldSystem`, 409 `old_system_busy` for the
 * first {@link STUBBORN_ATTEMPTS} attempts).
 */
export const MigrationRouter = object({
  name: 'MigrationRouter',
  handlers: {
    /** Writes now go to the old and the new system. */
    enableDualWrite: async (ctx) => {
      const state = await load(ctx);
      if (!state.dualWrite) state.events.push('dual-write on');
      state.dualWrite = true;
      ctx.set('state', state);
      return state;
    },

    /** Writes go to the old system only again (the compensation of `enableDualWrite`). */
    disableDualWrite: async (ctx) => {
      const state = await load(ctx);
      if (state.dualWrite) state.events.push('dual-write off');
      state.dualWrite = false;
      ctx.set('state', state);
      return state;
    },

    /** The new system serves the traffic. There is no way back from here. */
    switchTraffic: async (ctx) => {
      if (ctx.key === FAULTY_SERVICES.switch) {
        throw new TerminalError(`the load balancer refused the new routes for ${ctx.key}`, {
          code: 'switch_failed',
          status: 503,
        });
      }
      const state = await load(ctx);
      if (state.traffic !== 'new') state.events.push('traffic → new');
      state.traffic = 'new';
      ctx.set('state', state);
      return state;
    },

    /** Shuts the old system down, and with it dual-write. */
    disableOldSystem: async (ctx) => {
      const state = await load(ctx);
      if (
        ctx.key === FAULTY_SERVICES.stubborn &&
        state.oldSystem === 'running' &&
        state.shutdownAttempts < STUBBORN_ATTEMPTS
      ) {
        // Kept although the handler fails: each ctx.set is journaled as it happens.
        state.shutdownAttempts++;
        ctx.set('state', state);
        throw new TerminalError(`the old system of ${ctx.key} still has open connections`, {
          code: 'old_system_busy',
          status: 409,
        });
      }
      if (state.oldSystem === 'running') state.events.push('old system off');
      state.oldSystem = 'disabled';
      state.dualWrite = false;
      ctx.set('state', state);
      return state;
    },

    /** The router's state. */
    state: shared(async (ctx) => ({ serviceId: ctx.key, ...(await load(ctx)) })),
  },
});
