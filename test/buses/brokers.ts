/**
 * Private broker instances a test may stop and restart without disturbing the shared ones
 * (other tests use those concurrently): a `nats-server -js` and a RabbitMQ node of their own,
 * on free ports, with their data in a temporary directory that survives the restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';

export interface PrivateBroker {
  url: string;
  /** Stops the broker (SIGTERM, as an operator's restart) and waits until its port is closed. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data, and waits until it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

const NATS_SERVER = process.env.KEEL_TEST_NATS_SERVER ?? '/usr/sbin/nats-server';
const RABBITMQ_SERVER =
  process.env.KEEL_TEST_RABBITMQ_SERVER ?? '/usr/lib/rabbitmq/bin/rabbitmq-server';

const MOSQUITTO = process.env.KEEL_TEST_MOSQUITTO ?? '/usr/sbin/mosquitto';

/** Why a private Mosquitto cannot run here, or undefined when it can. */
export const mosquittoMissing = (): string | undefined =>
  existsSync(MOSQUITTO) ? undefined : `${MOSQUITTO} not found (set KEEL_TEST_MOSQUITTO)`;

/** Why a private NATS server cannot run here, or undefined when it can. */
export const natsServerMissing = (): string | undefined =>
  existsSync(NATS_SERVER) ? undefined : `${NATS_SERVER} not found (set KEEL_TEST_NATS_SERVER)`;
/** Why a private RabbitMQ node cannot run here, or undefined when it can. */
export const rabbitServerMissing = (): string | undefined =>
  existsSync(RABBITMQ_SERVER)
    ? undefined
    : `${RABBITMQ_SERVER} not found (set KEEL_TEST_RABBITMQ_SERVER)`;

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitPort(port: number, open: boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const isOpen = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (isOpen === open) return;
    if (Date.now() > end)
      throw new Error(`${what}: port ${port} still ${isOpen ? 'open' : 'closed'} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A process group of our own (the RabbitMQ script forks the Erlang VM), stopped as a whole. */
function launch(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  log: string,
): ChildProcess {
  const child = spawn(cmd, args, {
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  child.unref();
  writeFileSync(log, `${cmd} ${args.join(' ')} (pid ${child.pid})\n`, { flag: 'a' });
  return child;
}

async function stopGroup(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child?.pid) return;
  const pgid = child.pid;
  try {
    process.kill(-pgid, signal);
  } catch {
    return; // already gone
  }
  const end = Date.now() + 60_000;
  for (;;) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    if (Date.now() > end) {
      process.kill(-pgid, 'SIGKILL');
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `nats-server -js` on a free port, its store in a temporary directory. */
export async function privateNats(): Promise<PrivateBroker> {
  const { dir, cleanup } = tempDir('keel-nats-');
  const port = await freePort();
  let child: ChildProcess | undefined;
  const broker: PrivateBroker = {
    url: `nats://127.0.0.1:${port}`,
    async start() {
      child = launch(
        NATS_SERVER,
        ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir],
        {},
        join(dir, 'launch.log'),
      );
      await waitPort(port, true, 30_000, 'nats-server start');
    },
    async stop() {
      await stopGroup(child, 'SIGTERM');
      child = undefined;
      await waitPort(port, false, 30_000, 'nats-server stop');
    },
    async close() {
      await stopGroup(child, 'SIGKILL');
      cleanup();
    },
  };
  await broker.start();
  return broker;
}

/**
 * A RabbitMQ node of its own (`keeltest-{pid}-{port}@localhost`) on free AMQP and distribution
 * ports, its Mnesia database and logs in a temporary directory, no plugins. Durable queues and
 * persistent messages survive its restart, as on a production node.
 */
export async function privateRabbit(): Promise<PrivateBroker> {
  const { dir, cleanup } = tempDir('keel-rabbit-');
  const port = await freePort();
  const dist = await freePort();
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  writeFileSync(join(dir, 'rabbitmq.conf'), `listeners.tcp.default = ${port}\n`);
  const env = {
    RABBITMQ_NODENAME: `keeltest-${process.pid}-${port}@localhost`,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(dist),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_PID_FILE: join(dir, 'rabbit.pid'),
    HOME: dir, // its own Erlang cookie
  };
  let child: ChildProcess | undefined;
  const broker: PrivateBroker = {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    async start() {
      child = launch(RABBITMQ_SERVER, [], env, join(dir, 'launch.log'));
      await waitPort(port, true, 90_000, 'rabbitmq-server start');
    },
    async stop() {
      await stopGroup(child, 'SIGTERM');
      child = undefined;
      await waitPort(port, false, 60_000, 'rabbitmq-server stop');
    },
    async close() {
      await stopGroup(child, 'SIGKILL');
      cleanup();
    },
  };
  await broker.start();
  return broker;
}

/**
 * A Mosquitto of its own on a free port, persistence in a temporary directory (saved when it
 * stops, as on a production broker's restart), so persistent sessions survive its restart.
 */
export async function privateMosquitto(): Promise<PrivateBroker> {
  const { dir, cleanup } = tempDir('keel-mosquitto-');
  // Started as root, Mosquitto drops to its own user: it must be able to write its store here.
  chmodSync(dir, 0o777);
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'max_queued_messages 0',
      `log_dest file ${join(dir, 'mosquitto.log')}`,
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  const broker: PrivateBroker = {
    url: `mqtt://127.0.0.1:${port}`,
    async start() {
      child = launch(MOSQUITTO, ['-c', conf], {}, join(dir, 'launch.log'));
      await waitPort(port, true, 30_000, 'mosquitto start');
    },
    async stop() {
      await stopGroup(child, 'SIGTERM');
      child = undefined;
      await waitPort(port, false, 30_000, 'mosquitto stop');
    },
    async close() {
      await stopGroup(child, 'SIGKILL');
      cleanup();
    },
  };
  await broker.start();
  return broker;
}
