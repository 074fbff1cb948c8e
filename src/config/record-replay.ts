export * from '../providers/openai-compatible/record-replay-settings.js';
