import { describeViolation, type Violation } from './checker.js';
import { kib, type FuzzResult } from './runner.js';

/** The summary table of a run, then one example of each distinct violation and how to repeat it. */
export function formatReport(res: FuzzResult): string {
  const c = res.checker;
  const seconds = res.elapsedMs / 1000;
  const count = (kind: Violation['kind']): number =>
    c.violations.filter((v) => v.kind === kind).length;
  const rows: [string, string][] = [
    ['seed', res.seed],
    [
      'requests',
      `${c.requests} in ${seconds.toFixed(1)} s (${Math.round(c.requests / seconds)}/s)`,
    ],
    ...['2xx', '3xx', '4xx', '5xx', 'none', 'abandoned'].map((k): [string, string] => [
      `  ${k}`,
      String(c.byStatus.get(k) ?? 0),
    ]),
    ['invalid requests state-checked', String(res.invalidChecked)],
    ["user-token reads compared with the admin's", String(res.twinsCompared)],
    ['unsettled batches (not state-checked)', String(res.unsettled)],
    ['waiting for the store to settle', `${(res.settleMs / 1000).toFixed(1)} s`],
    ['invocations killed to settle', String(res.settleKills)],
    ['changes after due work came due (not attributed)', String(res.pastDue)],
    ['requests undici refused to send', String(c.clientRefused)],
    ['exits', res.exit ? `1 (code ${res.exit.code}, signal ${res.exit.signal})` : '0'],
    ['undocumented 5xx', String(count('undocumented_5xx'))],
    ['requests without an answer', String(count('no_answer'))],
    ['state changes by invalid requests', String(count('state_change'))],
    [
      'wrong answers (user-token change not 403, bad webhook not 401)',
      String(count('wrong_answer')),
    ],
    ["user-token reads answered unlike the admin's", String(count('role_mismatch'))],
    ['overdue timers and delayed sends at the end (stuck)', String(res.overdue)],
    ['RSS before / after', `${kib(res.rssBeforeKiB)} / ${kib(res.rssAfterKiB)}`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = ['', 'keel fuzz summary', ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];

  if (c.acceptedInvalid.size > 0) {
    lines.push('', 'invalid requests answered 2xx (not violations; each may be a missing check):');
    for (const [gen, { count: n, example }] of c.acceptedInvalid)
      lines.push(`  ${gen}: ${n}`, example.replace(/^/gm, '    '));
  }

  if (c.violations.length > 0) {
    // One example per kind of failure: the same bug hit a thousand times is one finding.
    const groups = new Map<string, { n: number; first: Violation }>();
    for (const v of c.violations) {
      const sig = `${v.kind} ${v.cases.at(-1)?.gen ?? ''} ${v.outcome?.status ?? ''} ${v.outcome?.code ?? ''}`;
      const g = groups.get(sig);
      if (g) g.n++;
      else groups.set(sig, { n: 1, first: v });
    }
    lines.push(
      '',
      `VIOLATIONS (${c.violations.length}, ${groups.size} distinct); repeat with: npm run fuzz -- --seed ${res.seed}`,
    );
    for (const { n, first } of groups.values()) lines.push(`- ${n}x ${describeViolation(first)}`);
    const errors = res.appLog.filter((l) => l.trim() !== '');
    if (errors.length > 0)
      lines.push('', 'the app logged (last lines):', ...errors.slice(-30).map((l) => `  ${l}`));
  }
  return lines.join('\n');
}
