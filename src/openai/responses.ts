/** Moved to completion-objects.ts (this name is kept for the Responses API); the re-export goes when the importers switch (issue 14, P1-final). */
export * from './completion-objects.js';
