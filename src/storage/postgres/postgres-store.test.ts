/**
 * The storage contract against PostgreSQL. Every database of this file is a schema of its
 * own (`chatgate_test_<random>_<n>`), dropped at the end, so test files running in parallel
 * never meet. Postgres must be reachable (CHATGATE_TEST_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/test): the tests fail, never skip, without it.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { migrations, SchemaTooNewError, type Migration } from '../migrations.js';
import { openStore, StoreOpenError } from '../open-store.js';
import type { Store } from '../spec.js';
import { registerStoreContract } from '../../../test/support/store-contract/store-contract.js';
import { redactDatabaseUrl } from './connection.js';
import { openPostgresStore } from './postgres-store.js';

const url = process.env.CHATGATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const prefix = `chatgate_test_${randomBytes(6).toString('hex')}`;
const schemas: string[] = [];
const opened: Store[] = [];
const admin = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 10_000 });
admin.on('error', () => undefined);

/** Each test connects on its own, so that every test fails (none is skipped) without Postgres. */
async function ensureReachable(): Promise<void> {
  try {
    await admin.query('SELECT 1');
  } catch (error) {
    throw new Error(`PostgreSQL is not reachable at ${redactDatabaseUrl(url)} (set CHATGATE_TEST_DATABASE_URL): ${(error as Error).message}`);
  }
}

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
});

afterAll(async () => {
  try {
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await admin.end();
  }
});

async function freshSchema(): Promise<string> {
  await ensureReachable();
  const schema = `${prefix}_${schemas.length + 1}`;
  schemas.push(schema);
  await admin.query(`CREATE SCHEMA ${schema}`);
  return schema;
}

async function open(schema: string, extra?: readonly Migration[]): Promise<Store> {
  const store = await openPostgresStore(url, { schema, max: 4, ...(extra === undefined ? {} : { migrations: extra }) });
  opened.push(store);
  return store;
}

registerStoreContract({
  dialect: 'postgres',
  async freshDatabase() {
    const schema = await freshSchema();
    return {
      open: () => open(schema),
      async exec(sql: string) {
        const client = await admin.connect();
        try {
          await client.query(`SET search_path TO ${schema}`);
          await client.query(sql);
        } finally {
          await client.query('RESET search_path').catch(() => undefined);
          client.release();
        }
      },
    };
  },
});

describe('Postgres store: specifics', () => {
  it('records the migrations once and refuses a newer schema', async () => {
    const schema = await freshSchema();
    const store = await open(schema);
    await store.migrate();
    await store.migrate();
    const rows = await admin.query(`SELECT version, name FROM ${schema}.schema_migrations ORDER BY version`);
    expect(rows.rows.map((row: { version: number; name: string }) => [row.version, row.name])).toEqual(
      migrations.map((migration) => [migration.version, migration.name]),
    );

    await admin.query(`INSERT INTO ${schema}.schema_migrations (version, name, applied_at) VALUES (999, 'later', 0)`);
    await expect(store.migrate()).rejects.toBeInstanceOf(SchemaTooNewError);
    await expect(openPostgresStore(url, { schema })).rejects.toThrow(/schema version 999, newer than the latest/);
  });

  it('rolls back a failing migration together with its record', async () => {
    const schema = await freshSchema();
    const broken: Migration = { version: migrations.length + 1, name: 'broken', sqlite: 'SELECT 1;', postgres: 'CREATE TABLE half_done (id INTEGER); THIS IS NOT SQL;' };
    const store = await open(schema, [...migrations, broken]);
    await expect(store.migrate()).rejects.toThrow(new RegExp(`Migration ${broken.version} \\(broken\\) failed .* rolled back`));
    const version = await admin.query(`SELECT MAX(version) AS version FROM ${schema}.schema_migrations`);
    expect(version.rows[0].version).toBe(migrations.length);
    const table = await admin.query(`SELECT to_regclass('${schema}.half_done') AS name`);
    expect(table.rows[0].name).toBeNull();
  });

  it('names the unreachable database without its password', async () => {
    const unreachable = 'postgres://chatgate:s3cret@127.0.0.1:1/nowhere';
    const attempt = openStore({ databaseUrl: unreachable, sqlitePath: '/nonexistent/never-used.db' });
    await expect(attempt).rejects.toBeInstanceOf(StoreOpenError);
    await expect(openStore({ databaseUrl: unreachable, sqlitePath: '' })).rejects.toThrow(
      /Cannot connect to the PostgreSQL database at postgres:\/\/chatgate:\*\*\*@127\.0\.0\.1:1\/nowhere: /,
    );
    await expect(openStore({ databaseUrl: unreachable, sqlitePath: '' })).rejects.not.toThrow(/s3cret/);
    await expect(openStore({ databaseUrl: 'postgres://bad url', sqlitePath: '' })).rejects.toThrow(/not a valid URL/);
    expect(redactDatabaseUrl('postgresql://u:p@h/db?password=x')).toBe('postgresql://u:***@h/db?password=***');
  });

  it('opens Postgres through openStore when a URL is set', async () => {
    await ensureReachable();
    const store = await openStore({ databaseUrl: url, sqlitePath: '' });
    opened.push(store);
    expect(store.dialect).toBe('postgres');
  });
});
