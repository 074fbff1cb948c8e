/**
 * Starts Chatgate: loads the config, opens the store, builds providers and the app,
 * listens, and shuts down gracefully (in-flight requests finish, logs are flushed).
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Logger } from 'pino';
import { createLogger } from './logging/create-logger.js';
import { createApp } from './app.js';
import { createGatewayAuthenticator } from './keys/authenticator.js';
import { IpMatcher } from './keys/ip-access.js';
import { KeyCache } from './keys/key-cache.js';
import { KeyService } from './keys/key-service.js';
import { TokenSigner } from './keys/tokens.js';
import { resolveMasterKey, type MasterKey } from './auth/master-key.js';
import { resolveDataDirectory } from './config/data-directory.js';
import { ConfigError, loadConfig } from './config/load-config.js';
import type { Config, ModelConfig, TargetModelConfig } from './config/schema.js';
import { ModelRegistry, type ResolvedModel } from './gateway/model-registry.js';
import { createMockProvider } from './providers/mock/mock-provider.js';
import { createLlamaCppProvider } from './providers/llama-cpp/llama-cpp-provider.js';
import { createOpenAiCompatibleProvider } from './providers/openai-compatible/openai-compatible-provider.js';
import type { Provider } from './providers/spec.js';
import { createMetrics, type GatewayMetrics } from './metrics/metrics.js';
import { createRouterProvider, RouterProvider } from './router/router-provider.js';
import { createClassifier } from './router/classifier.js';
import { routerTargetConfigs } from './router/target-configs.js';
import { AuditWriter, replaySpills } from './audit/audit-writer.js';
import { AuditJournal, replayJournals } from './audit/audit-journal.js';
import { startRetention } from './audit/retention.js';
import { createMetering } from './limits/create-metering.js';
import { openStore } from './storage/open-store.js';
import { makePrivate, restrictNewFiles, type PrivateFileFailure } from './storage/private-files.js';
import type { Store } from './storage/spec.js';
import { TokenCounters, type TokenCounter } from './tokens/token-counter.js';
import { unixSeconds } from './api/ids.js';
import { redactUrl } from './util/redact-url.js';
import { resolveRecordReplay } from './config/record-replay.js';
import { CassetteError } from './providers/openai-compatible/cassette.js';
import { RecordReplayStore } from './providers/openai-compatible/record-replay-client.js';
import { CacheConfigError, createResponseCache, type ResponseCache } from './cache/response-cache.js';
import { LocalDiskBlobStore } from './files/blob-store.js';
import { startTemporarySweep } from './files/temporary-sweep.js';
import { startBackgroundWork, type BackgroundWork } from './background-work.js';
import { FineTunedModels } from './fine-tuning/fine-tuned-models.js';
import { createFineTuningTrainers } from './fine-tuning/trainers.js';
import { guardConnections, httpServerOptions } from './http/server-limits.js';

export interface ServeOptions {
  configPath?: string | undefined;
  port?: number | undefined;
  host?: string | undefined;
  dataDirectory?: string | undefined;
  environment?: NodeJS.ProcessEnv;
  workingDirectory?: string;
  /** Where the start-up banner goes (stdout by default). */
  print?: (line: string) => void;
}

export interface RunningServer {
  url: string;
  port: number;
  config: Config;
  masterKey: MasterKey;
  logger: Logger;
  close(): Promise<void>;
}

/** Router models' metrics and breaker logs (docs/routing.md). */
interface RouterDependencies {
  metrics: GatewayMetrics;
  logger: Logger;
  /** Loaded token counters by tokenizer (routing rules on prompt length). */
  counters: Map<string, TokenCounter>;
  /** The models, once registered (the routing classifier calls one). */
  resolveModel: (name: string) => ResolvedModel | undefined;
}

