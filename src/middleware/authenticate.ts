/**
 * Requires `Authorization: Bearer <key>` and puts the resolved principal on the context,
 * with the client's address (`clientIp`: the socket's peer, or the right-most
 * `X-Forwarded-For` address not in `server.trusted_proxies` when the peer is a trusted proxy).
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { KeyAuthenticator } from '../auth/key-authenticator.js';
import { invalidApiKey, missingApiKey } from '../errors/gateway-error.js';
import { clientAddress, IpMatcher } from '../keys/ip-access.js';

export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}

export interface AuthenticateOptions {
  /** CIDRs or addresses of the proxies whose `X-Forwarded-For` is believed. */
  trustedProxies?: readonly string[] | IpMatcher;
}

/** The client's address for this request (see ip-access.ts `clientAddress`). */
export function resolveClientIp(context: Context<AppEnv>, trustedProxies: IpMatcher): string | null {
  const socketAddress = context.env?.incoming?.socket?.remoteAddress;
  return clientAddress(socketAddress, context.req.header('x-forwarded-for'), trustedProxies);
}

export function authenticate(authenticator: KeyAuthenticator, options: AuthenticateOptions = {}): MiddlewareHandler<AppEnv> {
  const trustedProxies = options.trustedProxies instanceof IpMatcher ? options.trustedProxies : new IpMatcher(options.trustedProxies ?? []);
  return async (context, next) => {
    const internal = context.env?.internal;
    if (internal !== undefined) {
      context.set('clientIp', internal.clientIp);
      context.set('principal', internal.principal);
      return next();
    }
    context.set('clientIp', resolveClientIp(context, trustedProxies));
    const header = context.req.header('authorization');
    const token = bearerToken(header);
    if (token === null) {
      if (header) throw invalidApiKey('The Authorization header must have the form "Bearer YOUR_KEY".');
      throw missingApiKey();
    }
    const principal = await authenticator.authenticate(token);
    if (!principal) throw invalidApiKey();
    context.set('principal', principal);
    await next();
  };
}
