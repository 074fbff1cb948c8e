/**
 * Loads llama-cpp models on first use (or at start-up with `preload`), keeps one model and
 * one context with `parallel` sequences per configured model, lends the sequences to
 * requests (bounded FIFO queue when all are busy, see sequence-pool.ts) and unloads a model after `idle_unload_seconds`
 * without requests. Embeddings use a second, embedding-only context per model, created on
 * the first embedding request (`acquireEmbedding`); node-llama-cpp evaluates one input at a
 * time on it, so concurrent embedding requests of a model are serialized. Load failures become a clear 503 and are retried by the next request.
 */
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { ChatWrapper, Llama, LlamaContext, LlamaContextSequence, LlamaEmbeddingContext, LlamaModel } from 'node-llama-cpp';
import type { LlamaCppModelConfig } from '../../config/schema.js';
import { modelLoadFailed, shortReason } from './model-load-error.js';
import { importNodeLlamaCpp, type NodeLlamaCpp } from './node-llama-cpp-module.js';
import { SequencePool } from './sequence-pool.js';

/** Default context size per sequence when the config sets none: the training context, capped. */
export const DEFAULT_CONTEXT_CAP = 4096;

export interface LoadedModel {
  /** The node-llama-cpp module (imported lazily). */
  lib: NodeLlamaCpp;
  model: LlamaModel;
  context: LlamaContext;
  /** Resolved once per load (resolving takes ~1 s): from the model file, else the configured fallback template. */
  chatWrapper: ChatWrapper;
  /** Tokens one sequence holds (prompt + completion). */
  contextSize: number;
  /** The embedding context, created on the first embedding request. */
  embedding?: Promise<LlamaEmbeddingContext>;
}

export interface EmbeddingLease {
  loaded: LoadedModel;
  embedding: LlamaEmbeddingContext;
  /** Lets the model unload when idle. Call exactly once, in `finally`. */
  release(): void;
}

export interface SequenceLease {
  loaded: LoadedModel;
  sequence: LlamaContextSequence;
  /** Clears the sequence and returns it to the pool. Call exactly once, in `finally`. */
  release(): Promise<void>;
}

interface Slot {
  loading?: Promise<LoadedModel & { pool: SequencePool<LlamaContextSequence> }>;
  users: number;
  idleTimer?: NodeJS.Timeout;
}

export class LoadedModels {
  private llama?: Promise<Llama>;
  private readonly slots = new Map<string, Slot>();
  private closed = false;

  constructor(private readonly options: { gpu: 'auto' | false }) {}

  private getLlama(): Promise<Llama> {
    return (this.llama ??= importNodeLlamaCpp()
      .then(({ getLlama, LlamaLogLevel }) =>
        getLlama({ gpu: this.options.gpu, build: 'never', skipDownload: true, logLevel: LlamaLogLevel.warn }),
      )
      .catch((error: unknown) => {
      this.llama = undefined;
      throw error;
    }));
  }

  private slot(config: LlamaCppModelConfig): Slot {
    let slot = this.slots.get(config.name);
    if (!slot) this.slots.set(config.name, (slot = { users: 0 }));
    return slot;
  }

  /** Loads the model now (for `preload`); rejects with the load error. */
  async preload(config: LlamaCppModelConfig): Promise<void> {
    await this.load(config, this.slot(config));
  }

  private load(config: LlamaCppModelConfig, slot: Slot) {
    if (this.closed) return Promise.reject(modelLoadFailed(config.name, config.path, 'the server is shutting down'));
    return (slot.loading ??= this.loadNow(config).catch((error: unknown) => {
      slot.loading = undefined;
      throw error;
    }));
  }

