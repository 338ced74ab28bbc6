import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** The result row of `PRAGMA wal_checkpoint`. */
export interface CheckpointResult {
  /** 1 if the checkpoint could not finish because another connection held a lock. */
  busy: number;
  /** Frames in the WAL. */
  log: number;
  /** Frames copied into the database file. */
  checkpointed: number;
}

export type CheckpointMode = 'PASSIVE' | 'RESTART' | 'TRUNCATE';

// Plain CommonJS run with `eval`, so the worker starts the same way under tsx, vitest or
// compiled output, with no separate file to resolve.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { timeout: workerData.busyTimeoutMs });
// The setting that matters: with FULL, SQLite fsyncs the WAL before copying it and the database
// file before recording the frames as checkpointed (which is what allows the WAL to be reused).
db.pragma('synchronous = FULL');
parentPort.on('message', (mode) => {
  if (mode === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const [row] = db.pragma('wal_checkpoint(' + mode + ')');
    parentPort.postMessage({ ok: true, row });
  } catch (err) {
    parentPort.postMessage({ ok: false, message: String((err && err.message) || err), code: err && err.code });
  }
});
`;

/**
 * Runs WAL checkpoints on a worker thread with its own connection, so copying pages into the
 * database file and the fsyncs around it never block the event loop. One checkpoint at a time.
 */
export class Checkpointer {
  private readonly worker?: Worker;
  private current?: { resolve: (r: CheckpointResult) => void; reject: (e: Error) => void };
  private broken?: Error;

  /** Never throws: a worker that cannot start makes {@link failed} true. */
  constructor(path: string, busyTimeoutMs: number) {
    let worker: Worker;
    try {
      const driver = createRequire(import.meta.url).resolve('better-sqlite3');
      worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { path, driver, busyTimeoutMs },
      });
    } catch (err) {
      this.broken = err instanceof Error ? err : new Error(String(err));
      return;
    }
    this.worker = worker;
    // Idle, the worker must not keep the process alive; while a checkpoint runs it must, or a
    // process whose only pending work is that checkpoint (writes paused behind it) would exit.
    worker.unref();
    worker.on(
      'message',
      (
        msg: { ok: true; row: CheckpointResult } | { ok: false; message: string; code?: string },
      ) => {
        const current = this.current;
        this.current = undefined;
        worker.unref();
        if (!current) return;
        if (msg.ok) current.resolve(msg.row);
        else current.reject(Object.assign(new Error(msg.message), { code: msg.code }));
      },
    );
    worker.on('error', (err) => this.abort(err));
    worker.on('exit', () => this.abort(new Error('the checkpoint worker exited')));
  }

  /** Whether the worker failed (it could not start, or crashed); the caller should checkpoint inline. */
  get failed(): boolean {
    return this.broken !== undefined;
  }

  run(mode: CheckpointMode): Promise<CheckpointResult> {
    const worker = this.worker;
    if (this.broken || !worker) {
      return Promise.reject(this.broken ?? new Error('the checkpoint worker is not running'));
    }
    if (this.current) return Promise.reject(new Error('a checkpoint is already running'));
    return new Promise((resolve, reject) => {
      this.current = { resolve, reject };
      worker.ref();
      worker.postMessage(mode);
    });
  }

  /** Closes the worker's connection and ends the thread. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (this.broken || !worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.ref();
    worker.postMessage('close');
    await exited;
  }

  private abort(err: Error): void {
    this.broken ??= err;
    const current = this.current;
    this.current = undefined;
    current?.reject(err);
  }
}
