import { describe, expect, it } from 'vitest';
import { clientAddress, IpMatcher, ipRuleWithin, ipRulesWithin, isValidIpRule, normalizeAddress, parseIpRule } from './ip-access.js';

describe('IP rules', () => {
  it('parses IPv4 and IPv6 CIDRs and single addresses, refusing malformed ones', () => {
    expect(parseIpRule('10.0.0.0/8')).toEqual({ address: '10.0.0.0', family: 'ipv4', prefix: 8 });
    expect(parseIpRule('2001:DB8::/32')).toEqual({ address: '2001:db8::', family: 'ipv6', prefix: 32 });
    expect(parseIpRule('192.168.1.7')).toEqual({ address: '192.168.1.7', family: 'ipv4', prefix: 32 });
    expect(parseIpRule('::ffff:10.0.0.0/104')).toEqual({ address: '10.0.0.0', family: 'ipv4', prefix: 8 });
    for (const bad of ['10.0.0.0/33', '10.0.0/8', '::/129', 'example.com', '10.0.0.0/8/1', '', '1.2.3.4/-1', '1.2.3.4/ 8']) expect(isValidIpRule(bad)).toBe(false);
  });

  it('matches IPv4, IPv6 and IPv4-mapped IPv6 addresses', () => {
    const matcher = new IpMatcher(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '::1']);
    expect(matcher.has('10.1.2.3')).toBe(true);
    expect(matcher.has('::ffff:10.1.2.3')).toBe(true);
    expect(matcher.has('11.0.0.1')).toBe(false);
    expect(matcher.has('192.168.1.7')).toBe(true);
    expect(matcher.has('192.168.1.8')).toBe(false);
    expect(matcher.has('2001:db8:1::5')).toBe(true);
    expect(matcher.has('2001:db9::1')).toBe(false);
    expect(matcher.has('::1')).toBe(true);
    expect(matcher.has('not-an-ip')).toBe(false);
    expect(normalizeAddress('[::1]')).toBe('::1');
    expect(normalizeAddress('fe80::1%eth0')).toBe('fe80::1');
  });

  it('knows when a network lies within another', () => {
    expect(ipRuleWithin('10.1.0.0/16', '10.0.0.0/8')).toBe(true);
    expect(ipRuleWithin('10.0.0.0/8', '10.1.0.0/16')).toBe(false);
    expect(ipRuleWithin('10.1.2.3', '10.0.0.0/8')).toBe(true);
    expect(ipRuleWithin('2001:db8:1::/48', '2001:db8::/32')).toBe(true);
    expect(ipRuleWithin('10.0.0.1', '2001:db8::/32')).toBe(false);
    expect(ipRulesWithin(['10.1.0.0/16'], null)).toBe(true);
    expect(ipRulesWithin(null, ['10.0.0.0/8'])).toBe(false);
  });
});

describe('clientAddress', () => {
  const proxies = new IpMatcher(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);

  it('is the socket address without trusted proxies or from an untrusted peer', () => {
    expect(clientAddress('203.0.113.9', '1.1.1.1', new IpMatcher([]))).toBe('203.0.113.9');
    expect(clientAddress('203.0.113.9', '1.1.1.1', proxies)).toBe('203.0.113.9');
    expect(clientAddress('::ffff:127.0.0.1', undefined, proxies)).toBe('127.0.0.1');
    expect(clientAddress(undefined, '1.1.1.1', proxies)).toBeNull();
  });

  it('is the right-most forwarded address that is not a trusted proxy', () => {
    expect(clientAddress('127.0.0.1', '198.51.100.1', proxies)).toBe('198.51.100.1');
    expect(clientAddress('127.0.0.1', '6.6.6.6, 198.51.100.1, 10.0.0.2', proxies)).toBe('198.51.100.1');
    expect(clientAddress('::ffff:127.0.0.1', '2001:db8::7, fd00::1', proxies)).toBe('2001:db8::7');
    expect(clientAddress('127.0.0.1', '198.51.100.1:4711', proxies)).toBe('198.51.100.1');
    expect(clientAddress('127.0.0.1', '[2001:db8::7]:443', proxies)).toBe('2001:db8::7');
  });

  it('stops at a malformed hop and falls back to the last good one', () => {
    expect(clientAddress('127.0.0.1', 'garbage', proxies)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', '198.51.100.1, garbage, 10.0.0.3', proxies)).toBe('10.0.0.3');
    expect(clientAddress('127.0.0.1', '10.0.0.5, 10.0.0.3', proxies)).toBe('10.0.0.5');
  });
});
