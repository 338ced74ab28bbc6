import type { ObjectContext } from '../core/context.js';
import type { Definition, HandlerSpec } from '../core/definitions.js';
import { ConflictError, fromErrorInfo, NotFoundError, ValidationError } from '../core/errors.js';
import { normalize } from '../core/replay.js';
import { dedupeKey } from './dedupe.js';
import type { Kernel } from './kernel.js';

/**
 * Operators' access to the state of objects and workflows (the admin API's `/state` routes).
 *
 * Reads go to the store directly. An edit runs as an invocation of one of Keel's own handlers
 * on the object key (`keel.admin.setState`, `keel.admin.deleteState`), rather than as a bare
 * store write, because then it is:
 *
 * - exclusive: on an object it is an exclusive invocation, so it queues behind the handler
 *   that holds the key (a running, suspended or backing-off one) and never changes state under
 *   it, exactly as another handler's write would not;
 * - journaled: its `set`/`clear` is a journal entry, and its invocation record (target
 *   `Service/key/keel.admin.setState`, input `{ name, value }`) shows who changed what, when,
 *   in the invocation list like any other;
 * - durable like any invocation: accepted means it happens, across a crash.
 *
 * Workflows have no per-key lock (their `run` is the only writer, and runs once): an edit is
 * refused (409 `workflow_running`) while the key's run is pending or running, and allowed once
 * it waits (suspended, backing off, paused) or has finished.
 */

/** The handler names of state edits. Not routable: the ingress and `Engine.invoke` refuse them. */
export const SET_STATE = 'keel.admin.setState';
export const DELETE_STATE = 'keel.admin.deleteState';

/** The largest state value the admin API writes, as JSON: 1 MiB. */
export const MAX_STATE_VALUE_BYTES = 1024 * 1024;

const NAME_MAX = 256;

interface SetInput {
  name: string;
  value: unknown;
}

const setSpec: HandlerSpec = {
  name: SET_STATE,
  fn: async (ctx: ObjectContext, input: SetInput) => {
    ctx.set(input.name, input.value);
    return { name: input.name, value: input.value };
  },
  shared: false,
  options: {},
};

const deleteSpec: HandlerSpec = {
  name: DELETE_STATE,
  fn: async (ctx: ObjectContext, input: { name: string }) => {
    ctx.clear(input.name);
    return { name: input.name, deleted: true };
  },
  shared: false,
  options: {},
};

/** Keel's own handler `handler` of an object or workflow, if it is one (see admission.ts). */
export function adminHandlerSpec(def: Definition, handler: string): HandlerSpec | undefined {
  if (def.kind === 'service') return undefined;
  if (handler === SET_STATE) return setSpec;
  if (handler === DELETE_STATE) return deleteSpec;
  return undefined;
}

/** An object or workflow by name: 404 unknown, 400 for a plain service (it has no state). */
export function stateful(k: Kernel, service: string): Definition {
  const def = k.registry.get(service);
  if (!def)
    throw new NotFoundError(
      `no object or workflow "${service}" is registered: GET /services lists what this engine runs`,
    );
  if (def.kind === 'service')
    throw new ValidationError(
      `"${service}" is a service: services have no state; only objects and workflows do`,
    );
  return def;
}

/** Checks a state name: 1 to 256 characters, no control characters. */
export function checkStateName(name: string): void {
  // eslint-disable-next-line no-control-regex
  if (name.length === 0 || name.length > NAME_MAX || /[\u0000-\u001f\u007f]/.test(name))
    throw new ValidationError(
      `state name ${JSON.stringify(name.slice(0, 300))} is not valid: give 1 to ${NAME_MAX} characters without control characters`,
    );
}

/** The keys of `service` that have state, in key order, after `after`. */
export async function listStateKeys(
  k: Kernel,
  service: string,
  after: string | undefined,
  limit: number,
): Promise<string[]> {
  stateful(k, service);
  return k.store.listStateKeys(service, { after, limit });
}

/** Every state value of an object or workflow key, by name. */
export async function readState(
  k: Kernel,
  service: string,
  key: string,
): Promise<Record<string, unknown>> {
  stateful(k, service);
  const names = await k.store.getStateKeys(service, key);
  const values = await Promise.all(names.map((n) => k.store.getState(service, key, n)));
  const out: Record<string, unknown> = {};
  names.forEach((n, i) => (out[n] = values[i]));
  return out;
}

/** What a state edit answers: the invocation that made it, and whether it has finished. */
export interface StateEdit {
  invocationId: string;
  /** False when it still waits for the key after `waitMs` (it happens once the holder is done). */
  done: boolean;
}

/**
 * Sets (`value` given) or deletes (`value` undefined) one state value of an object or workflow
 * key, as an invocation exclusive on the key (see the file's comment). Resolves once it has
 * happened, or after `waitMs` with `done: false` while it still waits for the key's holder.
 */
export async function editState(
  k: Kernel,
  service: string,
  key: string,
  name: string,
  value: { value: unknown } | undefined,
  waitMs: number,
): Promise<StateEdit> {
  const def = stateful(k, service);
  checkStateName(name);
  let input: SetInput | { name: string };
  if (value) {
    let json: unknown;
    try {
      json = normalize(value.value, `state "${name}"`);
    } catch (err) {
      throw new ValidationError((err as Error).message);
    }
    const size = Buffer.byteLength(JSON.stringify(json) ?? 'null');
    if (size > MAX_STATE_VALUE_BYTES)
      throw new ValidationError(
        `the value of state "${name}" is ${size} bytes of JSON; at most ${MAX_STATE_VALUE_BYTES} are accepted`,
      );
    input = { name, value: json };
  } else {
    input = { name };
  }
  if (def.kind === 'workflow') {
    const run = await k.store.findByDedupe(dedupeKey('workflow', service, 'run', key, undefined)!);
    if (run && (run.status === 'running' || run.status === 'pending'))
      throw new ConflictError(
        `workflow ${service}/${key} is ${run.status} (invocation ${run.id}): its state can be edited while it waits (suspended, backing off, paused) or once it has finished`,
        'workflow_running',
      );
  }
  const spec = value ? setSpec : deleteSpec;
  const { invocationId } = await k.send({ def, spec, key, input });
  const signal = AbortSignal.timeout(waitMs);
  let outcome;
  try {
    outcome = await k.results.await(invocationId, false, { signal });
  } catch (err) {
    if (signal.aborted) return { invocationId, done: false };
    throw err;
  }
  if ('error' in outcome) throw fromErrorInfo(outcome.error);
  return { invocationId, done: true };
}
