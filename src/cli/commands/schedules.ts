/** `keel schedules`: the app's cron schedules (its admin API's `/schedules`). */
import type { Command } from 'commander';
import { act } from '../command.js';
import type { Ctx } from '../context.js';
import { admin, seg } from '../http.js';
import { status, table, time } from '../output.js';

interface Schedule {
  name: string;
  cron: string;
  timezone?: string;
  target: { service: string; handler: string; key?: string };
  missed: 'skip' | 'once' | { all: number };
  paused: boolean;
  source: 'code' | 'api';
  lastFired?: string;
  nextFireAt?: string;
}

const targetOf = (s: Schedule): string =>
  [s.target.service, s.target.key, s.target.handler].filter((x) => x !== undefined).join('/');

async function list(ctx: Ctx): Promise<void> {
  const { body } = await admin<{ schedules: Schedule[] }>(ctx.target, '/schedules');
  const { out } = ctx;
  if (out.json) return out.data(body);
  if (body.schedules.length === 0) return out.line('no schedules');
  out.line(
    table(
      out,
      ['NAME', 'CRON', 'TIMEZONE', 'TARGET', 'MISSED', 'STATE', 'SOURCE', 'LAST FIRED', 'NEXT'],
      body.schedules.map((s) => [
        s.name,
        s.cron,
        s.timezone ?? 'UTC',
        targetOf(s),
        typeof s.missed === 'string' ? s.missed : `all ${s.missed.all}`,
        status(out, s.paused ? 'paused' : 'active'),
        s.source,
        time(s.lastFired),
        s.paused ? '' : time(s.nextFireAt),
      ]),
    ),
  );
}

/** `pause`, `resume`: the schedule as it is afterwards. */
function change(action: 'pause' | 'resume') {
  return async (ctx: Ctx, [name]: string[]): Promise<void> => {
    const { body } = await admin<Schedule>(ctx.target, `/schedules/${seg(name!)}/${action}`, {
      method: 'POST',
    });
    const { out } = ctx;
    if (out.json) return out.data(body);
    out.line(
      `${body.name}: ${status(out, body.paused ? 'paused' : 'active')}` +
        (body.paused ? '' : `, next at ${time(body.nextFireAt)}`),
    );
  };
}

async function trigger(ctx: Ctx, [name]: string[]): Promise<void> {
  const { body } = await admin<{ invocationId: string; idempotencyKey: string }>(
    ctx.target,
    `/schedules/${seg(name!)}/trigger`,
    { method: 'POST' },
  );
  const { out } = ctx;
  if (out.json) return out.data(body);
  out.line(`${name}: started ${body.invocationId} (${body.idempotencyKey})`);
  out.note(`follow it: keel show ${body.invocationId}`);
}

async function remove(ctx: Ctx, [name]: string[]): Promise<void> {
  const { body } = await admin(ctx.target, `/schedules/${seg(name!)}`, { method: 'DELETE' });
  const { out } = ctx;
  if (out.json) return out.data(body);
  out.line(`${name}: deleted`);
}

export function registerSchedules(program: Command): void {
  const schedules = program
    .command('schedules')
    .description('cron schedules: list, pause, resume, trigger now, delete');
  schedules
    .command('ls')
    .alias('list')
    .description('every schedule with its state and next fire time')
    .action(act(list));
  schedules
    .command('pause <name>')
    .description('stop firing ticks (survives restarts)')
    .action(act(change('pause')));
  schedules
    .command('resume <name>')
    .description('fire ticks again, from the next one')
    .action(act(change('resume')));
  schedules
    .command('trigger <name>')
    .description("start the schedule's target now, once")
    .action(act(trigger));
  schedules
    .command('delete <name>')
    .alias('rm')
    .description('delete a schedule created through the admin API')
    .action(act(remove));
}