function createProviders(
  config: Config,
  tokenCounters: TokenCounters,
  recordReplay?: RecordReplayStore,
  routing?: RouterDependencies,
): (model: ModelConfig | TargetModelConfig) => Provider {
  let mock: Provider | undefined;
  let openAiCompatible: Provider | undefined;
  let llamaCpp: Provider | undefined;
  // llama-cpp targets of router models are preloaded (and sized) like llama-cpp models.
  const llamaModels = config.models.flatMap((model) => (model.provider === 'router' ? routerTargetConfigs(model).map((target) => target.config) : [model]));
  const providerFor = (model: ModelConfig | TargetModelConfig): Provider => {
    switch (model.provider) {
      case 'mock':
        return (mock ??= createMockProvider({ tokenCounters }));
      case 'openai-compatible':
        return (openAiCompatible ??= createOpenAiCompatibleProvider({ recordReplay }));
      case 'llama-cpp':
        return (llamaCpp ??= createLlamaCppProvider({ models: llamaModels }));
      case 'router': {
        const counter = routing?.counters.get(model.tokenizer);
        const classifier = model.routing?.classifier;
        return createRouterProvider({
          model,
          providerFor: (target) => providerFor(target.config),
          metrics: routing?.metrics.router,
          logger: routing?.logger,
          ...(counter ? { countChat: (request, limit) => counter.countChatAsync(request.messages, request.tools, { limit }), countText: (text, limit) => counter.countAsync(text, { limit }) } : {}),
          ...(classifier && routing ? { classify: createClassifier(classifier.model, routing.resolveModel) } : {}),
        });
      }
    }
  };
  return providerFor;
}

function describeRouting(config: Config, path: string | null, environment: NodeJS.ProcessEnv): string[] {
  const lines = [`Configuration: ${path ?? 'built-in defaults (no chatgate.yaml here and no --config)'}`];
  if (path === null) {
    lines.push(
      environment.OPENAI_API_KEY
        ? 'OPENAI_API_KEY is set: the built-in models are routed to OpenAI.'
        : 'OPENAI_API_KEY is not set: the built-in models are served by the offline mock provider (see docs/providers/mock.md).',
    );
  }
  for (const model of config.models) {
    const target =
      model.provider === 'openai-compatible'
        ? `${model.provider} ${redactUrl(model.base_url)} (${model.model ?? model.name})`
        : model.provider === 'llama-cpp'
          ? `${model.provider} ${model.path}`
          : model.provider === 'router'
            ? `router (${model.strategy}): ${routerTargetConfigs(model).map((target) => target.id).join(', ')}`
            : model.provider;
    lines.push(`  ${model.name} -> ${target}`);
  }
  return lines;
}

/** The cassette of `record_replay` (or CHATGATE_RECORD_REPLAY), opened at start so that a bad one stops the start. */
function openRecordReplay(config: Config, environment: NodeJS.ProcessEnv, workingDirectory: string, logger: Logger): RecordReplayStore | undefined {
  const settings = resolveRecordReplay(config.record_replay, environment, workingDirectory);
  if (settings === undefined) return undefined;
  try {
    return RecordReplayStore.open(settings, (message, error) => logger.error({ err: error }, message));
  } catch (error) {
    if (error instanceof CassetteError) throw new ConfigError(error.message);
    throw error;
  }
}

function describeRecordReplay(store: RecordReplayStore): string {
  const { mode, file } = store.settings;
  if (mode === 'record') return `Record/replay: recording every upstream exchange to ${file} (a new cassette)`;
  if (mode === 'replay') return `Record/replay: replaying ${store.index.size} exchanges from ${file}; upstreams are never contacted`;
  return `Record/replay: replaying ${store.index.size} exchanges from ${file}, recording the others into it`;
}

/**
 * Replays audit journals left by a crash (before budgets are rebuilt from the log), then
 * opens this process's journal unless the config turns it off (docs/governance.md).
 */
async function openAuditJournal(config: Config, store: Store, dataDirectory: string, logger: Logger): Promise<AuditJournal | undefined> {
  const onError = (message: string, error?: unknown) => logger.error({ err: error }, message);
  const replay = await replayJournals({ directory: dataDirectory, store: store.auditLog, onError });
  if (replay.replayed > 0 || replay.torn > 0) logger.info(replay, 'Wrote audit records kept in the journal of a process that stopped without writing them');
  if (!config.audit.enabled || !config.audit.journal) return undefined;
  return new AuditJournal({ directory: dataDirectory, fsync: config.audit.journal_fsync, onError });
}

