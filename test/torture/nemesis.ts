/**
 * The nemesis (after Jepsen): faults injected at random moments from their own seeded stream.
 * - `kill`: SIGKILL one serving process, restart it after a short random downtime;
 * - `term`: SIGTERM one serving process, a clean stop (a deploy): it lets its step bodies in
 *   flight finish and journal, starts none, (PostgreSQL) leaves the cluster so the others adopt
 *   its invocations at once, and exits. Restarted like a kill. Unlike a kill it excuses no step
 *   re-run (checker.ts), unless the process logged that a body outlived its grace (`undrained`);
 * - `stall`: SIGSTOP one serving process for a while, then SIGCONT: a process that cannot know
 *   its lease ran out (a long GC pause, a frozen VM) wakes up among adopters of its work;
 * - `pg-outage`: the proxy in front of PostgreSQL resets every connection and refuses new ones
 *   for a while (what the apps see of a database restart or failover);
 * - `pg-terminate`: pg_terminate_backend on every connection the apps hold (through the proxy);
 * - `pg-restart`: with `--pg-restart real`, the run's own private PostgreSQL server (postgres.ts)
 *   really restarts: `pg_ctl restart -m fast`, or one time in three `-m immediate` (a crash of the
 *   server, recovered from its WAL). Never the machine's shared server.
 * Every fault is written to the execution log, so the checker can tell a step re-run that a
 * crash explains from one nothing explains.
 */
import pg from 'pg';
import type { Cluster } from './cluster.js';
import type { Rng } from './generator.js';
import { sleep } from './http.js';
import type { PrivatePostgres } from './postgres.js';
import { record } from './program.js';
import type { TcpProxy } from './proxy.js';

export interface NemesisOptions {
  cluster: Cluster;
  rng: Rng;
  logFile: string;
  /** Gap between faults, ms (uniform in the range). */
  every: [number, number];
  /** Downtime of a killed process before its restart, ms. */
  downtime: [number, number];
  /**
   * Count the gap to the next fault from when the killed process serves again (one process:
   * otherwise a slow start would leave it down most of the run).
   */
  gapAfterRestart: boolean;
  /**
   * Stalls (SIGSTOP, then SIGCONT), drawn from their own stream (`stallRng`) so that a seed's
   * kills and database faults stay where they were: `share` of the process faults from the
   * fourth fault on, each lasting `ms` (uniform).
   */
  stall?: { rng: Rng; share: number; ms: [number, number] };
  /**
   * Clean stops (SIGTERM) instead of kills, from their own stream so that a seed's other faults
   * stay where they were: `share` of the process faults.
   */
  term?: { rng: Rng; share: number };
  /** PostgreSQL faults, when the store is PostgreSQL. */
  pg?: {
    /** The proxy the apps reach the database through (`proxy` and `none`). */
    proxy?: TcpProxy;
    adminUrl: string;
    mode: 'proxy' | 'real' | 'none';
    /** The run's private server, which `real` restarts. */
    server?: PrivatePostgres;
    /** Share of faults that hit the database instead of a process. */
    share: number;
    outageMs: [number, number];
  };
}

export interface FaultRecord {
  kind: 'kill' | 'term' | 'stall' | 'pg-outage' | 'pg-terminate' | 'pg-restart';
  at: number;
  pid?: number;
  /**
   * For a kill or a term: when the process served again. For a stall: how long it was stopped
   * (`ms`). For a term: how long the clean stop took (`ms`).
   */
  backAt?: number;
  ms?: number;
  /** For a pg-restart: the shutdown mode. */
  how?: 'fast' | 'immediate';
}

export class Nemesis {
  readonly faults: FaultRecord[] = [];
  /** Faults the nemesis failed to inject (a restart that did not come back): harness problems. */
  readonly errors: string[] = [];
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly pendingRestarts = new Set<Promise<unknown>>();

