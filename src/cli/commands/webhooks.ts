/** `keel webhooks` and `keel integrations`: the outbound webhooks and the integrations' health. */
import type { Command } from 'commander';
import { act } from '../command.js';
import { positiveInt, type Ctx } from '../context.js';
import { CliError, EXIT, usage } from '../errors.js';
import { admin, query, seg } from '../http.js';
import { progress } from '../progress.js';
import { status, table, time } from '../output.js';

interface Endpoint {
  id: string;
  name?: string;
  url: string;
  events?: string[];
  is_active: boolean;
  is_healthy: boolean;
  circuit_state?: string;
}

interface Delivery {
  id: string;
  event_type?: string;
  status: string;
  attempts?: Array<{ response_status_code?: number }>;
  response_status_code?: number;
  created_at?: string;
  updated_at?: string;
}

/** The HTTP status of the delivery's last attempt, when it got an answer. */
function lastHttp(d: Delivery): number | undefined {
  return d.attempts?.at(-1)?.response_status_code ?? d.response_status_code;
}

const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'];

async function list(
  ctx: Ctx,
  [endpointId]: string[],
  o: { status?: string; limit?: string; cursor?: string },
): Promise<void> {
  const { out } = ctx;
  if (endpointId === undefined) {
    if (o.status !== undefined || o.cursor !== undefined)
      throw usage(
        '--status and --cursor list the deliveries of one endpoint: keel webhooks ls <endpointId> --status failed',
      );
    const { body } = await admin<{ endpoints: Endpoint[] }>(ctx.target, '/webhooks');
    if (out.json) return out.data(body);
    if (body.endpoints.length === 0) return out.line('no webhook endpoints');
    out.line(
      table(
        out,
        ['ID', 'NAME', 'URL', 'EVENTS', 'ACTIVE', 'HEALTH', 'CIRCUIT'],
        body.endpoints.map((e) => [
          e.id,
          e.name ?? '',
          e.url,
          (e.events ?? []).join(',') || '*',
          e.is_active ? 'yes' : 'no',
          status(out, e.is_healthy ? 'healthy' : 'unhealthy'),
          e.circuit_state ?? '',
        ]),
      ),
    );
    return;
  }
  if (o.status !== undefined && !DELIVERY_STATUSES.includes(o.status))
    throw usage(`--status must be one of ${DELIVERY_STATUSES.join(', ')}, not "${o.status}"`);
  const q = query({
    status: o.status,
    limit: o.limit === undefined ? undefined : positiveInt(o.limit, '--limit', 1000),
    cursor: o.cursor,
  });
  const { body } = await admin<{ deliveries: Delivery[]; next_cursor?: string }>(
    ctx.target,
    `/webhooks/${seg(endpointId)}/deliveries${q}`,
  );
  if (out.json) return out.data(body);
  if (body.deliveries.length === 0) return out.line('no deliveries');
  out.line(
    table(
      out,
      ['DELIVERY', 'EVENT', 'STATUS', 'ATTEMPTS', 'LAST HTTP', 'CREATED'],
      body.deliveries.map((d) => [
        d.id,
        d.event_type ?? '',
        status(out, d.status),
        String(d.attempts?.length ?? ''),
        String(lastHttp(d) ?? ''),
        time(d.created_at),
      ]),
    ),
  );
  if (body.next_cursor !== undefined)
    out.note(`more: keel webhooks ls ${endpointId} --cursor ${body.next_cursor}`);
}

async function retry(ctx: Ctx, [deliveryId]: string[]): Promise<void> {
  const { body } = await admin<Delivery>(
    ctx.target,
    `/webhooks/deliveries/${seg(deliveryId!)}/retry`,
    {
      method: 'POST',
    },
  );
  const { out } = ctx;
  if (out.json) return out.data(body);
  out.line(
    `${body.id}: ${status(out, body.status)} after ${body.attempts?.length ?? '?'} attempts` +
      (lastHttp(body) === undefined ? '' : ` (last HTTP ${lastHttp(body)})`),
  );
}

async function replay(
  ctx: Ctx,
  [endpointId]: string[],
  o: { since: string; wait?: boolean },
): Promise<void> {
  // The admin API reads `since` itself: ISO, epoch ms, or a duration back from now.
  const since = /^\d+$/.test(o.since) ? Number(o.since) : o.since;
  const { body } = await admin<{ replayed: number; deliveries: string[]; attempts?: number[] }>(
    ctx.target,
    `/webhooks/${seg(endpointId!)}/replay`,
    { method: 'POST', body: { since } },
  );
  const { out } = ctx;
  if (o.wait) return follow(ctx, endpointId!, body.deliveries, body.attempts ?? []);
  if (out.json) return out.data(body);
  out.line(
    `replaying ${body.replayed} failed deliver${body.replayed === 1 ? 'y' : 'ies'} of ${endpointId} since ${o.since}`,
  );
  for (const id of body.deliveries) out.line(`  ${id}`);
  if (body.replayed > 0)
    out.note(`follow them: keel webhooks ls ${endpointId} (or replay with --wait)`);
}