export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const environment = options.environment ?? process.env;
  const workingDirectory = options.workingDirectory ?? process.cwd();
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const { config, path } = loadConfig({ path: options.configPath, workingDirectory, environment });
  const host = options.host ?? config.server.host;
  const port = options.port ?? config.server.port;
  const dataDirectory = resolveDataDirectory({ option: options.dataDirectory, configured: config.data_dir, environment, workingDirectory });
  mkdirSync(dataDirectory, { recursive: true, mode: 0o700 });
  restrictNewFiles();

  try {
    new IpMatcher(config.server.trusted_proxies);
  } catch (error) {
    throw new ConfigError(`server.trusted_proxies: ${(error as Error).message}`);
  }

  const appLogger = createLogger(config.log_level);
  const logger = appLogger.logger;
  const warnNotPrivate = (failures: PrivateFileFailure[]) => {
    for (const { path, error } of failures) logger.warn({ err: error, path }, 'Could not make a data file private to this user');
  };
  // Before the store opens: SQLite gives a new -wal/-shm the mode of the database file.
  warnNotPrivate(makePrivate([dataDirectory]));
  const recordReplay = openRecordReplay(config, environment, workingDirectory, logger);
  const masterKey = resolveMasterKey(dataDirectory, environment);

  const store: Store = await openStore({
    databaseUrl: config.database_url,
    sqlitePath: join(dataDirectory, 'chatgate.db'),
    onError: (error) => logger.warn({ err: error }, 'A database connection failed'),
  });
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  // Spills first: the journal's replay skips records already stored, the spills' does not.
  const replayed = await replaySpills(store.auditLog, dataDirectory);
  if (replayed > 0) logger.info({ records: replayed }, 'Wrote audit records kept from the last shutdown');
  const journal = await openAuditJournal(config, store, dataDirectory, logger);
  const recorder = new AuditWriter({
    store: store.auditLog,
    spillDirectory: dataDirectory,
    onError: (message, error) => logger.error({ err: error }, message),
    ...(journal ? { journal } : {}),
  });
  const metering = createMetering(config, store, logger);
  const retention = startRetention(store.auditLog, config.audit.retention_days, logger);

  const keyCache = new KeyCache(store.keys);
  const tokenSigner = new TokenSigner(store.metadata, masterKey.key);
  const keyService = new KeyService(store.keys, { onChange: () => keyCache.invalidate() });

  const tokenCounters = new TokenCounters();
  // Every configured model's tokenizer is loaded before listening: loading one compiles a ~45 MB
  // module synchronously (0.3-0.4 s of blocked event loop), which must not happen inside a request.
  const tokenizers = [...new Set(config.models.map((model) => model.tokenizer))];
  const counters = new Map(await Promise.all(tokenizers.map(async (name) => [name, await tokenCounters.get(name)] as const)));
  const metrics = createMetrics();
  let registry: ModelRegistry | undefined;
  const providerFor = createProviders(config, tokenCounters, recordReplay, { metrics, logger, counters, resolveModel: (name) => registry?.find(name) });
  const created = unixSeconds();
  const models = (registry = new ModelRegistry(config.models.map((model) => ({ config: model, provider: providerFor(model), created }))));
  let responseCache: ResponseCache | null;
  try {
    responseCache = createResponseCache({ config, dataDirectory, models, logger });
  } catch (error) {
    if (error instanceof CacheConfigError) throw new ConfigError(error.message);
    throw error;
  }

  const fineTunedModels = new FineTunedModels({ resources: store.resources, models, providerFor, logger });
  await fineTunedModels.start();
  const fineTuningDirectory = config.fine_tuning.directory === undefined ? join(dataDirectory, 'fine-tuning') : resolve(workingDirectory, config.fine_tuning.directory);
  const blobs = new LocalDiskBlobStore(config.files.directory === undefined ? join(dataDirectory, 'files') : resolve(workingDirectory, config.files.directory));
  warnNotPrivate(makePrivate([fineTuningDirectory, blobs.directory], { done: [dataDirectory] }));
  const temporarySweep = startTemporarySweep({ blobs, logger });
  let wakeWorker = (): void => undefined;
  const app = createApp({
    models,
    tokenCounters,
    recorder,
    logger,
    authenticator: createGatewayAuthenticator({ masterKey: masterKey.key, keys: keyCache, tokens: tokenSigner }),
    maxBodyBytes: config.server.max_body_bytes,
    corsOrigins: config.server.cors_origins,
    trustedProxies: config.server.trusted_proxies,
    keys: { service: keyService, tokens: tokenSigner },
    metering,
    auditBodies: config.audit.bodies,
    ...(config.guardrails ? { guardrails: config.guardrails } : {}),
    ...(config.moderation ? { moderation: config.moderation } : {}),
    pii: config.pii,
    responseCache,
    auditLog: store.auditLog,
    auditBacklogged: () => recorder.backlogged,
    metricsRegistry: metrics.registry,
    files: { files: store.files, blobs, maxBytes: config.files.max_bytes },
    batches: { resources: store.resources, queue: store.jobs, files: store.files, maxBodyBytes: config.server.max_body_bytes, onChange: () => wakeWorker() },
    fineTuning: { resources: store.resources, queue: store.jobs, files: store.files, models, fineTunedModels, maxBodyBytes: config.server.max_body_bytes, onChange: () => wakeWorker() },
    ...(config.audit.enabled ? {} : { recorder: { record: () => {} } }),
  });

  let background: BackgroundWork | undefined;
  /** Everything opened here (store, workers, timers, connections, …): what keeps a process alive besides the listener. */
  const release = async (): Promise<void> => {
    retention.stop();
    temporarySweep.stop();
    fineTunedModels.stop();
    await background?.stop();
    await recorder.close();
    await metering.limiter.close();
    await responseCache?.close();
    await store.close();
    // Router models' targets share the providers of their kind (which may serve no model directly).
    const providers = new Set(models.list().flatMap((model) => (model.provider instanceof RouterProvider ? model.provider.targets.map((target) => target.provider) : [model.provider])));
    await Promise.all([...providers].map((provider) => provider.close?.()));
    await recordReplay?.close();
    appLogger.close();
  };

  let server: ServerType;
  try {
    server = await new Promise((resolveListening, rejectListening) => {
      const instance = serve({ fetch: app.fetch, port, hostname: host, serverOptions: httpServerOptions(config.server) }, () => resolveListening(instance));
      guardConnections(instance as import('node:http').Server, config.server, logger);
      instance.once('error', rejectListening);
    });
  } catch (error) {
    // The port is taken (or not ours): let go of everything so that the process can end.
    await release().catch(() => undefined);
    throw error;
  }
  // Only a server that listens takes jobs from the queue (a failed start leaves them to the others).
  background = startBackgroundWork({
    config,
    store,
    blobs,
    models,
    logger,
    fetch: (request, env) => app.fetch(request, env),
    fineTuning: {
      resources: store.resources,
      files: store.files,
      blobs,
      models,
      tokenCounters,
      trainers: createFineTuningTrainers(),
      directory: fineTuningDirectory,
      logger,
      onSucceeded: (record) => void fineTunedModels.register(record).catch((error: unknown) => logger.warn({ err: error, job: record.id }, 'Could not serve a fine-tuned model yet; the next sync retries')),
    },
  });
  wakeWorker = background.wake;

  const httpServer = server as import('node:http').Server;
  const address = server.address() as AddressInfo;
  const displayHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${displayHost}:${address.port}/v1`;

  for (const line of describeRouting(config, path, environment)) print(line);
  if (recordReplay !== undefined) print(describeRecordReplay(recordReplay));
  if (masterKey.origin === 'generated') {
    print(`Generated a master key (shown once; stored in ${masterKey.path} with mode 0600):`);
    print(`  ${masterKey.key}`);
  } else if (masterKey.origin === 'file') {
    print(`Master key: read from ${masterKey.path}`);
  } else {
    print('Master key: from CHATGATE_MASTER_KEY');
  }
  print(`Chatgate listening on ${url}`);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await new Promise<void>((resolveClosed) => {
        httpServer.close(() => resolveClosed());
        httpServer.closeIdleConnections();
        const force = setTimeout(() => httpServer.closeAllConnections(), 10_000);
        force.unref();
      });
      await release();
    })());

  return { url, port: address.port, config, masterKey, logger, close };
}
