/**
 * `GET /openapi.json`: an OpenAPI 3.1 document of the ingress, generated from the registered
 * handlers (their Standard Schemas, converted to JSON Schema by their own library; see
 * catalog.ts) and the ingress's fixed routes. Built once per ingress and cached: handlers
 * cannot change once the engine is built.
 */
import type { Engine } from '../engine/engine.js';
import { kernelOf } from '../engine/kernel.js';
import { mountRoutes, type MountRoute } from '../http/mount-doc.js';
import type { Mounts } from '../http/mount.js';
import { catalogOf, type DefinitionInfo, type HandlerInfo, type JsonSchema } from './catalog.js';
import { MAX_IDEMPOTENCY_KEY_LENGTH } from './handlers.js';
import { AWAKEABLES, isAwakeableAction } from './router.js';

/** What the document needs to know about the ingress it describes. */
export interface OpenApiOptions {
  /** The routes extensions (and `IngressOptions.mounts`) serve on the ingress, by prefix. */
  mounts?: Mounts;
  /**
   * Set when the ingress requires API keys (`IngressOptions.ingressKeys`): the document declares
   * the two ways to present one (`Authorization: Bearer <key>`, `X-API-Key: <key>`) and every
   * operation requires one, except `GET /health` and the routes of the mounts named in
   * `exemptMounts` (those that authenticate on their own, e.g. webhooks by signature).
   */
  apiKeys?: { exemptMounts?: ReadonlySet<string> };
}

/** An OpenAPI 3.1 document, as plain JSON. */
export type OpenApiDocument = Record<string, unknown> & {
  openapi: '3.1.0';
  paths: Record<string, Record<string, unknown>>;
  components: Record<string, Record<string, unknown>>;
};

type Obj = Record<string, unknown>;

const SCHEMAS = '#/components/schemas/';
/** The fixed routes' tag: with a space, so no service (whose names have none) can take it. */
const KEEL_TAG = 'Keel ingress';
const RESPONSES = '#/components/responses/';
const JSON_TYPE = 'application/json';
const ref = (name: string): Obj => ({ $ref: SCHEMAS + name });
const response = (name: string): Obj => ({ $ref: RESPONSES + name });
const json = (schema: Obj): Obj => ({ [JSON_TYPE]: { schema } });

/**
 * The ingress's OpenAPI document: built on the first request and cached. `serve` calls it
 * with the ingress's mounts; the admin API reads the same document through
 * {@link servedOpenApi}.
 *
 * @example
 * ```ts
 * const doc = await openApiDocument(engine);
 * Object.keys(doc.paths); // ['/Greeter/greet', '/Greeter/greet/send', ..., '/health']
 * ```
 */
export function openApiDocument(
  engine: Engine,
  options: OpenApiOptions = {},
): Promise<OpenApiDocument> {
  return buildDocument(engine, options);
}

interface Served {
  options: OpenApiOptions;
  doc?: Promise<OpenApiDocument>;
  /** The document as JSON text, by the URL its `servers` names ('' for none): serialized once. */
  texts: Map<string, string>;
  /** The ingress's URL once it listens: the admin API's copy names it in `servers`. */
  url?: string;
}

/** The ingress's document and its source, per engine, for the admin API's copy. */
const served = new WeakMap<object, Served>();

/**
 * Registers the ingress of an engine, so the admin API serves the same document. Returns the
 * document's JSON text the ingress answers `GET /openapi.json` with (built on the first
 * request, then cached), and `bound`, which records the ingress's URL once it listens.
 */
export function registerIngress(
  engine: Engine,
  options: OpenApiOptions,
): { text: () => Promise<string>; bound: (url: string) => void } {
  const entry: Served = { options, texts: new Map() };
  served.set(kernelOf(engine), entry);
  return {
    // Relative to wherever it was fetched from: the ingress itself.
    text: () => textOf(engine, entry, ''),
    bound: (url) => {
      entry.url = url;
    },
  };
}

/**
 * The JSON text of the document of the ingress serving `engine` (as registered by `serve`),
 * or, when none is registered in this process, of an ingress with the engine's own mounts. It
 * names the ingress's URL in `servers` when it is known: relative URLs would point at whichever
 * server answered (the admin API).
 */
