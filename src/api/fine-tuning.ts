/**
 * OpenAI's fine-tuning API (docs/fine-tuning.md): create, list, retrieve, cancel, pause and
 * resume jobs, their events and checkpoints, and `DELETE /v1/models/{model}` for a fine-tuned
 * model. The work happens on the durable job queue (src/fine-tuning/fine-tuning-job.ts); this
 * module records jobs and their state changes. A key sees only its own project's jobs.
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { GatewayError, invalidRequest, modelNotFound, notFound } from '../errors/gateway-error.js';
import type { ModelRegistry } from '../gateway/model-registry.js';
import { checkModelAllowed } from '../keys/access-policy.js';
import { addJobEvent, FINE_TUNE_JOB_KIND, updateJob, type FineTuneJobPayload } from '../fine-tuning/fine-tuning-job.js';
import {
  asFineTuning, checkpointObject, eventObject, FINE_TUNING_KIND, jobObject, newFineTuningJobId,
  type FineTuningJobData, type FineTuningStatus, type RequestedHyperparameters,
} from '../fine-tuning/fine-tuning-object.js';
import type { FineTunedModels } from '../fine-tuning/fine-tuned-models.js';
import type { JobQueue } from '../storage/job-records.js';
import type { ResourceStore } from '../storage/resource-records.js';
import type { FileStore } from '../storage/spec.js';
import { parseWith, readJsonBody } from './parse-request.js';
import { createWithJob, metadataField, pageOptions, storableBody } from './background-resources.js';

export interface FineTuningApiDependencies {
  resources: ResourceStore;
  queue: JobQueue;
  files: FileStore;
  models: ModelRegistry;
  fineTunedModels: FineTunedModels;
  maxBodyBytes: number;
  /** A job was queued or changed here: a local worker looks at the queue at once. */
  onChange?: () => void;
}

const auto = <Schema extends z.ZodType>(schema: Schema) => z.union([z.literal('auto'), schema]);
const hyperparameters = z
  .object({
    n_epochs: auto(z.number().int().min(1).max(50)).optional(),
    batch_size: auto(z.number().int().min(1).max(256)).optional(),
    learning_rate_multiplier: auto(z.number().positive().max(10)).optional(),
  })
  .strict();

const createJobRequest = z
  .object({
    model: z.string().min(1),
    training_file: z.string().min(1),
    validation_file: z.string().min(1).nullable().optional(),
    hyperparameters: hyperparameters.optional(),
    suffix: z.string().max(64).regex(/^[A-Za-z0-9_.-]*$/, 'letters, digits, "-", "_" and "." only').nullable().optional(),
    seed: z.number().int().min(0).max(2_147_483_647).nullable().optional(),
    metadata: metadataField,
    method: z
      .object({
        type: z.enum(['supervised', 'dpo', 'reinforcement']),
        supervised: z.object({ hyperparameters: hyperparameters.optional() }).strict().optional(),
        dpo: z.unknown().optional(),
        reinforcement: z.unknown().optional(),
      })
      .strict()
      .optional(),
    integrations: z.array(z.unknown()).nullable().optional(),
  })
  .strict();

function noSuchJob(id: string): GatewayError {
  return notFound(`No such fine-tuning job: ${id}`, 'fine_tuning_job_id');
}

function conflict(code: string, message: string): GatewayError {
  return new GatewayError({ status: 409, type: 'invalid_request_error', code, param: null, message });
}

