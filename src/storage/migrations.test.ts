import { describe, expect, it } from 'vitest';
import { latestVersion, migrations, SchemaTooNewError, validateMigrations, type Migration } from './migrations.js';

const sample = (version: number, name = `step_${version}`): Migration => ({
  version,
  name,
  sqlite: 'SELECT 1;',
  postgres: 'SELECT 1;',
});

describe('migrations', () => {
  it('ships a valid list with SQL for both dialects', () => {
    expect(() => validateMigrations(migrations)).not.toThrow();
    expect(latestVersion()).toBe(migrations.length);
    for (const migration of migrations) {
      expect(migration.sqlite).toMatch(/CREATE TABLE|ALTER TABLE/);
      expect(migration.postgres).toMatch(/CREATE TABLE|ALTER TABLE/);
    }
  });

  it('rejects gaps, duplicates, disorder, bad names and missing SQL', () => {
    expect(() => validateMigrations([sample(1), sample(3)])).toThrow(/expected 2/);
    expect(() => validateMigrations([sample(1), sample(1)])).toThrow(/expected 2/);
    expect(() => validateMigrations([sample(2), sample(1)])).toThrow(/expected 1/);
    expect(() => validateMigrations([sample(1, 'Bad Name')])).toThrow(/invalid name/);
    expect(() => validateMigrations([{ ...sample(1), postgres: '  ' }])).toThrow(/lacks SQL/);
    expect(() => validateMigrations([])).not.toThrow();
    expect(latestVersion([])).toBe(0);
  });

  it('explains a schema that is too new', () => {
    const error = new SchemaTooNewError({ databaseVersion: 7, supportedVersion: 2, location: '/data/chatgate.db' });
    expect(error.name).toBe('SchemaTooNewError');
    expect(error.databaseVersion).toBe(7);
    expect(error.supportedVersion).toBe(2);
    expect(error.message).toContain('/data/chatgate.db');
    expect(error.message).toMatch(/schema version 7.*\(2\).*upgrade Chatgate/s);
  });
});
