/**
 * Serves fine-tuned models: registers each succeeded job's model (`served_model`, the base
 * model's configuration plus its adapter or upstream model) in the model registry, so it is
 * listed by `/v1/models` and usable by every endpoint, and removes deleted ones. Every
 * instance syncs from the database (at start and every few seconds), so a model trained by one
 * instance is served by all (the fine-tuning directory must then be shared, like files).
 */
import type { Logger } from 'pino';
import { modelConfig, type ModelConfig } from '../config/schema.js';
import type { ModelRegistry } from '../gateway/model-registry.js';
import type { Provider } from '../providers/spec.js';
import type { ResourceStore } from '../storage/resource-records.js';
import { asFineTuning, FINE_TUNING_KIND, type FineTuningRecord } from './fine-tuning-object.js';

export interface FineTunedModelsOptions {
  resources: ResourceStore;
  models: ModelRegistry;
  providerFor: (config: ModelConfig) => Provider;
  logger: Logger;
  /** Sync interval. Default 5 s. */
  intervalMs?: number;
}

const MAX_MODELS = 10_000;

export class FineTunedModels {
  /** Registered here: model name → the job it came from. */
  private readonly registered = new Map<string, string>();
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

  /** Registers one job's model now (the job just succeeded here). */
  register(record: FineTuningRecord): void {
    const name = record.data.fine_tuned_model;
    const served = record.data.served_model;
    if (name === null || served === null || record.data.model_deleted_at !== null) return;
    const parsed = modelConfig.safeParse(served);
    if (!parsed.success) {
      this.options.logger.warn({ model: name, job: record.id }, 'A fine-tuned model has an unusable configuration; not served');
      return;
    }
    if (this.options.models.find(name) !== undefined && !this.registered.has(name)) return; // never shadow a configured model
    this.options.models.add({ config: parsed.data, provider: this.options.providerFor(parsed.data), created: record.data.finished_at ?? Math.floor(record.updatedAt / 1000) });
    this.registered.set(name, record.id);
  }

  /** Removes a model (deleted through the API). */
  unregister(name: string): void {
    if (this.registered.delete(name)) this.options.models.remove(name);
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
      if (!this.registered.has(name)) this.register(record);
    }
    for (const name of [...this.registered.keys()]) if (!live.has(name)) this.unregister(name);
  }
}
