/**
 * The flows' HTTP routes.
 *
 * Ingress (`/flows`):
 * - `POST /flows/{name}/run`: JSON body = the flow's input; runs the latest version and answers
 *   200 with its `WorkflowResult` (`success: false` when a step failed). `Idempotency-Key` (or
 *   `?id=`) makes a repeated request answer the same run.
 * - `GET /flows/runs/{runId}`: the run's state (status, current step, completed, compensated).
 *
 * Admin API (`/flows`):
 * - `GET /flows/definitions`: `{ flows: [{ name, version }] }`;
 * - `POST /flows/definitions`: a definition as JSON, or YAML (`Content-Type: application/yaml`
 *   or `text/yaml`); 201 `{ name, version, created: true }`, or 200 with `created: false` when
 *   it equals the latest version; 400 with `{ code, message, step, field }` when refused.
 *   Admin token only;
 * - `GET /flows/definitions/{name}`: the latest version and the list of versions;
 * - `GET /flows/definitions/{name}/versions/{n}`: one version;
 * - `GET /flows/runs/{runId}`: as on the ingress.
 */
import { clientGone } from '../http/client-gone.js';
import type { IncomingMessage } from 'node:http';
import { KeelError, NotFoundError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import { isJsonType, parseJson, readBody, unsupportedMediaType } from '../http/body.js';
import { requireAdmin, type Mount, type MountRequest } from '../http/mount.js';
import { MethodNotAllowedError, sendJson } from '../http/respond.js';
import { FlowDefinitionError } from './errors.js';
import { FLOWS_WORKFLOW, type FlowRunState } from './execute.js';
import { MAX_DEFINITION_BYTES, parseFlowText } from './parse.js';
import { runFlowWaiting } from './run.js';
import type { FlowsRuntime } from './runtime.js';

const BODY_LIMIT = 1024 * 1024;

/** The ingress mount. */
export function ingressMount(engine: () => Engine, rt: () => FlowsRuntime): Mount {
  return async (r) => {
    const [a, b, c] = r.segments;
    if (a === 'runs' && b !== undefined && c === undefined) return runState(r, rt());
    if (a !== undefined && b === 'run' && c === undefined) {
      if (r.req.method !== 'POST') throw new MethodNotAllowedError(r.req.method ?? '', 'POST');
      const input = await readJson(r.req);
      const id = queryParam(r.query, 'id');
      const idempotencyKey = idempotencyKeyOf(r.req);
      const result = await runFlowWaiting(
        engine(),
        a,
        input,
        {
          ...(id === undefined ? {} : { id }),
          ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
        },
        // A client that leaves stops the wait, not the run (it answers the next request).
        { gone: clientGone(r.res) },
      );
      sendJson(r.res, 200, result);
      return;
    }
    throw new NotFoundError(
      'no such flows route: POST /flows/{name}/run or GET /flows/runs/{runId}',
    );
  };
}

/** The admin mount. */
export function adminMount(rt: () => FlowsRuntime): Mount {
  return async (r) => {
    const [a, b, c, d] = r.segments;
    const method = r.req.method ?? '';
    if (a === 'runs' && b !== undefined && c === undefined) return runState(r, rt());
    if (a !== 'definitions') throw new NotFoundError('no such flows route: see docs/flows.md');
    const registry = rt().registry;
    if (b === undefined) {
      if (method === 'GET') {
        sendJson(r.res, 200, { flows: await registry.list() });
        return;
      }
      if (method !== 'POST') throw new MethodNotAllowedError(method, 'GET, POST');
      requireAdmin(r, 'registering a flow');
      const raw = await readDefinition(r.req);
      try {
        const reg = await registry.register(raw);
        sendJson(r.res, reg.created ? 201 : 200, reg);
      } catch (err) {
        if (!(err instanceof FlowDefinitionError)) throw err;
        sendJson(r.res, 400, {
          code: err.code,
          message: err.message,
          ...(err.step === undefined ? {} : { step: err.step }),
          ...(err.field === undefined ? {} : { field: err.field }),
        });
      }
      return;
    }
    if (method !== 'GET') throw new MethodNotAllowedError(method, 'GET');
    if (c === undefined) {
      const latest = await registry.get(b);
      const versions = (await registry.versions(b)).map((v) => v.version);
      sendJson(r.res, 200, { ...latest, versions });
      return;
    }
    if (c === 'versions' && d !== undefined && r.segments.length === 4) {
      const n = Number(d);
      if (!Number.isInteger(n) || n < 1) throw new NotFoundError(`"${d}" is not a version number`);
      sendJson(r.res, 200, await registry.get(b, n));
      return;
    }
    throw new NotFoundError('no such flows route: see docs/flows.md');
  };
}

async function runState(r: MountRequest, rt: FlowsRuntime): Promise<void> {
  if (r.req.method !== 'GET') throw new MethodNotAllowedError(r.req.method ?? '', 'GET');
  const runId = r.segments[1]!;
  const state = (await rt.host.store.getState(FLOWS_WORKFLOW, runId, 'state')) as
    FlowRunState | undefined;
  if (state !== undefined && state !== null) return sendJson(r.res, 200, { runId, ...state });
  const early = await earlyState(rt, runId);
  if (early === undefined) throw new NotFoundError(`no flow run "${runId}"`);
  sendJson(r.res, 200, { runId, ...early });
}

/**
 * The state of a run that has not saved one yet: it saves it once its definition is read (its
 * first step), so a run polled right after it was started, or cancelled before that, has none.
 * Its invocation answers: still to start (`running`), or `cancelled`; `version` only when the
 * request named one (the latest is pinned by that first step). Anything else (a run that failed
 * before it began, as for an unknown flow) has no state to show.
 */
async function earlyState(
  rt: FlowsRuntime,
  runId: string,
): Promise<(Omit<FlowRunState, 'version'> & { version?: number }) | undefined> {
  const [row] = await rt.host.store.listInvocations({
    service: FLOWS_WORKFLOW,
    handler: 'run',
    key: runId,
    limit: 1,
  });
  if (row === undefined) return undefined;
  const finished = row.status === 'completed' || row.status === 'failed';
  if (finished && row.error?.code !== 'cancelled') return undefined;
  const req = (row.input ?? {}) as { flow?: unknown; version?: unknown };
  return {
    flow: typeof req.flow === 'string' ? req.flow : '',
    ...(typeof req.version === 'number' ? { version: req.version } : {}),
    status: finished ? 'cancelled' : 'running',
    completed: [],
    failed: [],
    compensated: [],
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'];
  const body = await readBody(req, BODY_LIMIT);
  if (body.length === 0) return null;
  if (type === undefined || !isJsonType(type)) throw unsupportedMediaType(type);
  return parseJson(body);
}

const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'];

async function readDefinition(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'];
  const base = type?.split(';')[0]?.trim().toLowerCase();
  const body = await readBody(req, MAX_DEFINITION_BYTES);
  if (type !== undefined && isJsonType(type)) return parseFlowText(body.toString('utf8'), 'json');
  if (base !== undefined && YAML_TYPES.includes(base))
    return parseFlowText(body.toString('utf8'), 'yaml');
  throw new KeelError(
    `a flow definition is JSON (Content-Type: application/json) or YAML (Content-Type: application/yaml), not ${type === undefined ? 'a body without a Content-Type' : `"${type}"`}`,
    { code: 'unsupported_media_type', status: 415 },
  );
}

function queryParam(query: string, name: string): string | undefined {
  if (!query) return undefined;
  const all = new URLSearchParams(query).getAll(name);
  if (all.length === 0) return undefined;
  if (all.length > 1 || all[0] === '')
    throw new KeelError(`?${name}= must be given once, non-empty`, {
      code: 'invalid_query',
      status: 400,
    });
  return all[0];
}

/** The `Idempotency-Key` header, checked as the ingress checks it. */
function idempotencyKeyOf(req: IncomingMessage): string | undefined {
  const all = req.headersDistinct['idempotency-key'];
  if (all === undefined) return undefined;
  const bad = (message: string) =>
    new KeelError(message, { code: 'invalid_idempotency_key', status: 400 });
  if (all.length > 1) throw bad('the Idempotency-Key header is given more than once: send it once');
  const key = all[0] ?? '';
  if (key.length === 0) throw bad('the Idempotency-Key header is empty: send a key or omit it');
  if (key.length > 256)
    throw bad(`the Idempotency-Key header is ${key.length} characters; the limit is 256`);
  return key;
}
