/** Small shared pieces: status badges, times, JSON, error and "not available" states, actions. */
import type { ComponentChildren } from 'preact';
import { createContext } from 'preact';
import { useContext, useState } from 'preact/hooks';
import { ApiError } from './api.js';

/** Who is logged in: `readOnly` for the viewer (the server refuses their changes anyway). */
export interface Session {
  role: string | undefined;
  readOnly: boolean;
}
export const SessionContext = createContext<Session>({ role: undefined, readOnly: false });
export const useSession = (): Session => useContext(SessionContext);

export const READ_ONLY_HINT = 'read-only token: changes need the admin token';

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge status-${status}`}>{status}</span>;
}

/** A time as "12s ago" (or "in 3m"), with the exact ISO time on hover and for screen readers. */
export function Time({ iso }: { iso: string | undefined | null }) {
  if (iso === undefined || iso === null) return <span class="muted">–</span>;
  return (
    <time dateTime={iso} title={iso}>
      {relative(iso)}
    </time>
  );
}

export function relative(iso: string): string {
  const ms = Date.parse(iso) - Date.now();
  if (!Number.isFinite(ms)) return iso;
  const abs = Math.abs(ms);
  const text =
    abs < 1000
      ? 'now'
      : abs < 60_000
        ? `${Math.round(abs / 1000)}s`
        : abs < 3_600_000
          ? `${Math.round(abs / 60_000)}m`
          : abs < 86_400_000
            ? `${Math.round(abs / 3_600_000)}h`
            : `${Math.round(abs / 86_400_000)}d`;
  if (text === 'now') return text;
  return ms < 0 ? `${text} ago` : `in ${text}`;
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

/** A JSON value, folded when long. */
export function Json({ value, open }: { value: unknown; open?: boolean }) {
  if (value === undefined) return <span class="muted">–</span>;
  // JSON.stringify gives undefined only for functions and symbols, never in API answers.
  const text = JSON.stringify(value, null, 2) ?? 'undefined';
  if (text.length <= 80 && !text.includes('\n')) return <code class="json-inline">{text}</code>;
  return (
    <details class="json" open={open}>
      <summary>{text.replace(/\s+/g, ' ').slice(0, 60)}…</summary>
      <pre>{text}</pre>
    </details>
  );
}

export function ErrorBanner({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null;
  if (error instanceof ApiError) {
    const title =
      error.status === 403
        ? 'Refused'
        : error.status === 0
          ? 'Cannot reach Keel'
          : `Error ${error.status}`;
    return (
      <div class="banner error" role="alert">
        <strong>{title}</strong> <code>{error.code}</code>: {error.message}
      </div>
    );
  }
  const message =
    error instanceof Error ? error.message : typeof error === 'string' ? error : 'failed';
  return (
    <div class="banner error" role="alert">
      {message}
    </div>
  );
}

/** What a page shows when the server has no such route (yet). */
export function NotAvailable({ what }: { what: string }) {
  return (
    <div class="banner calm" role="status" data-testid="not-available">
      {what} is not available on this server (it answered 404). It needs a newer Keel.
    </div>
  );
}

/** The usual loading/error/not-available frame around a loaded value. */
export function Loading({
  error,
  loading,
  what,
  children,
}: {
  error: ApiError | undefined;
  loading: boolean;
  what: string;
  children?: ComponentChildren;
}) {
  if (error?.notAvailable) return <NotAvailable what={what} />;
  return (
    <>
      {error && <ErrorBanner error={error} />}
      {loading && !children ? <p class="muted">Loading…</p> : children}
    </>
  );
}

/**
 * A button that runs an action; with `confirm`, the first press asks (inline, no dialog) and
 * a second, explicit press does it. Errors (a 403 for the viewer, a 409 for a finished
 * invocation) are shown next to it.
 */
export function ActionButton({
  label,
  run,
  confirm,
  danger,
  disabled,
  onDone,
  testId,
}: {
  label: string;
  run: () => Promise<unknown>;
  confirm?: string;
  danger?: boolean;
  disabled?: boolean;
  onDone?: (result: unknown) => void;
  testId?: string;
}) {
  const { readOnly } = useSession();
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const go = async (): Promise<void> => {
    setAsking(false);
    setBusy(true);
    setError(undefined);
    try {
      const result = await run();
      onDone?.(result);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const off = disabled || readOnly || busy;
  return (
    <span class="action">
      {asking ? (
        <span class="confirm" role="group" aria-label={`confirm ${label}`}>
          <span>{confirm}</span>
          <button type="button" class={danger ? 'danger' : 'primary'} onClick={() => void go()}>
            Yes, {label.toLowerCase()}
          </button>
          <button type="button" onClick={() => setAsking(false)}>
            Keep
          </button>
        </span>
      ) : (
        <button
          type="button"
          class={danger ? 'danger' : undefined}
          disabled={off}
          title={readOnly ? READ_ONLY_HINT : undefined}
          data-testid={testId}
          onClick={() => (confirm ? setAsking(true) : void go())}
        >
          {busy ? `${label}…` : label}
        </button>
      )}
      {error !== undefined && <ErrorBanner error={error} />}
    </span>
  );
}
