import { describe, expect, it } from 'vitest';
import { chainRecords } from '../storage/audit-records.js';
import type { AuditLogStore, StoredAuditRecord } from '../storage/spec.js';
import { auditRecord } from '../../test/support/store-contract/store-contract.js';
import { GENESIS_HASH } from '../storage/audit-chain.js';
import { verifyChain } from './verify-chain.js';

/** A store over an array, counting the rows each scan returns. */
function arrayStore(
  records: StoredAuditRecord[],
  head = { seq: records.at(-1)?.seq ?? 0, hash: records.at(-1)?.hash ?? GENESIS_HASH },
): Pick<AuditLogStore, 'scan' | 'head'> & { largestScan: number } {
  const store = {
    largestScan: 0,
    head: async () => head,
    async scan(afterSeq: number, limit: number) {
      const page = records.filter((record) => record.seq > afterSeq).slice(0, limit);
      store.largestScan = Math.max(store.largestScan, page.length);
      return page.map((record) => ({ ...record }));
    },
  };
  return store;
}

function chain(length: number): StoredAuditRecord[] {
  const records = Array.from({ length }, (_, index) =>
    auditRecord({ requestId: `req_${index + 1}`, createdAt: 1_700_000_000_000 + index, user: index % 2 === 0 ? 'alice' : 'bob', requestBody: `body ${index}` }),
  );
  return chainRecords({ lastSeq: 0, lastHash: GENESIS_HASH }, records).stored;
}

describe('verifyChain', () => {
  it('catches records removed from the end of the chain through the chain head', async () => {
    const records = chain(10);
    const head = { seq: 10, hash: records[9]!.hash };
    expect(await verifyChain(arrayStore(records.slice(0, 8), head))).toMatchObject({ ok: false, problem: { seq: 10, reason: expect.stringContaining('removed') } });
    expect(await verifyChain(arrayStore([], head))).toMatchObject({ ok: false });
    expect(await verifyChain(arrayStore(records, head))).toMatchObject({ ok: true, checked: 10 });
    // A head that names a record with another hash: the last record was rewritten with its chain.
    expect(await verifyChain(arrayStore(records, { seq: 10, hash: records[8]!.hash }))).toMatchObject({ ok: false });
  });

  it('accepts an intact chain, reading it in batches', async () => {
    const store = arrayStore(chain(25));
    const result = await verifyChain(store, { batchSize: 4 });
    expect(result).toEqual({ checked: 25, erased: 0, firstSeq: 1, lastSeq: 25, anchor: { seq: 1, prevHash: GENESIS_HASH, genesis: true }, ok: true });
    expect(store.largestScan).toBeLessThanOrEqual(4);
  });

  it('accepts an empty log', async () => {
    expect(await verifyChain(arrayStore([]))).toEqual({ checked: 0, erased: 0, firstSeq: null, lastSeq: null, anchor: null, ok: true });
  });

  it('detects a changed token count', async () => {
    const records = chain(5);
    records[2]!.completionTokens = 9999;
    expect(await verifyChain(arrayStore(records))).toMatchObject({ ok: false, checked: 3, problem: { seq: 3, reason: expect.stringMatching(/hash does not match/) } });
  });

  it('detects a deleted middle record', async () => {
    const records = chain(5);
    records.splice(2, 1);
    expect(await verifyChain(arrayStore(records))).toMatchObject({ ok: false, problem: { seq: 4, reason: 'record 3 is missing (deleted inside the chain)' } });
  });

  it('detects a deleted middle record whose successors were renumbered', async () => {
    const records = chain(5);
    records.splice(2, 1);
    for (const record of records.slice(2)) record.seq -= 1;
    expect(await verifyChain(arrayStore(records))).toMatchObject({ ok: false, problem: { seq: 3, reason: expect.stringMatching(/prevHash does not match the hash of record 2/) } });
  });

  it('detects a changed user, and a record marked erased that still holds personal data', async () => {
    const records = chain(4);
    records[1]!.user = 'mallory';
    expect(await verifyChain(arrayStore(records))).toMatchObject({ ok: false, problem: { seq: 2, reason: expect.stringMatching(/personal fields do not match/) } });

    const hidden = chain(4);
    hidden[1]!.user = 'mallory';
    hidden[1]!.erasedAt = 1;
    expect(await verifyChain(arrayStore(hidden))).toMatchObject({ ok: false, problem: { seq: 2, reason: expect.stringMatching(/marked erased/) } });
  });

  it('detects a forged first record', async () => {
    const records = chain(3);
    records[0]!.prevHash = 'f'.repeat(64);
    expect(await verifyChain(arrayStore(records))).toMatchObject({ ok: false, problem: { seq: 1, reason: expect.stringMatching(/genesis/) } });
  });

  it('accepts erased records (digest kept) and a chain cut by retention, reporting the anchor', async () => {
    const records = chain(6).slice(2);
    for (const record of records.filter((entry) => entry.user === 'alice')) {
      Object.assign(record, { user: null, clientIp: null, requestBody: null, responseBody: null, erasedAt: 1_700_000_100_000 });
    }
    const result = await verifyChain(arrayStore(records), { batchSize: 3 });
    expect(result).toEqual({
      checked: 4,
      erased: 2,
      firstSeq: 3,
      lastSeq: 6,
      anchor: { seq: 3, prevHash: records[0]!.prevHash, genesis: false },
      ok: true,
    });
  });

  it('rejects a bad batch size', async () => {
    await expect(verifyChain(arrayStore([]), { batchSize: 0 })).rejects.toThrow(RangeError);
  });
});