  constructor(private readonly o: NemesisOptions) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stops injecting faults and heals everything: the database answers, every process serves. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await Promise.all([...this.pendingRestarts]);
    await this.o.pg?.proxy?.up();
    await this.o.pg?.server?.ensureRunning();
  }

  private async run(): Promise<void> {
    const { rng, every } = this.o;
    while (this.running) {
      const gap = rng.int(every[0], every[1]);
      const until = Date.now() + gap;
      while (this.running && Date.now() < until) await sleep(Math.min(50, until - Date.now()));
      if (!this.running) return;
      // The first fault always kills a process and the third always hits the database, so even
      // a short run sees both (a run whose faults all hit the database proved nothing about kills:
      // CI seed d464256c).
      const pgFault =
        this.o.pg !== undefined &&
        this.o.pg.mode !== 'none' &&
        this.faults.length !== 0 &&
        (this.faults.length === 2 || rng.chance(this.o.pg.share));
      if (pgFault) {
        await this.databaseFault().catch((err: unknown) => {
          this.errors.push(`database fault: ${String(err)}`);
        });
      } else if (
        this.o.stall &&
        this.faults.length >= 3 &&
        this.o.stall.rng.chance(this.o.stall.share)
      ) {
        await this.stall(this.o.stall);
      } else {
        const term = this.o.term !== undefined && this.o.term.rng.chance(this.o.term.share);
        const killed = await this.kill(term);
        if (this.o.gapAfterRestart) await killed?.restart;
      }
    }
  }

  /**
   * Kills a serving process (or stops it cleanly: `term`); resolves once it is gone, with a
   * promise of its restart.
   */
  private async kill(term = false): Promise<{ restart: Promise<unknown> } | undefined> {
    const { cluster, rng } = this.o;
    const live = cluster.live();
    if (live.length === 0) return undefined;
    const victim = rng.pick(live);
    const downMs = rng.int(this.o.downtime[0], this.o.downtime[1]);
    const at = Date.now();
    let pid: number | undefined;
    let fault: FaultRecord;
    if (term) {
      const stopped = await cluster.term(victim.slot);
      if (stopped === undefined) return undefined;
      pid = stopped.pid;
      fault = { kind: 'term', at, pid, ms: Date.now() - at };
      // Keel must stop cleanly: exit code 0 (1 when closing failed), and within its drain.
      if (stopped.code !== 0)
        this.errors.push(
          `pid ${pid} exited with ${stopped.code === null ? 'SIGKILL after 30 s' : `code ${stopped.code}`} after SIGTERM`,
        );
    } else {
      pid = await cluster.kill(victim.slot);
      if (pid === undefined) return undefined;
      fault = { kind: 'kill', at, pid };
    }
    this.faults.push(fault);
    const restart = sleep(downMs)
      .then(() => cluster.restart(victim.slot))
      .then(() => {
        fault.backAt = Date.now();
      });
    this.pendingRestarts.add(restart);
    void restart.finally(() => this.pendingRestarts.delete(restart));
    // Wrapped: an async function returning the promise itself would wait for it.
    return { restart };
  }

  /** Stalls a serving process; resolves when it runs again (or was killed meanwhile). */
  private async stall(o: NonNullable<NemesisOptions['stall']>): Promise<void> {
    const { cluster, rng } = this.o;
    const live = cluster.live();
    if (live.length === 0) return;
    const victim = rng.pick(live);
    const ms = o.rng.int(o.ms[0], o.ms[1]);
    const at = Date.now();
    const pid = await cluster.stall(victim.slot, ms);
    if (pid !== undefined) this.faults.push({ kind: 'stall', at, pid, ms: Date.now() - at });
  }

  private async databaseFault(): Promise<void> {
    const pgo = this.o.pg!;
    const at = Date.now();
    if (pgo.mode === 'real') {
      const how = this.o.rng.chance(1 / 3) ? 'immediate' : 'fast';
      record(this.o.logFile, 'outage', 'begin');
      try {
        await pgo.server!.restart(how);
      } finally {
        record(this.o.logFile, 'outage', 'end');
        this.faults.push({ kind: 'pg-restart', at, ms: Date.now() - at, how });
      }
      return;
    }
    const proxy = pgo.proxy!;
    if (this.o.rng.chance(0.5)) {
      const ms = this.o.rng.int(pgo.outageMs[0], pgo.outageMs[1]);
      record(this.o.logFile, 'outage', 'begin');
      await proxy.down();
      await sleep(ms);
      await proxy.up();
      record(this.o.logFile, 'outage', 'end');
      this.faults.push({ kind: 'pg-outage', at, ms });
    } else {
      record(this.o.logFile, 'outage', 'begin');
      await terminateBackends(pgo.adminUrl, proxy.upstreamPorts());
      record(this.o.logFile, 'outage', 'end');
      this.faults.push({ kind: 'pg-terminate', at });
    }
  }
}

/** Ends every server process serving the given client ports (the apps' connections). */
async function terminateBackends(adminUrl: string, ports: number[]): Promise<void> {
  if (ports.length === 0) return;
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE client_addr = '127.0.0.1' AND client_port = ANY($1::int[])`,
      [ports],
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
