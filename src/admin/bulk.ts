/**
 * Bulk actions of the admin API: `POST /invocations/bulk` runs one action over the invocations a
 * filter matches (or a list of ids) in the background, and `GET /invocations/bulk/{jobId}`
 * reports its progress.
 *
 * Matching pages through the engine's listing (newest first, 200 per page), so a filter that
 * matches a million invocations never loads them at once; at most {@link CONCURRENCY} actions
 * run at a time. Paging by the invocations' arrival order is stable under the actions: a purge
 * deletes rows behind the cursor, a restart creates rows newer than every page.
 *
 * Jobs live in this admin server's memory (the last {@link MAX_JOBS}); their ids are random
 * (128 bits), so a job cannot be found by guessing.
 */
import { randomBytes } from 'node:crypto';
import { errorMessage, KeelError } from '../core/errors.js';
import type { Engine, InvocationInfo, ListFilter } from '../engine/engine.js';
import { isInvocationId } from '../engine/ids.js';
import { listFilterFromQuery } from './list-query.js';

/** What `POST /invocations/bulk` may do to each invocation. */
export const BULK_ACTIONS = ['cancel', 'kill', 'purge', 'restart', 'resume', 'pause'] as const;
export type BulkAction = (typeof BULK_ACTIONS)[number];

/** The filter fields of a bulk request (those of `GET /invocations`, without paging). */
const FILTER_FIELDS = ['status', 'service', 'handler', 'key', 'error', 'since', 'until'] as const;

/** Jobs kept; the oldest is forgotten when a new one starts. */
export const MAX_JOBS = 100;
/** Actions in flight at once per job. */
export const CONCURRENCY = 8;
/** Ids a request may list (a larger set: use a filter). */
export const MAX_IDS = 10_000;
/** Errors a job reports (the first ones); `failed` counts them all. */
const MAX_ERRORS = 20;
const PAGE = 200;

/** A bulk job as the API answers it. */
export interface BulkJob {
  id: string;
  action: BulkAction;
  status: 'running' | 'done';
  /** Invocations matched so far (final once `done`). */
  matched: number;
  /** Actions that succeeded. */
  done: number;
  /** Actions that failed (the invocation's state forbade it, or it was gone). */
  failed: number;
  /** The first failures. */
  errors: Array<{ id: string; code: string; message: string }>;
  /** Set when matching itself stopped (the store was unreachable): the job ended early. */
  error?: { code: string; message: string };
}

/** A parsed bulk request. */
export interface BulkRequest {
  action: BulkAction;
  filter?: ListFilter;
  ids?: string[];
}

function invalid(message: string): KeelError {
  return new KeelError(message, { code: 'invalid_request', status: 400 });
}

/** Reads the body of `POST /invocations/bulk`; anything unexpected is a 400 saying what. */
export function parseBulkRequest(body: unknown): BulkRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalid(
      'the body must be a JSON object: { "action": "cancel", "filter": { "status": "backing-off" } } or { "action": "purge", "ids": ["inv_..."] }',
    );
  const b = body as Record<string, unknown>;
  for (const name of Object.keys(b)) {
    if (name !== 'action' && name !== 'filter' && name !== 'ids')
      throw invalid(`unknown field "${name}": the body takes action, and filter or ids`);
  }
  if (typeof b.action !== 'string' || !(BULK_ACTIONS as readonly string[]).includes(b.action))
    throw invalid(`"action" must be one of ${BULK_ACTIONS.join(', ')}`);
  const action = b.action as BulkAction;
  if ((b.filter === undefined) === (b.ids === undefined))
    throw invalid('give exactly one of "filter" (which invocations to match) and "ids"');
  if (b.ids !== undefined) {
    if (!Array.isArray(b.ids) || b.ids.length === 0 || b.ids.length > MAX_IDS)
      throw invalid(`"ids" must be an array of 1 to ${MAX_IDS} invocation ids`);
    for (const id of b.ids) {
      if (typeof id !== 'string' || !isInvocationId(id))
        throw invalid(`${JSON.stringify(id)} in "ids" is not an invocation id (inv_...)`);
    }
    return { action, ids: [...new Set(b.ids as string[])] };
  }
  return { action, filter: parseFilter(b.filter) };
}

