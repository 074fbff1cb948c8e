/**
 * createApp(dependencies): the HTTP application. No side effects at import; everything it
 * uses is passed in, so tests build an app and call `app.request()` without a network.
 *
 * Pipeline: request context (id, OpenAI headers) → access log → CORS → audit recording
 * (every request, refused ones too; settles rate-limit reservations) → admission (503
 * while the audit log is behind) → authentication (keys, tokens, client address) →
 * authorization (endpoint, IP, origin) → route (read the body within the size limit,
 * validate, check the model is allowed, resolve it, reserve rate limits and budget, call
 * the provider, render).
 */
import { Hono } from 'hono';
import type { AppEnv } from './app-env.js';
import type { ApiDependencies } from './api/api-dependencies.js';
import { chatCompletionsHandler } from './api/chat-completions.js';
import { completionsHandler } from './api/completions.js';
import { embeddingsHandler } from './api/embeddings.js';
import { moderationsHandler } from './api/moderations.js';
import { modelsRoutes } from './api/models.js';
import { filesRoutes, type FilesDependencies } from './api/files.js';
import { batchesRoutes, type BatchesDependencies } from './api/batches.js';
import { deleteModelHandler, fineTuningRoutes, type FineTuningApiDependencies } from './api/fine-tuning.js';
import type { KeyAuthenticator } from './auth/key-authenticator.js';
import { methodNotAllowed, unknownRoute } from './errors/gateway-error.js';
import { createErrorHandler, errorResponse } from './errors/render-error.js';
import { createAdminKeyRoutes } from './admin/keys-routes.js';
import { mintTokenHandler } from './admin/token-routes.js';
import { createAdminAuditRoutes } from './admin/audit-routes.js';
import { refuseWhile } from './middleware/admission.js';
import type { AuditLogStore } from './storage/spec.js';
import type { KeyService } from './keys/key-service.js';
import type { TokenSigner } from './keys/tokens.js';
import { accessLog } from './middleware/access-log.js';
import { authenticate } from './middleware/authenticate.js';
import { authorizeRequest } from './middleware/authorize.js';
import { cors } from './middleware/cors.js';
import { recordRequests } from './middleware/record-requests.js';
import { refuseNulInUrl } from './middleware/refuse-nul-url.js';
import { requestContext } from './middleware/request-context.js';
import type { Registry } from 'prom-client';
import { metricsRoutes } from './metrics/metrics-route.js';

export interface AppDependencies extends ApiDependencies {
  authenticator: KeyAuthenticator;
  corsOrigins: string[];
  /** `server.trusted_proxies`: whose X-Forwarded-For gives the client address. */
  trustedProxies?: string[];
  /** API key management (admin API, `POST /v1/tokens`); absent: the master key only. */
  keys?: { service: KeyService; tokens: TokenSigner };
  /** The audit log, for the admin API's usage, logs, erasure and verification. */
  auditLog?: AuditLogStore;
  /** True while audit records cannot be written fast enough: new requests get 503. */
  auditBacklogged?: () => boolean;
  /** Prometheus metrics served by `GET /metrics` (master key and admin keys only); absent: no route. */
  metricsRegistry?: Registry;
  /** The Files API (`/v1/files`); absent: no such routes. */
  files?: FilesDependencies;
  /** The Batch API (`/v1/batches`); absent: no such routes. */
  batches?: BatchesDependencies;
  /** The fine-tuning API (`/v1/fine_tuning/jobs`, `DELETE /v1/models/{model}`); absent: no such routes. */
  fineTuning?: FineTuningApiDependencies;
}

const KNOWN_PATHS = new Map<string, string[]>([
  ['/v1/chat/completions', ['POST']],
  ['/v1/completions', ['POST']],
  ['/v1/embeddings', ['POST']],
  ['/v1/moderations', ['POST']],
  ['/v1/models', ['GET']],
  ['/v1/files', ['GET', 'POST']],
  ['/v1/batches', ['GET', 'POST']],
  ['/v1/fine_tuning/jobs', ['GET', 'POST']],
  ['/v1/tokens', ['POST']],
  ['/admin/keys', ['GET', 'POST']],
  ['/admin/usage', ['GET']],
  ['/admin/logs', ['GET']],
  ['/admin/audit/verify', ['GET']],
  ['/metrics', ['GET']],
]);

