/**
 * The configuration file's shape. Keys are snake_case as in the YAML file; the loader
 * validates the whole file with this schema and names the bad key on failure.
 */
import { z } from 'zod';

const positiveInt = z.number().int().positive();

const modelCommon = {
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
  })
  .strict();

export const modelConfig = z.discriminatedUnion('provider', [openAiCompatibleModel, mockModel, llamaCppModel]);

export type ModelConfig = z.infer<typeof modelConfig>;
export type OpenAiCompatibleModelConfig = z.infer<typeof openAiCompatibleModel>;
export type MockModelConfig = z.infer<typeof mockModel>;
export type LlamaCppModelConfig = z.infer<typeof llamaCppModel>;

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
  })
  .strict();

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
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
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
  });

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
