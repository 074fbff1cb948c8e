/** Why a credential or a request was refused: 401 for the credential, 403 for its rights. */
import { GatewayError } from '../errors/gateway-error.js';

function unauthorized(code: string, message: string): GatewayError {
  return new GatewayError({ status: 401, type: 'invalid_request_error', code, message });
}

function forbidden(code: string, message: string, param: string | null = null): GatewayError {
  return new GatewayError({ status: 403, type: 'permission_error', code, message, param });
}

export const refusals = {
  keyExpired: () => unauthorized('key_expired', 'This API key has expired.'),
  keyRevoked: () => unauthorized('key_revoked', 'This API key has been revoked.'),
  keyRotated: () =>
    unauthorized('invalid_api_key', 'Incorrect API key provided: this secret was replaced by a rotation and its grace period has ended. Use the new secret.'),
  tokenExpired: () => unauthorized('token_expired', 'This token has expired. Mint a new one.'),
  tokenInvalid: () => unauthorized('invalid_api_key', 'Incorrect token provided: the token is malformed or its signature does not match.'),
  tokenLifetimeInvalid: () => unauthorized('invalid_api_key', 'Incorrect token provided: its lifetime is longer than tokens are minted for, or it was issued in the future.'),
  tokenParentRevoked: () => unauthorized('key_revoked', 'The API key this token was minted from has been revoked.'),
  tokenParentExpired: () => unauthorized('key_expired', 'The API key this token was minted from has expired.'),
  tokenParentMissing: () => unauthorized('invalid_api_key', 'The API key this token was minted from does not exist.'),
  modelNotAllowed: (model: string) => forbidden('model_not_allowed', `This API key is not allowed to use the model '${model}'.`, 'model'),
  endpointNotAllowed: (method: string, path: string) => forbidden('endpoint_not_allowed', `This API key is not allowed to call ${method} ${path}.`),
  ipNotAllowed: (address: string | null) =>
    forbidden('ip_not_allowed', `This API key is not allowed from the address ${address ?? '(unknown)'}.`),
  originNotAllowed: (origin: string | null) =>
    forbidden(
      'origin_not_allowed',
      origin === null
        ? 'This API key may only be used from allowed browser origins, and the request has no Origin or Referer header.'
        : `This API key is not allowed from the origin ${origin}.`,
    ),
  adminRequired: () => forbidden('admin_required', 'This endpoint requires the master key or an admin API key.'),
  tokenCannotMint: () => forbidden('token_not_allowed', 'A short-lived token cannot mint tokens; use an API key.'),
  masterCannotMint: () =>
    forbidden('token_not_allowed', 'The master key has no rights to narrow: mint tokens for an API key with POST /admin/keys/{id}/tokens.'),
};
