/**
 * The buses' runtime for one engine: its broker connections and what happens per delivery.
 *
 * Per message: decode it, derive its dedupe id and key, then `host.send` a delivery invocation
 * (the internal `keel.buses` service, or the `keel.buses.ordered` object keyed by subscription
 * and key when the subscription orders by key) with the idempotency key
 * `{subscription}:{dedupe id}`. The broker gets its ack only once that send resolved, i.e. the
 * invocation is durable: a crash before the ack redelivers the message, and the same
 * idempotency key answers the invocation that already exists, so a message starts one.
 */
import { registerBusMetrics } from './metrics.js';
import { hostname } from 'node:os';
import { KeelError } from '../core/errors.js';
import { contextKey, type ExtensionHost } from '../engine/extension.js';
import type { SendResult } from '../engine/info.js';
import { backoff, sleep, type BusConnection } from './health.js';
import { MqttBus } from './mqtt.js';
import { NatsBus } from './nats.js';
import { RabbitConnection } from './rabbitmq.js';
import { traceHeadersOf } from '../observability/tracing/ingress.js';
import type {
  BusesOptions,
  BusKind,
  BusMessage,
  ConnectionStatus,
  Disposition,
  IncomingMessage,
  Subscription,
  SubscriptionCounters,
} from './types.js';

/** Where handlers' contexts find the runtime. */
export const BUSES_RUNTIME = contextKey<BusesRuntime>('keel.buses');

/** The internal service delivering unordered messages, and the object delivering ordered ones. */
export const DELIVER_SERVICE = 'keel.buses';
export const ORDERED_OBJECT = 'keel.buses.ordered';

/** The input of a delivery invocation. */
export interface DeliveryInput {
  subscription: string;
  key?: string;
  message: BusMessage;
}

export class BusesRuntime {
  private readonly connections = new Map<BusKind, BusConnection>();
  private readonly subs = new Map<string, Subscription>();
  /** What each subscription did in this process since it started (the admin API shows them). */
  private readonly counts = new Map<string, SubscriptionCounters>();
  /** Messages handlers of this process published, by bus (`GET /metrics`). */
  readonly published = new Map<BusKind, number>();
  /** The tail of each key's sends, so a key's messages are sent in arrival order. */
  private readonly chains = new Map<string, Promise<unknown>>();
  private closed = false;
  private readonly ready: Promise<void>;
  /** Lets deliveries go: the engine has started (see `EngineExtension.started`). */
  readonly markStarted: () => void;

  constructor(
    readonly host: ExtensionHost,
    private readonly options: BusesOptions,
  ) {
    for (const s of options.subscriptions ?? []) {
      this.subs.set(s.name, s);
      this.counts.set(s.name, newCounters());
    }
    // `install` runs before the engine started (before recovery): deliveries wait for it.
    let go!: () => void;
    this.ready = new Promise((r) => (go = r));
    this.markStarted = go;
    if (host.metrics) registerBusMetrics(host.metrics, this);
    for (const kind of new Set([...this.subs.values()].map((s) => s.bus))) {
      this.connection(kind).start([...this.subs.values()], (s, m) => this.onMessage(s, m));
    }
  }

  subscription(name: string): Subscription | undefined {
    return this.subs.get(name);
  }

  /** The subscriptions, in declaration order. */
  subscriptions(): Subscription[] {
    return [...this.subs.values()];
  }

  /** A subscription's counters (zeros for an unknown name). */
  counters(name: string): SubscriptionCounters {
    return { ...(this.counts.get(name) ?? newCounters()) };
  }

  /** The status of the connection a subscription consumes on, if it was opened. */
  connectionStatus(kind: BusKind): ConnectionStatus | undefined {
    return this.connections.get(kind)?.status();
  }

  /** @internal Counts a message a handler published. */
  countPublished(bus: BusKind): void {
    this.published.set(bus, (this.published.get(bus) ?? 0) + 1);
  }

  /** @internal Counts a dead letter published by a delivery invocation of this process. */
  countDeadLetter(subscription: string): void {
    const c = this.counts.get(subscription);
    if (c) c.deadLettered++;
  }

  /** The connection to `kind`, connecting it on first use (a publish on a bus nothing consumes). */
  connection(kind: BusKind): BusConnection {
    let c = this.connections.get(kind);
    if (!c) {
      if (this.closed)
        throw new KeelError(`buses: closed`, { code: 'engine_stopped', status: 503 });
      const delays = backoff(
        this.options.reconnectInitialMs ?? 100,
        this.options.reconnectMaxMs ?? 5000,
      );
      c =
        kind === 'rabbitmq'
          ? new RabbitConnection(
              this.options.rabbitmq?.url ??
                process.env.KEEL_AMQP_URL ??
                'amqp://guest:guest@127.0.0.1:5672',
              delays,
            )
          : kind === 'nats'
            ? new NatsBus(
                this.options.nats?.url ?? process.env.KEEL_NATS_URL ?? 'nats://127.0.0.1:4222',
                delays,
              )
            : new MqttBus(
                this.options.mqtt?.url ?? process.env.KEEL_MQTT_URL ?? 'mqtt://127.0.0.1:1883',
                this.options.mqtt?.clientId ??
                  process.env.KEEL_MQTT_CLIENT_ID ??
                  `keel-${hostname()}`,
                Math.min(this.options.reconnectMaxMs ?? 5000, 1000),
              );
      this.connections.set(kind, c);
      c.start([], () => Promise.resolve('requeue'));
    }
    return c;
  }

