import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const APP = fileURLToPath(new URL('./app.ts', import.meta.url));

/** The fuzzed app in its child process: its URLs, how it ended (if it did), its log's tail. */
export interface AppProcess {
  child: ChildProcess;
  pid: number;
  ingress: string;
  admin: string;
  /** Set once the process is gone: any exit is a failure of the run. */
  exit: { code: number | null; signal: string | null } | undefined;
  /** The last lines it wrote to stderr (errors it logged, a crash's stack). */
  log: string[];
  /** Resident set size in KiB, from /proc/<pid>/status. */
  rssKiB(): number | undefined;
  stop(): Promise<void>;
}

export function startAppProcess(db: string): Promise<AppProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', APP], {
    env: { ...process.env, KEEL_DB: db },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const app = {
    child,
    pid: child.pid!,
    ingress: '',
    admin: '',
    exit: undefined,
    log: [],
    rssKiB: () => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        return m ? Number(m[1]) : undefined;
      } catch {
        return undefined;
      }
    },
    stop: async () => {
      if (app.exit) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(hard);
    },
  } as AppProcess;
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    const lines = err.split('\n');
    err = lines.pop()!;
    app.log.push(...lines);
    if (app.log.length > 200) app.log.splice(0, app.log.length - 200);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`the fuzz app did not start within 60 s: ${out}`)),
      60_000,
    );
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\S+) (\S+)/.exec(out);
      if (m && !app.ingress) {
        clearTimeout(timer);
        app.ingress = m[1]!;
        app.admin = m[2]!;
        resolve(app);
      }
    });
    child.on('exit', (code, signal) => {
      app.exit = { code, signal };
      clearTimeout(timer);
      reject(
        new Error(
          `the fuzz app exited (code ${code}, signal ${signal}) before it served: ${app.log.join('\n')}`,
        ),
      );
    });
  });
}
