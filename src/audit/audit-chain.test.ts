import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chainRecords, validateAuditRecord } from '../storage/audit-records.js';
import { auditRecord } from '../../test/support/store-contract/store-contract.js';
import type { AuditRecord, StoredAuditRecord } from '../storage/spec.js';
import { chainHash, GENESIS_HASH, personalDigest } from '../storage/audit-chain.js';
import { verifyChain } from './verify-chain.js';

/** The hash as Chatgate computed it before `piiCounts` existed (migration 3). */
function legacyHash(prevHash: string, seq: number, record: AuditRecord, digest: string): string {
  const fields = [
    seq, record.requestId, record.createdAt, record.method, record.path, record.model ?? null, record.provider ?? null, record.status,
    record.durationMs, record.promptTokens ?? null, record.completionTokens ?? null, record.cachedTokens ?? null, record.costMicros ?? null,
    record.stream, record.cacheHit ?? null, record.errorCode ?? null, record.keyId ?? null, digest,
  ];
  return createHash('sha256').update(`${prevHash}\n${JSON.stringify(fields)}`, 'utf8').digest('hex');
}

const store = (records: StoredAuditRecord[]) => ({
  scan: async (afterSeq: number, limit: number) => records.filter((record) => record.seq > afterSeq).slice(0, limit).map((record) => ({ ...record })),
  head: async () => ({ seq: records.at(-1)?.seq ?? 0, hash: records.at(-1)?.hash ?? GENESIS_HASH }),
});

describe('chainHash and piiCounts', () => {
  it('records without piiCounts hash exactly as before (existing chains still verify)', async () => {
    const record = auditRecord({ requestId: 'req_old' });
    const digest = personalDigest(record);
    expect(chainHash(GENESIS_HASH, 1, record, digest)).toBe(legacyHash(GENESIS_HASH, 1, record, digest));
    expect(chainHash(GENESIS_HASH, 1, { ...record, piiCounts: null }, digest)).toBe(legacyHash(GENESIS_HASH, 1, record, digest));

    // A chain written by the old code (legacy hashes, no piiCounts), read back with piiCounts null, then extended.
    let prev = GENESIS_HASH;
    const old: StoredAuditRecord[] = [1, 2, 3].map((seq) => {
      const entry = auditRecord({ requestId: `req_${seq}`, createdAt: 1_700_000_000_000 + seq });
      const entryDigest = personalDigest(entry);
      const hash = legacyHash(prev, seq, entry, entryDigest);
      const stored = { ...entry, piiCounts: null, seq, personalDigest: entryDigest, prevHash: prev, hash, erasedAt: null };
      prev = hash;
      return stored;
    });
    const extended = chainRecords({ lastSeq: 3, lastHash: prev }, [auditRecord({ requestId: 'req_4', piiCounts: 'email=2,card=1' }), auditRecord({ requestId: 'req_5' })]).stored;
    expect(await verifyChain(store([...old, ...extended]))).toMatchObject({ ok: true, checked: 5 });
  });

  it('piiCounts, when set, is covered by the hash', async () => {
    const records = chainRecords({ lastSeq: 0, lastHash: GENESIS_HASH }, [auditRecord({ requestId: 'a', piiCounts: 'email=1' }), auditRecord({ requestId: 'b' })]).stored;
    expect(records[0]!.hash).not.toBe(legacyHash(GENESIS_HASH, 1, records[0]!, records[0]!.personalDigest));
    const tampered = records.map((record, index) => (index === 0 ? { ...record, piiCounts: 'email=0' } : record));
    expect((await verifyChain(store(tampered))).ok).toBe(false);
    const dropped = records.map((record, index) => (index === 0 ? { ...record, piiCounts: null } : record));
    expect((await verifyChain(store(dropped))).ok).toBe(false);
  });

  it('rejects a piiCounts that is not kinds and counts', () => {
    expect(() => validateAuditRecord(auditRecord({ piiCounts: 'alice@example.com' }), 0)).toThrow(/piiCounts/);
    expect(() => validateAuditRecord(auditRecord({ piiCounts: 'email=2,card=1' }), 0)).not.toThrow();
  });
});
