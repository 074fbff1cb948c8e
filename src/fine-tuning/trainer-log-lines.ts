/**
 * An external trainer's stdout lines as objects (command-trainer.ts): JSON objects, or flat
 * Python dict literals as Hugging Face's Trainer prints its logs (`{'loss': 1.23, 'epoch': 0.5}`:
 * single quotes, `nan`/`inf`, `True`/`False`/`None`, `tensor(…)` / `np.float64(…)` wrappers).
 */
/** A stdout line as an object: JSON, or a flat Python dict literal; anything else undefined. */
export function parseLogLine(line: string): Record<string, unknown> | undefined {
  const text = line.trim();
  if (!text.startsWith('{') || !text.endsWith('}')) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return parsePythonDict(text);
  }
}

type PythonScalar = number | string | boolean | null;

/**
 * A flat Python dict literal as printed by `print(dict)`: string keys; values numbers
 * (nan, inf), strings ('…' or "…", with escapes), True/False/None, or a number wrapped in a
 * call (`tensor(1.5, device='cuda:0')`, `np.float64(0.5)`). Nested values: undefined.
 */
export function parsePythonDict(text: string): Record<string, PythonScalar> | undefined {
  let index = 0;
  const skipSpace = (): void => {
    while (index < text.length && /\s/.test(text[index]!)) index++;
  };
  const take = (char: string): boolean => {
    skipSpace();
    if (text[index] !== char) return false;
    index++;
    return true;
  };
  const string = (): string | undefined => {
    skipSpace();
    const quote = text[index];
    if (quote !== "'" && quote !== '"') return undefined;
    let value = '';
    for (index++; index < text.length; index++) {
      const char = text[index]!;
      if (char === quote) {
        index++;
        return value;
      }
      if (char !== '\\') {
        value += char;
        continue;
      }
      const next = text[++index];
      const escapes: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0' };
      if (next === 'x' || next === 'u') {
        const length = next === 'x' ? 2 : 4;
        const hex = text.slice(index + 1, index + 1 + length);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== length) return undefined;
        value += String.fromCharCode(parseInt(hex, 16));
        index += length;
      } else if (next !== undefined && escapes[next] !== undefined) {
        value += escapes[next];
      } else {
        return undefined;
      }
    }
    return undefined;
  };
  const word = (): string => {
    skipSpace();
    const match = /^[A-Za-z_][\w.]*/.exec(text.slice(index));
    if (match === null) return '';
    index += match[0].length;
    return match[0];
  };
  const value = (): PythonScalar | undefined => {
    skipSpace();
    const char = text[index];
    if (char === "'" || char === '"') return string();
    const numberMatch = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/.exec(text.slice(index));
    if (numberMatch !== null) {
      index += numberMatch[0].length;
      return Number(numberMatch[0]);
    }
    const sign = char === '-' ? -1 : 1;
    if (char === '-' || char === '+') index++;
    const name = word();
    if (name === 'nan') return NaN;
    if (name === 'inf') return sign * Infinity;
    if (char === '-' || char === '+') return undefined;
    if (name === 'True') return true;
    if (name === 'False') return false;
    if (name === 'None') return null;
    if (name === '' || !take('(')) return undefined;
    // tensor(1.5, device='cuda:0'), np.float64(0.5): the number inside.
    const inner = value();
    if (typeof inner !== 'number') return undefined;
    while (take(',')) {
      if (word() === '' || !take('=') || value() === undefined) return undefined;
    }
    return take(')') ? inner : undefined;
  };

  if (!take('{')) return undefined;
  const result: Record<string, PythonScalar> = {};
  if (take('}')) return index === text.length ? result : undefined;
  do {
    const key = string();
    if (key === undefined || !take(':')) return undefined;
    const item = value();
    if (item === undefined) return undefined;
    result[key] = item;
  } while (take(','));
  if (!take('}')) return undefined;
  skipSpace();
  return index === text.length ? result : undefined;
}
