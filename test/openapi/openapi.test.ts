import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { tempDir } from '../helpers.js';
import {
  ADMIN_TOKEN,
  CategorySchema,
  Order,
  Receipt,
  startFixture,
  VIEWER_TOKEN,
  zodJsonSchema,
  type Fixture,
} from './fixture.js';

/**
 * `GET /openapi.json` on the ingress and the admin API: an OpenAPI 3.1 document generated from
 * the handlers' zod schemas, with every route shape of the ingress and nothing internal.
 */
let f: Fixture;
let doc: any;

beforeAll(async () => {
  f = await startFixture();
  const res = await fetch(`${f.ingress.url}/openapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  doc = await res.json();
}, 60_000);
afterAll(async () => {
  await f?.close();
});

/** Follows a local `$ref` (`#/components/...`) through the document. */
function deref(node: any): any {
  let n = node;
  while (n && typeof n.$ref === 'string') {
    const parts = (n.$ref as string)
      .slice(2)
      .split('/')
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    n = parts.reduce((o: any, p) => o?.[p], doc);
    if (n === undefined) throw new Error(`dangling $ref ${node.$ref}`);
  }
  return n;
}

const bodySchema = (path: string): any =>
  deref(doc.paths[path].post.requestBody.content['application/json'].schema);
const okSchema = (path: string, status = '200'): any =>
  deref(doc.paths[path].post.responses[status].content['application/json'].schema);

describe('GET /openapi.json on the ingress', () => {
  it('is an OpenAPI 3.1 document with info, paths and components', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(typeof doc.paths).toBe('object');
    expect(doc.components.schemas.Error).toMatchObject({ required: ['code', 'message'] });
  });

  it('lists every route shape of the ingress', () => {
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/Cart/{key}/add',
        '/Cart/{key}/add/send',
        '/Cart/{key}/items',
        '/Cart/{key}/items/send',
        '/Shop/maybe',
        '/Shop/maybe/send',
        '/Shop/odd',
        '/Shop/odd/send',
        '/Shop/ping',
        '/Shop/ping/send',
        '/Shop/place',
        '/Shop/place/send',
        '/Shop/refuse',
        '/Shop/refuse/send',
        '/Shop/shout',
        '/Shop/shout/send',
        '/Shop/tree',
        '/Shop/tree/send',
        '/Signup/{key}/run',
        '/Signup/{key}/run/send',
        '/Signup/{key}/stage',
        '/Signup/{key}/stage/send',
        '/awakeables/{id}/reject',
        '/awakeables/{id}/resolve',
        '/health',
        '/hooks/{provider}',
        '/invocations/{id}',
        '/invocations/{id}/attach',
        '/invocations/{id}/output',
        '/openapi.json',
        '/opaque/{path}',
      ].sort(),
    );
    expect(Object.keys(doc.paths['/invocations/{id}'])).toEqual(['get']);
    expect(Object.keys(doc.paths['/awakeables/{id}/resolve'])).toEqual(['post']);
    expect(Object.keys(doc.paths['/opaque/{path}']).sort()).toEqual(['get', 'post']);
  });

  it('leaves out internal services', () => {
    const text = JSON.stringify(doc);
    expect(text).not.toContain('Machinery');
    expect(text).not.toContain('keel.hidden');
  });

  it("describes a call's request body with zod's JSON Schema and its result with the output schema", () => {
    expect(bodySchema('/Shop/place')).toEqual(zodJsonSchema(Order));
    expect(okSchema('/Shop/place')).toEqual(zodJsonSchema(Receipt, 'output'));
    const op = doc.paths['/Shop/place'].post;
    expect(op.requestBody.required).toBe(true);
    expect(op.tags).toEqual(['Shop']);
    expect(Object.keys(op.responses)).toEqual(
      expect.arrayContaining(['200', '400', '404', '413', '415', '500', '503', 'default']),
    );
    expect(deref(op.responses['400']).content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/Error',
    });
    expect(deref(op.responses['400']).description).toContain('validation_failed');
    const params = op.parameters.map(deref);
    expect(params).toContainEqual(
      expect.objectContaining({ name: 'Idempotency-Key', in: 'header', required: false }),
    );
  });

  it('describes sends: 202 with the invocation id, ?delay= and the same body', () => {
    const op = doc.paths['/Shop/place/send'].post;
    expect(bodySchema('/Shop/place/send')).toEqual(zodJsonSchema(Order));
    expect(okSchema('/Shop/place/send', '202')).toMatchObject({
      required: ['invocationId', 'status', 'existing'],
    });
    expect(op.responses['202'].headers['x-keel-invocation-id']).toBeDefined();
    // A 200 only for a send a throttle dropped (docs/flow-control.md).
    expect(okSchema('/Shop/place/send', '200')).toMatchObject({
      required: ['dropped', 'code', 'retryAfterMs', 'message'],
    });
    const params = op.parameters.map(deref);
    expect(params).toContainEqual(expect.objectContaining({ name: 'delay', in: 'query' }));
    for (const name of ['debounceKey', 'debouncePeriod', 'debounceMaxWait', 'throttleKey'])
      expect(params).toContainEqual(expect.objectContaining({ name, in: 'query' }));
    for (const name of ['throttleLimit', 'throttlePeriod', 'throttleMode'])
      expect(params).toContainEqual(expect.objectContaining({ name, in: 'query' }));
    expect(params).toContainEqual(expect.objectContaining({ name: 'Idempotency-Key' }));
    // The delay is for sends only.
    expect(doc.paths['/Shop/place'].post.parameters.map(deref)).not.toContainEqual(
      expect.objectContaining({ name: 'delay' }),
    );
  });

  it('gives objects and workflows a key path parameter', () => {
    for (const path of ['/Cart/{key}/add', '/Cart/{key}/items/send', '/Signup/{key}/run']) {
      const params = doc.paths[path].post.parameters.map(deref);
      expect(params).toContainEqual(
        expect.objectContaining({ name: 'key', in: 'path', required: true }),
      );
    }
    expect(bodySchema('/Cart/{key}/add')).toEqual(zodJsonSchema(z.object({ sku: z.string() })));
    expect(okSchema('/Cart/{key}/items')).toEqual(zodJsonSchema(z.array(z.string()), 'output'));
    expect(bodySchema('/Signup/{key}/run')).toEqual(
      zodJsonSchema(z.object({ email: z.string().email() })),
    );
    expect(doc.paths['/Signup/{key}/run'].post.description).toContain('once per key');
    expect(doc.paths['/Cart/{key}/items'].post.description).toContain('shared');
  });

  it('gives a handler without a convertible schema {} and says why', () => {
    const ping = doc.paths['/Shop/ping'].post;
    expect(bodySchema('/Shop/ping')).toEqual({});
    expect(ping.requestBody.required).toBe(false);
    expect(ping.requestBody.description).toContain('declares no input schema');
    // A custom check has no JSON Schema: any JSON, and the handler's schema decides.
    const odd = doc.paths['/Shop/odd'].post;
    expect(bodySchema('/Shop/odd')).toEqual({});
    expect(odd.requestBody.description).toMatch(/cannot be expressed as JSON Schema/);
    expect(odd.requestBody.required).toBe(true);
    // Nor has a transform's output: the input side still has its schema.
    const shout = doc.paths['/Shop/shout'].post;
    expect(bodySchema('/Shop/shout')).toEqual({ type: 'string' });
    expect(okSchema('/Shop/shout')).toEqual({});
    expect(shout.responses['200'].description).toMatch(/cannot be expressed as JSON Schema/);
  });

  it('marks the body optional when the schema accepts no input', () => {
    expect(doc.paths['/Shop/maybe'].post.requestBody.required).toBe(false);
  });

  it("keeps a recursive schema's references pointing inside its component", () => {
    const ref = doc.paths['/Shop/tree'].post.requestBody.content['application/json'].schema.$ref;
    expect(ref).toBe('#/components/schemas/Shop.tree.input');
    const schema = deref({ $ref: ref });
    const inner = schema.properties.children.items.$ref as string;
    expect(inner.startsWith(ref)).toBe(true);
    expect(deref({ $ref: inner })).toBe(schema);
    // Equal to zod's once its self-reference is read back.
    const original = zodJsonSchema(CategorySchema) as any;
    expect(original.properties.children.items).toEqual({ $ref: '#' });
  });

  it('describes the fixed routes and the extensions mounted on the ingress', () => {
    const output = doc.paths['/invocations/{id}/output'].get;
    expect(Object.keys(output.responses)).toEqual(expect.arrayContaining(['200', '202', '404']));
    expect(doc.paths['/invocations/{id}/attach'].get.responses['429']).toBeDefined();
    expect(
      deref(
        doc.paths['/awakeables/{id}/reject'].post.requestBody.content['application/json'].schema,
      ),
    ).toMatchObject({ required: ['message'] });
    expect(doc.paths['/hooks/{provider}'].post.summary).toBe('Receives a webhook');
    expect(doc.paths['/opaque/{path}'].get.description).toContain('opaque extension');
  });

  it('has unique operation ids and only references that resolve', () => {
    const ids: string[] = [];
    for (const item of Object.values<any>(doc.paths))
      for (const op of Object.values<any>(item)) ids.push(op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    const refs: string[] = [];
    const walk = (n: any): void => {
      if (Array.isArray(n)) n.forEach(walk);
      else if (n && typeof n === 'object')
        for (const [k, v] of Object.entries(n)) {
          if (k === '$ref' && typeof v === 'string') refs.push(v);
          else walk(v);
        }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(10);
    for (const r of refs) expect(() => deref({ $ref: r }), r).not.toThrow();
    // Every path parameter of a template is declared by each of its operations.
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      const names = [...path.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]);
      for (const op of Object.values<any>(item)) {
        const declared = (op.parameters ?? [])
          .map(deref)
          .filter((p: any) => p.in === 'path')
          .map((p: any) => p.name);
        expect(declared.sort(), `${path}`).toEqual([...names].sort());
      }
    }
  });

  it('passes a real OpenAPI 3.1 validator (openapi-spec-validator), when the machine has one', (t) => {
    const probe = spawnSync('python3', ['-c', 'import openapi_spec_validator'], {
      encoding: 'utf8',
    });
    if (probe.status !== 0) {
      console.log(
        'skipped: python3 with openapi-spec-validator is not installed here (pip install openapi-spec-validator); ' +
          'the structural checks above still ran',
      );
      t.skip();
      return;
    }
    const { dir, cleanup } = tempDir('keel-openapi-doc-');
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(doc));
      const run = spawnSync(
        'python3',
        [
          '-c',
          'import json,sys\n' +
            'from openapi_spec_validator import validate\n' +
            'from openapi_spec_validator.validation import OpenAPIV31SpecValidator\n' +
            'validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)\n' +
            'print("valid")',
          file,
        ],
        { encoding: 'utf8' },
      );
      expect(run.stderr).toBe('');
      expect(run.stdout.trim()).toBe('valid');
    } finally {
      cleanup();
    }
  });

  it('answers the same document again (cached), and 405 to other methods', async () => {
    const again = await (await fetch(`${f.ingress.url}/openapi.json`)).json();
    expect(again).toEqual(doc);
    const post = await fetch(`${f.ingress.url}/openapi.json`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
  });
});

describe('GET /openapi.json on the admin API', () => {
  it('is the same document, naming the ingress in servers, for either role', async () => {
    for (const token of [ADMIN_TOKEN, VIEWER_TOKEN]) {
      const res = await fetch(`${f.admin.url}/openapi.json`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
      const { servers, ...rest } = (await res.json()) as Record<string, unknown>;
      expect(servers).toEqual([{ url: f.ingress.url }]);
      expect(rest).toEqual(doc);
    }
  });

  it('needs a token like every admin route', async () => {
    const res = await fetch(`${f.admin.url}/openapi.json`);
    expect(res.status).toBe(401);
  });
});
