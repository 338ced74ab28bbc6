/**
 * A schedule's target against the engine's definitions: checked when a schedule is declared or
 * created (so a typo fails the start or answers 400, not a log line at 3 a.m.), and turned into
 * the send of one tick.
 */
import { KeelError } from '../core/errors.js';
import { validate } from '../core/schema.js';
import type { Engine } from '../engine/engine.js';
import type { InvokeRequest } from '../engine/info.js';
import { kernelOf } from '../engine/kernel.js';
import { ScheduleError } from './errors.js';
import type { ScheduleSpec } from './spec.js';

/**
 * Throws `unknown_target` unless the target names a registered handler with the key its kind
 * needs, and `invalid_input` unless the input passes the handler's input schema. `routable`:
 * as the admin API sees definitions (internal ones are not targets of API-created schedules).
 */
export async function checkTarget(
  engine: Engine,
  name: string,
  spec: ScheduleSpec,
  routable: boolean,
): Promise<void> {
  const { registry } = kernelOf(engine);
  const t = spec.target;
  const def = routable ? registry.routable(t.service) : registry.get(t.service);
  let handler;
  try {
    // A workflow's run needs no key here: each tick makes its own (see tickRequest).
    const key =
      def?.kind === 'workflow' && t.handler.toLowerCase() === 'run' && t.key === undefined
        ? '-'
        : t.key;
    handler = (
      routable
        ? registry.resolveRoutable(t.service, t.handler, key)
        : registry.resolve(t.service, t.handler, key)
    ).spec;
  } catch (err) {
    if (!(err instanceof KeelError)) throw err;
    throw new ScheduleError(
      'unknown_target',
      `schedule "${name}": target: ${err.message}`,
      'target',
    );
  }
  if (!handler.options.input) return;
  try {
    await validate(handler.options.input, spec.input, `the input of ${t.service}.${handler.name}`);
  } catch (err) {
    if (!(err instanceof KeelError)) throw err;
    throw new ScheduleError('invalid_input', `schedule "${name}": ${err.message}`, 'input');
  }
}

/**
 * The send of one tick (`at`: the tick time, or a manual trigger's id). A workflow's `run`
 * executes once per workflow key, so each tick gets a key of its own, `<key>@<at>` (key: the
 * target's, else the schedule's name), as Temporal names a schedule's workflow runs.
 */
export function tickRequest(
  engine: Engine,
  name: string,
  spec: ScheduleSpec,
  at: string,
  idempotencyKey: string,
): InvokeRequest {
  const t = spec.target;
  const def = kernelOf(engine).registry.get(t.service);
  const perTick = def?.kind === 'workflow' && t.handler.toLowerCase() === 'run';
  const key = perTick ? `${t.key ?? name}@${at}` : t.key;
  return {
    service: t.service,
    handler: t.handler,
    ...(key === undefined ? {} : { key }),
    ...(spec.input === undefined ? {} : { input: spec.input }),
    idempotencyKey,
  };
}

/** A tick's idempotency key: the schedule and the tick time, the same in every process. */
export function tickKey(name: string, tick: number): string {
  return `schedule:${name}:${isoOf(tick)}`;
}

let memoTick = Number.NaN;
let memoIso = '';

/** `tick` in ISO-8601; remembers the last, as schedules due together mostly share their tick. */
export function isoOf(tick: number): string {
  if (tick !== memoTick) {
    memoIso = new Date(tick).toISOString();
    memoTick = tick;
  }
  return memoIso;
}
