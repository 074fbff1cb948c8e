/**
 * The configuration file's shape. Keys are snake_case as in the YAML file; the loader
 * validates the whole file with this schema and names the bad key on failure.
 */
import { isSupportedCountry } from 'libphonenumber-js/max';
import { z } from 'zod';

const positiveInt = z.number().int().positive();

/** Per-model response cache settings (docs/cache.md); unset fields follow the top-level `cache`. */
export const modelCacheConfig = z
  .object({
    /** Cache this model's answers (default: the top-level `cache.enabled`). */
    enabled: z.boolean().optional(),
    ttl_seconds: positiveInt.optional(),
    /** Only cache requests with temperature 0 or a seed (default: the top-level setting). */
    deterministic_only: z.boolean().optional(),
    /** Serve answers to similar prompts: embeds the last user message with `embedding_model`. */
    semantic: z
      .object({
        /** A configured model whose provider has embeddings. */
        embedding_model: z.string().min(1),
        /** Cosine similarity at or above which a cached answer is served. */
        threshold: z.number().min(0).max(1).default(0.95),
        /** Vectors kept for this model (in memory, per instance). */
        max_entries: positiveInt.default(1000),
      })
      .strict()
      .optional(),
  })
  .strict();
export type ModelCacheConfig = z.infer<typeof modelCacheConfig>;

// ---------------------------------------------------------------------------------------------
// PII policies (docs/pii.md): key over model over the top-level `pii`.

export const piiPolicyName = z.enum(['off', 'mask', 'pseudonymize', 'block']);
export type PiiPolicyName = z.infer<typeof piiPolicyName>;

/** Built-in detectors switched on (true) or off (false); unset: on. */
export const piiDetectors = z
  .object({
    email: z.boolean().optional(),
    phone: z.boolean().optional(),
    card: z.boolean().optional(),
    iban: z.boolean().optional(),
    ssn: z.boolean().optional(),
    ip: z.boolean().optional(),
    secret: z.boolean().optional(),
  })
  .strict();

const piiCustomPattern = z
  .object({
    /** A label for the rule. */
    name: z.string().min(1).max(64),
    /** A JavaScript regular expression source (compiled with the `g` and `u` flags). */
    regex: z
      .string()
      .min(1)
      .refine((source) => {
        try {
          new RegExp(source, 'gu');
          return true;
        } catch {
          return false;
        }
      }, 'must be a valid JavaScript regular expression')
      .refine((source) => {
        try {
          return !new RegExp(source, 'u').test('');
        } catch {
          return true; // reported by the check above
        }
      }, 'must not match the empty string'),
    /** The kind reported, e.g. `employee_id` → placeholders `[EMPLOYEE_ID_1]`. */
    kind: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'must be 1 to 32 of a-z, 0-9 and _, starting with a letter'),
  })
  .strict();

/** The top-level `pii` section. */
export const piiConfig = z
  .object({
    /** off | mask | pseudonymize | block; a model's `pii.policy` and a key's `pii` override it. */
    policy: piiPolicyName.default('off'),
    detectors: piiDetectors.default({}),
    /** Regions tried for phone numbers in national format (ISO 3166 codes); default US, GB, FR, DE, ES. */
    phone_regions: z.array(z.string().refine((code) => /^[A-Z]{2}$/.test(code) && isSupportedCountry(code), 'expected a supported ISO 3166 region code such as US or DE')).min(1).optional(),
    custom: z.array(piiCustomPattern).default([]),
  })
  .strict();
export type PiiConfig = z.infer<typeof piiConfig>;

/** A model's `pii`: its policy and detector switches (over the top-level ones). */
export const modelPiiConfig = z.object({ policy: piiPolicyName.optional(), detectors: piiDetectors.optional() }).strict();
export type ModelPiiConfig = z.infer<typeof modelPiiConfig>;

/** A regular expression of the config (guardrails): compiled at load, so a bad one is a config error naming the key. */
export const guardrailPattern = z.string().min(1).superRefine((source, context) => {
  try {
    new RegExp(source, 'i');
  } catch (error) {
    context.addIssue({ code: 'custom', message: `not a valid regular expression (${error instanceof Error ? error.message : String(error)})` });
  }
});

