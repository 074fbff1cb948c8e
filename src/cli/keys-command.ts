/**
 * `chatgate keys create|list|show|revoke|rotate`: manage API keys directly in the configured
 * database (the same config and data directory as `serve`; PostgreSQL when `database_url`
 * is set). Changes are seen by running servers within a second. Options mirror the admin
 * API; `--json` prints the admin API's JSON.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveDataDirectory } from '../config/data-directory.js';
import { loadConfig } from '../config/load-config.js';
import { GatewayError } from '../errors/gateway-error.js';
import { keyToJson, type KeyJson } from '../keys/key-settings.js';
import { KeyService } from '../keys/key-service.js';
import { openStore } from '../storage/open-store.js';
import { restrictNewFiles } from '../storage/private-files.js';
import type { Store } from '../storage/spec.js';

export const KEYS_USAGE = `Usage: chatgate keys <create|list|show|revoke|rotate> [options]

  chatgate keys create --name NAME [rights and limits]   Create a key; prints the secret once
  chatgate keys list [--limit N] [--after ID] [--include-revoked]
  chatgate keys show <id>
  chatgate keys revoke <id>
  chatgate keys rotate <id> [--grace-seconds N]          New secret; the old one works N more seconds (default 86400)

Rights and limits of create (lists: comma-separated or the option repeated):
  --project P  --admin  --models LIST  --endpoints LIST  --ips LIST  --origins LIST
  --rpm N  --rpd N  --tpm N  --budget-usd X  --budget-period day|week|month|total
  --queue-seconds N  --expires-at UNIX_SECONDS|ISO_DATE  --expires-in-days N  --metadata KEY=VALUE
  --cache default|off   off: this key's requests never use the response cache
  --pii default|off|mask|pseudonymize|block   PII policy of this key's requests (default: the model's / server's)

Common options:
  --config FILE  --data-dir DIR   as for serve
  --json                          machine-readable output (the admin API's JSON)
`;

export class KeysUsageError extends Error {}

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  name: { type: 'string' },
  project: { type: 'string' },
  admin: { type: 'boolean' },
  models: { type: 'string', multiple: true },
  endpoints: { type: 'string', multiple: true },
  ips: { type: 'string', multiple: true },
  origins: { type: 'string', multiple: true },
  rpm: { type: 'string' },
  rpd: { type: 'string' },
  tpm: { type: 'string' },
  'budget-usd': { type: 'string' },
  'budget-period': { type: 'string' },
  'queue-seconds': { type: 'string' },
  cache: { type: 'string' },
  pii: { type: 'string' },
  'expires-at': { type: 'string' },
  'expires-in-days': { type: 'string' },
  metadata: { type: 'string', multiple: true },
  limit: { type: 'string' },
  after: { type: 'string' },
  'include-revoked': { type: 'boolean' },
  'grace-seconds': { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function number(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new KeysUsageError(`--${option} must be a number, got '${text}'`);
  return value;
}

function list(values: string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  return values.flatMap((value) => value.split(',')).map((value) => value.trim()).filter((value) => value.length > 0);
}

function expiresAt(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (/^\d+$/.test(text)) return Number(text);
  const time = Date.parse(text);
  if (Number.isNaN(time)) throw new KeysUsageError(`--expires-at must be Unix seconds or an ISO date, got '${text}'`);
  return Math.floor(time / 1000);
}

/** The admin API's create body from the command-line options. */
export function createBodyFromOptions(values: Values): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const set = (name: string, value: unknown) => {
    if (value !== undefined) body[name] = value;
  };
  set('name', values.name);
  set('project', values.project);
  if (values.admin) body.admin = true;
  set('models', list(values.models));
  set('endpoints', list(values.endpoints));
  set('ips', list(values.ips));
  set('origins', list(values.origins));
  set('rpm', number('rpm', values.rpm));
  set('rpd', number('rpd', values.rpd));
  set('tpm', number('tpm', values.tpm));
  set('budget_usd', number('budget-usd', values['budget-usd']));
  set('budget_period', values['budget-period']);
  set('queue_seconds', number('queue-seconds', values['queue-seconds']));
  set('cache', values.cache);
  set('pii', values.pii);
  set('expires_at', expiresAt(values['expires-at']));
  set('expires_in_days', number('expires-in-days', values['expires-in-days']));
  if (values.metadata !== undefined) {
    const metadata: Record<string, string> = {};
    for (const entry of values.metadata) {
      const equals = entry.indexOf('=');
      if (equals <= 0) throw new KeysUsageError(`--metadata must be KEY=VALUE, got '${entry}'`);
      metadata[entry.slice(0, equals)] = entry.slice(equals + 1);
    }
    body.metadata = metadata;
  }
  return body;
}

const when = (seconds: number | null) => (seconds === null ? 'never' : new Date(seconds * 1000).toISOString());
const listText = (values: string[] | null) => (values === null ? 'any' : values.join(', ') || '(none)');

