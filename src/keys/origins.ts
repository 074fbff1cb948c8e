/**
 * Browser origins a key may be used from. A pattern is `[scheme://]host[:port]` where host
 * may start with `*.` (any subdomain, not the domain itself):
 * - `https://app.example.com`: exactly that origin (scheme, host, default port);
 * - `https://*.example.com`, `*.example.com`: any subdomain (the latter any scheme and port);
 * - `app.example.com`: that host with any scheme and port.
 * The request's origin is the `Origin` header, else the origin of the `Referer`.
 */

interface OriginPattern {
  scheme: string | null;
  wildcard: boolean;
  host: string;
  port: string | null;
}

const PATTERN = /^(?:([a-z][a-z0-9+.-]*):\/\/)?(\*\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::(\d{1,5}))?\/?$/i;
const DEFAULT_PORTS: Record<string, string> = { http: '80', https: '443' };

export function parseOriginPattern(text: string): OriginPattern | null {
  const match = PATTERN.exec(text.trim());
  if (!match) return null;
  const port = match[4] ?? null;
  if (port !== null && Number(port) > 65535) return null;
  return { scheme: match[1]?.toLowerCase() ?? null, wildcard: match[2] !== undefined, host: match[3]!.toLowerCase(), port };
}

export function isValidOriginPattern(text: string): boolean {
  return parseOriginPattern(text) !== null;
}

interface RequestOrigin {
  scheme: string;
  host: string;
  port: string;
}

function parseOrigin(text: string): RequestOrigin | null {
  try {
    const url = new URL(text);
    if (url.origin === 'null' || !url.hostname) return null;
    const scheme = url.protocol.slice(0, -1).toLowerCase();
    return { scheme, host: url.hostname.toLowerCase(), port: url.port || DEFAULT_PORTS[scheme] || '' };
  } catch {
    return null;
  }
}

/** The origin a browser request comes from: `Origin`, else the `Referer`'s origin; null when neither. */
export function requestOrigin(origin: string | undefined, referer: string | undefined): string | null {
  if (origin && origin !== 'null') return origin;
  if (referer) {
    try {
      const url = new URL(referer);
      return url.origin === 'null' ? null : url.origin;
    } catch {
      return null;
    }
  }
  return null;
}

function hostMatches(pattern: OriginPattern, host: string): boolean {
  return pattern.wildcard ? host.endsWith(`.${pattern.host}`) : host === pattern.host;
}

function patternMatchesOrigin(pattern: OriginPattern, origin: RequestOrigin): boolean {
  if (pattern.scheme !== null && pattern.scheme !== origin.scheme) return false;
  if (pattern.port !== null) {
    if (pattern.port !== origin.port) return false;
  } else if (pattern.scheme !== null && origin.port !== (DEFAULT_PORTS[origin.scheme] ?? '')) {
    return false;
  }
  return hostMatches(pattern, origin.host);
}

/** Whether the origin (a URL's origin) is allowed by the patterns (null: any). */
export function originAllowed(patterns: readonly string[] | null, origin: string | null): boolean {
  if (patterns === null) return true;
  if (origin === null) return false;
  const parsed = parseOrigin(origin);
  if (!parsed) return false;
  return patterns.some((text) => {
    const pattern = parseOriginPattern(text);
    return pattern !== null && patternMatchesOrigin(pattern, parsed);
  });
}

/** Whether everything `narrow` allows is allowed by `wide`. */
export function originPatternWithin(narrow: string, wide: string): boolean {
  const inner = parseOriginPattern(narrow);
  const outer = parseOriginPattern(wide);
  if (!inner || !outer) return false;
  if (outer.scheme !== null && inner.scheme !== outer.scheme) return false;
  if (outer.port !== null && inner.port !== outer.port) return false;
  if (outer.port === null && outer.scheme !== null) {
    const defaultPort = DEFAULT_PORTS[outer.scheme] ?? '';
    if (inner.port !== null && inner.port !== defaultPort) return false;
  }
  if (outer.wildcard) return inner.host.endsWith(`.${outer.host}`);
  return !inner.wildcard && inner.host === outer.host;
}

export function originPatternsWithin(narrow: readonly string[] | null, wide: readonly string[] | null): boolean {
  if (wide === null) return true;
  if (narrow === null) return false;
  return narrow.every((pattern) => wide.some((candidate) => originPatternWithin(pattern, candidate)));
}
