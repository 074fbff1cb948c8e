/**
 * Fine-tuning forwarded to an OpenAI-compatible upstream (`trainer: upstream`), through the
 * real `chatgate serve` and the official SDK: the upstream's job is created from Chatgate's
 * files, its events and checkpoints are mirrored, and the resulting model is served under the
 * job's `ft:` name, each request going to the upstream's fine-tuned model.
 */
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_FINE_TUNING_API_KEY, FakeFineTuningUpstream } from '../fixtures/fake-fine-tuning-upstream.js';
import { startChatgate, type RunningChatgate } from '../support/start-chatgate.js';

const upstream = new FakeFineTuningUpstream();
let chatgate: RunningChatgate;
let client: OpenAI;

beforeAll(async () => {
  await upstream.start();
  chatgate = await startChatgate({
    masterKey: 'sk-upstream-ft-test',
    config: `models:
  - name: gpt-4o-mini
    provider: openai-compatible
    base_url: ${upstream.baseUrl}
    api_key: ${FAKE_FINE_TUNING_API_KEY}
    model: upstream-base
    fine_tuning:
      trainer: upstream
      poll_seconds: 0.05
`,
  });
  client = chatgate.client();
});

afterAll(async () => {
  await chatgate?.stop();
  await upstream.stop();
});

describe('fine-tuning through an upstream', () => {
  it('creates the upstream job, mirrors its progress and serves its model under the ft: name', async () => {
    const line = JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] });
    const file = await client.files.create({ file: await toFile(Buffer.from(`${line}\n`.repeat(12)), 'train.jsonl'), purpose: 'fine-tune' });
    const created = await client.fineTuning.jobs.create({ model: 'gpt-4o-mini', training_file: file.id, suffix: 'greeter', hyperparameters: { n_epochs: 2 } });
    let job = created;
    for (let tries = 0; tries < 300 && !['succeeded', 'failed', 'cancelled'].includes(job.status); tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      job = await client.fineTuning.jobs.retrieve(created.id);
    }
    expect(job.status).toBe('succeeded');
    expect(job.fine_tuned_model).toMatch(/^ft:gpt-4o-mini:default:greeter:[a-z0-9]{8}$/);
    // The upstream got Chatgate's file and the upstream model name.
    const upstreamJob = [...upstream.jobs.values()][0]!;
    expect(upstreamJob.body).toMatchObject({ model: 'upstream-base', suffix: 'greeter' });
    expect([...upstream.files.values()][0]!.content).toBe(`${line}\n`.repeat(12));

    const events: OpenAI.FineTuning.Jobs.FineTuningJobEvent[] = [];
    for await (const event of client.fineTuning.jobs.listEvents(job.id, { limit: 100 })) events.push(event);
    expect(events.some((event) => event.message.startsWith('Upstream: '))).toBe(true);
    expect(events.some((event) => event.type === 'metrics')).toBe(true);

    const answer = await client.chat.completions.create({ model: job.fine_tuned_model!, messages: [{ role: 'user', content: 'Hi' }] });
    expect(answer.choices[0]!.message.content).toBe(`answer from ${upstreamJob.fine_tuned_model}`);
    expect(answer.model).toBe(job.fine_tuned_model);
  }, 60_000);
});
