import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrations, SchemaTooNewError, type Migration } from '../migrations.js';
import type { Store } from '../spec.js';
import { openSqliteDatabase } from './connection.js';
import { openSqliteStore } from './sqlite-store.js';
import { auditRecord, registerStoreContract } from '../../../test/support/store-contract/store-contract.js';
import { openStore, StoreOpenError } from '../open-store.js';

let directory: string;
const opened: Array<{ close(): unknown }> = [];

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'chatgate-sqlite-'));
});

afterEach(async () => {
  for (const handle of opened.splice(0)) await handle.close();
  rmSync(directory, { recursive: true, force: true });
});

function open(path = join(directory, 'nested', 'dir', 'chatgate.db'), extra?: readonly Migration[]): Store {
  const store = openSqliteStore(path, extra === undefined ? {} : { migrations: extra });
  opened.push(store);
  return store;
}

/** A second, raw connection to look at what the store wrote. */
function inspect(path: string): Database.Database {
  const database = new Database(path);
  opened.push(database);
  return database;
}

describe('openSqliteDatabase', () => {
  it('configures WAL, busy timeout, synchronous NORMAL and foreign keys', () => {
    const database = openSqliteDatabase(join(directory, 'pragmas.db'), { busyTimeoutMs: 1234 });
    opened.push(database);
    expect(database.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(database.pragma('busy_timeout', { simple: true })).toBe(1234);
    expect(database.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(database.pragma('foreign_keys', { simple: true })).toBe(1);
  });

  it('says which file it could not open', () => {
    const path = join(directory, 'not-a-database.db');
    writeFileSync(path, 'this is not a SQLite file, just text that is long enough to have a header'.repeat(20));
    expect(() => openSqliteDatabase(path)).toThrow(new RegExp(`Cannot open the SQLite database at .*not-a-database\\.db`));
  });
});

describe('SQLite store: migrations', () => {
  it('creates the directory and applies every migration once, recording it', async () => {
    const path = join(directory, 'nested', 'dir', 'chatgate.db');
    const store = open(path);
    await store.migrate();
    await store.migrate();

    const rows = inspect(path).prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all() as Array<{
      version: number;
      name: string;
      applied_at: number;
    }>;
    expect(rows.map((row) => [row.version, row.name])).toEqual(migrations.map((migration) => [migration.version, migration.name]));
    for (const row of rows) expect(row.applied_at).toBeGreaterThan(1_600_000_000_000);
  });

  it('reopens an existing database without re-applying anything and keeps the data', async () => {
    const path = join(directory, 'chatgate.db');
    const first = open(path);
    await first.migrate();
    await first.auditLog.append([auditRecord()]);
    await first.metadata.set('instance_id', 'abc');
    await first.close();
    const before = inspect(path).prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all();

    const second = open(path);
    await second.migrate();
    expect(await second.auditLog.count()).toBe(1);
    expect(await second.metadata.get('instance_id')).toBe('abc');
    expect(inspect(path).prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all()).toEqual(before);
  });

  it('applies only the migrations that are new', async () => {
    const path = join(directory, 'chatgate.db');
    const first = open(path);
    await first.migrate();
    await first.close();

    const next: Migration = { version: migrations.length + 1, name: 'add_widgets', sqlite: 'CREATE TABLE widgets (id INTEGER);', postgres: 'CREATE TABLE widgets (id INTEGER);' };
    const second = open(path, [...migrations, next]);
    await second.migrate();
    const versions = inspect(path).prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all();
    expect(versions).toEqual([...migrations.map((migration) => migration.version), next.version]);
  });

  it('refuses a database whose schema is newer than the code, at open and at migrate', async () => {
    const path = join(directory, 'chatgate.db');
    const newer: Migration = { version: migrations.length + 1, name: 'from_the_future', sqlite: 'CREATE TABLE future (id INTEGER);', postgres: 'SELECT 1;' };
    const newerStore = open(path, [...migrations, newer]);
    await newerStore.migrate();
    await newerStore.close();

    expect(() => openSqliteStore(path)).toThrow(SchemaTooNewError);
    expect(() => openSqliteStore(path)).toThrow(new RegExp(`schema version ${newer.version}, newer than the latest this Chatgate knows \\(${migrations.length}\\)`));

    // A database that becomes newer after opening (another process upgraded it) is refused by migrate().
    const otherPath = join(directory, 'other.db');
    const store = open(otherPath);
    await store.migrate();
    inspect(otherPath).prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, 0)').run('later');
    await expect(store.migrate()).rejects.toBeInstanceOf(SchemaTooNewError);
  });

  it('rolls back a failing migration together with its record', async () => {
    const path = join(directory, 'chatgate.db');
    const broken: Migration = {
      version: migrations.length + 1,
      name: 'broken',
      sqlite: 'CREATE TABLE half_done (id INTEGER); THIS IS NOT SQL;',
      postgres: 'SELECT 1;',
    };
    const store = open(path, [...migrations, broken]);
    await expect(store.migrate()).rejects.toThrow(new RegExp(`Migration ${broken.version} \\(broken\\) failed .* rolled back`));

    const database = inspect(path);
    expect(database.prepare('SELECT MAX(version) FROM schema_migrations').pluck().get()).toBe(migrations.length);
    expect(database.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half_done'").pluck().get()).toBe(0);
  });

  it('works in memory', async () => {
    const store = open(':memory:');
    await store.migrate();
    await store.auditLog.append([auditRecord()]);
    expect(await store.auditLog.count()).toBe(1);
    await store.metadata.set('instance_id', 'in-memory');
    expect(await store.metadata.get('instance_id')).toBe('in-memory');
  });
});

describe('SQLite store: metadata', () => {
  it('gets and sets string values', async () => {
    const store = open();
    await store.migrate();
    expect(await store.metadata.get('instance_id')).toBeNull();
    await store.metadata.set('instance_id', 'first');
    await store.metadata.set('other', '');
    expect(await store.metadata.get('instance_id')).toBe('first');
    await store.metadata.set('instance_id', 'second');
    expect(await store.metadata.get('instance_id')).toBe('second');
    expect(await store.metadata.get('other')).toBe('');
  });
});

describe('SQLite store: close', () => {
  it('is idempotent and makes the store unusable', async () => {
    const store = open();
    await store.migrate();
    await store.close();
    await store.close();
    await expect(store.auditLog.count()).rejects.toThrow();
    await expect(store.metadata.get('instance_id')).rejects.toThrow();
  });
});

const contractDirectory = mkdtempSync(join(tmpdir(), 'chatgate-sqlite-contract-'));
let contractDatabases = 0;
afterAll(() => rmSync(contractDirectory, { recursive: true, force: true }));

registerStoreContract({
  dialect: 'sqlite',
  async freshDatabase() {
    const path = join(contractDirectory, `contract-${(contractDatabases += 1)}.db`);
    return {
      async open() {
        const store = openSqliteStore(path);
        opened.push(store);
        return store;
      },
      async exec(sql: string) {
        const database = new Database(path);
        try {
          database.exec(sql);
        } finally {
          database.close();
        }
      },
    };
  },
});

describe('openStore with SQLite', () => {
  it('opens the SQLite file when no database URL is set, and names a file it cannot open', async () => {
    const store = await openStore({ sqlitePath: join(directory, 'chatgate.db') });
    opened.push(store);
    expect(store.dialect).toBe('sqlite');
    const notDatabase = join(directory, 'not-a-database.db');
    writeFileSync(notDatabase, 'plain text, no SQLite header here '.repeat(40));
    await expect(openStore({ databaseUrl: '', sqlitePath: notDatabase })).rejects.toBeInstanceOf(StoreOpenError);
    await expect(openStore({ sqlitePath: notDatabase })).rejects.toThrow(/Cannot open the SQLite database at .*not-a-database\.db/);
  });
});

describe('SQLite store: migration 4 (audit pii_counts)', () => {
  it('upgrades a version-3 log whose chain still verifies, and records piiCounts after', async () => {
    const { chainRecords, auditValues, auditColumns } = await import('../audit-records.js');
    const { GENESIS_HASH } = await import('../audit-chain.js');
    const { verifyChain } = await import('../../audit/verify-chain.js');
    const path = join(directory, 'v3.db');
    const old = open(path, migrations.slice(0, 3));
    await old.migrate();
    // Rows as version 3 wrote them: no pii_counts column.
    const { stored } = chainRecords({ lastSeq: 0, lastHash: GENESIS_HASH }, [auditRecord({ requestId: 'old_1' }), auditRecord({ requestId: 'old_2', requestBody: 'hi' })]);
    const columns = auditColumns.filter((column) => column !== 'pii_counts');
    const raw = inspect(path);
    for (const record of stored) {
      const values = auditValues(record, (value) => (value ? 1 : 0)).filter((_, index) => auditColumns[index] !== 'pii_counts');
      raw.prepare(`INSERT INTO audit_log (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`).run(...values);
    }
    raw.prepare('UPDATE audit_chain_head SET last_seq = ?, last_hash = ? WHERE id = 1').run(2, stored[1]!.hash);
    await old.close();

    const store = open(path);
    await store.migrate();
    await store.auditLog.append([auditRecord({ requestId: 'new_1', piiCounts: 'email=1' }), auditRecord({ requestId: 'new_2' })]);
    const all = await store.auditLog.scan(0, 10);
    expect(all.map((record) => [record.requestId, record.piiCounts])).toEqual([
      ['old_1', null],
      ['old_2', null],
      ['new_1', 'email=1'],
      ['new_2', null],
    ]);
    expect(await verifyChain(store.auditLog)).toMatchObject({ ok: true, checked: 4 });
  });
});
