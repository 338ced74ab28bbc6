import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A freshly migrated SQLite database, made once per process and kept in memory (about 150
 * KB), that every `testApp` writes out instead of migrating its own: creating the schema costs
 * about 7 ms a test app, writing the file well under 1 ms. In memory rather than in a file:
 * test runners end their workers with a signal, and a template file would outlive them.
 */
let template: Promise<Buffer> | undefined;

/**
 * Writes the migrated template to `file` (a path in an empty directory). Resolves false,
 * leaving `file` absent, if the template could not be made: opening the store then migrates
 * as usual (and reports the error, if there is one).
 */
export async function copyMigratedTemplate(file: string): Promise<boolean> {
  template ??= makeTemplate();
  try {
    writeFileSync(file, await template);
    return true;
  } catch {
    template = undefined;
    return false;
  }
}

async function makeTemplate(): Promise<Buffer> {
  const { openSqliteStore } = await import('../store/sqlite/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'keel-test-template-'));
  try {
    const file = join(dir, 'keel.db');
    // Closing checkpoints the WAL into the file: the file alone is the whole database.
    await openSqliteStore({ path: file, durability: 'os' }).close();
    return readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
