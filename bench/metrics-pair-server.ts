/**
 * Child-process entry of `npm run bench -- --only=metrics-cost` (bench/metrics-cost.ts): TWO
 * Keel apps in one process, each on its own SQLite file (durability `fsync`), serving the
 * bench handlers. App "on" has metrics on and is scraped in process (`metrics.text()`, what
 * `GET /metrics` does) every 5 s of the time it is being measured; app "off" has
 * `metrics: false`. Prints `METRICS_PAIR_READY <urlOn> <urlOff>` on stdout. With
 * `KEEL_BENCH_CONTROL=1` both have metrics off (a control run: the method's own error).
 *
 * The parent measures the process's CPU time around each phase over IPC: `{ begin: mode }`
 * and `'end'` both answer `{ cpu: µs }` (`process.cpuUsage()`, user + system, every thread).
 * IPC rather than /proc/<pid>/stat: /proc counts in 10 ms ticks, a few percent of a phase's
 * CPU time, while `cpuUsage()` (getrusage) is exact to the microsecond; two small messages per
 * phase cost the same in both modes. `'scrape-cost'` answers `{ scrape: µs }`: the CPU time of
 * one scrape of app "on" (store counts read anew), the median of 21.
 *
 *   KEEL_BENCH_DIR=/tmp/x node --import tsx bench/metrics-pair-server.ts
 */
import path from 'node:path';
import { startApp } from '../src/app.js';
import { kernelOf } from '../src/engine/kernel.js';
import { benchServices } from './services.js';

const SCRAPE_MS = 5_000;
const dir = process.env.KEEL_BENCH_DIR ?? '.';
const common = {
  port: 0,
  adminPort: 0,
  host: '127.0.0.1',
  durability: 'fsync' as const,
  logLevel: 'warn' as const,
  services: benchServices,
};
// The control run (KEEL_BENCH_CONTROL=1): metrics off in both apps, no scrape; its "cost"
// shows what the method reads when there is none to find.
const control = process.env.KEEL_BENCH_CONTROL === '1';
const on = await startApp({ ...common, db: path.join(dir, 'metrics-on.db'), metrics: !control });
const off = await startApp({ ...common, db: path.join(dir, 'metrics-off.db'), metrics: false });
const metrics = kernelOf(on.engine).metrics;
if (!metrics && !control) throw new Error('metrics are off in the app that should have them');
if (kernelOf(off.engine).metrics) throw new Error('metrics are on in the app that should not');

/**
 * Prometheus scrapes app "on" every 5 s; here, every 5 s of the time its phases last (the
 * time left is carried from one phase to the next), so its scrapes fall in its own phases and
 * at the rate they would have if it ran alone.
 */
let scrapeTimer: NodeJS.Timeout | undefined;
let untilScrape = SCRAPE_MS;
let phaseStart = 0;
const scrapeLater = (ms: number): void => {
  untilScrape = ms;
  phaseStart = performance.now();
  if (!metrics) return;
  scrapeTimer = setTimeout(() => {
    void metrics.text();
    scrapeLater(SCRAPE_MS);
  }, ms);
};

const cpuNow = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

process.on('message', (msg: unknown) => {
  if (typeof msg === 'object' && msg !== null && 'begin' in msg) {
    if (msg.begin === 'on') scrapeLater(untilScrape);
    process.send?.({ cpu: cpuNow() });
  } else if (msg === 'end') {
    const cpu = cpuNow();
    if (scrapeTimer !== undefined) {
      clearTimeout(scrapeTimer);
      scrapeTimer = undefined;
      untilScrape = Math.max(0, untilScrape - (performance.now() - phaseStart));
    }
    process.send?.({ cpu });
  } else if (msg === 'scrape-cost') {
    void scrapeCost().then((scrape) => process.send?.({ scrape }));
  }
});

/**
 * CPU µs of one scrape, the median of 21 back to back. Each reads the store's counts again, as
 * a scrape every 5 s does (they are cached for 5 s): bench only, the cache is dropped by
 * reflection.
 */
async function scrapeCost(): Promise<number> {
  if (!metrics) return 0;
  const runs: number[] = [];
  for (let i = 0; i < 21; i++) {
    (metrics as unknown as { counts: unknown }).counts = undefined;
    const t = cpuNow();
    await metrics.text();
    runs.push(cpuNow() - t);
  }
  return runs.sort((a, b) => a - b)[10]!;
}

process.stdout.write(`METRICS_PAIR_READY ${on.ingress.url} ${off.ingress.url}\n`);

const closeBoth = (): Promise<unknown> => Promise.all([on.close(), off.close()]);
for (const sig of ['SIGTERM', 'SIGINT'] as const)
  process.once(sig, () => void closeBoth().finally(() => process.exit(0)));
// The parent going away must not leave a server behind.
process.on('disconnect', () => void closeBoth().finally(() => process.exit(1)));