/** Guardrails (docs/guardrails.md): top level, and per model (a model's fields override the top-level ones). */
export const guardrailsConfig = z
  .object({
    /** Requests whose input matches one of these (case-insensitive) are refused with 400 content_policy_violation. */
    deny_input: z.array(guardrailPattern).optional(),
    /** Output matching one of these is cut: finish_reason content_filter. */
    deny_output: z.array(guardrailPattern).optional(),
    /** Longest input in characters (all message text / prompts); beyond: 400 input_too_large. */
    max_input_chars: positiveInt.optional(),
    /** Check answers to response_format json_schema against the schema (default true). */
    validate_json_output: z.boolean().optional(),
    /** A configured model that screens input and/or output (answers {allowed, category}). */
    guard_model: z.string().min(1).optional(),
    /** Screen the input with guard_model (default true when guard_model is set). */
    guard_input: z.boolean().optional(),
    /** Screen non-streamed output with guard_model (default false). */
    guard_output: z.boolean().optional(),
  })
  .strict();
export type GuardrailsConfig = z.infer<typeof guardrailsConfig>;

/** `POST /v1/moderations` (docs/guardrails.md). */
export const moderationConfig = z
  .object({
    /** A configured model: openai-compatible → its upstream's /v1/moderations; else prompted for the categories. */
    model: z.string().min(1),
  })
  .strict();
export type ModerationConfig = z.infer<typeof moderationConfig>;

/**
 * How fine-tuning jobs on this base model are trained (docs/fine-tuning.md): `local` (the
 * built-in CPU LoRA trainer, llama-cpp models), `upstream` (the upstream's own fine-tuning
 * API, openai-compatible models) or `command` (an external trainer, e.g. a TRL recipe).
 */
export const fineTuningTrainerConfig = z.discriminatedUnion('trainer', [
  z
    .object({
      trainer: z.literal('local'),
      /**
       * Learning rate (AdamW) at learning_rate_multiplier 1; the job's multiplier scales it
       * ('auto' picks 0.05–0.2 as OpenAI does, i.e. 1e-4–4e-4 with this default).
       */
      learning_rate: z.number().positive().default(2e-3),
      /** LoRA rank and alpha (the update is scaled by alpha / rank). */
      rank: positiveInt.default(8),
      alpha: z.number().positive().default(16),
      /** Matrices adapted: attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down (default: all). */
      targets: z.array(z.enum(['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'])).min(1).optional(),
      /** CPU threads of the trainer (default: all cores). */
      threads: positiveInt.optional(),
      /** Longest example in tokens (default: the model's context length). */
      max_sequence_length: positiveInt.optional(),
      /** Between epochs, state is saved this often so that a restart loses little work. */
      checkpoint_seconds: positiveInt.default(60),
    })
    .strict(),
  z
    .object({
      trainer: z.literal('upstream'),
      /** How often the upstream job is looked at. */
      poll_seconds: z.number().positive().default(10),
    })
    .strict(),
  z
    .object({
      trainer: z.literal('command'),
      /**
       * The trainer's command line (no shell). Placeholders: {training_file} {validation_file}
       * {output_dir} {base_model} {base_model_path} {n_epochs} {batch_size} {learning_rate}
       * {learning_rate_multiplier} {seed} {suffix} {job_id}.
       */
      command: z.array(z.string().min(1)).min(1),
      /** Where it runs (default: the job's directory). */
      working_directory: z.string().min(1).optional(),
      environment: z.record(z.string(), z.string()).default({}),
      /** The GGUF LoRA adapter it leaves behind (placeholders as above). */
      adapter: z.string().min(1).default('{output_dir}/adapter.gguf'),
      /** Learning rate at learning_rate_multiplier 1; multiplied by the job's multiplier and passed as {learning_rate}. */
      learning_rate: z.number().positive().default(2e-3),
    })
    .strict(),
]);
export type FineTuningTrainerConfig = z.infer<typeof fineTuningTrainerConfig>;