function parseFilter(raw: unknown): ListFilter {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw invalid('"filter" must be an object such as { "status": "failed", "service": "Orders" }');
  const f = raw as Record<string, unknown>;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(f)) {
    if (!(FILTER_FIELDS as readonly string[]).includes(name))
      throw invalid(`unknown filter field "${name}": a filter takes ${FILTER_FIELDS.join(', ')}`);
    if (value === undefined || value === null) continue;
    if (name === 'status' && Array.isArray(value) && value.every((s) => typeof s === 'string'))
      params.set(name, value.join(','));
    else if ((name === 'since' || name === 'until') && typeof value === 'number')
      params.set(name, String(value));
    else if (typeof value === 'string') params.set(name, value);
    else throw invalid(`filter field "${name}" must be a string (status: also an array)`);
  }
  // Matching every invocation is never what a bulk action means by accident.
  if ([...params.keys()].length === 0)
    throw invalid(
      '"filter" is empty: it would match every invocation; give at least one field (e.g. status)',
    );
  try {
    return listFilterFromQuery(params.toString());
  } catch (err) {
    // The listing's messages speak of query parameters; these are the filter's fields.
    if (err instanceof KeelError) throw invalid(`filter: ${err.message}`);
    throw err;
  }
}

/** The jobs of one admin server. */
export class BulkJobs {
  private readonly jobs = new Map<string, BulkJob>();

  constructor(private readonly engine: Engine) {}

  /** Starts a job in the background and answers it as it is now. */
  start(request: BulkRequest): BulkJob {
    const job: BulkJob = {
      id: `bulk_${randomBytes(16).toString('hex')}`,
      action: request.action,
      status: 'running',
      matched: 0,
      done: 0,
      failed: 0,
      errors: [],
    };
    this.jobs.set(job.id, job);
    while (this.jobs.size > MAX_JOBS) this.jobs.delete(this.jobs.keys().next().value!);
    void this.run(job, request);
    return snapshot(job);
  }

  get(id: string): BulkJob | undefined {
    const job = this.jobs.get(id);
    return job && snapshot(job);
  }

  private async run(job: BulkJob, request: BulkRequest): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    try {
      for await (const id of this.match(request)) {
        job.matched++;
        const p = this.act(job, id).finally(() => inFlight.delete(p));
        inFlight.add(p);
        if (inFlight.size >= CONCURRENCY) await Promise.race(inFlight);
      }
    } catch (err) {
      job.error = {
        code: err instanceof KeelError ? err.code : 'internal',
        message: `matching stopped: ${errorMessage(err)}`,
      };
    }
    await Promise.all(inFlight);
    job.status = 'done';
  }

  private async *match(request: BulkRequest): AsyncGenerator<string> {
    if (request.ids) {
      yield* request.ids;
      return;
    }
    let cursor: string | undefined;
    do {
      const page: { invocations: InvocationInfo[]; nextCursor?: string } =
        await this.engine.listInvocations({ ...request.filter, limit: PAGE, cursor });
      for (const inv of page.invocations) yield inv.id;
      cursor = page.nextCursor;
    } while (cursor !== undefined);
  }

  private async act(job: BulkJob, id: string): Promise<void> {
    const e = this.engine;
    try {
      switch (job.action) {
        case 'cancel':
          await e.cancel(id);
          break;
        case 'kill':
          await e.kill(id);
          break;
        case 'purge':
          await e.purge(id);
          break;
        case 'restart':
          await e.restart(id);
          break;
        case 'resume':
          await e.resumePaused(id);
          break;
        case 'pause':
          await e.pause(id);
          break;
      }
      job.done++;
    } catch (err) {
      job.failed++;
      if (job.errors.length < MAX_ERRORS)
        job.errors.push({
          id,
          code: err instanceof KeelError ? err.code : 'internal',
          message: errorMessage(err),
        });
    }
  }
}

function snapshot(job: BulkJob): BulkJob {
  return { ...job, errors: [...job.errors] };
}
