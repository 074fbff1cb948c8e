/**
 * A fine-tuning job as stored (resources table, kind `fine_tuning.job`) and as OpenAI's API
 * shows it, with its events and checkpoints (resource event streams `events`, `checkpoints`).
 * Times in the stored data are Unix seconds, as in the API.
 */
import { randomAlphanumeric } from '../openai/ids.js';
import type { ResourceEvent, ResourceRecord } from '../storage/resource-records.js';
import type { FineTuneHyperparameters } from './trainer-spec.js';

export const FINE_TUNING_KIND = 'fine_tuning.job';

export type FineTuningStatus = 'validating_files' | 'queued' | 'running' | 'paused' | 'succeeded' | 'failed' | 'cancelled';
export const FINAL_FINE_TUNING_STATUSES: readonly FineTuningStatus[] = ['succeeded', 'failed', 'cancelled'];

export type RequestedHyperparameters = { [Key in keyof FineTuneHyperparameters]: FineTuneHyperparameters[Key] | 'auto' };

export interface FineTuningJobData {
  model: string;
  training_file: string;
  validation_file: string | null;
  /** As requested ('auto' where not given) until the files are validated, then the numbers used. */
  hyperparameters: RequestedHyperparameters;
  seed: number;
  suffix: string | null;
  metadata: Record<string, string> | null;
  created_at: number;
  finished_at: number | null;
  estimated_finish: number | null;
  fine_tuned_model: string | null;
  trained_tokens: number | null;
  result_files: string[];
  error: { code: string; message: string; param: string | null } | null;
  /** The queue job running it now (a resumed job gets a new one). */
  job_id: string;
  /** Resumable state of the trainer (trainer-spec.ts `saveState`). */
  trainer_state: Record<string, unknown> | null;
  /** How the fine-tuned model is served: the configuration registered under `fine_tuned_model`. */
  served_model: Record<string, unknown> | null;
  /** Set when the fine-tuned model was deleted (`DELETE /v1/models/{model}`). */
  model_deleted_at: number | null;
  [key: string]: unknown;
}

export type FineTuningRecord = ResourceRecord<FineTuningJobData>;

export function asFineTuning(record: ResourceRecord): FineTuningRecord {
  return record as unknown as FineTuningRecord;
}

export function newFineTuningJobId(): string {
  return `ftjob-${randomAlphanumeric(24)}`;
}

/** `ft:<base>:<organization>:<suffix>:<short id>`, OpenAI's naming (the organization is the project). */
export function fineTunedModelName(base: string, project: string, suffix: string | null, jobId: string): string {
  const short = jobId.replace(/^ftjob-/, '').slice(0, 8).toLowerCase();
  return `ft:${base}:${project}:${suffix ?? ''}:${short}`;
}

export function jobObject(record: FineTuningRecord) {
  const data = record.data;
  return {
    id: record.id,
    object: 'fine_tuning.job' as const,
    created_at: data.created_at,
    error: data.error,
    fine_tuned_model: data.fine_tuned_model,
    finished_at: data.finished_at,
    hyperparameters: data.hyperparameters,
    model: data.model,
    organization_id: record.project,
    result_files: data.result_files,
    seed: data.seed,
    status: record.status as FineTuningStatus,
    trained_tokens: data.trained_tokens,
    training_file: data.training_file,
    validation_file: data.validation_file,
    estimated_finish: data.estimated_finish,
    integrations: [],
    metadata: data.metadata,
    user_provided_suffix: data.suffix,
    method: { type: 'supervised' as const, supervised: { hyperparameters: data.hyperparameters } },
  };
}

export interface EventData {
  level: 'info' | 'warn' | 'error';
  message: string;
  type: 'message' | 'metrics';
  data: Record<string, unknown>;
  [key: string]: unknown;
}

export function eventObject(event: ResourceEvent) {
  const data = event.data as EventData;
  return {
    object: 'fine_tuning.job.event' as const,
    id: event.id,
    created_at: Math.floor(event.createdAt / 1000),
    level: data.level,
    message: data.message,
    data: data.data,
    type: data.type,
  };
}

export interface CheckpointData {
  step_number: number;
  fine_tuned_model_checkpoint: string;
  metrics: Record<string, number>;
  /** The adapter of this checkpoint (local and command trainers). */
  adapter_path: string | null;
  /** The upstream's name of this checkpoint's model (upstream trainer). */
  upstream_model?: string | null;
  [key: string]: unknown;
}

export function checkpointObject(jobId: string, event: ResourceEvent) {
  const data = event.data as CheckpointData;
  return {
    object: 'fine_tuning.job.checkpoint' as const,
    id: event.id,
    created_at: Math.floor(event.createdAt / 1000),
    fine_tuned_model_checkpoint: data.fine_tuned_model_checkpoint,
    fine_tuning_job_id: jobId,
    metrics: data.metrics,
    step_number: data.step_number,
  };
}
