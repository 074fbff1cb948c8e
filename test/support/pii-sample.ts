/**
 * Redaction throughput on a ~4,000-token prompt (about 16 KB of mixed prose, code and
 * logs with PII sprinkled in), for a bench script: `measureThroughput()` → MB/s.
 */
import { Pseudonymizer } from '../../src/pii/pseudonymizer.js';
import type { DetectOptions } from '../../src/pii/types.js';

export interface ThroughputResult {
  /** Bytes (UTF-8) of the prompt. */
  bytes: number;
  iterations: number;
  /** Mean milliseconds per redaction of the whole prompt. */
  msPerPrompt: number;
  megabytesPerSecond: number;
  /** Detections per prompt (the count only). */
  detections: number;
}

const PARAGRAPHS = [
  'Hello team, please reach out to maria.gonzalez@example.com or call +1 415-555-2671 about the renewal. The customer paid with 4111 1111 1111 1111 and asked for a refund to DE89 3704 0044 0532 0130 00.',
  'Bonjour, voici mon numéro : 06 12 34 56 78. Mon adresse e-mail est jean.dupont@exemple.fr et mon IBAN FR14 2004 1010 0505 0001 3M02 606.',
  'Log excerpt: 2024-03-15T10:22:31Z GET /api/v2/orders/118823 from 203.0.113.42 took 37 ms (build 1.4.2, commit 3f7a9c2e5b1d4e6f8a0b2c4d6e8f0a1b2c3d4e5f).',
  'The deployment used OPENAI_API_KEY=sk-proj-Ab3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7d and the server listens on 2001:db8:85a3::8a2e:370:7334 port 8443.',
  'Please summarise the following meeting notes. We discussed the quarterly roadmap, the migration of the billing service, the hiring plan for the platform team, and the incident of last Tuesday, in which the cache layer returned stale entries for about forty minutes before the on-call engineer rolled back the configuration change.',
  'Sehr geehrte Damen und Herren, bitte überweisen Sie den Betrag von 1.234,56 EUR bis zum 15.04.2024. Bestellnummer 4500012345, Rückfragen unter 030 12345678.',
  'function total(items) { return items.reduce((sum, item) => sum + item.price * item.quantity, 0); } // version 2.3.1, order #A-2024-0042',
  'Estimado cliente: su pedido 2024/118823 ha sido enviado. Para cualquier consulta escriba a soporte@ejemplo.es o llame al 612 34 56 78.',
];

/** A ~4,000-token prompt (about 16,000 characters). */
export function samplePrompt(targetCharacters = 16_000): string {
  let text = '';
  for (let index = 0; text.length < targetCharacters; index += 1) text += `${PARAGRAPHS[index % PARAGRAPHS.length]}\n\n`;
  return text;
}

export function measureThroughput(options: { iterations?: number; prompt?: string; detect?: DetectOptions } = {}): ThroughputResult {
  const prompt = options.prompt ?? samplePrompt();
  const iterations = options.iterations ?? 50;
  const bytes = Buffer.byteLength(prompt, 'utf8');
  let detections = 0;
  for (let warm = 0; warm < 3; warm += 1) new Pseudonymizer().redact(prompt, options.detect);
  const started = process.hrtime.bigint();
  for (let index = 0; index < iterations; index += 1) detections = new Pseudonymizer().redact(prompt, options.detect).detections.length;
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const msPerPrompt = elapsedMs / iterations;
  return { bytes, iterations, msPerPrompt, megabytesPerSecond: bytes / 1e6 / (msPerPrompt / 1000), detections };
}
