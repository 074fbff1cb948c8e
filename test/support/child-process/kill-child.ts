/**
 * The child process of the kill-and-resume tests (built by child-build.ts, run with plain
 * node): opens the store named by the environment and works on `batch` jobs with a Worker,
 * each item taking ITEM_MS, until it is killed.
 */
import { openPostgresStore } from '../../../src/storage/postgres/postgres-store.js';
import { openSqliteStore } from '../../../src/storage/sqlite/sqlite-store.js';
import { Worker } from '../../../src/jobs/worker.js';

const environment = process.env;
const store =
  environment.JOBS_DIALECT === 'postgres'
    ? await openPostgresStore(environment.JOBS_DATABASE_URL!, { schema: environment.JOBS_SCHEMA!, max: 4 })
    : openSqliteStore(environment.JOBS_SQLITE_PATH!);
await store.migrate();
const itemMs = Number(environment.ITEM_MS ?? '5');
const leaseMs = Number(environment.LEASE_MS ?? '1000');
const worker = new Worker({
  queue: store.jobs,
  id: `child-${process.pid}`,
  leaseMs,
  pollMinMs: 20,
  pollMaxMs: 100,
  handlers: {
    batch: async (_job, context) => {
      await context.processItems(
        async (item) => {
          await new Promise((resolve) => setTimeout(resolve, itemMs));
          return { key: item.itemKey, by: context.workerId };
        },
        { concurrency: 4 },
      );
      return { done: true };
    },
  },
});
worker.start();
process.send?.('started');
