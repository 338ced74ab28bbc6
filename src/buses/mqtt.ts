/**
 * MQTT (Mosquitto and other MQTT 5 brokers) through mqtt.js: one client with a persistent
 * session (`clean: false`, a fixed client id, a session that does not expire), QoS 1.
 *
 * The PUBACK of a message is sent only once its delivery invocation is durable: mqtt.js's
 * `customHandleAcks` hands us each QoS 1 PUBLISH with a callback that sends the PUBACK. A process
 * that dies before calling it leaves the message unacknowledged in its session, and the broker
 * sends it again when the same client id reconnects; the idempotency key of its send makes that
 * a no-op. mqtt.js handles incoming packets one after another (MQTT wants PUBACKs in order
 * anyway), so a connection accepts one message per store commit: see docs/buses.md.
 *
 * A message's id is its MQTT 5 user property `message-id` (Keel's publish sets it), else a
 * SHA-256 of topic and payload: identical payloads on one topic then count as one message.
 */
import { createHash } from 'node:crypto';
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import { Health, redact, sleep, type BusConnection, type DeliveryHandler } from './health.js';
import type { IncomingMessage, MqttSubscription, Subscription } from './types.js';

/** The user property carrying a message's id (MQTT has no message id of its own beyond the packet id). */
export const MESSAGE_ID_PROPERTY = 'message-id';

interface PublishPacket {
  properties?: {
    userProperties?: Record<string, string | string[]>;
    subscriptionIdentifier?: number | number[];
  };
}

export class MqttBus implements BusConnection {
  readonly kind = 'mqtt' as const;
  private readonly health: Health;
  private client: MqttClient | undefined;
  private closed = false;
  private subs: MqttSubscription[] = [];
  private deliver: DeliveryHandler | undefined;

  constructor(
    private readonly url: string,
    readonly clientId: string,
    private readonly reconnectMs: number,
  ) {
    this.health = new Health('mqtt', redact(url), () => this.subs.map((s) => s.name));
  }

  start(subs: readonly Subscription[], deliver: DeliveryHandler): void {
    this.subs = subs.filter((s): s is MqttSubscription => s.bus === 'mqtt');
    this.deliver = deliver;
    if (this.client) return;
    const client = mqtt.connect(this.url, {
      clientId: this.clientId,
      clean: false,
      protocolVersion: 5,
      // MQTT 5 ends a session at disconnect unless it has an expiry: keep it (the broker may cap it).
      properties: { sessionExpiryInterval: 0xffffffff },
      reconnectPeriod: this.reconnectMs,
      connectTimeout: 10_000,
      // Subscribed on every connect below, with subscription identifiers.
      resubscribe: false,
      customHandleAcks: (topic, payload, packet, ack) =>
        void this.onPublish(topic, payload, packet as PublishPacket, ack),
    });
    this.client = client;
    client.on('connect', () => {
      // Up once every subscription is acknowledged (SUBACK); identifiers tell which
      // subscription a message matched (filters may overlap).
      void Promise.all(
        this.subs.map((s, i) =>
          client.subscribeAsync(s.topic, {
            qos: 1,
            properties: { subscriptionIdentifier: i + 1 },
          }),
        ),
      ).then(
        () => this.health.set('up'),
        (err: Error) => this.health.set('down', `subscribe: ${err.message}`),
      );
    });
    client.on('offline', () => this.health.set('down', 'offline'));
    client.on('close', () => {
      if (!this.closed && this.health.state === 'up') this.health.set('down', 'connection closed');
    });
    client.on('error', (err) => {
      this.health.lastError = err.message;
    });
  }

  /** Delivers a PUBLISH to each subscription it matched; acknowledges once every one accepted it. */
  private async onPublish(
    topic: string,
    payload: Buffer,
    packet: PublishPacket,
    ack: (error: Error | number, code?: number) => void,
  ): Promise<void> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(packet.properties?.userProperties ?? {}))
      headers[k] = Array.isArray(v) ? v.join(',') : v;
    const id =
      headers[MESSAGE_ID_PROPERTY] ??
      `sha256:${createHash('sha256').update(topic).update('\0').update(payload).digest('hex')}`;
    const ids = ([] as number[]).concat(packet.properties?.subscriptionIdentifier ?? []);
    const matched =
      ids.length > 0
        ? ids.map((i) => this.subs[i - 1]).filter((s): s is MqttSubscription => s !== undefined)
        : this.subs.filter((s) => topicMatches(s.topic, topic));
    const msg: IncomingMessage = { id, subject: topic, headers, body: payload };
    for (const sub of matched) {
      // Not accepted (the store unavailable): MQTT has no negative ack, so try again here; a
      // crash meanwhile leaves it unacknowledged, to be sent again at the next session.
      for (;;) {
        const d = await this.deliver!(sub, msg).catch(() => 'requeue' as const);
        if (d !== 'requeue') break;
        if (this.closed) return;
        await sleep(1000);
      }
    }
    if (!this.closed) ack(0);
  }

  async publish(
    destination: string,
    _routingKey: string,
    body: Buffer,
    messageId: string,
    headers: Record<string, string>,
  ): Promise<void> {
    await this.health.whenUp(10_000);
    const client = this.client;
    if (!client) throw new Error('mqtt: not connected');
    const options: IClientPublishOptions = {
      qos: 1,
      properties: {
        contentType: 'application/json',
        userProperties: { ...headers, [MESSAGE_ID_PROPERTY]: messageId },
      },
    };
    // Resolves on the broker's PUBACK.
    await client.publishAsync(destination, body, options);
  }

  status() {
    return this.health.snapshot();
  }

  async close(): Promise<void> {
    this.closed = true;
    // Forced: messages not acknowledged stay in the session, for the next process.
    await this.client?.endAsync(true).catch(() => undefined);
    this.health.set('closed');
  }
}

/**
 * MQTT topic filter matching (`+` one level, `#` the rest), for brokers without subscription identifiers.
 *
 * @example
 * ```ts
 * topicMatches('sensors/+/temp', 'sensors/kitchen/temp'); // true
 * ```
 */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
