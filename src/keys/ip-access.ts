/**
 * Client addresses: IP allowlists (CIDRs and single addresses, IPv4 and IPv6, checked with
 * node's `net.BlockList`) and the client address behind trusted proxies (`X-Forwarded-For`).
 * IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket reports) are
 * treated as the IPv4 address everywhere.
 */
import { BlockList, isIP } from 'node:net';

export interface ParsedIpRule {
  address: string;
  family: 'ipv4' | 'ipv6';
  prefix: number;
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; other addresses unchanged (IPv6 lowercased, zone id dropped). */
export function normalizeAddress(address: string): string {
  let text = address.trim();
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(text);
  if (mapped && isIP(mapped[1]!) === 4) return mapped[1]!;
  return isIP(text) === 6 ? text.toLowerCase() : text;
}

/** Parses `10.0.0.0/8`, `2001:db8::/32` or a single address; null when malformed. */
export function parseIpRule(rule: string): ParsedIpRule | null {
  const [addressPart, prefixPart, ...rest] = rule.trim().split('/');
  if (rest.length > 0 || addressPart === undefined) return null;
  const address = normalizeAddress(addressPart);
  const version = isIP(address);
  if (version === 0) return null;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  const bits = version === 4 ? 32 : 128;
  if (prefixPart === undefined) return { address, family, prefix: bits };
  if (!/^\d{1,3}$/.test(prefixPart)) return null;
  let prefix = Number(prefixPart);
  // `::ffff:10.0.0.0/104` is the IPv4 network 10.0.0.0/8.
  if (version === 4 && addressPart.includes(':')) prefix -= 96;
  if (prefix < 0 || prefix > bits) return null;
  return { address, family, prefix };
}

export function isValidIpRule(rule: string): boolean {
  return parseIpRule(rule) !== null;
}

/** Matches addresses against a list of rules. */
export class IpMatcher {
  private readonly list = new BlockList();
  readonly rules: readonly ParsedIpRule[];

  constructor(rules: readonly string[]) {
    const parsed: ParsedIpRule[] = [];
    for (const text of rules) {
      const rule = parseIpRule(text);
      if (!rule) throw new Error(`Not an IP address or CIDR: '${text}'`);
      parsed.push(rule);
      if (rule.prefix === (rule.family === 'ipv4' ? 32 : 128)) this.list.addAddress(rule.address, rule.family);
      else this.list.addSubnet(rule.address, rule.prefix, rule.family);
    }
    this.rules = parsed;
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  has(address: string): boolean {
    const normalized = normalizeAddress(address);
    const version = isIP(normalized);
    if (version === 0) return false;
    return this.list.check(normalized, version === 4 ? 'ipv4' : 'ipv6');
  }
}

const matcherCache = new Map<string, IpMatcher>();

/** A matcher for a key's rule list, memoised (keys are few; lists are small). */
export function ipMatcherFor(rules: readonly string[]): IpMatcher {
  const cacheKey = rules.join(',');
  let matcher = matcherCache.get(cacheKey);
  if (!matcher) {
    if (matcherCache.size >= 1000) matcherCache.delete(matcherCache.keys().next().value!);
    matcher = new IpMatcher(rules);
    matcherCache.set(cacheKey, matcher);
  }
  return matcher;
}

/** Whether the network `narrow` lies entirely within `wide`. */
export function ipRuleWithin(narrow: string, wide: string): boolean {
  const inner = parseIpRule(narrow);
  const outer = parseIpRule(wide);
  if (!inner || !outer || inner.family !== outer.family || inner.prefix < outer.prefix) return false;
  const list = new BlockList();
  list.addSubnet(outer.address, outer.prefix, outer.family);
  return list.check(inner.address, inner.family);
}

/** Whether every rule of `narrow` lies within one rule of `wide` (null: any address). */
export function ipRulesWithin(narrow: readonly string[] | null, wide: readonly string[] | null): boolean {
  if (wide === null) return true;
  if (narrow === null) return false;
  return narrow.every((rule) => wide.some((candidate) => ipRuleWithin(rule, candidate)));
}

/**
 * The client's address. Without trusted proxies, or when the socket's peer is not one of
 * them, the socket's address. Otherwise the right-most `X-Forwarded-For` address that is not
 * a trusted proxy (addresses further left can be forged by the client); if every address is
 * a trusted proxy, the left-most one. Malformed entries stop the walk (the last good hop wins).
 */
export function clientAddress(socketAddress: string | undefined, xForwardedFor: string | undefined, trustedProxies: IpMatcher): string | null {
  const peer = socketAddress ? normalizeAddress(socketAddress) : null;
  if (!peer || trustedProxies.empty || !xForwardedFor || !trustedProxies.has(peer)) return peer;
  const hops = xForwardedFor.split(',').map((part) => part.trim()).filter((part) => part.length > 0);
  let address = peer;
  for (let index = hops.length - 1; index >= 0; index -= 1) {
    const hop = normalizeAddress(stripPort(hops[index]!));
    if (isIP(hop) === 0) return address;
    address = hop;
    if (!trustedProxies.has(hop)) return hop;
  }
  return address;
}

/** `1.2.3.4:5678` → `1.2.3.4`, `[::1]:80` → `::1`; anything else unchanged. */
function stripPort(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  if (bracketed) return bracketed[1]!;
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop);
  if (v4WithPort) return v4WithPort[1]!;
  return hop;
}
