/**
 * JSON Schema `format`s the mock knows: a fixed sample value for each (varied by a small
 * number when several distinct values are needed) and a check of the format, used to
 * verify generated strings. Unknown formats have no sample and accept anything, as
 * validators do with formats they do not know.
 */

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

const samples: Record<string, (variant: number) => string> = {
  'date-time': (variant) => `2024-01-${pad(1 + (variant % 28), 2)}T12:00:00Z`,
  date: (variant) => `2024-01-${pad(1 + (variant % 28), 2)}`,
  time: (variant) => `12:${pad(variant % 60, 2)}:00Z`,
  duration: (variant) => `P${1 + variant}D`,
  email: (variant) => (variant === 0 ? 'user@example.com' : `user${variant + 1}@example.com`),
  'idn-email': (variant) => (variant === 0 ? 'user@example.com' : `user${variant + 1}@example.com`),
  hostname: (variant) => (variant === 0 ? 'example.com' : `host${variant + 1}.example.com`),
  'idn-hostname': (variant) => (variant === 0 ? 'example.com' : `host${variant + 1}.example.com`),
  ipv4: (variant) => `192.0.2.${1 + (variant % 254)}`,
  ipv6: (variant) => `2001:db8::${(1 + variant).toString(16)}`,
  uri: (variant) => (variant === 0 ? 'https://example.com/' : `https://example.com/${variant + 1}`),
  'uri-reference': (variant) => (variant === 0 ? 'https://example.com/' : `https://example.com/${variant + 1}`),
  iri: (variant) => (variant === 0 ? 'https://example.com/' : `https://example.com/${variant + 1}`),
  'iri-reference': (variant) => (variant === 0 ? 'https://example.com/' : `https://example.com/${variant + 1}`),
  'uri-template': (variant) => `https://example.com/${variant === 0 ? '' : `${variant + 1}/`}{id}`,
  uuid: (variant) => `123e4567-e89b-42d3-a456-${pad(426614174000 + variant, 12)}`,
  'json-pointer': (variant) => (variant === 0 ? '/mock' : `/mock/${variant}`),
  'relative-json-pointer': (variant) => String(variant),
  regex: (variant) => (variant === 0 ? '.*' : `.{${variant}}`),
  byte: (variant) => Buffer.from(variant === 0 ? 'mock' : `mock${variant + 1}`).toString('base64'),
};

const daysInMonth = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isDate(text: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!match) return false;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const limit = month === 2 && !leap ? 28 : (daysInMonth[month - 1] ?? 31);
  return day <= limit;
}

function isTime(text: string, timezoneRequired: boolean): boolean {
  const match = /^(\d{2}):(\d{2}):(\d{2})(\.\d+)?(z|[+-]\d{2}(?::?\d{2})?)?$/i.exec(text);
  if (!match) return false;
  if (timezoneRequired && match[5] === undefined) return false;
  return Number(match[1]) <= 23 && Number(match[2]) <= 59 && Number(match[3]) <= 60;
}

const octet = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const ipv4Pattern = new RegExp(`^${octet}(?:\\.${octet}){3}$`);
const hostnamePattern = /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-0-9a-z]{0,61}[0-9a-z])?)*\.?$/i;

function isIpv6(text: string): boolean {
  if (!/^[0-9a-f:.]+$/i.test(text) || !text.includes(':')) return false;
  const doubleColons = text.split('::').length - 1;
  if (doubleColons > 1) return false;
  const groups = text.split(':').filter((group) => group !== '');
  const last = groups[groups.length - 1] ?? '';
  const embeddedIpv4 = last.includes('.');
  if (embeddedIpv4 && !ipv4Pattern.test(last)) return false;
  const hexGroups = embeddedIpv4 ? groups.slice(0, -1) : groups;
  if (!hexGroups.every((group) => /^[0-9a-f]{1,4}$/i.test(group))) return false;
  const size = hexGroups.length + (embeddedIpv4 ? 2 : 0);
  return doubleColons === 1 ? size < 8 : size === 8;
}

function isRegex(text: string): boolean {
  try {
    new RegExp(text, 'u');
    return true;
  } catch {
    return false;
  }
}

const checks: Record<string, (text: string) => boolean> = {
  'date-time': (text) => {
    const [date, time, ...rest] = text.split(/[tT ]/);
    return rest.length === 0 && date !== undefined && time !== undefined && isDate(date) && isTime(time, true);
  },
  date: isDate,
  time: (text) => isTime(text, false),
  duration: (text) => /^P(?!$)((\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?|(\d+W)?)$/.test(text),
  email: (text) => /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i.test(text),
  'idn-email': (text) => /^[^\s@]+@[^\s@]+$/.test(text),
  hostname: (text) => hostnamePattern.test(text),
  'idn-hostname': (text) => text.length > 0 && !/\s/.test(text),
  ipv4: (text) => ipv4Pattern.test(text),
  ipv6: isIpv6,
  uri: (text) => /^[a-z][a-z0-9+.-]*:[^\s]*$/i.test(text),
  'uri-reference': (text) => !/\s/.test(text),
  iri: (text) => /^[a-z][a-z0-9+.-]*:[^\s]*$/i.test(text),
  'iri-reference': (text) => !/\s/.test(text),
  'uri-template': (text) => !/\s/.test(text),
  uuid: (text) => /^(?:urn:uuid:)?[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$/i.test(text),
  'json-pointer': (text) => /^(?:\/(?:[^~/]|~0|~1)*)*$/.test(text),
  'relative-json-pointer': (text) => /^(?:0|[1-9]\d*)(?:#|(?:\/(?:[^~/]|~0|~1)*)*)$/.test(text),
  regex: isRegex,
  byte: (text) => /^(?:[a-z0-9+/]{4})*(?:[a-z0-9+/]{2}==|[a-z0-9+/]{3}=)?$/i.test(text),
};

/** A sample string of the format, or undefined for a format the mock does not know. */
export function formatSample(format: string, variant = 0): string | undefined {
  return samples[format]?.(variant);
}

/** Whether the text has the format; formats the mock does not know accept any text. */
export function matchesFormat(format: string, text: string): boolean {
  const check = checks[format];
  return check === undefined || check(text);
}

export function isKnownFormat(format: string): boolean {
  return Object.hasOwn(samples, format);
}
