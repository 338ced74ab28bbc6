/**
 * A TCP proxy between the apps and PostgreSQL, so the harness can make the database vanish for
 * the apps alone: the server is shared with the rest of the machine, and restarting it would
 * disturb everyone else. `down()` resets every connection and refuses new ones (what clients
 * see while PostgreSQL restarts); `up()` accepts again on the same port.
 */
import net from 'node:net';

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private constructor(
    private readonly target: { host: string; port: number },
    public port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target, 0);
    await proxy.up();
    return proxy;
  }

  /** Local ports of the proxy's connections to PostgreSQL (`client_port` in pg_stat_activity). */
  upstreamPorts(): number[] {
    return [...this.pairs].map((p) => p.upstream.localPort).filter((p): p is number => !!p);
  }

  /** Accepts connections again (on the same port). */
  async up(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => this.accept(client));
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(this.port, '127.0.0.1', () => {
            server.off('error', reject);
            resolve();
          });
        });
        break;
      } catch (err) {
        // The port can be briefly taken by someone else's ephemeral connection: try again.
        if (attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Refuses new connections and resets every open one. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const p of this.pairs) {
      p.client.resetAndDestroy();
      p.upstream.destroy();
    }
    this.pairs.clear();
    if (server) await new Promise((r) => server.close(r));
  }

  close(): Promise<void> {
    return this.down();
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
