/**
 * The plain node:http ceiling (bench/plain-server.ts) on `KEEL_WORKERS` processes when that is
 * set (the bench passes the same environment to the Keel server), else one per CPU this process
 * may use (its `taskset` affinity, `os.availableParallelism()`). On one core it is plain-server.ts itself, in this
 * process, as before; given more, it is a `node:cluster` of that many plain servers sharing one
 * port (the primary accepts connections and hands them out round robin), so that the 2-core
 * layout's ceiling may use both cores as Keel may. Same startup contract as bench/server.ts:
 * prints `KEEL_BENCH_READY <url>` once every process listens.
 *
 *   KEEL_PORT=0 taskset -c 0,1 node --import tsx bench/plain-cluster.ts
 */
import cluster from 'node:cluster';
import os from 'node:os';

const workers = Number(process.env.KEEL_WORKERS) || os.availableParallelism();

if (!cluster.isPrimary || workers <= 1) {
  await import('./plain-server.js');
} else {
  // The workers' stdout comes here: each prints its own ready line, and only this process's,
  // printed once all of them listen, counts.
  cluster.setupPrimary({ silent: true });
  let listening = 0;
  for (let i = 0; i < workers; i++) {
    const w = cluster.fork();
    w.process.stdout?.resume();
    w.on('listening', (addr) => {
      if (++listening === workers)
        process.stdout.write(`KEEL_BENCH_READY http://127.0.0.1:${addr.port}\n`);
    });
  }
  // A worker dying is a broken ceiling: stop, so the bench sees the server exit.
  cluster.on('exit', (w, code, signal) => {
    if (!stopping) {
      process.stderr.write(`plain worker ${w.process.pid} exited (${signal ?? code})\n`);
      process.exit(1);
    }
  });
  let stopping = false;
  const stop = (code: number): void => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
    cluster.disconnect(() => process.exit(code));
  };
  process.on('message', (msg: unknown) => {
    if (msg === 'stats') process.send?.({ stats: {} });
  });
  process.on('disconnect', () => stop(1));
  process.on('SIGTERM', () => stop(0));
}
