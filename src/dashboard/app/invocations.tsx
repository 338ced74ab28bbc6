/** The invocations list: filters in the URL, cursor paging, live every 2 s, bulk actions. */
import { useEffect, useState } from 'preact/hooks';
import { api, qs } from './api.js';
import { useLoad } from './hooks.js';
import { href, navigate, type Route } from './router.js';
import { STATUSES, type BulkJob, type InvocationInfo } from './types.js';
import { ActionButton, ErrorBanner, Loading, StatusBadge, Time, useSession } from './ui.js';

const FILTERS = ['status', 'service', 'handler', 'key', 'error', 'since', 'until'] as const;
type Filter = Partial<Record<(typeof FILTERS)[number], string>>;

function filterOf(query: URLSearchParams): Filter {
  const f: Filter = {};
  for (const name of FILTERS) {
    const v = query.get(name);
    if (v !== null && v !== '') f[name] = v;
  }
  return f;
}

/** ISO → the value of a `datetime-local` input (local time, minutes). */
function toLocalInput(iso: string | undefined): string {
  if (iso === undefined) return '';
  const d = new Date(/^\d+$/.test(iso) ? Number(iso) : iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

function fromLocalInput(v: string): string | undefined {
  if (v === '') return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function InvocationsPage({ route }: { route: Route }) {
  const filter = filterOf(route.query);
  const cursor = route.query.get('cursor') ?? undefined;
  const [live, setLive] = useState(true);
  const key = JSON.stringify([filter, cursor]);
  const list = useLoad(
    () =>
      api<{ invocations: InvocationInfo[]; nextCursor?: string }>(
        `/invocations${qs({ ...filter, cursor, limit: 50 })}`,
      ),
    key,
    live ? 2000 : undefined,
  );
  const rows = list.data?.invocations ?? [];
  const go = (f: Filter, c?: string): void => navigate(href(['invocations'], { ...f, cursor: c }));

  return (
    <section aria-labelledby="inv-title">
      <div class="page-head">
        <h1 id="inv-title">Invocations</h1>
        <label class="inline">
          <input
            type="checkbox"
            checked={live}
            onChange={(e) => setLive(e.currentTarget.checked)}
          />
          Live
        </label>
      </div>
      <FilterForm filter={filter} onApply={(f) => go(f)} />
      <BulkBar filter={filter} onFinished={list.reload} />
      <Loading error={list.error} loading={list.loading && !list.data} what="The invocations list">
        {list.data && (
          <>
            <table class="grid" data-testid="invocations">
              <thead>
                <tr>
                  <th scope="col">Invocation</th>
                  <th scope="col">Target</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">
                    Attempt
                  </th>
                  <th scope="col">Created</th>
                  <th scope="col">Updated</th>
                  <th scope="col">Error</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((inv) => (
                  <tr key={inv.id}>
                    <td>
                      <a href={href(['invocations', inv.id])} class="mono">
                        {inv.id}
                      </a>
                    </td>
                    <td class="mono">{inv.target}</td>
                    <td>
                      <StatusBadge status={inv.status} />
                      {inv.outcome && <span class="badge">{inv.outcome}</span>}
                    </td>
                    <td class="num">{inv.attempt}</td>
                    <td>
                      <Time iso={inv.createdAt} />
                    </td>
                    <td>
                      <Time iso={inv.modifiedAt} />
                    </td>
                    <td>
                      {inv.error && (
                        <span class="err" title={inv.error.message}>
                          {inv.error.code ?? 'error'}
                        </span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {rows.length === 0 && <p class="empty">No invocation matches these filters.</p>}
            <nav class="pager" aria-label="Pages">
              <button type="button" disabled={cursor === undefined} onClick={() => go(filter)}>
                Newest
              </button>
              <button
                type="button"
                disabled={list.data.nextCursor === undefined}
                onClick={() => go(filter, list.data?.nextCursor)}
              >
                Older
              </button>
            </nav>
          </>
        )}
      </Loading>
    </section>
  );
}

function FilterForm({ filter, onApply }: { filter: Filter; onApply: (f: Filter) => void }) {
  const [f, setF] = useState<Filter>(filter);
  const key = JSON.stringify(filter);
  useEffect(() => setF(filter), [key]);
  const text = (name: keyof Filter, label: string, extra: Record<string, unknown> = {}) => (
    <label>
      {label}
      <input
        type="text"
        name={name}
        value={f[name] ?? ''}
        autoComplete="off"
        spellcheck={false}
        onInput={(e) => setF({ ...f, [name]: e.currentTarget.value || undefined })}
        {...extra}
      />
    </label>
  );
  return (
    <form
      class="filters"
      role="search"
      aria-label="Filter invocations"
      onSubmit={(e) => {
        e.preventDefault();
        onApply(f);
      }}
    >
      <label>
        Status
        <select
          name="status"
          value={f.status ?? ''}
          onChange={(e) => setF({ ...f, status: e.currentTarget.value || undefined })}
        >
          <option value="">any</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
          {f.status !== undefined && !(STATUSES as readonly string[]).includes(f.status) && (
            <option value={f.status}>{f.status}</option>
          )}
        </select>
      </label>
      {text('service', 'Service', { 'data-filter': true, placeholder: 'press / to filter' })}
      {text('handler', 'Handler')}
      {text('key', 'Key')}
      {text('error', 'Error code')}
      <label>
        Since
        <input
          type="datetime-local"
          name="since"
          value={toLocalInput(f.since)}
          onInput={(e) => setF({ ...f, since: fromLocalInput(e.currentTarget.value) })}
        />
      </label>
      <label>
        Until
        <input
          type="datetime-local"
          name="until"
          value={toLocalInput(f.until)}
          onInput={(e) => setF({ ...f, until: fromLocalInput(e.currentTarget.value) })}
        />
      </label>
      <div class="buttons">
        <button type="submit" class="primary">
          Filter
        </button>
        <button
          type="button"
          onClick={() => {
            setF({});
            onApply({});
          }}
        >
          Clear
        </button>
      </div>
    </form>
  );
}

/** Cancel, purge or restart every invocation the filters match, with a progress bar. */
function BulkBar({ filter, onFinished }: { filter: Filter; onFinished: () => void }) {
  const { readOnly } = useSession();
  const [action, setAction] = useState<'cancel' | 'purge' | 'restart'>('cancel');
  const [job, setJob] = useState<BulkJob | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);

  useEffect(() => {
    if (job === undefined || job.status === 'done') {
      if (job?.status === 'done') onFinished();
      return;
    }
    const t = setTimeout(() => {
      api<{ job: BulkJob }>(`/invocations/bulk/${encodeURIComponent(job.id)}`).then(
        (r) => setJob(r.job),
        (e: unknown) => setError(e),
      );
    }, 500);
    return () => clearTimeout(t);
  }, [job]);

  const described = Object.entries(filter)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const start = async (): Promise<void> => {
    setError(undefined);
    setJob(undefined);
    const r = await api<{ job: BulkJob }>('/invocations/bulk', {
      method: 'POST',
      body: { action, filter },
    });
    setJob(r.job);
  };
  const finished = job ? job.done + job.failed : 0;
  return (
    <details class="bulk">
      <summary>
        Bulk action on every match{described ? ` (${described})` : ' (no filter: all)'}
      </summary>
      <div class="bulk-body">
        <label>
          Action
          <select
            name="bulk-action"
            value={action}
            disabled={readOnly}
            onChange={(e) => setAction(e.currentTarget.value as typeof action)}
          >
            <option value="cancel">cancel</option>
            <option value="purge">purge</option>
            <option value="restart">restart as new</option>
          </select>
        </label>
        <ActionButton
          label="Run"
          danger={action !== 'restart'}
          confirm={`${action} every invocation matching ${described || 'no filter (all of them)'}?`}
          run={start}
          testId="bulk-run"
        />
        {job && (
          <div class="progress" data-testid="bulk-progress">
            <progress max={Math.max(job.matched, 1)} value={finished} />
            <span>
              {job.status === 'done' ? 'Done' : 'Working'}: {job.done} of {job.matched}
              {job.failed > 0 && `, ${job.failed} failed`}
            </span>
            {job.errors.length > 0 && (
              <ul class="small">
                {job.errors.map((e) => (
                  <li key={e.id}>
                    <a href={href(['invocations', e.id])}>{e.id}</a>: <code>{e.code}</code>{' '}
                    {e.message}
                  </li>
                ))}
              </ul>
            )}
          </div>
        )}
        <ErrorBanner error={error} />
      </div>
    </details>
  );
}