function describe(key: KeyJson): string {
  const limits = [key.rpm && `${key.rpm} requests/min`, key.rpd && `${key.rpd} requests/day`, key.tpm && `${key.tpm} tokens/min`].filter(Boolean).join(', ');
  const lines = [
    `id:          ${key.id}`,
    `name:        ${key.name}`,
    `prefix:      ${key.prefix}`,
    `status:      ${key.status}`,
    `project:     ${key.project}${key.admin ? ' (admin)' : ''}`,
    `models:      ${listText(key.models)}`,
    `endpoints:   ${listText(key.endpoints)}`,
    `ips:         ${listText(key.ips)}`,
    `origins:     ${listText(key.origins)}`,
    `limits:      ${limits || 'none'}`,
    `budget:      ${key.budget_usd === null ? 'none' : `${key.budget_usd} USD per ${key.budget_period}`}`,
    `created:     ${when(key.created_at)}`,
    `expires:     ${when(key.expires_at)}`,
  ];
  if (key.cache === 'off') lines.push('cache:       off');
  if (key.pii !== 'default') lines.push(`pii:         ${key.pii}`);
  if (key.revoked_at !== null) lines.push(`revoked:     ${when(key.revoked_at)}`);
  if (key.previous_prefix !== null) lines.push(`old secret:  ${key.previous_prefix}… valid until ${when(key.previous_valid_until)}`);
  if (Object.keys(key.metadata).length > 0) lines.push(`metadata:    ${Object.entries(key.metadata).map(([name, value]) => `${name}=${value}`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

function table(keys: KeyJson[]): string {
  const rows = [['ID', 'NAME', 'PREFIX', 'STATUS', 'PROJECT', 'EXPIRES'], ...keys.map((key) => [key.id, key.name, key.prefix, key.status + (key.admin ? ' admin' : ''), key.project, when(key.expires_at)])];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export interface KeysCommandIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  environment?: NodeJS.ProcessEnv;
  workingDirectory?: string;
}

export async function keysCommand(args: string[], io: KeysCommandIo = {}): Promise<number> {
  const stdout = io.stdout ?? ((text: string) => process.stdout.write(text));
  const stderr = io.stderr ?? ((text: string) => process.stderr.write(text));
  const environment = io.environment ?? process.env;
  const workingDirectory = io.workingDirectory ?? process.cwd();
  const { values, positionals } = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  const [action, ...rest] = positionals;
  if (values.help || action === undefined || action === 'help') {
    stdout(KEYS_USAGE);
    return action === undefined && !values.help ? 2 : 0;
  }
  const needsId = action === 'show' || action === 'revoke' || action === 'rotate';
  if (!['create', 'list', 'show', 'revoke', 'rotate'].includes(action)) throw new KeysUsageError(`Unknown keys command '${action}'.\n\n${KEYS_USAGE}`);
  if (needsId && rest.length !== 1) throw new KeysUsageError(`chatgate keys ${action} needs one key id, e.g. chatgate keys ${action} key_0123456789abcdef`);
  if (!needsId && rest.length > 0) throw new KeysUsageError(`Unexpected argument '${rest[0]}'.`);
  const body = action === 'create' ? createBodyFromOptions(values) : undefined;
  const grace = number('grace-seconds', values['grace-seconds']);
  const limit = number('limit', values.limit);

  const { config } = loadConfig({ path: values.config, workingDirectory, environment });
  const dataDirectory = resolveDataDirectory({ option: values['data-dir'], configured: config.data_dir, environment, workingDirectory });
  const { mkdirSync } = await import('node:fs');
  restrictNewFiles();
  if (!config.database_url) mkdirSync(dataDirectory, { recursive: true, mode: 0o700 });
  let store: Store;
  try {
    store = await openStore({ databaseUrl: config.database_url, sqlitePath: join(dataDirectory, 'chatgate.db') });
    await store.migrate();
  } catch (error) {
    stderr(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  try {
    const service = new KeyService(store.keys);
    const print = (json: unknown, text: string) => stdout(values.json ? `${JSON.stringify(json, null, 2)}\n` : text);
    switch (action) {
      case 'create': {
        const { record, secret } = await service.create(body);
        const json = { ...keyToJson(record), secret };
        print(json, `Created ${record.id} (${record.name}). Its secret is shown only now; store it safely:\n\n  ${secret}\n\n${describe(keyToJson(record))}`);
        if (values.json) stderr('The secret is shown only once: store it safely.\n');
        return 0;
      }
      case 'list': {
        const page = await service.list({
          ...(limit !== undefined ? { limit } : { limit: 100 }),
          ...(values.after !== undefined ? { after: values.after } : {}),
          includeRevoked: values['include-revoked'] ?? false,
        });
        const data = page.records.map((record) => keyToJson(record));
        const more = page.hasMore ? `(more: chatgate keys list --after ${data.at(-1)!.id})\n` : '';
        print({ object: 'list', data, has_more: page.hasMore }, data.length === 0 ? 'No keys.\n' : table(data) + more);
        return 0;
      }
      case 'show': {
        const key = keyToJson(await service.get(rest[0]!));
        print(key, describe(key));
        return 0;
      }
      case 'revoke': {
        const key = keyToJson(await service.revoke(rest[0]!));
        print(key, `Revoked ${key.id} (${key.name}).\n`);
        return 0;
      }
      default: {
        const { record, secret } = await service.rotate(rest[0]!, grace);
        const key = keyToJson(record);
        const old = key.previous_prefix === null ? 'The old secret no longer works.' : `The old secret (${key.previous_prefix}…) works until ${when(key.previous_valid_until)}.`;
        print({ ...key, secret }, `Rotated ${key.id}. The new secret is shown only now; store it safely:\n\n  ${secret}\n\n${old}\n`);
        return 0;
      }
    }
  } catch (error) {
    if (error instanceof GatewayError && error.status < 500) {
      stderr(`${error.message}${error.param ? ` (${error.param})` : ''}\n`);
      return 2;
    }
    throw error;
  } finally {
    await store.close();
  }
}
