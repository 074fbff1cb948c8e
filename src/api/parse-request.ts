/** Moved to errors/validation-error.ts and http/read-body.ts; these re-exports go when the importers switch (issue 14, P1-final). */
export * from '../errors/validation-error.js';
export * from '../http/read-body.js';
