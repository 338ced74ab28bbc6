import type { Duration } from '../core/duration.js';
import type { Definition } from '../core/definitions.js';

/** The brokers Keel connects to. */
export type BusKind = 'rabbitmq' | 'nats' | 'mqtt';

/**
 * A message as a subscription's target handler receives it (its input): the decoded payload,
 * the id it is deduplicated by, and where it came from.
 */
export interface BusMessage<T = unknown> {
  /** The broker's message id (RabbitMQ `messageId`, NATS `Nats-Msg-Id`, MQTT user property `message-id`), or a fallback (see docs/buses.md). */
  id: string;
  /** The bus it arrived on. */
  bus: BusKind;
  /** The subscription that received it. */
  subscription: string;
  /** RabbitMQ: the routing key it was published with; NATS: its subject; MQTT: its topic. */
  subject: string;
  /** String headers (RabbitMQ message headers, NATS headers, MQTT 5 user properties). */
  headers: Record<string, string>;
  /** The decoded body (JSON by default, see `decode`). */
  payload: T;
}

/** Which handler a subscription invokes per message. */
export interface BusTarget {
  /** A service, keyed object or workflow the engine serves. */
  definition: Definition;
  /** The handler's name; it receives a {@link BusMessage} as its input. */
  handler: string;
}

/** What every subscription has, whichever the bus. */
export interface SubscriptionBase<T = unknown> {
  /** Unique among the subscriptions: part of every idempotency key, so keep it stable. */
  name: string;
  /** The handler invoked once per message. */
  target: BusTarget;
  /**
   * Per-key ordering: messages with the same key are handled one at a time, in the order they
   * arrived. Required when the target is a keyed object or workflow (it is the object key).
   */
  key?: (msg: BusMessage<T>) => string;
  /** What identifies a message for deduplication. Default: its message id. */
  dedupeBy?: (msg: BusMessage<T>) => string;
  /**
   * How many invocations of the target one message gets before it is dead-lettered: an attempt
   * is one invocation, which ends failed when it throws a `TerminalError` or its own retry
   * policy is exhausted. Default 3.
   */
  maxAttempts?: number;
  /** Turns the body into the payload; a throw dead-letters the message at once. Default: JSON. */
  decode?: (body: Buffer) => T;
}

/** A RabbitMQ subscription: a durable queue bound to an exchange by routing keys. */
export interface RabbitSubscription<T = unknown> extends SubscriptionBase<T> {
  bus: 'rabbitmq';
  /** The exchange (asserted durable). */
  exchange: string;
  /** Default `topic`. */
  exchangeType?: 'topic' | 'direct' | 'fanout';
  /** Binding patterns (`order.*`, `order.#`). */
  routingKeys: string | readonly string[];
  /** The durable queue consumed (asserted and bound). */
  queue: string;
  /** Unacknowledged messages in flight at once. Default 32. */
  prefetch?: number;
  /** Where poison messages go: a durable queue (asserted), published to through the default exchange. */
  deadLetter?: { queue: string };
}

/** A NATS JetStream subscription: a durable consumer on a stream, filtered by subject. */
export interface NatsSubscription<T = unknown> extends SubscriptionBase<T> {
  bus: 'nats';
  /** The stream; created (file storage, subjects `[subject, deadLetter.subject]`) when missing. */
  stream: string;
  /** The filter subject (`orders.>`). */
  subject: string;
  /** The durable consumer's name (created when missing; explicit acks). */
  durable: string;
  /** Unacknowledged messages in flight at once. Default 32. */
  prefetch?: number;
  /**
   * How long JetStream waits for an ack before redelivering (the consumer's `ack_wait`; set
   * when Keel creates the consumer). Default `'30s'`. A message whose process died before its
   * ack comes back after this long.
   */
  ackWait?: Duration;
  /** Where poison messages go: a subject, which a stream must capture to keep them. */
  deadLetter?: { subject: string };
}

