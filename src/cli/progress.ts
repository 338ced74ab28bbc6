/**
 * A progress bar on stderr for long operations (bulk actions, migrations). Only drawn on a
 * terminal and never in `--json` mode, so piped output and scripts see no control characters.
 */
import cliProgress from 'cli-progress';
import { colours, type Output } from './output.js';

export interface Progress {
  start(total: number): void;
  update(value: number, total?: number): void;
  stop(): void;
}

export function progress(out: Output, label: string): Progress {
  if (out.json || process.stderr.isTTY !== true) {
    return { start: () => undefined, update: () => undefined, stop: () => undefined };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {value}/{total} {percentage}%`,
      hideCursor: true,
      clearOnComplete: false,
      barCompleteChar: '█',
      barIncompleteChar: colours(process.stderr) ? '░' : '.',
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    start: (total) => {
      bar.start(total, 0);
      started = true;
    },
    update: (value, total) => {
      if (!started) return;
      if (total !== undefined) bar.setTotal(total);
      bar.update(value);
    },
    stop: () => {
      if (started) bar.stop();
      started = false;
    },
  };
}