const modelCommon = {
  /** Fine-tuning jobs may use this model as their base (docs/fine-tuning.md); absent: not fine-tunable. */
  fine_tuning: fineTuningTrainerConfig.optional(),
  /** PII policy and detectors of this model (docs/pii.md); unset: the top-level `pii`. */
  pii: modelPiiConfig.optional(),
  /** Response cache settings of this model (docs/cache.md). */
  cache: modelCacheConfig.optional(),
  /** Guardrails of this model; each field set here overrides the top-level `guardrails` (docs/guardrails.md). */
  guardrails: guardrailsConfig.optional(),
  /** What clients send as `model`. */
  name: z.string().min(1).regex(/^[^\s/][^\s]*$/, 'must not contain spaces or start with "/"'),
  /** Name sent upstream; defaults to `name`. */
  model: z.string().min(1).optional(),
  context_window: positiveInt.default(128000),
  /** Largest completion the model produces when the client sets no limit. */
  max_output_tokens: positiveInt.optional(),
  /** Whether the model accepts `image_url` content parts. */
  vision: z.boolean().default(true),
  /** Tokenizer used to estimate prompt length before a request is sent. */
  tokenizer: z.enum(['cl100k_base', 'o200k_base']).default('cl100k_base'),
  owned_by: z.string().default('chatgate'),
  /** Batch API requests of this model run at once per instance (default: `batches.concurrency_per_model`). */
  batch_concurrency: positiveInt.optional(),
};

export const openAiCompatibleModel = z
  .object({
    ...modelCommon,
    provider: z.literal('openai-compatible'),
    base_url: z.url({ protocol: /^https?$/ }),
    api_key: z.string().optional(),
    /** Extra headers sent upstream with every request (e.g. an organization id). */
    headers: z.record(z.string(), z.string()).default({}),
    /** Whole-request timeout for the upstream call, in milliseconds. */
    timeout_ms: positiveInt.default(600_000),
    /** Longest wait for a TCP (and TLS) connection to the upstream, in milliseconds (default: undici's 10 s). */
    connect_timeout_ms: positiveInt.optional(),
    /** Whether the upstream returns logprobs. */
    logprobs: z.boolean().default(true),
  })
  .strict();

export const mockModel = z
  .object({
    ...modelCommon,
    provider: z.literal('mock'),
    /** Pause between streamed words, in milliseconds (0: as fast as possible). */
    stream_delay_ms: z.number().int().min(0).default(0),
  })
  .strict();

export const llamaCppModel = z
  .object({
    ...modelCommon,
    provider: z.literal('llama-cpp'),
    /** Local models take no images. */
    vision: z.boolean().default(false),
    /** Path of the GGUF model file (relative paths resolve against the working directory). */
    path: z.string().min(1),
    /** Context size in tokens, shared by the parallel sequences; default: the model's training context, capped. */
    context_size: positiveInt.optional(),
    /** How many requests the model serves at once (context sequences). */
    parallel: positiveInt.default(4),
    /** Requests that may wait for a free sequence; beyond, 429 with retry-after. */
    max_queue: z.number().int().min(0).default(64),
    /** Longest wait for a free sequence, in seconds, before 429 (0: no limit). */
    queue_timeout_seconds: z.number().min(0).default(60),
    /** CPU threads for generation; default: os.availableParallelism(). */
    threads: positiveInt.optional(),
    /** Layers offloaded to the GPU: 'auto' or a count (0: CPU only). */
    gpu_layers: z.union([z.literal('auto'), z.number().int().min(0)]).default('auto'),
    /** Load the model at start-up instead of on the first request. */
    preload: z.boolean().default(false),
    /** Unload the model after this many idle seconds (0: never). */
    idle_unload_seconds: z.number().int().min(0).default(300),
    /** Jinja chat template used when the model file has none. */
    chat_template: z.string().min(1).optional(),
    /** GGUF LoRA adapters applied on top of the model (e.g. made by fine-tuning), with their scales. */
    lora: z.array(z.object({ path: z.string().min(1), scale: z.number().default(1) }).strict()).default([]),
  })
  .strict();

// ---------------------------------------------------------------------------------------------
// The router model (docs/routing.md): one model name served by several targets.

