/** The glue between commander and the commands: every action gets a {@link Ctx}. */
import type { Command } from 'commander';
import { contextOf, type Ctx, type GlobalOptions } from './context.js';

/**
 * Wraps a command's implementation as a commander action: `args` are the positional
 * arguments, `opts` the command's own options, `ctx` built from the global ones.
 */
export function act<O extends object>(
  fn: (ctx: Ctx, args: string[], opts: O, cmd: Command) => Promise<void>,
): (...a: unknown[]) => Promise<void> {
  return async (...a: unknown[]) => {
    const cmd = a[a.length - 1] as Command;
    const opts = cmd.opts<O>();
    const args = a
      .slice(0, -2)
      .flatMap((x) => (Array.isArray(x) ? (x as string[]) : x === undefined ? [] : [x as string]));
    const ctx = contextOf(cmd.optsWithGlobals<GlobalOptions>());
    await fn(ctx, args, opts, cmd);
  };
}

let keepRunning = false;

/**
 * Called by commands that leave servers running (`start`): the CLI then lets the process end
 * on its own (or on a signal) instead of exiting once the command's action returns.
 */
export function leaveRunning(): void {
  keepRunning = true;
}

export function leftRunning(): boolean {
  return keepRunning;
}
