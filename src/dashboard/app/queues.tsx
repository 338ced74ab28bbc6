/** Flow-control queues: limits, waiting and running invocations, the oldest wait. */
import { api } from './api.js';
import { useLoad } from './hooks.js';
import { href } from './router.js';
import { formatMs, Loading, Time } from './ui.js';

interface Rate {
  limit: number;
  periodMs: number;
}

interface QueueRow {
  name: string;
  limits: {
    concurrency?: number;
    rateLimit?: Rate;
    perKey?: { concurrency?: number; rateLimit?: Rate };
  };
  waiting: number;
  running: number;
  keys: number;
  oldestWaitingSince?: number;
}

const rate = (r: Rate | undefined): string =>
  r === undefined ? '—' : `${r.limit} per ${formatMs(r.periodMs)}`;

export function QueuesPage() {
  const queues = useLoad(() => api<{ queues: QueueRow[] }>('/queues'), 'queues', 3000);
  const rows = queues.data?.queues ?? [];
  return (
    <section aria-labelledby="q-title">
      <div class="page-head">
        <h1 id="q-title">Queues</h1>
        <a href={href(['invocations'], { status: 'queued' })}>Queued invocations</a>
      </div>
      <Loading error={queues.error} loading={queues.loading} what="Queues">
        {queues.data && rows.length === 0 && (
          <p class="empty">No handler waits in a queue (declare one with queue(&#123;…&#125;)).</p>
        )}
        {rows.length > 0 && (
          <table class="grid" data-testid="queues">
            <thead>
              <tr>
                <th scope="col">Queue</th>
                <th scope="col">Waiting</th>
                <th scope="col">Running</th>
                <th scope="col">Concurrency</th>
                <th scope="col">Rate</th>
                <th scope="col">Per key</th>
                <th scope="col">Keys waiting</th>
                <th scope="col">Oldest wait since</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((q) => (
                <tr key={q.name} data-testid={`queue-${q.name}`}>
                  <td class="name">{q.name}</td>
                  <td data-testid="waiting">{q.waiting}</td>
                  <td data-testid="running">{q.running}</td>
                  <td>{q.limits.concurrency ?? '—'}</td>
                  <td>{rate(q.limits.rateLimit)}</td>
                  <td>
                    {q.limits.perKey
                      ? `${q.limits.perKey.concurrency ?? '—'} at once, ${rate(q.limits.perKey.rateLimit)}`
                      : '—'}
                  </td>
                  <td>{q.keys}</td>
                  <td>
                    {q.oldestWaitingSince === undefined ? (
                      '—'
                    ) : (
                      <Time iso={new Date(q.oldestWaitingSince).toISOString()} />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loading>
    </section>
  );
}