/** Per-target timeouts, in milliseconds (unset: no limit beyond the target's own). */
export const routerTimeouts = z
  .object({
    /** TCP/TLS connection to an openai-compatible upstream. */
    connect_ms: positiveInt.optional(),
    /** From sending the request to the first streamed part (streams only). */
    first_token_ms: positiveInt.optional(),
    /** The whole call: a non-streamed answer, or a stream from start to end. */
    total_ms: positiveInt.optional(),
  })
  .strict();
export type RouterTimeouts = z.infer<typeof routerTimeouts>;

const routerTargetFields = {
  /** Label of the target in errors, headers, logs and metrics; default `<provider>:<model or index>`. */
  id: z.string().min(1).regex(/^[^\s]+$/, 'must not contain spaces').optional(),
  /** Share of the traffic under the `weighted` strategy (0: only as a fallback). */
  weight: z.number().min(0).default(1),
  /** Overrides the model's `timeouts` for this target. */
  timeouts: routerTimeouts.optional(),
};

/** A target: an ordinary model entry without `name`, plus `id`, `weight` and `timeouts`. */
export const routerTarget = z.discriminatedUnion('provider', [
  openAiCompatibleModel.omit({ name: true }).extend(routerTargetFields),
  mockModel.omit({ name: true }).extend(routerTargetFields),
  llamaCppModel.omit({ name: true }).extend(routerTargetFields),
]);
export type RouterTargetConfig = z.infer<typeof routerTarget>;

export const routerRetry = z
  .object({
    /** Tries in all, across targets, for one request. */
    max_attempts: positiveInt.default(3),
    /** Backoff before retrying a target already tried: full jitter up to base * 2^(n-1), capped. */
    base_delay_ms: z.number().int().min(0).default(200),
    max_delay_ms: z.number().int().min(0).default(5000),
    /** A longer `retry-after` moves on to the next target instead of waiting. */
    max_retry_after_ms: z.number().int().min(0).default(30_000),
  })
  .strict();

export const routerBreaker = z
  .object({
    /** Consecutive failures that open a target's circuit. */
    failure_threshold: positiveInt.default(5),
    /** Time an open circuit waits before letting one probe request through. */
    cooldown_ms: positiveInt.default(30_000),
  })
  .strict();

/** What a routing rule looks at; every condition given must hold. */
export const routingCondition = z
  .object({
    /** The prompt has at least / at most this many tokens (the model's tokenizer). */
    min_prompt_tokens: z.number().int().min(0).optional(),
    max_prompt_tokens: z.number().int().min(0).optional(),
    /** The request offers tools or functions (true), or none (false). */
    tools: z.boolean().optional(),
    /** The messages contain images (true), or none (false). */
    images: z.boolean().optional(),
    /** The request asks for JSON output (response_format json_object / json_schema). */
    json: z.boolean().optional(),
  })
  .strict()
  .refine((condition) => Object.keys(condition).length > 0, 'a rule needs at least one condition');

export const routingPolicy = z
  .object({
    /** The first rule that matches picks its targets (ids, in order of preference). */
    rules: z.array(z.object({ when: routingCondition, targets: z.array(z.string().min(1)).min(1) }).strict()).default([]),
    /** When no rule matches: ask a small model to label the request, and use that label's targets. */
    classifier: z
      .object({
        /** A configured model name (not this router model). */
        model: z.string().min(1),
        /** Label → target ids, e.g. { simple: [cheap], complex: [strong] }. */
        labels: z.record(z.string().regex(/^[a-z0-9_-]{1,32}$/, 'labels are 1 to 32 of a-z, 0-9, _ and -'), z.array(z.string().min(1)).min(1)),
        /** What the classifier is told about the labels (a default describes simple vs complex). */
        instructions: z.string().min(1).optional(),
        /** Longest wait for the label; on timeout or failure the default applies. */
        timeout_ms: positiveInt.default(3000),
      })
      .strict()
      .optional(),
    /** Targets when nothing else decided (default: all, in the strategy's order). */
    default: z.array(z.string().min(1)).min(1).optional(),
    /** true: only the chosen targets are tried; false (default): the others follow as fallbacks. */
    exclusive: z.boolean().default(false),
  })
  .strict();
