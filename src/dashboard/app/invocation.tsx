/** One invocation: its facts, its actions, and its journal as a timeline. */
import { api, seg } from './api.js';
import { useLoad } from './hooks.js';
import { href, navigate } from './router.js';
import type { InvocationInfo, JournalEntry } from './types.js';
import { ActionButton, formatMs, Json, Loading, StatusBadge, Time } from './ui.js';

const FINISHED = new Set(['completed', 'failed']);

export function InvocationPage({ id }: { id: string }) {
  const info = useLoad(() => api<InvocationInfo>(`/invocations/${seg(id)}`), id, 2000);
  const journal = useLoad(
    () => api<{ entries: JournalEntry[] }>(`/invocations/${seg(id)}/journal`),
    id,
    2000,
  );
  const inv = info.data;
  const refresh = (): void => {
    info.reload();
    journal.reload();
  };
  const act = (action: string) => () =>
    api(`/invocations/${seg(id)}/${action}`, { method: 'POST' });

  return (
    <section aria-labelledby="one-title">
      <p class="crumbs">
        <a href={href(['invocations'])}>Invocations</a> /
      </p>
      <div class="page-head">
        <h1 id="one-title" class="mono">
          {id}
        </h1>
        {inv && <StatusBadge status={inv.status} />}
        {inv?.outcome && <span class="badge">{inv.outcome}</span>}
      </div>
      <Loading error={info.error} loading={info.loading && !inv} what="This invocation">
        {inv && (
          <>
            <dl class="facts">
              <dt>Target</dt>
              <dd class="mono">
                <a href={href(['invocations'], { service: inv.service })}>{inv.target}</a>
              </dd>
              <dt>Attempt</dt>
              <dd>{inv.attempt}</dd>
              <dt>Created</dt>
              <dd>
                <Time iso={inv.createdAt} />
              </dd>
              <dt>Updated</dt>
              <dd>
                <Time iso={inv.modifiedAt} />
              </dd>
              {inv.completedAt && (
                <>
                  <dt>Completed</dt>
                  <dd>
                    <Time iso={inv.completedAt} />
                  </dd>
                </>
              )}
              {inv.nextAttemptAt && (
                <>
                  <dt>Next attempt</dt>
                  <dd>
                    <Time iso={inv.nextAttemptAt} />
                  </dd>
                </>
              )}
              {inv.idempotencyKey && (
                <>
                  <dt>Idempotency key</dt>
                  <dd class="mono">{inv.idempotencyKey}</dd>
                </>
              )}
              {inv.cancel && (
                <>
                  <dt>Cancellation</dt>
                  <dd>{inv.cancel}</dd>
                </>
              )}
              {inv.error && (
                <>
                  <dt>Error</dt>
                  <dd class="err">
                    <code>{inv.error.code ?? 'error'}</code> {inv.error.message}
                  </dd>
                </>
              )}
            </dl>
            <div class="actions" role="group" aria-label="Actions">
              <ActionButton
                label="Cancel"
                run={act('cancel')}
                disabled={FINISHED.has(inv.status)}
                confirm="Cancel it? Its handler sees a cancellation at its next await and runs its compensations."
                onDone={refresh}
              />
              <ActionButton
                label="Pause"
                run={act('pause')}
                disabled={FINISHED.has(inv.status) || inv.status === 'paused'}
                onDone={refresh}
              />
              <ActionButton
                label="Resume"
                run={act('resume')}
                disabled={inv.status !== 'paused'}
                onDone={refresh}
              />
              <ActionButton
                label="Retry now"
                run={act('retry-now')}
                disabled={inv.status !== 'backing-off' && inv.status !== 'scheduled'}
                onDone={refresh}
              />
              <ActionButton
                label="Restart as new"
                run={act('restart')}
                confirm="Start a new invocation with the same target, key and input?"
                onDone={(r) => {
                  const next = (r as { invocation?: { id?: string } } | undefined)?.invocation?.id;
                  if (next) navigate(href(['invocations', next]));
                }}
              />
              <ActionButton
                label="Kill"
                danger
                run={act('kill')}
                disabled={FINISHED.has(inv.status)}
                confirm="Kill it now? It ends at once: no compensation runs."
                onDone={refresh}
              />
              <ActionButton
                label="Purge"
                danger
                run={act('purge')}
                disabled={!FINISHED.has(inv.status)}
                confirm="Delete it and its journal for good?"
                onDone={() => navigate(href(['invocations']))}
              />
            </div>
          </>
        )}
      </Loading>
      <h2>Journal</h2>
      <Loading
        error={info.error ? undefined : journal.error}
        loading={journal.loading && !journal.data}
        what="The journal"
      >
        {journal.data && (
          <Timeline
            entries={journal.data.entries}
            // A finished invocation restarts from an entry: the entries before it are kept.
            restartFrom={
              inv && FINISHED.has(inv.status)
                ? (index) => () =>
                    api(`/invocations/${seg(id)}/restart`, {
                      method: 'POST',
                      body: { fromEntry: index },
                    })
                : undefined
            }
          />
        )}
      </Loading>
    </section>
  );
}

