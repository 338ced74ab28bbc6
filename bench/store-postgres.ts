/**
 * PostgreSQL store micro-benchmark: `concurrency` simulated invocations at a time, each doing
 * the five sequential, awaited writes of a 3-step workflow (insert, three journal entries,
 * completion), as bench/store.ts does for SQLite. Runs in a fresh schema, dropped afterwards.
 *
 *   KEEL_BENCH_DATABASE_URL=postgres://... npx tsx bench/store-postgres.ts [invocations=10000] [concurrency=32]
 *
 * Default URL: postgres://postgres@127.0.0.1:5432/test.
 */
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { invocationWrites, newId } from './store-workload.js';

const total = Number(process.argv[2] ?? 10_000);
const concurrency = Number(process.argv[3] ?? 32);
const url = process.env.KEEL_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `keel_bench_${randomBytes(4).toString('hex')}`;

const store = await openPostgresStore({ url, schema });
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const settings = await admin.query<{ name: string; setting: string }>(
  "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'server_version')",
);

let next = 0;
let end = 0;
async function worker(): Promise<void> {
  while (next < end) {
    next++;
    const id = newId();
    for (const ops of invocationWrites(id, Date.now())) await store.write(ops);
  }
}

// Warm-up (plans, connections, caches), then the measured run.
end = Math.min(1000, total);
await Promise.all(Array.from({ length: concurrency }, worker));
next = 0;
end = total;
const before = { ...store.stats };
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const cpu0 = process.cpuUsage();
const start = process.hrtime.bigint();
let seconds: number;
try {
  await Promise.all(Array.from({ length: concurrency }, worker));
  seconds = Number(process.hrtime.bigint() - start) / 1e9;
} finally {
  delay.disable();
  await store.close();
  await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
  await admin.end();
}
const cpu = process.cpuUsage(cpu0);
const s = store.stats;
const batches = s.batches - before.batches;
const writes = s.writes - before.writes;
const ops = s.ops - before.ops;

console.log(settings.rows.map((r) => `${r.name}=${r.setting}`).join(', '));
console.table({
  [`postgres, ${concurrency} concurrent`]: {
    'invocations/s': Math.round(total / seconds),
    'writes/s': Math.round(writes / seconds),
    'ops/s': Math.round(ops / seconds),
    'writes/batch': +(writes / batches).toFixed(1),
    'ops/batch': +(ops / batches).toFixed(1),
    'batch round trip µs': Math.round((s.roundTripNs - before.roundTripNs) / 1e3 / batches),
    'node CPU %': Math.round(((cpu.user + cpu.system) / 1e6 / seconds) * 100),
    'max loop delay ms': +(delay.max / 1e6).toFixed(1),
  },
});
