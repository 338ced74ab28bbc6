/**
 * The app processes under torture: spawns them, kills them with SIGKILL, restarts them, and
 * notices every exit the harness did not cause (a violation: Keel must never exit on its own).
 * Each process's stderr goes to its own file in the run directory, for diagnosis.
 *
 * No process outlives the run: `stop()` kills every child (serving or still starting) and no
 * restart is spawned after it; an exit hook SIGKILLs whatever is left on `process.exit`; and each
 * child holds a pipe from the harness as its stdin (TORTURE_LIFELINE), which it reads to its end
 * and then kills itself, so even a harness killed with SIGKILL (a test worker torn down) takes
 * its children along. Children run in a process group of their own: a Ctrl-C reaches the
 * harness alone, which then ends them itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { record } from './program.js';

export interface AppProcess {
  slot: number;
  child: ChildProcess;
  pid: number;
  url: string;
  admin: string;
  stderrFile: string;
}

/** An exit the harness did not ask for. */
export interface UnplannedExit {
  slot: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Whether it happened before the process served (a crash loop on recovery shows as this). */
  duringStartup: boolean;
  stderrTail: string;
  at: number;
}

export interface ClusterOptions {
  fixture: string;
  env: Record<string, string>;
  size: number;
  logFile: string;
  runDir: string;
  /** How long a start may take before it counts as failed. Default 60 s (2 busy cores). */
  startTimeoutMs?: number;
}

/**
 * Stop restarting a slot whose process died on its own this many times in a row, each before
 * it had served for `STABLE_MS`: it crash-loops (typically replaying a journal that kills it).
 */
export const CRASH_LOOP_LIMIT = 4;
const STABLE_MS = 5_000;

