/**
 * The admin keys API, mounted at `/admin` behind authentication (only the master key and
 * admin keys get past `requireAdmin`):
 *
 *   POST   /keys                  create (201, the secret shown once)
 *   GET    /keys                  list (`limit`, `after`, `include_revoked`)
 *   GET    /keys/{id}             one key
 *   PATCH  /keys/{id}             change fields (null clears a restriction or limit)
 *   POST   /keys/{id}/rotate      new secret; the old one stays valid `grace_seconds` (default 86400)
 *   POST   /keys/{id}/revoke      revoke (DELETE /keys/{id} too)
 *   POST   /keys/{id}/tokens      mint a short-lived token for the key
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { GatewayError } from '../errors/gateway-error.js';
import { issueToError } from '../errors/validation-error.js';
import { keyStatus, keyToJson } from '../keys/key-settings.js';
import type { KeyService } from '../keys/key-service.js';
import type { TokenSigner } from '../keys/tokens.js';
import { requireAdmin } from '../middleware/authorize.js';
import { readOptionalJsonObject } from './read-body.js';
import { mintTokenFor } from './token-routes.js';

export interface AdminKeyRoutesDependencies {
  keys: KeyService;
  tokens: TokenSigner;
  /** Largest accepted request body, in bytes. */
  maxBodyBytes: number;
  now?: () => number;
}

const rotateBody = z.object({ grace_seconds: z.number().int().min(0).optional() }).strict();

const listQuery = z
  .object({
    limit: z.string().regex(/^\d+$/, 'expected an integer from 1 to 100').optional(),
    after: z.string().optional(),
    include_revoked: z.enum(['true', 'false', '1', '0']).optional(),
  })
  .strict();

export function createAdminKeyRoutes(dependencies: AdminKeyRoutesDependencies): Hono<AppEnv> {
  const { keys, maxBodyBytes } = dependencies;
  const now = dependencies.now ?? Date.now;
  const routes = new Hono<AppEnv>();
  routes.use('*', requireAdmin());

  routes.post('/keys', async (context) => {
    const { record, secret } = await keys.create(await readOptionalJsonObject(context, maxBodyBytes));
    return context.json({ ...keyToJson(record, now()), secret }, 201);
  });

  routes.get('/keys', async (context) => {
    const parsed = listQuery.safeParse(context.req.query());
    if (!parsed.success) throw issueToError(parsed.error.issues[0]!);
    const { limit, after, include_revoked: includeRevoked } = parsed.data;
    const page = await keys.list({
      ...(limit !== undefined ? { limit: Number(limit) } : {}),
      ...(after !== undefined ? { after } : {}),
      includeRevoked: includeRevoked === 'true' || includeRevoked === '1',
    });
    const time = now();
    const data = page.records.map((record) => keyToJson(record, time));
    return context.json({ object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore });
  });

  routes.get('/keys/:id', async (context) => context.json(keyToJson(await keys.get(context.req.param('id')), now())));

  routes.patch('/keys/:id', async (context) => {
    const body = await readOptionalJsonObject(context, maxBodyBytes);
    return context.json(keyToJson(await keys.update(context.req.param('id'), body), now()));
  });

  routes.post('/keys/:id/rotate', async (context) => {
    const parsed = rotateBody.safeParse(await readOptionalJsonObject(context, maxBodyBytes));
    if (!parsed.success) throw issueToError(parsed.error.issues[0]!);
    const { record, secret } = await keys.rotate(context.req.param('id'), parsed.data.grace_seconds);
    return context.json({ ...keyToJson(record, now()), secret });
  });

  const revoke = async (context: Context<AppEnv>) => context.json(keyToJson(await keys.revoke(context.req.param('id')!), now()));
  routes.post('/keys/:id/revoke', revoke);
  routes.delete('/keys/:id', revoke);

  routes.post('/keys/:id/tokens', async (context) => {
    const record = await keys.get(context.req.param('id'));
    const status = keyStatus(record, now());
    if (status !== 'active') {
      throw new GatewayError({ status: 409, type: 'invalid_request_error', code: `key_${status}`, message: `The API key '${record.id}' is ${status}: it cannot mint tokens.` });
    }
    const body = await readOptionalJsonObject(context, maxBodyBytes);
    return context.json(await mintTokenFor(dependencies.tokens, record.id, record.settings, body, now()), 201);
  });

  return routes;
}
