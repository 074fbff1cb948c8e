/**
 * Access checks after authentication: the key's IP allowlist, browser origins and
 * endpoints (403 `ip_not_allowed`, `origin_not_allowed`, `endpoint_not_allowed`), and for
 * `/admin` the admin right (403 `admin_required`). The model check needs the parsed body:
 * routes call `checkModelAllowed(principal, model)` where they resolve the model.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';
import { authorize } from '../keys/access-policy.js';
import { refusals } from '../keys/refusals.js';

export { checkModelAllowed, modelAllowed } from '../keys/access-policy.js';

export function authorizeRequest(): MiddlewareHandler<AppEnv> {
  return async (context, next) => {
    authorize(context.get('principal'), {
      method: context.req.method,
      path: context.req.path,
      clientIp: context.get('clientIp') ?? null,
      origin: context.req.header('origin'),
      referer: context.req.header('referer'),
    });
    await next();
  };
}

/** Only the master key and admin keys (never a short-lived token). */
export function requireAdmin(): MiddlewareHandler<AppEnv> {
  return async (context, next) => {
    const principal = context.get('principal');
    if (!principal || principal.tokenId !== undefined || !(principal.isMaster || principal.isAdmin)) throw refusals.adminRequired();
    await next();
  };
}
