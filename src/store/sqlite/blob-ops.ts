import type Database from 'better-sqlite3';

/**
 * Statements of the blob tables (migration 13; see store/payloads.ts): the JSON of values stored
 * out of line. Prepared on first use, on the connection that writes (and reads) the rows, so a
 * blob is written in the same transaction as the row that refers to it.
 */
export class BlobStatements {
  private readonly put: Database.Statement;
  private readonly get: Database.Statement;
  private readonly deleteOf: Database.Statement;
  private readonly putState: Database.Statement;
  private readonly getState: Database.Statement;
  private readonly deleteState: Database.Statement;
  private readonly clearState: Database.Statement;

  constructor(db: Database.Database) {
    this.put = db.prepare(
      'INSERT OR REPLACE INTO invocation_blobs (invocation_id, part, data) VALUES (?, ?, ?)',
    );
    this.get = db
      .prepare('SELECT data FROM invocation_blobs WHERE invocation_id = ? AND part = ?')
      .pluck();
    this.deleteOf = db.prepare('DELETE FROM invocation_blobs WHERE invocation_id = ?');
    this.putState = db.prepare(
      'INSERT OR REPLACE INTO state_blobs (service, key, name, data) VALUES (?, ?, ?, ?)',
    );
    this.getState = db
      .prepare('SELECT data FROM state_blobs WHERE service = ? AND key = ? AND name = ?')
      .pluck();
    this.deleteState = db.prepare(
      'DELETE FROM state_blobs WHERE service = ? AND key = ? AND name = ?',
    );
    this.clearState = db.prepare('DELETE FROM state_blobs WHERE service = ? AND key = ?');
  }

  /** Stores part `part` of invocation `id` (-1 input, -2 output, else a journal index). */
  putPart(id: string, part: number, data: string): void {
    this.put.run(id, part, data);
  }

  /** Part `part` of invocation `id`, or undefined. */
  readonly part = (id: string, part: number): string | undefined =>
    this.get.get(id, part) as string | undefined;

  /** Deletes every blob of invocation `id`. */
  deleteInvocation(id: string): void {
    this.deleteOf.run(id);
  }

  putStateValue(service: string, key: string, name: string, data: string): void {
    this.putState.run(service, key, name, data);
  }

  stateValue(service: string, key: string, name: string): string | undefined {
    return this.getState.get(service, key, name) as string | undefined;
  }

  deleteStateValue(service: string, key: string, name: string): void {
    this.deleteState.run(service, key, name);
  }

  clearStateValues(service: string, key: string): void {
    this.clearState.run(service, key);
  }
}
