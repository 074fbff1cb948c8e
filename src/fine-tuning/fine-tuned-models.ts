/**
 * Serves fine-tuned models: registers each succeeded job's model (`served_model`, the base
 * model's configuration plus its adapter or upstream model) in the model registry, so it is
 * listed by `/v1/models` and usable by every endpoint, and removes deleted ones. A job's
 * checkpoints are served too, as OpenAI does (`ft:…:ckpt-step-N`: the same configuration with
 * the checkpoint's adapter or upstream model); they go with their job's model. Every
 * instance syncs from the database (at start and every few seconds), so a model trained by one
 * instance is served by all (the fine-tuning directory must then be shared, like files).
 */
import type { Logger } from 'pino';
import { modelConfig, type ModelConfig } from '../config/schema.js';
import type { ModelRegistry } from '../gateway/model-registry.js';
import type { Provider } from '../providers/spec.js';
import type { ResourceStore } from '../storage/resource-records.js';
import { asFineTuning, FINE_TUNING_KIND, type CheckpointData, type FineTuningRecord } from './fine-tuning-object.js';

export interface FineTunedModelsOptions {
  resources: ResourceStore;
  models: ModelRegistry;
  providerFor: (config: ModelConfig) => Provider;
  logger: Logger;
  /** Sync interval. Default 5 s. */
  intervalMs?: number;
}

const MAX_MODELS = 10_000;
const MAX_CHECKPOINTS = 1_000;

export class FineTunedModels {
  /** Registered here: a job's model name → the names registered for it (the model and its checkpoints). */
  private readonly registered = new Map<string, string[]>();
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;

  constructor(private readonly options: FineTunedModelsOptions) {}

  start(): Promise<void> {
    this.timer = setInterval(() => void this.sync().catch((error: unknown) => this.options.logger.warn({ err: error }, 'Could not sync fine-tuned models')), this.options.intervalMs ?? 5_000);
    this.timer.unref();
    return this.sync();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Registers one job's model and its checkpoints now (the job just succeeded here). */
  async register(record: FineTuningRecord): Promise<void> {
    const name = record.data.fine_tuned_model;
    const served = record.data.served_model;
    if (name === null || served === null || record.data.model_deleted_at !== null || this.registered.has(name)) return;
    const created = record.data.finished_at ?? Math.floor(record.updatedAt / 1000);
    if (!this.add(name, served, created, record.id, record.project)) return;
    const names = [name];
    this.registered.set(name, names);
    const checkpoints = await this.options.resources.listEvents(FINE_TUNING_KIND, record.id, 'checkpoints', { limit: MAX_CHECKPOINTS, order: 'asc' });
    for (const checkpoint of checkpoints) {
      const data = checkpoint.data as CheckpointData;
      const config = checkpointModel(served, data);
      if (config !== null && this.add(data.fine_tuned_model_checkpoint, config, Math.floor(checkpoint.createdAt / 1000), record.id, record.project)) names.push(data.fine_tuned_model_checkpoint);
    }
  }

  /** Adds one model to the registry; false when its configuration is unusable or the name is a configured model's. */
  private add(name: string, served: Record<string, unknown>, created: number, jobId: string, project: string): boolean {
    const parsed = modelConfig.safeParse({ ...served, name });
    if (!parsed.success) {
      this.options.logger.warn({ model: name, job: jobId }, 'A fine-tuned model has an unusable configuration; not served');
      return false;
    }
    if (this.options.models.find(name) !== undefined) return false; // never shadow a configured model
    this.options.models.add({ config: parsed.data, provider: this.options.providerFor(parsed.data), created, project });
    return true;
  }

  /** Removes a job's model and its checkpoints (deleted through the API). */
  unregister(name: string): void {
    for (const registered of this.registered.get(name) ?? []) this.options.models.remove(registered);
    this.registered.delete(name);
  }

  sync(): Promise<void> {
    return (this.syncing ??= this.syncNow().finally(() => (this.syncing = undefined)));
  }

  private async syncNow(): Promise<void> {
    const records = (await this.options.resources.listByStatus(FINE_TUNING_KIND, ['succeeded'], MAX_MODELS)).map(asFineTuning);
    const live = new Set<string>();
    for (const record of records) {
      const name = record.data.fine_tuned_model;
      if (name === null || record.data.model_deleted_at !== null) continue;
      live.add(name);
      if (!this.registered.has(name)) await this.register(record);
    }
    for (const name of [...this.registered.keys()]) if (!live.has(name)) this.unregister(name);
  }
}

/** A checkpoint's configuration: the job's, with the checkpoint's adapter (in place of the final one) or upstream model. */
function checkpointModel(served: Record<string, unknown>, checkpoint: CheckpointData): Record<string, unknown> | null {
  if (checkpoint.upstream_model) return { ...served, model: checkpoint.upstream_model };
  const lora = served.lora;
  if (checkpoint.adapter_path === null || !Array.isArray(lora) || lora.length === 0) return null;
  return { ...served, lora: [...lora.slice(0, -1), { path: checkpoint.adapter_path, scale: 1 }] };
}