export type RoutingPolicy = z.infer<typeof routingPolicy>;

/** The default id of a target: `<provider>:<model>` or `<provider>:<index>`. */
export function defaultTargetId(target: { provider: string; model?: string | undefined }, index: number): string {
  return `${target.provider}:${target.model ?? index}`;
}

export const routerModel = z
  .object({
    ...modelCommon,
    /** A router has no upstream model of its own: each target names its `model`. */
    model: z.never({ error: "a router model has no upstream model: set 'model' on each target" }).optional(),
    provider: z.literal('router'),
    strategy: z.enum(['fallback', 'weighted', 'latency']).default('fallback'),
    targets: z.array(routerTarget).min(1),
    retry: routerRetry.default(routerRetry.parse({})),
    timeouts: routerTimeouts.default({}),
    breaker: routerBreaker.default(routerBreaker.parse({})),
    /** Routing by task: rules (and optionally a classifier model) that pick targets per request. */
    routing: routingPolicy.optional(),
  })
  .strict()
  .superRefine((model, context) => {
    const seen = new Set<string>();
    model.targets.forEach((target, index) => {
      const id = target.id ?? defaultTargetId(target, index);
      if (seen.has(id)) context.addIssue({ code: 'custom', path: ['targets', index, 'id'], message: `duplicate target id '${id}' (give each target an id)` });
      seen.add(id);
    });
    const checkIds = (ids: string[], path: Array<string | number>) =>
      ids.forEach((id, index) => {
        if (!seen.has(id)) context.addIssue({ code: 'custom', path: [...path, index], message: `no target has the id '${id}' (ids: ${[...seen].join(', ')})` });
      });
    model.routing?.rules.forEach((rule, index) => checkIds(rule.targets, ['routing', 'rules', index, 'targets']));
    for (const [label, ids] of Object.entries(model.routing?.classifier?.labels ?? {})) checkIds(ids, ['routing', 'classifier', 'labels', label]);
    if (model.routing?.default) checkIds(model.routing.default, ['routing', 'default']);
    if (model.routing?.classifier?.model === model.name) {
      context.addIssue({ code: 'custom', path: ['routing', 'classifier', 'model'], message: 'the classifier must be another model than the router itself' });
    }
    if (model.strategy === 'weighted' && model.targets.every((target) => target.weight === 0)) {
      context.addIssue({ code: 'custom', path: ['targets'], message: 'the weighted strategy needs a target with a weight above 0' });
    }
    if (model.retry.max_delay_ms < model.retry.base_delay_ms) {
      context.addIssue({ code: 'custom', path: ['retry', 'max_delay_ms'], message: 'must not be below base_delay_ms' });
    }
  });
export type RouterModelConfig = z.infer<typeof routerModel>;

export const modelConfig = z.discriminatedUnion('provider', [openAiCompatibleModel, mockModel, llamaCppModel, routerModel]);

export type ModelConfig = z.infer<typeof modelConfig>;
export type OpenAiCompatibleModelConfig = z.infer<typeof openAiCompatibleModel>;
export type MockModelConfig = z.infer<typeof mockModel>;
export type LlamaCppModelConfig = z.infer<typeof llamaCppModel>;
/** A model entry served by one provider (not a router). */
export type TargetModelConfig = OpenAiCompatibleModelConfig | MockModelConfig | LlamaCppModelConfig;

export const serverConfig = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** Largest accepted request body, in bytes. */
    max_body_bytes: positiveInt.default(20 * 1024 * 1024),
    /** Origins allowed by CORS (`*` for any); empty disables CORS. */
    cors_origins: z.array(z.string()).default(['*']),
    /**
     * Proxies (CIDRs or addresses) whose `X-Forwarded-For` is believed: the client address
     * is the right-most address not in this list. Empty: the socket's address.
     */
    trusted_proxies: z.array(z.string().min(1)).default([]),
    /** A request's headers must arrive within this time (408 and the connection closed otherwise). */
    headers_timeout_ms: positiveInt.default(60_000),
    /** A request body that sends no byte for this long is abandoned (an idle timeout, not a total: slow steady uploads go on). */
    body_idle_timeout_ms: positiveInt.default(60_000),
    /** Open connections at most; one more gets a 503 `server_busy` and is closed (docs/configuration.md). */
    max_connections: positiveInt.default(10_000),
  })
  .strict();

