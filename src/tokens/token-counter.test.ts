import cl100kRanks from 'gpt-tokenizer/bpeRanks/cl100k_base';
import o200kRanks from 'gpt-tokenizer/bpeRanks/o200k_base';
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import { mulberry32 as seededRandom } from '../util/seeded-random.js';
import { MAX_PIECE_CHARS } from './bounded-spans.js';
import { LONGEST_TOKEN_BYTES, TokenCounters, tokenLowerBound, tokenUpperBound } from './token-counter.js';

describe('TokenCounters', () => {
  const counters = new TokenCounters();

  it('counts text with the named encoding, treating special tokens as text', async () => {
    const counter = await counters.get('cl100k_base');
    expect(counter.count('hello world')).toBe(2);
    expect(counter.count('a <|endoftext|> b')).toBeGreaterThan(3);
    expect(counter.decode(counter.encode('round trip ✓'))).toBe('round trip ✓');
  });

  it('counts a chat prompt with per-message framing', async () => {
    const counter = await counters.get('o200k_base');
    const one = counter.countChat([{ role: 'user', content: 'hi' }]);
    const two = counter.countChat([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hi' },
    ]);
    expect(one).toBeGreaterThan(counter.count('hi'));
    expect(two - one).toBeGreaterThanOrEqual(3 + counter.count('be brief'));
  });

  it('shares one loaded encoding', async () => {
    expect(await counters.get('cl100k_base')).toBe(await counters.get('cl100k_base'));
  });

  it('bounds tokens by bytes', async () => {
    const counter = await counters.get('cl100k_base');
    for (const text of ['', 'abc', 'héllo wörld', '日本語のテキスト', '🙂🙂🙂']) {
      expect(counter.count(text)).toBeLessThanOrEqual(tokenUpperBound(text));
    }
  });
});


const plain = { disallowedSpecial: new Set<string>() };
const libraries = { cl100k_base: cl100k, o200k_base: o200k } as const;

/** Ordinary text of many kinds: prose, code, minified JSON, markdown, several scripts, emoji, whitespace. */
function ordinaryText(random: () => number, length: number): string {
  const samples = [
    'The quick brown fox jumps over the lazy dog. ',
    "It's what they'd've done, isn't it? I'll see; you're right. ",
    'function add(a, b) {\n  return a + b; // sum\n}\n\n',
    JSON.stringify({ id: 12345, name: 'widget', tags: ['a', 'b'], nested: { price: 9.99, ok: true } }),
    '# Title\n\n- item one\n- item two\n\n```ts\nconst x = 1;\n```\n',
    'Grüße aus Köln, ça va? Ñandú. ',
    '日本語のテキストと漢字。中文也可以。 ',
    'Привет, мир! Как дела? ',
    '🙂👍🏽 emoji 🎉 and ZWJ 👩‍👩‍👧 ',
    '\t\tindented\r\n    more    spaces\n\n\n',
    'https://example.com/path?query=1&x=y#frag ',
    '1234567890 3.14159 -42 1e10 ',
    '<|endoftext|> <|im_start|>user ',
    'camelCaseIdentifier snake_case_name SCREAMING_CASE ',
    ' '.repeat(200) + 'x' + '\n'.repeat(100) + '-'.repeat(250) + ' ',
  ];
  let text = '';
  while (text.length < length) text += samples[Math.floor(random() * samples.length)];
  return text;
}

