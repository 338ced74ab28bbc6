/**
 * Child-process entry of the benchmark: the Keel app (engine + SQLite store + HTTP ingress)
 * serving the bench handlers. Configured like any Keel app through KEEL_* variables (KEEL_DB,
 * KEEL_DURABILITY, KEEL_PORT; port 0 by default here). Prints `KEEL_BENCH_READY <url>` on
 * stdout when it accepts requests. Over IPC (when spawned with one) it answers `'stats'`
 * with the store's counters, `'memory'` with `process.memoryUsage()` and how many invocations
 * the engine holds in memory (`{ gc: true }`: after a full garbage collection, when started with
 * `--expose-gc`), `'collections'` with the sizes of the engine's Maps and Sets, and to
 * `'profile-start'` / `{ profileStop: file }` with a CPU profile of the
 * window between them. Exits cleanly on SIGTERM.
 *
 *   KEEL_DB=/tmp/b.db node --import tsx bench/server.ts
 */
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import { findSourceMap } from 'node:module';
import { appOptionsFromEnv, startApp } from '../src/app.js';
import { kernelOf } from '../src/engine/kernel.js';
import { benchServices } from './services.js';

const app = await startApp({
  port: 0,
  adminPort: 0,
  services: benchServices,
  ...appOptionsFromEnv(),
});
const url = app.ingress.url;
// The metrics bench rows: Prometheus's scrapes, simulated in process (GET /metrics' work).
const scrapeMs = Number(process.env.KEEL_BENCH_SCRAPE_MS ?? 0);
const metrics = kernelOf(app.engine).metrics;
if (scrapeMs > 0 && metrics) setInterval(() => void metrics.text(), scrapeMs).unref();
process.stdout.write(`KEEL_BENCH_READY ${url}\n`);

process.on('message', (msg: unknown) => {
  if (msg === 'stats') {
    const stats = (app.engine.store as { stats?: Record<string, number> }).stats ?? {};
    process.send?.({ stats: { ...stats } });
  } else if (msg === 'memory' || (typeof msg === 'object' && msg !== null && 'gc' in msg)) {
    const gc = (globalThis as { gc?: () => void }).gc;
    const collected = msg !== 'memory' && gc !== undefined;
    if (collected) gc();
    const inMemory = kernelOf(app.engine).active.size;
    process.send?.({ memory: { ...process.memoryUsage(), inMemory, collected } });
  } else if (msg === 'collections') {
    process.send?.({ collections: collectionSizes(app.engine) });
  } else if (msg === 'profile-start') {
    startProfile().then(
      () => process.send?.({ profiling: true }),
      (err: unknown) => process.send?.({ profileError: String(err) }),
    );
  } else if (typeof msg === 'object' && msg !== null && 'profileStop' in msg) {
    stopProfile(String(msg.profileStop)).then(
      () => process.send?.({ profiled: msg.profileStop }),
      (err: unknown) => process.send?.({ profileError: String(err) }),
    );
  }
});

/**
 * The sizes of the Maps, Sets and arrays the engine holds, and those of its fields' own fields
 * (timers, locks, store, ...), keyed by path: what grows with the number of invocations waiting
 * is what holds memory per invocation. Bench only: reads private fields by reflection.
 */
function collectionSizes(root: object): Record<string, number> {
  const out: Record<string, number> = {};
  const seen = new Set<object>();
  const walk = (obj: object, prefix: string, depth: number): void => {
    if (seen.has(obj)) return;
    seen.add(obj);
    for (const [name, v] of Object.entries(obj)) {
      if (typeof v !== 'object' || v === null) continue;
      const at = prefix ? `${prefix}.${name}` : name;
      if (v instanceof Map || v instanceof Set) out[at] = v.size;
      else if (Array.isArray(v)) out[at] = v.length;
      else if (depth < 2) walk(v as object, at, depth + 1);
    }
  };
  walk(root, '', 0);
  return out;
}

/**
 * CPU profiling of exactly the measured window (not startup or warm-up), in-process through
 * the inspector. Bench only: the session is opened on the first request to profile.
 */
let session: Session | undefined;
async function startProfile(): Promise<void> {
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
}

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

/** Writes the profile with positions mapped back to the TypeScript sources (tsx emits one line per file). */
async function stopProfile(file: string): Promise<void> {
  if (!session) throw new Error('not profiling');
  const { profile } = (await session.post('Profiler.stop')) as {
    profile: { nodes: Array<{ callFrame: CallFrame }> };
  };
  session.disconnect();
  session = undefined;
  for (const { callFrame: cf } of profile.nodes) {
    if (!cf.url.startsWith('file:') || cf.url.includes('/node_modules/')) continue;
    const map = findSourceMap(cf.url);
    const entry = map?.findEntry(cf.lineNumber, cf.columnNumber);
    // findEntry answers {} where there is no mapping.
    if (entry && 'originalSource' in entry) {
      cf.url = entry.originalSource;
      cf.lineNumber = entry.originalLine;
      cf.columnNumber = entry.originalColumn;
    }
  }
  fs.writeFileSync(file, JSON.stringify(profile));
}

app.closeOnSignals();
// The parent going away must not leave a server behind.
process.on('disconnect', () => void app.close().finally(() => process.exit(1)));
