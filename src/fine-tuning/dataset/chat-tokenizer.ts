/**
 * A local GGUF model's tokenizer and chat template, loaded once (vocabulary only: no
 * weights, no context, fast and small) to tokenize many training examples
 * (chat-tokenization.ts) and to count their tokens for validateDataset. The chat template
 * is chosen as the llama-cpp provider does (loaded-models.ts): the wrapper node-llama-cpp
 * resolves for the model, or `chatTemplate` (Jinja) when the file has no template of its own.
 */
import type { ChatWrapper, Llama, LlamaModel } from 'node-llama-cpp';
import { importNodeLlamaCpp, type NodeLlamaCpp } from '../../providers/llama-cpp/node-llama-cpp-module.js';
import { tokenizeChatExample, type TokenizedExample } from './chat-tokenization.js';
import type { TrainingExample } from './example-types.js';

export interface ChatTokenizerOptions {
  modelPath: string;
  /** Jinja chat template for a model file without one (a llama-cpp model's `chat_template`). */
  chatTemplate?: string;
  /** A shared llama.cpp instance; without one, the tokenizer gets (and disposes) its own. */
  llama?: Llama;
}

export class ChatTokenizer {
  private constructor(
    private readonly lib: NodeLlamaCpp,
    private readonly model: LlamaModel,
    readonly chatWrapper: ChatWrapper,
    private readonly ownLlama: Llama | undefined,
  ) {}

  static async load(options: ChatTokenizerOptions): Promise<ChatTokenizer> {
    const lib = await importNodeLlamaCpp();
    const ownLlama = options.llama
      ? undefined
      : await lib.getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: lib.LlamaLogLevel.warn });
    const llama = options.llama ?? ownLlama!;
    try {
      const model = await llama.loadModel({ modelPath: options.modelPath, vocabOnly: true, gpuLayers: 0 });
      const hasTemplate = typeof model.fileInfo.metadata.tokenizer?.chat_template === 'string';
      const chatWrapper: ChatWrapper =
        !hasTemplate && options.chatTemplate !== undefined
          ? new lib.JinjaTemplateChatWrapper({ template: options.chatTemplate })
          : lib.resolveChatWrapper(model);
      return new ChatTokenizer(lib, model, chatWrapper, ownLlama);
    } catch (error) {
      await ownLlama?.dispose();
      throw error;
    }
  }

  /**
   * The context the model was trained with, from the file's metadata (an upper bound for
   * `contextWindow`; llama.cpp reports 0 for a vocabulary-only load); undefined when unknown.
   */
  get trainContextSize(): number | undefined {
    return this.model.fileInsights.trainContextSize ?? undefined;
  }

  /** The example's training tokens and loss mask. Throws a TokenizationError for what the model cannot take (images). */
  tokenize(example: TrainingExample): TokenizedExample {
    return tokenizeChatExample({ LlamaText: this.lib.LlamaText, chatWrapper: this.chatWrapper, tokenizer: this.model.tokenizer }, example);
  }

  /** Tokens back to text, special tokens spelled out (for logs and checks). */
  detokenize(tokens: readonly number[]): string {
    return this.model.detokenize(tokens as Parameters<LlamaModel['detokenize']>[0], true);
  }

  /** A `countTokens` for validateDataset: the training sequence's length and its trained tokens. */
  readonly countTokens = (example: TrainingExample): { tokens: number; trainedTokens: number } => {
    const { tokens, lossMask } = this.tokenize(example);
    let trainedTokens = 0;
    for (const bit of lossMask) trainedTokens += bit;
    return { tokens: tokens.length, trainedTokens };
  };

  async dispose(): Promise<void> {
    await this.model.dispose();
    await this.ownLlama?.dispose();
  }
}
