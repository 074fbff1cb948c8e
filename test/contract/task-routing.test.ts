/**
 * Routing by task through a real `chatgate serve` and the official SDK: rules send requests
 * with tools, images or JSON output to the strong target, a classifier model labels the
 * rest, and the chosen target is named in `x-chatgate-target` and the audit log.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

const MASTER = 'sk-task-routing-test';
let chatgate: RunningChatgate;
let client: OpenAI;

const CONFIG = `models:
  - name: small-classifier
    provider: mock
  - name: gpt-4-2026
    provider: router
    targets:
      - { id: cheap, provider: mock }
      - { id: strong, provider: mock }
    routing:
      rules:
        - when: { tools: true }
          targets: [strong]
        - when: { json: true }
          targets: [strong]
        - when: { min_prompt_tokens: 400 }
          targets: [strong]
      classifier:
        model: small-classifier
        labels: { simple: [cheap], complex: [strong] }
`;

async function targetOf(request: OpenAI.ChatCompletionCreateParamsNonStreaming): Promise<string | null> {
  const { response } = await client.chat.completions.create(request).withResponse();
  return response.headers.get('x-chatgate-target');
}

beforeAll(async () => {
  chatgate = await startChatgate({ config: CONFIG, masterKey: MASTER });
  client = chatgate.client();
});
afterAll(async () => {
  await chatgate?.stop();
});

describe('routing by task', () => {
  it('sends requests with tools, JSON output or long prompts to the strong target by rule', async () => {
    const base = { model: 'gpt-4-2026', messages: [{ role: 'user' as const, content: 'hello' }], max_tokens: 5 };
    expect(await targetOf({ ...base, tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }] })).toBe('strong');
    expect(await targetOf({ ...base, messages: [{ role: 'user', content: 'answer in json' }], response_format: { type: 'json_object' } })).toBe('strong');
    expect(await targetOf({ ...base, messages: [{ role: 'user', content: 'word '.repeat(600) }] })).toBe('strong');
  });

  it('asks the classifier model for the rest, and the audit log names the target', async () => {
    // The mock answers the classifier's JSON schema with its first label, "simple".
    const streamed = await client.chat.completions.create({ model: 'gpt-4-2026', messages: [{ role: 'user', content: 'hi there' }], max_tokens: 5, stream: true }).withResponse();
    expect(streamed.response.headers.get('x-chatgate-target')).toBe('cheap');
    for await (const chunk of streamed.data) void chunk;
    expect(await targetOf({ model: 'gpt-4-2026', messages: [{ role: 'user', content: 'hi there' }], max_tokens: 5 })).toBe('cheap');
    let providers: string[] = [];
    for (let attempt = 0; attempt < 40; attempt++) {
      const response = await fetch(`${chatgate.url.replace(/\/v1$/, '')}/admin/logs?model=gpt-4-2026&limit=20`, { headers: { authorization: `Bearer ${MASTER}` } });
      providers = ((await response.json()) as { data: Array<{ provider: string }> }).data.map((record) => record.provider);
      if (providers.length >= 5) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(providers.filter((provider) => provider.includes('strong'))).toHaveLength(3);
    expect(providers.filter((provider) => provider.includes('cheap'))).toHaveLength(2);
  });
});
