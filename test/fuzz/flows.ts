/**
 * The flows extension of the fuzz app (see gen-flows.ts): one flow of transform and conditional
 * steps that any JSON input can run (a type error fails a step, which is a result, not a 5xx).
 */
import { createFlows, type Flows } from '../../src/flows/index.js';

export const FUZZ_FLOW = 'fuzz-calc';

export function fuzzFlows(): Flows {
  return createFlows({
    definitions: [
      {
        name: FUZZ_FLOW,
        steps: [
          { id: 'size', type: 'transform', expression: 'len(string(input))', storeAs: 'size' },
          {
            id: 'big?',
            type: 'conditional',
            condition: 'size > 20',
            then: [{ id: 'double', type: 'transform', expression: 'size * 2', storeAs: 'out' }],
            else: [{ id: 'same', type: 'transform', expression: 'input.n + 1', storeAs: 'out' }],
            onError: 'continue',
          },
        ],
        output: { size: '{{size}}' },
      },
    ],
    transforms: { echo: (x) => x },
  });
}
