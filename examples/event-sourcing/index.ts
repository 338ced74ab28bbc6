/**
 * Seed 004, exercise 2.1: event sourcing. What the app must serve: the `definitions` (the
 * `BankAccount` aggregate and its projector) and the `extensions` (the `eventSourcing()`
 * extension, which gives them the Store). See README.md.
 */
import type { Definition } from '../../src/index.js';
import { eventSourcing } from '../../src/eventsourcing/index.js';
import type { EngineExtension } from '../../src/engine/extension.js';
import { BankAccount } from './account.js';

export { BankAccount, SNAPSHOT_EVERY, applyAccount, balances, summary } from './account.js';
export type { Account, AccountEvent, BalanceLine, Summary } from './account.js';

/** Every definition of the example. */
export const definitions: Definition[] = BankAccount.definitions;

/** The extensions the definitions need (one `eventSourcing()` per engine). */
export const extensions = (): EngineExtension[] => [eventSourcing()];
