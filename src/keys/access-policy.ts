/**
 * What a principal may do: the checks behind 403 refusals. `authorize` checks endpoint,
 * client address and browser origin (and the model when one is given); the model check is
 * also exported alone for the routes, which know the model only after parsing the body.
 */
import type { Principal } from '../auth/principal.js';
import { ipMatcherFor } from './ip-access.js';
import { originAllowed, requestOrigin } from './origins.js';
import { anyPatternMatches } from './patterns.js';
import { refusals } from './refusals.js';

export interface AccessRequest {
  path: string;
  method?: string;
  model?: string;
  clientIp: string | null;
  origin?: string | undefined;
  referer?: string | undefined;
}

/** Throws the 403 GatewayError `model_not_allowed` (param `model`) unless the principal may use the model. */
export function checkModelAllowed(principal: Principal, model: string): void {
  if (!anyPatternMatches(principal.settings.models, model)) throw refusals.modelNotAllowed(model);
}

/** Whether the principal may use the model (for filtering `GET /v1/models`). */
export function modelAllowed(principal: Principal, model: string): boolean {
  return anyPatternMatches(principal.settings.models, model);
}

export function checkEndpointAllowed(principal: Principal, method: string, path: string): void {
  if (!anyPatternMatches(principal.settings.endpoints, path)) throw refusals.endpointNotAllowed(method, path);
}

export function checkIpAllowed(principal: Principal, clientIp: string | null): void {
  const rules = principal.settings.ips;
  if (rules === null) return;
  if (clientIp === null || !ipMatcherFor(rules).has(clientIp)) throw refusals.ipNotAllowed(clientIp);
}

export function checkOriginAllowed(principal: Principal, origin: string | undefined, referer: string | undefined): void {
  const patterns = principal.settings.origins;
  if (patterns === null) return;
  const effective = requestOrigin(origin, referer);
  if (!originAllowed(patterns, effective)) throw refusals.originNotAllowed(effective);
}

/** Throws a 403 GatewayError naming the first right the request lacks. */
export function authorize(principal: Principal, request: AccessRequest): void {
  if (principal.isMaster) return;
  checkIpAllowed(principal, request.clientIp);
  checkOriginAllowed(principal, request.origin, request.referer);
  checkEndpointAllowed(principal, request.method ?? 'POST', request.path);
  if (request.model !== undefined) checkModelAllowed(principal, request.model);
}
