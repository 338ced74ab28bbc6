/**
 * `keel ls`, `keel show` and the invocation actions (`cancel`, `kill`, `pause`, `resume`,
 * `retry-now`, `restart`, `purge`), one id at a time or in bulk on a filter.
 */
import { Option, type Command } from 'commander';
import type { InvocationInfo } from '../../engine/info.js';
import { act } from '../command.js';
import { pointInTime, positiveInt, type Ctx } from '../context.js';
import { CliError, EXIT, usage } from '../errors.js';
import { admin, query, seg } from '../http.js';
import { brief, duration, fields, status, table, time } from '../output.js';
import { progress } from '../progress.js';

const STATUSES = [
  'queued',
  'pending',
  'scheduled',
  'running',
  'suspended',
  'backing-off',
  'paused',
  'completed',
  'failed',
];

/** The filters of `ls` and of bulk actions, as the dashboard has them. */
interface FilterOptions {
  status?: string;
  service?: string;
  handler?: string;
  key?: string;
  error?: string;
  since?: string;
  until?: string;
}

function addFilters(cmd: Command): Command {
  return cmd
    .option('--status <list>', `statuses, comma-separated (${STATUSES.join(', ')})`)
    .option('--service <name>', 'service, object or workflow name')
    .option('--handler <name>', 'handler name')
    .option('--key <key>', 'object or workflow key')
    .option('--error <code>', 'error code (e.g. retries_exhausted)')
    .option('--since <time>', 'created at or after: ISO time, epoch ms, or a duration ago (1h)')
    .option('--until <time>', 'created before: ISO time, epoch ms, or a duration ago');
}

/** The filter as the admin API takes it (times as ISO), or undefined when none is given. */
function filterOf(o: FilterOptions): Record<string, string> | undefined {
  const f: Record<string, string> = {};
  if (o.status !== undefined) {
    for (const s of o.status.split(',')) {
      if (!STATUSES.includes(s.trim()))
        throw usage(`unknown status "${s}": the statuses are ${STATUSES.join(', ')}`);
    }
    f.status = o.status
      .split(',')
      .map((s) => s.trim())
      .join(',');
  }
  if (o.service !== undefined) f.service = o.service;
  if (o.handler !== undefined) f.handler = o.handler;
  if (o.key !== undefined) f.key = o.key;
  if (o.error !== undefined) f.error = o.error;
  if (o.since !== undefined) f.since = pointInTime(o.since, '--since');
  if (o.until !== undefined) f.until = pointInTime(o.until, '--until');
  return Object.keys(f).length === 0 ? undefined : f;
}

interface ListOptions extends FilterOptions {
  limit?: string;
  cursor?: string;
}

interface ListAnswer {
  invocations: InvocationInfo[];
  nextCursor?: string;
}

async function list(ctx: Ctx, _args: string[], o: ListOptions): Promise<void> {
  const q = {
    ...filterOf(o),
    limit: o.limit === undefined ? undefined : positiveInt(o.limit, '--limit', 1000),
    cursor: o.cursor,
  };
  const { body } = await admin<ListAnswer>(ctx.target, `/invocations${query(q)}`);
  const { out } = ctx;
  if (out.json) return out.data(body);
  if (body.invocations.length === 0) {
    out.line('no invocations match');
    return;
  }
  out.line(
    table(
      out,
      ['ID', 'TARGET', 'STATUS', 'ATTEMPT', 'CREATED', 'ERROR'],
      body.invocations.map((i) => [
        i.id,
        i.target,
        status(out, i.status),
        String(i.attempt),
        time(i.createdAt),
        i.error ? `${i.error.code ?? ''} ${i.error.message}`.trim().slice(0, 60) : '',
      ]),
    ),
  );
  if (body.nextCursor !== undefined)
    out.note(`more: keel ls --cursor ${body.nextCursor} (with the same filters)`);
}

/** A journal entry as the admin API answers it; the timing fields appear where the server has them. */
interface Entry {
  index: number;
  kind: string;
  name: string;
  done: boolean;
  value?: unknown;
  error?: { code?: string; message: string };
  wakeAt?: number;
  calleeId?: string;
  startedAt?: string | number;
  completedAt?: string | number;
  durationMs?: number;
  attempts?: number;
  completedBy?: string;
}