export function servedOpenApiText(engine: Engine): Promise<string> {
  const k = kernelOf(engine);
  let entry = served.get(k);
  if (!entry) {
    entry = { options: { mounts: k.mounts('ingress') }, texts: new Map() };
    served.set(k, entry);
  }
  return textOf(engine, entry, entry.url ?? '');
}

async function textOf(engine: Engine, entry: Served, url: string): Promise<string> {
  const known = entry.texts.get(url);
  if (known !== undefined) return known;
  const p = (entry.doc ??= buildDocument(engine, entry.options));
  // A failed build is not kept: the next request tries again.
  const doc = await p.catch((err: unknown) => {
    if (entry.doc === p) delete entry.doc;
    throw err;
  });
  const text = JSON.stringify(url === '' ? doc : { ...doc, servers: [{ url }] });
  entry.texts.set(url, text);
  return text;
}

async function buildDocument(engine: Engine, options: OpenApiOptions): Promise<OpenApiDocument> {
  const catalog = await catalogOf(engine);
  const b = new Builder();
  // The fixed routes first: a handler's path of the same shape joins theirs (their parameter
  // names win). Listed after the handlers' all the same.
  b.fixedRoutes();
  b.group = 0;
  for (const def of catalog) b.definition(def);
  b.tag(KEEL_TAG, 'Invocations, awakeables, the health check and this document.');
  b.group = 2;
  const mounts = options.mounts ?? {};
  for (const prefix of Object.keys(mounts).sort()) b.mount(prefix, mountRoutes(mounts[prefix]!));
  const doc: OpenApiDocument = {
    openapi: '3.1.0',
    info: {
      title: 'Keel ingress',
      version: '1',
      description:
        'Invoke the services, objects and workflows this Keel app serves, send to them, attach to ' +
        'invocations and complete awakeables. Generated from the registered handlers: request and ' +
        'response bodies are the JSON Schemas of their input and output schemas. Every error is ' +
        'answered as { code, message } with its HTTP status.',
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    tags: b.tags,
    paths: b.orderedPaths(),
    components: {
      schemas: { ...FIXED_SCHEMAS, ...b.schemas },
      responses: FIXED_RESPONSES,
      parameters: { IdempotencyKey: IDEMPOTENCY_KEY_PARAM, TraceParent: TRACEPARENT_PARAM },
    },
  };
  if (options.apiKeys) secure(doc, options.apiKeys.exemptMounts, options.mounts ?? {});
  return doc;
}

/** Declares the ingress's API keys and which operations need one. */
function secure(
  doc: OpenApiDocument,
  exemptMounts: ReadonlySet<string> | undefined,
  mounts: Mounts,
): void {
  doc.components.securitySchemes = {
    bearer: {
      type: 'http',
      scheme: 'bearer',
      description: 'An ingress API key (KEEL_INGRESS_KEYS): Authorization: Bearer <key>',
    },
    apiKeyHeader: {
      type: 'apiKey',
      in: 'header',
      name: 'X-API-Key',
      description: 'An ingress API key (KEEL_INGRESS_KEYS)',
    },
  };
  // Either one.
  doc.security = [{ bearer: [] }, { apiKeyHeader: [] }];
  const exempt = [...(exemptMounts ?? [])]
    .filter((m) => Object.hasOwn(mounts, m))
    .map((m) => `/${seg(m)}/`);
  for (const [path, item] of Object.entries(doc.paths)) {
    const open = path === '/health' || exempt.some((prefix) => path.startsWith(prefix));
    for (const op of Object.values(item) as Obj[]) {
      if (open) op.security = [];
      else (op.responses as Obj)['401'] = response('Unauthorized');
    }
  }
}

/** Collects paths, tags and per-handler schemas. */
class Builder {
  readonly paths: Record<string, Record<string, unknown>> = {};
  readonly schemas: Record<string, JsonSchema> = {};
  readonly tags: Obj[] = [];
  private readonly operationIds = new Set<string>();
  /** Path templates by their shape with parameter names erased: `/a/{}/b` → `/a/{key}/b`. */
  private readonly shapes = new Map<string, string>();
  /** Declares a tag once (a service and an extension may share a name). */
  tag(name: string, description: string): void {
    if (!this.tags.some((t) => t.name === name)) this.tags.push({ name, description });
  }

  /** Where new paths are listed: 0 handlers, 1 the fixed routes, 2 extensions. */
  group = 1;
  private readonly groups = new Map<string, number>();

  /** The paths, handlers' first, then the fixed routes, then the extensions'. */
  orderedPaths(): Record<string, Record<string, unknown>> {
    const keys = Object.keys(this.paths);
    const g = (k: string): number => this.groups.get(k) ?? 1;
    keys.sort((a, b) => g(a) - g(b)); // stable: insertion order within a group
    return Object.fromEntries(keys.map((k) => [k, this.paths[k]!]));
  }

  definition(def: DefinitionInfo): void {
    this.tag(def.name, KIND_TEXT[def.kind]);
    const svc = seg(def.name);
    for (const h of def.handlers) {
      const input = this.schemaOf(def, h, 'input');
      const output = this.schemaOf(def, h, 'output');
      const hs = seg(h.name);
      if (def.kind === 'service') {
        this.add(`/${svc}/${hs}`, 'post', this.call(def, h, input, output, false));
        this.add(`/${svc}/${hs}/send`, 'post', this.send(def, h, input, false));
      } else {
        // `/awakeables/{key}/resolve` is the awakeable route (see router.ts): only /send reaches it.
        if (!(def.name === AWAKEABLES && isAwakeableAction(h.name)))
          this.add(`/${svc}/{key}/${hs}`, 'post', this.call(def, h, input, output, true));
        this.add(`/${svc}/{key}/${hs}/send`, 'post', this.send(def, h, input, true));
      }
    }
  }

  /** The body schema of one side: a component, or `{}` (any JSON) with the reason why. */
  private schemaOf(
    def: DefinitionInfo,
    h: HandlerInfo,
    io: 'input' | 'output',
  ): { schema: Obj; note?: string } {
    const info = h[io];
    if (!info.schema) return { schema: {}, note: `Any JSON: ${info.missing}.` };
    const name = this.uniqueSchemaName(`${def.name}.${h.name}.${io}`);
    this.schemas[name] = rebase(info.schema, SCHEMAS + name) as JsonSchema;
    return { schema: ref(name) };
  }

  private uniqueSchemaName(wanted: string): string {
    const base = wanted.replace(/[^A-Za-z0-9._-]/g, '_');
    let name = base;
    for (let i = 2; this.schemas[name] !== undefined; i++) name = `${base}_${i}`;
    return name;
  }

  private operationId(wanted: string): string {
    let id = wanted;
    for (let i = 2; this.operationIds.has(id); i++) id = `${wanted}_${i}`;
    this.operationIds.add(id);
    return id;
  }

  private call(
    def: DefinitionInfo,
    h: HandlerInfo,
    input: { schema: Obj; note?: string },
    output: { schema: Obj; note?: string },
    keyed: boolean,
  ): Obj {
    return {
      tags: [def.name],
      operationId: this.operationId(`${def.name}.${h.name}`),
      summary: `Call ${def.name}.${h.name} and wait for its result`,
      description: [handlerText(def, h), 'Answers once the result is durable.'].join(' '),
      parameters: [...(keyed ? [keyParam(def)] : []), IDEMPOTENCY_KEY, TRACEPARENT],
      ...this.body(h, input),
      responses: {
        '200': {
          description: `The handler's result; null when it returns nothing.${output.note ? ` ${output.note}` : ''}`,
          content: json(output.schema),
        },
        '400': response('BadRequest'),
        '404': response('NotFound'),
        '409': response('Conflict'),
        '413': response('PayloadTooLarge'),
        '415': response('UnsupportedMediaType'),
        '429': response('TooManyWaiters'),
        '500': response('Internal'),
        '503': response('Unavailable'),
        default: response('HandlerError'),
      },
    };
  }

  private send(
    def: DefinitionInfo,
    h: HandlerInfo,
    input: { schema: Obj; note?: string },
    keyed: boolean,
  ): Obj {
    return {
      tags: [def.name],
      operationId: this.operationId(`${def.name}.${h.name}.send`),
      summary: `Start ${def.name}.${h.name} without waiting`,
      description: [
        handlerText(def, h),
        'Answers once the invocation is durably accepted; attach to it with GET /invocations/{id}/attach.',
      ].join(' '),
      parameters: [
        ...(keyed ? [keyParam(def)] : []),
        IDEMPOTENCY_KEY,
        TRACEPARENT,
        {
          name: 'delay',
          in: 'query',
          required: false,
          description:
            'Start after this long: a duration such as 10s, 5m, 2h or 1d, or milliseconds; at most 365 days.',
          schema: { type: 'string', examples: ['10s', '5m', '1500'] },
        },
        ...FLOW_PARAMS,
      ],
      ...this.body(h, input),
      responses: {
        '200': {
          description:
            'Dropped by a throttle with throttleMode=drop: no invocation was created (not an error: the send was refused as asked). retryAfterMs says when the next slot frees.',
          content: json(ref('DroppedSend')),
        },
        '202': {
          description: 'Accepted: the invocation is durable and will run.',
          headers: {
            'x-keel-invocation-id': {
              description: 'The invocation id, as in the body.',
              schema: { type: 'string' },
            },
          },
          content: json(ref('SendResult')),
        },
        '400': response('BadRequest'),
        '404': response('NotFound'),
        '413': response('PayloadTooLarge'),
        '415': response('UnsupportedMediaType'),
        '500': response('Internal'),
        '503': response('Unavailable'),
      },
    };
  }

  /** The request body, shared by calls and sends. */
  private body(h: HandlerInfo, input: { schema: Obj; note?: string }): Obj {
    return {
      requestBody: {
        required: h.inputRequired,
        description:
          `The handler's input as JSON${input.note ? `. ${input.note}` : ''}` +
          (h.inputRequired ? '' : ' An empty body is no input (undefined).'),
        content: json(input.schema),
      },
    };
  }

  /** Adds an operation; a path whose shape exists under other parameter names joins it. */
  add(path: string, method: string, op: Obj): void {
    const shape = path.replace(/\{[^}]*\}/g, '{}');
    const existing = this.shapes.get(shape);
    if (existing !== undefined && existing !== path) {
      // Two templates that match the same URLs are one path in OpenAPI: rename the parameter.
      const names = [...existing.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!);
      const mine = [...path.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!);
      for (const p of (op.parameters as Obj[] | undefined) ?? []) {
        const i = p.in === 'path' ? mine.indexOf(p.name as string) : -1;
        if (i !== -1) p.name = names[i];
      }
      path = existing;
    }
    this.shapes.set(shape, path);
    if (!this.groups.has(path)) this.groups.set(path, this.group);
    const item = (this.paths[path] ??= {});
    if (item[method] === undefined) item[method] = op;
  }

  /** The routes every ingress serves, whatever it runs. */
  fixedRoutes(): void {
    const id = (what: string): Obj => ({
      name: 'id',
      in: 'path',
      required: true,
      description: `The ${what} id.`,
      schema: { type: 'string' },
    });
    const tags = [KEEL_TAG];
    this.add('/invocations/{id}', 'get', {
      tags,
      operationId: this.operationId('keel.getInvocation'),
      summary: "An invocation's status",
      parameters: [id('invocation')],
      responses: {
        '200': { description: 'The invocation.', content: json(ref('Invocation')) },
        '404': response('NotFound'),
      },
    });
    this.add('/invocations/{id}/attach', 'get', {
      tags,
      operationId: this.operationId('keel.attach'),
      summary: 'Wait for an invocation and answer its result',
      description:
        'Waits until the invocation finishes. A killed invocation answers 409 killed; a failed one its terminal error with its status.',
      parameters: [id('invocation')],
      responses: {
        '200': { description: "The handler's result.", content: json({}) },
        '404': response('NotFound'),
        '409': response('Conflict'),
        '429': response('TooManyWaiters'),
        default: response('HandlerError'),
      },
    });
    this.add('/invocations/{id}/output', 'get', {
      tags,
      operationId: this.operationId('keel.output'),
      summary: "An invocation's result if it has finished",
      parameters: [id('invocation')],
      responses: {
        '200': { description: "The handler's result.", content: json({}) },
        '202': { description: 'Not finished yet: poll again.', content: json(ref('NotReady')) },
        '404': response('NotFound'),
        '409': response('Conflict'),
        default: response('HandlerError'),
      },
    });
    this.add('/awakeables/{id}/resolve', 'post', {
      tags,
      operationId: this.operationId('keel.resolveAwakeable'),
      summary: 'Complete an awakeable with a value',
      parameters: [id('awakeable')],
      requestBody: {
        required: false,
        description: 'The value, any JSON; an empty body is null.',
        content: json({}),
      },
      responses: {
        '200': {
          description: 'Resolved.',
          content: json(objectOf({ resolved: { type: 'string' } })),
        },
        '400': response('BadRequest'),
        '404': response('NotFound'),
        '409': response('Conflict'),
      },
    });
    this.add('/awakeables/{id}/reject', 'post', {
      tags,
      operationId: this.operationId('keel.rejectAwakeable'),
      summary: 'Complete an awakeable with a failure',
      description: 'The waiting handler sees a TerminalError with this message.',
      parameters: [id('awakeable')],
      requestBody: {
        required: true,
        content: json(objectOf({ message: { type: 'string' } })),
      },
      responses: {
        '200': {
          description: 'Rejected.',
          content: json(objectOf({ rejected: { type: 'string' } })),
        },
        '400': response('BadRequest'),
        '404': response('NotFound'),
        '409': response('Conflict'),
      },
    });
    this.add('/health', 'get', {
      tags,
      operationId: this.operationId('keel.health'),
      summary: 'Liveness',
      responses: {
        '200': {
          description: 'The ingress is up.',
          content: json(objectOf({ status: { const: 'ok' } })),
        },
      },
    });
    this.add('/openapi.json', 'get', {
      tags,
      operationId: this.operationId('keel.openapi'),
      summary: 'This document',
      responses: { '200': { description: 'The OpenAPI 3.1 document.', content: json({}) } },
    });
  }

  /** An extension's routes under `/{prefix}`, as it described them, or one catch-all. */
  mount(prefix: string, routes: readonly MountRoute[] | undefined): void {
    this.tag(prefix, `Routes served by the ${prefix} extension.`);
    if (!routes) {
      const op = (method: string): Obj => ({
        tags: [prefix],
        operationId: this.operationId(`${prefix}.${method}`),
        summary: `Served by the ${prefix} extension`,
        description: `Every path under /${prefix}/ is answered by the ${prefix} extension, which does not describe its routes; {path} may span several segments.`,
        parameters: [{ name: 'path', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': { description: 'OK' }, default: response('Error') },
      });
      this.add(`/${seg(prefix)}/{path}`, 'get', op('get'));
      this.add(`/${seg(prefix)}/{path}`, 'post', op('post'));
      return;
    }
    for (const r of routes) {
      const path = `/${seg(prefix)}${r.path === '/' ? '' : r.path}`;
      const params = [...path.matchAll(/\{([^}]*)\}/g)].map((m) => ({
        name: m[1]!,
        in: 'path',
        required: true,
        schema: { type: 'string' },
      }));
      const responses: Obj = {};
      for (const [status, text] of Object.entries(r.responses ?? { '200': 'OK' }))
        responses[status] = { description: text };
      responses.default = response('Error');
      this.add(path, r.method.toLowerCase(), {
        tags: [prefix],
        operationId: this.operationId(`${prefix}.${r.method.toLowerCase()}${r.path}`),
        summary: r.summary,
        ...(r.description ? { description: r.description } : {}),
        ...(params.length > 0 ? { parameters: params } : {}),
        responses,
      });
    }
  }
}

/** A path segment of a name: names are URL path segments as they are, escaped where needed. */
function seg(name: string): string {
  return encodeURIComponent(name);
}

const IDEMPOTENCY_KEY_PARAM: Obj = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Makes the request idempotent: the same key (per target) answers with the same invocation and result. ' +
    "Given once; a workflow's run is deduplicated by its key alone.",
  schema: { type: 'string', minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH },
};
const IDEMPOTENCY_KEY: Obj = { $ref: '#/components/parameters/IdempotencyKey' };
const TRACEPARENT_PARAM: Obj = {
  name: 'traceparent',
  in: 'header',
  required: false,
  description:
    "W3C Trace Context: the invocation's spans join this trace (a malformed one starts a new trace).",
  schema: { type: 'string' },
};
const TRACEPARENT: Obj = { $ref: '#/components/parameters/TraceParent' };

