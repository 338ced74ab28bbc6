/** `keel state`: the state of objects and workflows, read and edited through the admin API. */
import type { Command } from 'commander';
import { act } from '../command.js';
import { jsonArg, positiveInt, type Ctx } from '../context.js';
import { CliError, EXIT, usage } from '../errors.js';
import { admin, query, seg } from '../http.js';
import { brief, table } from '../output.js';

/** `Service/key` (the key may contain `/`) as `/state/{service}/{key}`. */
function keyPath(text: string): { service: string; key: string; path: string } {
  const slash = text.indexOf('/');
  const service = slash === -1 ? '' : text.slice(0, slash);
  const key = slash === -1 ? '' : text.slice(slash + 1);
  if (service === '' || key === '')
    throw usage(`"${text}" is not an object key: give Service/key, e.g. Counter/visits`);
  return { service, key, path: `/state/${seg(service)}/${seg(key)}` };
}

interface StateAnswer {
  service: string;
  key: string;
  state: Record<string, unknown>;
}

async function get(ctx: Ctx, [target, name]: string[]): Promise<void> {
  const { path } = keyPath(target!);
  const { body } = await admin<StateAnswer>(ctx.target, path);
  const { out } = ctx;
  if (name !== undefined) {
    if (!Object.hasOwn(body.state, name))
      throw new CliError(
        'not_found',
        `${target} has no state "${name}"; it has ${Object.keys(body.state).join(', ') || 'none'}`,
        EXIT.notFound,
      );
    return out.data(body.state[name]);
  }
  if (out.json) return out.data(body);
  const names = Object.keys(body.state).sort();
  if (names.length === 0) return out.line(`${target}: no state`);
  out.line(
    table(
      out,
      ['NAME', 'VALUE'],
      names.map((n) => [n, brief(body.state[n], 100)]),
    ),
  );
}

async function set(ctx: Ctx, [target, name, value]: string[]): Promise<void> {
  const { path } = keyPath(target!);
  const parsed = jsonArg(value!, 'the value');
  const { body } = await admin<{ value: unknown }>(ctx.target, `${path}/${seg(name!)}`, {
    method: 'PUT',
    body: parsed,
  });
  const { out } = ctx;
  if (out.json) return out.data(body);
  out.line(`${target} ${name} = ${brief(body.value, 100)}`);
}

async function remove(ctx: Ctx, [target, name]: string[]): Promise<void> {
  const { path } = keyPath(target!);
  const { body } = await admin(ctx.target, `${path}/${seg(name!)}`, { method: 'DELETE' });
  const { out } = ctx;
  if (out.json) return out.data(body);
  out.line(`${target} ${name} deleted`);
}

async function keys(ctx: Ctx, [service]: string[], o: { limit?: string; cursor?: string }) {
  const q = query({
    limit: o.limit === undefined ? undefined : positiveInt(o.limit, '--limit', 1000),
    cursor: o.cursor,
  });
  const { body } = await admin<{ keys: Array<{ key: string }>; nextCursor?: string }>(
    ctx.target,
    `/state/${seg(service!)}${q}`,
  );
  const { out } = ctx;
  if (out.json) return out.data(body);
  if (body.keys.length === 0) out.line(`${service}: no keys with state`);
  for (const k of body.keys) out.line(k.key);
  if (body.nextCursor !== undefined)
    out.note(`more: keel state ls ${service} --cursor ${body.nextCursor}`);
}

export function registerState(program: Command): void {
  const state = program
    .command('state')
    .description('read and edit the state of objects and workflows');
  state
    .command('ls <service>')
    .description('the keys of an object or workflow that have state')
    .option('--limit <n>', 'at most this many (1-1000)')
    .option('--cursor <cursor>', 'the next page')
    .action(act(keys));
  state
    .command('get <target> [name]')
    .description('the state of Service/key, or one value of it (printed as JSON)')
    .action(act(get));
  state
    .command('set <target> <name> <json>')
    .description(
      "set one value ('\"text\"', '42', '{\"a\":1}', - for stdin); journaled as an admin action",
    )
    .action(act(set));
  state.command('rm <target> <name>').description('delete one value').action(act(remove));
}
