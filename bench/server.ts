/**
 * Child-process entry of the benchmark: the Keel app (engine + SQLite store + HTTP ingress)
 * serving the bench handlers. Configured like any Keel app through KEEL_* variables (KEEL_DB,
 * KEEL_DURABILITY, KEEL_PORT; port 0 by default here). Prints `KEEL_BENCH_READY <url>` on
 * stdout when it accepts requests. Over IPC (when spawned with one) it answers `'stats'`
 * with the store's counters, and to `'profile-start'` / `{ profileStop: file }` with a CPU
 * profile of the window between them. Exits cleanly on SIGTERM.
 *
 *   KEEL_DB=/tmp/b.db node --import tsx bench/server.ts
 */
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import { findSourceMap } from 'node:module';
import { appOptionsFromEnv, startApp } from '../src/app.js';
import { benchServices } from './services.js';

const app = await startApp({
  port: 0,
  adminPort: 0,
  services: benchServices,
  ...appOptionsFromEnv(),
});
const url = app.ingress.url;
process.stdout.write(`KEEL_BENCH_READY ${url}\n`);

process.on('message', (msg: unknown) => {
  if (msg === 'stats') {
    const stats = (app.engine.store as { stats?: Record<string, number> }).stats ?? {};
    process.send?.({ stats: { ...stats } });
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
// The parent going away must not leave a server behind.
process.on('disconnect', () => shutdown(1));

let closing = false;
function shutdown(code: number): void {
  if (closing) return;
  closing = true;
  app.close().then(
    () => process.exit(code),
    (err: unknown) => {
      console.error('bench server: error while closing', err);
      process.exit(1);
    },
  );
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
