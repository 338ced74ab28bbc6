/** Integrations: circuit, error rate, latency, rate-limit headroom, health checks; charts; reset. */
import { api, seg } from './api.js';
import { useLoad } from './hooks.js';
import { ActionButton, formatMs, Loading, Time } from './ui.js';

interface StatusRow {
  name: string;
  kind: string;
  type: string;
  status: string;
  circuit_state?: string;
  error_rate?: number;
  health_check?: string;
}

interface Health {
  latency_p50?: number | null;
  latency_p99?: number | null;
  rate_limit?: { used: number; limit: number; server_remaining?: number };
  retry_in_ms?: number;
  last_error?: { at: string; message: string; status?: number } | null;
  probe?: {
    last_probe_at: string | null;
    latency_ms: number | null;
    last_error: { message: string } | null;
  };
  attempts?: number;
  mock?: boolean;
}

interface Bucket {
  t: string;
  calls: number;
  errors: number;
  p50: number | null;
  p99: number | null;
}

export function IntegrationsPage() {
  const status = useLoad(
    () => api<{ integrations: StatusRow[] }>('/integrations/status'),
    'status',
    5000,
  );
  const rows = status.data?.integrations ?? [];
  return (
    <section aria-labelledby="int-title">
      <div class="page-head">
        <h1 id="int-title">Integrations</h1>
      </div>
      <Loading error={status.error} loading={status.loading} what="Integrations">
        {status.data && rows.length === 0 && <p class="empty">No integration is declared.</p>}
        {rows.length > 0 && (
          <table class="grid" data-testid="integrations">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kind</th>
                <th scope="col">Status</th>
                <th scope="col">Circuit</th>
                <th scope="col" class="num">
                  Error rate
                </th>
                <th scope="col" class="num">
                  p50 / p99
                </th>
                <th scope="col">Rate limit</th>
                <th scope="col">Health check</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <IntegrationRow key={r.name} row={r} onReset={status.reload} />
              ))}
            </tbody>
          </table>
        )}
        {rows
          .filter((r) => r.kind === 'api')
          .map((r) => (
            <Charts key={r.name} name={r.name} />
          ))}
      </Loading>
    </section>
  );
}

function IntegrationRow({ row, onReset }: { row: StatusRow; onReset: () => void }) {
  const health = useLoad(
    () => api<Health>(`/integrations/${seg(row.name)}/health`),
    `${row.name}|${row.circuit_state ?? ''}|${row.status}`,
    5000,
  );
  const h = health.data;
  const rl = h?.rate_limit;
  return (
    <tr data-testid={`integration-${row.name}`}>
      <th scope="row">
        {row.name} {h?.mock && <span class="badge">mock</span>}
      </th>
      <td>
        {row.kind} <span class="muted small">{row.type}</span>
      </td>
      <td>
        <span class={`badge health-${row.status}`}>{row.status}</span>
      </td>
      <td>
        {row.circuit_state === undefined ? (
          '–'
        ) : (
          <span class={`badge circuit-${row.circuit_state}`} data-testid="circuit">
            {row.circuit_state}
          </span>
        )}
        {h?.retry_in_ms !== undefined && (
          <span class="muted small"> probe in {formatMs(h.retry_in_ms)}</span>
        )}
      </td>
      <td class="num">
        {row.error_rate === undefined ? '–' : `${(row.error_rate * 100).toFixed(1)}%`}
      </td>
      <td class="num">{h ? `${formatMs(h.latency_p50)} / ${formatMs(h.latency_p99)}` : '–'}</td>
      <td>
        {rl ? (
          <span title={`${rl.used} of ${rl.limit} used`}>
            <meter min={0} max={rl.limit} value={rl.limit - rl.used} low={rl.limit * 0.2} />{' '}
            {rl.limit - rl.used} left
          </span>
        ) : (
          <span class="muted">none</span>
        )}
      </td>
      <td>
        {row.health_check ?? <span class="muted">none</span>}
        {h?.probe?.last_probe_at && (
          <span class="muted small">
            {' '}
            <Time iso={h.probe.last_probe_at} />
          </span>
        )}
        {h?.probe?.last_error && <div class="err small">{h.probe.last_error.message}</div>}
      </td>
      <td>
        {row.kind === 'api' && row.circuit_state !== undefined && row.circuit_state !== 'none' && (
          <ActionButton
            label="Reset circuit"
            disabled={row.circuit_state === 'closed'}
            run={() => api(`/integrations/${seg(row.name)}/circuit/reset`, { method: 'POST' })}
            onDone={onReset}
            testId={`reset-${row.name}`}
          />
        )}
      </td>
    </tr>
  );
}

