/**
 * `npm run fuzz -- [--requests N] [--seed S] [--concurrency C] [--minutes M]`: the seeded HTTP fuzzer over
 * the ingress, the admin API and the webhook receivers of a real app in a child process. Prints
 * a summary table; exits 1 on any violation, with the seed and the offending requests.
 */
import { parseArgs } from 'node:util';
import { freshSeed } from './random.js';
import { formatReport } from './report.js';
import { runFuzz } from './runner.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    concurrency: { type: 'string', default: '8' },
    minutes: { type: 'string' },
  },
});
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
if (!Number.isInteger(requests) || requests < 1)
  throw new RangeError(`--requests must be a positive whole number, got ${values.requests}`);
if (!Number.isInteger(concurrency) || concurrency < 1)
  throw new RangeError(`--concurrency must be a positive whole number, got ${values.concurrency}`);
const seed = values.seed ?? process.env.KEEL_FUZZ_SEED ?? freshSeed();

const maxMs = values.minutes === undefined ? undefined : Number(values.minutes) * 60_000;
if (maxMs !== undefined && !(maxMs > 0))
  throw new RangeError(`--minutes must be a positive number, got ${values.minutes}`);
const result = await runFuzz({
  requests,
  seed,
  concurrency,
  ...(maxMs === undefined ? {} : { maxMs }),
  log: (l) => console.log(l),
});
console.log(formatReport(result));
process.exitCode = result.checker.violations.length > 0 ? 1 : 0;
