/**
 * NATS JetStream through the `nats` client: it reconnects on its own (forever, buffering
 * publishes meanwhile) and its `consume()` iterators survive reconnects; this module only
 * creates streams and durable consumers when missing, restarts a consume loop that ended, and
 * tracks health from the client's status events.
 *
 * Messages without a `Nats-Msg-Id` are identified by `{stream}:{stream sequence}`, which a
 * redelivery keeps.
 */
import {
  AckPolicy,
  Events,
  connect,
  DeliverPolicy,
  headers as natsHeaders,
  nanos,
  type JsMsg,
  type NatsConnection,
} from 'nats';
import {
  backoff,
  Health,
  redact,
  sleep,
  type BusConnection,
  type DeliveryHandler,
} from './health.js';
import { parseDuration } from '../core/duration.js';
import type { NatsSubscription, Subscription } from './types.js';

export class NatsBus implements BusConnection {
  readonly kind = 'nats' as const;
  private readonly health: Health;
  private nc: NatsConnection | undefined;
  private closed = false;
  private subs: NatsSubscription[] = [];
  private deliver: DeliveryHandler | undefined;
  private loops: Promise<void>[] = [];
  private stops: Array<() => void> = [];

  constructor(
    private readonly url: string,
    private readonly delays: (attempt: number) => number = backoff(100, 5000),
  ) {
    this.health = new Health('nats', redact(url), () => this.subs.map((s) => s.name));
  }

  start(subs: readonly Subscription[], deliver: DeliveryHandler): void {
    this.subs = subs.filter((s): s is NatsSubscription => s.bus === 'nats');
    this.deliver = deliver;
    if (this.loops.length === 0) this.loops.push(this.run());
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.closed && !this.nc) {
      try {
        const u = new URL(this.url);
        this.nc = await connect({
          servers: `${u.hostname}:${u.port || '4222'}`,
          ...(u.username ? { user: decodeURIComponent(u.username) } : {}),
          ...(u.password ? { pass: decodeURIComponent(u.password) } : {}),
          name: 'keel',
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          ignoreClusterUpdates: true,
        });
      } catch (err) {
        this.health.set('connecting', err);
        await sleep(this.delays(failures++));
      }
    }
    const nc = this.nc;
    if (!nc) return;
    if (this.closed) {
      await nc.close();
      return;
    }
    this.health.set('up');
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Disconnect)
          this.health.set('down', `disconnected from ${JSON.stringify(s.data)}`);
        else if (s.type === Events.Reconnect) this.health.set('up');
        else if (s.type === Events.Error) this.health.lastError = JSON.stringify(s.data);
      }
    })();
    void nc.closed().then(() => this.health.set('closed'));
    for (const s of this.subs) this.loops.push(this.consumeLoop(nc, s));
  }

  /** Ensures the stream and durable consumer, consumes; starts again if the iterator ends. */
  private async consumeLoop(nc: NatsConnection, sub: NatsSubscription): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      try {
        const jsm = await nc.jetstreamManager();
        await jsm.streams.info(sub.stream).catch(async () => {
          const subjects = [sub.subject];
          if (sub.deadLetter) subjects.push(sub.deadLetter.subject);
          await jsm.streams.add({ name: sub.stream, subjects });
        });
        await jsm.consumers.info(sub.stream, sub.durable).catch(() =>
          jsm.consumers.add(sub.stream, {
            durable_name: sub.durable,
            ack_policy: AckPolicy.Explicit,
            deliver_policy: DeliverPolicy.All,
            filter_subject: sub.subject,
            ack_wait: nanos(parseDuration(sub.ackWait ?? '30s')),
          }),
        );
        const consumer = await nc.jetstream().consumers.get(sub.stream, sub.durable);
        // Short pulls: a pull request lost with a dropped connection is renewed within seconds.
        const messages = await consumer.consume({
          max_messages: sub.prefetch ?? 32,
          expires: 5000,
        });
        this.stops.push(() => void messages.close());
        failures = 0;
        for await (const m of messages) {
          if (this.closed) break;
          this.onDelivery(sub, m);
        }
      } catch (err) {
        this.health.lastError = err instanceof Error ? err.message : String(err);
      }
      if (!this.closed) await sleep(this.delays(failures++));
    }
  }

  private onDelivery(sub: NatsSubscription, m: JsMsg): void {
    const headers: Record<string, string> = {};
    if (m.headers) for (const [k, v] of m.headers) if (v[0] !== undefined) headers[k] = v[0];
    const id = headers['Nats-Msg-Id'] ?? `${sub.stream}:${m.seq}`;
    void this.deliver!(sub, { id, subject: m.subject, headers, body: Buffer.from(m.data) }).then(
      (d) => (d === 'ack' ? m.ack() : d === 'reject' ? m.term() : m.nak(1000)),
      () => m.nak(1000),
    );
  }

  async publish(
    destination: string,
    _routingKey: string,
    body: Buffer,
    messageId: string,
    headers: Record<string, string>,
  ): Promise<void> {
    await this.health.whenUp(10_000);
    const nc = this.nc;
    if (!nc) throw new Error('nats: not connected');
    const h = natsHeaders();
    for (const [k, v] of Object.entries(headers)) h.set(k, v);
    // The stream drops a second message with the same id within its duplicate window (2 min by
    // default), so a publish repeated after a crash is stored once.
    await nc.jetstream().publish(destination, body, { msgID: messageId, headers: h });
  }

  status() {
    return this.health.snapshot();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.stops) s();
    await this.nc?.close().catch(() => undefined);
    await Promise.allSettled(this.loops);
    this.health.set('closed');
  }

  /** @internal The client, for tests. */
  connection(): NatsConnection | undefined {
    return this.nc;
  }
}
