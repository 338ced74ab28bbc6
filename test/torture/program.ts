/**
 * What the torture harness and its app agree on: the shape of a generated workflow program, the
 * step ids, and the lines of the execution log.
 *
 * The execution log is one file opened with O_APPEND by every app process and by the harness:
 * each line is one small synchronous `appendFileSync`, so the order of lines in the file is the
 * order in which they happened, across processes, and it survives `kill -9` (it is written
 * outside the engine, before the engine could journal anything about it).
 */
import { appendFileSync, closeSync, openSync, readSync } from 'node:fs';

/** One operation of a generated workflow program (interpreted by `Flow.run` in the app). */
export type FlowOp =
  /** One `ctx.run` step whose body pauses `ms`. */
  | { op: 'step'; ms: number }
  /** `ctx.all` over `n` steps. */
  | { op: 'parallel'; n: number; ms: number }
  /** A durable timer. */
  | { op: 'sleep'; ms: number }
  /** A request-response call to `Worker.work` (its own steps and sleep). */
  | { op: 'call'; steps: number; sleepMs: number }
  /** A one-way send of `Counter.add(n)` to `key`, optionally delayed. */
  | { op: 'add'; key: string; n: number; delayMs?: number }
  /** A request-response call of `Counter.add(n)` on `key`. */
  | { op: 'addCall'; key: string; n: number }
  /**
   * An awakeable raced against a timer (`race`: `ctx.race`, `orTimeout`: `.orTimeout()`), then
   * another sleep, so the invocation suspends with the race decided; the harness completes the
   * awakeable at some moment, often after it lost.
   */
  | { op: 'awakeable'; style: 'race' | 'orTimeout'; timerMs: number; waitAfterMs: number }
  /** Waits for durable promise `name` (resolved by the harness through `Flow.signal`). */
  | { op: 'promise'; name: string; timeoutMs?: number }
  /** A saga of `steps` steps with compensations; step `failAt` fails terminally. */
  | { op: 'saga'; steps: number; failAt?: number }
  /**
   * A call (waits for its result) or a send (does not) of the queued handler `Queued.work`,
   * from inside the workflow: a queued invocation created by a handler, not by the ingress.
   */
  | { op: 'queued'; via: 'call' | 'send'; key: string; prio: number; sleepMs: number };

export interface FlowInput {
  ops: FlowOp[];
}

/** What `Flow.run` returns: enough for the checker to see the whole program ran. */
export interface FlowOutput {
  key: string;
  ops: number;
}

export interface WorkInput {
  /** Unique per logical operation: a duplicate execution of the operation reuses its step ids. */
  tag: string;
  steps: number;
  ms: number;
  sleepMs: number;
}

export interface AddInput {
  tag: string;
  n: number;
}

/**
 * The flow-control queue of `Queued.work` (test/fixtures/torture-app.ts): the fixture declares
 * it with these limits and the checker holds the execution log to them.
 */
export const QUEUE = { name: 'torture', concurrency: 2, perKey: 1 } as const;
/** The queue keys `Queued.work` is called with (few, so the per-key limit binds often). */
export const QUEUE_KEYS = ['q0', 'q1', 'q2'];

export interface QueuedInput {
  /** Unique per logical operation, as for `WorkInput`. */
  tag: string;
  /** Its queue key (one of `QUEUE_KEYS`). */
  key: string;
  /** Its priority in the queue (higher first, within a key). */
  prio: number;
  /** A durable sleep between its two steps (0: none), so it may suspend holding its slot. */
  sleepMs: number;
}

/** What `Queued.work` returns for an input. */
export const queuedOutput = (input: { tag: string; key: string }): string =>
  `${input.tag}@${input.key}`;

/** Step ids: stable per logical step, so a second execution of the same step is visible. */
export const stepId = {
  flow: (key: string, op: number, sub?: string): string =>
    sub === undefined ? `F/${key}/${op}` : `F/${key}/${op}.${sub}`,
  work: (tag: string, step: number): string => `W/${tag}/${step}`,
  add: (tag: string): string => `C/${tag}`,
  queued: (tag: string, step: number): string => `Q/${tag}/${step}`,
};