  status(): ConnectionStatus[] {
    return [...this.connections.values()].map((c) => c.status());
  }

  /** Counts a delivery and its settlement around {@link handle}. */
  private async onMessage(sub: Subscription, inc: IncomingMessage): Promise<Disposition> {
    const c = this.counts.get(sub.name) ?? newCounters();
    c.received++;
    c.inFlight++;
    try {
      const d = await this.handle(sub, inc, c);
      if (d === 'ack') c.acked++;
      else if (d === 'requeue') c.requeued++;
      else c.rejected++;
      return d;
    } finally {
      c.inFlight--;
    }
  }

  private async handle(
    sub: Subscription,
    inc: IncomingMessage,
    c: SubscriptionCounters,
  ): Promise<Disposition> {
    await this.ready;
    let msg: BusMessage;
    let key: string | undefined;
    let dedupe: string;
    try {
      const payload: unknown = (sub.decode ?? decodeJson)(inc.body);
      msg = {
        id: inc.id,
        bus: sub.bus,
        subscription: sub.name,
        subject: inc.subject,
        headers: inc.headers,
        payload,
      };
      key = sub.key?.(msg);
      dedupe = sub.dedupeBy?.(msg) ?? msg.id;
    } catch (err) {
      const d = await this.deadLetterUndecodable(sub, inc, err);
      if (d === 'ack') c.deadLettered++;
      return d;
    }
    const idempotencyKey = `${sub.name}:${dedupe}`;
    // The publisher's trace context: the delivery invocation's spans continue it.
    const trace = traceHeadersOf(inc.headers);
    const send = async (): Promise<Disposition> => {
      try {
        let sent: SendResult;
        if (key === undefined) {
          const input: DeliveryInput = { subscription: sub.name, message: msg };
          sent = await this.host.send({
            service: DELIVER_SERVICE,
            handler: 'deliver',
            input,
            idempotencyKey,
            ...trace,
          });
        } else {
          const input: DeliveryInput = { subscription: sub.name, key, message: msg };
          sent = await this.host.send({
            service: ORDERED_OBJECT,
            handler: 'deliver',
            key: `${sub.name}/${key}`,
            input,
            idempotencyKey,
            ...trace,
          });
        }
        if (sent.existing) c.deduplicated++;
        else c.started++;
        return 'ack';
      } catch (err) {
        // Not accepted (the engine stopping, the store unreachable): the broker keeps it.
        this.host.log('warn', `buses: ${sub.name}: message ${msg.id} not accepted, requeued`, {
          error: err instanceof Error ? err.message : String(err),
        });
        if (!this.closed) await sleep(1000);
        return 'requeue';
      }
    };
    if (key === undefined) return send();
    const chainKey = `${sub.name}\0${key}`;
    const next = (this.chains.get(chainKey) ?? Promise.resolve()).then(send);
    this.chains.set(chainKey, next);
    void next.finally(() => {
      if (this.chains.get(chainKey) === next) this.chains.delete(chainKey);
    });
    return next;
  }

  /**
   * A body that cannot be decoded never will be: it goes to the dead-letter destination at
   * once (with its raw bytes and the error in `x-keel-error`), or is rejected if there is none.
   */
  private async deadLetterUndecodable(
    sub: Subscription,
    inc: IncomingMessage,
    err: unknown,
  ): Promise<Disposition> {
    const error = err instanceof Error ? err.message : String(err);
    const dest = deadLetterOf(sub);
    if (!dest) {
      this.host.log('error', `buses: ${sub.name}: dropped undecodable message ${inc.id}`, {
        error,
      });
      return 'reject';
    }
    try {
      await this.connection(sub.bus).publish(
        dest.destination,
        dest.routingKey,
        inc.body,
        `${sub.name}:${inc.id}:undecodable`,
        { ...inc.headers, 'x-keel-error': error, 'x-keel-subscription': sub.name },
      );
      return 'ack';
    } catch {
      if (!this.closed) await sleep(1000);
      return 'requeue';
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.connections.values()].map((c) => c.close()));
  }
}

/** Where a subscription's dead letters are published: exchange (or subject) and routing key. */
export function deadLetterOf(
  sub: Subscription,
): { destination: string; routingKey: string } | undefined {
  if (sub.bus === 'rabbitmq')
    return sub.deadLetter ? { destination: '', routingKey: sub.deadLetter.queue } : undefined;
  if (sub.bus === 'mqtt')
    return sub.deadLetter ? { destination: sub.deadLetter.topic, routingKey: '' } : undefined;
  return sub.deadLetter ? { destination: sub.deadLetter.subject, routingKey: '' } : undefined;
}

function newCounters(): SubscriptionCounters {
  return {
    received: 0,
    started: 0,
    deduplicated: 0,
    deadLettered: 0,
    acked: 0,
    requeued: 0,
    rejected: 0,
    inFlight: 0,
  };
}

function decodeJson(body: Buffer): unknown {
  return JSON.parse(body.toString('utf8')) as unknown;
}
