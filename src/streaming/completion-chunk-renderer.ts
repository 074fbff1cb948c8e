/** Turns stream parts into legacy `text_completion` events (`POST /v1/completions`). */
import type { StreamPart } from '../providers/spec.js';
import type { CompletionLogprobs, Usage } from '../openai/responses.js';
import type { ChunkIdentity } from './chat-chunk-renderer.js';

export class CompletionChunkRenderer {
  readonly #identity: ChunkIdentity;
  readonly #includeUsage: boolean;
  readonly #finished = new Set<number>();
  readonly #seen = new Set<number>();
  #usage: Usage | null = null;

  constructor(identity: ChunkIdentity, includeUsage: boolean) {
    this.#identity = identity;
    this.#includeUsage = includeUsage;
  }

  get usage(): Usage | null {
    return this.#usage;
  }

  render(part: StreamPart): string {
    switch (part.type) {
      case 'metadata':
        // Before any event, an upstream's id and created are kept (as for non-streamed answers).
        if (this.#seen.size === 0 && this.#finished.size === 0) {
          if (part.id !== undefined) this.#identity.id = part.id;
          if (part.created !== undefined) this.#identity.created = part.created;
        }
        if (part.systemFingerprint !== undefined) this.#identity.systemFingerprint = part.systemFingerprint;
        return '';
      case 'text-delta':
        this.#seen.add(part.choice);
        return this.#chunk(part.choice, part.text, null, (part.logprobs as CompletionLogprobs | undefined) ?? null);
      case 'finish': {
        if (this.#finished.has(part.choice)) return '';
        this.#finished.add(part.choice);
        const reason = part.reason === 'length' || part.reason === 'content_filter' ? part.reason : 'stop';
        return this.#chunk(part.choice, '', reason, null);
      }
      case 'usage':
        this.#usage = part.usage;
        return '';
      default:
        return '';
    }
  }

  end(): string {
    let text = '';
    for (const choice of this.#seen) if (!this.#finished.has(choice)) text += this.render({ type: 'finish', choice, reason: 'stop' });
    if (this.#includeUsage) {
      const usage = this.#usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
      text += `data: ${JSON.stringify({ ...this.#base(), choices: [], usage })}\n\n`;
    }
    return text;
  }

  #base() {
    const identity = this.#identity;
    return { id: identity.id, object: 'text_completion', created: identity.created, model: identity.model, system_fingerprint: identity.systemFingerprint };
  }

  #chunk(choice: number, text: string, finishReason: string | null, logprobs: CompletionLogprobs | null): string {
    const body: Record<string, unknown> = { ...this.#base(), choices: [{ text, index: choice, logprobs, finish_reason: finishReason }] };
    if (this.#includeUsage) body.usage = null;
    return `data: ${JSON.stringify(body)}\n\n`;
  }
}
