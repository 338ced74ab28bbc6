/** Figures of a run (recovery after kills, throughput around them) and the summary table. */
import type { LogAnalysis } from './checker.js';
import type { FaultRecord } from './nemesis.js';
import type { LogLine } from './program.js';
import type { Problem } from './workload.js';

export interface Recovery {
  /** Per kill: ms from the kill until the last step it interrupted ran again (if any did). */
  resumeMs: number[];
  /** Per kill: ms until the killed slot served again. */
  restartMs: number[];
  /** Acknowledgements per second in the 5 s before each kill, and the 5 s after it. */
  before: number;
  after: number;
}

/**
 * Work a kill interrupted: steps the victim started and never ended, that ran again later.
 * The time from the kill to their re-run is how long the cluster took to resume them (a lease
 * period on PostgreSQL, the restart and recovery on SQLite).
 */
export function recovery(lines: LogLine[], faults: FaultRecord[], ackTimes: number[]): Recovery {
  const resumeMs: number[] = [];
  const restartMs: number[] = [];
  const open = new Map<number, Set<string>>();
  const starts = new Map<string, LogLine[]>();
  const cut: Array<{ kill: LogLine; steps: string[] }> = [];
  for (const l of lines) {
    if (l.kind === 'start') {
      const step = l.args[0]!;
      starts.set(step, [...(starts.get(step) ?? []), l]);
      const mine = open.get(l.pid) ?? new Set<string>();
      mine.add(step);
      open.set(l.pid, mine);
    } else if (l.kind === 'end') open.get(l.pid)?.delete(l.args[0]!);
    else if (l.kind === 'kill') {
      const pid = Number(l.args[0]);
      cut.push({ kill: l, steps: [...(open.get(pid) ?? [])] });
      open.delete(pid);
    }
  }
  for (const { kill, steps } of cut) {
    let worst: number | undefined;
    for (const step of steps) {
      const again = starts.get(step)?.find((l) => l.seq > kill.seq);
      if (again) worst = Math.max(worst ?? 0, again.at - kill.at);
    }
    if (worst !== undefined) resumeMs.push(worst);
  }
  for (const f of faults) if (f.kind === 'kill' && f.backAt) restartMs.push(f.backAt - f.at);
  const kills = faults.filter((f) => f.kind === 'kill');
  const rate = (from: number, to: number): number =>
    ackTimes.filter((t) => t >= from && t < to).length / ((to - from) / 1000);
  const avg = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  return {
    resumeMs,
    restartMs,
    before: avg(kills.map((f) => rate(f.at - 5000, f.at))),
    after: avg(kills.map((f) => rate(f.at, f.at + 5000))),
  };
}

export interface Summary {
  store: string;
  seed: string;
  processes: number;
  seconds: number;
  ops: number;
  requests: number;
  acknowledged: number;
  invocations: number;
  unknownFate: number;
  /** Declarative flow runs: started, answered, and of those answered, compensated. */
  flowRuns: {
    started: number;
    acked: number;
    compensated: number;
    /** Answered runs that ended `compensation_failed`, timed out a step, continued past a failure. */
    compensationFailed: number;
    timedOut: number;
    continued: number;
    /** Runs sent a cancel, cancels accepted (202), runs answered 409 `cancelled`. */
    cancelSent: number;
    cancelAccepted: number;
    cancelled: number;
    /** Runs answered `cancelled` whose cancel cut a timed step with a compensation in flight. */
    cutTimed: number;
    /** Compensation steps of `compensate` lists attempted. */
    listUndos: number;
    /** Rows the flows' `database` steps wrote (undefined: the run had no database steps). */
    dbRows?: number;
    /** Those rows by database (`pg 3, mysql 2, redis 4`). */
    dbRowsByKind?: string;
    /** Flow step executions (effect bodies, downstream requests), of one step again, failed on purpose. */
    runs: number;
    again: number;
    flakes: number;
    /** Runs whose steps ran in more than one app process (resumed after a kill, or adopted). */
    resumed: number;
  };
  kills: number;
  /** Clean stops (SIGTERM) of app processes, restarted like kills. */
  terms: number;
  /** Processes stopped (SIGSTOP) for a while and let go on. */
  stalls: number;
  dbFaults: number;
  /** Real restarts of the private PostgreSQL server (`--pg-restart real`), by shutdown mode. */
  pgRestarts?: { fast: number; immediate: number };
  starts: number;
  lost: number;
  stuck: number;
  log: LogAnalysis;
  unplannedExits: number;
  recovery: Recovery;
  odd: Map<string, number>;
  problems: Problem[];
}

