/**
 * The admin API's view of the handlers, for the dashboard: `GET /services` (every routable
 * service, object and workflow with its handlers' JSON Schemas), `GET /openapi.json` (the
 * ingress's document) and `POST /services/{service}/{handler}/invoke` (the invoke form).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkDelay, MAX_DELAY_MS, parseDuration } from '../core/duration.js';
import { errorMessage, InvalidDelayError, KeelError, NotFoundError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import { kernelOf } from '../engine/kernel.js';
import { isJsonType, parseJson, readBody, unsupportedMediaType } from '../http/body.js';
import { requireAdmin, type MountRole } from '../http/mount.js';
import { errorAnswer, MethodNotAllowedError, sendJson, sendText } from '../http/respond.js';
import { catalogOf, type HandlerKind, type JsonSchema } from '../ingress/catalog.js';
import type { StandardSchemaV1 } from '../core/schema.js';
import { clientGone } from '../http/client-gone.js';
import { MAX_IDEMPOTENCY_KEY_LENGTH } from '../ingress/handlers.js';
import { servedOpenApiText } from '../ingress/openapi.js';

/** One entry of `GET /services`. */
export interface ServiceInfo {
  name: string;
  kind: 'service' | 'object' | 'workflow';
  handlers: {
    name: string;
    kind: HandlerKind;
    /** The input's JSON Schema; absent when the handler has none that converts (any JSON). */
    input?: JsonSchema;
    output?: JsonSchema;
    /** True when an empty input is refused by the input schema. */
    inputRequired: boolean;
  }[];
}

/** The body of `POST /services/{service}/{handler}/invoke`. */
interface InvokeBody {
  key?: string;
  input?: unknown;
  mode: 'call' | 'send';
  delayMs?: number;
  idempotencyKey?: string;
}

const BODY_LIMIT = 1024 * 1024;
const FIELDS = ['key', 'input', 'mode', 'delay', 'idempotencyKey'];
const HINT =
  'send { "input"?: <JSON>, "key"?: string (objects and workflows), "mode"?: "call" | "send" (default send), ' +
  '"delay"?: "10s" | <ms> (send only), "idempotencyKey"?: string }';

/** The paths this module answers, for the admin API's 404 hint. */
export const SERVICES_ROUTES =
  'GET /services, POST /services/{service}/{handler}/invoke, GET /openapi.json';

/**
 * Answers `GET /openapi.json`, `GET /services` and `POST /services/{service}/{handler}/invoke`;
 * resolves false for any other path. The invoke route is the admin role's only.
 */
export async function answerServices(
  engine: Engine,
  req: IncomingMessage,
  res: ServerResponse,
  segs: readonly string[],
  role: MountRole,
  close: readonly string[] | undefined,
): Promise<boolean> {
  const [first, service, handler, action] = segs;
  if (first === 'openapi.json' && segs.length === 1) {
    allow(req, 'GET');
    sendText(res, 200, await servedOpenApiText(engine), close);
    return true;
  }
  if (first !== 'services') return false;
  if (segs.length === 1) {
    allow(req, 'GET');
    sendJson(res, 200, { services: await listServices(engine) }, close);
    return true;
  }
  if (segs.length !== 4 || action !== 'invoke' || !service || !handler) {
    throw new NotFoundError(
      `nothing at "/${segs.join('/')}": the services routes are ${SERVICES_ROUTES}`,
    );
  }
  allow(req, 'POST');
  requireAdmin({ role }, 'invoking a handler');
  await invoke(engine, req, res, service, handler, close);
  return true;
}

/** `GET /services`: the catalog, with JSON Schemas only where the handlers have them. */
export async function listServices(engine: Engine): Promise<ServiceInfo[]> {
  return (await catalogOf(engine)).map((d) => ({
    name: d.name,
    kind: d.kind,
    handlers: d.handlers.map((h) => ({
      name: h.name,
      kind: h.kind,
      ...(h.input.schema ? { input: h.input.schema } : {}),
      ...(h.output.schema ? { output: h.output.schema } : {}),
      inputRequired: h.inputRequired,
    })),
  }));
}

/**
 * Validates everything before the engine sees it (the body, the key, the input against the
 * handler's schema), so a refused request creates nothing; then calls or sends as the ingress
 * does. A call whose handler failed answers the error's status with `{ code, message,
 * invocationId }`, so the dashboard can link the failed invocation.
 */
