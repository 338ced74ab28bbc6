import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler, object, service } from '../core/definitions.js';
import type { StandardSchemaV1 } from '../core/schema.js';
import { Engine } from '../engine/engine.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { tempDir } from '../../test/helpers.js';
import { jsonSchemaInfo } from './catalog.js';
import { openApiDocument } from './openapi.js';
import { serve } from './server.js';

/** A Standard Schema from no library: a string check with no way to give JSON Schema. */
const plainString: StandardSchemaV1<unknown, string> = {
  '~standard': {
    version: 1,
    vendor: 'handmade',
    validate: (v) =>
      typeof v === 'string' ? { value: v } : { issues: [{ message: 'expected a string' }] },
  },
};

/** A schema whose library offers `toJSONSchema()` on the schema, not the standard interface. */
const withMethod = Object.assign(
  {
    '~standard': {
      version: 1 as const,
      vendor: 'oldlib',
      validate: (v: unknown) => ({ value: v as number }),
    },
  },
  { toJSONSchema: () => ({ type: 'number', minimum: 0 }) },
) satisfies StandardSchemaV1<unknown, number>;

describe('jsonSchemaInfo', () => {
  it('uses a toJSONSchema() method when the standard interface is missing', () => {
    expect(jsonSchemaInfo(withMethod, 'input')).toEqual({
      schema: { type: 'number', minimum: 0 },
    });
  });

  it('says why there is none: no schema, or a schema that offers none', () => {
    expect(jsonSchemaInfo(undefined, 'input').missing).toBe('the handler declares no input schema');
    expect(jsonSchemaInfo(plainString, 'output').missing).toContain('handmade');
    expect(jsonSchemaInfo(plainString, 'output').schema).toBeUndefined();
  });

  it('reports a converter that throws instead of failing', () => {
    const throwing = {
      '~standard': {
        ...plainString['~standard'],
        jsonSchema: {
          input: () => {
            throw new Error('no JSON for you');
          },
          output: () => ({}),
        },
      },
    } as StandardSchemaV1;
    expect(jsonSchemaInfo(throwing, 'input').missing).toContain('no JSON for you');
  });
});

describe('openApiDocument for names that meet the fixed routes', () => {
  // An object named `invocations` has paths of the same shape as GET /invocations/{id}/attach;
  // one named `awakeables` loses its resolve route to the awakeable route (see router.ts).
  const Invocations = object({
    name: 'invocations',
    handlers: { attach: async () => 1 },
  });
  const Awakeables = object({
    name: 'awakeables',
    handlers: { resolve: async () => 1, other: async () => 2 },
  });
  const Odd = service({
    name: 'Odd',
    handlers: {
      'with space': handler({ input: plainString }, async (_ctx, s) => s),
      num: handler({ input: withMethod }, async (_ctx, n) => n),
    },
  });
  let engine: Engine;
  let cleanup: () => void;
  let doc: any;

  beforeAll(async () => {
    const tmp = tempDir('keel-openapi-unit-');
    cleanup = tmp.cleanup;
    engine = new Engine({
      services: [Invocations, Awakeables, Odd],
      store: openSqliteStore({ path: join(tmp.dir, 'keel.db'), durability: 'os' }),
      logger: () => undefined,
    });
    doc = await openApiDocument(engine);
  });
  afterAll(async () => {
    await engine?.stop();
    cleanup?.();
  });

  it('merges paths of the same shape into one path item, renaming the parameter', () => {
    const item = doc.paths['/invocations/{id}/attach'];
    expect(Object.keys(item).sort()).toEqual(['get', 'post']);
    expect(item.post.parameters[0]).toMatchObject({ name: 'id', in: 'path' });
    expect(doc.paths['/invocations/{key}/attach']).toBeUndefined();
  });

  it("lists only the /send route of an awakeables object's resolve handler", () => {
    expect(doc.paths['/awakeables/{id}/resolve'].post.operationId).toBe('keel.resolveAwakeable');
    expect(doc.paths['/awakeables/{key}/resolve/send']).toBeDefined();
    expect(doc.paths['/awakeables/{id}/other']).toBeUndefined();
    expect(doc.paths['/awakeables/{key}/other']).toBeDefined();
  });

  it('escapes names in paths and components, and uses what each schema offers', () => {
    const op = doc.paths['/Odd/with%20space'].post;
    expect(op.requestBody.content['application/json'].schema).toEqual({});
    expect(op.requestBody.description).toContain('handmade');
    expect(doc.paths['/Odd/num'].post.requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/Odd.num.input',
    });
    expect(doc.components.schemas['Odd.num.input']).toEqual({ type: 'number', minimum: 0 });
  });

  it('declares API keys when the ingress requires them', async () => {
    const secured: any = await openApiDocument(engine, {
      apiKeys: { exemptMounts: new Set(['hooks', 'absent']) },
      mounts: { hooks: async () => undefined, other: async () => undefined },
    });
    expect(secured.components.securitySchemes).toEqual({
      bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      apiKeyHeader: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }),
    });
    expect(secured.security).toEqual([{ bearer: [] }, { apiKeyHeader: [] }]);
    // Open: the health check and the mounts that authenticate on their own.
    expect(secured.paths['/health'].get.security).toEqual([]);
    expect(secured.paths['/hooks/{path}'].post.security).toEqual([]);
    expect(secured.paths['/health'].get.responses['401']).toBeUndefined();
    // Everything else needs a key: 401 without.
    for (const op of [
      secured.paths['/Odd/num'].post,
      secured.paths['/openapi.json'].get,
      secured.paths['/other/{path}'].get,
      secured.paths['/invocations/{id}'].get,
    ]) {
      expect(op.security).toBeUndefined();
      expect(op.responses['401']).toEqual({ $ref: '#/components/responses/Unauthorized' });
    }
    // Without keys, no security at all.
    expect(doc.security).toBeUndefined();
    expect(doc.components.securitySchemes).toBeUndefined();
  });

  it('is served with the security schemes by an ingress that requires keys', async () => {
    const key = 'k'.repeat(40);
    const ingress = await serve(engine, { port: 0, ingressKeys: [key] });
    try {
      expect((await fetch(`${ingress.url}/openapi.json`)).status).toBe(401);
      const res = await fetch(`${ingress.url}/openapi.json`, { headers: { 'x-api-key': key } });
      expect(res.status).toBe(200);
      const served = (await res.json()) as any;
      expect(served.security).toEqual([{ bearer: [] }, { apiKeyHeader: [] }]);
      expect(served.paths['/health'].get.security).toEqual([]);
    } finally {
      await ingress.close();
    }
  });
});
