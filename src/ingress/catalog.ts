import { handlerSpec, type Definition, type HandlerSpec } from '../core/definitions.js';
import { errorMessage } from '../core/errors.js';
import type { StandardSchemaV1 } from '../core/schema.js';
import type { Engine } from '../engine/engine.js';
import { kernelOf } from '../engine/kernel.js';

/**
 * The catalog of what the ingress serves: each routable definition with its handlers and their
 * input and output as JSON Schema. `GET /openapi.json` (ingress and admin API) and the admin
 * API's `GET /services` are both built from it, so they never disagree.
 */

/** A JSON Schema (draft 2020-12) as a plain object. */
export type JsonSchema = Record<string, unknown>;

/** What a handler declares for one side (input or output). */
export interface SchemaInfo {
  /** The JSON Schema, when the handler has a schema that converts; absent otherwise. */
  schema?: JsonSchema;
  /** Why there is no JSON Schema: no schema declared, or its conversion failed (and how). */
  missing?: string;
}

/** How a handler runs: see `GET /services` in the admin API. */
export type HandlerKind = 'service' | 'exclusive' | 'shared' | 'workflow';

export interface HandlerInfo {
  name: string;
  kind: HandlerKind;
  input: SchemaInfo;
  output: SchemaInfo;
  /**
   * Whether a request must carry a body: true when the input schema refuses `undefined` (an
   * empty body). Without a schema any body, or none, is accepted.
   */
  inputRequired: boolean;
}

export interface DefinitionInfo {
  name: string;
  kind: Definition['kind'];
  handlers: HandlerInfo[];
}

/** Catalogs by engine: definitions cannot change once an engine is built. */
const catalogs = new WeakMap<object, Promise<DefinitionInfo[]>>();

/**
 * The routable (non-`internal`) definitions of an engine, sorted by name, each handler with its
 * JSON Schemas. Computed once per engine and cached: converting schemas is not free, and the
 * handlers are fixed after the engine is built.
 */
export function catalogOf(engine: Engine): Promise<DefinitionInfo[]> {
  const registry = kernelOf(engine).registry;
  let cached = catalogs.get(registry);
  if (!cached) {
    cached = buildCatalog(registry.all().filter((d) => registry.routable(d.name) !== undefined));
    catalogs.set(registry, cached);
  }
  return cached;
}

async function buildCatalog(defs: Definition[]): Promise<DefinitionInfo[]> {
  const out: DefinitionInfo[] = [];
  for (const def of [...defs].sort((a, b) => a.name.localeCompare(b.name))) {
    const handlers: HandlerInfo[] = [];
    for (const name of Object.keys(def.handlers).sort()) {
      const spec = handlerSpec(def, name)!; // the registry refused definitions without one
      handlers.push({
        name,
        kind: handlerKind(def, spec),
        input: jsonSchemaInfo(spec.options.input, 'input'),
        output: jsonSchemaInfo(spec.options.output, 'output'),
        inputRequired: spec.options.input ? !(await accepts(spec.options.input, undefined)) : false,
      });
    }
    out.push({ name: def.name, kind: def.kind, handlers });
  }
  return out;
}

function handlerKind(def: Definition, spec: HandlerSpec): HandlerKind {
  if (def.kind === 'service') return 'service';
  if (def.kind === 'workflow') return spec.name === 'run' ? 'workflow' : 'shared';
  return spec.shared ? 'shared' : 'exclusive';
}

/** True when the schema accepts `value`; a schema that throws accepts nothing. */
async function accepts(schema: StandardSchemaV1, value: unknown): Promise<boolean> {
  try {
    const result = await schema['~standard'].validate(value);
    return !result.issues;
  } catch {
    return false;
  }
}

/** The Standard JSON Schema converter (standardschema.dev/json-schema), as far as Keel needs it. */
interface StandardJsonSchemaConverter {
  input?: (options: { target: string }) => Record<string, unknown>;
  output?: (options: { target: string }) => Record<string, unknown>;
}

const TARGET = 'draft-2020-12';
/** The dialect of OpenAPI 3.1's schemas: stated once in the document, not in every schema. */
const DIALECT = 'https://json-schema.org/draft/2020-12/schema';

/**
 * The JSON Schema of one side of a handler. In order: the Standard JSON Schema interface
 * (`schema['~standard'].jsonSchema`, which zod 4.2+, valibot and arktype implement), then a
 * `toJSONSchema()`/`toJsonSchema()` method on the schema itself (older zod 4, arktype). Keel
 * imports no schema library: whatever the schema offers is used, and a schema that offers
 * nothing (or whose conversion throws, e.g. zod's transforms and dates) has no JSON Schema:
 * the ingress then accepts any JSON and the handler's own validation decides.
 *
 * @example
 * ```ts
 * jsonSchemaInfo(z.object({ sku: z.string() }), 'input').schema
 * // { type: 'object', properties: { sku: { type: 'string' } }, required: ['sku'] }
 * ```
 */
export function jsonSchemaInfo(
  schema: StandardSchemaV1 | undefined,
  io: 'input' | 'output',
): SchemaInfo {
  if (!schema) return { missing: `the handler declares no ${io} schema` };
  const std = schema['~standard'] as { jsonSchema?: StandardJsonSchemaConverter; vendor?: string };
  const vendor = typeof std.vendor === 'string' ? std.vendor : 'unknown';
  try {
    const convert = std.jsonSchema?.[io];
    if (typeof convert === 'function')
      return usable(convert.call(std.jsonSchema, { target: TARGET }), vendor, io);
    const own = schema as unknown as Record<string, unknown>;
    for (const method of ['toJSONSchema', 'toJsonSchema']) {
      const fn = own[method];
      if (typeof fn === 'function') return usable(fn.call(schema) as unknown, vendor, io);
    }
  } catch (err) {
    return {
      missing: `its ${io} schema (${vendor}) cannot be expressed as JSON Schema: ${errorMessage(err)}`,
    };
  }
  return {
    missing: `its ${io} schema (${vendor}) offers no JSON Schema (neither the Standard JSON Schema interface nor toJSONSchema())`,
  };
}

function usable(value: unknown, vendor: string, io: string): SchemaInfo {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return {
      missing: `its ${io} schema (${vendor}) converted to something that is not a JSON Schema`,
    };
  // A copy (the document must not share objects with a schema library's cache), without the
  // default dialect's `$schema`: OpenAPI 3.1 states it once for the whole document.
  const copy = JSON.parse(JSON.stringify(value)) as JsonSchema;
  if (copy.$schema === DIALECT) delete copy.$schema;
  return { schema: copy };
}
