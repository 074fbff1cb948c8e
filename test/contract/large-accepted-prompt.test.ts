/**
 * Accepted large prompts must not stall the server either (issue 13, item 1): a mock model
 * with a 10M-token window, `pii.policy: pseudonymize`, the response cache, guardrails with
 * deny patterns and audit bodies all on. A ~2 MB prompt of ordinary text with e-mails and
 * phone numbers in it, and a 1 MB single run, go to chat (plain and streamed) and
 * completions; each is answered (the echo has the e-mail back, restored from its
 * placeholder) while `/health`, polled every 50 ms from another process, answers each poll
 * within the bound of large-prompt.test.ts: 100 ms plus the worst latency of an idle control
 * server polled in the same ticks (see there). PII detection used to scan such a prompt in
 * one go (about 1 s per MB of prose; far more on digit-heavy text).
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';
import { startHealthPoller } from '../support/health-poller.js';

const MASTER = 'sk-large-accepted-test';
const MODEL = 'big-mock';
const HEALTH_THRESHOLD_MS = 100;
const EMAIL = 'maria.gonzalez@example.com';

const CONFIG = `
audit:
  bodies: true
cache:
  enabled: true
  deterministic_only: false
pii:
  policy: pseudonymize
guardrails:
  deny_input: ['forbidden topic']
  deny_output: ['secret plan']
models:
  - name: ${MODEL}
    provider: mock
    context_window: 10000000
`;

const PARAGRAPHS = [
  'Hello team, please reach out to {n}.person@example.com or call +1 415-555-2671 about the renewal of contract {n}.',
  'Bonjour, voici mon numéro : 06 12 34 56 78. Mon adresse e-mail est jean{n}@exemple.fr, merci.',
  'Log excerpt: GET /api/v2/orders/{n} from 203.0.113.42 took 37 ms on the primary replica.',
  'Please summarise the following meeting notes. We discussed the quarterly roadmap, the migration of the billing service and the hiring plan ({n}).',
  'Estimado cliente: su pedido {n} ha sido enviado. Para cualquier consulta escriba a soporte@ejemplo.es o llame al 612 34 56 78.',
];

/** Ordinary text with PII in it, `length` characters, starting with EMAIL. */
function prose(length: number): string {
  const parts = [`Write to ${EMAIL} first. `];
  let size = parts[0]!.length;
  for (let index = 0; size < length; index += 1) {
    const paragraph = `${PARAGRAPHS[index % PARAGRAPHS.length]!.replaceAll('{n}', String(index))}\n`;
    parts.push(paragraph);
    size += paragraph.length;
  }
  return parts.join('').slice(0, length);
}

/** One long run of letters and digits after the e-mail (no spaces: one word for the tokenizer). */
function run(length: number): string {
  const chunk = Array.from({ length: 4096 }, (_, index) => 'abcdefghijklmnopqrstuvwxyz0123456789'[(index * 7 + (index >> 3)) % 36]).join('');
  return `${EMAIL} ${chunk.repeat(Math.ceil(length / chunk.length)).slice(0, length)}`;
}

let chatgate: RunningChatgate;
let frozen = false;

beforeAll(async () => {
  chatgate = await startChatgate({ masterKey: MASTER, config: CONFIG });
  // Loading the model's tokenizer and the phone metadata is a one-time cost of the first
  // request (a module load), not what this test measures: warm them up first.
  await send('chat', `warm up: call +1 415-555-2671 or write to ${EMAIL}`);
});
afterAll(async () => {
  await chatgate?.stop();
});

type Way = 'chat' | 'chat-stream' | 'completions';

/** The answer's text, or the error. */
async function send(way: Way, text: string): Promise<string | Error> {
  const openai = new OpenAI({ baseURL: chatgate.url, apiKey: MASTER, maxRetries: 0, timeout: 30_000 });
  try {
    if (way === 'chat') {
      const completion = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }], max_tokens: 16 });
      return completion.choices[0]?.message.content ?? '';
    }
    if (way === 'chat-stream') {
      const stream = await openai.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: text }], max_tokens: 16, stream: true });
      let answer = '';
      for await (const chunk of stream) answer += chunk.choices[0]?.delta.content ?? '';
      return answer;
    }
    const completion = await openai.completions.create({ model: MODEL, prompt: text, max_tokens: 16 });
    return completion.choices[0]?.text ?? '';
  } catch (error) {
    if (error instanceof OpenAI.APIConnectionError) frozen = true;
    return error as Error;
  }
}

describe('a large accepted prompt with PII, cache, guardrails and audit bodies on', () => {
  for (const [name, make] of [
    ['2 MB of ordinary text with e-mails and phones', () => prose(2_000_000)],
    ['a 1 MB single run', () => run(1_000_000)],
  ] as const) {
    it(`${name}: answered on chat, streamed chat and completions, with /health answering every poll`, async () => {
      expect(frozen, 'the server froze on an earlier request').toBe(false);
      const text = make();
      const poller = await startHealthPoller(`${chatgate.url.replace(/\/v1$/, '')}/health`);
      const answers: Array<string | Error> = [];
      for (const way of ['chat', 'chat-stream', 'completions'] as const) {
        if (frozen) break;
        answers.push(await send(way, text));
      }
      const health = await poller.stop(HEALTH_THRESHOLD_MS);

      expect(answers).toHaveLength(3);
      for (const answer of answers) {
        expect(answer).toEqual(expect.any(String));
        expect(answer).toContain(EMAIL);
        expect(answer).not.toMatch(/\[EMAIL_\d+\]/);
      }
      expect(health.polls).toBeGreaterThan(4);
      expect(health.slow.filter((latency) => latency >= HEALTH_THRESHOLD_MS + health.controlWorstMs), JSON.stringify(health)).toEqual([]);
    }, 120_000);
  }
});