/**
 * `replay --wait`: follows the replayed deliveries until each is delivered or has failed again
 * (its retries spent), with a progress bar on a terminal. Exits 7 when some failed again, so a
 * script can tell a replay that emptied the dead-letter queue from one that did not.
 */
async function follow(
  ctx: Ctx,
  endpointId: string,
  ids: string[],
  /** Each delivery's attempts before the replay: settled once it has more and is not pending. */
  before: number[],
): Promise<void> {
  const { out } = ctx;
  const bar = progress(out, 'replaying');
  bar.start(ids.length);
  const settled = new Map<string, Delivery>();
  for (;;) {
    // One delivery at a time: a replay is rarely large, and the admin API answers fast.
    for (const [i, id] of ids.entries()) {
      if (settled.has(id)) continue;
      const { body } = await admin<Delivery>(ctx.target, `/webhooks/deliveries/${seg(id)}`);
      const attempted = (body.attempts?.length ?? 0) > (before[i] ?? 0);
      if (attempted && body.status !== 'pending') settled.set(id, body);
    }
    bar.update(settled.size);
    if (settled.size === ids.length) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  bar.stop();
  const deliveries = ids.map((id) => settled.get(id)!);
  const failed = deliveries.filter((d) => d.status !== 'delivered');
  if (out.json)
    out.data({ replayed: ids.length, delivered: ids.length - failed.length, deliveries });
  else {
    out.line(
      `replayed ${ids.length} deliver${ids.length === 1 ? 'y' : 'ies'} of ${endpointId}: ` +
        `${ids.length - failed.length} delivered, ${failed.length} failed again`,
    );
    for (const d of failed)
      out.line(`  ${d.id}  ${status(out, d.status)}  last HTTP ${lastHttp(d) ?? '-'}`);
  }
  if (failed.length > 0)
    throw new CliError(
      'partial',
      `${failed.length} of the ${ids.length} replayed deliveries failed again`,
      EXIT.partial,
    );
}

interface IntegrationRow {
  name: string;
  kind: string;
  type: string;
  status: string;
  circuit_state?: string;
  error_rate?: number;
  health_check?: string;
}

async function integrationsStatus(ctx: Ctx): Promise<void> {
  const { body } = await admin<{ integrations: IntegrationRow[] }>(
    ctx.target,
    '/integrations/status',
  );
  const { out } = ctx;
  if (out.json) return out.data(body);
  if (body.integrations.length === 0) return out.line('no integrations');
  out.line(
    table(
      out,
      ['NAME', 'KIND', 'TYPE', 'STATUS', 'CIRCUIT', 'ERROR RATE', 'HEALTH CHECK'],
      body.integrations.map((i) => [
        i.name,
        i.kind,
        i.type,
        status(out, i.status),
        i.circuit_state === undefined ? '' : status(out, i.circuit_state),
        i.error_rate === undefined ? '' : `${(i.error_rate * 100).toFixed(1)}%`,
        i.health_check ?? '',
      ]),
    ),
  );
}

async function integrationsReset(ctx: Ctx, [name]: string[]): Promise<void> {
  const { body } = await admin(ctx.target, `/integrations/${seg(name!)}/circuit/reset`, {
    method: 'POST',
  });
  const { out } = ctx;
  if (out.json) return out.data(body);
  out.line(`${name}: circuit closed`);
}

export function registerWebhooks(program: Command): void {
  const webhooks = program
    .command('webhooks')
    .description('outbound webhook endpoints and deliveries');
  webhooks
    .command('ls [endpointId]')
    .description('the endpoints; with an endpoint id, its deliveries, newest first')
    .option('--status <status>', `deliveries with this status (${DELIVERY_STATUSES.join(', ')})`)
    .option('--limit <n>', 'at most this many deliveries (1-1000, default 50)')
    .option('--cursor <cursor>', 'the next page of deliveries')
    .action(act(list));
  webhooks
    .command('retry <deliveryId>')
    .description('attempt a failed (dead-lettered) delivery once more, now')
    .action(act(retry));
  webhooks
    .command('replay <endpointId>')
    .description('retry every failed delivery of an endpoint since a time')
    .option('--since <time>', 'ISO time, epoch ms, or a duration back from now', '24h')
    .option(
      '--wait',
      'follow the replayed deliveries (a progress bar) until each is delivered or failed again; exit 7 if any failed',
    )
    .action(act(replay));
}

export function registerIntegrations(program: Command): void {
  const integrations = program
    .command('integrations')
    .description("integrations' health, circuits and error rates");
  integrations
    .command('status')
    .description('every integration, database and broker: status, circuit, error rate')
    .action(act(integrationsStatus));
  integrations
    .command('reset <name>')
    .description("close an integration's circuit, for every process")
    .action(act(integrationsReset));
}
