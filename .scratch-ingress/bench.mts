import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { Engine, service, serve } from '/work/main/src/index.ts';
import { openSqliteStore } from '/work/main/src/store/sqlite/index.ts';
const G = service({ name: 'G', handlers: { g: async (_c, s: string) => s } });
const dir = mkdtempSync(join(tmpdir(), 'k-'));
const engine = new Engine({ services: [G], store: openSqliteStore({ path: join(dir, 'a.db'), durability: (process.env.DUR as any) ?? 'os' }), logger: () => undefined });
await engine.start();
const s = await serve(engine, { port: 0 });
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
async function run(method: string, path: string, body: string | undefined, ms: number) {
  let n = 0; const end = Date.now() + ms; let errs = 0;
  const one = () => new Promise<void>((res) => {
    const req = http.request({ host: '127.0.0.1', port: s.port, method, path, agent, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (r) => { r.resume(); r.on('end', () => { if (r.statusCode! >= 300) errs++; res(); }); });
    req.end(body);
  });
  await Promise.all(Array.from({ length: 64 }, async () => { while (Date.now() < end) { await one(); n++; } }));
  console.log(method, path, Math.round(n / (ms / 1000)), 'req/s', 'errors', errs);
}
await run('GET', '/health', undefined, 3000);
await run('POST', '/G/g', '"hi"', 3000);
await s.close(); await engine.stop();
