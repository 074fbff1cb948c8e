export * from './limiter.js';
export * from './windows.js';
export { MemoryLimiter, type MemoryLimiterOptions } from './memory-limiter.js';
export { RedisLimiter, type RedisLimiterOptions } from './redis-limiter.js';
export { formatDuration, rateLimitHeaders } from './headers.js';
export { refusalError, formatUsd, type RefusalErrorOptions } from './errors.js';
export { reserveWithin, abortableSleep, type ReserveWithinOptions } from './wait.js';
