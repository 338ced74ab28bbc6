/**
 * What the fuzzed app serves, shared by the app (test/fuzz/app.ts, run as a child process) and
 * the generators (which must know the handlers, valid inputs and webhook secrets to send valid
 * requests that reach deep code paths).
 */
import type { Definition } from '../../src/index.js';
import { service, shared, workflow } from '../../src/index.js';
import type { InboundEvent, ReceiverOptions } from '../../src/webhooks/index.js';
import { Counter } from '../../examples/basics/counter.js';
import { Greeter } from '../../examples/basics/greeter.js';
import { OrderWorkflow } from '../../examples/basics/order-workflow.js';
import { orderSaga } from '../../examples/order-saga/index.js';
import {
  aggregatorReceivers,
  definitions as aggregatorDefinitions,
  DEMO_SENDGRID_PRIVATE_KEY,
  DEMO_SHIPPO_SECRET,
  DEMO_SHIPPO_TOKEN,
  DEMO_STRIPE_SECRET,
} from '../../examples/webhook-aggregator/index.js';
import {
  definitions as deploymentDefinitions,
  DEMO_GITHUB_WEBHOOK_SECRET,
  deploymentReceivers,
  integrations as deploymentIntegrations,
} from '../../examples/github-deployment/index.js';
import {
  definitions as fulfillmentDefinitions,
  fulfillmentReceivers,
  integrations as fulfillmentIntegrations,
  webhookSecrets,
} from '../../examples/fulfillment/index.js';
import { definitions as eventSourcingDefinitions } from '../../examples/event-sourcing/index.js';

/** Records webhook events; the receivers route verified events here. */
export const Inbox = service({
  name: 'Inbox',
  handlers: { record: async (_ctx, e: InboundEvent) => ({ id: e.id, type: e.type }) },
});

/**
 * A workflow that waits on an awakeable and a durable promise for an hour, so the fuzzer has
 * live awakeable ids to resolve and reject, and long-waiting invocations to attach to, cancel
 * and kill. `awakeable` (a shared handler) tells the awakeable's id.
 */
export const Waiter = workflow({
  name: 'Waiter',
  run: async (ctx) => {
    const { id, promise } = ctx.awakeable<unknown>();
    ctx.set('awakeable', id);
    const first = await promise.orTimeout('1h');
    const second = await ctx.promise<unknown>('done').get().orTimeout('1h');
    return { first, second };
  },
  handlers: {
    awakeable: shared(async (ctx) => (await ctx.get<string>('awakeable')) ?? null),
    finish: async (ctx, value: unknown) => {
      await ctx.promise('done').resolve(value ?? null);
      return 'ok';
    },
  },
});

/** Everything the fuzzed app serves. */
export const fuzzServices: Definition[] = [
  Greeter,
  Counter,
  OrderWorkflow,
  ...orderSaga,
  Inbox,
  Waiter,
  // The examples' own definitions, so that their receivers' verified events reach real handlers.
  ...aggregatorDefinitions,
  ...deploymentDefinitions,
  ...fulfillmentDefinitions,
  // Seed 004, exercise 2.1: an event-sourced aggregate and its projector (see gen-ingress.ts).
  ...eventSourcingDefinitions,
];

/**
 * The examples' integrations (mock mode: no credentials in the fuzz app's environment), so the
 * admin API serves `/integrations/...`: status, health and circuit resets to fuzz.
 */
export const fuzzIntegrations = [...deploymentIntegrations, ...fulfillmentIntegrations];

/** The names of {@link fuzzIntegrations}, as the admin API's `/integrations/{name}` knows them. */
export const INTEGRATION_NAMES: readonly string[] = fuzzIntegrations.map((i) => i.name);

/**
 * The 5xx codes the served handlers themselves declare on a `TerminalError` (a handler's
 * terminal error keeps its status, README "The HTTP ingress"): the order saga's downstream
 * stand-ins for a failing carrier and mailbox (examples/order-saga/shipping.ts, email.ts).
 */
export const HANDLER_5XX_CODES: readonly string[] = [
  'no_carrier',
  'mailbox_unavailable',
  // Waiter's run does not catch the rejection of its awakeable: the run fails with that
  // terminal error (code `rejected`, the default status 500), which /output and /attach return.
  'rejected',
];

/** The admin token of the fuzzed app: the fuzzer sends it on some requests and not on others. */
export const ADMIN_TOKEN = 'fuzz-admin-token-0123456789abcdef0123456789abcdef';

/**
 * The read-only user token of the fuzzed app (`userToken`): its reads must answer as the admin
 * token's, and every change it asks for must answer 403 `forbidden` and change nothing.
 */
export const USER_TOKEN = 'fuzz-user-token-fedcba9876543210fedcba9876543210';

/** Webhook signing secrets, per receiver. */
export const SECRETS = {
  stripe: 'whsec_fuzz_stripe_secret',
  github: 'fuzz-github-secret',
  slack: 'fuzz-slack-secret',
  twilio: 'fuzz-twilio-auth-token',
  peers: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
} as const;

const toInbox = (): { target: typeof Inbox; handler: string } => ({
  target: Inbox,
  handler: 'record',
});

/** The receivers at `POST /webhooks/{name}`; a GitHub `deployment_status` completes an awakeable. */
export const receivers: Record<string, ReceiverOptions> = {
  stripe: { provider: 'stripe', secret: SECRETS.stripe, route: toInbox },
  github: {
    provider: 'github',
    secret: SECRETS.github,
    route: (e) => {
      const awakeable = (e.data as { awakeable?: unknown } | null)?.awakeable;
      return e.type === 'deployment_status' && typeof awakeable === 'string'
        ? { awakeable, value: e.data }
        : toInbox();
    },
  },
  slack: { provider: 'slack', secret: SECRETS.slack, route: toInbox },
  twilio: { provider: 'twilio', secret: SECRETS.twilio, route: toInbox },
  peers: { provider: 'standard-webhooks', secret: SECRETS.peers, route: toInbox },
};

/**
 * The secrets of the examples' receivers, as the examples' demo defaults (the app builds them
 * from an empty environment, whatever the fuzzer's environment holds).
 */
export const EXAMPLE_SECRETS = {
  stripe: DEMO_STRIPE_SECRET,
  shippoToken: DEMO_SHIPPO_TOKEN,
  shippoHmac: DEMO_SHIPPO_SECRET,
  /** The private half of the demo SendGrid verification key: the fuzzer signs with it. */
  sendgridPrivateKey: DEMO_SENDGRID_PRIVATE_KEY,
  github: DEMO_GITHUB_WEBHOOK_SECRET,
  warehouse: webhookSecrets({}).warehouse,
  carrier: webhookSecrets({}).carrier,
} as const;

const aggregator = aggregatorReceivers({});

/**
 * The examples' own receivers (webhook-aggregator, github-deployment, fulfillment), renamed
 * where a name is taken above: `POST /webhooks/{name}` for each key. `shippo` requires the URL
 * token and an HMAC; `shippo-token` (the same receiver configured without an HMAC secret)
 * requires the token alone.
 */
export const exampleReceivers: Record<string, ReceiverOptions> = {
  'agg-stripe': aggregator.stripe!,
  shippo: aggregator.shippo!,
  'shippo-token': aggregatorReceivers({ SHIPPO_WEBHOOK_SECRET: '' }).shippo!,
  sendgrid: aggregator.sendgrid!,
  'deploy-github': deploymentReceivers({}).github!,
  ...fulfillmentReceivers(webhookSecrets({})),
};
