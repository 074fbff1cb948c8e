/**
 * Verifies the audit log's hash chain (audit-chain.ts) by scanning the store oldest first
 * in batches, so memory stays constant however long the log is.
 *
 * For each record: its hash is recomputed from its prevHash and fields; its prevHash must be
 * the previous record's hash (and its seq the next one); when its personal fields are still
 * present (not erased), their digest is recomputed and compared. The first record is the
 * anchor: when its seq is 1 its prevHash must be the genesis hash; otherwise retention
 * deleted the records before it and its prevHash is taken on trust (reported as `anchor`).
 * Records removed from the very end are caught by the chain head, which the store keeps apart
 * (the head is read before the scan, so records appended meanwhile do not matter).
 */
import type { AuditLogStore, StoredAuditRecord } from '../storage/spec.js';
import { chainHash, GENESIS_HASH, personalDigest } from '../storage/audit-chain.js';

export interface VerifyChainOptions {
  /** Records read per query. Default 1000. */
  batchSize?: number;
}

export interface VerifyChainResult {
  /** Records checked (up to and including the first bad one). */
  checked: number;
  /** Of those, records whose personal fields were erased (digest kept, not recomputable). */
  erased: number;
  firstSeq: number | null;
  lastSeq: number | null;
  /** The first remaining record; `genesis` false when retention deleted the records before it. */
  anchor: { seq: number; prevHash: string; genesis: boolean } | null;
  ok: boolean;
  /** The first problem found; verification stops there. */
  problem?: { seq: number; reason: string };
}

function problemOf(record: StoredAuditRecord, previous: StoredAuditRecord | null): string | null {
  if (previous === null) {
    if (record.seq === 1 && record.prevHash !== GENESIS_HASH) return 'the first record of the chain does not follow the genesis hash';
  } else {
    if (record.seq !== previous.seq + 1) {
      const missing = record.seq - previous.seq - 1;
      return missing === 1
        ? `record ${previous.seq + 1} is missing (deleted inside the chain)`
        : `records ${previous.seq + 1}–${record.seq - 1} are missing (deleted inside the chain)`;
    }
    if (record.prevHash !== previous.hash) return `prevHash does not match the hash of record ${previous.seq}`;
  }
  if (chainHash(record.prevHash, record.seq, record, record.personalDigest) !== record.hash) {
    return 'the hash does not match the record: it was altered after it was written';
  }
  if (record.erasedAt === null) {
    if (personalDigest(record) !== record.personalDigest) return 'the personal fields do not match their digest: they were altered';
  } else if (record.user !== null || record.clientIp !== null || record.requestBody !== null || record.responseBody !== null) {
    return 'the record is marked erased but still holds personal fields';
  }
  return null;
}

export async function verifyChain(store: Pick<AuditLogStore, 'scan' | 'head'>, options: VerifyChainOptions = {}): Promise<VerifyChainResult> {
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const result: VerifyChainResult = { checked: 0, erased: 0, firstSeq: null, lastSeq: null, anchor: null, ok: true };
  // Read before the scan: records appended meanwhile come after it and do not matter.
  const head = await store.head();
  let headSeen = head.seq === 0;
  let previous: StoredAuditRecord | null = null;
  for (;;) {
    const batch = await store.scan(previous?.seq ?? 0, batchSize);
    for (const record of batch) {
      result.checked += 1;
      if (record.erasedAt !== null) result.erased += 1;
      if (previous === null) {
        result.firstSeq = record.seq;
        result.anchor = { seq: record.seq, prevHash: record.prevHash, genesis: record.seq === 1 };
      }
      result.lastSeq = record.seq;
      const reason = problemOf(record, previous);
      if (reason !== null) {
        result.ok = false;
        result.problem = { seq: record.seq, reason };
        return result;
      }
      if (record.seq === head.seq) {
        headSeen = true;
        if (record.hash !== head.hash) {
          result.ok = false;
          result.problem = { seq: record.seq, reason: 'the record at the chain head does not have the hash the head recorded' };
          return result;
        }
      }
      previous = record;
    }
    if (batch.length < batchSize) break;
  }
  if (!headSeen) {
    result.ok = false;
    const after = result.lastSeq === null ? 'the chain is empty' : `it ends at record ${result.lastSeq}`;
    result.problem = { seq: head.seq, reason: `records at the end of the chain were removed: the chain head is record ${head.seq}, but ${after}` };
  }
  return result;
}
