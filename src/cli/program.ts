/** The `keel` command line: every command, its global options and its error handling. */
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_ADMIN_URL, DEFAULT_INGRESS_URL } from './context.js';
import { leftRunning } from './command.js';
import { CliError, EXIT, EXIT_CODES_HELP, type ExitCode } from './errors.js';
import { registerInvocations } from './commands/invocations.js';
import { registerInvoke } from './commands/invoke.js';
import { registerMigrate } from './commands/migrate.js';
import { registerMisc } from './commands/misc.js';
import { registerStart } from './commands/start.js';
import { registerSchedules } from './commands/schedules.js';
import { registerState } from './commands/state.js';
import { registerIntegrations, registerWebhooks } from './commands/webhooks.js';
import { colours } from './output.js';
import { styleText } from 'node:util';

const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('keel')
    .description(
      'Operate Keel apps: run them, invoke handlers, inspect and act on invocations, state, webhooks, integrations and migrations.',
    )
    .version(VERSION, '-V, --version')
    .addOption(
      new Option('--url <url>', `admin API URL (default ${DEFAULT_ADMIN_URL})`).env(
        'KEEL_ADMIN_URL',
      ),
    )
    .addOption(
      new Option('--ingress <url>', `ingress URL (default ${DEFAULT_INGRESS_URL})`).env(
        'KEEL_INGRESS_URL',
      ),
    )
    .addOption(
      new Option(
        '--token <token>',
        'admin API bearer token (env KEEL_TOKEN, else KEEL_ADMIN_TOKEN)',
      ),
    )
    .addOption(
      new Option(
        '--api-key <key>',
        'ingress API key, for apps that set KEEL_INGRESS_KEYS (env KEEL_API_KEY)',
      ),
    )
    .option('--json', 'machine output: JSON on stdout, errors as {code,message} JSON on stderr')
    .showSuggestionAfterError()
    .addHelpText(
      'after',
      `
Examples:
  keel start examples/app.ts
  keel invoke Greeter/greet '"Ada"'
  keel send Counter/visits/add 1 --delay 10s
  keel ls --status failed,backing-off --since 1h
  keel show inv_01h...
  keel cancel --service OrderSaga --status running
  keel migrate status --db .keel/keel.db

${EXIT_CODES_HELP}`,
    );
  registerStart(program);
  registerInvoke(program);
  registerInvocations(program);
  registerState(program);
  registerWebhooks(program);
  registerIntegrations(program);
  registerSchedules(program);
  registerMigrate(program);
  registerMisc(program);
  return program;
}

/** Whether `--json` is on the command line (commander's own errors come before parsing ends). */
function wantsJson(argv: readonly string[]): boolean {
  return argv.includes('--json');
}

/** Writes an error as the mode asks: `{code,message}` JSON, or a line for humans. */
export function reportError(argv: readonly string[], code: string, message: string): void {
  if (wantsJson(argv)) {
    process.stderr.write(`${JSON.stringify({ code, message })}\n`);
    return;
  }
  const prefix = colours(process.stderr)
    ? styleText('red', 'keel: error:', { validateStream: false })
    : 'keel: error:';
  process.stderr.write(`${prefix} ${message}${code === 'usage' ? '' : ` (${code})`}\n`);
}

/**
 * Runs the CLI on `argv` (without node and the script) and returns the exit code, or undefined
 * when the command left an app running (`start`): the process then ends with the app.
 */
export async function run(argv: readonly string[]): Promise<ExitCode | undefined> {
  const program = buildProgram();
  // Commander's usage errors become exit code 2 and, with --json, a JSON error.
  const configure = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.configureOutput({
      outputError: (str) => {
        const message = str.replace(/^error: /, '').trim();
        reportError(argv, 'usage', message);
      },
    });
    for (const sub of cmd.commands) configure(sub);
  };
  configure(program);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return leftRunning() ? undefined : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version')
        return EXIT.ok;
      // `keel` or `keel state` alone printed the help: a usage error all the same.
      return EXIT.usage;
    }
    if (err instanceof CliError) {
      reportError(argv, err.code, err.message);
      return err.exit;
    }
    const e = err as { code?: unknown; message?: string };
    reportError(argv, typeof e.code === 'string' ? e.code : 'internal', e.message ?? String(err));
    return EXIT.failed;
  }
}
