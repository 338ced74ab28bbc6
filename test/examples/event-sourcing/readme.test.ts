/** examples/event-sourcing/README.md: its commands, run as written against the example's engine. */
import { expect, it } from 'vitest';
import { until } from '../../helpers.js';
import { readmeCommands, runCommands } from '../webhook-aggregator/support.js';
import { useRig } from './support.js';

const rig = useRig();

it('the README commands answer as documented', async () => {
  const r = await rig();
  const [commands, projections] = readmeCommands('examples/event-sourcing/README.md');
  const out = await runCommands(commands!, r.ingress.url);
  expect(out).toContain('"version":1,"events":[{"seq":1,"type":"AccountOpened"');
  expect(out).toContain('"code":"insufficient_funds"');
  expect(out).toContain('"version":4,"events":[{"seq":4,"type":"MoneyDeposited"');
  expect(out).toContain('{"version":4,');
  expect(out).toContain('"state":{"status":"open","balance":3900,"owner":"Ada"}');
  expect(out).toContain('{"version":2,');
  expect(out).toContain('"state":{"status":"open","balance":5000,"owner":"Ada"}');
  await until(
    async () => (await r.post('/BankAccountProjections/summary/view')).json.view.events === 4,
    'projections caught up',
  );
  const out2 = await runCommands(projections!, r.ingress.url);
  expect(out2).toContain(
    '{"key":"acc-1","view":{"status":"open","balance":3900,"owner":"Ada","transactions":3,"lastSeq":4}}',
  );
  expect(out2).toContain('"totalBalance":3900');
  expect(out2).toContain('{"acc-1":4}');
  expect(out2).toContain('{"aggregates":1,"events":4,"views":1}');
});