function keyParam(def: DefinitionInfo): Obj {
  return {
    name: 'key',
    in: 'path',
    required: true,
    description:
      def.kind === 'workflow'
        ? "The workflow's key: run executes once per key."
        : "The object's key: exclusive handlers run one at a time per key.",
    schema: { type: 'string', minLength: 1 },
  };
}

const KIND_TEXT: Record<DefinitionInfo['kind'], string> = {
  service: 'A stateless service.',
  object:
    'A keyed virtual object with durable state: exclusive handlers run one at a time per key.',
  workflow:
    'A workflow: run executes once per key; its other handlers read its state while it runs.',
};

function handlerText(def: DefinitionInfo, h: HandlerInfo): string {
  const idem = 'An Idempotency-Key header makes the request idempotent.';
  switch (h.kind) {
    case 'workflow':
      return `The workflow's run: executes once per key (a second request for the same key answers the first run). ${idem}`;
    case 'shared':
      return `A shared handler: runs concurrently with the key's other handlers and reads its state. ${idem}`;
    case 'exclusive':
      return `An exclusive handler: one at a time per key, in arrival order. ${idem}`;
    default:
      return `${def.name} is a stateless service. ${idem}`;
  }
}

function objectOf(properties: Obj, required = Object.keys(properties)): Obj {
  return { type: 'object', properties, required };
}

