/**
 * Best-effort sample strings for a regular expression (JSON Schema `pattern`): the pattern
 * is parsed into a small syntax tree (literals, escapes, character classes, groups,
 * alternation, quantifiers, back-references) and a string is built from it, taking the
 * first alternative, the first member of each class and each quantifier's minimum count
 * plus `extra` repetitions. Assertions (`^`, `$`, `\b`, look-arounds) produce nothing, so
 * a pattern that relies on them may yield a string that does not match: callers check the
 * result with a real RegExp.
 */

type CharacterTest = (character: string) => boolean;

interface ClassMember {
  test: CharacterTest;
  /** Characters to try first when picking a member of the class. */
  preferred: string[];
}

type RegexNode =
  | { kind: 'sequence'; items: RegexNode[] }
  | { kind: 'alternation'; options: RegexNode[] }
  | { kind: 'literal'; text: string }
  | { kind: 'class'; negated: boolean; members: ClassMember[] }
  | { kind: 'group'; captureIndex: number | null; body: RegexNode }
  | { kind: 'repeat'; body: RegexNode; minimum: number; maximum: number }
  | { kind: 'backreference'; reference: number | string }
  | { kind: 'empty' };

class UnsupportedPattern extends Error {}

/** Characters tried, in order, when a class must be satisfied by something other than its first member. */
const fallbackCharacters = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  '_', '-', ' ', '.', ',', ':', ';', '/', '@', '#', '+', '=', '!', '?', '*', '(', ')', '[', ']',
  '{', '}', '<', '>', '"', "'", '\\', '|', '&', '%', '$', '^', '~', '`', '\t', '\n', 'é', 'ß', '日',
];

const digit: ClassMember = { test: (character) => /^[0-9]$/.test(character), preferred: ['0'] };
const wordCharacter: ClassMember = { test: (character) => /^\w$/.test(character), preferred: ['a'] };
const space: ClassMember = { test: (character) => /^\s$/u.test(character), preferred: [' '] };

function negate(member: ClassMember, preferred: string[]): ClassMember {
  return { test: (character) => !member.test(character), preferred };
}

function classEscape(letter: string): ClassMember | undefined {
  switch (letter) {
    case 'd': return digit;
    case 'D': return negate(digit, ['a']);
    case 'w': return wordCharacter;
    case 'W': return negate(wordCharacter, ['-', ' ']);
    case 's': return space;
    case 'S': return negate(space, ['a']);
    default: return undefined;
  }
}

const controlEscapes: Record<string, string> = { n: '\n', r: '\r', t: '\t', f: '\f', v: '\v', '0': '\0' };

class PatternParser {
  #position = 0;
  #captureCount = 0;
  readonly #namedCaptures = new Map<string, number>();

  constructor(private readonly source: string) {}

