/** Requires `Authorization: Bearer <key>` and puts the resolved principal on the context. */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { KeyAuthenticator } from '../auth/key-authenticator.js';
import { invalidApiKey, missingApiKey } from '../errors/gateway-error.js';

export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}

export function authenticate(authenticator: KeyAuthenticator): MiddlewareHandler<AppEnv> {
  return async (context, next) => {
    const header = context.req.header('authorization');
    const token = bearerToken(header);
    if (token === null) {
      if (header) throw invalidApiKey('The Authorization header must have the form "Bearer YOUR_KEY".');
      throw missingApiKey();
    }
    const principal = authenticator.authenticate(token);
    if (!principal) throw invalidApiKey();
    context.set('principal', principal);
    await next();
  };
}