/** Price of a model in USD per million tokens. */
export const modelPrice = z
  .object({
    input: z.number().min(0),
    output: z.number().min(0),
    /** Prompt tokens served from a cache; default: the input price. */
    cached_input: z.number().min(0).optional(),
  })
  .strict();
export type ModelPrice = z.infer<typeof modelPrice>;

export const auditConfig = z
  .object({
    /** Record every request in the audit log (false: nothing is recorded; usage and budgets then see nothing either). */
    enabled: z.boolean().default(true),
    /** Also record request and response bodies (personal data: erasable, see docs). */
    bodies: z.boolean().default(false),
    /** Delete records older than this many days (0: keep forever). */
    retention_days: z.number().int().min(0).default(0),
    /** Append each record to a journal in the data dir before the answer goes out (a process crash loses none). */
    journal: z.boolean().default(true),
    /** Also fsync the journal after each record (a machine crash loses none; slower). */
    journal_fsync: z.boolean().default(false),
  })
  .strict();

/** The response cache (docs/cache.md). */
export const cacheConfig = z
  .object({
    /** Cache answers of every model (a model's `cache.enabled` overrides). */
    enabled: z.boolean().default(false),
    /** memory: per instance; sqlite: `cache.db` in the data dir; redis: `redis_url`, shared by instances. */
    backend: z.enum(['memory', 'sqlite', 'redis']).default('memory'),
    ttl_seconds: positiveInt.default(3600),
    /** Entries kept by the memory backend (least recently used ones are dropped). */
    max_entries: positiveInt.default(10_000),
    /** Only cache requests with temperature 0 or a seed. */
    deterministic_only: z.boolean().default(true),
    /** Larger answers are not cached. */
    max_entry_bytes: positiveInt.default(1024 * 1024),
  })
  .strict();
export type CacheConfig = z.infer<typeof cacheConfig>;

/** Record upstream exchanges to a cassette, or replay them offline (docs/record-replay.md). */
export const recordReplayConfig = z
  .object({
    /** off | record (new cassette) | replay (offline; a miss is a 502) | replay_or_record (replay, else record). */
    mode: z.enum(['off', 'record', 'replay', 'replay_or_record']).default('off'),
    /** The JSONL cassette; relative paths resolve against the working directory. */
    file: z.string().min(1).default('chatgate-cassette.jsonl'),
    /** What identifies a request: its canonical JSON body, and (default) its upstream path. */
    match: z.enum(['body', 'body_and_path']).default('body_and_path'),
    /** Replay with the recorded delays instead of as fast as possible. */
    replay_timing: z.boolean().default(false),
  })
  .strict();
export type RecordReplayConfig = z.infer<typeof recordReplayConfig>;

/** The Files API (docs/files.md). */
export const filesConfig = z
  .object({
    /** Largest file accepted by `POST /v1/files` (413 beyond); default 512 MB. */
    max_bytes: positiveInt.default(512 * 1024 * 1024),
    /** Where file bytes are kept; relative paths resolve against the working directory. Default `<data_dir>/files`. */
    directory: z.string().min(1).optional(),
  })
  .strict();
export type FilesConfig = z.infer<typeof filesConfig>;

/** The Batch API and its background worker (docs/batches.md). */
export const batchesConfig = z
  .object({
    /** Run batches in this process. Off: this instance only serves the API; others (sharing the database) do the work. */
    worker: z.boolean().default(true),
    /** Batches worked on at once by this instance. */
    concurrent_batches: positiveInt.default(2),
    /** Requests of one model run at once per instance, for models without their own `batch_concurrency`. */
    concurrency_per_model: positiveInt.default(8),
    /** Requests run at once by this instance over all batches and models. */
    max_concurrency: positiveInt.default(64),
    /** Attempts of a request that failed for a passing reason (429, 5xx, timeout) before its error is recorded. */
    max_attempts: positiveInt.default(5),
    /** Input lines accepted per batch (OpenAI: 50,000). */
    max_requests: positiveInt.default(50_000),
    /** First wait before retrying a request that failed for a passing reason (doubles each time, at most 30 s; a `retry-after` wins). */
    retry_initial_delay_ms: positiveInt.default(1_000),
    /** A worker's hold on a batch and its requests, renewed while it runs: after a crash, others take over once it lapses. */
    lease_seconds: positiveInt.default(30),
  })
  .strict();
