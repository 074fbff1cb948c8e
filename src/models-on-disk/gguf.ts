/** Moved to src/gguf/summary.ts; this re-export goes when its importers switch (issue 14, P1-final). */
export * from '../gguf/summary.js';
