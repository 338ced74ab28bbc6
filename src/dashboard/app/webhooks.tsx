/** Webhooks: endpoints, each one's delivery log and dead letters, retries and bulk replay. */
import { useState } from 'preact/hooks';
import { api, qs, seg } from './api.js';
import { useLoad } from './hooks.js';
import { href, type Route } from './router.js';
import { ActionButton, formatMs, Json, Loading, StatusBadge, Time } from './ui.js';

interface Endpoint {
  id: string;
  name?: string;
  url: string;
  events: string[];
  is_active: boolean;
  is_healthy: boolean;
  circuit_state: string;
  disabled_reason?: string;
}

interface Attempt {
  attempt: number;
  at: string;
  duration_ms: number;
  response_status_code?: number;
  response_body?: string;
  error?: string;
  error_code?: string;
  manual?: boolean;
}

interface Delivery {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  status: string;
  created_at: string;
  updated_at: string;
  next_attempt_at?: string;
  failure_reason?: string;
  attempts: Attempt[];
  payload?: unknown;
  test?: boolean;
}

export function WebhooksPage({ route }: { route: Route }) {
  const endpointId = route.path[1];
  const endpoints = useLoad(() => api<{ endpoints: Endpoint[] }>('/webhooks'), 'endpoints', 5000);
  return (
    <section aria-labelledby="wh-title">
      <div class="page-head">
        <h1 id="wh-title">Webhooks</h1>
      </div>
      <Loading error={endpoints.error} loading={endpoints.loading} what="Webhooks">
        {endpoints.data && endpoints.data.endpoints.length === 0 && (
          <p class="empty">No endpoint. Create one with POST /webhooks.</p>
        )}
        {endpoints.data && endpoints.data.endpoints.length > 0 && (
          <table class="grid" data-testid="endpoints">
            <thead>
              <tr>
                <th scope="col">Endpoint</th>
                <th scope="col">URL</th>
                <th scope="col">Events</th>
                <th scope="col">State</th>
                <th scope="col">Circuit</th>
              </tr>
            </thead>
            <tbody>
              {endpoints.data.endpoints.map((e) => (
                <tr key={e.id} aria-current={e.id === endpointId ? 'true' : undefined}>
                  <td>
                    <a href={href(['webhooks', e.id])}>{e.name ?? e.id}</a>
                    {e.name && <div class="mono muted small">{e.id}</div>}
                  </td>
                  <td class="mono small">{e.url}</td>
                  <td class="small">{e.events.join(', ')}</td>
                  <td>
                    {e.is_active ? (
                      <span class={`badge health-${e.is_healthy ? 'healthy' : 'degraded'}`}>
                        {e.is_healthy ? 'healthy' : 'unhealthy'}
                      </span>
                    ) : (
                      <span class="badge health-unhealthy" title={e.disabled_reason}>
                        disabled
                      </span>
                    )}
                  </td>
                  <td>
                    <span class={`badge circuit-${e.circuit_state}`}>{e.circuit_state}</span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loading>
      {endpointId !== undefined && (
        <Deliveries
          endpointId={endpointId}
          status={route.query.get('status') ?? undefined}
          open={route.query.get('delivery') ?? undefined}
        />
      )}
    </section>
  );
}

function Deliveries({
  endpointId,
  status,
  open,
}: {
  endpointId: string;
  status: string | undefined;
  open: string | undefined;
}) {
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const list = useLoad(
    () =>
      api<{ deliveries: Delivery[]; next_cursor?: string }>(
        `/webhooks/${seg(endpointId)}/deliveries${qs({ status, cursor, limit: 50 })}`,
      ),
    `${endpointId}|${status ?? ''}|${cursor ?? ''}`,
    3000,
  );
  const tab = (label: string, s: string | undefined) => (
    <a
      href={href(['webhooks', endpointId], { status: s })}
      aria-current={status === s ? 'page' : undefined}
      onClick={() => setCursor(undefined)}
    >
      {label}
    </a>
  );
  return (
    <>
      <h2>Deliveries</h2>
      <nav class="tabs" aria-label="Deliveries">
        {tab('All', undefined)}
        {tab('Dead letters', 'failed')}
        {tab('Pending', 'pending')}
        {tab('Delivered', 'delivered')}
      </nav>
      {status === 'failed' && <Replay endpointId={endpointId} onDone={list.reload} />}
      {/* Outside the list: a retried dead letter leaves the "failed" list but stays in view. */}
      {open !== undefined && <DeliveryView key={open} id={open} onChanged={list.reload} />}
      <Loading error={list.error} loading={list.loading} what="The delivery log">
        {list.data && (
          <>
            {list.data.deliveries.length === 0 && <p class="empty">No delivery here.</p>}
            <ul class="plain deliveries" data-testid="deliveries">
              {list.data.deliveries.map((d) => (
                <li key={d.id}>
                  <a
                    href={href(['webhooks', endpointId], {
                      status,
                      delivery: open === d.id ? undefined : d.id,
                    })}
                    aria-expanded={open === d.id}
                    class="delivery-row"
                  >
                    <StatusBadge status={d.status === 'failed' ? 'dead-letter' : d.status} />
                    <span class="mono">{d.event_type}</span>
                    <span class="muted small">{d.attempts.length} attempts</span>
                    {d.failure_reason && <span class="err small">{d.failure_reason}</span>}
                    <span class="spacer" />
                    <Time iso={d.updated_at} />
                  </a>
                </li>
              ))}
            </ul>
            <nav class="pager" aria-label="Pages">
              <button
                type="button"
                disabled={cursor === undefined}
                onClick={() => setCursor(undefined)}
              >
                Newest
              </button>
              <button
                type="button"
                disabled={list.data.next_cursor === undefined}
                onClick={() => setCursor(list.data?.next_cursor)}
              >
                Older
              </button>
            </nav>
          </>
        )}
      </Loading>
    </>
  );
}

function DeliveryView({ id, onChanged }: { id: string; onChanged: () => void }) {
  const d = useLoad(() => api<Delivery>(`/webhooks/deliveries/${seg(id)}`), id);
  return (
    <div class="card delivery" data-testid="delivery">
      <Loading error={d.error} loading={d.loading} what="This delivery">
        {d.data && (
          <>
            <dl class="facts">
              <dt>Delivery</dt>
              <dd class="mono">{d.data.id}</dd>
              <dt>Event</dt>
              <dd class="mono">
                {d.data.event_type} ({d.data.event_id})
              </dd>
              <dt>Status</dt>
              <dd>
                <StatusBadge status={d.data.status} />
              </dd>
              {d.data.next_attempt_at && (
                <>
                  <dt>Next attempt</dt>
                  <dd>
                    <Time iso={d.data.next_attempt_at} />
                  </dd>
                </>
              )}
            </dl>
            <h3>Request</h3>
            <Json value={d.data.payload} open />
            <h3>Attempts</h3>
            <ol class="attempts">
              {d.data.attempts.map((a) => (
                <li key={a.attempt}>
                  <strong>#{a.attempt}</strong> <Time iso={a.at} /> · {formatMs(a.duration_ms)} ·{' '}
                  {a.response_status_code !== undefined ? (
                    <span class={a.response_status_code < 300 ? 'ok' : 'err'}>
                      HTTP {a.response_status_code}
                    </span>
                  ) : (
                    <span class="err">{a.error_code ?? 'no response'}</span>
                  )}
                  {a.manual && <span class="badge">manual</span>}
                  {a.error && <div class="err small">{a.error}</div>}
                  {a.response_body !== undefined && a.response_body !== '' && (
                    <pre class="small">{a.response_body}</pre>
                  )}
                </li>
              ))}
            </ol>
            {d.data.status !== 'delivered' && (
              <ActionButton
                label="Retry now"
                run={() => api(`/webhooks/deliveries/${seg(id)}/retry`, { method: 'POST' })}
                onDone={() => {
                  d.reload();
                  onChanged();
                }}
                testId="retry-delivery"
              />
            )}
          </>
        )}
      </Loading>
    </div>
  );
}

/** Replays every dead letter of an endpoint since a time. */
function Replay({ endpointId, onDone }: { endpointId: string; onDone: () => void }) {
  const [since, setSince] = useState('24h');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ replayed: number } | undefined>(undefined);
  return (
    <div class="bulk-body">
      <label>
        Replay dead letters of the last
        <select value={since} onChange={(e) => setSince(e.currentTarget.value)}>
          <option value="1h">hour</option>
          <option value="24h">day</option>
          <option value="7d">week</option>
        </select>
      </label>
      <ActionButton
        label="Replay"
        confirm="Send every dead letter of that period again?"
        run={async () => {
          setBusy(true);
          setResult(undefined);
          try {
            return await api<{ replayed: number }>(`/webhooks/${seg(endpointId)}/replay`, {
              method: 'POST',
              body: { since },
            });
          } finally {
            setBusy(false);
          }
        }}
        onDone={(r) => {
          setResult(r as { replayed: number });
          onDone();
        }}
      />
      {busy && <progress aria-label="replaying" />}
      {result && (
        <span role="status">
          {result.replayed} {result.replayed === 1 ? 'delivery' : 'deliveries'} replayed.
        </span>
      )}
    </div>
  );
}
