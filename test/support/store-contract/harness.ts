/** What a storage back end gives the store and job-queue contracts (test/support/store-contract/). */
import type { Store } from '../../../src/storage/spec.js';

export interface ContractDatabase {
  /** Opens a new store on this database (not migrated). The harness closes it. */
  open(): Promise<Store>;
  /** Runs raw SQL on this database (to tamper with it). */
  exec(sql: string): Promise<void>;
}

export interface ContractHarness {
  dialect: 'sqlite' | 'postgres';
  /** A new, empty database (file, schema, …); cleaned up by the harness. */
  freshDatabase(): Promise<ContractDatabase>;
}
