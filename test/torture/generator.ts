/**
 * Random client operations, each drawn from its own seeded stream (`<seed>/op/<n>`): operation n
 * is the same for a seed whatever the timing of the run, so a failing seed regenerates the same
 * program (the interleaving with kills still varies, as with any Jepsen-style run).
 */
import { Prng } from '../../src/core/prng.js';
import {
  FIXED_DFLOW,
  type DDb,
  type DInput,
  type DStep,
  type DUndo,
  type DUndos,
} from './dflow.js';
import { QUEUE_KEYS, type FlowInput, type FlowOp } from './program.js';

/** Counter keys whose total must be exact: only idempotent (retried until acknowledged) adds. */
export const EXACT_KEYS = ['c0', 'c1', 'c2', 'c3'];
/** Counter keys that also get adds whose fate is unknown (plain sends cut by a kill, cancels). */
export const MAYBE_KEYS = ['m0', 'm1'];

export class Rng {
  private readonly prng: Prng;
  constructor(seed: string) {
    this.prng = new Prng(seed);
  }
  float(): number {
    return this.prng.next();
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.prng.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.prng.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.prng.next() * items.length)]!;
  }
  weighted<T extends string>(weights: Record<T, number>): T {
    const entries = Object.entries(weights) as Array<[T, number]>;
    let r = this.prng.next() * entries.reduce((s, [, w]) => s + w, 0);
    for (const [k, w] of entries) if ((r -= w) < 0) return k;
    return entries[entries.length - 1]![0];
  }
}

/** How a request is repeated: copies sent at once, copies sent later (ms after the first). */
export interface Duplicates {
  concurrent: number;
  laterMs: number[];
}

export type ClientOp =
  | {
      kind: 'flow';
      n: number;
      key: string;
      input: FlowInput;
      /** `call` waits for the result (200); `send` gets the id (202). */
      via: 'send' | 'call';
      dupes: Duplicates;
      /** Duplicates carry fresh Idempotency-Key headers: still one run per workflow key. */
      idemHeaders: boolean;
      /** Cancel through the admin API this long after the first acknowledgement. */
      cancelAfterMs?: number;
      /** Awakeables to complete: the flow op index, when (ms after acknowledgement), how. */
      awakeables: Array<{ op: number; afterMs: number; action: 'resolve' | 'reject' }>;
      /** Durable promises to resolve through `Flow.signal`, and when. */
      signals: Array<{ name: string; afterMs: number }>;
    }
  | {
      kind: 'work';
      n: number;
      tag: string;
      steps: number;
      sleepMs: number;
      via: 'send' | 'call';
      delayMs?: number;
      idem?: { key: string; dupes: Duplicates };
    }
  | {
      kind: 'add';
      n: number;
      tag: string;
      key: string;
      amount: number;
      via: 'send' | 'call';
      delayMs?: number;
      idem?: { key: string; dupes: Duplicates };
    }
  | {
      /** `Queued.work`, the handler in the flow-control queue (2 at once, 1 per key). */
      kind: 'queued';
      n: number;
      tag: string;
      key: string;
      prio: number;
      sleepMs: number;
      via: 'send' | 'call';
      /** A delayed send waits for its time, then for its turn in the queue. */
      delayMs?: number;
      idem?: { key: string; dupes: Duplicates };
    }
  | {
      /**
       * A run of a declarative flow (docs/flows.md): `POST /flows/<name>/run`, keyed by `?id=`
       * or `Idempotency-Key` (every copy the same key: a client's retries). A generated flow is
       * registered first over the admin API (`register`); `torture-fixed` is the app's own.
       */
      kind: 'dflow';
      n: number;
      name: string;
      steps: DStep[];
      register: boolean;
      input: DInput;
      by: 'id' | 'idem';
      dupes: Duplicates;
      /** Cancel its invocation over the admin API this long after the first request. */
      cancelAfterMs?: number;
    };

function dupes(r: Rng): Duplicates {
  return {
    concurrent: r.chance(0.3) ? r.int(1, 3) : 0,
    laterMs: r.chance(0.3) ? [r.int(100, 4000)] : [],
  };
}

