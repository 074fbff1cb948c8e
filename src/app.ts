/**
 * createApp(dependencies): the HTTP application. No side effects at import; everything it
 * uses is passed in, so tests build an app and call `app.request()` without a network.
 *
 * Pipeline: request context (id, OpenAI headers) → access log → CORS → auth → request
 * recording → route (read the body within the size limit, validate, resolve the model,
 * call the provider, render).
 */
import { Hono } from 'hono';
import type { AppEnv } from './app-env.js';
import type { ApiDependencies } from './api/api-dependencies.js';
import { chatCompletionsHandler } from './api/chat-completions.js';
import { completionsHandler } from './api/completions.js';
import { embeddingsHandler } from './api/embeddings.js';
import { modelsRoutes } from './api/models.js';
import type { KeyAuthenticator } from './auth/key-authenticator.js';
import { methodNotAllowed, unknownRoute } from './errors/gateway-error.js';
import { createErrorHandler, errorResponse } from './errors/render-error.js';
import { accessLog } from './middleware/access-log.js';
import { authenticate } from './middleware/authenticate.js';
import { cors } from './middleware/cors.js';
import { recordRequests } from './middleware/record-requests.js';
import { requestContext } from './middleware/request-context.js';

export interface AppDependencies extends ApiDependencies {
  authenticator: KeyAuthenticator;
  corsOrigins: string[];
}

const KNOWN_PATHS = new Map<string, string[]>([
  ['/v1/chat/completions', ['POST']],
  ['/v1/completions', ['POST']],
  ['/v1/embeddings', ['POST']],
  ['/v1/models', ['GET']],
]);

export function createApp(dependencies: AppDependencies): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(createErrorHandler(dependencies.logger, dependencies.maxBodyBytes));
  app.notFound((context) => {
    const allowed = KNOWN_PATHS.get(context.req.path) ?? (context.req.path.startsWith('/v1/models/') ? ['GET'] : undefined);
    const error = allowed ? methodNotAllowed(context.req.method, context.req.path) : unknownRoute(context.req.method, context.req.path);
    return errorResponse(error, context);
  });

  app.use('*', requestContext());
  app.use('*', accessLog(dependencies.logger));
  if (dependencies.corsOrigins.length > 0) {
    app.use('*', cors(dependencies.corsOrigins));
  }

  app.get('/health', (context) => context.json({ status: 'ok' }));

  const v1 = new Hono<AppEnv>();
  v1.use('*', authenticate(dependencies.authenticator));
  v1.use('*', recordRequests(dependencies.recorder));
  v1.route('/models', modelsRoutes(dependencies.models));
  v1.post('/chat/completions', chatCompletionsHandler(dependencies));
  v1.post('/completions', completionsHandler(dependencies));
  v1.post('/embeddings', embeddingsHandler(dependencies));
  app.route('/v1', v1);
  return app;
}
