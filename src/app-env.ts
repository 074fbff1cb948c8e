/** The typed Hono environment shared by the app, its middleware and its routes. */
import type { Principal } from './auth/key-authenticator.js';
import type { Usage } from './openai/responses.js';

export interface AppVariables {
  requestId: string;
  /** `performance.now()` when the request arrived. */
  startedAt: number;
  principal: Principal;
  /** The configured model a request resolved to, for logs. */
  modelName: string;
  /** Token usage of a finished non-streamed answer, for the request log. */
  usage: Usage;
  /** The error code of a failed request, for the request log. */
  errorCode: string;
}

export interface AppEnv {
  Variables: AppVariables;
}
