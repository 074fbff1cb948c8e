/** Ends every non-streamed request: settles its rate-limit reservation and audits it (streams do this themselves). */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';
import { finishRequest, type RecordingDependencies } from '../api/request-recording.js';

export function recordRequests(dependencies: RecordingDependencies): MiddlewareHandler<AppEnv> {
  return async (context, next) => {
    await next();
    if (context.get('writtenDirectly')) return;
    const response = context.res;
    if (response.headers.get('content-type')?.startsWith('text/event-stream')) return;
    const errorCode = response.status >= 400 ? (context.get('errorCode') ?? String(response.status)) : null;
    const responseBody = dependencies.auditBodies && response.body ? await response.clone().text() : null;
    await finishRequest(context, dependencies, { status: response.status, usage: context.get('usage'), stream: false, errorCode, responseBody });
  };
}
