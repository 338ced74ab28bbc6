/**
 * The example app `npm start` runs: every example system in one engine, on embedded SQLite,
 * with the ingress on 127.0.0.1:9080 and the admin API on 127.0.0.1:9070, integrations in mock
 * mode until their keys are set, and webhooks in and out. KEEL_PORT, KEEL_HOST, KEEL_DB,
 * KEEL_DURABILITY, KEEL_ADMIN_TOKEN, KEEL_USER_TOKEN, KEEL_INTEGRATIONS_FILE and KEEL_MOCK
 * override the defaults.
 */
import { appOptionsFromEnv, startApp } from '../src/app.js';
import { integrationOptions } from './integrations.js';
import { extensions, schedules, services } from './services.js';

const app = await startApp({
  services,
  extensions,
  schedules,
  ...integrationOptions,
  ...appOptionsFromEnv(),
});
console.log(
  `keel: ingress listening on ${app.ingress.url} (database ${process.env.KEEL_DB ?? './.keel/keel.db'})`,
);
console.log(`keel: admin API on ${app.admin.url}`);
console.log(`keel: serving ${services.map((s) => s.name).join(', ')}`);

// Ctrl-C or `kill <pid>`: requests in flight finish, then the process exits; twice: at once.
app.closeOnSignals();