function flowOps(r: Rng, cancellable: boolean): FlowOp[] {
  const ops: FlowOp[] = [];
  const n = r.int(1, 6);
  // Adds of a flow that may be cancelled may or may not happen: they go to the inexact keys.
  const addKey = (): string => r.pick(cancellable ? MAYBE_KEYS : EXACT_KEYS);
  for (let i = 0; i < n; i++) {
    const kind = r.weighted({
      step: 25,
      parallel: 6,
      sleep: 12,
      call: 10,
      add: 12,
      addCall: 6,
      awakeable: 10,
      promise: 8,
      saga: 8,
      queued: 5,
    });
    switch (kind) {
      case 'step':
        ops.push({ op: 'step', ms: r.int(0, 30) });
        break;
      case 'parallel':
        ops.push({ op: 'parallel', n: r.int(2, 4), ms: r.int(0, 20) });
        break;
      case 'sleep':
        ops.push({ op: 'sleep', ms: r.int(10, 1500) });
        break;
      case 'call':
        ops.push({ op: 'call', steps: r.int(1, 3), sleepMs: r.chance(0.4) ? r.int(10, 600) : 0 });
        break;
      case 'add':
        ops.push({
          op: 'add',
          key: addKey(),
          n: r.int(1, 9),
          ...(r.chance(0.4) ? { delayMs: r.int(10, 2000) } : {}),
        });
        break;
      case 'addCall':
        ops.push({ op: 'addCall', key: addKey(), n: r.int(1, 9) });
        break;
      case 'awakeable':
        ops.push({
          op: 'awakeable',
          style: r.chance(0.5) ? 'race' : 'orTimeout',
          timerMs: r.int(20, 1200),
          waitAfterMs: r.int(50, 800),
        });
        break;
      case 'promise':
        ops.push({
          op: 'promise',
          name: `p${i}`,
          ...(r.chance(0.3) ? { timeoutMs: r.int(50, 1500) } : {}),
        });
        break;
      case 'saga':
        ops.push({
          op: 'saga',
          steps: r.int(1, 4),
          ...(r.chance(0.5) ? { failAt: r.int(0, 3) } : {}),
        });
        break;
      case 'queued':
        ops.push({
          op: 'queued',
          via: r.chance(0.5) ? 'call' : 'send',
          key: r.pick(QUEUE_KEYS),
          prio: queuedPriority(r),
          sleepMs: r.chance(0.3) ? r.int(10, 600) : 0,
        });
        break;
    }
  }
  return ops;
}

/** A compensation: mostly one that works, some retried, failing for good, or failing and going on. */
function undoKind(r: Rng): Exclude<DUndo, false> {
  const k = r.weighted({ ok: 60, flaky: 10, broken: 18, soft: 12 });
  return k === 'ok' ? true : k;
}

/** A step's compensation: mostly one step, a fifth a `compensate` list of 2 or 3. */
function undoOf(r: Rng): DUndos {
  return r.chance(0.2) ? Array.from({ length: r.int(2, 3) }, () => undoKind(r)) : undoKind(r);
}

/**
 * A generated declarative flow: effects, api calls, retried effects, expressions, branches,
 * `continue` steps, steps with a timeout (some outlasting it), compensations (some a list of
 * several) that fail, failures. A flow that will be cancelled is slower, so the cancel often
 * lands while it runs or waits; its timed steps do not outlast their timeout but last long
 * enough for the cancel to land while they are in flight (their undo is then owed).
 */
function dflowSteps(r: Rng, cancellable: boolean, databases: DDb[]): DStep[] {
  const steps: DStep[] = [];
  const n = r.int(1, 5);
  const effect = (id: string, undo: DUndos): DStep => ({
    kind: 'effect',
    id,
    // Some long enough for a kill (or a cancel) to land inside: an effect cut mid-body runs again.
    ms: r.chance(cancellable ? 0.6 : 0.3) ? r.int(50, 300) : r.int(0, 20),
    undo,
  });
  for (let i = 0; i < n; i++) {
    const id = `s${i}`;
    const kind = r.weighted({
      effect: 30,
      api: 12,
      flaky: 10,
      expr: 12,
      branch: 12,
      cont: 8,
      // More in a run that may be cancelled: a cancel cutting a timed step in flight.
      timed: cancellable ? 16 : 8,
      db: databases.length > 0 ? 10 : 0,
    });
    if (kind === 'effect') steps.push(effect(id, r.chance(0.5) ? undoOf(r) : false));
    else if (kind === 'cont') steps.push({ kind: 'cont', id, undo: r.chance(0.3) });
    else if (kind === 'db') {
      const on = r.pick(databases);
      steps.push(on === 'pg' ? { kind: 'db', id } : { kind: 'db', id, on });
    } else if (kind === 'timed') {
      // Late: the body lasts ten times the timeout and more, so the durable timer wins even
      // when a kill or a stall delays both (the body starts again from its beginning).
      // In a run that may be cancelled: never late, and slow, so the cancel lands in flight.
      const late = !cancellable && r.chance(0.5);
      steps.push({
        kind: 'timed',
        id,
        late,
        ms: late ? r.int(2500, 4000) : cancellable ? r.int(150, 900) : r.int(0, 20),
        timeoutMs: late ? r.int(100, 250) : 60_000,
        undo: r.chance(cancellable ? 0.9 : 0.6) ? undoOf(r) : false,
      });
    } else if (kind === 'api') steps.push({ kind: 'api', id });
    else if (kind === 'flaky') steps.push({ kind: 'flaky', id, ms: r.int(0, 10) });
    else if (kind === 'expr') steps.push({ kind: 'expr', id, add: r.int(0, 50) });
    else {
      const list = (b: string): DStep[] =>
        Array.from({ length: r.int(1, 2) }, (_, j) => effect(`${id}${b}${j}`, false));
      steps.push({ kind: 'branch', id, threshold: r.int(0, 9), then: list('t'), else: list('e') });
    }
  }
  // A quarter fail somewhere after their first step: the completed steps are compensated.
  if (r.chance(0.25)) steps.splice(r.int(1, steps.length), 0, { kind: 'fail', id: 'boom' });
  return steps;
}

