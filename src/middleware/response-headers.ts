/**
 * Headers every response of a request must carry (request id, OpenAI version, CORS).
 * They are set through `context.header()` — free for responses the routes build — and
 * remembered, so that a stream written straight to Node's socket (see
 * streaming/node-stream-writer.ts) carries them too.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';

export function setResponseHeader(context: Context<AppEnv>, name: string, value: string): void {
  context.header(name, value);
  let headers = context.get('responseHeaders');
  if (!headers) {
    headers = {};
    context.set('responseHeaders', headers);
  }
  headers[name] = value;
}
