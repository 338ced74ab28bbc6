/** `keel whoami` and `keel services`: who the token is, and what the app serves. */
import type { Command } from 'commander';
import { act } from '../command.js';
import type { Ctx } from '../context.js';
import { admin } from '../http.js';
import { table } from '../output.js';

async function whoami(ctx: Ctx): Promise<void> {
  const { body } = await admin<{ role: string }>(ctx.target, '/whoami');
  if (ctx.out.json) return ctx.out.data(body);
  ctx.out.line(`${body.role} on ${ctx.target.admin}`);
}

interface ServicesAnswer {
  services: Array<{ name: string; kind: string; handlers: Array<{ name: string; kind: string }> }>;
}

async function services(ctx: Ctx): Promise<void> {
  const { body } = await admin<ServicesAnswer>(ctx.target, '/services');
  const { out } = ctx;
  if (out.json) return out.data(body);
  if (body.services.length === 0) return out.line('no services');
  out.line(
    table(
      out,
      ['SERVICE', 'KIND', 'HANDLERS'],
      body.services.map((s) => [
        s.name,
        s.kind,
        s.handlers.map((h) => (h.kind === 'shared' ? `${h.name} (shared)` : h.name)).join(', '),
      ]),
    ),
  );
}

export function registerMisc(program: Command): void {
  program
    .command('whoami')
    .description("the token's role on the admin API (admin or viewer)")
    .action(act(whoami));
  program
    .command('services')
    .description('the services, objects and workflows the app serves, with their handlers')
    .action(act(services));
}
