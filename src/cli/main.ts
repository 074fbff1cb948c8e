/**
 * The `chatgate` command line: `chatgate serve [--config FILE] [--port N] [--host H] [--data-dir DIR]`,
 * `chatgate pull <source>`, `chatgate models`, `chatgate keys …` and `chatgate audit verify`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load-config.js';

const USAGE = `Usage: chatgate <command> [options]

Commands:
  serve     Serve the OpenAI-compatible API (default: http://127.0.0.1:8080/v1)
  pull      Download a GGUF model (URL or Hugging Face owner/repo/file.gguf) and add it to the config
  models    List the GGUF models on disk and the configured models using them
  keys      Manage API keys: keys create|list|show|revoke|rotate (chatgate keys --help)
  audit     audit verify: check the audit log's hash chain
  version   Print the version
  help      Print this help

Options of serve:
  --config FILE     YAML config (default: ./chatgate.yaml if present, else built-in models)
  --port N          Port to listen on (default 8080; 0 picks a free port)
  --host H          Address to listen on (default 127.0.0.1)
  --data-dir DIR    Where the database and generated master key live (default ./.chatgate)

Options of pull (chatgate pull <source> [options]; chatgate pull --help for more):
  --models-dir DIR  Where models are stored (default: <data dir>/models)
  --config FILE     Config file the model is added to (default ./chatgate.yaml; created if missing)
  --name NAME       Model name (default: the file name, lowercase, without .gguf)
  --sha256 HEX      Expected sha256 (else the one Hugging Face announces)
  --no-register     Only download; leave the config file alone
  --force           Replace a model of the same name, or a local file that differs
  --quiet, -q       No progress output

Options of models:
  --models-dir DIR, --data-dir DIR, --config FILE as above; --json for machine-readable output

Options of keys (chatgate keys <create|list|show|revoke|rotate> [options]; chatgate keys --help for more):
  --config FILE, --data-dir DIR as for serve; --json for machine-readable output
  create: --name NAME [--project P] [--admin] [--models LIST] [--endpoints LIST] [--ips LIST] [--origins LIST]
          [--rpm N] [--rpd N] [--tpm N] [--budget-usd X] [--budget-period P] [--expires-in-days N] [--metadata K=V]
  rotate: --grace-seconds N (default 86400)

Environment:
  CHATGATE_MASTER_KEY   The API key clients use (generated and stored when unset)
  OPENAI_API_KEY        Route the built-in model names to OpenAI instead of the mock
  HF_TOKEN              Hugging Face access token for pull (gated or private repos)
  HF_ENDPOINT           Hugging Face endpoint for pull (default https://huggingface.co)
  CHATGATE_RECORD_REPLAY  off | record | replay | replay_or_record: record upstream exchanges or replay them (docs/record-replay.md)
  CHATGATE_CASSETTE     The cassette file of record/replay
`;

function version(): string {
  const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return packageJson.version;
}

function parsePort(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new UsageError(`--port must be a number from 0 to 65535, got '${text}'`);
  return port;
}

class UsageError extends Error {}

async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  // Loaded on demand so that `help`, `version` and argument errors answer at once.
  const { startServer } = await import('../server.js');
  const server = await startServer({
    configPath: values.config,
    port: parsePort(values.port),
    host: values.host,
    dataDirectory: values['data-dir'],
  });
  const shutdown = (signal: string) => {
    process.stdout.write(`Received ${signal}: finishing in-flight requests and shutting down\n`);
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`Shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  return new Promise<number>(() => undefined);
}

export async function runCli(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serveCommand(rest);
      case 'pull': {
        const { pullCommand } = await import('./pull-command.js');
        return await pullCommand(rest);
      }
      case 'models': {
        const { modelsCommand } = await import('./models-command.js');
        return await modelsCommand(rest);
      }
      case 'keys': {
        const { keysCommand, KeysUsageError } = await import('./keys-command.js');
        try {
          return await keysCommand(rest);
        } catch (error) {
          if (error instanceof KeysUsageError) throw new UsageError(error.message);
          throw error;
        }
      }
      case 'audit': {
        const { auditCommand } = await import('./audit-command.js');
        return await auditCommand(rest, {
          stdout: (text) => process.stdout.write(text),
          stderr: (text) => process.stderr.write(text),
          environment: process.env,
          workingDirectory: process.cwd(),
        });
      }
      case 'version':
      case '--version':
      case '-v':
        process.stdout.write(`${version()}\n`);
        return 0;
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return 0;
      default:
        process.stderr.write(`Unknown command '${command}'.\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    if (error instanceof TypeError && 'code' in error && String((error as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${error.message}\n\n${USAGE}`);
      return 2;
    }
    // The store could not be opened or migrated (the message names the database, never a password).
    if (error instanceof Error && ['StoreOpenError', 'DatabaseConnectionError', 'SchemaTooNewError'].includes(error.name)) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    if (error instanceof Error && 'code' in error && (error as { code: unknown }).code === 'EADDRINUSE') {
      process.stderr.write(`Cannot listen: the address is already in use (${error.message}). Pick another --port.\n`);
      return 1;
    }
    throw error;
  }
}
