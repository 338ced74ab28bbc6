/**
 * RabbitMQ (AMQP 0-9-1) through amqplib: one connection, a confirm channel for publishing and a
 * channel per subscription. Any error closes the whole connection and a loop reconnects it with
 * backoff, re-asserting the topology and the consumers: simpler to reason about than repairing
 * single channels, and after a broker restart everything is gone anyway.
 *
 * A delivery whose channel closed before it was settled is neither acked nor nacked (the tag is
 * meaningless on a new channel): the broker redelivers it, and the idempotency key of its send
 * makes that a no-op.
 */
import { createHash } from 'node:crypto';
import * as amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { backoff, Health, redact, type BusConnection, type DeliveryHandler } from './health.js';
import type { RabbitSubscription, Subscription } from './types.js';

/** How long a close waits for the deliveries under way to be settled. */
const CLOSE_SETTLE_MS = 5_000;

export class RabbitConnection implements BusConnection {
  readonly kind = 'rabbitmq' as const;
  private readonly health: Health;
  private model: ChannelModel | undefined;
  private pub: ConfirmChannel | undefined;
  private closed = false;
  private subs: RabbitSubscription[] = [];
  private deliver: DeliveryHandler | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Deliveries being taken (sent durably, then acked): a close settles them first. */
  private readonly taking = new Set<Promise<void>>();

  constructor(
    private readonly url: string,
    private readonly delays: (attempt: number) => number = backoff(100, 5000),
  ) {
    this.health = new Health('rabbitmq', redact(url), () => this.subs.map((s) => s.name));
  }

  start(subs: readonly Subscription[], deliver: DeliveryHandler): void {
    this.subs = subs.filter((s): s is RabbitSubscription => s.bus === 'rabbitmq');
    this.deliver = deliver;
    this.loop ??= this.run();
  }

  /** Connects, waits until the connection is lost, reconnects; until `close`. */
  private async run(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      try {
        const { lost } = await this.connect();
        failures = 0;
        this.health.set('up');
        const err = await lost;
        if (this.closed) break;
        this.health.set('down', err ?? 'connection closed');
      } catch (err) {
        this.health.set(this.health.connects === 0 ? 'connecting' : 'down', err);
        await this.model?.close().catch(() => undefined);
      }
      this.model = undefined;
      this.pub = undefined;
      if (this.closed) break;
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, this.delays(failures++));
      });
    }
    this.health.set('closed');
  }

  /** Opens the connection, topology and consumers; resolves with a promise of its loss (boxed: an async function would adopt it). */
  private async connect(): Promise<{ lost: Promise<unknown> }> {
    const model = await amqp.connect(this.url);
    this.model = model;
    let onLost!: (err: unknown) => void;
    const lost = new Promise<unknown>((r) => (onLost = r));
    model.on('error', () => undefined); // 'close' follows with the error
    model.on('close', (err?: Error) => onLost(err));
    // A channel closed by the broker (a failed ack, a missing exchange) restarts everything.
    const guard = (ch: Channel): void => {
      ch.on('error', () => undefined);
      ch.on('close', () => {
        if (!this.closed) model.close().catch(() => undefined);
      });
    };
    const pub = await model.createConfirmChannel();
    guard(pub);
    for (const s of this.subs) {
      await pub.assertExchange(s.exchange, s.exchangeType ?? 'topic', { durable: true });
      await pub.assertQueue(s.queue, { durable: true });
      const keys = typeof s.routingKeys === 'string' ? [s.routingKeys] : s.routingKeys;
      for (const k of keys) await pub.bindQueue(s.queue, s.exchange, k);
      if (s.deadLetter) await pub.assertQueue(s.deadLetter.queue, { durable: true });
    }
    this.pub = pub;
    for (const s of this.subs) {
      const ch = await model.createChannel();
      guard(ch);
      let open = true;
      ch.on('close', () => (open = false));
      await ch.prefetch(s.prefetch ?? 32);
      await ch.consume(
        s.queue,
        (m) => {
          // Closing: a delivery not taken now is left unacked, so the broker redelivers it.
          if (m && !this.closed) this.onDelivery(s, ch, () => open, m);
        },
        { noAck: false },
      );
    }
    return { lost };
  }

  private onDelivery(
    sub: RabbitSubscription,
    ch: Channel,
    open: () => boolean,
    m: ConsumeMessage,
  ): void {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.properties.headers ?? {}))
      if (v !== undefined && v !== null) headers[k] = typeof v === 'string' ? v : JSON.stringify(v);
    const id =
      typeof m.properties.messageId === 'string' && m.properties.messageId !== ''
        ? m.properties.messageId
        : // No id: the same body on the same routing key is taken for the same message.
          `sha256:${createHash('sha256').update(m.fields.routingKey).update('\0').update(m.content).digest('hex')}`;
    // A channel closing meanwhile makes ack/nack throw: the broker redelivers the message.
    const settle = (d: 'ack' | 'requeue' | 'reject'): void => {
      if (!open()) return;
      try {
        if (d === 'ack') ch.ack(m);
        else ch.nack(m, false, d === 'requeue');
      } catch {
        // redelivered, and deduplicated by its send's idempotency key
      }
    };
    const taken = this.deliver!(sub, {
      id,
      subject: m.fields.routingKey,
      headers,
      body: m.content,
    }).then(settle, () => settle('requeue'));
    this.taking.add(taken);
    void taken.finally(() => this.taking.delete(taken));
  }

  async publish(
    destination: string,
    routingKey: string,
    body: Buffer,
    messageId: string,
    headers: Record<string, string>,
  ): Promise<void> {
    await this.health.whenUp(10_000);
    const pub = this.pub;
    const model = this.model;
    if (!pub || !model) throw new Error('rabbitmq: not connected');
    await new Promise<void>((resolve, reject) => {
      // A connection lost before the confirm: the outcome is unknown, so the step fails and
      // publishes again with the same message id (consumers deduplicate by it).
      const onClose = (): void => reject(new Error('rabbitmq: connection lost before the confirm'));
      model.once('close', onClose);
      try {
        pub.publish(
          destination,
          routingKey,
          body,
          {
            messageId,
            persistent: true,
            contentType: 'application/json',
            headers,
            mandatory: false,
          },
          (err: unknown) => {
            model.removeListener('close', onClose);
            if (err)
              reject(
                err instanceof Error ? err : new Error(`rabbitmq: nacked (${JSON.stringify(err)})`),
              );
            else resolve();
          },
        );
      } catch (err) {
        model.removeListener('close', onClose);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  status() {
    return this.health.snapshot();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    // An ack lost to the close would make the broker deliver again a message Keel has taken
    // (deduplicated, but back in the queue): settle the deliveries under way first, briefly.
    await Promise.race([
      Promise.allSettled([...this.taking]),
      new Promise((resolve) => setTimeout(resolve, CLOSE_SETTLE_MS).unref()),
    ]);
    await this.model?.close().catch(() => undefined);
    await this.loop;
    this.health.set('closed');
  }
}
