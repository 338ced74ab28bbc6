/** `keel invoke`, `keel send` and `keel attach`: the ingress, as a client would use it. */
import type { Command } from 'commander';
import { checkDelay, parseDuration } from '../../core/duration.js';
import { act } from '../command.js';
import { jsonArg, type Ctx } from '../context.js';
import { usage } from '../errors.js';
import { ingress, query, seg } from '../http.js';

/**
 * `Service/handler` or `Object/key/handler` as an ingress path. A key with `/` in it is
 * everything between the first and the last segment, and travels escaped as one segment.
 */
export function targetPath(text: string): string {
  const parts = text.split('/');
  const service = parts[0]!;
  const handler = parts[parts.length - 1]!;
  if (parts.length < 2 || service === '' || handler === '')
    throw usage(
      `"${text}" is not a target: give Service/handler, or Object/key/handler for an object or workflow`,
    );
  if (parts.length === 2) return `/${seg(service)}/${seg(handler)}`;
  const key = parts.slice(1, -1).join('/');
  if (key === '') throw usage(`"${text}" has an empty key: give Object/key/handler`);
  return `/${seg(service)}/${seg(key)}/${seg(handler)}`;
}

interface InvokeOptions {
  idempotencyKey?: string;
  delay?: string;
}

function headersOf(o: InvokeOptions): Record<string, string> {
  return o.idempotencyKey === undefined ? {} : { 'idempotency-key': o.idempotencyKey };
}

async function invoke(ctx: Ctx, [target, input]: string[], o: InvokeOptions): Promise<void> {
  const path = targetPath(target!);
  const body = input === undefined ? undefined : jsonArg(input, 'the input');
  const answer = await ingress(ctx.target, path, {
    method: 'POST',
    headers: headersOf(o),
    ...(input === undefined ? {} : { body }),
  });
  // The result itself, in both modes: it is JSON either way.
  ctx.out.data(answer.body ?? null);
}

interface SendAnswer {
  invocationId: string;
  status: string;
  existing: boolean;
}

async function send(ctx: Ctx, [target, input]: string[], o: InvokeOptions): Promise<void> {
  const path = targetPath(target!);
  if (o.delay !== undefined) {
    try {
      checkDelay(parseDuration(o.delay));
    } catch (err) {
      throw usage(`--delay "${o.delay}": ${(err as Error).message}`);
    }
  }
  const body = input === undefined ? undefined : jsonArg(input, 'the input');
  const { body: sent } = await ingress<SendAnswer>(
    ctx.target,
    `${path}/send${query({ delay: o.delay })}`,
    {
      method: 'POST',
      headers: headersOf(o),
      ...(input === undefined ? {} : { body }),
    },
  );
  const { out } = ctx;
  if (out.json) return out.data(sent);
  out.line(
    `${sent.existing ? 'already sent' : 'sent'}: ${sent.invocationId} (${sent.status})` +
      (o.delay !== undefined && !sent.existing ? `, starts in ${o.delay}` : ''),
  );
  out.note(`follow it: keel attach ${sent.invocationId}  |  keel show ${sent.invocationId}`);
}

async function attach(ctx: Ctx, [id]: string[]): Promise<void> {
  const { body } = await ingress(ctx.target, `/invocations/${seg(id!)}/attach`);
  ctx.out.data(body ?? null);
}

export function registerInvoke(program: Command): void {
  program
    .command('invoke <target> [input]')
    .description(
      'call a handler through the ingress and print its result; target is Service/handler or Object/key/handler, ' +
        'input is JSON (\'"Ada"\', \'{"n":1}\', - for stdin, @file)',
    )
    .option('--idempotency-key <key>', 'the same key answers with the same invocation and result')
    .action(act<InvokeOptions>(invoke));
  program
    .command('send <target> [input]')
    .description('start a handler without waiting (prints the invocation id)')
    .option('--idempotency-key <key>', 'the same key answers with the same invocation')
    .option('--delay <duration>', 'start after this long (10s, 5m, 1h; at most 365d)')
    .action(act<InvokeOptions>(send));
  program
    .command('attach <id>')
    .description('wait for an invocation to finish and print its result (or exit with its error)')
    .action(act(attach));
}
