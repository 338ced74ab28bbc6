/**
 * Two things the torture harness (test/torture/dflow.ts) found in flows' results and states:
 * - a compensation that fails for good was reported twice in `errors`: once under its own step
 *   id with its original code (`retries_exhausted`), and again under the step it undoes with the
 *   wrapper's code (`flow_step_failed`), as if that step had a second failure;
 * - a cancelled run's state (`GET /flows/runs/{runId}`) said `compensating` for good after the
 *   run had compensated and ended; it now says `cancelled`, also after a restart.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../src/index.js';
import { createFlows, runFlow, type FlowDefinition } from '../../src/flows/index.js';
import { FLOWS_WORKFLOW, type FlowRunState } from '../../src/flows/execute.js';
import { flowsOf } from '../../src/flows/run.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { tempDir } from '../helpers.js';

const dirs: Array<() => void> = [];
const engines: Engine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop().catch(() => undefined);
  for (const c of dirs.splice(0)) c();
});

/** Transforms that record what ran; `hold` waits until released (a step in flight). */
const ran: string[] = [];
let release: () => void = () => undefined;
const transforms = {
  effect: (i: unknown) => {
    ran.push((i as { step: string }).step);
    return (i as { step: string }).step;
  },
  hold: async (i: unknown) => {
    ran.push((i as { step: string }).step);
    await new Promise<void>((r) => (release = r));
    return 'held';
  },
  fail: (i: unknown) => {
    ran.push(`fail ${(i as { step: string }).step}`);
    throw new Error('planned');
  },
};

function engineOn(path: string, definitions: FlowDefinition[]): Engine {
  const engine = new Engine({
    services: [],
    store: openSqliteStore({ path }),
    extensions: [createFlows({ definitions, transforms })],
    logger: () => undefined,
  });
  engines.push(engine);
  return engine;
}

const effect = (id: string, compensate?: FlowDefinition['steps'][number]) =>
  ({
    id,
    type: 'transform',
    function: 'effect',
    input: { step: id },
    ...(compensate ? { compensate } : {}),
  }) as FlowDefinition['steps'][number];

describe('flows: failed compensations and cancelled runs', () => {
  it('a compensation that fails for good is one entry in errors, under its own id and code', async () => {
    const { dir, cleanup } = tempDir('keel-flows-undo-');
    dirs.push(cleanup);
    const engine = engineOn(join(dir, 'k.db'), [
      {
        name: 'undo-fails',
        steps: [
          effect('a', effect('a-undo')),
          effect('b', {
            id: 'b-undo',
            type: 'transform',
            function: 'fail',
            input: { step: 'b-undo' },
            onError: 'retry',
            retries: 1,
            backoff: { initial: '10ms' },
          }),
          { id: 'boom', type: 'transform', function: 'fail', input: { step: 'boom' } },
        ],
      },
    ]);
    await engine.start();
    ran.length = 0;
    const r = await runFlow(engine, 'undo-fails', {});
    expect(r.status).toBe('compensation_failed');
    expect(r.compensated).toEqual(['a']);
    expect(ran).toEqual(['a', 'b', 'fail boom', 'fail b-undo', 'fail b-undo', 'a-undo']);
    expect(r.errors.map(({ step, code, compensation }) => ({ step, code, compensation }))).toEqual([
      { step: 'boom', code: 'step_failed', compensation: undefined },
      { step: 'b-undo', code: 'retries_exhausted', compensation: true },
    ]);
  });

  it('a cancelled run ends with state cancelled, and keeps it across a restart', async () => {
    const { dir, cleanup } = tempDir('keel-flows-cancel-');
    dirs.push(cleanup);
    const path = join(dir, 'k.db');
    const defs: FlowDefinition[] = [
      {
        name: 'cancel-me',
        steps: [
          effect('a', effect('a-undo')),
          { id: 'wait', type: 'transform', function: 'hold', input: { step: 'wait' } },
          effect('after'),
        ],
      },
    ];
    const engine = engineOn(path, defs);
    await engine.start();
    ran.length = 0;
    const running = runFlow(engine, 'cancel-me', {}, { id: 'c1' });
    running.catch(() => undefined);
    while (!ran.includes('wait')) await new Promise((r) => setTimeout(r, 5));
    const [inv] = (await engine.listInvocations({ service: FLOWS_WORKFLOW, key: 'cancel-me:c1' }))
      .invocations;
    await engine.cancel(inv!.id);
    release();
    await expect(running).rejects.toMatchObject({ code: 'cancelled' });
    expect(ran).toEqual(['a', 'wait', 'a-undo']);
    const state = async (e: Engine) =>
      (await flowsOf(e).runtime.host.store.getState(FLOWS_WORKFLOW, 'cancel-me:c1', 'state')) as
        FlowRunState | undefined;
    expect(await state(engine)).toMatchObject({
      status: 'cancelled',
      completed: ['a', 'wait'],
      compensated: ['a'],
    });
    expect((await state(engine))?.current).toBeUndefined();
    await engine.stop();
    const again = engineOn(path, defs);
    await again.start();
    expect((await state(again))?.status).toBe('cancelled');
    await expect(runFlow(again, 'cancel-me', {}, { id: 'c1' })).rejects.toMatchObject({
      code: 'cancelled',
    });
    expect(ran).toEqual(['a', 'wait', 'a-undo']);
  });
});