/**
 * An MQTT subscription: a topic filter subscribed with QoS 1 on the connection's persistent
 * session. Messages are taken one at a time per connection (see docs/buses.md).
 */
export interface MqttSubscription<T = unknown> extends SubscriptionBase<T> {
  bus: 'mqtt';
  /** The topic filter (`orders/+/created`, `orders/#`). */
  topic: string;
  /** Not used by MQTT (messages are taken one at a time); accepted for symmetry. */
  prefetch?: number;
  /** Where poison messages go: a topic, published with QoS 1. */
  deadLetter?: { topic: string };
}

/** A subscription declared in code. */
export type Subscription<T = unknown> =
  RabbitSubscription<T> | NatsSubscription<T> | MqttSubscription<T>;

/** Options of `createBuses`. */
export interface BusesOptions {
  /** RabbitMQ. Default URL `KEEL_AMQP_URL`, else `amqp://guest:guest@127.0.0.1:5672`. */
  rabbitmq?: { url?: string };
  /** NATS with JetStream. Default URL `KEEL_NATS_URL`, else `nats://127.0.0.1:4222`. */
  nats?: { url?: string };
  /**
   * MQTT 5 (Mosquitto). Default URL `KEEL_MQTT_URL`, else `mqtt://127.0.0.1:1883`. `clientId`
   * names the persistent session: keep it stable across restarts and unique per process
   * (default `KEEL_MQTT_CLIENT_ID`, else `keel-{hostname}`).
   */
  mqtt?: { url?: string; clientId?: string };
  /** The subscriptions, each started when the engine starts. */
  subscriptions?: readonly Subscription<any>[];
  /** Reconnect backoff: first wait (ms, default 100), doubling up to `reconnectMaxMs` (default 5000). */
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
}

/** One connection's health, as `Buses.status()` reports it. */
export interface ConnectionStatus {
  bus: BusKind;
  /** The URL without its password. */
  url: string;
  /** `up` connected; `connecting` before the first connection; `down` lost, reconnecting; `closed` stopped. */
  state: 'connecting' | 'up' | 'down' | 'closed';
  /** Times it connected (1 + reconnects). */
  connects: number;
  /** When the state last changed (ISO-8601). */
  since: string;
  /** The last connection error, if any. */
  lastError?: string;
  /** The subscriptions consuming on it. */
  subscriptions: string[];
}

/**
 * What one subscription did in this process since it started (`GET /buses/subscriptions`).
 * Deliveries are counted as the broker made them: a redelivery counts again in `received`.
 */
export interface SubscriptionCounters {
  /** Deliveries from the broker, redeliveries included. */
  received: number;
  /** Deliveries that started a new invocation. */
  started: number;
  /** Deliveries whose dedupe id matched an existing invocation (a redelivery, a duplicate). */
  deduplicated: number;
  /** Messages published to the dead-letter destination by this process. */
  deadLettered: number;
  /** Deliveries acknowledged to the broker. */
  acked: number;
  /** Deliveries handed back to the broker (not accepted: the store or engine unavailable). */
  requeued: number;
  /** Undecodable deliveries dropped (no dead-letter destination). */
  rejected: number;
  /** Deliveries received and not yet settled with the broker. */
  inFlight: number;
}

/** Options of `publish`. */
export interface PublishOptions {
  /** RabbitMQ: the routing key (for the default exchange `''`, the queue). Default `''`. Unused on NATS and MQTT. */
  routingKey?: string;
  /** String headers. */
  headers?: Record<string, string>;
  /** The journal step's name. Default `publish {bus} {destination}`. */
  name?: string;
}

/** A delivery from a broker, before decoding. */
export interface IncomingMessage {
  /** The message id, or the broker's stable fallback. */
  id: string;
  subject: string;
  headers: Record<string, string>;
  body: Buffer;
}

/** What the runtime tells a connection to do with a delivery: `reject` drops it (no dead-letter destination). */
export type Disposition = 'ack' | 'requeue' | 'reject';