/** Methods of the routes with an id in their path (for 405 rather than 404). */
function allowedMethodsOf(path: string, dependencies: AppDependencies): string[] | undefined {
  if (path.startsWith('/v1/models/')) return dependencies.fineTuning ? ['GET', 'DELETE'] : ['GET'];
  if (dependencies.files && /^\/v1\/files\/[^/]+$/.test(path)) return ['GET', 'DELETE'];
  if (dependencies.files && /^\/v1\/files\/[^/]+\/content$/.test(path)) return ['GET'];
  if (dependencies.batches && /^\/v1\/batches\/[^/]+$/.test(path)) return ['GET'];
  if (dependencies.batches && /^\/v1\/batches\/[^/]+\/cancel$/.test(path)) return ['POST'];
  if (dependencies.fineTuning && /^\/v1\/fine_tuning\/jobs\/[^/]+$/.test(path)) return ['GET'];
  if (dependencies.fineTuning && /^\/v1\/fine_tuning\/jobs\/[^/]+\/(cancel|pause|resume)$/.test(path)) return ['POST'];
  if (dependencies.fineTuning && /^\/v1\/fine_tuning\/jobs\/[^/]+\/(events|checkpoints)$/.test(path)) return ['GET'];
  return undefined;
}

export function createApp(dependencies: AppDependencies): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(createErrorHandler(dependencies.logger, dependencies.maxBodyBytes));
  app.notFound((context) => {
    const path = context.req.path;
    const allowed = KNOWN_PATHS.get(path) ?? allowedMethodsOf(path, dependencies);
    const error = allowed ? methodNotAllowed(context.req.method, context.req.path) : unknownRoute(context.req.method, context.req.path);
    return errorResponse(error, context);
  });

  app.use('*', requestContext());
  app.use('*', accessLog(dependencies.logger));
  if (dependencies.corsOrigins.length > 0) {
    app.use('*', cors(dependencies.corsOrigins));
  }

  app.get('/health', (context) => context.json({ status: 'ok' }));

  const authentication = authenticate(dependencies.authenticator, { trustedProxies: dependencies.trustedProxies ?? [] });
  const v1 = new Hono<AppEnv>();
  // Every request is audited, refused ones included (a failed authentication is worth recording).
  v1.use('*', recordRequests(dependencies));
  v1.use('*', refuseNulInUrl());
  if (dependencies.auditBacklogged) v1.use('*', refuseWhile(dependencies.auditBacklogged));
  v1.use('*', authentication);
  v1.use('*', authorizeRequest());
  v1.route('/models', modelsRoutes(dependencies.models));
  v1.post('/chat/completions', chatCompletionsHandler(dependencies));
  v1.post('/completions', completionsHandler(dependencies));
  v1.post('/embeddings', embeddingsHandler(dependencies));
  v1.post('/moderations', moderationsHandler(dependencies));
  if (dependencies.files) v1.route('/files', filesRoutes(dependencies.files));
  if (dependencies.batches) v1.route('/batches', batchesRoutes(dependencies.batches));
  if (dependencies.fineTuning) {
    v1.route('/fine_tuning', fineTuningRoutes(dependencies.fineTuning));
    v1.delete('/models/:id{.+}', deleteModelHandler(dependencies.fineTuning));
  }
  if (dependencies.keys) v1.post('/tokens', mintTokenHandler({ tokens: dependencies.keys.tokens, maxBodyBytes: dependencies.maxBodyBytes }));
  app.route('/v1', v1);

  if (dependencies.keys) {
    const admin = new Hono<AppEnv>();
    admin.use('*', recordRequests(dependencies));
    admin.use('*', refuseNulInUrl());
    admin.use('*', authentication);
    admin.use('*', authorizeRequest());
    admin.route('/', createAdminKeyRoutes({ keys: dependencies.keys.service, tokens: dependencies.keys.tokens, maxBodyBytes: dependencies.maxBodyBytes }));
    if (dependencies.auditLog) admin.route('/', createAdminAuditRoutes(dependencies.auditLog));
    app.route('/admin', admin);
  }
  if (dependencies.metricsRegistry) app.route('/metrics', metricsRoutes(dependencies.metricsRegistry, authentication));
  return app;
}