/** Keywords whose values are data, not schemas: a `$ref` inside them is not a reference. */
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples', 'example']);

/**
 * A schema moved from the root of its own document to `base` in this one: its local references
 * (`#`, `#/$defs/x`) are rewritten to point under `base`, so recursive schemas stay valid.
 */
function rebase(value: unknown, base: string): unknown {
  if (Array.isArray(value)) return value.map((v) => rebase(v, base));
  if (typeof value !== 'object' || value === null) return value;
  const out: Obj = {};
  for (const [k, v] of Object.entries(value as Obj)) {
    if ((k === '$ref' || k === '$dynamicRef') && typeof v === 'string' && v.startsWith('#'))
      out[k] = base + v.slice(1);
    else out[k] = DATA_KEYWORDS.has(k) ? v : rebase(v, base);
  }
  return out;
}

const ERROR_SCHEMA: Obj = {
  type: 'object',
  properties: {
    code: { type: 'string', description: 'A stable code, e.g. validation_failed or not_found.' },
    message: { type: 'string', description: 'What happened and what to do.' },
  },
  required: ['code', 'message'],
};

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

const durationParam = (name: string, description: string): Obj => ({
  name,
  in: 'query',
  required: false,
  description,
  schema: { type: 'string', examples: ['5s', '1m', 'PT1H'] },
});

