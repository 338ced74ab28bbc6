import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { serveAdmin, type AdminServer } from '../../src/admin/index.js';
import { schedule } from '../../src/schedules/index.js';
import { run } from '../../src/cli/program.js';
import { invocationsOf, scheduleHarness, Tick, type ScheduleHarness } from './helpers.js';

/**
 * `keel schedules ...` against a real admin API, run in this process (test/cli spawns the
 * command; a spawn per line costs seconds here) with its output captured.
 */
async function keel(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: (await run(args)) ?? 0, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

let h: ScheduleHarness;
let admin: AdminServer;
beforeAll(async () => {
  const coded = schedule({
    name: 'coded',
    cron: '0 * * * *',
    target: { service: Tick, handler: 'hit' },
  });
  h = await scheduleHarness([coded], Date.UTC(2026, 0, 5, 0, 0, 10));
  await h.ext.create({
    name: 'made',
    cron: '*/5 * * * *',
    timezone: 'Europe/Berlin',
    target: { service: 'Tick', handler: 'hit' },
    missed: { all: 2 },
  });
  admin = await serveAdmin(h.engine, { port: 0 });
});
afterAll(async () => {
  await admin?.close();
  await h?.close();
});

describe('keel schedules', () => {
  it('lists, pauses, triggers and deletes', async () => {
    const url = ['--url', admin.url];
    const paused = await keel([...url, 'schedules', 'pause', 'made']);
    expect(paused).toMatchObject({ code: 0, stdout: 'made: paused\n' });
    const list = await keel([...url, 'schedules', 'ls']);
    const json = await keel([...url, '--json', 'schedules', 'ls']);
    const fired = await keel([...url, '--json', 'schedules', 'trigger', 'coded']);
    const inCode = await keel([...url, 'schedules', 'delete', 'coded']);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+CRON\s+TIMEZONE\s+TARGET\s+MISSED\s+STATE\s+SOURCE/);
    expect(lines[1]).toMatch(
      /^coded\s+0 \* \* \* \*\s+UTC\s+Tick\/hit\s+skip\s+active\s+code\s+2026-01-05 01:00:00/,
    );
    expect(lines[2]).toMatch(
      /^made\s+\*\/5 \* \* \* \*\s+Europe\/Berlin\s+Tick\/hit\s+all 2\s+paused\s+api\s*$/,
    );
    expect(JSON.parse(json.stdout).schedules.map((s: { name: string }) => s.name)).toEqual([
      'coded',
      'made',
    ]);
    const trigger = JSON.parse(fired.stdout);
    expect(trigger.idempotencyKey).toMatch(/^schedule:coded:manual:/);
    await h.clock.advance(0);
    expect((await invocationsOf(h.engine)).map((r) => r.id)).toEqual([trigger.invocationId]);
    expect(inCode.code).not.toBe(0);
    expect(inCode.stderr).toMatch(/declared in the app's code/);
    const deleted = await keel([...url, 'schedules', 'delete', 'made']);
    expect(deleted).toMatchObject({ code: 0, stdout: 'made: deleted\n' });
    expect((await h.ext.list()).map((s) => s.name)).toEqual(['coded']);
  });
});
