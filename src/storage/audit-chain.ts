/**
 * The audit log's hash chain. Each record's hash covers the previous record's hash, the
 * record's non-personal fields and the digest of its personal fields, so that any change,
 * insertion or deletion inside the chain is detected by `chatgate audit verify`, while the
 * personal fields themselves can be erased (GDPR) without breaking it: their digest stays.
 *
 * Canonical form: a JSON array of the fields in a fixed order (numbers as JSON numbers,
 * absent values as null), so both storage back ends and the verifier hash the same bytes.
 * `piiCounts` (newer than the chain) is appended only when non-null: older records, and
 * records without PII, hash exactly as before.
 */
import { createHash } from 'node:crypto';
import type { AuditRecord } from './spec.js';

/** The prevHash of the first record of a chain. */
export const GENESIS_HASH = '0'.repeat(64);

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Digest of the erasable fields. */
export function personalDigest(record: Pick<AuditRecord, 'user' | 'clientIp' | 'requestBody' | 'responseBody'>): string {
  return sha256(JSON.stringify([record.user ?? null, record.clientIp ?? null, record.requestBody ?? null, record.responseBody ?? null]));
}

/** The hash of a record at `seq` following `prevHash`. */
export function chainHash(prevHash: string, seq: number, record: AuditRecord, digest: string): string {
  const fields = [
    seq,
    record.requestId,
    record.createdAt,
    record.method,
    record.path,
    record.model ?? null,
    record.provider ?? null,
    record.status,
    record.durationMs,
    record.promptTokens ?? null,
    record.completionTokens ?? null,
    record.cachedTokens ?? null,
    record.costMicros ?? null,
    record.stream,
    record.cacheHit ?? null,
    record.errorCode ?? null,
    record.keyId ?? null,
    digest,
  ];
  // Added with migration 4: only when set, so that records without it hash exactly as before.
  if (record.piiCounts !== null && record.piiCounts !== undefined) fields.push(record.piiCounts);
  return sha256(`${prevHash}\n${JSON.stringify(fields)}`);
}