function Charts({ name }: { name: string }) {
  const history = useLoad(
    () => api<{ buckets: Bucket[] }>(`/integrations/${seg(name)}/history`),
    name,
    10_000,
  );
  if (history.error?.notAvailable)
    return (
      <p class="muted small" data-testid="not-available">
        {name}: latency history is not available on this server.
      </p>
    );
  const b = history.data?.buckets ?? [];
  return (
    <figure class="card charts" aria-label={`${name} over the last hour`}>
      <figcaption>{name}: the last hour, per minute (UTC)</figcaption>
      {history.data && b.length === 0 && <p class="muted">No call in the last hour.</p>}
      {b.length > 0 && (
        <div class="chart-row">
          <LineChart
            title="Latency (ms)"
            series={[
              { label: 'p50', cls: 's1', values: b.map((x) => x.p50) },
              { label: 'p99', cls: 's2', values: b.map((x) => x.p99) },
            ]}
            times={b.map((x) => x.t)}
          />
          <LineChart
            title="Error rate (%)"
            series={[
              {
                label: 'errors',
                cls: 's3',
                values: b.map((x) => (x.calls === 0 ? null : (100 * x.errors) / x.calls)),
              },
            ]}
            times={b.map((x) => x.t)}
            max={100}
          />
        </div>
      )}
    </figure>
  );
}

const W = 360;
const H = 120;
const PAD = 28;

/** A small hand-drawn line chart; gaps where a minute had no call. */
function LineChart({
  title,
  series,
  times,
  max,
}: {
  title: string;
  series: Array<{ label: string; cls: string; values: Array<number | null> }>;
  times: string[];
  max?: number;
}) {
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const top = max ?? Math.max(1, ...all) * 1.1;
  const n = Math.max(times.length - 1, 1);
  const x = (i: number): number => PAD + ((W - PAD - 4) * i) / n;
  const y = (v: number): number => H - 16 - ((H - 24) * v) / top;
  const paths = series.map((s) => {
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    return { ...s, d };
  });
  const first = times[0];
  const last = times[times.length - 1];
  return (
    <div class="chart">
      <div class="chart-title">
        {title}{' '}
        {series.map((s) => (
          <span key={s.label} class={`legend ${s.cls}`}>
            {s.label}
          </span>
        ))}
      </div>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title}>
        <line class="axis" x1={PAD} y1={H - 16} x2={W - 4} y2={H - 16} />
        <line class="axis" x1={PAD} y1={8} x2={PAD} y2={H - 16} />
        <text class="tick" x={PAD - 4} y={12} text-anchor="end">
          {Math.round(top)}
        </text>
        <text class="tick" x={PAD - 4} y={H - 16} text-anchor="end">
          0
        </text>
        {first && (
          <text class="tick" x={PAD} y={H - 2}>
            {first.slice(11, 16)}
          </text>
        )}
        {last && (
          <text class="tick" x={W - 4} y={H - 2} text-anchor="end">
            {last.slice(11, 16)}
          </text>
        )}
        {paths.map((p) => (
          <path key={p.label} class={`line ${p.cls}`} d={p.d} />
        ))}
        {paths.map((p) =>
          p.values.map((v, i) =>
            v === null ? null : (
              <circle key={`${p.label}${i}`} class={`dot ${p.cls}`} cx={x(i)} cy={y(v)} r={1.8}>
                <title>{`${times[i] ?? ''} ${p.label}: ${Math.round(v)}`}</title>
              </circle>
            ),
          ),
        )}
      </svg>
    </div>
  );
}
