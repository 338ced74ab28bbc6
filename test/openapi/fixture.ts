import { join } from 'node:path';
import { z } from 'zod';
import { serveAdmin, type AdminServer } from '../../src/admin/index.js';
import {
  Engine,
  handler,
  object,
  serve,
  service,
  shared,
  TerminalError,
  workflow,
  type IngressServer,
} from '../../src/index.js';
import type { EngineExtension } from '../../src/engine/extension.js';
import { describeMount } from '../../src/http/mount-doc.js';
import { sendJson } from '../../src/http/respond.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { tempDir } from '../helpers.js';

/**
 * An app with zod-schema'd services, objects and workflows, a handler without a schema, one
 * whose schema has no JSON Schema (a transform), an internal service and two extensions on the
 * ingress (one describing its routes, one not). Real SQLite, real sockets.
 */
export const Order = z.object({
  sku: z.string().min(1),
  quantity: z.number().int().positive(),
  note: z.string().optional(),
});
export const Receipt = z.object({ id: z.string(), total: z.number() });
/** Recursive: its JSON Schema refers to itself, which must survive the move into components. */
export interface Category {
  name: string;
  children: Category[];
}
export const CategorySchema: z.ZodType<Category> = z.object({
  name: z.string(),
  get children() {
    return z.array(CategorySchema);
  },
});

export const Shop = service({
  name: 'Shop',
  handlers: {
    place: handler({ input: Order, output: Receipt }, async (_ctx, o) => ({
      id: `r-${o.sku}`,
      total: o.quantity * 10,
    })),
    ping: async () => 'pong',
    refuse: async (): Promise<never> => {
      throw new TerminalError('out of stock', { code: 'out_of_stock', status: 409 });
    },
    // Neither has a JSON Schema: a custom check, and a transform's output.
    odd: handler(
      { input: z.custom<string>((v) => typeof v === 'string' && v.length % 2 === 1) },
      async (_ctx, s) => s,
    ),
    shout: handler(
      { input: z.string(), output: z.string().transform((s) => s.toUpperCase()) },
      async (_ctx, s) => s,
    ),
    tree: handler({ input: CategorySchema }, async (_ctx, c) => c.children.length),
    maybe: handler({ input: z.string().optional() }, async (_ctx, s) => s ?? 'none'),
  },
});

export const Cart = object({
  name: 'Cart',
  handlers: {
    add: handler({ input: z.object({ sku: z.string() }) }, async (ctx, item) => {
      const items = [...((await ctx.get<string[]>('items')) ?? []), item.sku];
      ctx.set('items', items);
      return items;
    }),
    items: shared(async (ctx) => (await ctx.get<string[]>('items')) ?? [], {
      output: z.array(z.string()),
    }),
  },
});

export const Signup = workflow({
  name: 'Signup',
  run: handler({ input: z.object({ email: z.string().email() }) }, async (ctx, u) => {
    ctx.set('stage', 'done');
    return `welcome ${u.email}`;
  }),
  handlers: { stage: async (ctx) => (await ctx.get<string>('stage')) ?? 'none' },
});

export const Hidden = service({
  name: 'keel.hidden',
  internal: true,
  handlers: { secret: async () => 'hidden' },
});

export const Machinery = service({
  name: 'Machinery',
  internal: true,
  handlers: { crank: async () => 'cranked' },
});

/** An extension whose ingress routes are described, and one whose are not. */
const described: EngineExtension = {
  name: 'hooks',
  install() {},
  mounts: {
    ingress: describeMount(
      async (r) => sendJson(r.res, 200, { got: r.segments }),
      [{ method: 'POST', path: '/{provider}', summary: 'Receives a webhook' }],
    ),
  },
};
const opaque: EngineExtension = {
  name: 'opaque',
  install() {},
  mounts: { ingress: async (r) => sendJson(r.res, 200, { got: r.segments }) },
};

export const ADMIN_TOKEN = 'admin-token-0123456789abcdef0123456789';
export const VIEWER_TOKEN = 'viewer-token-0123456789abcdef0123456789';

export interface Fixture {
  engine: Engine;
  ingress: IngressServer;
  admin: AdminServer;
  close(): Promise<void>;
}

export async function startFixture(): Promise<Fixture> {
  const { dir, cleanup } = tempDir('keel-openapi-');
  const engine = new Engine({
    services: [Shop, Cart, Signup, Hidden, Machinery],
    extensions: [described, opaque],
    store: openSqliteStore({ path: join(dir, 'keel.db'), durability: 'os' }),
    logger: () => undefined,
  });
  await engine.start();
  const ingress = await serve(engine, { port: 0 });
  const admin = await serveAdmin(engine, {
    port: 0,
    token: ADMIN_TOKEN,
    viewerToken: VIEWER_TOKEN,
  });
  return {
    engine,
    ingress,
    admin,
    async close() {
      await Promise.all([ingress.close(), admin.close()]);
      await engine.stop();
      cleanup();
    },
  };
}

/** The JSON Schema zod gives for a schema's input (or output), as the document must hold it. */
export function zodJsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'input'): unknown {
  const s = schema['~standard'].jsonSchema[io]({ target: 'draft-2020-12' });
  const { $schema: _dialect, ...rest } = s;
  return rest;
}
