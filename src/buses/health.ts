import type { BusKind, ConnectionStatus, Disposition, IncomingMessage } from './types.js';
import type { Subscription } from './types.js';

/** What the runtime hands a connection: the subscriptions on its bus and what to do per delivery. */
export type DeliveryHandler = (sub: Subscription, msg: IncomingMessage) => Promise<Disposition>;

/** One broker connection: connects and reconnects on its own, consumes, publishes with confirms. */
export interface BusConnection {
  readonly kind: BusKind;
  /** Connects in the background (reconnecting forever) and consumes `subs`. */
  start(subs: readonly Subscription[], deliver: DeliveryHandler): void;
  /** Resolves once the broker confirmed the message (stored); rejects on failure (the step retries). */
  publish(
    destination: string,
    routingKey: string,
    body: Buffer,
    messageId: string,
    headers: Record<string, string>,
  ): Promise<void>;
  status(): ConnectionStatus;
  close(): Promise<void>;
}

/** A connection's state as `status()` reports it, and a wait for the next `up`. */
export class Health {
  state: ConnectionStatus['state'] = 'connecting';
  connects = 0;
  since = Date.now();
  lastError: string | undefined;
  private waiters: Array<() => void> = [];

  constructor(
    readonly bus: BusKind,
    readonly url: string,
    readonly subscriptions: () => string[],
  ) {}

  set(state: ConnectionStatus['state'], error?: unknown): void {
    if (error !== undefined)
      this.lastError = error instanceof Error ? error.message : JSON.stringify(error);
    if (state === this.state) return;
    this.state = state;
    this.since = Date.now();
    if (state === 'up') {
      this.connects++;
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    }
  }

  /** Resolves when connected; rejects after `timeoutMs` (a publish step then fails and retries). */
  async whenUp(timeoutMs: number): Promise<void> {
    if (this.state === 'up') return;
    if (this.state === 'closed') throw new Error(`${this.bus}: the connection is closed`);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((f) => f !== done);
        reject(
          new Error(
            `${this.bus}: not connected to ${this.url} after ${timeoutMs} ms (${this.lastError ?? 'connecting'})`,
          ),
        );
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(t);
        resolve();
      };
      this.waiters.push(done);
    });
  }

  snapshot(): ConnectionStatus {
    const s: ConnectionStatus = {
      bus: this.bus,
      url: this.url,
      state: this.state,
      connects: this.connects,
      since: new Date(this.since).toISOString(),
      subscriptions: this.subscriptions(),
    };
    if (this.lastError !== undefined) s.lastError = this.lastError;
    return s;
  }
}

/** The URL as status shows it: without a password. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/** Exponential reconnect delays. */
export function backoff(initialMs: number, maxMs: number): (attempt: number) => number {
  return (attempt) => Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
