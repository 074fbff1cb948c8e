/** `chatgate models`: the GGUF files in the models folder and the configured models using them. */
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/load-config.js';
import { PullError, describeError } from '../models-on-disk/errors.js';
import { formatBytes, formatCount } from '../models-on-disk/format.js';
import { listModels, type ConfiguredModel, type Listing } from '../models-on-disk/list.js';
import { loadExistingConfig, resolveLocations } from '../models-on-disk/locations.js';

export const MODELS_USAGE = `Usage: chatgate models [options]

Options of models:
  --models-dir DIR  The models folder (default: <data dir>/models)
  --data-dir DIR    Data directory (default: data_dir of the config, else ./.chatgate)
  --config FILE     Config file whose llama-cpp models are matched (default ./chatgate.yaml)
  --json            Machine-readable output
`;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ').trimEnd()).join('\n');
}

export function renderListing(listing: Listing): string {
  const lines: string[] = [];
  lines.push(`Models folder: ${listing.models_dir}${listing.models_dir_exists ? '' : ' (does not exist yet: chatgate pull creates it)'}`);
  lines.push(`Config: ${listing.config ?? 'none'}`);
  lines.push('');
  if (listing.files.length === 0) lines.push('No .gguf files.');
  else {
    const rows = [['FILE', 'SIZE', 'ARCH', 'PARAMS', 'TYPE', 'CONTEXT', 'USED BY']];
    for (const file of listing.files) {
      const gguf = file.gguf;
      const params = gguf?.sizeLabel ?? (gguf?.parameters != null ? formatCount(gguf.parameters) : '-');
      rows.push([
        file.file,
        formatBytes(file.size),
        gguf?.architecture ?? (file.error ? `unreadable: ${file.error}` : '-'),
        params,
        gguf?.fileType ?? '-',
        gguf?.contextLength != null ? String(gguf.contextLength) : '-',
        file.used_by.length > 0 ? file.used_by.join(', ') : '-',
      ]);
    }
    lines.push(table(rows));
  }
  if (listing.incomplete.length > 0) {
    lines.push('', 'Incomplete downloads (run the same chatgate pull again to resume):');
    for (const part of listing.incomplete) {
      const progress = part.total ? ` of ${formatBytes(part.total)} (${Math.floor((part.size / part.total) * 100)}%)` : '';
      lines.push(`  ${part.file}  ${formatBytes(part.size)}${progress}${part.url ? `  from ${part.url}` : ''}`);
    }
  }
  const section = (title: string, models: ConfiguredModel[]): void => {
    if (models.length === 0) return;
    lines.push('', title);
    for (const model of models) lines.push(`  ${model.name} -> ${model.path}`);
  };
  section('Configured llama-cpp models whose file is missing:', listing.missing);
  section('Configured llama-cpp models with a file outside the models folder:', listing.elsewhere);
  return `${lines.join('\n')}\n`;
}

export async function modelsCommand(args: string[], environment: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      'models-dir': { type: 'string' },
      'data-dir': { type: 'string' },
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(MODELS_USAGE);
    return 0;
  }
  if (positionals.length > 0) {
    process.stderr.write(`chatgate models: unexpected argument '${positionals[0]}'\n\n${MODELS_USAGE}`);
    return 2;
  }
  const workingDirectory = process.cwd();
  try {
    const locations = resolveLocations({ config: values.config, modelsDir: values['models-dir'], dataDir: values['data-dir'], environment, workingDirectory });
    if (values.config !== undefined && !locations.configExists) throw new ConfigError(`Config file not found: ${locations.configPath}`);
    const config = loadExistingConfig(locations, environment);
    const configured: ConfiguredModel[] = (config?.models ?? []).flatMap((model) => (model.provider === 'llama-cpp' ? [{ name: model.name, path: model.path }] : []));
    const listing = await listModels({
      modelsDirectory: locations.modelsDirectory,
      configPath: locations.configExists ? locations.configPath : null,
      configured,
      workingDirectory,
    });
    process.stdout.write(values.json ? `${JSON.stringify(listing, null, 2)}\n` : renderListing(listing));
    return 0;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`chatgate models: ${error.message}\n`);
      return 2;
    }
    if (error instanceof PullError || (error instanceof Error && 'code' in error)) {
      process.stderr.write(`chatgate models: ${describeError(error)}\n`);
      return 1;
    }
    throw error;
  }
}
