/**
 * `keel/testing` under the other test runners: the Jest and `node:test` examples in
 * `examples/testing/` (the Vitest one runs in this suite directly), each run as a user runs it,
 * with its npm script (`npm run test:jest`, `npm run test:node`), in a child process.
 *
 * Each must exit 0 and report all three scenarios passed: a runner that found no test, or
 * skipped one, exits 0 too. Both start together (each is a few seconds, mostly startup).
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** The scenarios of `examples/testing/order-saga.*`, the same in each runner's file. */
const SCENARIOS = 3;

interface Run {
  code: number | null;
  output: string;
}

/** Runs an npm script in the repository; resolves with its exit code and all it printed. */
function runScript(script: string): Promise<Run> {
  return new Promise((done) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    // Colours would split the summary lines; the runners honour NO_COLOR unless forced.
    delete env.FORCE_COLOR;
    execFile(
      NPM,
      ['run', '--silent', script],
      { cwd: ROOT, env, timeout: 120_000, shell: process.platform === 'win32' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        done({ code, output: `${stdout}\n${stderr}` });
      },
    );
  });
}

let jest: Promise<Run>;
let nodeTest: Promise<Run>;
beforeAll(() => {
  jest = runScript('test:jest');
  nodeTest = runScript('test:node');
});

describe('the examples in examples/testing/ under their runners', () => {
  it('Jest: npm run test:jest passes every scenario', { timeout: 120_000 }, async () => {
    const { code, output } = await jest;
    // The whole output on failure: what Jest said is the diagnosis.
    expect({ code, summary: /^Tests:.*$/m.exec(output)?.[0] }, output).toEqual({
      code: 0,
      summary: `Tests:       ${SCENARIOS} passed, ${SCENARIOS} total`,
    });
  });

  it('node:test: npm run test:node passes every scenario', { timeout: 120_000 }, async () => {
    const { code, output } = await nodeTest;
    const count = (name: string): number | undefined => {
      const n = new RegExp(`^ℹ ${name} (\\d+)$`, 'm').exec(output)?.[1];
      return n === undefined ? undefined : Number(n);
    };
    expect(
      { code, tests: count('tests'), pass: count('pass'), fail: count('fail') },
      output,
    ).toEqual({ code: 0, tests: SCENARIOS, pass: SCENARIOS, fail: 0 });
  });
});
