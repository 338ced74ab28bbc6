import type { HandlerSpec } from '../core/definitions.js';
import type { Kernel } from '../engine/kernel.js';
import type { Runner } from '../engine/runner.js';

/**
 * Wraps one step body run: `body` runs the real one (with its tracing); a wrapper may instead
 * throw (an injected failure). Called only when the body really runs, never on replay.
 */
export type StepWrapper = (
  runner: Runner,
  index: number,
  name: string,
  body: () => Promise<unknown>,
) => Promise<unknown>;

/** Replaces the handler function of one attempt (an injected failure or delay), or returns it. */
export type HandlerWrapper = (runner: Runner, fn: HandlerSpec['fn']) => HandlerSpec['fn'];

/**
 * What the test kit sees of the runners of one engine: how often each step body ran, and the
 * wrappers faults put around step bodies and handlers.
 *
 * The kernel registers every attempt's runner in `kernel.active` right before starting it (and
 * only there: admission.ts); the test kit wraps that `set` of this one kernel's map, so each
 * runner is instrumented before its handler runs, and nothing changes for other engines. It is
 * installed by the `TestApp` constructor, before the engine starts, so runners that recovery
 * starts at once are seen too.
 */
export class Instruments {
  /** Step body runs, by `invocationId#index`. */
  readonly stepRuns = new Map<string, { name: string; runs: number }>();
  readonly stepWrappers: StepWrapper[] = [];
  readonly handlerWrappers: HandlerWrapper[] = [];

  /** Times the body of step `index` of invocation `id` ran in this engine. */
  runsOf(id: string, index: number): number {
    return this.stepRuns.get(`${id}#${index}`)?.runs ?? 0;
  }

  /** Called for each new runner, before it starts. */
  instrument(runner: Runner): void {
    const original = runner.runStepBody.bind(runner);
    runner.runStepBody = (index, name, fn) => {
      const key = `${runner.row.id}#${index}`;
      const seen = this.stepRuns.get(key);
      if (seen) seen.runs++;
      else this.stepRuns.set(key, { name, runs: 1 });
      let run = (): Promise<unknown> => original(index, name, fn);
      for (const wrap of this.stepWrappers) {
        const next = run;
        run = () => wrap(runner, index, name, next);
      }
      return run();
    };
    if (this.handlerWrappers.length === 0) return;
    let fn = runner.spec.fn;
    for (const wrap of this.handlerWrappers) fn = wrap(runner, fn);
    if (fn !== runner.spec.fn)
      // The spec object is shared by every runner of the handler: this runner gets its own.
      (runner as { spec: HandlerSpec }).spec = { ...runner.spec, fn };
  }
}

const installed = new WeakMap<Kernel, Instruments>();

/** The instruments of a kernel, installed on first use (before `engine.start()`, see above). */
export function instrumentsOf(kernel: Kernel): Instruments {
  let ins = installed.get(kernel);
  if (ins) return ins;
  const inst = new Instruments();
  ins = inst;
  installed.set(kernel, inst);
  const active = kernel.active;
  const set = active.set.bind(active);
  active.set = (id: string, runner: Runner) => {
    inst.instrument(runner);
    return set(id, runner);
  };
  return inst;
}