/** What an entry that waits is waiting for. */
const WAITS: Record<string, string> = {
  sleep: 'timer',
  awakeable: 'awakeable',
  promise: 'durable promise',
  call: 'call',
};

function time(t: string | number | undefined): string | undefined {
  if (t === undefined) return undefined;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function Timeline({
  entries,
  restartFrom,
}: {
  entries: JournalEntry[];
  /** When set, each entry offers "Restart from here" (a new invocation keeping the ones before). */
  restartFrom?: (index: number) => () => Promise<unknown>;
}) {
  if (entries.length === 0) return <p class="empty">No journal entry yet.</p>;
  return (
    <ol class="timeline" data-testid="timeline">
      {entries.map((e) => {
        const waits = WAITS[e.kind];
        const state = e.error ? 'failed' : e.done ? 'done' : 'waiting';
        const started = time(e.startedAt);
        const completed = waits && e.done ? time(e.completedAt) : undefined;
        // How long a wait took: from when it was recorded to when its completion was.
        const waited =
          started && completed ? Date.parse(completed) - Date.parse(started) : undefined;
        return (
          <li key={e.index} class={`entry ${state}`} data-kind={e.kind}>
            <span class="idx" aria-label="index">
              {e.index}
            </span>
            <div class="entry-body">
              <div class="entry-head">
                <span class="kind">{e.kind}</span>
                <span class="name">{e.name || <span class="muted">(unnamed)</span>}</span>
                <span class={`state ${state}`}>{state}</span>
              </div>
              <div class="entry-meta">
                {started && (
                  <span>
                    started <Time iso={started} />
                  </span>
                )}
                {e.durationMs !== undefined && (
                  <span>
                    took{' '}
                    {e.durationMs < 10 ? `${e.durationMs.toFixed(1)} ms` : formatMs(e.durationMs)}
                  </span>
                )}
                {e.attempts !== undefined && e.attempts > 1 && <span>{e.attempts} attempts</span>}
                {waits && (
                  <span>
                    {e.done && (e.completedBy || !e.error)
                      ? 'completed by'
                      : e.error
                        ? 'waited for'
                        : 'waits for'}{' '}
                    {e.completedBy ?? waits}
                    {e.kind === 'sleep' && !e.done && e.wakeAt !== undefined && (
                      <>
                        {' '}
                        (wakes <Time iso={new Date(e.wakeAt).toISOString()} />)
                      </>
                    )}
                  </span>
                )}
                {completed && (
                  <span>
                    completed <Time iso={completed} />
                  </span>
                )}
                {waited !== undefined && waited >= 0 && <span>waited {formatMs(waited)}</span>}
                {restartFrom && (
                  <ActionButton
                    label="Restart from here"
                    testId={`restart-from-${e.index}`}
                    run={restartFrom(e.index)}
                    confirm={`Start a new invocation with entries 0 to ${e.index - 1} of this journal, running the rest again?`}
                    onDone={(r) => {
                      const next = (r as { invocation?: { id?: string } } | undefined)?.invocation
                        ?.id;
                      if (next) navigate(href(['invocations', next]));
                    }}
                  />
                )}
                {e.calleeId && (
                  <span>
                    callee{' '}
                    <a class="mono" href={href(['invocations', e.calleeId])}>
                      {e.calleeId}
                    </a>
                  </span>
                )}
              </div>
              {e.error ? (
                <div class="err">
                  <code>{e.error.code ?? 'error'}</code> {e.error.message}
                </div>
              ) : (
                e.value !== undefined && (
                  <div class="value">
                    <Json value={e.value} />
                  </div>
                )
              )}
            </div>
          </li>
        );
      })}
    </ol>
  );
}
