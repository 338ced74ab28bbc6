/**
 * The app the HTTP fuzzer attacks, run as a child process: the fuzz services on the SQLite file
 * KEEL_DB, an ingress with the webhook receivers (the fuzz ones and the examples'), and an admin
 * API behind two tokens (admin, and read-only user) with the examples' integrations mounted. Prints
 * `READY <ingress url> <admin url>` once both serve. Its log goes to stderr, so a crash or an
 * internal error is visible next to the fuzzer's report.
 */
import { startApp } from '../../src/app.js';
import { extensions as eventSourcingExtensions } from '../../examples/event-sourcing/index.js';
import {
  ADMIN_TOKEN,
  exampleReceivers,
  fuzzIntegrations,
  fuzzServices,
  receivers,
  USER_TOKEN,
} from './services.js';
import { fuzzGateway } from './gateway.js';
import { fuzzFlows } from './flows.js';
import { fuzzOAuth, fuzzOAuthIntegration } from './oauth.js';

const app = await startApp({
  services: fuzzServices,
  db: process.env.KEEL_DB,
  port: 0,
  adminPort: 0,
  adminToken: ADMIN_TOKEN,
  userToken: USER_TOKEN,
  integrations: [...fuzzIntegrations, fuzzOAuthIntegration],
  // The OAuth2 connect routes (/oauth/... on both servers), see gen-oauth.ts.
  // The gateway's routes (/gateway/... on the ingress, keys on the admin API), see gen-gateway.ts.
  // The event-sourced aggregate's Store access (examples/event-sourcing).
  // Declarative flows (/flows/... on both servers), see gen-flows.ts.
  extensions: [fuzzOAuth(), fuzzGateway(), ...eventSourcingExtensions(), fuzzFlows()],
  // Waiting invocations leave memory quickly, so the store settles fast between batches.
  // Well inside the settle check's 300 ms window: a resumed invocation that waits again is
  // suspended (a store write) before the store counts as settled.
  suspendAfter: '50ms',
  // `os`: a fuzz run measures the HTTP surfaces, not the disk's fsync rate.
  durability: 'os',
  webhooks: { receivers: { ...receivers, ...exampleReceivers } },
  // Cron schedules (/schedules on the admin API), see gen-schedules.ts: none declared.
  schedules: [],
  logger: (level, message) => {
    if (level === 'error') process.stderr.write(`[app ${level}] ${message}\n`);
  },
});
console.log(`READY ${app.ingress.url} ${app.admin.url}`);
