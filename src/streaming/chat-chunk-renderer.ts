/**
 * Turns a provider's stream parts into `chat.completion.chunk` events, following OpenAI's
 * framing exactly: one role delta opening each choice, content / refusal / tool-call
 * deltas, one finish chunk per choice with an empty delta, and — when the client asked
 * for `stream_options.include_usage` — `usage: null` on every chunk and a last chunk with
 * no choices and the totals.
 */
import type { StreamPart } from '../providers/spec.js';
import type { ChatFinishReason, ChatLogprobs, Usage } from '../openai/responses.js';

export interface ChunkIdentity {
  id: string;
  created: number;
  model: string;
  systemFingerprint: string | null;
  serviceTier?: string | null;
}

interface ChoiceState {
  opened: boolean;
  finished: boolean;
  toolCallsOpened: Set<number>;
}

export class ChatChunkRenderer {
  readonly #identity: ChunkIdentity;
  readonly #includeUsage: boolean;
  readonly #choices = new Map<number, ChoiceState>();
  #usage: Usage | null = null;
  #prefix = '';

  constructor(identity: ChunkIdentity, includeUsage: boolean) {
    this.#identity = identity;
    this.#includeUsage = includeUsage;
    this.#refreshPrefix();
  }

  get usage(): Usage | null {
    return this.#usage;
  }

  /** The SSE text for one part ('' when the part produces no event). */
  render(part: StreamPart): string {
    switch (part.type) {
      case 'metadata':
        // Before any event, an upstream's id and created are kept (as for non-streamed answers).
        if (this.#choices.size === 0) {
          if (part.id !== undefined) this.#identity.id = part.id;
          if (part.created !== undefined) this.#identity.created = part.created;
        }
        if (part.systemFingerprint !== undefined) this.#identity.systemFingerprint = part.systemFingerprint;
        if (part.serviceTier !== undefined) this.#identity.serviceTier = part.serviceTier;
        this.#refreshPrefix();
        return '';
      case 'role':
        return this.#open(part.choice, part.content === null ? { role: 'assistant', content: null } : { role: 'assistant', content: '', refusal: null });
      case 'text-delta': {
        if (part.text.length === 0 && !part.logprobs) return '';
        const opening = this.#open(part.choice, { role: 'assistant', content: '', refusal: null });
        return opening + this.#chunk(part.choice, { content: part.text }, null, (part.logprobs as ChatLogprobs | undefined) ?? null);
      }
      case 'refusal-delta': {
        const opening = this.#open(part.choice, { role: 'assistant', content: null, refusal: '' });
        return opening + this.#chunk(part.choice, { refusal: part.text }, null, null);
      }
      case 'tool-call-delta': {
        const state = this.#state(part.choice);
        const first = !state.toolCallsOpened.has(part.index);
        const call = first
          ? { index: part.index, id: part.id ?? `call_${this.#identity.id.slice(-8)}_${part.choice}_${part.index}`, type: 'function', function: { name: part.name ?? '', arguments: part.argumentsDelta } }
          : { index: part.index, function: { arguments: part.argumentsDelta } };
        state.toolCallsOpened.add(part.index);
        if (!state.opened) {
          state.opened = true;
          return this.#chunk(part.choice, { role: 'assistant', content: null, tool_calls: [call] }, null, null);
        }
        return this.#chunk(part.choice, { tool_calls: [call] }, null, null);
      }
      case 'function-call-delta': {
        const state = this.#state(part.choice);
        const call = part.name !== undefined ? { name: part.name, arguments: part.argumentsDelta } : { arguments: part.argumentsDelta };
        if (!state.opened) {
          state.opened = true;
          return this.#chunk(part.choice, { role: 'assistant', content: null, function_call: call }, null, null);
        }
        return this.#chunk(part.choice, { function_call: call }, null, null);
      }
      case 'finish':
        return this.#finish(part.choice, part.reason);
      case 'usage':
        this.#usage = part.usage;
        return '';
    }
  }

  /** Closes choices the provider left open, then the usage chunk when asked for. */
  end(): string {
    let text = '';
    for (const [index, state] of this.#choices) if (!state.finished) text += this.#finish(index, 'stop');
    if (this.#includeUsage) {
      const usage = this.#usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
      text += `data: ${this.#prefix}"choices":[],"usage":${JSON.stringify(usage)}}\n\n`;
    }
    return text;
  }

  #finish(choice: number, reason: ChatFinishReason): string {
    const state = this.#state(choice);
    if (state.finished) return '';
    const opening = this.#open(choice, { role: 'assistant', content: '', refusal: null });
    state.finished = true;
    return opening + this.#chunk(choice, {}, reason, null);
  }

  #state(choice: number): ChoiceState {
    let state = this.#choices.get(choice);
    if (!state) {
      state = { opened: false, finished: false, toolCallsOpened: new Set() };
      this.#choices.set(choice, state);
    }
    return state;
  }

  #open(choice: number, delta: Record<string, unknown>): string {
    const state = this.#state(choice);
    if (state.opened) return '';
    state.opened = true;
    return this.#chunk(choice, delta, null, null);
  }

  #refreshPrefix(): void {
    const identity = this.#identity;
    let prefix = `{"id":${JSON.stringify(identity.id)},"object":"chat.completion.chunk","created":${identity.created},"model":${JSON.stringify(identity.model)},"system_fingerprint":${JSON.stringify(identity.systemFingerprint)},`;
    if (identity.serviceTier) prefix += `"service_tier":${JSON.stringify(identity.serviceTier)},`;
    this.#prefix = prefix;
  }

  #chunk(choice: number, delta: Record<string, unknown>, finishReason: ChatFinishReason | null, logprobs: ChatLogprobs | null): string {
    const usage = this.#includeUsage ? ',"usage":null' : '';
    return `data: ${this.#prefix}"choices":[{"index":${choice},"delta":${JSON.stringify(delta)},"logprobs":${JSON.stringify(logprobs)},"finish_reason":${JSON.stringify(finishReason)}}]${usage}}\n\n`;
  }
}