async function invoke(
  engine: Engine,
  req: IncomingMessage,
  res: ServerResponse,
  service: string,
  handler: string,
  close: readonly string[] | undefined,
): Promise<void> {
  const k = kernelOf(engine);
  // Internal definitions are machinery whose inputs only Keel makes: not invocable here either.
  // Resolved before the body is read: an unknown target costs nothing. The key is checked below.
  const kind = k.registry.routable(service)?.kind;
  const { def, spec } = k.registry.resolveRoutable(
    service,
    handler,
    kind === 'service' ? undefined : '-',
  );
  const body = parseInvokeBody(await readJson(req));
  if (def.kind === 'service' && body.key !== undefined)
    throw invalid(`"${service}" is a service and takes no key: leave "key" out`);
  if (def.kind !== 'service' && body.key === undefined)
    throw invalid(`"${service}" is a ${def.kind}: give the key of the ${def.kind} as "key"`);
  // At the edge, for the issues as a list the form can show next to its fields.
  if (spec.options.input) {
    const issues = await validateIssues(spec.options.input, body.input);
    if (issues) {
      sendJson(
        res,
        400,
        {
          code: 'validation_failed',
          message: `the input of ${def.name}.${spec.name} is invalid: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`,
          issues,
        },
        close,
      );
      return;
    }
  }
  const request = {
    def,
    spec,
    key: body.key ?? '',
    input: body.input,
    ...(body.idempotencyKey === undefined ? {} : { idempotencyKey: body.idempotencyKey }),
    ...(body.delayMs === undefined ? {} : { delayMs: body.delayMs }),
  };
  // A send answers once the invocation is durable; a call is a send and an attach, so the
  // answer carries the invocation id the dashboard links to.
  const sent = await k.send(request);
  if (body.mode === 'send') {
    sendJson(res, 202, { invocationId: sent.invocationId, existing: sent.existing }, close);
    return;
  }
  try {
    const output = await engine.attach(sent.invocationId, { gone: clientGone(res) });
    sendJson(res, 200, { invocationId: sent.invocationId, output }, close);
  } catch (err) {
    const a = errorAnswer(err);
    if (!a.known) throw err;
    sendJson(
      res,
      a.status,
      { code: a.code, message: a.message, invocationId: sent.invocationId },
      close,
    );
  }
}

function parseInvokeBody(raw: unknown): InvokeBody {
  if (raw === undefined) return { mode: 'send' };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw invalid(`the body must be a JSON object: ${HINT}`);
  const b = raw as Record<string, unknown>;
  for (const name of Object.keys(b))
    if (!FIELDS.includes(name)) throw invalid(`unknown field "${name}": ${HINT}`);
  const out: InvokeBody = { mode: 'send' };
  if (b.mode !== undefined) {
    if (b.mode !== 'call' && b.mode !== 'send')
      throw invalid(`"mode" must be "call" or "send", got ${JSON.stringify(b.mode)}`);
    out.mode = b.mode;
  }
  if (b.key !== undefined) {
    if (typeof b.key !== 'string' || b.key === '')
      throw invalid('"key" must be a non-empty string: the key of the object or workflow');
    out.key = b.key;
  }
  if (b.idempotencyKey !== undefined) {
    if (
      typeof b.idempotencyKey !== 'string' ||
      b.idempotencyKey.trim() === '' ||
      b.idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH
    ) {
      throw new KeelError(
        `"idempotencyKey" must be a non-empty string of at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`,
        { code: 'invalid_idempotency_key', status: 400 },
      );
    }
    out.idempotencyKey = b.idempotencyKey;
  }
  if (b.delay !== undefined) {
    if (out.mode !== 'send')
      throw new InvalidDelayError('"delay" applies only to sends: set "mode": "send"');
    if (typeof b.delay !== 'string' && typeof b.delay !== 'number')
      throw new InvalidDelayError('"delay" must be a duration such as "10s" or milliseconds');
    let ms: number;
    try {
      ms = parseDuration(b.delay);
    } catch (err) {
      throw new InvalidDelayError(
        `invalid delay: ${errorMessage(err)}; a delay is at most ${MAX_DELAY_MS / 86_400_000} days`,
      );
    }
    out.delayMs = checkDelay(ms);
  }
  if ('input' in b) out.input = b.input;
  return out;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !isJsonType(type)) throw unsupportedMediaType(type);
  const body = await readBody(req, BODY_LIMIT);
  if (type === undefined && body.length > 0) throw unsupportedMediaType(undefined);
  return parseJson(body);
}

function allow(req: IncomingMessage, method: 'GET' | 'POST'): void {
  if (req.method !== method) throw new MethodNotAllowedError(req.method ?? '?', method);
}

function invalid(message: string): KeelError {
  return new KeelError(message, { code: 'invalid_request', status: 400 });
}

/** One issue of a schema's validation, its path joined with dots (empty for the root). */
export interface Issue {
  path: string;
  message: string;
}

/** The schema's issues with `value`, or undefined when it is valid. */
async function validateIssues(
  schema: StandardSchemaV1,
  value: unknown,
): Promise<Issue[] | undefined> {
  const result = await schema['~standard'].validate(value);
  if (!result.issues) return undefined;
  return result.issues.map((i) => ({
    path: (i.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.'),
    message: i.message,
  }));
}
