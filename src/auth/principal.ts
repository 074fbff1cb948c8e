/** Who is calling: the master key, an API key, or a short-lived token minted from a key. */
import type { ApiKeySettings } from '../storage/spec.js';

export interface Principal {
  /** 'master' for the master key, else the key's id (also for a token minted from it). */
  keyId: string;
  isMaster: boolean;
  /** May call `/admin` (the master key and admin keys; never a short-lived token). */
  isAdmin: boolean;
  project: string;
  /** The effective rights: the key's, narrowed by a token; everything for the master key. */
  settings: ApiKeySettings;
  /** Set when the caller used a short-lived token: the token's id. */
  tokenId?: string;
  /** When the credential stops working (ms since the epoch), if it does. */
  expiresAt?: number;
}

export const DEFAULT_PROJECT = 'default';

/** The rights of a new API key: every model and endpoint, from anywhere, no limits, not admin. */
export function defaultSettings(): ApiKeySettings {
  return {
    project: DEFAULT_PROJECT,
    admin: false,
    models: null,
    endpoints: null,
    ips: null,
    origins: null,
    limits: {},
    budget: null,
    queueSeconds: 0,
    metadata: {},
  };
}

/** Rights of the master key: everything allowed, no limits. */
export function unrestrictedSettings(project = DEFAULT_PROJECT): ApiKeySettings {
  return { ...defaultSettings(), project, admin: true };
}

export const MASTER_PRINCIPAL: Principal = Object.freeze({
  keyId: 'master',
  isMaster: true,
  isAdmin: true,
  project: DEFAULT_PROJECT,
  settings: Object.freeze(unrestrictedSettings()) as ApiKeySettings,
});
