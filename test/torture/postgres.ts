/**
 * A private PostgreSQL server for one torture run (`--pg-restart real`): `initdb` into a temp
 * directory, a free port on 127.0.0.1, trust auth, fsync on. The nemesis really restarts it
 * (`pg_ctl restart -m fast`, or `-m immediate`: a crash of the server, recovered from WAL on
 * the way up), which it could never do to the machine's shared server.
 *
 * PostgreSQL refuses to run as root: as root, every command runs as the `postgres` user (through
 * `runuser`), which owns the directory. `pg_ctl` starts the server in a session of its own, so a
 * dying harness would not take it along: `stop()` ends it on every way out the harness controls,
 * an exit hook on `process.exit`, and a detached watchdog (a shell loop) stops it and deletes the
 * directory if the harness process disappears without either (SIGKILL, a test worker torn down).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, appendFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const NEEDED = ['initdb', 'pg_ctl', 'postgres'] as const;

export interface PgBinaries {
  dir: string;
  /** Prefix that runs a command as the server's owner (`runuser -u postgres --` as root). */
  asOwner: string[];
  owner: { uid: number; gid: number } | undefined;
}

/**
 * Finds initdb, pg_ctl and postgres: KEEL_TORTURE_PG_BIN, else the newest
 * /usr/lib/postgresql/<version>/bin that has all three. Throws saying what is missing.
 */
