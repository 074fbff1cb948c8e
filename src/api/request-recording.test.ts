import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../app-env.js';
import type { AuditRecord } from '../storage/spec.js';
import { validateAuditRecord } from '../storage/audit-records.js';
import type { Metering } from './request-metering.js';
import { finishRequest } from './request-recording.js';

/** The audit record `finishRequest` queues for one request through a bare app. */
async function recordOf(path: string, context: { endUser?: string; rawBody?: string }, auditBodies = false): Promise<AuditRecord> {
  const records: AuditRecord[] = [];
  const app = new Hono<AppEnv>();
  app.all('*', async (c) => {
    c.set('requestId', 'req_test');
    c.set('startedAt', performance.now());
    if (context.endUser !== undefined) c.set('endUser', context.endUser);
    if (context.rawBody !== undefined) c.set('rawBody', context.rawBody);
    await finishRequest(c, { recorder: { record: (record) => records.push(record) }, metering: {} as Metering, auditBodies }, { status: 404, usage: null, stream: false, errorCode: 'unknown_url', responseBody: '{"error":"a\u0000b"}' });
    return c.text('');
  });
  await app.request(path);
  expect(records).toHaveLength(1);
  return records[0]!;
}

describe('finishRequest', () => {
  it('queues a record the audit log can store when the request carries NUL characters', async () => {
    const record = await recordOf('/v1/models/a%00b', { endUser: 'u\u0000x', rawBody: '{"user":"u\u0000x"}' }, true);
    expect(() => validateAuditRecord(record, 0)).not.toThrow();
    expect(record.path).toBe('/v1/models/a%00b');
    expect(record.user).toBe('u\ufffdx');
    expect(record.requestBody).not.toContain('\u0000');
    expect(record.responseBody).not.toContain('\u0000');
  });

  it('keeps a path without NUL as it is', async () => {
    expect((await recordOf('/v1/models/gpt-4o', {})).path).toBe('/v1/models/gpt-4o');
  });
});
