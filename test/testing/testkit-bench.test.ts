/**
 * Five of the 100 scenarios of the test-kit comparison (bench/testkit/, `npm run
 * bench:testkit`), on the kit, so that the comparison's scenarios and driver keep working:
 * one happy path, compensations, a timer crossed by advancing time, a restart.
 */
import { describe, it } from 'vitest';
import { useDriver, type Scenario } from '../../bench/testkit/driver.js';
import { SUITES } from '../../bench/testkit/scenarios/index.js';

const pick = (example: string, name: string): Scenario => {
  const found = SUITES[example]?.find((s) => s.name.startsWith(name));
  if (!found) throw new Error(`no scenario "${name}" in ${example}`);
  return found;
};

const SMOKE = [
  pick('order-saga', 'shipment fails'),
  pick('ticketing-saga', 'holds seats for exactly 15 minutes'),
  pick('claim-saga', 'a claim waiting for approval across a restart'),
  pick('transfer-orchestrator', 'refunds the debit when the credit fails'),
  pick('pipeline-orchestrator', 'rolls staging back when nobody approves within 24 hours'),
];

describe('bench/testkit scenarios on the kit (smoke)', () => {
  const start = useDriver('kit');
  for (const s of SMOKE) it(s.name, async () => s.run(await start(s)));
});