/**
 * A line of the execution log: `<epoch ms> <pid> <kind> <args...>`. Kinds written by the app:
 * - `start <step>` / `end <step>`: a step body began / returned (one execution);
 * - `ack <step>`: the handler observed the step's result, so it was durable (journaled);
 * - `enter <key> <tag>` / `exit <key> <tag>`: an exclusive `Counter.add` began / ended;
 * - `qenter <queueKey> <tag>` / `qexit <queueKey> <tag>`: an attempt of `Queued.work` (which
 *   runs only once admitted by its queue) began / ended its body;
 * - `awk <flowKey> <op> <awakeableId>`: a flow created an awakeable;
 * - `flake <step>`: a declarative flow's `flaky` step failed its planned first attempt in this
 *   process (no execution: its retry logs `start`/`end`; test/torture/dflow.ts), or an attempt
 *   of a compensation that always fails (`broken`);
 * - `writefail`: the engine reported that a journal write of an attempt in this process failed
 *   (the attempt is abandoned and retried from its journal);
 * - `fenced`: the engine reported that this live process lost its lease (its writes refused);
 * - `joined <processId>`: this process (re)joined the cluster under that id;
 * - `adopted <n> <processId...>`: this process reaped those ids and took over their n
 *   invocations (for reading a report; the checker does not use these two).
 * Kinds written by the harness: `api <step> <Idempotency-Key>` (and `ack`) from the downstream
 * service flows' `api` steps call (test/torture/downstream.ts), `spawn <pid>`, `kill <pid>` (after it is gone), `died <pid>`
 * (an exit the harness did not cause), `outage begin|end`, `stall <pid> begin|end` (SIGSTOP and
 * SIGCONT of that process: nothing of it runs in between; see `Cluster.stall`).
 */
export interface LogLine {
  /** Position in the file: the global order of events. */
  seq: number;
  at: number;
  pid: number;
  kind: string;
  args: string[];
}

export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Appends one line (synchronously: it is on disk, in order, before the caller goes on). */
export function record(file: string, kind: string, ...args: string[]): void {
  appendFileSync(file, `${now().toFixed(3)} ${process.pid} ${kind} ${args.join(' ')}\n`);
}

export function parseLog(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [at, pid, kind, ...args] = line.split(' ');
    // A process killed mid-write can leave a torn last line; it never ends with a newline
    // before the next writer's line, so it parses with a bad number: skip it.
    if (kind === undefined || !Number.isFinite(Number(at)) || !Number.isFinite(Number(pid)))
      continue;
    out.push({
      seq: out.length,
      at: Number(at),
      pid: Number(pid),
      kind,
      args: args.filter((a) => a !== ''),
    });
  }
  return out;
}

/** Reads the log as it grows (for awakeable ids the harness must learn while the run goes on). */
export class LogTail {
  private offset = 0;
  private rest = '';
  private readonly awakeables = new Map<string, string>();

  constructor(private readonly file: string) {}

  /** The id of the awakeable that flow `key` created at op `op`, once it has. */
  awakeable(key: string, op: number): string | undefined {
    this.poll();
    return this.awakeables.get(`${key}/${op}`);
  }

  private poll(): void {
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch {
      return;
    }
    try {
      const buf = Buffer.alloc(1 << 16);
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, this.offset);
        if (n === 0) break;
        this.offset += n;
        const text = this.rest + buf.toString('utf8', 0, n);
        const cut = text.lastIndexOf('\n');
        this.rest = text.slice(cut + 1);
        for (const line of parseLog(text.slice(0, cut + 1))) {
          if (line.kind === 'awk')
            this.awakeables.set(`${line.args[0]}/${line.args[1]}`, line.args[2]!);
        }
      }
    } finally {
      closeSync(fd);
    }
  }
}
