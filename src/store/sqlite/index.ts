export { SqliteStore, openSqliteStore, type SqliteStoreOptions } from './store.js';
export { SCHEMA_VERSION } from './migrations.js';
export { StoreError, type StoreErrorCode } from '../errors.js';
