/**
 * `chatgate audit verify`: checks the audit log's hash chain in the configured database
 * (exit 0 when intact, 1 when a record was changed, inserted or removed inside the chain).
 */
import { parseArgs } from 'node:util';
import { verifyChain } from '../audit/verify-chain.js';
import { openConfiguredStore } from './configured-store.js';

export const AUDIT_USAGE = `Usage: chatgate audit verify [--config FILE] [--data-dir DIR] [--json]

Checks the audit log's hash chain: every record's hash, its link to the record before,
and the digest of its personal fields where they were not erased. Exit code 0 when the
chain is intact, 1 when it is broken (the first broken record is named).
`;

export interface AuditCommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
  environment: NodeJS.ProcessEnv;
  workingDirectory: string;
}

export async function auditCommand(args: string[], io: AuditCommandIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, 'data-dir': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help || positionals.length === 0) {
    io.stdout(AUDIT_USAGE);
    return values.help ? 0 : 2;
  }
  if (positionals[0] !== 'verify' || positionals.length > 1) {
    io.stderr(`Unknown audit command '${positionals.join(' ')}'.\n\n${AUDIT_USAGE}`);
    return 2;
  }
  let opened;
  try {
    opened = await openConfiguredStore({ configPath: values.config, dataDirectory: values['data-dir'], environment: io.environment, workingDirectory: io.workingDirectory });
  } catch (error) {
    io.stderr(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  try {
    const result = await verifyChain(opened.store.auditLog);
    if (values.json) {
      io.stdout(`${JSON.stringify(result, null, 2)}\n`);
    } else if (result.ok) {
      const range = result.firstSeq === null ? 'the audit log is empty' : `records ${result.firstSeq} to ${result.lastSeq}`;
      const anchor = result.anchor && !result.anchor.genesis ? ` (starting after records removed by retention; anchor ${result.anchor.prevHash.slice(0, 12)}…)` : '';
      io.stdout(`Audit chain intact: ${result.checked} records checked, ${range}${anchor}; ${result.erased} with erased personal data.\n`);
    } else {
      io.stdout(`Audit chain BROKEN at record ${result.problem!.seq}: ${result.problem!.reason}. ${result.checked} records checked.\n`);
    }
    return result.ok ? 0 : 1;
  } finally {
    await opened.store.close();
  }
}
