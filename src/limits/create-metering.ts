/**
 * The server's rate limiter and price table from the config: counters in Redis when
 * `redis_url` is set (shared by every instance), else in memory. A budget's spend so far in
 * its period is read from the audit log the first time the period is touched, so budgets
 * hold across restarts.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { createPriceTable } from '../pricing/price-table.js';
import type { Store } from '../storage/spec.js';
import type { Metering } from './metering.js';
import { MemoryLimiter } from './memory-limiter.js';
import { RedisLimiter } from './redis-limiter.js';

export function createMetering(config: Config, store: Store, logger: Logger): Metering {
  const initialSpend = (subject: string, periodStart: number) => store.auditLog.spendOf(subject, periodStart, Date.now() + 60_000);
  const limiter = config.redis_url
    ? new RedisLimiter({ redis: config.redis_url, initialSpend, logger })
    : new MemoryLimiter({ initialSpend });
  if (limiter instanceof RedisLimiter) logger.debug('Rate-limit counters in Redis');
  return { limiter, prices: createPriceTable(config.prices) };
}
