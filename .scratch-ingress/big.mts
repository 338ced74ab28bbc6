import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Engine, service, serve } from '/work/main/src/index.ts';
import { openSqliteStore } from '/work/main/src/store/sqlite/index.ts';
const G = service({ name: 'G', handlers: { g: async (_c, s: string) => s.length } });
const dir = mkdtempSync(join(tmpdir(), 'k-'));
const engine = new Engine({ services: [G], store: openSqliteStore({ path: join(dir, 'a.db'), durability: 'os' }), logger: () => undefined });
await engine.start();
const s = await serve(engine, { port: 0, bodyLimit: 1024 });
let ok = 0, bad: string[] = [];
for (let i = 0; i < 30; i++) {
  for (const mode of ['declared', 'chunked']) {
    try {
      const big = Buffer.alloc(8 * 1024 * 1024, 'a');
      const body = mode === 'declared' ? big : (Readable.toWeb(Readable.from((function* () { for (let j = 0; j < 128; j++) yield big.subarray(j * 65536, (j + 1) * 65536); })())) as any);
      const r = await fetch(s.url + '/G/g', { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as any);
      if (r.status === 413) ok++; else bad.push(String(r.status));
      await r.text();
    } catch (e: any) { bad.push(mode + ':' + (e.cause?.code ?? e.message)); }
  }
}
console.log({ ok, bad });
await s.close(); await engine.stop();