async function show(ctx: Ctx, [id]: string[]): Promise<void> {
  const path = `/invocations/${seg(id!)}`;
  const { body: inv } = await admin<InvocationInfo & Record<string, unknown>>(ctx.target, path);
  const { body: journal } = await admin<{ entries: Entry[] }>(ctx.target, `${path}/journal`);
  const { out } = ctx;
  if (out.json) return out.data({ invocation: inv, journal: journal.entries });
  const took =
    inv.completedAt !== undefined
      ? duration(Date.parse(inv.completedAt) - Date.parse(inv.createdAt))
      : undefined;
  out.line(
    fields(out, [
      ['id', inv.id],
      ['target', inv.target],
      ['status', status(out, inv.status) + (inv.cancel ? ` (cancel ${inv.cancel})` : '')],
      ['attempt', String(inv.attempt)],
      ['created', time(inv.createdAt)],
      ['modified', time(inv.modifiedAt)],
      ['completed', inv.completedAt && `${time(inv.completedAt)} (took ${took})`],
      ['next attempt', inv.nextAttemptAt && time(inv.nextAttemptAt)],
      ['idempotency', inv.idempotencyKey],
      ['outcome', inv.outcome],
      [
        'error',
        inv.error && out.style('red', `${inv.error.code ?? 'error'}: ${inv.error.message}`),
      ],
    ]),
  );
  out.line();
  if (journal.entries.length === 0) {
    out.line('journal: empty (the handler has not recorded a step yet)');
    return;
  }
  const created = Date.parse(inv.createdAt);
  out.line(
    table(
      out,
      ['#', 'ENTRY', 'START', 'DURATION', 'RESULT', 'WAIT'],
      journal.entries.map((e) => {
        const start = e.startedAt === undefined ? undefined : new Date(e.startedAt).getTime();
        const end = e.completedAt === undefined ? undefined : new Date(e.completedAt).getTime();
        const ms =
          e.durationMs ?? (start !== undefined && end !== undefined ? end - start : undefined);
        return [
          String(e.index),
          `${e.kind}${e.name ? ` ${e.name}` : ''}${e.attempts !== undefined && e.attempts > 1 ? ` ×${e.attempts}` : ''}`,
          // Relative to the invocation's creation: a timeline reads left to right.
          start === undefined || Number.isNaN(created) ? '' : `+${duration(start - created)}`,
          // A step's own duration has a tenth of a millisecond: shown under 10 ms.
          ms === undefined
            ? ''
            : ms < 10 && !Number.isInteger(ms)
              ? `${ms.toFixed(1)}ms`
              : duration(ms),
          result(ctx, e),
          waitOf(e),
        ];
      }),
    ),
  );
}

function result(ctx: Ctx, e: Entry): string {
  if (!e.done) return ctx.out.style('yellow', 'waiting');
  if (e.error)
    return ctx.out.style('red', `${e.error.code ?? 'error'}: ${e.error.message}`.slice(0, 70));
  return brief(e.value);
}

/** What the entry waited for, and what completed it. */
function waitOf(e: Entry): string {
  const by = e.completedBy === undefined ? '' : ` (by ${e.completedBy})`;
  switch (e.kind) {
    case 'sleep':
      return e.wakeAt === undefined ? `timer${by}` : `timer ${time(e.wakeAt)}${by}`;
    case 'call':
      return `call ${e.calleeId ?? e.name}${by}`;
    case 'send':
      return e.calleeId ? `sent ${e.calleeId}` : '';
    case 'awakeable':
      return `awakeable${by}`;
    case 'promise':
      return `promise ${e.name}${by}`;
    default:
      return e.completedBy === undefined ? '' : `by ${e.completedBy}`;
  }
}

type Action = 'cancel' | 'kill' | 'pause' | 'resume' | 'retry-now' | 'restart' | 'purge';
const BULK: readonly Action[] = ['cancel', 'kill', 'purge', 'restart', 'resume', 'pause'];

const DESCRIPTIONS: Record<Action, string> = {
  cancel: 'cancel: the handler sees a CancelledError at its next await and can compensate',
  kill: 'kill: end at once, without running compensations',
  pause: 'pause at the next await (status paused); resume continues it',
  resume: 'resume a paused invocation',
  'retry-now': 'run a backing-off or scheduled invocation now, skipping the wait',
  restart: 'start a new invocation with the same target, key and input',
  purge: 'delete a finished invocation and its journal',
};

interface BulkJob {
  id: string;
  action: string;
  status: 'running' | 'done';
  matched: number;
  done: number;
  failed: number;
  errors: Array<{ id: string; code: string; message: string }>;
}