  parse(): RegexNode {
    const node = this.#alternation();
    if (this.#position < this.source.length) throw new UnsupportedPattern(`unexpected '${this.source[this.#position]}'`);
    return node;
  }

  #peek(offset = 0): string | undefined {
    return this.source[this.#position + offset];
  }

  #alternation(): RegexNode {
    const options = [this.#sequence()];
    while (this.#peek() === '|') {
      this.#position++;
      options.push(this.#sequence());
    }
    return options.length === 1 ? (options[0] as RegexNode) : { kind: 'alternation', options };
  }

  #sequence(): RegexNode {
    const items: RegexNode[] = [];
    while (this.#position < this.source.length && this.#peek() !== '|' && this.#peek() !== ')') {
      const atom = this.#atom();
      items.push(this.#quantified(atom));
    }
    return { kind: 'sequence', items };
  }

  #quantified(atom: RegexNode): RegexNode {
    let minimum: number;
    let maximum: number;
    const next = this.#peek();
    if (next === '*') [minimum, maximum] = [0, Infinity];
    else if (next === '+') [minimum, maximum] = [1, Infinity];
    else if (next === '?') [minimum, maximum] = [0, 1];
    else if (next === '{') {
      const match = /^\{(\d+)(,(\d*))?\}/.exec(this.source.slice(this.#position));
      if (!match) return atom;
      minimum = Number(match[1]);
      maximum = match[2] === undefined ? minimum : match[3] === '' || match[3] === undefined ? Infinity : Number(match[3]);
      this.#position += match[0].length - 1;
    } else return atom;
    this.#position++;
    if (this.#peek() === '?' || this.#peek() === '+') this.#position++; // lazy or possessive: same strings
    return { kind: 'repeat', body: atom, minimum, maximum };
  }

  #atom(): RegexNode {
    const character = this.#peek() as string;
    this.#position++;
    switch (character) {
      case '^':
      case '$':
        return { kind: 'empty' };
      case '.':
        return { kind: 'class', negated: true, members: [{ test: (text) => text === '\n' || text === '\r', preferred: [] }] };
      case '(':
        return this.#group();
      case '[':
        return this.#characterClass();
      case '\\':
        return this.#escape();
      default: {
        // keep astral characters whole
        const codePoint = this.source.codePointAt(this.#position - 1) ?? 0;
        if (codePoint > 0xffff) {
          this.#position++;
          return { kind: 'literal', text: String.fromCodePoint(codePoint) };
        }
        return { kind: 'literal', text: character };
      }
    }
  }

  #group(): RegexNode {
    let captureIndex: number | null = null;
    let assertion = false;
    if (this.#peek() === '?') {
      const rest = this.source.slice(this.#position);
      const named = /^\?<([A-Za-z_$][\w$]*)>/.exec(rest);
      if (named) {
        captureIndex = ++this.#captureCount;
        this.#namedCaptures.set(named[1] as string, captureIndex);
        this.#position += named[0].length;
      } else if (rest.startsWith('?:')) this.#position += 2;
      else if (/^\?(=|!|<=|<!)/.test(rest)) {
        assertion = true;
        this.#position += rest.startsWith('?<') ? 3 : 2;
      } else throw new UnsupportedPattern('unknown group');
    } else captureIndex = ++this.#captureCount;
    const body = this.#alternation();
    if (this.#peek() !== ')') throw new UnsupportedPattern('unclosed group');
    this.#position++;
    return assertion ? { kind: 'empty' } : { kind: 'group', captureIndex, body };
  }

  /** A character escape, shared by classes and atoms; undefined for class escapes (\d …). */
  #characterEscape(): string | undefined {
    const letter = this.#peek() as string | undefined;
    if (letter === undefined) throw new UnsupportedPattern('trailing backslash');
    if (Object.hasOwn(controlEscapes, letter)) {
      this.#position++;
      return controlEscapes[letter];
    }
    if (letter === 'x') {
      const match = /^x([0-9a-fA-F]{2})/.exec(this.source.slice(this.#position));
      if (!match) throw new UnsupportedPattern('bad \\x escape');
      this.#position += match[0].length;
      return String.fromCharCode(parseInt(match[1] as string, 16));
    }
    if (letter === 'u') {
      const match = /^u(?:\{([0-9a-fA-F]+)\}|([0-9a-fA-F]{4}))/.exec(this.source.slice(this.#position));
      if (!match) throw new UnsupportedPattern('bad \\u escape');
      this.#position += match[0].length;
      return String.fromCodePoint(parseInt((match[1] ?? match[2]) as string, 16));
    }
    if (letter === 'c') {
      const control = this.#peek(1);
      if (control === undefined || !/[A-Za-z]/.test(control)) throw new UnsupportedPattern('bad \\c escape');
      this.#position += 2;
      return String.fromCharCode(control.charCodeAt(0) % 32);
    }
    if (/[dDwWsSpPbBk1-9]/.test(letter)) return undefined;
    this.#position++;
    return letter; // an escaped syntax character such as \. or \/
  }

  #propertyEscape(): ClassMember {
    const letter = this.#peek() as string;
    const match = /^[pP]\{([^}]+)\}/.exec(this.source.slice(this.#position));
    if (!match) throw new UnsupportedPattern('bad property escape');
    this.#position += match[0].length;
    let expression: RegExp;
    try {
      expression = new RegExp(`^\\${letter}{${match[1] as string}}$`, 'u');
    } catch {
      throw new UnsupportedPattern('unknown unicode property');
    }
    return { test: (character) => expression.test(character), preferred: [] };
  }

  #escape(): RegexNode {
    const literal = this.#characterEscape();
    if (literal !== undefined) return { kind: 'literal', text: literal };
    const letter = this.#peek() as string;
    if (letter === 'b' || letter === 'B') {
      this.#position++;
      return { kind: 'empty' };
    }
    if (letter === 'p' || letter === 'P') return { kind: 'class', negated: false, members: [this.#propertyEscape()] };
    if (letter === 'k') {
      const match = /^k<([^>]+)>/.exec(this.source.slice(this.#position));
      if (!match) throw new UnsupportedPattern('bad named back-reference');
      this.#position += match[0].length;
      return { kind: 'backreference', reference: match[1] as string };
    }
    if (/[1-9]/.test(letter)) {
      const match = /^\d+/.exec(this.source.slice(this.#position)) as RegExpExecArray;
      this.#position += match[0].length;
      return { kind: 'backreference', reference: Number(match[0]) };
    }
    const member = classEscape(letter);
    if (!member) throw new UnsupportedPattern(`unknown escape \\${letter}`);
    this.#position++;
    return { kind: 'class', negated: false, members: [member] };
  }

  #classCharacter(): string | ClassMember {
    const character = this.#peek();
    if (character === undefined) throw new UnsupportedPattern('unclosed class');
    if (character !== '\\') {
      const codePoint = this.source.codePointAt(this.#position) ?? 0;
      const text = String.fromCodePoint(codePoint);
      this.#position += text.length;
      return text;
    }
    this.#position++;
    if (this.#peek() === 'b') {
      this.#position++;
      return '\b';
    }
    if (this.#peek() === '-') {
      this.#position++;
      return '-';
    }
    const literal = this.#characterEscape();
    if (literal !== undefined) return literal;
    const letter = this.#peek() as string;
    if (letter === 'p' || letter === 'P') return this.#propertyEscape();
    const member = classEscape(letter);
    if (!member) throw new UnsupportedPattern(`unknown class escape \\${letter}`);
    this.#position++;
    return member;
  }

  #characterClass(): RegexNode {
    let negated = false;
    if (this.#peek() === '^') {
      negated = true;
      this.#position++;
    }
    const members: ClassMember[] = [];
    while (this.#peek() !== ']') {
      const start = this.#classCharacter();
      if (typeof start === 'string' && this.#peek() === '-' && this.#peek(1) !== ']' && this.#peek(1) !== undefined) {
        this.#position++;
        const end = this.#classCharacter();
        if (typeof end !== 'string') throw new UnsupportedPattern('bad range');
        const low = start.codePointAt(0) ?? 0;
        const high = end.codePointAt(0) ?? 0;
        members.push({
          test: (character) => {
            const codePoint = character.codePointAt(0) ?? -1;
            return codePoint >= low && codePoint <= high;
          },
          preferred: [start],
        });
      } else if (typeof start === 'string') {
        members.push({ test: (character) => character === start, preferred: [start] });
      } else members.push(start);
    }
    this.#position++;
    return { kind: 'class', negated, members };
  }

  captureNumber(reference: number | string): number | undefined {
    return typeof reference === 'number' ? reference : this.#namedCaptures.get(reference);
  }
}

function pickClassCharacter(negated: boolean, members: ClassMember[]): string {
  const inClass = (character: string) => members.some((member) => member.test(character)) !== negated;
  const candidates = negated ? fallbackCharacters : [...members.flatMap((member) => member.preferred), ...fallbackCharacters];
  for (const candidate of candidates) if (inClass(candidate)) return candidate;
  throw new UnsupportedPattern('no character satisfies the class');
}

function generate(node: RegexNode, extra: number, captures: Map<number, string>, parser: PatternParser): string {
  switch (node.kind) {
    case 'empty':
      return '';
    case 'literal':
      return node.text;
    case 'class':
      return pickClassCharacter(node.negated, node.members);
    case 'sequence':
      return node.items.map((item) => generate(item, extra, captures, parser)).join('');
    case 'alternation':
      return generate(node.options[0] as RegexNode, extra, captures, parser);
    case 'group': {
      const text = generate(node.body, extra, captures, parser);
      if (node.captureIndex !== null) captures.set(node.captureIndex, text);
      return text;
    }
    case 'repeat': {
      const count = Math.min(node.minimum + extra, node.maximum);
      let text = '';
      for (let index = 0; index < count; index++) text += generate(node.body, extra, captures, parser);
      return text;
    }
    case 'backreference': {
      const index = parser.captureNumber(node.reference);
      return index === undefined ? '' : (captures.get(index) ?? '');
    }
  }
}

/**
 * A string built from the pattern, with each open-ended or ranged quantifier repeated
 * `extra` times beyond its minimum (capped at its maximum). Undefined when the pattern uses
 * syntax this generator does not read. The result is not guaranteed to match.
 */
export function regexSample(pattern: string, extra = 0): string | undefined {
  try {
    const parser = new PatternParser(pattern);
    const tree = parser.parse();
    return generate(tree, extra, new Map(), parser);
  } catch (error) {
    if (error instanceof UnsupportedPattern) return undefined;
    throw error;
  }
}

/** The pattern as JSON Schema validators compile it (ECMA-262 with the `u` flag), or null if invalid. */
export function compilePattern(pattern: string): RegExp | null {
  try {
    return new RegExp(pattern, 'u');
  } catch {
    return null;
  }
}