export type BatchesConfig = z.infer<typeof batchesConfig>;

/** Fine-tuning jobs (docs/fine-tuning.md). */
export const fineTuningConfig = z
  .object({
    /** Where jobs keep their files, checkpoints and adapters. Default `<data_dir>/fine-tuning`. */
    directory: z.string().min(1).optional(),
    /** Jobs trained at once by this instance (0: none; this instance only serves the API). */
    concurrent_jobs: z.number().int().min(0).default(1),
    /** A worker's hold on a job, renewed while it trains: after a crash, others take over once it lapses. */
    lease_seconds: positiveInt.default(30),
  })
  .strict();
export type FineTuningConfig = z.infer<typeof fineTuningConfig>;

export const configSchema = z
  .object({
    server: serverConfig.default(serverConfig.parse({})),
    /** Where Chatgate keeps its database and generated master key. */
    data_dir: z.string().min(1).optional(),
    /** `postgres://…`: store keys, audit log and jobs in PostgreSQL instead of the SQLite file in data_dir. */
    database_url: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL').optional(),
    /** `redis://…`: share rate-limit and budget counters between instances; else they live in memory. */
    redis_url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
    /** USD per million tokens by model name (overrides and adds to the built-in prices). */
    prices: z.record(z.string(), modelPrice).default({}),
    audit: auditConfig.default(auditConfig.parse({})),
    cache: cacheConfig.default(cacheConfig.parse({})),
    /** The Files API: size limit and where the bytes go (docs/files.md). */
    files: filesConfig.default(filesConfig.parse({})),
    /** The Batch API's worker (docs/batches.md). */
    batches: batchesConfig.default(batchesConfig.parse({})),
    /** Fine-tuning jobs (docs/fine-tuning.md). */
    fine_tuning: fineTuningConfig.default(fineTuningConfig.parse({})),
    /** PII detection and the request policy (docs/pii.md). */
    pii: piiConfig.default(piiConfig.parse({})),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    record_replay: recordReplayConfig.default(recordReplayConfig.parse({})),
    /** Guardrails of every model (docs/guardrails.md). */
    guardrails: guardrailsConfig.optional(),
    /** Who answers `POST /v1/moderations` (docs/guardrails.md). */
    moderation: moderationConfig.optional(),
    models: z.array(modelConfig).min(1),
  })
  .strict()
  .superRefine((config, context) => {
    const seen = new Set<string>();
    config.models.forEach((model, index) => {
      if (seen.has(model.name)) {
        context.addIssue({ code: 'custom', path: ['models', index, 'name'], message: `duplicate model name '${model.name}'` });
      }
      seen.add(model.name);
    });
    config.models.forEach((model, index) => {
      const classifier = model.provider === 'router' ? model.routing?.classifier : undefined;
      if (classifier && !config.models.some((other) => other.name === classifier.model)) {
        context.addIssue({ code: 'custom', path: ['models', index, 'routing', 'classifier', 'model'], message: `no model is named '${classifier.model}'` });
      }
    });
    // Guardrails and moderation name models that must exist.
    const checkModelName = (name: string | undefined, path: Array<string | number>) => {
      if (name !== undefined && !seen.has(name)) context.addIssue({ code: 'custom', path, message: `no model is named '${name}'` });
    };
    checkModelName(config.guardrails?.guard_model, ['guardrails', 'guard_model']);
    config.models.forEach((model, index) => checkModelName(model.guardrails?.guard_model, ['models', index, 'guardrails', 'guard_model']));
    checkModelName(config.moderation?.model, ['moderation', 'model']);
  });

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
