// Command-line flags of the bench scripts: `--name VALUE`, `--name=VALUE`, else the
// environment variable, else the fallback.
export function flag(name, envName, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i !== -1 && i + 1 < process.argv.length) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (eq) return eq.slice(name.length + 3);
  if (process.env[envName] !== undefined && process.env[envName] !== '') return process.env[envName];
  return fallback;
}

/** The value of `--name VALUE` / `--name=VALUE` (not a following `--flag`), else undefined. */
export function argValue(name) {
  const i = process.argv.indexOf(`--${name}`);
  if (i !== -1 && i + 1 < process.argv.length && !process.argv[i + 1].startsWith('--')) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : undefined;
}

/** A boolean switch: `--name`, or the environment variable set to 1 / true / yes. */
export function argFlag(name, envName) {
  return process.argv.includes(`--${name}`) || ['1', 'true', 'yes'].includes(String(process.env[envName] ?? '').toLowerCase());
}

/** `--name VALUE`, else the environment variable, else the fallback. */
export function opt(name, envName, fallback) {
  const v = argValue(name) ?? process.env[envName];
  return v === undefined || v === '' ? fallback : v;
}

/** With --help / -h: prints the script's leading comment block and exits. */
export function printHelpIfAsked(scriptPath, readFile) {
  if (!process.argv.includes('--help') && !process.argv.includes('-h')) return;
  const src = readFile(scriptPath, 'utf8').split('\n');
  console.log(src.slice(1, src.findIndex((l) => l.startsWith('import'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