/** The debounce and throttle parameters of a send (src/ingress/flow-params.ts, docs/flow-control.md). */
const FLOW_PARAMS: Obj[] = [
  {
    name: 'debounceKey',
    in: 'query',
    required: false,
    description:
      'Debounce: sends to this handler (and object key) with the same debounceKey that follow each other closer than debouncePeriod make one invocation, started with the last input once the key was quiet for debouncePeriod. Every send of a burst answers the same invocationId. 1-256 characters; not with delay or an Idempotency-Key.',
    schema: { type: 'string', minLength: 1, maxLength: 256 },
  },
  durationParam(
    'debouncePeriod',
    'Debounce: the quiet period (required with debounceKey); more than 0, at most 365 days.',
  ),
  durationParam(
    'debounceMaxWait',
    'Debounce: the longest a burst can postpone its start, from its first send; at least debouncePeriod. Default: no bound.',
  ),
  {
    name: 'throttleKey',
    in: 'query',
    required: false,
    description:
      'Throttle: at most throttleLimit invocations of this handler with the same throttleKey start within any window of throttlePeriod. 1-256 characters.',
    schema: { type: 'string', minLength: 1, maxLength: 256 },
  },
  {
    name: 'throttleLimit',
    in: 'query',
    required: false,
    description: 'Throttle: starts per period (required with throttleKey), 1 to 1000.',
    schema: { type: 'string', pattern: '^[0-9]+$', examples: ['10'] },
  },
  durationParam(
    'throttlePeriod',
    'Throttle: the window (required with throttleKey); more than 0, at most 365 days.',
  ),
  {
    name: 'throttleMode',
    in: 'query',
    required: false,
    description:
      'Throttle: beyond the limit, delay (default) schedules the start at the next free slot (202, status scheduled); drop refuses it (200 DroppedSend).',
    schema: { enum: ['delay', 'drop'] },
  },
];