  private async loadNow(config: LlamaCppModelConfig) {
    const path = resolve(config.path);
    try {
      const info = await stat(path);
      if (!info.isFile()) throw modelLoadFailed(config.name, path, 'not a file');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw modelLoadFailed(config.name, path, 'no such file');
      if ((error as { code?: unknown }).code === 'model_load_failed') throw error;
      throw modelLoadFailed(config.name, path, shortReason(error));
    }
    let llama: Llama;
    try {
      llama = await this.getLlama();
    } catch (error) {
      throw modelLoadFailed(config.name, path, `llama.cpp is not available on this machine (${shortReason(error)})`);
    }
    let model: LlamaModel;
    try {
      model = await llama.loadModel({ modelPath: path, gpuLayers: config.gpu_layers });
    } catch (error) {
      throw modelLoadFailed(config.name, path, `not a loadable GGUF model (${shortReason(error)})`);
    }
    try {
      const contextSize = config.context_size ?? Math.min(model.trainContextSize, DEFAULT_CONTEXT_CAP);
      const context = await model.createContext({
        contextSize,
        sequences: config.parallel,
        threads: config.threads ?? availableParallelism(),
      });
      const sequences = Array.from({ length: config.parallel }, () => context.getSequence());
      const hasTemplate = typeof model.fileInfo.metadata.tokenizer?.chat_template === 'string';
      const lib = await importNodeLlamaCpp();
      const chatWrapper: ChatWrapper =
        !hasTemplate && config.chat_template !== undefined
          ? new lib.JinjaTemplateChatWrapper({ template: config.chat_template })
          : lib.resolveChatWrapper(model);
      const loaded: LoadedModel & { pool: SequencePool<LlamaContextSequence> } = {
        lib,
        model,
        context,
        chatWrapper,
        contextSize: context.contextSize,
        pool: new SequencePool(sequences, { maxWaiting: config.max_queue, maxWaitMs: config.queue_timeout_seconds * 1000 }, config.name),
      };
      return loaded;
    } catch (error) {
      await model.dispose().catch(() => {});
      throw modelLoadFailed(config.name, path, `cannot create a context (${shortReason(error)})`);
    }
  }

  /** A free sequence of the model, loading the model if needed; waits (FIFO) when all are busy. */
  async acquire(config: LlamaCppModelConfig, signal: AbortSignal): Promise<SequenceLease> {
    const slot = this.slot(config);
    slot.users++;
    clearTimeout(slot.idleTimer);
    try {
      const loaded = await this.load(config, slot);
      const sequence = await loaded.pool.acquire(signal);
      let released = false;
      return {
        loaded,
        sequence,
        release: async () => {
          if (released) return;
          released = true;
          try {
            await sequence.clearHistory();
          } finally {
            loaded.pool.release(sequence);
            this.leave(config, slot);
          }
        },
      };
    } catch (error) {
      this.leave(config, slot);
      throw error;
    }
  }

  /** The model's embedding context (created on first use), loading the model if needed. */
  async acquireEmbedding(config: LlamaCppModelConfig): Promise<EmbeddingLease> {
    const slot = this.slot(config);
    slot.users++;
    clearTimeout(slot.idleTimer);
    try {
      const loaded = await this.load(config, slot);
      const creating = (loaded.embedding ??= loaded.model
        .createEmbeddingContext({ contextSize: loaded.contextSize, threads: config.threads ?? availableParallelism() })
        .catch((error: unknown) => {
          loaded.embedding = undefined;
          throw modelLoadFailed(config.name, resolve(config.path), `cannot create an embedding context (${shortReason(error)})`);
        }));
      const embedding = await creating;
      let released = false;
      return {
        loaded,
        embedding,
        release: () => {
          if (released) return;
          released = true;
          this.leave(config, slot);
        },
      };
    } catch (error) {
      this.leave(config, slot);
      throw error;
    }
  }

  private leave(config: LlamaCppModelConfig, slot: Slot): void {
    slot.users--;
    if (slot.users > 0 || config.idle_unload_seconds === 0 || !slot.loading) return;
    slot.idleTimer = setTimeout(() => void this.unloadIfIdle(slot), config.idle_unload_seconds * 1000);
    slot.idleTimer.unref();
  }

  private async unloadIfIdle(slot: Slot): Promise<void> {
    if (slot.users > 0 || !slot.loading) return;
    const loading = slot.loading;
    slot.loading = undefined;
    const loaded = await loading.catch(() => undefined);
    if (!loaded) return;
    await disposeEmbedding(loaded);
    await loaded.context.dispose();
    await loaded.model.dispose();
  }

  /** Whether the named model is loaded (or loading). */
  isLoaded(name: string): boolean {
    return this.slots.get(name)?.loading !== undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    const loads: Array<Promise<unknown>> = [];
    for (const slot of this.slots.values()) {
      clearTimeout(slot.idleTimer);
      if (slot.loading) loads.push(slot.loading.then(async (loaded) => {
        loaded.pool.rejectWaiting(new Error('the server is shutting down'));
        await disposeEmbedding(loaded);
        await loaded.context.dispose();
        await loaded.model.dispose();
      }, () => {}));
      slot.loading = undefined;
    }
    await Promise.all(loads);
    const llama = this.llama;
    this.llama = undefined;
    if (llama) await (await llama.catch(() => undefined))?.dispose();
  }
}

async function disposeEmbedding(loaded: LoadedModel): Promise<void> {
  const embedding = await loaded.embedding?.catch(() => undefined);
  loaded.embedding = undefined;
  await embedding?.dispose();
}
