import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientGone } from '../http/client-gone.js';
import { checkDelay, MAX_DELAY_MS, parseDuration } from '../core/duration.js';
import {
  errorMessage,
  fromErrorInfo,
  InvalidDelayError,
  KeelError,
  NotFoundError,
  ValidationError,
} from '../core/errors.js';
import type { Admit } from '../engine/admission.js';
import type { Engine } from '../engine/engine.js';
import { kernelOf } from '../engine/kernel.js';
import { isJsonType, parseJson, readBody, unsupportedMediaType } from '../http/body.js';
import { errorAnswer, sendJson } from '../http/respond.js';
import { flowParams } from './flow-params.js';
import type { Route } from './router.js';
import { traceOfRequest } from '../observability/tracing/ingress.js';

/** The request handlers with logic of their own: POST invocations, GET /invocations, awakeables. */

/**
 * Builds the engine request of a POST, checking everything the engine would not (delay,
 * idempotency key, media type, size, JSON) before the engine sees it: bad input never
 * creates an invocation. The engine then validates the input against the handler's schema,
 * also before creating anything.
 */
export async function readInvokeRequest(
  req: IncomingMessage,
  res: ServerResponse,
  r: Extract<Route, { kind: 'invoke' }>,
  query: string | undefined,
  bodyLimit: number,
  expectContinue: boolean,
): Promise<Admit> {
  let delayMs: number | undefined;
  let flow: ReturnType<typeof flowParams> = {};
  if (query !== undefined) {
    const params = new URLSearchParams(query);
    const delays = params.getAll('delay');
    // Two delays would silently pick one: refused, as the admin API refuses repeated parameters.
    if (delays.length > 1)
      throw new InvalidDelayError('?delay= is given more than once: give it once, e.g. ?delay=10s');
    if (delays[0] !== undefined) delayMs = parseDelay(delays[0], r.send);
    flow = flowParams(params, r.send);
  }
  return {
    ...r.target,
    idempotencyKey: idempotencyKeyOf(req),
    input: await readJsonBody(req, res, bodyLimit, expectContinue),
    delayMs,
    ...flow,
    ...traceOfRequest(req.headers, r.send),
  };
}

/** The longest accepted `Idempotency-Key`, in characters (a UUID is 36, a SHA-256 in hex 64). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 256;

/**
 * The `Idempotency-Key` header, checked. Node joins repeated headers into `"a, b"`, which would
 * silently be a third key: a repeated header is refused, as are an empty and an over-long key.
 */
function idempotencyKeyOf(req: IncomingMessage): string | undefined {
  const idem = req.headers['idempotency-key'];
  if (idem === undefined) return undefined;
  // Only a joined value contains ", ": the distinct view costs an allocation, so only then.
  if (
    typeof idem !== 'string' ||
    (idem.includes(',') && (req.headersDistinct['idempotency-key']?.length ?? 0) > 1)
  ) {
    throw invalidIdempotencyKey(
      'the Idempotency-Key header is given more than once: send it once, with one key',
    );
  }
  if (idem.trim() === '')
    throw invalidIdempotencyKey(
      'the Idempotency-Key header is empty: send a non-empty key or omit the header',
    );
  if (idem.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw invalidIdempotencyKey(
      `the Idempotency-Key header is ${idem.length} characters long; the limit is ${MAX_IDEMPOTENCY_KEY_LENGTH}: ` +
        'send a shorter key, e.g. a UUID or a hash of the longer one',
    );
  }
  return idem;
}

function invalidIdempotencyKey(message: string): KeelError {
  return new KeelError(message, { code: 'invalid_idempotency_key', status: 400 });
}

/**
 * Reads and parses a JSON body (`undefined` when empty). The media type is checked first and
 * `100 Continue` is sent only for a body within the limit, so a refused upload never starts.
 */
async function readJsonBody(
  req: IncomingMessage,
  res: ServerResponse,
  bodyLimit: number,
  expectContinue: boolean,
): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !isJsonType(type)) throw unsupportedMediaType(type);
  if (expectContinue) {
    const declared = Number(req.headers['content-length']);
    if (!(declared > bodyLimit)) res.writeContinue();
  }
  const body = await readBody(req, bodyLimit);
  if (type === undefined && body.length > 0) throw unsupportedMediaType(undefined);
  return parseJson(body);
}

/**
 * `POST /awakeables/{id}/resolve` (the body is the value; empty is `null`) and
 * `POST /awakeables/{id}/reject` (`{ "message": string }`). The engine answers an unknown id
 * with 404 and an awakeable completed before with 409.
 */
export async function answerAwakeable(
  engine: Engine,
  r: Extract<Route, { kind: 'awakeable' }>,
  req: IncomingMessage,
  res: ServerResponse,
  bodyLimit: number,
  expectContinue: boolean,
  close: readonly string[] | undefined,
): Promise<void> {
  const body = await readJsonBody(req, res, bodyLimit, expectContinue);
  if (r.action === 'resolve') {
    await engine.resolveAwakeable(r.id, body === undefined ? null : body);
    sendJson(res, 200, { resolved: r.id }, close);
    return;
  }
  const message =
    typeof body === 'object' && body !== null ? (body as { message?: unknown }).message : undefined;
  if (typeof message !== 'string') {
    throw new ValidationError(
      'rejecting an awakeable needs a JSON body { "message": string } saying why, e.g. {"message":"declined by the approver"}',
    );
  }
  await engine.rejectAwakeable(r.id, message);
  sendJson(res, 200, { rejected: r.id }, close);
}

function parseDelay(text: string, send: boolean): number {
  if (!send) {
    throw new KeelError(
      '?delay= applies only to sends: append /send to the path, e.g. POST /Greeter/greet/send?delay=10s',
      {
        code: 'invalid_delay',
        status: 400,
      },
    );
  }
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    throw new InvalidDelayError(
      `invalid delay: ${errorMessage(err)}; a delay is at most ${MAX_DELAY_MS / 86_400_000} days`,
    );
  }
  return checkDelay(ms); // the engine checks again; here it is refused before the body is read
}

export async function answerInvocation(
  engine: Engine,
  r: Extract<Route, { kind: 'invocation' }>,
  res: ServerResponse,
  close: readonly string[] | undefined,
): Promise<void> {
  // An invocation of an `internal` service is answered as an unknown id: like its routes, its
  // input, status and result are for the engine and the admin API only.
  const info = await engine.getInvocation(r.id);
  if (!info || kernelOf(engine).registry.get(info.service)?.options.internal)
    throw new NotFoundError(`no invocation "${r.id}": it never existed or its retention ended`);
  if (r.action === 'get') {
    sendJson(res, 200, info, close);
  } else if (r.action === 'attach') {
    sendJson(res, 200, await engine.attach(r.id, { gone: clientGone(res) }), close);
  } else {
    const out = await engine.output(r.id);
    if (!out.ready) {
      // 202 "accepted, not done yet": a client polling /output can branch on the status code
      // alone, and a 4xx would wrongly say the request was at fault.
      const message = `invocation "${r.id}" has not finished (it is ${out.status}); poll again, or GET /invocations/${r.id}/attach to wait`;
      sendJson(res, 202, { code: 'not_ready', status: out.status, message }, close);
    } else if ('error' in out.outcome) {
      // The same error, status included, that attach throws for this outcome.
      const answer = errorAnswer(fromErrorInfo(out.outcome.error));
      sendJson(res, answer.status, { code: answer.code, message: answer.message }, close);
    } else {
      sendJson(res, 200, out.outcome.output, close);
    }
  }
}
