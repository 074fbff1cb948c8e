export * from '../openai/ids.js';
