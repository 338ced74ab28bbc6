import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { service, TerminalError } from '../../src/index.js';
import { tempDir } from '../helpers.js';
import { json, keel, type Run } from './helpers.js';

/**
 * `keel restart <id> --from-entry N` (issue 16, item 5) as a child process against a running
 * app (startApp on a temporary SQLite file): the new invocation replays entries 0..N-1 and runs
 * the rest; bad values are refused before or by the server with their exit codes.
 */
const ADMIN = 'cli-restart-admin-token-0123456789abcdef012';

const runs = new Map<string, number>();
const bump = (name: string): number => {
  const n = (runs.get(name) ?? 0) + 1;
  runs.set(name, n);
  return n;
};
let down = true;

/** Three steps; the third fails while `down`. The first returns how often its body ran. */
const Billing = service({
  name: 'Billing',
  handlers: {
    bill: async (ctx, who: string) => {
      const n = await ctx.run('lookup', () => bump(`lookup:${who}`));
      await ctx.run('charge', () => bump(`charge:${who}`));
      await ctx.run('receipt', () => {
        bump(`receipt:${who}`);
        if (down) throw new TerminalError('the mailer is down', { code: 'mailer_down' });
      });
      return `billed ${who} (lookup ran ${n}x)`;
    },
  },
});

let app: App;
const tmp = tempDir('keel-cli-restart-');
let env: Record<string, string>;

beforeAll(async () => {
  app = await startApp({
    services: [Billing],
    db: join(tmp.dir, 'keel.db'),
    port: 0,
    adminPort: 0,
    adminToken: ADMIN,
    logger: () => undefined,
  });
  env = { KEEL_ADMIN_URL: app.admin.url, KEEL_INGRESS_URL: app.ingress.url, KEEL_TOKEN: ADMIN };
});
afterAll(async () => {
  await app?.close();
  tmp.cleanup();
});

const run = (...args: string[]) => keel(args, env);
const T = { timeout: 300_000 };

function expectExit(r: Run, code: number): void {
  expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toMatchObject({ code });
}

describe('keel restart --from-entry', () => {
  it('replays the entries before N and runs the rest; refuses bad values', T, async () => {
    const sent = json<{ invocationId: string }>(
      await run('send', 'Billing/bill', '"ada"', '--json'),
    );
    const id = sent.invocationId;
    expectExit(await run('attach', id), 1);
    down = false;

    const human = await run('restart', id, '--from-entry', '2');
    expectExit(human, 0);
    const newId = new RegExp(`restarted ${id} as (inv_\\w+) from entry 2 `).exec(human.stdout)?.[1];
    expect(newId, human.stdout).toBeDefined();
    expect((await run('attach', newId!)).stdout.trim()).toBe('"billed ada (lookup ran 1x)"');
    expect(runs.get('lookup:ada')).toBe(1);
    expect(runs.get('charge:ada')).toBe(1);
    expect(runs.get('receipt:ada')).toBe(2);

    const machine = await run('restart', id, '--from-entry', '1', '--json');
    expectExit(machine, 0);
    const other = json(machine).invocation.id as string;
    expect((await run('attach', other)).stdout.trim()).toBe('"billed ada (lookup ran 1x)"');
    expect(runs.get('charge:ada')).toBe(2);

    const [notNumber, twoIds, past] = await Promise.all([
      run('restart', id, '--from-entry', 'two'),
      run('restart', id, newId!, '--from-entry', '1'),
      run('restart', id, '--from-entry', '9', '--json'),
    ]);
    expectExit(notNumber, 2);
    expect(notNumber.stderr).toContain('--from-entry "two" must be a journal index');
    expectExit(twoIds, 2);
    expect(twoIds.stderr).toContain('give exactly one id');
    // A 400 from the server: exit 1, its code in the JSON error.
    expectExit(past, 1);
    expect(JSON.parse(past.stderr.trim())).toMatchObject({ code: 'entry_out_of_range' });
    // Nothing was started by the refusals: the original and the two restarts.
    const listed = json<{ invocations: unknown[] }>(
      await run('ls', '--service', 'Billing', '--json'),
    );
    expect(listed.invocations).toHaveLength(3);
  });
});