/** Mostly the default 0; some higher (served first within their key), a few lower. */
function queuedPriority(r: Rng): number {
  const p = r.float();
  return p < 0.7 ? 0 : p < 0.9 ? r.int(1, 10) : -r.int(1, 10);
}

/**
 * What a run has besides the apps: the databases of flows' `database` steps (`databases`;
 * `database: true` alone is PostgreSQL's).
 */
export interface GenerateOptions {
  database?: boolean;
  databases?: DDb[];
}

/** Operation `n` of a run with this seed. */
export function generateOp(seed: string, n: number, options: GenerateOptions = {}): ClientOp {
  const r = new Rng(`${seed}/op/${n}`);
  const kind = r.weighted({ flow: 35, work: 20, add: 45, queued: 8, dflow: 14 });
  if (kind === 'dflow') {
    const fixed = r.chance(0.3);
    const cancel = !fixed && r.chance(0.3);
    return {
      kind: 'dflow',
      n,
      name: fixed ? FIXED_DFLOW.name : `td${n}`,
      steps: fixed
        ? FIXED_DFLOW.steps
        : dflowSteps(r, cancel, options.databases ?? (options.database ? ['pg'] : [])),
      register: !fixed,
      input: { tag: `d${n}`, n: r.int(0, 9) },
      by: r.chance(0.5) ? 'id' : 'idem',
      dupes: dupes(r),
      ...(cancel ? { cancelAfterMs: r.int(0, 1200) } : {}),
    };
  }
  if (kind === 'flow') {
    const cancellable = r.chance(0.1);
    const ops = flowOps(r, cancellable);
    const short = ops.every((o) => o.op !== 'promise' && o.op !== 'awakeable');
    return {
      kind: 'flow',
      n,
      key: `f${n}`,
      input: { ops },
      via: short && r.chance(0.25) ? 'call' : 'send',
      dupes: dupes(r),
      idemHeaders: r.chance(0.5),
      ...(cancellable ? { cancelAfterMs: r.int(0, 2000) } : {}),
      awakeables: ops.flatMap((o, i) =>
        o.op === 'awakeable'
          ? [
              {
                op: i,
                afterMs: r.int(0, 3000),
                action: r.chance(0.5) ? ('resolve' as const) : ('reject' as const),
              },
            ]
          : [],
      ),
      signals: ops.flatMap((o) =>
        o.op === 'promise' ? [{ name: o.name, afterMs: r.int(0, 2500) }] : [],
      ),
    };
  }
  const via = r.chance(0.3) ? 'call' : 'send';
  const delayMs = via === 'send' && r.chance(0.3) ? r.int(10, 3000) : undefined;
  if (kind === 'queued') {
    return {
      kind: 'queued',
      n,
      tag: `q${n}`,
      key: r.pick(QUEUE_KEYS),
      prio: queuedPriority(r),
      sleepMs: r.chance(0.3) ? r.int(10, 800) : 0,
      via,
      ...(delayMs !== undefined ? { delayMs } : {}),
      ...(r.chance(0.6) ? { idem: { key: `iq${n}`, dupes: dupes(r) } } : {}),
    };
  }
  if (kind === 'work') {
    return {
      kind: 'work',
      n,
      tag: `w${n}`,
      steps: r.int(1, 3),
      sleepMs: r.chance(0.3) ? r.int(10, 800) : 0,
      via,
      ...(delayMs !== undefined ? { delayMs } : {}),
      ...(r.chance(0.6) ? { idem: { key: `iw${n}`, dupes: dupes(r) } } : {}),
    };
  }
  // Adds with an idempotency key are retried until acknowledged, so their keys stay exact.
  const idem = r.chance(0.6);
  return {
    kind: 'add',
    n,
    tag: `a${n}`,
    key: r.pick(idem ? EXACT_KEYS : MAYBE_KEYS),
    amount: r.int(1, 9),
    via,
    ...(delayMs !== undefined ? { delayMs } : {}),
    ...(idem ? { idem: { key: `ia${n}`, dupes: dupes(r) } } : {}),
  };
}
