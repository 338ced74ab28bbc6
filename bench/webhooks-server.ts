/**
 * Child-process entry of the webhook benchmark: a Keel app with webhooks enabled and one
 * endpoint, created at start, pointing at RECEIVER_URL (the load generator's receiver, which
 * the allow-list admits on 127.0.0.1). `POST /Publisher/burst` with body `n` publishes `n`
 * events, one after the other, from one invocation. Prints
 * `KEEL_BENCH_READY <url> <endpoint secret>` when ready; answers `'stats'` over IPC.
 */
import { appOptionsFromEnv, startApp } from '../src/app.js';
import { service } from '../src/index.js';
import { publish } from '../src/webhooks/index.js';

const receiverUrl = process.env.RECEIVER_URL;
if (!receiverUrl) throw new Error('RECEIVER_URL must name the receiver');
const PAD = 'x'.repeat(200);

const Publisher = service({
  name: 'Publisher',
  handlers: {
    burst: async (ctx, n: number) => {
      for (let i = 0; i < n; i++) await publish(ctx, 'bench.event', { i, pad: PAD });
      return n;
    },
  },
});

const app = await startApp({
  port: 0,
  adminPort: 0,
  services: [Publisher],
  ...appOptionsFromEnv(),
  logger: (level, message) => {
    if (level === 'error' || level === 'warn') console.error(`${level} ${message}`);
  },
  webhooks: { allow: ['127.0.0.1'] },
});
const endpoint = await app.webhooks!.createEndpoint({ url: receiverUrl, events: ['bench.*'] });
process.stdout.write(`KEEL_BENCH_READY ${app.ingress.url} ${endpoint.secret}\n`);

process.on('message', (msg: unknown) => {
  if (msg === 'stats') {
    const stats = (app.engine.store as { stats?: Record<string, number> }).stats ?? {};
    process.send?.({ stats: { ...stats } });
  }
});

app.closeOnSignals();
// The parent going away must not leave a server behind.
process.on('disconnect', () => void app.close().finally(() => process.exit(1)));
