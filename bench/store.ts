/**
 * Store micro-benchmark: `concurrency` simulated invocations at a time, each doing the five
 * sequential, awaited writes of a 3-step workflow (insert, three journal entries, completion).
 *
 *   npx tsx bench/store.ts [invocations=5000] [concurrency=32] [durability=fsync|os]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { invocationWrites, newId } from './store-workload.js';

const total = Number(process.argv[2] ?? 5000);
const concurrency = Number(process.argv[3] ?? 32);
const durability = (process.argv[4] ?? 'fsync') as 'fsync' | 'os';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bench-'));
const store = openSqliteStore({ path: path.join(dir, 'bench.db'), durability });

let next = 0;
async function worker(): Promise<void> {
  while (next < total) {
    next++;
    const id = newId();
    for (const ops of invocationWrites(id, Date.now())) await store.write(ops);
  }
}

const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const start = process.hrtime.bigint();
let seconds: number;
try {
  await Promise.all(Array.from({ length: concurrency }, worker));
  seconds = Number(process.hrtime.bigint() - start) / 1e9;
} finally {
  delay.disable();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
const s = store.stats;

console.table({
  [`${durability}, ${concurrency} concurrent`]: {
    'invocations/s': Math.round(total / seconds),
    'writes/s': Math.round(s.writes / seconds),
    'ops/s': Math.round(s.ops / seconds),
    'ops/txn': +(s.ops / s.transactions).toFixed(1),
    'writes/fsync': s.syncs ? +(s.writes / s.syncs).toFixed(1) : '-',
    checkpoints: s.checkpoints,
    'commit µs/txn': Math.round(s.commitNs / 1e3 / s.transactions),
    'fsync µs': s.syncs ? Math.round(s.syncNs / 1e3 / s.syncs) : '-',
    'ckpt pause ms': s.checkpoints ? +(s.pauseNs / 1e6 / s.checkpoints).toFixed(1) : '-',
    'busy %': Math.round(((s.commitNs + s.checkpointNs) / 1e9 / seconds) * 100),
    'max loop delay ms': +(delay.max / 1e6).toFixed(1),
  },
});