/** Milliseconds to run `work`, the fastest of three runs (scheduling noise only ever adds time). */
function fastest(work: () => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 3; run++) {
    const started = performance.now();
    work();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

describe('token counts of ordinary text', () => {
  const counters = new TokenCounters();

  for (const encoding of ['cl100k_base', 'o200k_base'] as const) {
    it(`equal gpt-tokenizer's exactly (${encoding}), sync, async and encoded`, async () => {
      const counter = await counters.get(encoding);
      const library = libraries[encoding];
      const random = seededRandom(42);
      for (const length of [10, 300, 5_000, 40_000, 200_000]) {
        const text = ordinaryText(random, length);
        const exact = library.countTokens(text, plain);
        expect(counter.count(text)).toBe(exact);
        expect(await counter.countAsync(text)).toBe(exact);
        expect(counter.encode(text)).toEqual(library.encode(text, plain));
      }
    });
  }

  it('are the same for a chat prompt, sync and async', async () => {
    const counter = await counters.get('o200k_base');
    const text = ordinaryText(seededRandom(7), 100_000);
    const messages = [
      { role: 'system' as const, content: 'be brief' },
      { role: 'user' as const, content: text },
    ];
    expect(await counter.countChatAsync(messages)).toBe(counter.countChat(messages));
    expect(counter.countChat(messages)).toBe(3 + 3 + 1 + counter.count('be brief') + 3 + 1 + counter.count(text));
  });
});

describe('token counts of pathological runs', () => {
  const counters = new TokenCounters();
  const runs: Record<string, (length: number) => string> = {
    'one letter': (length) => 'a'.repeat(length),
    'random letters': (length) => {
      const random = seededRandom(3);
      return Array.from({ length }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join('');
    },
    'mixed case and digits': (length) => {
      const random = seededRandom(5);
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      return Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    },
    punctuation: (length) => '!?#-'.repeat(length / 4) + 'x',
    whitespace: (length) => ' \t'.repeat(length / 2) + 'x',
    'CJK and emoji': (length) => '漢字🙂'.repeat(length / 4),
  };

  it('count linearly: 1 MB of one letter takes well under a second, and 4 MB about four times as long', async () => {
    const counter = await counters.get('cl100k_base');
    const one = 'a'.repeat(1_000_000);
    const four = 'a'.repeat(4_000_000);
    counter.count(one); // warm up
    const oneMs = fastest(() => counter.count(one));
    const fourMs = fastest(() => counter.count(four));
    // Quadratic BPE took 17 s for 160k characters; linear counting takes ~30 ms per MB here.
    expect(oneMs).toBeLessThan(2_000);
    // Linear: ~4; quadratic: ~16. 4x rather than 2x the size keeps the two far apart despite scheduling noise.
    expect(fourMs / oneMs).toBeLessThan(8);
  }, 60_000);

  for (const [name, make] of Object.entries(runs)) {
    it(`count a run of ${name} in linear time, never below gpt-tokenizer's count`, async () => {
      for (const encoding of ['cl100k_base', 'o200k_base'] as const) {
        const counter = await counters.get(encoding);
        // Small enough for gpt-tokenizer's quadratic count to finish at once.
        const small = make(4_000);
        const exact = libraries[encoding].countTokens(small, plain);
        const counted = counter.count(small);
        const cuts = Math.ceil(small.length / MAX_PIECE_CHARS);
        expect(counted).toBeGreaterThanOrEqual(exact);
        expect(counted).toBeLessThanOrEqual(exact + 2 * cuts);
        expect(counter.decode(counter.encode(small))).toBe(small);
        const large = make(400_000);
        expect(fastest(() => counter.count(large))).toBeLessThan(2_000);
      }
    }, 60_000);
  }
});

describe('the merge cache', () => {
  it('never fills up: counting stays fast after a text with very many distinct pieces', async () => {
    // gpt-tokenizer's full LRU cache made every later count ~100x slower (15 s for this CJK text).
    const counter = await new TokenCounters().get('cl100k_base');
    const random = seededRandom(11);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    counter.count(Array.from({ length: 400_000 }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''));
    const cjk = '漢字🙂'.repeat(100_000);
    expect(fastest(() => counter.count(cjk))).toBeLessThan(3_000);
  }, 60_000);
});

describe('async counts', () => {
  const counters = new TokenCounters();

  it('yield to the event loop while counting a large text', async () => {
    const counter = await counters.get('cl100k_base');
    const text = ordinaryText(seededRandom(1), 2_000_000);
    let turns = 0;
    let longestGap = 0;
    let last = performance.now();
    let running = true;
    const tick = () => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      turns++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const counted = await counter.countAsync(text);
    running = false;
    expect(counted).toBe(counter.count(text));
    expect(turns).toBeGreaterThan(5);
    // Each slice takes a few ms; a whole-text count here takes hundreds (a generous bound for a loaded CI machine).
    expect(longestGap).toBeLessThan(150);
  }, 30_000);

  it('stop early past a limit, with a count above the limit and at most the full count', async () => {
    const counter = await counters.get('o200k_base');
    const text = ordinaryText(seededRandom(2), 1_000_000);
    const full = counter.count(text);
    const stopped = await counter.countAsync(text, { limit: 1_000 });
    expect(stopped).toBeGreaterThan(1_000);
    expect(stopped).toBeLessThan(full / 4);
    expect(await counter.countAsync(text, { limit: full })).toBe(full);
    const chat = await counter.countChatAsync([{ role: 'user', content: text }, { role: 'user', content: text }], undefined, { limit: 1_000 });
    expect(chat).toBeGreaterThan(1_000);
    expect(chat).toBeLessThan(full / 4);
  });
});

describe('token bounds', () => {
  const counters = new TokenCounters();

  it('longest token is LONGEST_TOKEN_BYTES bytes in both encodings', () => {
    for (const ranks of [cl100kRanks, o200kRanks]) {
      let longest = 0;
      for (const token of ranks) {
        if (token === undefined) continue;
        longest = Math.max(longest, typeof token === 'string' ? Buffer.byteLength(token) : token.length);
      }
      expect(longest).toBe(LONGEST_TOKEN_BYTES);
    }
  });

  it('bound the count from below and above, for ordinary text and runs', async () => {
    for (const encoding of ['cl100k_base', 'o200k_base'] as const) {
      const counter = await counters.get(encoding);
      for (const text of ['', 'a', ' '.repeat(5_000), '-'.repeat(5_000), 'a'.repeat(5_000), '🙂'.repeat(100), ordinaryText(seededRandom(9), 20_000)]) {
        const counted = counter.count(text);
        expect(tokenLowerBound(text)).toBeLessThanOrEqual(counted);
        expect(counted).toBeLessThanOrEqual(tokenUpperBound(text));
      }
    }
  });
});
