/** Deletes audit records older than `audit.retention_days`, at start and then hourly. */
import type { Logger } from 'pino';
import type { AuditLogStore } from '../storage/spec.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;

export function startRetention(auditLog: AuditLogStore, days: number, logger: Logger, now: () => number = Date.now): { stop(): void } {
  if (days <= 0) return { stop() {} };
  const sweep = () => {
    auditLog.deleteOlderThan(now() - days * DAY).then(
      (deleted) => {
        if (deleted > 0) logger.info({ deleted, retentionDays: days }, 'Deleted audit records past their retention');
      },
      (error: unknown) => logger.warn({ err: error }, 'Audit retention failed; retrying in an hour'),
    );
  };
  sweep();
  const timer = setInterval(sweep, HOUR);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