const FIXED_SCHEMAS: Record<string, Obj> = {
  Error: ERROR_SCHEMA,
  DroppedSend: {
    type: 'object',
    properties: {
      dropped: { const: true },
      code: { const: 'throttled' },
      retryAfterMs: {
        type: 'integer',
        description: 'Milliseconds until the throttle has a free slot again.',
      },
      message: { type: 'string' },
    },
    required: ['dropped', 'code', 'retryAfterMs', 'message'],
  },
  SendResult: {
    type: 'object',
    properties: {
      invocationId: { type: 'string' },
      status: { enum: STATUSES },
      existing: {
        type: 'boolean',
        description:
          'True when the Idempotency-Key or workflow key matched an existing invocation.',
      },
    },
    required: ['invocationId', 'status', 'existing'],
  },
  NotReady: {
    type: 'object',
    properties: {
      code: { const: 'not_ready' },
      status: { enum: STATUSES },
      message: { type: 'string' },
    },
    required: ['code', 'status', 'message'],
  },
  Invocation: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      target: { type: 'string' },
      service: { type: 'string' },
      handler: { type: 'string' },
      key: { type: 'string' },
      status: { enum: STATUSES },
      attempt: { type: 'integer' },
      createdAt: { type: 'string', format: 'date-time' },
      modifiedAt: { type: 'string', format: 'date-time' },
      completedAt: { type: 'string', format: 'date-time' },
      nextAttemptAt: { type: 'string', format: 'date-time' },
      idempotencyKey: { type: 'string' },
      error: ERROR_SCHEMA,
      cancel: { enum: ['requested', 'delivered'] },
      outcome: { type: 'string' },
    },
    required: [
      'id',
      'target',
      'service',
      'handler',
      'status',
      'attempt',
      'createdAt',
      'modifiedAt',
    ],
  },
};

