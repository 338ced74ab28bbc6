export { PostgresStore, openPostgresStore, type PostgresStoreOptions } from './store.js';
export { SCHEMA_VERSION } from './migrations.js';
export { StoreError, type StoreErrorCode } from '../errors.js';
