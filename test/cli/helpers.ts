import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The repository's root: the CLI runs from its source there, through tsx (no build needed). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = 'src/cli/main.ts';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `keel <args>` as a child process. `env` is added to a copy of this process's
 * environment without any KEEL_* variables (so the developer's shell cannot leak in) and with
 * NO_COLOR set.
 */
export function keel(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      { cwd: ROOT, env: cleanEnv(env), maxBuffer: 16 * 1024 * 1024, timeout: 300_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Starts `keel <args>` and leaves it running (for `start` and `dev`). */
export function spawnKeel(
  args: string[],
  env: Record<string, string | undefined> = {},
): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function cleanEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('KEEL_')) env[k] = v;
  env.NO_COLOR = '1';
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** JSON lines a running `keel start --json`/`keel dev --json` printed, as they come. */
export function jsonLines(child: ChildProcess): {
  lines: Array<Record<string, unknown>>;
  next(
    pred: (l: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  output(): string;
} {
  const lines: Array<Record<string, unknown>> = [];
  let text = '';
  let buf = '';
  let waiters: Array<() => void> = [];
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  child.stdout!.on('data', (d: Buffer) => {
    text += d.toString();
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a log line of the app: kept in text only
      }
    }
    wake();
  });
  child.stderr!.on('data', (d: Buffer) => {
    text += d.toString();
  });
  let seen = 0;
  return {
    lines,
    output: () => text,
    async next(pred, timeoutMs = 300_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        while (seen < lines.length) {
          const l = lines[seen++]!;
          if (pred(l)) return l;
        }
        if (child.exitCode !== null)
          throw new Error(`keel exited (${child.exitCode}) before the expected line:\n${text}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for a line:\n${text}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 500);
        });
      }
    },
  };
}

/** A TCP port nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Parses stdout as JSON, with the output in the error when it is not. */
export function json<T = any>(run: Run): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
}