export function findPgBinaries(): PgBinaries {
  const root = '/usr/lib/postgresql';
  const candidates = process.env.KEEL_TORTURE_PG_BIN
    ? [process.env.KEEL_TORTURE_PG_BIN]
    : existsSync(root)
      ? readdirSync(root)
          .sort((a, b) => Number(b) - Number(a))
          .map((v) => join(root, v, 'bin'))
      : [];
  const dir = candidates.find((d) => NEEDED.every((b) => existsSync(join(d, b))));
  if (!dir) {
    const looked =
      candidates.length === 0
        ? `${root}/<version>/bin does not exist`
        : candidates
            .map((d) => `${d} lacks ${NEEDED.filter((b) => !existsSync(join(d, b))).join(', ')}`)
            .join('; ');
    throw new Error(
      `--pg-restart real starts a private PostgreSQL server and needs its binaries ` +
        `(${NEEDED.join(', ')}): ${looked}. Install them (Debian: apt-get install ` +
        `postgresql-15) or point KEEL_TORTURE_PG_BIN at the directory that holds them.`,
    );
  }
  if (process.getuid?.() !== 0) return { dir, asOwner: [], owner: undefined };
  // As root: the server must run as another user.
  const missing: string[] = [];
  if (!existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser'))
    missing.push('runuser (util-linux)');
  let owner: PgBinaries['owner'];
  try {
    owner = {
      uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
      gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
    };
  } catch {
    missing.push("a 'postgres' user (PostgreSQL will not run as root)");
  }
  if (missing.length > 0)
    throw new Error(`--pg-restart real, run as root, needs ${missing.join(' and ')}`);
  return { dir, asOwner: ['runuser', '-u', 'postgres', '--'], owner };
}

/** Servers of this process not stopped yet, for the exit hook. */
const live = new Set<PrivatePostgres>();
process.on('exit', () => {
  for (const server of live) server.stopSync();
});

export class PrivatePostgres {
  private watchdog: number | undefined;
  restarts = 0;

  private constructor(
    private readonly bin: PgBinaries,
    /** Temp directory (owned by the server's user): data/, server.log, the socket. */
    readonly dir: string,
    readonly port: number,
    private keepDir: boolean,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  get logFile(): string {
    return join(this.dir, 'server.log');
  }

  /** initdb, configure and start; stopped (and deleted unless `keep`) by `stop()`. */
  static async start(options: { keep: boolean }): Promise<PrivatePostgres> {
    const bin = findPgBinaries();
    const dir = mkdtempSync(join(tmpdir(), 'keel-torture-pg-'));
    if (bin.owner) chownSync(dir, bin.owner.uid, bin.owner.gid);
    const server = new PrivatePostgres(bin, dir, 0, options.keep);
    live.add(server);
    server.startWatchdog();
    try {
      await server.pg('initdb', [
        '-D',
        server.dataDir,
        '-A',
        'trust',
        '-U',
        'postgres',
        '-E',
        'UTF8',
      ]);
      for (let attempt = 1; ; attempt++) {
        const port = await freePort();
        (server as { port: number }).port = port;
        appendFileSync(
          join(server.dataDir, 'postgresql.conf'),
          [
            '',
            '# keel torture harness',
            "listen_addresses = '127.0.0.1'",
            `port = ${port}`,
            `unix_socket_directories = '${dir}'`,
            'fsync = on',
            'synchronous_commit = on',
            'full_page_writes = on',
            'max_connections = 200',
            '',
          ].join('\n'),
        );
        try {
          await server.ctl(['start']);
          break;
        } catch (err) {
          // The free port may have been taken in between: another port (the last line wins).
          if (attempt >= 3) throw err;
        }
      }
    } catch (err) {
      await server.stop().catch(() => undefined);
      throw new Error(`could not start the private PostgreSQL server in ${dir}: ${String(err)}`, {
        cause: err,
      });
    }
    return server;
  }

  /**
   * `pg_ctl restart`: `fast` disconnects every client and shuts down cleanly; `immediate` is a
   * crash (no shutdown checkpoint, crash recovery on start).
   */
  async restart(mode: 'fast' | 'immediate'): Promise<void> {
    await this.serially(async () => {
      if (this.stopping) return;
      this.restarts++;
      await this.ctl(['restart', '-m', mode]);
    });
  }

  /** Starts the server if it is not running (after a failed restart). */
  async ensureRunning(): Promise<void> {
    await this.serially(async () => {
      if (this.stopping) return;
      try {
        await this.pg('pg_ctl', ['status', '-D', this.dataDir]);
      } catch {
        await this.ctl(['start']);
      }
    });
  }

  /**
   * One pg_ctl operation at a time: a stop that ran while a restart was under way would be
   * followed by the restart's start, leaving a server running after the run.
   */
  private serially(task: () => Promise<void>): Promise<void> {
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private queue: Promise<void> = Promise.resolve();
  private stopping = false;

  /** Keeps the data directory on stop (a failing run). */
  keep(): void {
    this.keepDir = true;
  }

  /** Stops the server (fast, else immediate), deletes the directory unless kept. */
  async stop(): Promise<void> {
    if (!live.has(this)) return;
    this.stopping = true;
    await this.serially(async () => {
      try {
        await this.ctl(['stop', '-m', 'fast']);
      } catch {
        await this.ctl(['stop', '-m', 'immediate']).catch(() => undefined);
      }
    });
    this.finish();
  }

  /** What `stop()` does, synchronously (for the exit hook). */
  stopSync(): void {
    if (!live.has(this)) return;
    try {
      const [cmd, ...args] = [...this.bin.asOwner, join(this.bin.dir, 'pg_ctl')];
      execFileSync(cmd, [...args, 'stop', '-D', this.dataDir, '-m', 'immediate'], {
        stdio: 'ignore',
      });
    } catch {
      // Not running.
    }
    this.finish();
  }

  /** How to look at a kept server. */
  describeKept(schema: string): string {
    const ctl = [...this.bin.asOwner, join(this.bin.dir, 'pg_ctl')].join(' ');
    return (
      `private PostgreSQL kept in ${this.dir} (server log ${this.logFile}); start it with\n` +
      `  ${ctl} -D ${this.dataDir} -l ${this.logFile} start\n` +
      `  psql -h 127.0.0.1 -p ${this.port} -U postgres postgres   (schema ${schema})\n` +
      `stop it with  ${ctl} -D ${this.dataDir} stop; delete it with  rm -rf ${this.dir}`
    );
  }

  private finish(): void {
    live.delete(this);
    if (!this.keepDir) rmSync(this.dir, { recursive: true, force: true });
    if (this.watchdog !== undefined) {
      try {
        process.kill(this.watchdog, 'SIGKILL');
      } catch {
        // Already gone.
      }
      this.watchdog = undefined;
    }
  }

  private ctl(args: string[]): Promise<void> {
    const [command, ...rest] = args;
    return this.pg('pg_ctl', [
      command!,
      '-D',
      this.dataDir,
      '-l',
      this.logFile,
      '-w',
      '-t',
      '120',
      ...rest,
    ]);
  }

  /**
   * Runs one of the server's binaries as its owner, in a process group of its own so that a
   * Ctrl-C of the harness does not cut a restart in half (the harness stops the server itself).
   */
  private async pg(binary: string, args: string[]): Promise<void> {
    const [cmd, ...prefix] = [...this.bin.asOwner, join(this.bin.dir, binary)];
    const child = spawn(cmd, [...prefix, ...args], {
      detached: true,
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    if (code !== 0)
      throw new Error(`${binary} ${args.join(' ')} exited with ${code}: ${out.trim()}`);
  }

  /**
   * A detached shell that outlives the harness: once the harness process is gone, it stops the
   * server (immediate) and deletes the directory unless kept. Killed by `stop()`.
   */
  private startWatchdog(): void {
    const ctl = [...this.bin.asOwner, join(this.bin.dir, 'pg_ctl')].map(quote).join(' ');
    const script =
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ` +
      `${ctl} stop -D ${quote(this.dataDir)} -m immediate >/dev/null 2>&1; ` +
      (this.keepDir ? 'true' : `rm -rf ${quote(this.dir)}`);
    const child = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
    child.unref();
    this.watchdog = child.pid;
  }
}

function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
