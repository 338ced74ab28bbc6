/**
 * How the CLI writes: machine output (`--json`) on stdout only, human tables otherwise, and
 * colours only when the stream is a terminal and `NO_COLOR` is not set.
 */
import { styleText } from 'node:util';
import Table from 'cli-table3';

type Style = Parameters<typeof styleText>[0];

/** Where and how a command writes its answer. */
export interface Output {
  /** `--json`: one JSON document on stdout, errors as JSON on stderr. */
  readonly json: boolean;
  /** A line on stdout. */
  line(text?: string): void;
  /** A value as JSON on stdout (the whole answer in `--json` mode). */
  data(value: unknown): void;
  /** A note for humans on stderr (never in `--json` mode: scripts read stdout only). */
  note(text: string): void;
  /** Colours `text` for stdout when stdout is a terminal. */
  style(format: Style, text: string): string;
}

/** Whether a stream gets colours: a TTY, and neither NO_COLOR nor a dumb terminal. */
export function colours(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

export function createOutput(json: boolean): Output {
  const colour = colours(process.stdout);
  return {
    json,
    line: (text = '') => void process.stdout.write(`${text}\n`),
    data: (value) => void process.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
    note: (text) => {
      if (!json) process.stderr.write(`${text}\n`);
    },
    // `validateStream: false`: this module decides, once, from the stream's TTY and NO_COLOR.
    style: (format, text) => (colour ? styleText(format, text, { validateStream: false }) : text),
  };
}

/** A table for the terminal: no borders, a bold header, cells as given. */
export function table(out: Output, head: string[], rows: string[][]): string {
  const t = new Table({
    head: head.map((h) => out.style('bold', h)),
    style: { head: [], border: [], compact: true, 'padding-left': 0, 'padding-right': 2 },
    chars: {
      top: '',
      'top-mid': '',
      'top-left': '',
      'top-right': '',
      bottom: '',
      'bottom-mid': '',
      'bottom-left': '',
      'bottom-right': '',
      left: '',
      'left-mid': '',
      mid: '',
      'mid-mid': '',
      right: '',
      'right-mid': '',
      middle: '',
    },
  });
  t.push(...rows);
  // cli-table3 pads the last column too: trailing spaces help nobody.
  return t
    .toString()
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

/** `key: value` lines, the keys aligned. */
export function fields(out: Output, pairs: Array<[string, string | undefined]>): string {
  const shown = pairs.filter((p): p is [string, string] => p[1] !== undefined);
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${out.style('dim', `${k}:`.padEnd(width + 1))} ${v}`).join('\n');
}

/** A status word coloured by what it means. */
export function status(out: Output, s: string): string {
  const format: Style =
    s === 'completed' || s === 'healthy' || s === 'delivered' || s === 'closed'
      ? 'green'
      : s === 'failed' || s === 'unhealthy' || s === 'open'
        ? 'red'
        : s === 'backing-off' || s === 'paused' || s === 'degraded' || s === 'half-open'
          ? 'yellow'
          : s === 'running'
            ? 'cyan'
            : 'dim';
  return out.style(format, s);
}

/** A short JSON rendering of a value for a table cell. */
export function brief(value: unknown, max = 60): string {
  if (value === undefined) return '';
  const s = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? '');
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** An ISO time as `YYYY-MM-DD HH:MM:SS.mmm` (UTC), or '' when absent. */
export function time(iso: string | number | undefined): string {
  if (iso === undefined) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().replace('T', ' ').replace('Z', '');
}

/** Milliseconds as `850ms`, `1.2s`, `3m4s`, `2h5m`. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}
