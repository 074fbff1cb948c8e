/**
 * Loads llama-cpp models on first use (or at start-up with `preload`), keeps one model and
 * one context with `parallel` sequences per configured model, lends the sequences to
 * requests (bounded FIFO queue when all are busy, see sequence-pool.ts) and unloads a model after `idle_unload_seconds`
 * without requests. Embeddings use a second, embedding-only context per model, created on
 * the first embedding request (`acquireEmbedding`); node-llama-cpp evaluates one input at a
 * time on it, so concurrent embedding requests of a model are serialized. Load failures become a clear 503 and are retried by the next request.
 *
 * LoRA adapters (`lora`, e.g. fine-tuned models) are applied per context: llama.cpp sets
 * adapters on a context, not on the model, so configured models with the same `path` (and
 * `gpu_layers`) share one LlamaModel, reference-counted across their slots, each with its
 * own context and adapters (an adapter file is loaded once per LlamaModel, cached by path,
 * and freed with it). Embedding contexts take no adapters (the base model's embeddings).
 * A missing or unloadable adapter file is a 503 naming the adapter's path.
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

/** A slot's model: also its sequence pool and the key of the shared LlamaModel it holds. */
type SlotModel = LoadedModel & { pool: SequencePool<LlamaContextSequence>; modelKey: string };

interface Slot {
  loading?: Promise<SlotModel>;
  users: number;
  idleTimer?: NodeJS.Timeout;
}

/** A LlamaModel shared by the slots of the configured models with the same file and `gpu_layers`. */
interface SharedModel {
  loading: Promise<LlamaModel>;
  /** Slots holding it (loaded or loading); the model is disposed when the last one lets go. */
  holders: number;
}

export class LoadedModels {
  private llama?: Promise<Llama>;
  private readonly slots = new Map<string, Slot>();
  private readonly models = new Map<string, SharedModel>();
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
    await checkFile(config.name, path, 'no such file');
    const adapters = config.lora.map((adapter) => ({ filePath: resolve(adapter.path), scale: adapter.scale }));
    for (const adapter of adapters) await checkFile(config.name, adapter.filePath, 'no such LoRA adapter file');
    let llama: Llama;
    try {
      llama = await this.getLlama();
    } catch (error) {
      throw modelLoadFailed(config.name, path, `llama.cpp is not available on this machine (${shortReason(error)})`);
    }
    const model = await this.holdModel(llama, config, path);
    let context: LlamaContext;
    try {
      const contextSize = config.context_size ?? Math.min(model.trainContextSize, DEFAULT_CONTEXT_CAP);
      context = await model.createContext({
        contextSize,
        sequences: config.parallel,
        threads: config.threads ?? availableParallelism(),
        ...(adapters.length > 0 ? { lora: { adapters } } : {}),
      });
    } catch (error) {
      await this.releaseModel(modelKey(config));
      const reason = shortReason(error);
      // node-llama-cpp names the adapter that failed ("Failed to initialize LoRA adapter \"…\"").
      const adapter = adapters.find((candidate) => reason.includes(candidate.filePath));
      if (adapter) throw modelLoadFailed(config.name, adapter.filePath, `not a loadable LoRA adapter for '${path}' (${reason})`);
      const which = adapters.length > 0 ? ` with the LoRA adapters ${adapters.map((a) => `'${a.filePath}'`).join(', ')}` : '';
      throw modelLoadFailed(config.name, path, `cannot create a context${which} (${reason})`);
    }
    try {
      const sequences = Array.from({ length: config.parallel }, () => context.getSequence());
      const hasTemplate = typeof model.fileInfo.metadata.tokenizer?.chat_template === 'string';
      const lib = await importNodeLlamaCpp();
      const chatWrapper: ChatWrapper =
        !hasTemplate && config.chat_template !== undefined
          ? new lib.JinjaTemplateChatWrapper({ template: config.chat_template })
          : lib.resolveChatWrapper(model);
      const loaded: SlotModel = {
        lib,
        model,
        context,
        chatWrapper,
        contextSize: context.contextSize,
        pool: new SequencePool(sequences, { maxWaiting: config.max_queue, maxWaitMs: config.queue_timeout_seconds * 1000 }, config.name),
        modelKey: modelKey(config),
      };
      return loaded;
    } catch (error) {
      await context.dispose().catch(() => {});
      await this.releaseModel(modelKey(config));
      throw modelLoadFailed(config.name, path, `cannot create a context (${shortReason(error)})`);
    }
  }

  /** The model file loaded (or shared with another configured model), held once more. */
  private async holdModel(llama: Llama, config: LlamaCppModelConfig, path: string): Promise<LlamaModel> {
    const key = modelKey(config);
    let shared = this.models.get(key);
    if (!shared) {
      const entry: SharedModel = {
        loading: llama.loadModel({ modelPath: path, gpuLayers: config.gpu_layers }).catch((error: unknown) => {
          if (this.models.get(key) === entry) this.models.delete(key);
          throw error;
        }),
        holders: 0,
      };
      this.models.set(key, (shared = entry));
    }
    shared.holders++;
    try {
      return await shared.loading;
    } catch (error) {
      throw modelLoadFailed(config.name, path, `not a loadable GGUF model (${shortReason(error)})`);
    }
  }

  /** Lets go of a model that holdModel returned; disposes it when no slot holds it any more. */
  private async releaseModel(key: string): Promise<void> {
    const shared = this.models.get(key);
    if (!shared) return;
    shared.holders--;
    if (shared.holders > 0) return;
    this.models.delete(key);
    const model = await shared.loading.catch(() => undefined);
    await model?.dispose();
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
    await this.unload(loaded);
  }

  /** Disposes a slot's contexts and lets go of its model. */
  private async unload(loaded: SlotModel): Promise<void> {
    await disposeEmbedding(loaded);
    await loaded.context.dispose();
    await this.releaseModel(loaded.modelKey);
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
        await this.unload(loaded);
      }, () => {}));
      slot.loading = undefined;
    }
    await Promise.all(loads);
    const llama = this.llama;
    this.llama = undefined;
    if (llama) await (await llama.catch(() => undefined))?.dispose();
  }
}

/** Configured models with the same file and GPU offload share one LlamaModel. */
function modelKey(config: LlamaCppModelConfig): string {
  return `${resolve(config.path)}\0${String(config.gpu_layers)}`;
}

/** Rejects with a 503 naming `path` unless it is a file. */
async function checkFile(modelName: string, path: string, missing: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw modelLoadFailed(modelName, path, missing);
    throw modelLoadFailed(modelName, path, shortReason(error));
  }
  if (!info.isFile()) throw modelLoadFailed(modelName, path, 'not a file');
}

async function disposeEmbedding(loaded: LoadedModel): Promise<void> {
  const embedding = await loaded.embedding?.catch(() => undefined);
  loaded.embedding = undefined;
  await embedding?.dispose();
}