export function formatSummary(s: Summary): string {
  const ms = (xs: number[]): string =>
    xs.length === 0
      ? '-'
      : `median ${Math.round(median(xs))} ms, max ${Math.round(Math.max(...xs))} ms (${xs.length})`;
  const rows: Array<[string, string]> = [
    ['store', `${s.store} (${s.processes} process${s.processes > 1 ? 'es' : ''})`],
    ['seed', s.seed],
    ['duration', `${s.seconds.toFixed(1)} s`],
    ['operations', String(s.ops)],
    ['requests', String(s.requests)],
    ['acknowledged answers', String(s.acknowledged)],
    ['invocations checked', String(s.invocations)],
    ['unknown fate (not acked)', String(s.unknownFate)],
    [
      'declarative flow runs (answered / compensated / resumed elsewhere)',
      `${s.flowRuns.started} (${s.flowRuns.acked} / ${s.flowRuns.compensated} / ${s.flowRuns.resumed})`,
    ],
    [
      'flow runs answered compensation_failed / timed out / continued',
      `${s.flowRuns.compensationFailed} / ${s.flowRuns.timedOut} / ${s.flowRuns.continued}`,
    ],
    [
      'flow run cancels (sent / accepted / answered cancelled / cut a timed step)',
      `${s.flowRuns.cancelSent} / ${s.flowRuns.cancelAccepted} / ${s.flowRuns.cancelled} / ${s.flowRuns.cutTimed}`,
    ],
    ['flow compensate-list steps attempted', String(s.flowRuns.listUndos)],
    [
      'flow database step rows',
      s.flowRuns.dbRows === undefined
        ? 'none (no database)'
        : `${s.flowRuns.dbRows} (${s.flowRuns.dbRowsByKind ?? ''})`,
    ],
    [
      'flow step executions (again / failed on purpose)',
      `${s.flowRuns.runs} (${s.flowRuns.again} / ${s.flowRuns.flakes})`,
    ],
    ['kills', String(s.kills)],
    ['clean stops (SIGTERM)', String(s.terms)],
    ['stalls (SIGSTOP, then SIGCONT)', String(s.stalls)],
    ['database faults', String(s.dbFaults)],
    ...(s.pgRestarts
      ? [
          [
            'of which real restarts (fast / immediate)',
            `${s.pgRestarts.fast} / ${s.pgRestarts.immediate}`,
          ] as [string, string],
        ]
      : []),
    ['process starts', String(s.starts)],
    ['step executions', `${s.log.executions} of ${s.log.steps} steps`],
    [
      're-run steps (in flight at a crash)',
      String(s.log.reruns - s.log.completedReruns - s.log.unexplainedReruns),
    ],
    ['LOST', String(s.lost)],
    ['STUCK', String(s.stuck)],
    ['COMPLETED STEPS RE-RUN', String(s.log.completedReruns)],
    ['RE-RUNS WITHOUT A CRASH', String(s.log.unexplainedReruns)],
    ['zombie overlaps (fenced, nothing committed)', String(s.log.zombieOverlaps)],
    ['EXCLUSIVITY VIOLATIONS', String(s.log.overlaps)],
    [
      'queued invocations run (peak inside / of one key)',
      `${s.log.queueAdmissions} (${s.log.queuePeak.total} / ${s.log.queuePeak.perKey})`,
    ],
    [
      'slots re-entered after a kill or fence / other',
      `${s.log.queueReentries.afterCut} / ${s.log.queueReentries.other}`,
    ],
    ['QUEUE LIMIT VIOLATIONS', String(s.log.queueViolations)],
    ['UNPLANNED EXITS', String(s.unplannedExits)],
    ['VIOLATIONS (all invariants)', String(s.problems.length)],
    [
      'acks/s 5 s before / after kills',
      `${s.recovery.before.toFixed(1)} / ${s.recovery.after.toFixed(1)}`,
    ],
    ['interrupted work resumed after', ms(s.recovery.resumeMs)],
    ['killed process serving again after', ms(s.recovery.restartMs)],
  ];
  if (s.odd.size > 0) {
    rows.push(['odd answers', [...s.odd].map(([k, n]) => `${k} x${n}`).join('; ')]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n');
}

/** Violations grouped by invariant, a few examples each. */
export function formatProblems(problems: Problem[], perInvariant = 5): string {
  const by = new Map<string, string[]>();
  for (const p of problems) by.set(p.invariant, [...(by.get(p.invariant) ?? []), p.detail]);
  return [...by]
    .map(
      ([inv, details]) =>
        `  ${inv}: ${details.length}\n${details
          .slice(0, perInvariant)
          .map((d) => `    - ${d}`)
          .join(
            '\n',
          )}${details.length > perInvariant ? `\n    ... and ${details.length - perInvariant} more` : ''}`,
    )
    .join('\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
