/**
 * Type test of `t.mock`: `tsc --noEmit -p .` checks this file, and each `@ts-expect-error` line
 * fails the check if its error goes away. Nothing here runs: `check` is never called.
 */
import { integration, stripe } from '../../src/integrations/index.js';
import { mockFail, testApp, type MockCall, type OperationsOf } from '../../src/testing/index.js';

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(_proof: Equal<A, B>): void => undefined;

const Payments = integration({
  name: 'Payments',
  baseUrl: 'https://payments.invalid',
  operations: { charge: { method: 'POST', path: '/charges' }, refund: { path: '/refunds' } },
});
const Stripe = stripe();

export async function check(): Promise<void> {
  const t = await testApp({ services: [], integrations: [Payments, Stripe] });
  same<OperationsOf<typeof Payments>, 'charge' | 'refund'>(true);
  same<
    OperationsOf<typeof Stripe>,
    'create_charge' | 'retrieve_charge' | 'create_refund' | 'retrieve_refund'
  >(true);

  const payments = t.mock(Payments, {
    charge: [mockFail(503, { times: 2 }), { id: 'ch_1' }],
    refund: (call: MockCall) => ({ id: `re_${call.n}` }),
  });
  payments.calls('charge');
  // @ts-expect-error: Payments has no operation `capture`
  payments.calls('capture');
  // @ts-expect-error: nor can it be answered
  t.mock(Payments, { capture: { ok: true } });
  t.mock(Stripe, { create_charge: t.mock.fail(429, { retryAfter: '30s' }) });
  // @ts-expect-error: Stripe's operations are snake_case
  t.mock(Stripe, { createCharge: {} });
}
