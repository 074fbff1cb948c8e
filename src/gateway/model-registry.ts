/**
 * Resolves the `model` a client sends to its configured entry and the provider that
 * serves it. Built once at start from the config and passed in; fine-tuned models are added
 * and removed while the server runs (`add`, `remove`).
 */
import type { ModelConfig } from '../config/schema.js';
import { modelNotFound } from '../errors/gateway-error.js';
import type { Provider } from '../providers/spec.js';

export interface ResolvedModel {
  config: ModelConfig;
  provider: Provider;
  /** Unix seconds at which the model was registered (for `GET /v1/models`). */
  created: number;
  /** A fine-tuned model: the project it belongs to; other projects neither see nor use it. */
  project?: string;
}

export class ModelRegistry {
  readonly #models = new Map<string, ResolvedModel>();

  constructor(entries: Iterable<ResolvedModel>) {
    for (const entry of entries) this.#models.set(entry.config.name, entry);
  }

  /** The model, for a caller of `project` (omitted: any); 404 `model_not_found` when unknown or another project's. */
  resolve(name: string, project?: string): ResolvedModel {
    const found = this.#models.get(name);
    if (!found || (project !== undefined && !visibleTo(found, project))) throw modelNotFound(name);
    return found;
  }

  find(name: string): ResolvedModel | undefined {
    return this.#models.get(name);
  }

  /** Every model, or those a caller of `project` may see. */
  list(project?: string): ResolvedModel[] {
    const all = [...this.#models.values()];
    return project === undefined ? all : all.filter((model) => visibleTo(model, project));
  }

  /** Adds (or replaces) a model made while the server runs: a fine-tuned model. */
  add(entry: ResolvedModel): void {
    this.#models.set(entry.config.name, entry);
  }

  /** Removes a model added with `add`; false when there was none. */
  remove(name: string): boolean {
    return this.#models.delete(name);
  }
}

function visibleTo(model: ResolvedModel, project: string): boolean {
  return model.project === undefined || model.project === project;
}
