/**
 * Money is kept in integer cents: summing floats (0.1 + 0.2) drifts, and the crash tests
 * compare balances to the cent. Requests and views use decimal amounts, as the seed does.
 */

/** A decimal amount (99.99) as integer cents (9999). */
export function toCents(amount: number): number {
  return Math.round(amount * 100);
}

/** Integer cents as a decimal amount, for views and results. */
export function fromCents(cents: number): number {
  return cents / 100;
}