const errorResponse = (description: string, headers?: Obj): Obj => ({
  description,
  ...(headers ? { headers } : {}),
  content: json(ref('Error')),
});

const FIXED_RESPONSES: Record<string, Obj> = {
  BadRequest: errorResponse(
    'The request is invalid; nothing was started. Codes: validation_failed (the input does not match ' +
      "the handler's schema; the message lists every issue, or a key is missing), invalid_json, " +
      'invalid_idempotency_key, invalid_delay, invalid_debounce, invalid_throttle.',
  ),
  Unauthorized: errorResponse('No valid API key (code unauthorized).'),
  NotFound: errorResponse('No such service, handler, invocation or awakeable (code not_found).'),
  Conflict: errorResponse(
    'The state forbids it: killed (the invocation was killed), already_completed (the awakeable was completed before).',
  ),
  PayloadTooLarge: errorResponse('The body is larger than the limit (code body_too_large).'),
  UnsupportedMediaType: errorResponse(
    'The body is not JSON: send Content-Type: application/json (code unsupported_media_type).',
  ),
  TooManyWaiters: errorResponse(
    'Too many clients wait on this invocation (code too_many_waiters): poll /invocations/{id}/output instead.',
    { 'retry-after': { description: 'Seconds to wait.', schema: { type: 'integer' } } },
  ),
  Internal: errorResponse(
    'A bug or a storage failure (code internal); the server log has the details.',
  ),
  Unavailable: errorResponse(
    'The ingress or engine is shutting down (shutting_down, engine_stopped): retry with the same Idempotency-Key.',
  ),
  HandlerError: errorResponse(
    "The handler's terminal error, with the code and status it threw (e.g. a TerminalError with status 409).",
  ),
  Error: errorResponse('An error.'),
};