/** Every child spawned by any cluster of this process and not exited yet. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export class Cluster {
  readonly unplanned: UnplannedExit[] = [];
  readonly crashLooping = new Set<number>();
  private readonly slots: Array<AppProcess | undefined>;
  private readonly starting = new Map<number, Promise<AppProcess | undefined>>();
  private readonly killing = new Set<number>();
  /** Processes under SIGSTOP now (see `stall`). */
  private readonly stalled = new Set<AppProcess>();
  private readonly startFailures: number[];
  private spawned = 0;
  private stopping = false;
  /** This cluster's children not exited yet. */
  private readonly mine = new Set<ChildProcess>();
  starts = 0;

  constructor(private readonly options: ClusterOptions) {
    this.slots = Array.from({ length: options.size }, () => undefined);
    this.startFailures = Array.from({ length: options.size }, () => 0);
  }

  /** Starts every slot; resolves when all serve. */
  async start(): Promise<void> {
    const started = await Promise.all(this.slots.map((_, i) => this.startSlot(i)));
    if (started.some((p) => p === undefined))
      throw new Error(`an app process failed to start:\n${this.describeUnplanned()}`);
  }

  /** Processes currently serving. */
  live(): AppProcess[] {
    return this.slots.filter((p): p is AppProcess => p !== undefined);
  }

  isDown(slot: number): boolean {
    return this.slots[slot] === undefined;
  }

  /** SIGKILLs the slot's process and waits until it is gone; the log gets `kill <pid>` after. */
  async kill(slot: number): Promise<number | undefined> {
    const p = this.slots[slot];
    if (!p) return undefined;
    this.slots[slot] = undefined;
    this.killing.add(p.pid);
    const gone = new Promise((r) => p.child.once('exit', r));
    p.child.kill('SIGKILL');
    await gone;
    record(this.options.logFile, 'kill', String(p.pid));
    return p.pid;
  }

  /**
   * Stops the slot's process cleanly with SIGTERM (the app closes: ingress, admin, engine) and
   * waits until it has exited, at most 30 s (then SIGKILL); the log gets `term <pid>` after.
   * Resolves with the pid and its exit code (null when it had to be killed).
   */
  async term(slot: number): Promise<{ pid: number; code: number | null } | undefined> {
    const p = this.slots[slot];
    if (!p) return undefined;
    this.slots[slot] = undefined;
    this.killing.add(p.pid);
    const gone = new Promise<number | null>((r) => p.child.once('exit', (code) => r(code)));
    p.child.kill('SIGTERM');
    const late = setTimeout(() => p.child.kill('SIGKILL'), 30_000);
    const code = await gone;
    clearTimeout(late);
    record(this.options.logFile, 'term', String(p.pid));
    return { pid: p.pid, code };
  }

  /**
   * Stops the slot's process with SIGSTOP for `ms`, then lets it go on (SIGCONT), as a long
   * GC pause, a swapped-out VM or a frozen container would: its lease runs out while it cannot
   * know, so others adopt its invocations, and it wakes up to find itself fenced. The log gets
   * `stall <pid> begin` and `stall <pid> end`. Resolves with the pid, or undefined if the slot
   * was down; a kill during the stall ends it (SIGKILL reaches a stopped process).
   */
  async stall(slot: number, ms: number): Promise<number | undefined> {
    const p = this.slots[slot];
    if (!p) return undefined;
    this.stalled.add(p);
    p.child.kill('SIGSTOP');
    record(this.options.logFile, 'stall', String(p.pid), 'begin');
    try {
      const until = Date.now() + ms;
      while (!this.stopping && this.slots[slot] === p && Date.now() < until)
        await new Promise((r) => setTimeout(r, Math.min(50, until - Date.now())));
    } finally {
      this.stalled.delete(p);
      if (this.slots[slot] === p) p.child.kill('SIGCONT');
      record(this.options.logFile, 'stall', String(p.pid), 'end');
    }
    return p.pid;
  }

  /** Starts the slot again (if it is down and not already starting). */
  restart(slot: number): Promise<AppProcess | undefined> {
    const p = this.slots[slot];
    if (p) return Promise.resolve(p);
    return this.startSlot(slot);
  }

  /** Brings every slot that is down back up (crash-looping ones get one more try). */
  async restartAll(): Promise<void> {
    this.crashLooping.clear();
    await Promise.all(this.slots.map((_, i) => this.restart(i)));
  }

  /** Kills everything, serving or still starting (planned), and stops restarting. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.slots.map((_, i) => this.kill(i)));
    await Promise.all(
      [...this.mine].map((child) => {
        const gone = new Promise((r) => child.once('exit', r));
        if (child.pid !== undefined) this.killing.add(child.pid);
        child.kill('SIGKILL');
        return gone;
      }),
    );
    await Promise.all([...this.starting.values()]);
  }

  describeUnplanned(): string {
    return this.unplanned
      .map(
        (u) =>
          `pid ${u.pid} (slot ${u.slot}) exited with ${u.signal ?? `code ${u.code}`}${u.duringStartup ? ' while starting' : ''}:\n${indent(u.stderrTail)}`,
      )
      .join('\n');
  }

  private startSlot(slot: number): Promise<AppProcess | undefined> {
    const existing = this.starting.get(slot);
    if (existing) return existing;
    const started = this.spawnOne(slot).finally(() => this.starting.delete(slot));
    this.starting.set(slot, started);
    return started;
  }

  private spawnOne(slot: number): Promise<AppProcess | undefined> {
    // A restart timer may fire after stop(): nothing is spawned then.
    if (this.stopping) return Promise.resolve(undefined);
    const stderrFile = join(this.options.runDir, `app-${slot}-${this.spawned++}.stderr`);
    const fd = openSync(stderrFile, 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', this.options.fixture], {
      env: {
        ...process.env,
        ...this.options.env,
        TORTURE_LOG: this.options.logFile,
        TORTURE_LIFELINE: '1',
      },
      stdio: ['pipe', 'pipe', fd],
      detached: true,
    });
    closeSync(fd);
    children.add(child);
    this.mine.add(child);
    // Writing nothing to the lifeline: only its end (the harness gone) matters. An EPIPE after
    // the child died is of no interest.
    child.stdin?.on('error', () => undefined);
    this.starts++;
    const pid = child.pid ?? -1;
    record(this.options.logFile, 'spawn', String(pid));
    return new Promise((resolve) => {
      let out = '';
      let ready: AppProcess | undefined;
      let readyAt = 0;
      const timer = setTimeout(() => {
        // A start that never serves is a failure too; kill it as part of the harness's work.
        this.killing.add(pid);
        child.kill('SIGKILL');
      }, this.options.startTimeoutMs ?? 60_000);
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /READY (\S+) (\S+)/.exec(out);
        if (m && !ready) {
          clearTimeout(timer);
          ready = { slot, child, pid, url: m[1]!, admin: m[2]!, stderrFile };
          readyAt = Date.now();
          this.slots[slot] = ready;
          resolve(ready);
        }
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        children.delete(child);
        this.mine.delete(child);
        if (this.slots[slot] === ready && ready) this.slots[slot] = undefined;
        const planned = this.killing.delete(pid);
        if (planned || (ready && Date.now() - readyAt >= STABLE_MS)) this.startFailures[slot] = 0;
        if (!planned) {
          record(this.options.logFile, 'died', String(pid));
          this.unplanned.push({
            slot,
            pid,
            code,
            signal,
            duringStartup: !ready,
            stderrTail: tail(stderrFile),
            at: Date.now(),
          });
          if (!ready || Date.now() - readyAt < STABLE_MS) this.startFailures[slot]!++;
          if (this.startFailures[slot]! >= CRASH_LOOP_LIMIT) this.crashLooping.add(slot);
          else if (!this.stopping && ready) {
            // Keep the run going: the exit is recorded; bring the slot back after a breath.
            setTimeout(() => void this.restart(slot), 300);
          }
        }
        if (!ready) {
          if (!planned && !this.stopping && !this.crashLooping.has(slot)) {
            setTimeout(() => void this.spawnOne(slot).then(resolve), 300);
          } else resolve(undefined);
        }
      });
    });
  }
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n').trim();
  } catch {
    return '';
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