export function fineTuningRoutes(dependencies: FineTuningApiDependencies): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();

  async function ownJob(context: Context<AppEnv>) {
    const id = context.req.param('id')!;
    const record = await dependencies.resources.get(FINE_TUNING_KIND, id, context.get('principal').project);
    if (record === null) throw noSuchJob(id);
    return asFineTuning(record);
  }

  async function checkFile(project: string, id: string, param: string): Promise<void> {
    const file = await dependencies.files.get(project, id);
    if (file === null) throw invalidRequest(`No such File object: ${id}`, param, 'file_not_found');
    if (file.purpose !== 'fine-tune') {
      throw invalidRequest(`The file ${id} has purpose '${file.purpose}'; fine-tuning files must have purpose 'fine-tune'.`, param, 'invalid_file_purpose');
    }
  }

  routes.post('/jobs', async (context) => {
    const principal = context.get('principal');
    const request = parseWith(createJobRequest, storableBody(await readJsonBody(context, dependencies.maxBodyBytes)));
    if (request.method !== undefined && request.method.type !== 'supervised') {
      throw invalidRequest(`The '${request.method.type}' method is not available here; use 'supervised'.`, 'method.type', 'unsupported_method');
    }
    if (request.integrations && request.integrations.length > 0) throw invalidRequest('Integrations are not available here.', 'integrations', 'unsupported_integration');
    const base = dependencies.models.find(request.model);
    if (base === undefined) throw modelNotFound(request.model);
    checkModelAllowed(principal, request.model);
    if (base.config.fine_tuning === undefined) {
      throw invalidRequest(`Model ${request.model} is not available for fine-tuning (its configuration has no fine_tuning section).`, 'model', 'model_not_available');
    }
    await checkFile(principal.project, request.training_file, 'training_file');
    if (request.validation_file) await checkFile(principal.project, request.validation_file, 'validation_file');
    const requested = { ...request.hyperparameters, ...request.method?.supervised?.hyperparameters };
    const now = Date.now();
    const id = newFineTuningJobId();
    const jobId = `job_${id}_1`;
    const data: FineTuningJobData = {
      model: request.model,
      training_file: request.training_file,
      validation_file: request.validation_file ?? null,
      hyperparameters: {
        n_epochs: requested.n_epochs ?? 'auto',
        batch_size: requested.batch_size ?? 'auto',
        learning_rate_multiplier: requested.learning_rate_multiplier ?? 'auto',
      } as RequestedHyperparameters,
      seed: request.seed ?? Math.floor(Math.random() * 2_147_483_647),
      suffix: request.suffix || null,
      metadata: request.metadata ?? null,
      created_at: Math.floor(now / 1000),
      finished_at: null,
      estimated_finish: null,
      fine_tuned_model: null,
      trained_tokens: null,
      result_files: [],
      error: null,
      job_id: jobId,
      trainer_state: null,
      served_model: null,
      model_deleted_at: null,
    };
    const record = await createWithJob(
      dependencies.resources,
      dependencies.queue,
      { kind: FINE_TUNING_KIND, id, project: principal.project, status: 'validating_files', data, createdAt: now, updatedAt: now },
      { kind: FINE_TUNE_JOB_KIND, id: jobId, payload: { fineTuningJobId: id } satisfies FineTuneJobPayload, maxAttempts: 5 },
      () => addJobEvent(dependencies.resources, id, { level: 'info', message: `Created fine-tuning job: ${id}`, type: 'message', data: {} }),
    );
    dependencies.onChange?.();
    return context.json(jobObject(asFineTuning(record)));
  });

  routes.get('/jobs', async (context) => {
    const { limit, after } = pageOptions(context, 20);
    const records = await dependencies.resources.list({ kind: FINE_TUNING_KIND, project: context.get('principal').project, limit: limit + 1, ...(after ? { after } : {}) });
    return context.json({ object: 'list', data: records.slice(0, limit).map((record) => jobObject(asFineTuning(record))), has_more: records.length > limit });
  });

  routes.get('/jobs/:id', async (context) => context.json(jobObject(await ownJob(context))));

  /** Moves the job from one of `from` to `to`, else 409. */
  async function transition(context: Context<AppEnv>, from: readonly FineTuningStatus[], to: FineTuningStatus, verb: string, extra: (data: FineTuningJobData) => Partial<FineTuningJobData> = () => ({})) {
    const job = await ownJob(context);
    let refused: string | null = null;
    const updated = await updateJob(dependencies.resources, job.id, (status, data) => {
      refused = null;
      if (status === to) return null;
      if (!from.includes(status)) {
        refused = status;
        return null;
      }
      return { status: to, data: extra(data) };
    });
    if (refused !== null) throw conflict(`job_not_${verb.replace(/e$/, '')}able`, `Cannot ${verb} a fine-tuning job with status '${refused}'.`);
    return updated!;
  }

  routes.post('/jobs/:id/cancel', async (context) => {
    const updated = await transition(context, ['validating_files', 'queued', 'running', 'paused'], 'cancelled', 'cancel', () => ({ estimated_finish: null }));
    await dependencies.queue.cancel(updated.data.job_id).catch(() => false);
    await addJobEvent(dependencies.resources, updated.id, { level: 'info', message: 'Fine-tuning job cancelled', type: 'message', data: {} });
    dependencies.onChange?.();
    return context.json(jobObject(updated));
  });

  routes.post('/jobs/:id/pause', async (context) => {
    const updated = await transition(context, ['queued', 'running'], 'paused', 'pause', () => ({ estimated_finish: null }));
    await addJobEvent(dependencies.resources, updated.id, { level: 'info', message: 'Fine-tuning job paused', type: 'message', data: {} });
    return context.json(jobObject(updated));
  });

  routes.post('/jobs/:id/resume', async (context) => {
    const job = await ownJob(context);
    const attempt = Number(/_(\d+)$/.exec(job.data.job_id)?.[1] ?? '1') + 1;
    const jobId = `job_${job.id}_${attempt}`;
    const updated = await transition(context, ['paused'], 'queued', 'resume', () => ({ job_id: jobId }));
    if (updated.data.job_id === jobId) {
      await dependencies.queue.enqueue({ kind: FINE_TUNE_JOB_KIND, id: jobId, payload: { fineTuningJobId: job.id } satisfies FineTuneJobPayload, maxAttempts: 5 }).catch((error: unknown) => {
        // Already queued by a concurrent resume.
        if (!(error instanceof Error && /exist/i.test(error.message))) throw error;
      });
      await addJobEvent(dependencies.resources, updated.id, { level: 'info', message: 'Fine-tuning job resumed', type: 'message', data: {} });
    }
    dependencies.onChange?.();
    return context.json(jobObject(updated));
  });

  routes.get('/jobs/:id/events', async (context) => {
    const job = await ownJob(context);
    const { limit, after } = pageOptions(context, 20);
    const events = await dependencies.resources.listEvents(FINE_TUNING_KIND, job.id, 'events', { limit: limit + 1, ...(after ? { after } : {}) });
    return context.json({ object: 'list', data: events.slice(0, limit).map(eventObject), has_more: events.length > limit });
  });

  routes.get('/jobs/:id/checkpoints', async (context) => {
    const job = await ownJob(context);
    const { limit, after } = pageOptions(context, 10);
    const events = await dependencies.resources.listEvents(FINE_TUNING_KIND, job.id, 'checkpoints', { limit: limit + 1, ...(after ? { after } : {}) });
    const data = events.slice(0, limit).map((event) => checkpointObject(job.id, event));
    return context.json({ object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: events.length > limit });
  });
  return routes;
}

/** `DELETE /v1/models/{model}`: deletes a fine-tuned model of the caller's project. */
export function deleteModelHandler(dependencies: FineTuningApiDependencies) {
  return async (context: Context<AppEnv>) => {
    const name = context.req.param('id')!;
    const principal = context.get('principal');
    const records = (await dependencies.resources.listByStatus(FINE_TUNING_KIND, ['succeeded'], 10_000)).map(asFineTuning);
    const job = records.find((record) => record.data.fine_tuned_model === name && record.data.model_deleted_at === null);
    if (job === undefined || job.project !== principal.project) {
      if (dependencies.models.find(name) !== undefined && job === undefined) {
        throw new GatewayError({ status: 403, type: 'invalid_request_error', code: 'model_not_deletable', param: 'model', message: `The model ${name} is configured, not fine-tuned: it cannot be deleted through the API.` });
      }
      throw modelNotFound(name);
    }
    await updateJob(dependencies.resources, job.id, (status) => ({ status, data: { model_deleted_at: Math.floor(Date.now() / 1000) } }));
    dependencies.fineTunedModels.unregister(name);
    return context.json({ id: name, object: 'model' as const, deleted: true });
  };
}
