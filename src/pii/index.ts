/** PII detection and redaction: see docs/pii.md. */
export { detect, detectAsync, summarize, resolveOverlaps, DETECTORS, type Pace } from './engine.js';
export { mask, Pseudonymizer, StreamRestorer, placeholderLabel, type RedactionResult } from './pseudonymizer.js';
export { DEFAULT_PHONE_REGIONS } from './detectors/phone.js';
export { luhnValid, isCardNumber, cardIssuer } from './detectors/card.js';
export { isIban, ibanChecksumValid } from './detectors/iban.js';
export { shannonEntropy } from './detectors/secret.js';
export * from './types.js';
