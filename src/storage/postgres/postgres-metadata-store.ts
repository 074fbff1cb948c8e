import type pg from 'pg';
import type { MetadataStore } from '../spec.js';

export class PostgresMetadataStore implements MetadataStore {
  constructor(private readonly pool: pg.Pool) {}

  async get(key: string): Promise<string | null> {
    const result = await this.pool.query<{ value: string }>('SELECT value FROM metadata WHERE key = $1', [key]);
    return result.rows[0]?.value ?? null;
  }

  async set(key: string, value: string): Promise<void> {
    await this.pool.query(
      'INSERT INTO metadata (key, value, updated_at) VALUES ($1, $2, $3) ' +
        'ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
      [key, value, Date.now()],
    );
  }
}
