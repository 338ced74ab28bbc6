/** Declares one example's scenarios as Vitest tests, driven one way (see driver.ts). */
import { describe, it } from 'vitest';
import { useDriver, type DriverKind } from './driver.js';
import { SUITES } from './scenarios/index.js';

export function defineSuite(kind: DriverKind, example: string): void {
  const scenarios = SUITES[example];
  if (!scenarios) throw new Error(`no scenarios for ${example}`);
  describe(`${example} (${kind})`, () => {
    const start = useDriver(kind);
    for (const s of scenarios) it(s.name, async () => s.run(await start(s)));
  });
}
