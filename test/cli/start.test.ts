import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { jsonLines, keel, ROOT, spawnKeel } from './helpers.js';

/**
 * `keel start` runs both forms of app file; `keel dev` restarts the app when a file under its
 * directory changes, and the database survives the restart.
 */
const tmp = tempDir('keel-cli-start-');
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  tmp.cleanup();
});

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return exited;
}

async function post(url: string, body?: unknown): Promise<unknown> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return res.json();
}

const T = { timeout: 900_000 };

describe('keel start', () => {
  it(
    'starts an app file that default-exports its options, prints where it listens, stops on SIGTERM',
    T,
    async () => {
      const db = join(tmp.dir, 'start', 'keel.db');
      const child = spawnKeel([
        'start',
        'test/cli/fixture/app.ts',
        '--port',
        '0',
        '--admin-port',
        '0',
        '--db',
        db,
        '--json',
      ]);
      children.push(child);
      const out = jsonLines(child);
      const started = await out.next((l) => l.event === 'started');
      expect(started).toMatchObject({
        ingress: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      });
      expect(await post(`${started.ingress as string}/Greeter/greet`, 'Eve')).toBe('Hello, Eve!');
      // The CLI talks to the app it started.
      const ls = await keel(['ls', '--json'], {
        KEEL_ADMIN_URL: started.admin as string,
      });
      expect(JSON.parse(ls.stdout).invocations[0]).toMatchObject({ target: 'Greeter/greet' });
      expect(await stop(child)).toBe(0);
    },
  );

  it('human mode prints the URLs; an app file that starts itself runs too', T, async () => {
    const human = spawnKeel([
      'start',
      'test/cli/fixture/app.ts',
      '--port',
      '0',
      '--admin-port',
      '0',
      '--db',
      join(tmp.dir, 'h', 'k.db'),
    ]);
    const self = spawnKeel([
      'start',
      'test/cli/fixture/self.ts',
      '--port',
      '0',
      '--admin-port',
      '0',
      '--db',
      join(tmp.dir, 's', 'k.db'),
    ]);
    children.push(human, self);
    const h = jsonLines(human);
    const s = jsonLines(self);
    const selfStarted = await s.next((l) => l.event === 'self-started');
    expect(await post(`${selfStarted.ingress as string}/Greeter/greet`, 'Fay')).toBe('Hello, Fay!');
    for (let i = 0; i < 600 && !h.output().includes('keel: admin API on'); i++)
      await new Promise((r) => setTimeout(r, 500));
    expect(h.output()).toMatch(/^keel: ingress on http:\/\/127\.0\.0\.1:\d+$/m);
    expect(h.output()).toMatch(/^keel: admin API on http:\/\/127\.0\.0\.1:\d+$/m);
    expect(await stop(human)).toBe(0);
    expect(await stop(self)).toBe(0);
  });

  it('a missing app file or a default export that is no app: exit 2', T, async () => {
    const bad = join(tmp.dir, 'bad.mjs');
    writeFileSync(bad, 'export default { nothing: true };\n');
    const [missing, notApp] = await Promise.all([
      keel(['start', join(tmp.dir, 'missing.mjs'), '--json']),
      keel(['start', bad]),
    ]);
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stderr)).toMatchObject({ code: 'usage' });
    expect(notApp.code).toBe(2);
    expect(notApp.stderr).toContain('neither the options of startApp');
  });
});

describe('keel dev', () => {
  it('restarts the app when a file changes, and keeps the database', T, async () => {
    const dir = join(tmp.dir, 'devapp');
    mkdirSync(dir, { recursive: true });
    const index = JSON.stringify(pathToFileURL(join(ROOT, 'src/index.js')).href);
    writeFileSync(join(dir, 'version.ts'), 'export const VERSION = 1;\n');
    writeFileSync(
      join(dir, 'app.ts'),
      `import { object, service } from ${index};
import { VERSION } from './version.js';
const Info = service({ name: 'Info', handlers: { version: async () => VERSION } });
const Counter = object({
  name: 'Counter',
  handlers: {
    add: async (ctx, n: number) => {
      const total = ((await ctx.get<number>('total')) ?? 0) + n;
      ctx.set('total', total);
      return total;
    },
  },
});
export default { services: [Info, Counter], logger: () => undefined };
`,
    );
    // The database inside the watched directory, as ./.keel/keel.db would be: its writes must
    // not restart the app.
    const db = join(dir, '.keel', 'keel.db');
    const child = spawnKeel([
      'dev',
      join(dir, 'app.ts'),
      '--port',
      '0',
      '--admin-port',
      '0',
      '--db',
      db,
      '--json',
    ]);
    children.push(child);
    const out = jsonLines(child);
    await out.next((l) => l.event === 'watching');
    const first = await out.next((l) => l.event === 'started');
    const url1 = first.ingress as string;
    expect(await post(`${url1}/Info/version`)).toBe(1);
    expect(await post(`${url1}/Counter/c/add`, 5)).toBe(5);

    writeFileSync(join(dir, 'version.ts'), 'export const VERSION = 2;\n');
    const restarting = await out.next((l) => l.event === 'restarting');
    expect(restarting.files).toEqual(['version.ts']);
    const second = await out.next((l) => l.event === 'started');
    const url2 = second.ingress as string;
    expect(await post(`${url2}/Info/version`)).toBe(2);
    // The same database: the counter goes on from 5.
    expect(await post(`${url2}/Counter/c/add`, 1)).toBe(6);
    expect(out.lines.filter((l) => l.event === 'restarting')).toHaveLength(1);

    expect(await stop(child)).toBe(0);
    // The app the dev process ran is gone with it.
    await expect(fetch(`${url2}/Info/version`, { method: 'POST' })).rejects.toThrow();
  });
});
