import pg from 'pg';
import type { ClusterMessage } from '../types.js';
import { msg } from './errors.js';

/** Reconnect delays: from the first to the last, doubling, with jitter. */
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;
/**
 * An idle LISTEN connection gets no traffic, so a connection that died without a word (a network
 * partition, a failover behind a proxy) would go unnoticed: it is pinged this often, and given up
 * when a ping gets no answer within the timeout.
 */
const PING_INTERVAL_MS = 30_000;
const PING_TIMEOUT_MS = 10_000;

/** Quotes an identifier for SQL: channel names can hold any character. */
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * One subscription of {@link PostgresStore.listen}: a dedicated connection (not from the pool,
 * whose connections are shared and reset) that LISTENs on the schema's broadcast channel and on
 * the process's channel, both named by the schema's `channel()` function (migration 3).
 *
 * When the connection drops it reconnects with backoff and LISTENs again. Messages sent while
 * it is down are lost: NOTIFY only reaches sessions listening at commit time.
 */
export class Listener {
  private client?: pg.Client;
  private channels?: readonly [broadcast: string, own: string];
  private stopped = false;
  private delay = RECONNECT_MIN_MS;
  private retry?: NodeJS.Timeout;
  private ping?: NodeJS.Timeout;
  /** Why the last reconnection attempt failed, for diagnostics. */
  lastError?: string;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly quotedSchema: string,
    private readonly processId: string,
    private readonly onMessage: (message: ClusterMessage) => void,
  ) {}

  /** Connects and LISTENs; rejects if that fails (no retry for the first connection). */
  start(): Promise<void> {
    return this.attach();
  }

  /** Ends the connection and stops reconnecting. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.ping);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async attach(): Promise<void> {
    const client = new pg.Client(this.config);
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      if (this.client !== client) return;
      this.client = undefined;
      clearInterval(this.ping);
      void client.end().catch(() => {});
      this.reconnect();
    };
    // A broken connection emits 'error' (and 'end'); either way it is replaced.
    client.on('error', onLost);
    client.on('end', onLost);
    client.on('notification', (n) => this.deliver(n));
    try {
      await client.connect();
      if (this.channels === undefined) {
        const { rows } = await client.query<{ b: string; p: string }>(
          `SELECT ${this.quotedSchema}.channel(NULL) AS b, ${this.quotedSchema}.channel($1) AS p`,
          [this.processId],
        );
        this.channels = [rows[0]!.b, rows[0]!.p];
      }
      const [broadcast, own] = this.channels;
      await client.query(`LISTEN ${quoteIdent(broadcast)}; LISTEN ${quoteIdent(own)}`);
    } catch (err) {
      lost = true;
      await client.end().catch(() => {});
      throw err;
    }
    if (this.stopped) {
      lost = true;
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.delay = RECONNECT_MIN_MS;
    clearInterval(this.ping);
    this.ping = setInterval(() => this.checkAlive(client, onLost), PING_INTERVAL_MS);
    this.ping.unref();
  }

  private checkAlive(client: pg.Client, onLost: () => void): void {
    const timeout = setTimeout(onLost, PING_TIMEOUT_MS);
    timeout.unref();
    client.query('SELECT 1').then(
      () => clearTimeout(timeout),
      () => {
        clearTimeout(timeout);
        onLost();
      },
    );
  }

  private reconnect(): void {
    if (this.stopped) return;
    // Jitter, so processes that lost their connections together do not come back together.
    const wait = Math.round(this.delay / 2 + (Math.random() * this.delay) / 2);
    this.delay = Math.min(this.delay * 2, RECONNECT_MAX_MS);
    this.retry = setTimeout(() => {
      this.attach().catch((err: unknown) => {
        this.lastError = msg(err);
        this.reconnect();
      });
    }, wait);
    this.retry.unref();
  }

  private deliver(n: pg.Notification): void {
    if (this.stopped || n.payload === undefined) return;
    let message: ClusterMessage;
    try {
      message = JSON.parse(n.payload) as ClusterMessage;
    } catch {
      return; // Not ours: somebody else NOTIFYing on the channel.
    }
    try {
      this.onMessage(message);
    } catch {
      // A listener's failure is its own; the connection keeps listening.
    }
  }
}
