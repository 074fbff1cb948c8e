/** Hands every finished non-streamed request to the request log (streams record themselves). */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { RequestRecorder } from '../api/api-dependencies.js';
import { completedRequest } from '../api/request-recording.js';

export function recordRequests(recorder: RequestRecorder): MiddlewareHandler<AppEnv> {
  return async (context, next) => {
    await next();
    if (context.get('writtenDirectly')) return;
    const response = context.res;
    if (response.headers.get('content-type')?.startsWith('text/event-stream')) return;
    const errorCode = response.status >= 400 ? (context.get('errorCode') ?? String(response.status)) : null;
    recorder.record(completedRequest(context, response.status, context.get('usage'), false, errorCode));
  };
}
