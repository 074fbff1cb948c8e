/**
 * Finds integers written in exponent notation (`1e5`) in a JSON text. JSON Schema counts
 * them as integers, but many JSON parsers (Python's, for one) read them as floats, so an
 * answer whose schema asks for integers should not contain them. The grammars built for
 * response_format and forced tool calls rule them out; node-llama-cpp's own function-calling
 * grammar (tool_choice auto) does not, so its output is checked with this.
 */
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?[eE][-+]?\d+/y;

/** Whether `text` (valid JSON) holds an integral number written with an exponent. */
export function hasExponentInteger(text: string): boolean {
  let index = 0;
  while (index < text.length) {
    const char = text[index]!;
    if (char === '"') {
      // Skip the string, honouring escapes.
      index++;
      while (index < text.length && text[index] !== '"') index += text[index] === '\\' ? 2 : 1;
      index++;
      continue;
    }
    if (char === '-' || (char >= '0' && char <= '9')) {
      NUMBER.lastIndex = index;
      const match = NUMBER.exec(text);
      if (match && Number.isInteger(Number(match[0]))) return true;
      index++;
      while (index < text.length && /[0-9.eE+-]/.test(text[index]!)) index++;
      continue;
    }
    index++;
  }
  return false;
}

/** Whether the schema asks for an integer anywhere. */
export function mentionsIntegers(schema: unknown): boolean {
  return JSON.stringify(schema ?? null).includes('"integer"');
}
