/** The typed Hono environment shared by the app, its middleware and its routes. */
import type { Principal } from './auth/principal.js';
import type { Usage } from './openai/responses.js';
import type { PiiSession } from './pii/pii-session.js';

export interface AppVariables {
  requestId: string;
  /** `performance.now()` when the request arrived. */
  startedAt: number;
  principal: Principal;
  /** The client's address (behind trusted proxies: from X-Forwarded-For); null when unknown. */
  clientIp: string | null;
  /** The configured model a request resolved to, for logs. */
  modelName: string;
  /** Which provider served it (`mock`, `llama-cpp`, `openai-compatible:<upstream model>`), for the audit log. */
  providerName: string;
  /** The end user the client named (`user` in the body), for the audit log. */
  endUser: string;
  /** The request body as received (kept for the audit log when bodies are recorded). */
  rawBody: string;
  /** Token usage of a finished non-streamed answer, for the audit log. */
  usage: Usage;
  /** The error code of a failed request, for the audit log. */
  errorCode: string;
  /** Headers set for every response of this request (see middleware/response-headers.ts). */
  responseHeaders: Record<string, string>;
  /** Set when the response cache was consulted: true for an answer served from it (cost 0). */
  cacheHit: boolean;
  /** The response was written straight to Node's socket (a stream), not returned to Hono. */
  writtenDirectly: boolean;
  /** The PII handling of the request (policy other than off; see api/pii-policy.ts). */
  pii: PiiSession;
  /** PII found in the request, `email=2,card=1` (never values), for the audit log. */
  piiCounts: string;
}

/**
 * A request Chatgate makes to itself (a batch's line): `app.fetch(request, { internal })`.
 * Never set for requests from the network (@hono/node-server passes only incoming/outgoing).
 */
export interface InternalCall {
  /** Who the request runs as (the batch's creator), instead of an Authorization header. */
  principal: Principal;
  /** The creator's address when the batch was created (for the key's IP allowlist). */
  clientIp: string | null;
  /** Logged at debug level rather than info (a batch can hold 50,000 requests). */
  quiet?: boolean;
}

/** What @hono/node-server passes as `context.env` (or an internal call, see above). */
export interface NodeBindings {
  incoming?: import('node:http').IncomingMessage;
  outgoing?: import('node:http').ServerResponse;
  internal?: InternalCall;
}

export interface AppEnv {
  Variables: AppVariables;
  Bindings: NodeBindings;
}
