/**
 * Child-process entry of the benchmark: the Keel app (engine + SQLite store + HTTP ingress)
 * serving the bench handlers. Configured like any Keel app through KEEL_* variables (KEEL_DB,
 * KEEL_DURABILITY, KEEL_PORT; port 0 by default here). Prints `KEEL_BENCH_READY <url>` on
 * stdout when it accepts requests. Over IPC (when spawned with one) it answers `'stats'`
 * with the store's counters, and exits cleanly on SIGTERM so `--cpu-prof` can write its file.
 *
 *   KEEL_DB=/tmp/b.db node --import tsx bench/server.ts
 */
import { appOptionsFromEnv, startApp } from '../src/app.js';
import { benchServices } from './services.js';

const app = await startApp({ port: 0, services: benchServices, ...appOptionsFromEnv() });
const url = app.ingress.url;
process.stdout.write(`KEEL_BENCH_READY ${url}\n`);

process.on('message', (msg: unknown) => {
  if (msg === 'stats') {
    const stats = (app.engine.store as { stats?: Record<string, number> }).stats ?? {};
    process.send?.({ stats: { ...stats } });
  }
});
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
