/**
 * Child-process entry of the gateway bench: the integration platform example (gateway, the
 * `order-intake` flow, the TypeScript workflows, 120 declared services calling
 * PLATFORM_SERVICES_URL) on SQLite. Configured through KEEL_* variables (KEEL_DB,
 * KEEL_DURABILITY, KEEL_GATEWAY_KEYS). Prints `KEEL_BENCH_READY <ingress url> <admin url>`.
 * Over IPC it answers `'stats'` with the store's counters and `'profile-start'` /
 * `{ profileStop: file }` with a CPU profile.
 */
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import { appOptionsFromEnv, startApp } from '../src/app.js';
import { definitions, extensions, serviceList } from '../examples/integration-platform/index.js';

const app = await startApp({
  port: 0,
  adminPort: 0,
  services: definitions,
  integrations: { integrations: serviceList },
  extensions: extensions(),
  // Request lines are formatted as in production, but only errors are printed.
  logger: (level, message) => {
    if (level === 'error') console.error(`keel ${level} ${message}`);
  },
  ...appOptionsFromEnv(),
});
process.stdout.write(`KEEL_BENCH_READY ${app.ingress.url} ${app.admin.url}\n`);

let session: Session | undefined;
process.on('message', (msg: unknown) => {
  if (msg === 'stats') {
    const stats = (app.engine.store as { stats?: Record<string, number> }).stats ?? {};
    process.send?.({ stats: { ...stats } });
  } else if (msg === 'profile-start') {
    void (async () => {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
      process.send?.({ profiling: true });
    })();
  } else if (typeof msg === 'object' && msg !== null && 'profileStop' in msg) {
    void (async () => {
      const { profile } = await session!.post('Profiler.stop');
      fs.writeFileSync(String(msg.profileStop), JSON.stringify(profile));
      session!.disconnect();
      process.send?.({ profiled: msg.profileStop });
    })();
  }
});
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
