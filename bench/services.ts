/**
 * The handlers the benchmark drives. `Bench3` is the workflow the targets are about; the
 * others isolate parts of its cost: `Bench3Svc` is the same three steps without the
 * workflow's run-once key, `Noop` is the engine's fixed cost per invocation (no steps).
 * `Parked` is the suspended-workflows row's: a workflow that waits on a durable promise.
 */
import { handler, queue, service, workflow, type Context, type Definition } from '../src/index.js';

const bench3 = async (ctx: Context, n: number): Promise<number> => {
  const a = await ctx.run('one', () => n + 1);
  const b = await ctx.run('two', () => a + 1);
  return ctx.run('three', () => b + 1);
};

/**
 * With `KEEL_BENCH_QUEUE=1` (the `keel-queue` row), `Bench3` waits in a flow-control queue
 * whose concurrency (64) is above the 32 clients': every run is filed, admitted and counted,
 * so the row measures what the queue costs, not a limit.
 */
const BenchQueue = queue({ name: 'bench', concurrency: 64 });

/** Three journaled steps, once per workflow key: `POST /Bench3/{key}/run` with body `1` answers `4`. */
export const Bench3 = workflow({
  name: 'Bench3',
  run: process.env.KEEL_BENCH_QUEUE === '1' ? handler({ queue: BenchQueue }, bench3) : bench3,
});

/** The same three steps as a service handler (no key): `POST /Bench3Svc/run`. */
export const Bench3Svc = service({
  name: 'Bench3Svc',
  handlers: {
    run: async (ctx, n: number) => {
      const a = await ctx.run('one', () => n + 1);
      const b = await ctx.run('two', () => a + 1);
      return ctx.run('three', () => b + 1);
    },
  },
});

/** Zero steps: `POST /Noop/run` answers its input. */
export const Noop = service({
  name: 'Noop',
  handlers: {
    run: async (_ctx, input: unknown) => input,
  },
});

/**
 * Waits on a durable promise: `POST /Parked/{key}/run/send` (body `1`) starts a run that
 * suspends on promise `go`; `POST /Parked/{key}/resolve` with `n` resolves it (answers `"ok"`),
 * and the run then finishes with `n + 1`.
 */
export const Parked = workflow({
  name: 'Parked',
  run: async (ctx, _input: number) => (await ctx.promise<number>('go').get()) + 1,
  handlers: {
    resolve: async (ctx, n: number) => {
      await ctx.promise<number>('go').resolve(n);
      return 'ok';
    },
  },
});

export const benchServices: Definition[] = [Bench3, Bench3Svc, Noop, Parked];