async function single(ctx: Ctx, action: Action, id: string, fromEntry?: number): Promise<void> {
  const { body } = await admin<{ invocation?: InvocationInfo; purged?: string }>(
    ctx.target,
    `/invocations/${seg(id)}/${action}`,
    { method: 'POST', ...(fromEntry === undefined ? {} : { body: { fromEntry } }) },
  );
  const { out } = ctx;
  if (out.json) return out.data(body);
  if (action === 'purge') return out.line(`purged ${id}`);
  const inv = body.invocation;
  if (action === 'restart' && inv) {
    const from = fromEntry ? ` from entry ${fromEntry}` : '';
    return out.line(`restarted ${id} as ${inv.id}${from} (${inv.status})`);
  }
  out.line(`${action}: ${id} ${inv ? `is ${status(out, inv.status)}` : 'done'}`);
}

async function bulk(
  ctx: Ctx,
  action: Action,
  ids: string[],
  filter: Record<string, string> | undefined,
): Promise<void> {
  const { body } = await admin<{ job: BulkJob }>(ctx.target, '/invocations/bulk', {
    method: 'POST',
    body: { action, ...(filter ? { filter } : {}), ...(ids.length > 0 ? { ids } : {}) },
  });
  let job = body.job;
  const bar = progress(ctx.out, `${action}`);
  bar.start(job.matched);
  while (job.status !== 'done') {
    bar.update(processed(job), job.matched);
    await new Promise((r) => setTimeout(r, 250));
    job = (await admin<{ job: BulkJob }>(ctx.target, `/invocations/bulk/${seg(job.id)}`)).body.job;
  }
  bar.update(processed(job), job.matched);
  bar.stop();
  const { out } = ctx;
  if (out.json) out.data(job);
  else {
    out.line(`${action}: ${job.done} of ${job.matched} done, ${job.failed} failed (job ${job.id})`);
    for (const e of job.errors) out.line(`  ${e.id}  ${out.style('red', e.code)}  ${e.message}`);
    if (job.failed > job.errors.length)
      out.line(`  ... and ${job.failed - job.errors.length} more`);
  }
  if (job.failed > 0)
    throw new CliError(
      'partial',
      `${action} failed for ${job.failed} of the ${job.matched} invocations it matched`,
      EXIT.partial,
    );
}

/** `--from-entry`: a journal index, 0 or more (0 is a plain restart). */
function entryIndex(text: string): number {
  const n = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n))
    throw usage(`--from-entry "${text}" must be a journal index: a whole number from 0`);
  return n;
}

/** Items the job has finished with, failed or not (`done` counts the successes). */
function processed(job: BulkJob): number {
  return Math.min(job.matched, job.done + job.failed);
}

function registerAction(program: Command, action: Action): void {
  const canBulk = BULK.includes(action);
  const cmd = program
    .command(`${action} ${canBulk ? '[ids...]' : '<id>'}`)
    .description(
      DESCRIPTIONS[action] +
        (canBulk
          ? '; several ids, or a filter (--status, --service, ...), run it in bulk with a progress bar'
          : ''),
    );
  if (canBulk) addFilters(cmd);
  if (action === 'restart')
    cmd.option(
      '--from-entry <n>',
      'keep the journal entries before index n (their steps are replayed, not run again) and run the rest anew; one finished invocation only',
    );
  cmd.action(
    act<FilterOptions & { fromEntry?: string }>(async (ctx, ids, o) => {
      if (o.fromEntry !== undefined) {
        if (ids.length !== 1 || filterOf(o) !== undefined)
          throw usage('--from-entry restarts one invocation: give exactly one id and no filter');
        return single(ctx, action, ids[0]!, entryIndex(o.fromEntry));
      }
      const filter = canBulk ? filterOf(o) : undefined;
      if (ids.length === 1 && filter === undefined) return single(ctx, action, ids[0]!);
      if (ids.length === 0 && filter === undefined)
        throw usage(
          `${action} needs an invocation id, several ids, or a filter (--status, --service, --handler, --key, --error, --since, --until)`,
        );
      if (ids.length > 0 && filter !== undefined)
        throw usage(`give ${action} either ids or a filter, not both`);
      return bulk(ctx, action, ids, filter);
    }),
  );
}

export function registerInvocations(program: Command): void {
  addFilters(
    program
      .command('ls')
      .description('list invocations, newest first (filters as in the dashboard)'),
  )
    .addOption(new Option('--limit <n>', 'at most this many (1-1000, default 50)'))
    .option('--cursor <cursor>', 'the next page, as the previous page printed')
    .action(act<ListOptions>(list));
  program
    .command('show <id>')
    .description("an invocation and its journal as a timeline: each step's result, error and waits")
    .action(act(show));
  for (const action of Object.keys(DESCRIPTIONS) as Action[]) registerAction(program, action);
}
