/** examples/multi-service/README.md: its commands, run as written against the example on its mocks. */
import { expect, it } from 'vitest';
import { readmeCommands, runCommands } from '../webhook-aggregator/support.js';
import { useRig } from './support.js';

const rig = useRig();

it('the README commands answer as documented', async () => {
  const r = await rig({ mocks: true });
  const [commands] = readmeCommands('examples/multi-service/README.md');
  // Retries of the providers that are down wait on the app's (fake) clock: keep it moving.
  const ticker = setInterval(() => void r.h.clock.advance('100ms'), 10);
  let out: string;
  try {
    out = await runCommands(commands!, r.ingress.url);
  } finally {
    clearInterval(ticker);
  }
  expect(out).toContain('"destination":"Lisbon","nights":3');
  expect(out).toContain('"partial":false,"unavailable":[],"fallbacks":[]');
  expect(out).toContain('"partial":true,"unavailable":["hotel"],"fallbacks":["weather"]');
  expect(out).toContain('"trip":"trip-1","status":"booked","partial":false');
  expect(out).toContain('"trip":"trip-2","status":"booked","partial":true');
  expect(out.match(/"trip":"trip-3","status":"cancelled"/g)?.length).toBe(2);
  expect(out).toContain('"compensated":["cars","flights"]');
});
